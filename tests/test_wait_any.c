/*
 * test_wait_any.c: cc_wait_any (include/concur/loop.h): each kind of source
 * wakes it (future, fd, child process, timer), mixtures, the deadline, from
 * a thread and from a task (which parks: a ticker task runs meanwhile), and
 * a cancelled task.
 */
#include "testutil.h"

#include "loop_helpers.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

/* Sources: a future, a pipe, a child; a thread makes one of them ready. */
struct srcs {
    cc_future *f;  /* set by a thread */
    int p[2];      /* pipe: p[0] readable once written */
    cc_process *proc; /* sleep 30 unless killed */
    int which;     /* what the helper thread readies: 0 future, 1 fd, 2 proc */
};

static void srcs_open(struct srcs *s, int which)
{
    assert_int_equal(cc_future_new(&s->f), 0);
    assert_int_equal(pipe2(s->p, O_CLOEXEC | O_NONBLOCK), 0);
    char *argv[] = {"sleep", "30", NULL};
    assert_int_equal(cc_process_spawn(&s->proc, argv, NULL), 0);
    s->which = which;
}

static void srcs_close(struct srcs *s)
{
    cc_process_free(s->proc); /* kills and reaps */
    close(s->p[0]);
    close(s->p[1]);
    cc_future_release(s->f);
}

static void *ready_later(void *arg)
{
    struct srcs *s = arg;
    cc_sleep(20 * CC_MSEC);
    if (s->which == 0)
        cc_future_set_result(s->f, NULL);
    else if (s->which == 1 && write(s->p[1], "x", 1) != 1)
        abort();
    else if (s->which == 2)
        cc_process_kill(s->proc);
    return NULL;
}

/* The four kinds, the timer far away unless `at` says otherwise. */
static void fill(cc_waitable w[4], struct srcs *s, cc_deadline at)
{
    w[0] = (cc_waitable){.kind = CC_WAIT_FUTURE, .future = s->f};
    w[1] = (cc_waitable){.kind = CC_WAIT_FD, .fd = s->p[0], .events = POLLIN};
    w[2] = (cc_waitable){.kind = CC_WAIT_PROCESS, .process = s->proc};
    w[3] = (cc_waitable){.kind = CC_WAIT_TIMER, .at = at};
}

static int wait_for(struct srcs *s, int which)
{
    cc_waitable w[4];
    fill(w, s, cc_deadline_in(60 * CC_SEC));
    s->which = which;
    cc_thread *t = start(ready_later, s);
    int r = cc_wait_any(w, 4, cc_deadline_in(60 * CC_SEC));
    join(t);
    if (r >= 0 && !w[r].ready)
        return -1000; /* the flag must agree */
    return r;
}

static void test_each_kind_thread(void **state)
{
    for (int which = 0; which < 3; which++) {
        struct srcs s;
        srcs_open(&s, which);
        assert_int_equal(wait_for(&s, which), which);
        srcs_close(&s);
    }
}

static void test_timer_and_deadline(void **state)
{
    struct srcs s;
    srcs_open(&s, -1);
    cc_waitable w[4];
    int64_t t0 = cc_now();
    fill(w, &s, t0 + 20 * CC_MSEC);
    assert_int_equal(cc_wait_any(w, 4, cc_deadline_in(60 * CC_SEC)), 3);
    assert_true(cc_now() - t0 >= 20 * CC_MSEC);
    assert_int_equal(w[0].ready + w[1].ready + w[2].ready, 0);
    fill(w, &s, CC_FOREVER);
    t0 = cc_now();
    assert_int_equal(cc_wait_any(w, 4, t0 + 20 * CC_MSEC), -ETIMEDOUT);
    assert_true(cc_now() - t0 >= 20 * CC_MSEC);
    assert_int_equal(cc_wait_any(w, 4, CC_NOWAIT), -ETIMEDOUT);
    assert_int_equal(cc_wait_any(w, 2, CC_NOWAIT), -ETIMEDOUT); /* futures
                                                                 + fds */
    assert_int_equal(cc_wait_any(w, 1, t0 + 30 * CC_MSEC), -ETIMEDOUT);
    srcs_close(&s);
}

static void test_several_ready(void **state)
{
    struct srcs s;
    srcs_open(&s, -1);
    assert_int_equal(write(s.p[1], "x", 1), 1);
    cc_process_kill(s.proc);
    cc_waitable w[4];
    fill(w, &s, CC_FOREVER);
    /* The fd is ready at once; the child once the kill lands. */
    assert_int_equal(cc_wait_any(w, 4, cc_deadline_in(60 * CC_SEC)), 1);
    assert_int_equal(cc_wait_any(&w[2], 1, cc_deadline_in(60 * CC_SEC)), 0);
    assert_int_equal(cc_wait_any(w, 4, CC_NOWAIT), 1);
    assert_true(w[1].ready & POLLIN);
    assert_true(w[2].ready != 0);
    assert_int_equal(w[0].ready, 0);
    cc_future_set_result(s.f, NULL);
    assert_int_equal(cc_wait_any(w, 4, CC_NOWAIT), 0);
    /* A reaped child stays ready. */
    int code;
    assert_int_equal(cc_process_wait(s.proc, CC_NOWAIT, &code), 0);
    assert_int_equal(code, -SIGKILL);
    assert_int_equal(cc_wait_any(&w[2], 1, CC_NOWAIT), 0);
    srcs_close(&s);
}

