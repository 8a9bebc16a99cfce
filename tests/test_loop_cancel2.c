/*
 * test_loop_cancel2.c: more of cancellation, shield and deadline scopes
 * (include/concur/loop.h), for cases test_loop_cancel.c does not cover:
 * a loop that gets to a task late, and the order of the errors.
 */
#include "testutil.h"

#include "loop_helpers.h"

/* Run for `ns` without yielding: the loop gets to every other task late. */
static int hog(void *arg, void **result)
{
    int64_t ns = *(int64_t *)arg;
    int64_t t0 = cc_now();
    while (cc_now() - t0 < ns)
        ;
    return 0;
}

/* ---- a sleep whose scope ends first, resumed late ------------------------ */

struct late_run {
    int64_t hog_ns;    /* how long the hog holds the loop */
    int sleep;         /* the sleep in a scope that ends before it */
    int end;           /* the scope's end */
};

static int late_main(void *arg, void **result)
{
    struct late_run *l = arg;
    cc_spawn(hog, &l->hog_ns, NULL); /* runs once we park */
    cc_deadline_scope sc;
    cc_deadline_scope_begin(&sc, cc_deadline_in(5 * CC_MSEC));
    l->sleep = cc_sleep(10 * CC_MSEC);
    l->end = cc_deadline_scope_end(&sc);
    return 0;
}

/* The scope's deadline comes before the sleep's: -ETIMEDOUT (cc_sleep's
 * docstring, asyncio.timeout), even when the loop resumes the task only
 * after both have passed. */
static void test_sleep_in_scope_resumed_late(void **state)
{
    (void)state;
    struct late_run l = {.hog_ns = 30 * CC_MSEC};
    assert_int_equal(cc_loop_run(late_main, &l, NULL), 0);
    assert_int_equal(l.sleep, -ETIMEDOUT);
    assert_int_equal(l.end, -ETIMEDOUT);
}

/* ---- which error wins: shields inside scopes, cancel in an ended scope ---- */

struct order_run {
    cc_event never;      /* nobody sets it */
    int64_t hog_ns;      /* how long main holds the loop after a cancel */
    int shielded;        /* a wait in a shield in a scope, cancelled */
    int64_t shielded_ns; /* how long it took */
    int after;           /* the wait after the shield, still in the scope */
    int both;            /* a wait cancelled and past its scope at resume */
    int both_end;        /* that scope's end */
};

static int shield_in_scope(void *arg, void **result)
{
    struct order_run *o = arg;
    cc_deadline_scope sc;
    int64_t t0 = cc_now();
    cc_deadline_scope_begin(&sc, cc_deadline_in(5 * CC_MSEC));
    cc_shield_begin(); /* cancellation waits; the scope still applies */
    o->shielded = cc_event_wait(&o->never, CC_FOREVER);
    o->shielded_ns = cc_now() - t0;
    cc_shield_end();
    o->after = cc_event_wait(&o->never, CC_FOREVER);
    cc_deadline_scope_end(&sc);
    return 0;
}

static int ended_scope(void *arg, void **result)
{
    struct order_run *o = arg;
    cc_deadline_scope sc;
    cc_deadline_scope_begin(&sc, cc_deadline_in(2 * CC_MSEC));
    o->both = cc_event_wait(&o->never, CC_FOREVER);
    o->both_end = cc_deadline_scope_end(&sc);
    return 0;
}

static int order_main(void *arg, void **result)
{
    struct order_run *o = arg;
    cc_future *f;
    cc_spawn(shield_in_scope, o, &f);
    cc_yield(); /* it parks, shielded */
    cc_task_cancel(f);
    cc_future_wait(f, CC_FOREVER);
    cc_future_release(f);
    cc_spawn(ended_scope, o, &f);
    cc_yield(); /* it parks until its scope ends */
    cc_task_cancel(f);
    hog(&o->hog_ns, NULL); /* its scope ends too before it resumes */
    cc_future_wait(f, CC_FOREVER);
    cc_future_release(f);
    return 0;
}

