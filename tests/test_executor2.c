/*
 * test_executor2.c: more of the thread pool executor (executor.h), found by
 * review: pools made and freed by tasks while the process exits.
 */
#include "testutil.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

/* A hang-free exit ends well within this, even under TSan. */
#define EXIT_LIMIT (10 * CC_SEC)

static atomic_int task_started;

static int square(void *arg, void **result)
{
    intptr_t x = (intptr_t)arg;
    *result = (void *)(x * x);
    return 0;
}

/* Waits until the exit hook joins its pool, then uses a pool of its own
 * (nested parallelism): made, used and freed. */
static int use_inner_pool(void *arg, void **result)
{
    atomic_store(&task_started, 1);
    cc_sleep(100 * CC_MSEC); /* main is in exit() by now */
    cc_executor *inner;
    cc_thread_pool_options opts = {.max_workers = 1};
    if (cc_thread_pool_new(&inner, &opts) != 0)
        exit(2);
    void *r;
    if (cc_to_thread(inner, square, (void *)(intptr_t)3, &r) != 0 ||
        r != (void *)9)
        exit(3);
    cc_executor_free(inner);
    return 0;
}

static int exit_while_task_uses_inner_pool(void *arg)
{
    cc_executor *outer;
    cc_thread_pool_options opts = {.max_workers = 1};
    if (cc_thread_pool_new(&outer, &opts) != 0)
        return 4;
    if (cc_executor_submit(outer, use_inner_pool, NULL, NULL) != 0)
        return 5;
    while (!atomic_load(&task_started))
        cc_sleep(CC_MSEC);
    exit(0); /* the hook joins outer's worker, which makes a pool */
}

/*
 * A pool left open at exit() is joined (executor.h); its running task may
 * make and free a pool of its own meanwhile (Python's workers can): the
 * exit must not hang on that.
 */
static void task_makes_pool_while_process_exits(void **state)
{
    pid_t pid = cc_test_fork(exit_while_task_uses_inner_pool, NULL);
    assert_int_equal(cc_test_reap_within(pid, EXIT_LIMIT), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CC_TEST(task_makes_pool_while_process_exits),
    };
    return CC_RUN_TESTS(tests);
}
