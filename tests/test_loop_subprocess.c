/*
 * test_loop_subprocess.c: subprocess waits inside event-loop tasks
 * (include/concur/subprocess.h, loop.h): cc_process_wait, communicate and
 * cc_run park the task instead of blocking the loop thread, and
 * cancellation reaches them. Outside a task test_subprocess covers them.
 */
#include "testutil.h"

#include "loop_helpers.h"

#include <signal.h>
#include <string.h>

/* A task counting 1 ms sleeps until told to stop. */
struct ticker {
    volatile bool stop; /* set by the task under test (same thread) */
    long ticks;         /* sleeps done */
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

static cc_future *start_ticker(struct ticker *t)
{
    cc_future *f;
    if (cc_spawn(tick, t, &f) != 0)
        abort();
    return f;
}

static void stop_ticker(struct ticker *t, cc_future *f)
{
    t->stop = true;
    if (cc_future_wait(f, cc_deadline_in(60 * CC_SEC)) != 0)
        abort();
    cc_future_release(f);
}

/* ---- a wait does not stop other tasks ---------------------------------- */

struct wait_run {
    int r;         /* cc_process_wait's result */
    int code;      /* the child's returncode */
    long ticks;    /* the ticker's sleeps during the wait */
};

static int wait_sleep(void *arg, void **result)
{
    struct wait_run *w = arg;
    struct ticker t = {0};
    cc_future *f = start_ticker(&t);
    char *argv[] = {"sleep", "0.2", NULL};
    cc_process *p;
    if (cc_process_spawn(&p, argv, NULL) != 0)
        abort();
    long before = t.ticks;
    w->r = cc_process_wait(p, cc_deadline_in(60 * CC_SEC), &w->code);
    w->ticks = t.ticks - before;
    stop_ticker(&t, f);
    cc_process_free(p);
    return 0;
}

static void test_wait_parks(void **state)
{
    struct wait_run w = {.r = 1, .code = -1};
    assert_int_equal(cc_loop_run(wait_sleep, &w, NULL), 0);
    assert_int_equal(w.r, 0);
    assert_int_equal(w.code, 0);
    assert_true(w.ticks > 0); /* a blocking wait would have starved it */
}

/* ---- communicate 10 MiB each way ---------------------------------------- */

#define BIG (10u << 20)

struct comm_run {
    char *in;      /* BIG bytes of pattern */
    cc_bytes out;  /* what cat gave back */
    int r;         /* communicate's result */
    long ticks;    /* the ticker's sleeps meanwhile */
};

static int comm_big(void *arg, void **result)
{
    struct comm_run *c = arg;
    struct ticker t = {0};
    cc_future *f = start_ticker(&t);
    char *argv[] = {"cat", NULL};
    cc_spawn_options o = {.stdin_io = {CC_STDIO_PIPE},
                          .stdout_io = {CC_STDIO_PIPE}};
    cc_process *p;
    if (cc_process_spawn(&p, argv, &o) != 0)
        abort();
    c->r = cc_process_communicate(p, c->in, BIG, cc_deadline_in(60 * CC_SEC),
                                  &c->out, NULL);
    c->ticks = t.ticks;
    stop_ticker(&t, f);
    cc_process_free(p);
    return 0;
}

static void test_communicate_big(void **state)
{
    struct comm_run c = {.r = 1};
    c.in = malloc(BIG);
    assert_non_null(c.in);
    for (size_t i = 0; i < BIG; i++)
        c.in[i] = (char)(i * 7 + (i >> 12));
    assert_int_equal(cc_loop_run(comm_big, &c, NULL), 0);
    assert_int_equal(c.r, 0);
    assert_int_equal(c.out.len, BIG);
    assert_memory_equal(c.out.data, c.in, BIG);
    cc_bytes_free(&c.out);
    free(c.in);
}

/* ---- cc_run in a task --------------------------------------------------- */

struct run_run {
    int r;                     /* cc_run's result */
    cc_completed_process res;  /* its outcome */
};

static int run_echo(void *arg, void **result)
{
    struct run_run *rr = arg;
    char *argv[] = {"sh", "-c", "sleep 0.05; echo hi; echo err >&2", NULL};
    cc_run_options o = {.capture_output = true};
    rr->r = cc_run(argv, &o, cc_deadline_in(60 * CC_SEC), &rr->res);
    return 0;
}

static void test_run_in_task(void **state)
{
    struct run_run rr = {.r = 1};
    assert_int_equal(cc_loop_run(run_echo, &rr, NULL), 0);
    assert_int_equal(rr.r, 0);
    assert_int_equal(rr.res.returncode, 0);
    assert_string_equal(rr.res.out.data, "hi\n");
    assert_string_equal(rr.res.err.data, "err\n");
    cc_completed_process_free(&rr.res);
}

/* ---- a deadline already past ------------------------------------------- */

/* CC_NOWAIT never blocks, but still takes what is ready, as in a thread: the
 * child has exited and its output waits in the pipe, so one communicate
 * reads it, sees EOF and reaps. */
struct nowait_run {
    int r;        /* communicate's result */
    cc_bytes out; /* what it read */
};

static int comm_nowait(void *arg, void **result)
{
    struct nowait_run *nw = arg;
    char *argv[] = {"echo", "hi", NULL};
    cc_spawn_options o = {.stdout_io = {CC_STDIO_PIPE}};
    cc_process *p;
    if (cc_process_spawn(&p, argv, &o) != 0 ||
        cc_process_wait(p, cc_deadline_in(60 * CC_SEC), NULL) != 0)
        abort();
    nw->r = cc_process_communicate(p, NULL, 0, CC_NOWAIT, &nw->out, NULL);
    cc_process_free(p);
    return 0;
}

static void test_communicate_nowait_takes_what_is_ready(void **state)
{
    struct nowait_run nw = {.r = 1};
    assert_int_equal(cc_loop_run(comm_nowait, &nw, NULL), 0);
    assert_int_equal(nw.r, 0);
    assert_non_null(nw.out.data);
    assert_string_equal(nw.out.data, "hi\n");
    cc_bytes_free(&nw.out);
}

/* ---- cancellation -------------------------------------------------------- */

struct cancel_run {
    cc_process *p; /* sleep 30 */
    int r;         /* the cancelled task's cc_process_wait */
    int killed;    /* cc_process_kill afterwards */
    int reaped;    /* cc_process_wait after the kill */
    int code;      /* its returncode */
};

static int wait_forever(void *arg, void **result)
{
    struct cancel_run *c = arg;
    c->r = cc_process_wait(c->p, CC_FOREVER, NULL);
    return 0;
}

static int cancel_wait(void *arg, void **result)
{
    struct cancel_run *c = arg;
    char *argv[] = {"sleep", "30", NULL};
    if (cc_process_spawn(&c->p, argv, NULL) != 0)
        abort();
    cc_future *f;
    if (cc_spawn(wait_forever, c, &f) != 0)
        abort();
    cc_sleep(20 * CC_MSEC); /* it is parked in the wait by now */
    cc_task_cancel(f);
    cc_future_wait(f, cc_deadline_in(60 * CC_SEC));
    cc_future_release(f);
    c->killed = cc_process_kill(c->p);
    c->reaped = cc_process_wait(c->p, cc_deadline_in(60 * CC_SEC), &c->code);
    cc_process_free(c->p);
    return 0;
}

static void test_cancel_wait(void **state)
{
    struct cancel_run c = {.r = 1, .killed = 1, .reaped = 1};
    assert_int_equal(cc_loop_run(cancel_wait, &c, NULL), 0);
    assert_int_equal(c.r, -ECANCELED);
    assert_int_equal(c.killed, 0);
    assert_int_equal(c.reaped, 0);
    assert_int_equal(c.code, -SIGKILL);
}

/* ---- two communicates interleaved on one loop -------------------------- */

/* SIGPIPE is blocked per thread, and a loop's tasks share the thread: the
 * first communicate to finish must not unblock it under another that is
 * still writing (its EPIPE would then kill the process), and the last must
 * leave the mask as it was. */

/* One side: a `sleep 30` child and a communicate with it. */
struct comm_side {
    cc_spawn_options o; /* which of its stdio are pipes */
    const char *input;  /* communicate's input, or NULL */
    size_t len;         /* its bytes */
    cc_process *p;      /* the child, set just before communicate */
    int r;              /* communicate's result */
};

#define PAIR_INPUT (1u << 20)

static int comm_sleeper(void *arg, void **result)
{
    struct comm_side *s = arg;
    char *argv[] = {"sleep", "30", NULL};
    if (cc_process_spawn(&s->p, argv, &s->o) != 0)
        abort();
    s->r = cc_process_communicate(s->p, s->input, s->len, CC_FOREVER, NULL,
                                  NULL);
    return 0;
}

/* A reads its child's stdout; B writes more than a pipe holds to a child
 * that never reads. */
struct pipe_pair {
    struct comm_side a, b; /* the two communicates */
    int code;              /* B's child's returncode */
};

static int comm_pair(void *arg, void **result)
{
    struct pipe_pair *pp = arg;
    cc_future *a, *b;
    if (cc_spawn(comm_sleeper, &pp->a, &a) != 0 ||
        cc_spawn(comm_sleeper, &pp->b, &b) != 0)
        abort();
    while (!pp->a.p || !pp->b.p) /* both park in communicate */
        cc_sleep(CC_MSEC);
    cc_process_kill(pp->a.p); /* A ends first... */
    if (cc_future_wait(a, cc_deadline_in(60 * CC_SEC)) != 0)
        abort();
    cc_process_kill(pp->b.p); /* ... then B's write fails with EPIPE */
    if (cc_future_wait(b, cc_deadline_in(60 * CC_SEC)) != 0)
        abort();
    cc_process_poll(pp->b.p, &pp->code);
    cc_future_release(a);
    cc_future_release(b);
    cc_process_free(pp->a.p);
    cc_process_free(pp->b.p);
    return 0;
}

static bool sigpipe_blocked(void)
{
    sigset_t set;
    pthread_sigmask(SIG_SETMASK, NULL, &set);
    return sigismember(&set, SIGPIPE);
}

static void test_communicates_interleaved(void **state)
{
    char *input = calloc(1, PAIR_INPUT);
    assert_non_null(input);
    struct pipe_pair pp = {
        .a = {.o = {.stdout_io = {CC_STDIO_PIPE}}, .r = 1},
        .b = {.o = {.stdin_io = {CC_STDIO_PIPE}}, .input = input,
              .len = PAIR_INPUT, .r = 1}};
    assert_false(sigpipe_blocked());
    assert_int_equal(cc_loop_run(comm_pair, &pp, NULL), 0);
    assert_int_equal(pp.a.r, 0);
    assert_int_equal(pp.b.r, 0); /* EPIPE only ends the input */
    assert_int_equal(pp.code, -SIGKILL);
    assert_false(sigpipe_blocked());
    sigset_t pending;
    sigpending(&pending);
    assert_false(sigismember(&pending, SIGPIPE));
    free(input);
}

/* A task's cc_signal_wait blocks its signal in the thread for good while a
 * communicate of another task runs: the communicate's end gives SIGPIPE
 * back its state and leaves the rest of the mask as it is now. */
struct mask_run {
    struct comm_side a; /* reads a `sleep 30` child's stdout */
    int waited;         /* cc_signal_wait(SIGUSR2) with a short deadline */
};

static int mask_main(void *arg, void **result)
{
    struct mask_run *m = arg;
    cc_future *a;
    if (cc_spawn(comm_sleeper, &m->a, &a) != 0)
        abort();
    while (!m->a.p) /* it parks in communicate */
        cc_sleep(CC_MSEC);
    sigset_t usr2;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    m->waited = cc_signal_wait(&usr2, cc_deadline_in(CC_MSEC));
    cc_process_kill(m->a.p);
    if (cc_future_wait(a, cc_deadline_in(60 * CC_SEC)) != 0)
        abort();
    cc_future_release(a);
    cc_process_free(m->a.p);
    return 0;
}

static void test_communicate_keeps_the_rest_of_the_mask(void **state)
{
    struct mask_run m = {.a = {.o = {.stdout_io = {CC_STDIO_PIPE}}, .r = 1}};
    assert_int_equal(cc_loop_run(mask_main, &m, NULL), 0);
    assert_int_equal(m.waited, -ETIMEDOUT);
    assert_int_equal(m.a.r, 0);
    sigset_t set;
    pthread_sigmask(SIG_SETMASK, NULL, &set);
    bool usr2 = sigismember(&set, SIGUSR2), pipe = sigismember(&set, SIGPIPE);
    sigset_t usr2_set;
    sigemptyset(&usr2_set);
    sigaddset(&usr2_set, SIGUSR2);
    pthread_sigmask(SIG_UNBLOCK, &usr2_set, NULL);
    assert_true(usr2);  /* cc_signal_wait leaves it blocked */
    assert_false(pipe); /* as before the communicate */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CC_TEST(test_wait_parks),
        CC_TEST(test_communicate_big),
        CC_TEST(test_run_in_task),
        CC_TEST(test_communicate_nowait_takes_what_is_ready),
        CC_TEST(test_cancel_wait),
        CC_TEST(test_communicates_interleaved),
        CC_TEST(test_communicate_keeps_the_rest_of_the_mask),
    };
    return CC_RUN_TESTS(tests);
}
