/*
 * procpool_memcpy.c: the floor of figure procpool_bandwidth: what moving a
 * 64 MiB argument in and a 64 MiB result out costs at memory bandwidth,
 * with no process at all. Per task: one memcpy of 64 MiB from the caller's
 * argument into a resident buffer (the "worker's" side) and one back into
 * another resident buffer (the caller's result), N times. Every buffer is
 * touched before the clock starts: this is the warm copy, not the page
 * faults of fresh memory. Prints MiB moved per second (argument plus
 * result: 128 MiB per task), as procpool_bandwidth does.
 *
 * Usage: procpool_memcpy [N]   (default 100)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 100;
    size_t len = (size_t)64 << 20;
    char *arg = malloc(len), *mid = malloc(len), *res = malloc(len);
    if (!arg || !mid || !res)
        abort();
    for (size_t i = 0; i < len; i++)
        arg[i] = (char)(i * 31 + (i >> 16));
    memset(mid, 0, len);
    memset(res, 0, len);
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        memcpy(mid, arg, len);
        __asm__ volatile("" ::: "memory"); /* both copies happen */
        memcpy(res, mid, len);
        __asm__ volatile("" ::: "memory");
    }
    double t1 = now_s();
    int bad = memcmp(res, arg, len) != 0;
    free(arg);
    free(mid);
    free(res);
    if (bad) {
        fprintf(stderr, "checksum mismatch\n");
        return 1;
    }
    printf("procpool_bandwidth: %.0f MiB/s\n", 2.0 * 64 * n / (t1 - t0));
    return 0;
}
