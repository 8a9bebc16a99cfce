/*
 * threadpool_libuv: the threadpool figures (BENCHMARKS.md) for libuv's thread
 * pool (uv_queue_work), with UV_THREADPOOL_SIZE=2.
 *
 * Usage: threadpool_libuv throughput [N]   N no-op works queued at once, then
 *                                           the loop runs until every
 *                                           after_work ran (default 1,000,000)
 *        threadpool_libuv roundtrip [N]    queue one work and run the loop
 *                                           until its after_work, N times
 *                                           (default 100,000)
 */
#include <uv.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static long sum, after;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void work(uv_work_t *req)
{
    req->data = (void *)((intptr_t)req->data + 1);
}

static void after_work(uv_work_t *req, int status)
{
    if (status != 0)
        abort();
    sum += (long)(intptr_t)req->data;
    after++;
}

static int throughput(uv_loop_t *loop, long n)
{
    uv_work_t *reqs = calloc((size_t)n, sizeof *reqs);
    if (!reqs)
        return 1;
    int64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        reqs[i].data = (void *)(intptr_t)i;
        if (uv_queue_work(loop, &reqs[i], work, after_work) != 0)
            abort();
    }
    uv_run(loop, UV_RUN_DEFAULT);
    int64_t t1 = now_ns();
    free(reqs);
    if (after != n || sum != n * (n + 1) / 2)
        return 1;
    printf("threadpool_throughput: %.0f tasks/s\n", n / ((t1 - t0) / 1e9));
    return 0;
}

static int roundtrip(uv_loop_t *loop, long n)
{
    uv_work_t req;
    int64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        req.data = (void *)(intptr_t)i;
        if (uv_queue_work(loop, &req, work, after_work) != 0)
            abort();
        uv_run(loop, UV_RUN_DEFAULT);
    }
    int64_t t1 = now_ns();
    if (after != n || sum != n * (n + 1) / 2)
        return 1;
    printf("threadpool_roundtrip: %.2f us\n", (t1 - t0) / 1e3 / n);
    return 0;
}

int main(int argc, char **argv)
{
    setenv("UV_THREADPOOL_SIZE", "2", 1);
    const char *mode = argc > 1 ? argv[1] : "throughput";
    bool rt = strcmp(mode, "roundtrip") == 0;
    long n = argc > 2 ? atol(argv[2]) : rt ? 100000 : 1000000;
    uv_loop_t *loop = uv_default_loop();
    uv_work_t warm; /* start the pool's threads before the clock */
    warm.data = (void *)(intptr_t)-1;
    uv_queue_work(loop, &warm, work, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    int r = rt ? roundtrip(loop, n) : throughput(loop, n);
    uv_loop_close(loop);
    return r;
}
