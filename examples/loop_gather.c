/*
 * loop_gather.c: an event loop runs ten tasks that each sleep and return a
 * value, while a thread-pool future is awaited from a task without blocking
 * the others (Python: asyncio.run, asyncio.gather, loop.run_in_executor).
 * Exits 0 when every result arrived.
 */
#include <concur.h>

#include <stdio.h>

enum { TASKS = 10 };

/* A task: sleep i ms (parks the task, not the thread), return i * i. */
static int square_later(void *arg, void **result)
{
    intptr_t i = (intptr_t)arg;
    cc_sleep(i * CC_MSEC);
    *result = (void *)(i * i);
    return 0;
}

/* Runs on a pool thread: blocking is fine there. */
static int blocking_sum(void *arg, void **result)
{
    cc_sleep(20 * CC_MSEC);
    *result = (void *)(intptr_t)42;
    return 0;
}

static int main_task(void *arg, void **result)
{
    cc_executor *pool;
    if (cc_thread_pool_new(&pool, NULL) != 0)
        return -ENOMEM;
    cc_future *blocking, *tasks[TASKS];
    cc_executor_submit(pool, blocking_sum, NULL, &blocking);
    for (intptr_t i = 0; i < TASKS; i++)
        cc_spawn(square_later, (void *)i, &tasks[i]);
    /* Wait for all of them: this task parks, the others run. */
    cc_futures_wait(tasks, TASKS, CC_ALL_COMPLETED, CC_FOREVER);
    long sum = 0;
    for (int i = 0; i < TASKS; i++) {
        void *v;
        if (cc_future_result(tasks[i], CC_NOWAIT, &v) == 0)
            sum += (intptr_t)v;
        cc_future_release(tasks[i]);
    }
    void *b = NULL;
    cc_future_result(blocking, CC_FOREVER, &b);
    cc_future_release(blocking);
    cc_executor_free(pool);
    printf("sum of squares %ld, from the pool %ld\n", sum, (long)(intptr_t)b);
    *result = (void *)(intptr_t)(sum == 285 && (intptr_t)b == 42);
    return 0;
}

int main(void)
{
    void *ok = NULL;
    int r = cc_loop_run(main_task, NULL, &ok);
    if (r != 0)
        fprintf(stderr, "loop_gather: %s\n", cc_strerror(r));
    return r == 0 && ok ? 0 : 1;
}
