/*
 * threadpool_roundtrip: submit one task to a pool of 2 workers and wait for its
 * result, N times in a row (BENCHMARKS.md). Prints microseconds per round trip.
 *
 * Usage: threadpool_roundtrip [N]   (default 200,000)
 */
#include <concur.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static int increment(void *arg, void **result)
{
    *result = (void *)((intptr_t)arg + 1);
    return 0;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 200000;
    cc_executor *pool;
    cc_thread_pool_options opts = {.max_workers = 2};
    if (cc_thread_pool_new(&pool, &opts) < 0)
        return 1;
    intptr_t x = 0;
    cc_future *warm; /* the workers are up before the clock starts */
    if (cc_executor_submit(pool, increment, NULL, &warm) < 0 ||
        cc_future_wait(warm, CC_FOREVER) < 0)
        abort();
    cc_future_release(warm);

    int64_t t0 = cc_now();
    for (long i = 0; i < n; i++) {
        cc_future *f;
        void *r;
        if (cc_executor_submit(pool, increment, (void *)x, &f) < 0 ||
            cc_future_result(f, CC_FOREVER, &r) != 0)
            abort();
        x = (intptr_t)r;
        cc_future_release(f);
    }
    int64_t t1 = cc_now();

    cc_executor_free(pool);
    if (x != n) {
        fprintf(stderr, "checksum mismatch\n");
        return 1;
    }
    printf("threadpool_roundtrip: %.2f us\n", (t1 - t0) / 1e3 / n);
    return 0;
}
