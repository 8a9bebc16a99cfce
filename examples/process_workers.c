/*
 * process_workers.c: CPU-bound work in worker processes, as Python's
 *
 *     def sum_squares(n): return sum(i * i for i in range(n))
 *     if __name__ == "__main__":
 *         ps = [Process(target=sum_squares, args=(n,)) for n in ns]  # spawn
 *
 * With the spawn start method a worker is this program run again: the
 * function is registered by name before main(), and main() hands control
 * to cc_worker_main_hook first (Python re-imports __main__ the same way).
 * Exits 0 when every worker's result equals the sequential one.
 */
#include <concur.h>

#include <stdio.h>
#include <string.h>

static uint64_t squares_below(uint64_t n)
{
    uint64_t sum = 0;
    for (uint64_t i = 0; i < n; i++)
        sum += i * i;
    return sum;
}

/* The worker: n (8 bytes) in, the sum (8 bytes) out. */
static int sum_squares(const void *arg, size_t len, cc_bytes *result)
{
    uint64_t n, sum;
    if (len != sizeof n)
        return 2;
    memcpy(&n, arg, sizeof n);
    sum = squares_below(n);
    return cc_bytes_append(result, &sum, sizeof sum) == 0 ? 0 : 1;
}
CC_WORKER_FUNCTION(sum_squares)

int main(int argc, char **argv)
{
    cc_worker_main_hook(argc, argv); /* in a worker: never returns */
    enum { N = 8 };
    cc_worker *w[N];
    uint64_t n[N];
    int ok = 1;
    for (int i = 0; i < N; i++) {
        n[i] = 1000000 + 1000 * (uint64_t)i;
        if (cc_worker_start(&w[i], "sum_squares", &n[i], sizeof n[i], NULL) < 0)
            return 1;
    }
    for (int i = 0; i < N; i++) {
        int code = -1;
        uint64_t sum = 0;
        cc_bytes out = {0};
        if (cc_worker_join(w[i], cc_deadline_in(60 * CC_SEC), &code) == 0 &&
            code == 0 && cc_worker_result(w[i], &out) == 0 &&
            out.len == sizeof sum)
            memcpy(&sum, out.data, sizeof sum);
        printf("n=%llu pid=%d sum=%llu\n", (unsigned long long)n[i],
               (int)cc_worker_pid(w[i]), (unsigned long long)sum);
        ok &= sum == squares_below(n[i]);
        cc_bytes_free(&out);
        cc_worker_free(w[i]);
    }
    return ok ? 0 : 1;
}