static void test_invalid(void **state)
{
    cc_waitable w = {.kind = CC_WAIT_FUTURE};
    assert_int_equal(cc_wait_any(&w, 1, CC_NOWAIT), -EINVAL);
    w = (cc_waitable){.kind = CC_WAIT_FD, .fd = -1, .events = POLLIN};
    assert_int_equal(cc_wait_any(&w, 1, CC_NOWAIT), -EBADF);
    w = (cc_waitable){.kind = CC_WAIT_FD, .fd = 0, .events = 0};
    assert_int_equal(cc_wait_any(&w, 1, CC_NOWAIT), -EINVAL);
    assert_int_equal(cc_wait_any(NULL, 1, CC_NOWAIT), -EINVAL);
    assert_int_equal(cc_wait_any(NULL, 0, CC_NOWAIT), -ETIMEDOUT);
}

/* ---- from a task ------------------------------------------------------- */

struct ticker {
    volatile bool stop; /* set by the task under test (same thread) */
    long ticks;         /* 1 ms sleeps done */
};

static int tick(void *arg, void **result)
{
    struct ticker *t = arg;
    while (!t->stop) {
        cc_sleep(CC_MSEC);
        t->ticks++;
    }
    return 0;
}

struct task_run {
    int got[4];      /* cc_wait_any's result per kind readied */
    long ticks[4];   /* the ticker's sleeps during each wait */
    int timed_out;   /* the deadline in a task */
    int cancelled;   /* a cancelled waiter's result */
    struct srcs *cancel_srcs; /* what the cancelled task waits on */
};

static int wait_cancelled(void *arg, void **result)
{
    struct task_run *tr = arg;
    cc_waitable w[4];
    fill(w, tr->cancel_srcs, CC_FOREVER);
    tr->cancelled = cc_wait_any(w, 4, CC_FOREVER);
    return 0;
}

static int set_later(void *arg, void **result)
{
    cc_sleep(20 * CC_MSEC);
    cc_future_set_result(arg, NULL); /* from another task of the loop */
    return 0;
}

static void one_task_wait(struct task_run *tr, struct ticker *t, int which)
{
    struct srcs s;
    srcs_open(&s, which);
    cc_waitable w[4];
    fill(w, &s, which == 3 ? cc_deadline_in(20 * CC_MSEC) : CC_FOREVER);
    cc_thread *th = which == 1 || which == 2 ? start(ready_later, &s) : NULL;
    cc_future *setter = NULL;
    if (which == 0 && cc_spawn(set_later, s.f, &setter) != 0)
        abort();
    long before = t->ticks;
    tr->got[which] = cc_wait_any(w, 4, cc_deadline_in(60 * CC_SEC));
    tr->ticks[which] = t->ticks - before;
    if (th)
        join(th);
    if (setter) {
        cc_future_wait(setter, CC_FOREVER);
        cc_future_release(setter);
    }
    srcs_close(&s);
}

static int in_task(void *arg, void **result)
{
    struct task_run *tr = arg;
    struct ticker t = {0};
    cc_future *tf;
    if (cc_spawn(tick, &t, &tf) != 0)
        abort();
    for (int which = 0; which < 4; which++)
        one_task_wait(tr, &t, which);
    cc_waitable none = {.kind = CC_WAIT_TIMER, .at = CC_FOREVER};
    tr->timed_out = cc_wait_any(&none, 1, cc_deadline_in(10 * CC_MSEC));
    cc_future *f;
    if (cc_spawn(wait_cancelled, tr, &f) != 0)
        abort();
    cc_sleep(20 * CC_MSEC);
    cc_task_cancel(f);
    cc_future_wait(f, CC_FOREVER);
    cc_future_release(f);
    t.stop = true;
    cc_future_wait(tf, CC_FOREVER);
    cc_future_release(tf);
    return 0;
}

static void test_from_task(void **state)
{
    struct srcs cs;
    srcs_open(&cs, -1);
    struct task_run tr = {.cancelled = 1, .cancel_srcs = &cs};
    assert_int_equal(cc_loop_run(in_task, &tr, NULL), 0);
    for (int which = 0; which < 4; which++) {
        assert_int_equal(tr.got[which], which);
        assert_true(tr.ticks[which] > 0); /* the task parked */
    }
    assert_int_equal(tr.timed_out, -ETIMEDOUT);
    assert_int_equal(tr.cancelled, -ECANCELED);
    srcs_close(&cs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CC_TEST(test_each_kind_thread),
        CC_TEST(test_timer_and_deadline),
        CC_TEST(test_several_ready),
        CC_TEST(test_invalid),
        CC_TEST(test_from_task),
    };
    return CC_RUN_TESTS(tests);
}
