/*
 * cpu_bound_speedup: the classic CPU-bound job, sum of i*i for i < n for 20
 * values of n near 5,000,000, run sequentially and over a pool of 2 worker
 * processes (one task per value), N times each, the two in alternation (a
 * sequential round, then a pool round), so that a slower or faster spell of
 * this shared virtual machine weighs on both alike. Prints the sequential
 * rounds' total time over the pool rounds'. Peer: multiprocessing.Pool(2).map
 * over the same job, measured the same way.
 *
 * Usage: cpu_bound_speedup [N]   (default 10)
 */
#include "procpool_bench.h"

enum { VALUES = 20 };

static uint64_t job_sequential(const uint64_t *ns)
{
    uint64_t sum = 0;
    for (int i = 0; i < VALUES; i++)
        sum += sum_squares(ns[i]);
    return sum;
}

static uint64_t job_pool(cc_executor *ex, const uint64_t *ns)
{
    cc_future *f[VALUES];
    cc_bytes out[VALUES] = {{0}};
    uint64_t sum = 0;
    for (int i = 0; i < VALUES; i++)
        if (cc_process_pool_submit(ex, "pp_sum_squares", &ns[i], 8, &out[i],
                                   &f[i]) < 0)
            abort();
    for (int i = 0; i < VALUES; i++) {
        uint64_t v;
        if (cc_future_result(f[i], CC_FOREVER, NULL) != 0 || out[i].len != 8)
            abort();
        memcpy(&v, out[i].data, 8);
        sum += v;
        cc_bytes_free(&out[i]);
        cc_future_release(f[i]);
    }
    return sum;
}

int main(int argc, char **argv)
{
    cc_worker_main_hook(argc, argv);
    long n = argc > 1 ? atol(argv[1]) : 10;
    uint64_t ns[VALUES];
    for (int i = 0; i < VALUES; i++)
        ns[i] = 5000000 + (uint64_t)(rand() % 10000);
    cc_executor *ex = bench_pool(2);
    uint64_t a = 0, b = 0;
    int64_t seq = 0, pool = 0;
    for (long r = 0; r < n; r++) {
        int64_t t0 = cc_now();
        a += job_sequential(ns);
        int64_t t1 = cc_now();
        b += job_pool(ex, ns);
        int64_t t2 = cc_now();
        seq += t1 - t0;
        pool += t2 - t1;
    }
    cc_executor_free(ex);
    if (a != b) {
        fprintf(stderr, "checksum mismatch\n");
        return 1;
    }
    printf("cpu_bound_speedup: %.2f x\n", (double)seq / pool);
    return 0;
}
