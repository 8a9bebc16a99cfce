/*
 * procpool_roundtrip: submit one tiny task (a u64 plus one) to a pool of 2
 * worker processes and wait for its result, N times in a row. Prints
 * microseconds per round trip. Peer: ProcessPoolExecutor.submit().result().
 *
 * Usage: procpool_roundtrip [N]   (default 50,000)
 */
#include "procpool_bench.h"

int main(int argc, char **argv)
{
    cc_worker_main_hook(argc, argv);
    long n = argc > 1 ? atol(argv[1]) : 50000;
    cc_executor *ex = bench_pool(2);
    uint64_t x = 0;
    cc_bytes out = {0};
    int64_t t0 = cc_now();
    for (long i = 0; i < n; i++) {
        cc_future *f;
        out.len = 0;
        if (cc_process_pool_submit(ex, "pp_inc", &x, 8, &out, &f) < 0 ||
            cc_future_result(f, CC_FOREVER, NULL) != 0 || out.len != 8)
            abort();
        memcpy(&x, out.data, 8);
        cc_future_release(f);
    }
    int64_t t1 = cc_now();
    cc_bytes_free(&out);
    cc_executor_free(ex);
    if (x != (uint64_t)n) {
        fprintf(stderr, "checksum mismatch\n");
        return 1;
    }
    printf("procpool_roundtrip: %.2f us\n", (t1 - t0) / 1e3 / n);
    return 0;
}
