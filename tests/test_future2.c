/*
 * test_future2.c: futures waited on by tasks of event loops (future.h,
 * loop.h), completed or cancelled from another thread: every waiter wakes,
 * every done callback runs once, and the last waiter may free the future
 * as soon as its wait returns.
 */
#include "testutil.h"

#include "loop_helpers.h"

#include <stdatomic.h>

enum { LOOPS = 2, TASKS = 3 };

struct cross_run {
    size_t n;               /* futures */
    cc_future **fs;         /* completed in order by the thread */
    atomic_int *calls;      /* done callbacks run, per future */
    atomic_int added;       /* callbacks added (all futures) */
    atomic_int odd;         /* any unexpected outcome */
};

struct cross_task {
    struct cross_run *run; /* shared */
    uint32_t seed;         /* its own random choices */
};

static void count_call(cc_future *f, void *arg)
{
    (void)f;
    atomic_fetch_add((atomic_int *)arg, 1);
}

/* Wait on each future in turn: add a callback, wait a short while or until
 * done, check it, drop the reference the test gave this task. */
static int cross_waiter(void *arg, void **result)
{
    struct cross_task *t = arg;
    struct cross_run *r = t->run;
    for (size_t i = 0; i < r->n; i++) {
        cc_future *f = r->fs[i];
        if (cc_future_add_done_callback(f, count_call, &r->calls[i]) == 0)
            atomic_fetch_add(&r->added, 1);
        else
            atomic_fetch_add(&r->odd, 1);
        if (rnd(&t->seed) % 2)
            cc_future_wait(f, cc_deadline_in(rnd(&t->seed) % 20000));
        int w = cc_future_wait(f, cc_deadline_in(60 * CC_SEC));
        int e = cc_future_error(f);
        if (w != 0 || (e != 0 && e != -ECANCELED))
            atomic_fetch_add(&r->odd, 1);
        cc_future_release(f);
    }
    return 0;
}

static int cross_loop_main(void *arg, void **result)
{
    struct cross_task *ts = arg;
    cc_future *fs[TASKS];
    for (int i = 0; i < TASKS; i++)
        if (cc_spawn(cross_waiter, &ts[i], &fs[i]) != 0)
            abort();
    int r = cc_futures_wait(fs, TASKS, CC_ALL_COMPLETED, CC_FOREVER);
    for (int i = 0; i < TASKS; i++)
        cc_future_release(fs[i]);
    return r == TASKS ? 0 : -EIO;
}

static void *cross_loop_thread(void *arg)
{
    return (void *)(intptr_t)cc_loop_run(cross_loop_main, arg, NULL);
}

/* Complete (or cancel) each future in turn, with a reference of our own
 * (future.h), now and then after a pause that lets the waiters park. */
static void cross_complete(struct cross_run *r)
{
    uint32_t seed = 2463534242u;
    for (size_t i = 0; i < r->n; i++) {
        cc_future *f = cc_future_retain(r->fs[i]);
        cc_future_release(r->fs[i]); /* the test's: the waiters hold theirs */
        if (rnd(&seed) % 4 == 0)
            cc_sleep(rnd(&seed) % 50 * CC_USEC);
        bool ok = rnd(&seed) % 3 ? cc_future_set_result(f, NULL) == 0
                                 : cc_future_cancel(f);
        if (!ok)
            atomic_fetch_add(&r->odd, 1);
        cc_future_release(f);
    }
}

static void test_loops_wait_on_thread_completions(void **state)
{
    (void)state;
    struct cross_run r = {.n = (size_t)cc_test_n(20000)};
    r.fs = calloc(r.n, sizeof *r.fs);
    r.calls = calloc(r.n, sizeof *r.calls);
    assert_non_null(r.fs);
    assert_non_null(r.calls);
    for (size_t i = 0; i < r.n; i++) {
        assert_int_equal(cc_future_new(&r.fs[i]), 0);
        for (int k = 0; k < LOOPS * TASKS; k++) /* one per waiter */
            cc_future_retain(r.fs[i]);
    }
    struct cross_task ts[LOOPS * TASKS];
    for (int k = 0; k < LOOPS * TASKS; k++)
        ts[k] = (struct cross_task){&r, 88172645u + (uint32_t)k * 7919u};
    cc_thread *th[LOOPS];
    for (int l = 0; l < LOOPS; l++)
        th[l] = start(cross_loop_thread, &ts[l * TASKS]);
    cross_complete(&r);
    for (int l = 0; l < LOOPS; l++)
        assert_null(join(th[l]));
    assert_int_equal(atomic_load(&r.odd), 0);
    assert_int_equal(atomic_load(&r.added), (int)r.n * LOOPS * TASKS);
    for (size_t i = 0; i < r.n; i++)
        if (atomic_load(&r.calls[i]) != LOOPS * TASKS)
            fail_msg("future %zu: %d callbacks ran", i,
                     atomic_load(&r.calls[i]));
    free(r.calls);
    free(r.fs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CC_TEST(test_loops_wait_on_thread_completions),
    };
    return CC_RUN_TESTS(tests);
}
