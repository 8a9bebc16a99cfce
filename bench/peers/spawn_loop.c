/*
 * spawn_loop.c: the floor of figure run_overhead: N sequential posix_spawn +
 * waitpid of `/bin/true I` (I = 1..N), nothing else (no output capture, no
 * shell). The argument is there because `concur run true`, `xargs -n1 true` and
 * `parallel true` all pass one, and coreutils' true sets up its locale (for
 * --help) when it has exactly one argument: about 0.1 ms more per run here.
 * Usage: spawn_loop [N]   (default 2000). Prints `run_overhead: X ms/job`.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 2000;
    char num[24];
    char *args[] = {"/bin/true", num, NULL};
    long ok = 0;
    double t0 = now_ms();
    for (long i = 0; i < n; i++) {
        pid_t pid;
        int status;
        snprintf(num, sizeof num, "%ld", i + 1);
        if (posix_spawn(&pid, args[0], NULL, NULL, args, environ) != 0)
            return 1;
        if (waitpid(pid, &status, 0) == pid && WIFEXITED(status) && !WEXITSTATUS(status))
            ok++;
    }
    double t1 = now_ms();
    if (ok != n) {
        fprintf(stderr, "spawn_loop: %ld of %ld runs failed\n", n - ok, n);
        return 1;
    }
    printf("run_overhead: %.3f ms/job\n", (t1 - t0) / (double)n);
    return 0;
}