/* A shield holds off cancellation, not a deadline scope (loop.h): the
 * shielded wait times out with its scope, the next one is cancelled. A
 * cancellation wins over a scope's deadline when both have come (an
 * explicit cancel is not a timeout, as in asyncio.timeout), while the
 * scope's end still reports its deadline. */
static void test_shield_in_scope_and_cancel_in_ended_scope(void **state)
{
    (void)state;
    struct order_run o = {.hog_ns = 10 * CC_MSEC};
    cc_event_init(&o.never);
    assert_int_equal(cc_loop_run(order_main, &o, NULL), 0);
    assert_int_equal(o.shielded, -ETIMEDOUT);
    assert_true(o.shielded_ns >= 5 * CC_MSEC);
    assert_int_equal(o.after, -ECANCELED);
    assert_int_equal(o.both, -ECANCELED);
    assert_int_equal(o.both_end, -ETIMEDOUT);
    cc_event_destroy(&o.never);
}

/* ---- a task cancelled before it starts ----------------------------------- */

struct unstarted_run {
    bool ran;          /* the task's function ran */
    int calls;         /* its done callbacks that ran */
    int calls_at_cancel; /* of them, by the time cc_task_cancel returned */
    bool order_ok;     /* they ran in the order added */
    int cancel;        /* cc_task_cancel */
    int wait;          /* a join after it */
    int result;        /* its outcome */
    int late_calls;    /* a callback added once it is done: at once */
};

static int mark_ran(void *arg, void **result)
{
    ((struct unstarted_run *)arg)->ran = true;
    return 0;
}

static void first_cb(cc_future *f, void *arg)
{
    struct unstarted_run *u = arg;
    u->order_ok = u->calls++ == 0 && cc_future_cancelled(f);
}

static void second_cb(cc_future *f, void *arg)
{
    struct unstarted_run *u = arg;
    u->order_ok &= u->calls++ == 1;
}

static void late_cb(cc_future *f, void *arg)
{
    ((struct unstarted_run *)arg)->late_calls++;
}

static int unstarted_main(void *arg, void **result)
{
    struct unstarted_run *u = arg;
    cc_future *f;
    if (cc_spawn(mark_ran, u, &f) != 0 ||
        cc_future_add_done_callback(f, first_cb, u) != 0 ||
        cc_future_add_done_callback(f, second_cb, u) != 0)
        abort();
    u->cancel = cc_task_cancel(f);
    u->calls_at_cancel = u->calls;
    u->wait = cc_future_wait(f, cc_deadline_in(30 * CC_SEC));
    u->result = cc_future_result(f, CC_NOWAIT, NULL);
    cc_future_add_done_callback(f, late_cb, u);
    cc_yield(); /* the loop gets to the task: it must not run */
    cc_future_release(f);
    return 0;
}

/* A task cancelled before it starts never runs; its future is cancelled at
 * once and its done callbacks run then, once each, in order (as asyncio's
 * Task.cancel on a task not started, and Future.add_done_callback). */
static void test_unstarted_cancel_runs_callbacks(void **state)
{
    (void)state;
    struct unstarted_run u = {0};
    assert_int_equal(cc_loop_run(unstarted_main, &u, NULL), 0);
    assert_false(u.ran);
    assert_int_equal(u.cancel, 0);
    assert_int_equal(u.calls_at_cancel, 2);
    assert_int_equal(u.calls, 2);
    assert_true(u.order_ok);
    assert_int_equal(u.wait, 0);
    assert_int_equal(u.result, -ECANCELED);
    assert_int_equal(u.late_calls, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CC_TEST(test_sleep_in_scope_resumed_late),
        CC_TEST(test_shield_in_scope_and_cancel_in_ended_scope),
        CC_TEST(test_unstarted_cancel_runs_callbacks),
    };
    return CC_RUN_TESTS(tests);
}
