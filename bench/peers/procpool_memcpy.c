/*
 * procpool_memcpy.c: the floor of figure procpool_bandwidth: what moving a
 * 64 MiB argument in and a 64 MiB result out costs at memory bandwidth,
 * with no process at all. Per task: one memcpy of 64 MiB from the caller's
 * argument into a resident buffer (the "worker's" side) and one back into
 * another resident buffer (the caller's result), N times. Every buffer is
 * touched before the clock starts: this is the warm copy, not the page
 * faults of fresh memory; and every buffer asks for transparent huge pages
 * (10-30 % faster copies here than into 4 KiB pages), as the best a pool
 * could do. Prints MiB moved per second (argument plus result: 128 MiB per
 * task), as procpool_bandwidth does.
 *
 * With `echo`, a third copy between the two: the one the benchmark's worker
 * function (pp_echo) makes itself, from its argument into its result. That is
 * the floor of the whole task; the two-copy line is the floor of the
 * transport alone.
 *
 * Usage: procpool_memcpy [N [echo]]   (default 100, two copies)
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* len bytes on 2 MiB boundaries, in transparent huge pages where the kernel
 * gives them (advice: nothing changes where THP is off). */
static char *buffer(size_t len)
{
    char *p = aligned_alloc((size_t)2 << 20, len);
    if (!p)
        abort();
    (void)madvise(p, len, MADV_HUGEPAGE);
    return p;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 100;
    bool echo = argc > 2 && strcmp(argv[2], "echo") == 0;
    size_t len = (size_t)64 << 20;
    char *arg = buffer(len), *mid = buffer(len), *out = buffer(len),
         *res = buffer(len);
    for (size_t i = 0; i < len; i++)
        arg[i] = (char)(i * 31 + (i >> 16));
    memset(mid, 0, len);
    memset(out, 0, len);
    memset(res, 0, len);
    /* The worker's result: its own copy of the argument, or the argument. */
    char *worker_result = echo ? out : mid;
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        memcpy(mid, arg, len);
        __asm__ volatile("" ::: "memory"); /* every copy happens */
        if (echo) {
            memcpy(out, mid, len);
            __asm__ volatile("" ::: "memory");
        }
        memcpy(res, worker_result, len);
        __asm__ volatile("" ::: "memory");
    }
    double t1 = now_s();
    int bad = memcmp(res, arg, len) != 0;
    free(arg);
    free(mid);
    free(out);
    free(res);
    if (bad) {
        fprintf(stderr, "checksum mismatch\n");
        return 1;
    }
    printf("procpool_bandwidth: %.0f MiB/s\n", 2.0 * 64 * n / (t1 - t0));
    return 0;
}
