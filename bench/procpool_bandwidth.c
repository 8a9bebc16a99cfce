/*
 * procpool_bandwidth: a 64 MiB argument sent to a worker process, which
 * gives it back as its 64 MiB result, N times. Prints MiB moved per second
 * (argument plus result: 128 MiB per task), in the steady state: two
 * tasks first, untimed, so that the shared memory the worker uses is
 * faulted in (the first 64 MiB task costs 130-140 ms of fresh pages; the
 * second finds them warm), as the floor (peer memcpy) touches its buffers
 * before its clock starts. Peer: ProcessPoolExecutor with a 64 MiB bytes object echoed,
 * warmed up the same way.
 *
 * Usage: procpool_bandwidth [N]   (default 20)
 */
#include "procpool_bench.h"

/* One task: big echoed into out (emptied first, its room kept). */
static void echo(cc_executor *ex, const char *big, size_t len, cc_bytes *out)
{
    cc_future *f;
    out->len = 0;
    if (cc_process_pool_submit(ex, "pp_echo", big, len, out, &f) < 0 ||
        cc_future_result(f, CC_FOREVER, NULL) != 0 || out->len != len)
        abort();
    cc_future_release(f);
}

int main(int argc, char **argv)
{
    cc_worker_main_hook(argc, argv);
    long n = argc > 1 ? atol(argv[1]) : 20;
    size_t len = (size_t)64 << 20;
    char *big = malloc(len);
    if (!big)
        abort();
    for (size_t i = 0; i < len; i++)
        big[i] = (char)(i * 31 + (i >> 16));
    cc_executor *ex = bench_pool(1);
    cc_bytes out = {0};
    for (int i = 0; i < 2; i++) /* warm-up, untimed */
        echo(ex, big, len, &out);
    int64_t t0 = cc_now();
    for (long i = 0; i < n; i++)
        echo(ex, big, len, &out);
    int64_t t1 = cc_now();
    int bad = memcmp(out.data, big, len) != 0;
    cc_bytes_free(&out);
    free(big);
    cc_executor_free(ex);
    if (bad) {
        fprintf(stderr, "checksum mismatch\n");
        return 1;
    }
    printf("procpool_bandwidth: %.0f MiB/s\n",
           2.0 * 64 * n / ((t1 - t0) / 1e9));
    return 0;
}
