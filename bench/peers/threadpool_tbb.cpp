/*
 * threadpool_tbb: the threadpool figures (BENCHMARKS.md) for oneTBB's
 * task_group. Parallelism 2 (tbb::global_control): the calling thread and one
 * worker, TBB's own default on this 2-core machine; the caller runs tasks
 * itself inside wait(), which is how task_group is meant to be used.
 *
 * Usage: threadpool_tbb throughput [N]   run N no-op tasks, then wait()
 *                                         (default 4,000,000)
 *        threadpool_tbb roundtrip [N]    run one task and wait(), N times
 *                                         (default 200,000); the caller may
 *                                         run the task itself
 */
#include <tbb/global_control.h>
#include <tbb/task_group.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

static long long now_ns()
{
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "throughput";
    bool rt = std::strcmp(mode, "roundtrip") == 0;
    long n = argc > 2 ? std::atol(argv[2]) : rt ? 200000 : 4000000;
    tbb::global_control gc(tbb::global_control::max_allowed_parallelism, 2);
    std::atomic<long> sum{0};
    tbb::task_group g;
    g.run([] {}); /* start the worker outside the timed loop */
    g.wait();
    long long t0 = now_ns();
    for (long i = 1; i <= n; i++) {
        g.run([&sum, i] { sum.fetch_add(i, std::memory_order_relaxed); });
        if (rt)
            g.wait();
    }
    g.wait();
    long long t1 = now_ns();
    if (sum.load() != n * (n + 1) / 2)
        return 1;
    if (rt)
        std::printf("threadpool_roundtrip: %.2f us\n", (t1 - t0) / 1e3 / n);
    else
        std::printf("threadpool_throughput: %.0f tasks/s\n", n / ((t1 - t0) / 1e9));
    return 0;
}
