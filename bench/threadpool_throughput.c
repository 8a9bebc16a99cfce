/*
 * threadpool_throughput: N no-op tasks submitted from one thread to a pool of 2
 * workers, then wait for all (BENCHMARKS.md). Prints tasks per second.
 *
 * Usage: threadpool_throughput [N]   (default 4,000,000)
 *
 * Each task adds its argument to a shared sum (the checksum). The futures are
 * kept and waited for, as a program that wants the outcomes would, in rounds of
 * 16,384 so that memory stays small whatever N is: submit a round, wait for
 * all of it (cc_futures_wait, ALL_COMPLETED), release it. Rounds overlap: the
 * next round is submitted before the previous one is waited for. One task
 * runs before the clock starts, so that the workers are up (as for the peers).
 */
#include <concur.h>

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

enum { ROUND = 16384 };

static atomic_long sum;

static int add(void *arg, void **result)
{
    atomic_fetch_add_explicit(&sum, (long)(intptr_t)arg, memory_order_relaxed);
    *result = arg;
    return 0;
}

static long finish_round(cc_future **fs, long n)
{
    long check = 0;
    if (cc_futures_wait(fs, (size_t)n, CC_ALL_COMPLETED, CC_FOREVER) != n)
        abort();
    for (long i = 0; i < n; i++) {
        void *r;
        if (cc_future_result(fs[i], CC_NOWAIT, &r) != 0)
            abort();
        check += (long)(intptr_t)r;
        cc_future_release(fs[i]);
    }
    return check;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 4000000;
    cc_executor *pool;
    cc_thread_pool_options opts = {.max_workers = 2};
    if (cc_thread_pool_new(&pool, &opts) < 0)
        return 1;
    static cc_future *fs[2][ROUND];
    long check = 0, pending = 0;
    int cur = 0;

    cc_future *warm;
    if (cc_executor_submit(pool, add, NULL, &warm) < 0 ||
        cc_future_wait(warm, CC_FOREVER) < 0)
        abort();
    cc_future_release(warm);

    int64_t t0 = cc_now();
    for (long done = 0; done < n;) {
        long k = n - done < ROUND ? n - done : ROUND;
        for (long i = 0; i < k; i++)
            if (cc_executor_submit(pool, add, (void *)(intptr_t)(done + i + 1),
                                   &fs[cur][i]) < 0)
                abort();
        if (pending)
            check += finish_round(fs[!cur], pending);
        pending = k;
        cur = !cur;
        done += k;
    }
    check += finish_round(fs[!cur], pending);
    int64_t t1 = cc_now();

    cc_executor_free(pool);
    long expect = n * (n + 1) / 2;
    if (check != expect || atomic_load(&sum) != expect) {
        fprintf(stderr, "checksum mismatch\n");
        return 1;
    }
    printf("threadpool_throughput: %.0f tasks/s\n", n / ((t1 - t0) / 1e9));
    return 0;
}
