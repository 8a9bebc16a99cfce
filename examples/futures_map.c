/*
 * futures_map.c: square the numbers 1..100000 on a thread pool, lazily, in
 * order; submit one task and read its future. Exits 0 when every result is
 * right.
 */
#include <concur.h>

#include <stdint.h>
#include <stdio.h>

static int square(void *arg, void **result)
{
    intptr_t x = (intptr_t)arg;
    *result = (void *)(x * x);
    return 0;
}

/* The input generator: 1, 2, ..., *limit. */
struct counter {
    intptr_t next;  /* the next number to give */
    intptr_t limit; /* the last one */
};

static int next_number(void *state, void **arg)
{
    struct counter *c = state;
    if (c->next > c->limit)
        return 0;
    *arg = (void *)c->next++;
    return 1;
}

int main(void)
{
    cc_executor *pool;
    cc_thread_pool_options opts = {.max_workers = 2};
    if (cc_thread_pool_new(&pool, &opts) < 0)
        return 1;

    cc_future *f;
    void *result;
    if (cc_executor_submit(pool, square, (void *)(intptr_t)12, &f) < 0 ||
        cc_future_result(f, CC_FOREVER, &result) < 0 || (intptr_t)result != 144)
        return 1;
    cc_future_release(f);

    struct counter input = {1, 100000};
    cc_map_options mopts = {.chunksize = 256};
    cc_map *m;
    if (cc_executor_map(&m, pool, square, next_number, &input, &mopts) < 0)
        return 1;
    intptr_t expect = 1;
    int r;
    while ((r = cc_map_next(m, CC_FOREVER, &result)) == 0) {
        if ((intptr_t)result != expect * expect)
            return 1;
        expect++;
    }
    cc_map_free(m);
    cc_executor_free(pool);
    printf("squared %ld numbers in order\n", (long)(expect - 1));
    return r == -ENOENT && expect == 100001 ? 0 : 1;
}
