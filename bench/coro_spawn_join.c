/*
 * coro_spawn_join: spawn N no-op tasks on an event loop (include/concur/loop.h),
 * then join each through its future: the cost of a task's whole life (stack
 * from the cache, future, first run, completion, join, release).
 * Peer: Go's `go f()` with a sync.WaitGroup.
 * Usage: bench_coro_spawn_join [N tasks, default 1,000,000]
 */
#include <concur.h>

#include <stdio.h>
#include <stdlib.h>

enum { BATCH = 50 }; /* tasks alive at once: within the stack cache (64) */

static long n_tasks; /* tasks to spawn */
static long ran;     /* tasks that ran */

static int noop(void *arg, void **result)
{
    (void)arg;
    (void)result;
    ran++;
    return 0;
}

static int bench_main(void *arg, void **result)
{
    static cc_future *fs[BATCH];
    int64_t t0 = cc_now();
    for (long done = 0; done < n_tasks; done += BATCH) {
        long k = n_tasks - done < BATCH ? n_tasks - done : BATCH;
        for (long i = 0; i < k; i++)
            if (cc_spawn(noop, NULL, &fs[i]))
                return -ENOMEM;
        for (long i = 0; i < k; i++) {
            cc_future_wait(fs[i], CC_FOREVER);
            cc_future_release(fs[i]);
        }
    }
    *(int64_t *)arg = cc_now() - t0;
    return 0;
}

int main(int argc, char **argv)
{
    n_tasks = argc > 1 ? atol(argv[1]) : 1000000;
    int64_t ns = 0;
    if (cc_loop_run(bench_main, &ns, NULL) != 0)
        return 1;
    if (ran != n_tasks) {
        fprintf(stderr, "coro_spawn_join: checksum: %ld ran, wanted %ld\n",
                ran, n_tasks);
        return 1;
    }
    printf("coro_spawn_join: %.1f ns/task\n", (double)ns / (double)n_tasks);
    return 0;
}
