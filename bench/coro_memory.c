/*
 * coro_memory: resident memory per parked task: N tasks of one event loop
 * (include/concur/loop.h) each park on one cc_event, and the growth of the
 * process's RSS (VmRSS) while they wait is divided by N. Counts the stack
 * pages a task touched, its task record and its future.
 * Usage: bench_coro_memory [N tasks, default 100,000]
 */
#include <concur.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long n_tasks;  /* tasks to park */
static long parked;   /* tasks that reached their wait */
static long woke;     /* tasks that came back from it */
static cc_event go;   /* what they wait for */

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = atol(line + 6);
    if (f)
        fclose(f);
    return kib;
}

static int waiter(void *arg, void **result)
{
    (void)arg;
    (void)result;
    parked++;
    if (cc_event_wait(&go, CC_FOREVER) == 0)
        woke++;
    return 0;
}

static int bench_main(void *arg, void **result)
{
    long before = rss_kib();
    for (long i = 0; i < n_tasks; i++)
        if (cc_spawn(waiter, NULL, NULL) != 0)
            return -ENOMEM;
    while (parked < n_tasks)
        cc_yield();
    *(double *)arg = (double)(rss_kib() - before) * 1024.0 / (double)n_tasks;
    cc_event_set(&go);
    return 0;
}

int main(int argc, char **argv)
{
    n_tasks = argc > 1 ? atol(argv[1]) : 100000;
    cc_event_init(&go);
    double per_task = 0;
    int r = cc_loop_run(bench_main, &per_task, NULL);
    if (r != 0 || woke != n_tasks) {
        fprintf(stderr, "coro_memory: %s; %ld of %ld woke\n", cc_strerror(r),
                woke, n_tasks);
        return 1;
    }
    printf("coro_memory: %.0f bytes/task\n", per_task);
    return 0;
}
