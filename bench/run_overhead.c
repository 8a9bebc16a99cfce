/*
 * run_overhead.c: figure run_overhead: the cost per job of
 * `concur run -j2 true` over N inputs on stdin (output grouping on, as always).
 * Usage: bench_run_overhead [N [CONCUR]]   (N default 2000; CONCUR default
 * ../concur beside this program). Prints `run_overhead: X ms/job`.
 * Checks: the run exits 0, and an untimed run of `false` over 50 inputs
 * exits 50 (every job ran and was counted).
 */
#include <concur.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void default_binary(char *path, size_t size)
{
    ssize_t n = readlink("/proc/self/exe", path, size - 16);
    path[n > 0 ? n : 0] = '\0';
    char *slash = strrchr(path, '/');
    if (slash)
        *slash = '\0';
    slash = strrchr(path, '/');
    strcpy(slash ? slash + 1 : path, "concur");
}

/* Run `concur run -j2 CMD` over the lines 1..n; its exit status. */
static int run(const char *concur, const char *cmd, long n)
{
    size_t len = 0, cap = (size_t)n * 12 + 1;
    char *input = malloc(cap);
    for (long i = 1; i <= n; i++)
        len += (size_t)snprintf(input + len, cap - len, "%ld\n", i);
    char *argv[] = {(char *)concur, "run", "-j2", (char *)cmd, NULL};
    cc_run_options o = {.input = input, .input_len = len};
    cc_completed_process res;
    int r = cc_run(argv, &o, CC_FOREVER, &res);
    int code = r == 0 ? res.returncode : -1;
    cc_completed_process_free(&res);
    free(input);
    return code;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 2000;
    char concur[PATH_MAX];
    if (argc > 2)
        snprintf(concur, sizeof concur, "%s", argv[2]);
    else
        default_binary(concur, sizeof concur);
    if (run(concur, "false", 50) != 50) {
        fprintf(stderr, "run_overhead: %s does not count failed jobs\n", concur);
        return 1;
    }
    int64_t t0 = cc_now();
    int code = run(concur, "true", n);
    int64_t t1 = cc_now();
    if (code != 0) {
        fprintf(stderr, "run_overhead: %s exited %d\n", concur, code);
        return 1;
    }
    printf("run_overhead: %.3f ms/job\n", (double)(t1 - t0) / 1e6 / (double)n);
    return 0;
}
