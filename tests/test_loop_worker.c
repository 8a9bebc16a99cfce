/*
 * test_loop_worker.c: worker processes (include/concur/process.h) waited on
 * inside event-loop tasks: cc_worker_join parks the task instead of blocking
 * the loop thread, under spawn and under the forkserver (whose exchanges
 * with its helper park too), a cancellation ends a join, and a cancelled
 * task can still free a running worker. Outside a task test_process_worker
 * covers them.
 *
 * main() calls cc_worker_main_hook first: a spawned worker is this program.
 */
#include "testutil.h"

#include "loop_helpers.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Sleep 200 ms, then return 7. */
static int nap_then_7(const void *arg, size_t len, cc_bytes *result)
{
    (void)arg, (void)len, (void)result;
    struct timespec ts = {0, 200 * 1000 * 1000};
    while (nanosleep(&ts, &ts) != 0)
        ;
    return 7;
}
CC_WORKER_FUNCTION(nap_then_7)

static int sleep_forever(const void *arg, size_t len, cc_bytes *result)
{
    (void)arg, (void)len, (void)result;
    for (;;)
        pause();
    return 0;
}
CC_WORKER_FUNCTION(sleep_forever)

/* A task counting 1 ms sleeps until told to stop. */
struct ticker {
    bool stop;  /* set by another task of the same loop */
    long ticks; /* sleeps done */
};

static int tick(void *arg, void **result)
{
    (void)result;
    struct ticker *t = arg;
    while (!t->stop) {
        cc_sleep(CC_MSEC);
        t->ticks++;
    }
    return 0;
}

/* ---- a join does not stop other tasks ------------------------------------- */

struct join_run {
    cc_start_method method; /* how the worker starts */
    int start_r;            /* cc_worker_start's result */
    int join_r;             /* cc_worker_join's result */
    int code;               /* the worker's exit code */
    long ticks;             /* the ticker's sleeps during the join */
};

static int join_in_task(void *arg, void **result)
{
    (void)result;
    struct join_run *j = arg;
    struct ticker t = {0};
    cc_future *f;
    if (cc_spawn(tick, &t, &f))
        abort();
    cc_worker_options o = {.start_method = j->method};
    cc_worker *w;
    j->start_r = cc_worker_start(&w, "nap_then_7", NULL, 0, &o);
    if (j->start_r == 0) {
        long before = t.ticks;
        j->join_r = cc_worker_join(w, cc_deadline_in(30 * CC_SEC), &j->code);
        j->ticks = t.ticks - before;
        cc_worker_free(w);
    }
    t.stop = true;
    if (cc_future_wait(f, cc_deadline_in(30 * CC_SEC)))
        abort();
    cc_future_release(f);
    return 0;
}

static void check_join_parks(cc_start_method m)
{
    struct join_run j = {.method = m, .start_r = 1, .join_r = 1};
    assert_int_equal(cc_loop_run(join_in_task, &j, NULL), 0);
    assert_int_equal(j.start_r, 0);
    assert_int_equal(j.join_r, 0);
    assert_int_equal(j.code, 7);
    assert_true(j.ticks > 0); /* a blocking join would have starved it */
}

static void spawn_join_parks_the_task(void **state)
{
    (void)state;
    check_join_parks(CC_START_SPAWN);
}

static void forkserver_join_parks_the_task(void **state)
{
    (void)state;
    check_join_parks(CC_START_FORKSERVER);
    check_join_parks(CC_START_FORKSERVER); /* the server made by the first */
    cc_forkserver_stop();
}

/* ---- cancellation ---------------------------------------------------------- */

struct cancel_run {
    cc_worker *w;   /* a worker sleeping forever */
    int join_r;     /* the cancelled join's result */
    bool freed;     /* the cancelled task freed it */
};

static int cancelled_join(void *arg, void **result)
{
    (void)result;
    struct cancel_run *c = arg;
    c->join_r = cc_worker_join(c->w, cc_deadline_in(30 * CC_SEC), NULL);
    /* Still cancelled: the free must kill and wait it out all the same. */
    cc_worker_free(c->w);
    c->freed = true;
    return 0;
}

static int cancel_main(void *arg, void **result)
{
    (void)result;
    cc_future *t;
    if (cc_spawn(cancelled_join, arg, &t))
        abort();
    cc_sleep(20 * CC_MSEC); /* it parks in the join */
    cc_task_cancel(t);
    if (cc_future_wait(t, cc_deadline_in(30 * CC_SEC)))
        abort();
    cc_future_release(t);
    return 0;
}

static void check_cancel(cc_start_method m)
{
    struct cancel_run c = {.join_r = 1};
    cc_worker_options o = {.start_method = m};
    assert_int_equal(cc_worker_start(&c.w, "sleep_forever", NULL, 0, &o), 0);
    pid_t pid = cc_worker_pid(c.w);
    assert_int_equal(cc_loop_run(cancel_main, &c, NULL), 0);
    assert_int_equal(c.join_r, -ECANCELED);
    assert_true(c.freed);
    assert_true(kill(pid, 0) < 0); /* killed and reaped */
}

static void a_cancelled_join_fails_and_free_still_reaps(void **state)
{
    (void)state;
    check_cancel(CC_START_SPAWN);
    check_cancel(CC_START_FORKSERVER);
    cc_forkserver_stop();
}

int main(int argc, char **argv)
{
    cc_worker_main_hook(argc, argv); /* a spawned worker never returns */
    const struct CMUnitTest tests[] = {
        CC_TEST(spawn_join_parks_the_task),
        CC_TEST(forkserver_join_parks_the_task),
        CC_TEST(a_cancelled_join_fails_and_free_still_reaps),
    };
    return CC_RUN_TESTS(tests);
}
