/*
 * procpool_bench.h: what the procpool_* benchmarks share: the worker
 * functions (registered by name: the spawned workers are the benchmark
 * program itself) and a pool of 2 spawn workers, warmed up.
 */
#ifndef CONCUR_PROCPOOL_BENCH_H
#define CONCUR_PROCPOOL_BENCH_H

#include <concur.h>
#include <concur/procpool.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The argument (a u64) plus one. */
static int pp_inc(const void *arg, size_t len, cc_bytes *result)
{
    uint64_t v = 0;
    memcpy(&v, arg, len < 8 ? len : 8);
    v++;
    return cc_bytes_append(result, &v, sizeof v) == 0 ? 0 : 3;
}
CC_WORKER_FUNCTION(pp_inc)

/* The argument back. */
static int pp_echo(const void *arg, size_t len, cc_bytes *result)
{
    return cc_bytes_append(result, arg, len) == 0 ? 0 : 3;
}
CC_WORKER_FUNCTION(pp_echo)

/* Not inlined: the sequential run and the workers must execute the very
 * same machine code. Inlined, each copy of the loop got its own placement
 * (it moved with -fno-omit-frame-pointer), and on this machine's AMD EPYC
 * the workers' copy ran ~1.7x slower per task than main's (3.5 against 2.1
 * ms), so cpu_bound_speedup measured code placement, not the pool. Aligned
 * to a cache line: placed where its 20-byte loop straddles two 64-byte
 * lines, the loop ran 3.4 ms in some processes and 2.0 in others of the
 * same program (session 3), which is placement again, not the pool. */
static __attribute__((noinline, aligned(64))) uint64_t sum_squares(uint64_t n)
{
    uint64_t sum = 0;
    for (uint64_t i = 0; i < n; i++)
        sum += i * i;
    return sum;
}

/* Sum of i*i for i < n (a u64). */
static int pp_sum_squares(const void *arg, size_t len, cc_bytes *result)
{
    uint64_t n = 0;
    memcpy(&n, arg, len < 8 ? len : 8);
    uint64_t s = sum_squares(n);
    return cc_bytes_append(result, &s, sizeof s) == 0 ? 0 : 3;
}
CC_WORKER_FUNCTION(pp_sum_squares)

/* A pool of `workers` spawn workers, each started by a first task. */
static inline cc_executor *bench_pool(size_t workers)
{
    cc_executor *ex;
    cc_process_pool_options o = {.max_workers = workers};
    if (cc_process_pool_new(&ex, &o) < 0)
        abort();
    cc_future *f[16];
    for (size_t i = 0; i < workers && i < 16; i++)
        if (cc_process_pool_submit(ex, "pp_sum_squares", &(uint64_t){3000000},
                                   8, NULL, &f[i]) < 0)
            abort();
    for (size_t i = 0; i < workers && i < 16; i++) {
        if (cc_future_result(f[i], CC_FOREVER, NULL) != 0)
            abort();
        cc_future_release(f[i]);
    }
    return ex;
}

/* Map inputs 0..n-1 through pp_inc with chunksize; returns the checksum. */
struct bench_gen {
    uint64_t next, n, cur; /* the inputs; the current one */
};

static int bench_gen_next(void *state, const void **arg, size_t *len)
{
    struct bench_gen *g = state;
    if (g->next >= g->n)
        return 0;
    g->cur = g->next++;
    *arg = &g->cur;
    *len = sizeof g->cur;
    return 1;
}

static inline void bench_throughput(const char *figure, long n, size_t chunksize)
{
    cc_executor *ex = bench_pool(2);
    struct bench_gen g = {.n = (uint64_t)n};
    /* Python's imap keeps every input in flight; here 8192 inputs at most. */
    size_t chunks = 8192 / chunksize;
    cc_map_options mo = {.chunksize = chunksize,
                         .max_chunks = chunks < 8 ? 8 : chunks};
    cc_process_map *m;
    uint64_t sum = 0;
    cc_bytes out = {0};
    int64_t t0 = cc_now();
    if (cc_process_pool_map(&m, ex, "pp_inc", bench_gen_next, &g, &mo) < 0)
        abort();
    for (long i = 0; i < n; i++) {
        out.len = 0;
        uint64_t v;
        if (cc_process_map_next(m, CC_FOREVER, &out) != 0 || out.len != 8)
            abort();
        memcpy(&v, out.data, 8);
        sum += v;
    }
    int64_t t1 = cc_now();
    cc_process_map_free(m);
    cc_bytes_free(&out);
    cc_executor_free(ex);
    if (sum != (uint64_t)n * (uint64_t)(n + 1) / 2) {
        fprintf(stderr, "checksum mismatch\n");
        exit(1);
    }
    printf("%s: %.0f tasks/s\n", figure, n / ((t1 - t0) / 1e9));
}

#endif
