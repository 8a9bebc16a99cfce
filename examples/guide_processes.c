/*
 * guide_processes.c: the "multiprocessing" section of docs/guide.md: a
 * process pool (submit, map with chunks), a worker that crashes and one that
 * runs too long, and a counter in shared memory behind a cross-process lock.
 * Exits 0 when every check passes.
 */
#include <concur.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                   \
    do {                                                              \
        if (!(cond)) {                                                \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond); \
            return 1;                                                 \
        }                                                             \
    } while (0)

static uint64_t squares_below(uint64_t n)
{
    uint64_t sum = 0;
    for (uint64_t i = 0; i < n; i++)
        sum += i * i;
    return sum;
}

/* Runs in a worker: n (8 bytes) in, the sum (8 bytes) out. */
static int sum_squares(const void *arg, size_t len, cc_bytes *result)
{
    uint64_t n, sum;
    if (len != sizeof n)
        return 2; /* the future fails with -2 */
    memcpy(&n, arg, sizeof n);
    sum = squares_below(n);
    return cc_bytes_append(result, &sum, sizeof sum) == 0 ? 0 : 1;
}
CC_WORKER_FUNCTION(sum_squares)

static int crash(const void *arg, size_t len, cc_bytes *result)
{
    abort();
}
CC_WORKER_FUNCTION(crash)

static int spin(const void *arg, size_t len, cc_bytes *result)
{
    for (volatile int forever = 1; forever;)
        ;
    return 0;
}
CC_WORKER_FUNCTION(spin)

static uint64_t result_u64(const cc_bytes *b)
{
    uint64_t v = 0;
    memcpy(&v, b->data, b->len < sizeof v ? b->len : sizeof v);
    return v;
}

static int submit_and_result(cc_executor *pool)
{
    uint64_t ns[4] = {1000000, 2000000, 3000000, 4000000};
    cc_bytes out[4] = {{0}};
    cc_future *fs[4];
    for (int i = 0; i < 4; i++)
        CHECK(cc_process_pool_submit(pool, "sum_squares", &ns[i], sizeof ns[i],
                                     &out[i], &fs[i]) == 0);
    for (int i = 0; i < 4; i++) {
        CHECK(cc_future_result(fs[i], cc_deadline_in(60 * CC_SEC), NULL) == 0);
        CHECK(result_u64(&out[i]) == squares_below(ns[i]));
        cc_future_release(fs[i]);
        cc_bytes_free(&out[i]);
    }
    return 0;
}

static int crash_fails_one_task(cc_executor *pool)
{
    cc_future *f;
    CHECK(cc_process_pool_submit(pool, "crash", NULL, 0, NULL, &f) == 0);
    CHECK(cc_future_result(f, cc_deadline_in(60 * CC_SEC), NULL) == -ECHILD);
    /* "worker 1234 was killed by signal 6 (Aborted) while running the task" */
    CHECK(strstr(cc_future_error_message(f), "signal 6") != NULL);
    cc_future_release(f);
    return submit_and_result(pool); /* the pool goes on */
}

static int timeout_kills_the_worker(cc_executor *pool)
{
    cc_future *f;
    CHECK(cc_process_pool_submit_timeout(pool, "spin", NULL, 0,
                                         100 * CC_MSEC, NULL, &f) == 0);
    CHECK(cc_future_result(f, cc_deadline_in(60 * CC_SEC), NULL) ==
          -ETIMEDOUT);
    cc_future_release(f);
    return 0;
}

struct inputs {
    uint64_t next, end;
};

static int next_input(void *state, const void **arg, size_t *len)
{
    struct inputs *in = state;
    if (in->next == in->end)
        return 0;
    in->next++;
    *arg = &in->next;
    *len = sizeof in->next;
    return 1;
}

static int map_in_chunks(cc_executor *pool)
{
    struct inputs in = {.next = 0, .end = 100};
    cc_map_options opts = {.chunksize = 10};
    cc_process_map *m;
    CHECK(cc_process_pool_map(&m, pool, "sum_squares", next_input, &in,
                              &opts) == 0);
    cc_bytes out = {0};
    uint64_t n = 1;
    while (cc_process_map_next(m, CC_FOREVER, &out) == 0) {
        CHECK(result_u64(&out) == squares_below(n++));
        out.len = 0; /* reuse the buffer */
    }
    CHECK(n == 101);
    cc_bytes_free(&out);
    cc_process_map_free(m);
    return 0;
}

/* The shared counter: a lock and a value in one segment. */
struct counter {
    cc_ipc_lock lock;
    uint64_t value;
};

static int add_1000(const void *arg, size_t len, cc_bytes *result)
{
    cc_shm *shm;
    if (cc_shm_attach(&shm, cc_worker_passed_fd(0)) != 0)
        return 1;
    struct counter *c = cc_shm_data(shm);
    for (int i = 0; i < 1000; i++) {
        if (cc_ipc_lock_acquire(&c->lock, CC_FOREVER) != 0)
            return 1;
        c->value++;
        cc_ipc_lock_release(&c->lock);
    }
    cc_shm_close(shm);
    return 0;
}
CC_WORKER_FUNCTION(add_1000)

static int shared_counter(void)
{
    cc_shm *shm;
    CHECK(cc_shm_create(&shm, sizeof(struct counter), 1) == 0);
    struct counter *c = cc_shm_data(shm);
    CHECK(cc_ipc_lock_init(&c->lock) == 0);
    int fd = cc_shm_fd(shm);
    cc_worker_options opts = {.pass_fds = &fd, .npass_fds = 1};
    cc_worker *w[4];
    for (int i = 0; i < 4; i++)
        CHECK(cc_worker_start(&w[i], "add_1000", NULL, 0, &opts) == 0);
    for (int i = 0; i < 4; i++) {
        int code = -1;
        CHECK(cc_worker_join(w[i], cc_deadline_in(60 * CC_SEC), &code) == 0);
        CHECK(code == 0);
        cc_worker_free(w[i]);
    }
    CHECK(c->value == 4000);
    cc_shm_close(shm);
    return 0;
}

int main(int argc, char **argv)
{
    cc_worker_main_hook(argc, argv); /* in a worker: never returns */
    cc_executor *pool;
    cc_process_pool_options opts = {.max_workers = 2};
    CHECK(cc_process_pool_new(&pool, &opts) == 0);
    int failed = submit_and_result(pool) || crash_fails_one_task(pool) ||
                 timeout_kills_the_worker(pool) || map_in_chunks(pool);
    cc_executor_free(pool); /* shuts down, waits, joins the workers */
    CHECK(!failed);
    CHECK(shared_counter() == 0);
    printf("guide_processes: all checks passed\n");
    return 0;
}
