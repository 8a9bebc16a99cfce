/*
 * test_loop_signal.c: signals delivered to tasks (cc_signal_wait, loop.h):
 * kill(getpid(), SIGUSR1) from a task and from a thread wakes a waiting task
 * while the loop goes on running others; a pending signal is taken at once;
 * deadlines; invalid sets; two waiters for one signal beside a cancelled
 * one.
 */
#include "testutil.h"

#include "loop_helpers.h"

#include <errno.h>
#include <signal.h>
#include <unistd.h>

/* The process-wide requirement: block the signals before any thread. */
static void block_usr(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    assert_int_equal(pthread_sigmask(SIG_BLOCK, &set, NULL), 0);
}

struct sig_run {
    int got;      /* what cc_signal_wait returned */
    long ticks;   /* a busy task's rounds while the waiter was parked */
    bool done;    /* the waiter returned */
    bool from_thread; /* send the signal from a thread, not a task */
};

static int waiter(void *arg, void **result)
{
    struct sig_run *r = arg;
    r->got = cc_signal_wait_one(SIGUSR1, cc_deadline_in(30 * CC_SEC));
    r->done = true;
    return 0;
}

static int ticker(void *arg, void **result)
{
    struct sig_run *r = arg;
    while (!r->done) {
        r->ticks++;
        cc_sleep(CC_MSEC);
    }
    return 0;
}

static void *kill_later(void *arg)
{
    cc_sleep(10 * CC_MSEC);
    if (kill(getpid(), SIGUSR1) != 0)
        abort();
    return NULL;
}

static int sig_main(void *arg, void **result)
{
    struct sig_run *r = arg;
    if (cc_spawn(waiter, r, NULL) || cc_spawn(ticker, r, NULL))
        abort();
    if (r->from_thread) {
        join(start(kill_later, NULL));
    } else {
        cc_sleep(10 * CC_MSEC);
        if (kill(getpid(), SIGUSR1) != 0)
            abort();
    }
    return 0;
}

static void test_signal_from_task(void **state)
{
    block_usr();
    struct sig_run r = {0};
    assert_int_equal(cc_loop_run(sig_main, &r, NULL), 0);
    assert_int_equal(r.got, SIGUSR1);
    assert_true(r.ticks > 0); /* the loop ran while the waiter was parked */
}

static void test_signal_from_thread(void **state)
{
    block_usr();
    struct sig_run r = {.from_thread = true};
    assert_int_equal(cc_loop_run(sig_main, &r, NULL), 0);
    assert_int_equal(r.got, SIGUSR1);
}

struct misc {
    int pending;    /* a signal sent before the wait */
    int timeout;    /* nothing sent */
    int64_t waited; /* how long the timeout took, ns */
    int empty;      /* an empty set */
    int bad;        /* an invalid signal number */
};

static int misc_main(void *arg, void **result)
{
    struct misc *m = arg;
    if (kill(getpid(), SIGUSR2) != 0)
        abort();
    m->pending = cc_signal_wait_one(SIGUSR2, CC_NOWAIT);
    int64_t t0 = cc_now();
    m->timeout = cc_signal_wait_one(SIGUSR2, cc_deadline_in(20 * CC_MSEC));
    m->waited = cc_now() - t0;
    sigset_t none;
    sigemptyset(&none);
    m->empty = cc_signal_wait(&none, CC_NOWAIT);
    m->bad = cc_signal_wait_one(100000, CC_NOWAIT);
    return 0;
}

static void test_signal_pending_timeout_invalid(void **state)
{
    block_usr();
    struct misc m = {0};
    assert_int_equal(cc_loop_run(misc_main, &m, NULL), 0);
    assert_int_equal(m.pending, SIGUSR2);
    assert_int_equal(m.timeout, -ETIMEDOUT);
    assert_true(m.waited >= 20 * CC_MSEC);
    assert_int_equal(m.empty, -EINVAL);
    assert_int_equal(m.bad, -EINVAL);
}

static void test_signal_outside_task(void **state)
{
    block_usr();
    assert_int_equal(kill(getpid(), SIGUSR1), 0);
    assert_int_equal(cc_signal_wait_one(SIGUSR1, cc_deadline_in(CC_SEC)),
                     SIGUSR1);
    assert_int_equal(cc_signal_wait_one(SIGUSR1, CC_NOWAIT), -ETIMEDOUT);
    /* Any deadline in the past never blocks, however far back: INT64_MIN
     * overflowed poll's timeout into 1000 s (UBSan: signed overflow). */
    int64_t t0 = cc_now();
    assert_int_equal(cc_signal_wait_one(SIGUSR1, INT64_MIN), -ETIMEDOUT);
    assert_int_equal(cc_signal_wait_one(SIGUSR1, -1), -ETIMEDOUT);
    assert_true(cc_now() - t0 < 60 * CC_SEC);
}

/* Two tasks wait for SIGUSR1 after a third, cancelled, gave up its wait:
 * the cancelled one returns -ECANCELED and takes nothing; one delivery goes
 * to one waiter, the next to the other. */
struct two {
    int got[2];     /* what each waiter returned */
    int cancelled;  /* the cancelled waiter's return */
    int after;      /* a wait with CC_NOWAIT once both were served */
};

static int two_waiter(void *arg, void **result)
{
    int *got = arg;
    *got = cc_signal_wait_one(SIGUSR1, cc_deadline_in(30 * CC_SEC));
    return 0;
}

static int two_main(void *arg, void **result)
{
    struct two *t = arg;
    cc_future *c, *w[2];
    if (cc_spawn(two_waiter, &t->cancelled, &c))
        abort();
    cc_sleep(5 * CC_MSEC);
    cc_task_cancel(c);
    cc_future_wait(c, CC_FOREVER);
    for (int i = 0; i < 2; i++)
        if (cc_spawn(two_waiter, &t->got[i], &w[i]))
            abort();
    for (int i = 0; i < 2; i++) {
        cc_sleep(5 * CC_MSEC);
        if (kill(getpid(), SIGUSR1) != 0)
            abort();
        /* one delivery, one waiter served (the next kill is another) */
        while (cc_future_done(w[0]) + cc_future_done(w[1]) < i + 1)
            cc_sleep(CC_MSEC);
    }
    t->after = cc_signal_wait_one(SIGUSR1, CC_NOWAIT);
    cc_future_release(c);
    cc_future_release(w[0]);
    cc_future_release(w[1]);
    return 0;
}

static void test_signal_two_waiters_and_cancel(void **state)
{
    block_usr();
    struct two t = {0};
    assert_int_equal(cc_loop_run(two_main, &t, NULL), 0);
    assert_int_equal(t.cancelled, -ECANCELED);
    assert_int_equal(t.got[0], SIGUSR1);
    assert_int_equal(t.got[1], SIGUSR1);
    assert_int_equal(t.after, -ETIMEDOUT); /* nothing left pending */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CC_TEST(test_signal_from_task),
        CC_TEST(test_signal_from_thread),
        CC_TEST(test_signal_pending_timeout_invalid),
        CC_TEST(test_signal_outside_task),
        CC_TEST(test_signal_two_waiters_and_cancel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
