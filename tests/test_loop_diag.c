/*
 * test_loop_diag.c: the loop's diagnostics (loop.h): the stall detector,
 * the deadlock report (certain and possible), cc_loop_dump, and the dump on
 * SIGQUIT. Each report is stderr, captured from a forked child.
 */
#include "testutil.h"

#include "loop_helpers.h"

#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- a child whose stderr we read ---------------------------------------- */

struct child_out {
    char text[16384]; /* its stderr */
    int status;       /* as waitpid gives it */
};

/* Read fd until EOF or until `until` appears in the text (then kill the
 * child: a possible deadlock goes on waiting), for 30 s at most. */
static void read_child(int fd, pid_t pid, const char *until,
                       struct child_out *o)
{
    size_t n = 0;
    cc_deadline end = cc_deadline_in(30 * CC_SEC);
    while (n < sizeof o->text - 1 && cc_now() < end) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t r = read(fd, o->text + n, sizeof o->text - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        o->text[n] = 0;
        if (until && strstr(o->text, until)) {
            kill(pid, SIGKILL);
            break;
        }
    }
    o->text[n] = 0;
    if (cc_now() >= end)
        kill(pid, SIGKILL);
}

static void run_child(int (*fn)(void), const char *until, struct child_out *o)
{
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(p[1], 2);
        _exit(fn());
    }
    close(p[1]);
    read_child(p[0], pid, until, o);
    close(p[0]);
    assert_int_equal(waitpid(pid, &o->status, 0), pid);
}

static cc_event ev; /* set by whoever ends a child's wait */

static int wait_ev(void *arg, void **result)
{
    return cc_event_wait(&ev, CC_FOREVER);
}

static cc_future *spawn_named(cc_task_fn fn, void *arg, const char *name)
{
    cc_future *f;
    if (cc_spawn_with(fn, arg, &(cc_task_opts){.name = name}, &f) != 0)
        abort();
    return f;
}

/* ---- stall ---------------------------------------------------------------- */

static int spin(void *arg, void **result)
{
    /* Long beside the 50 ms limit: the watchdog must get a CPU in time on
     * a loaded machine. */
    cc_deadline end = cc_deadline_in(1000 * CC_MSEC);
    while (cc_now() < end)
        ; /* never yields */
    return 0;
}

static int stall_main(void *arg, void **result)
{
    cc_future *f = spawn_named(spin, NULL, "spinner");
    int r = cc_future_result(f, CC_FOREVER, NULL);
    cc_future_release(f);
    return r;
}

static int stall_child(void)
{
    cc_loop_set_diag(&(cc_loop_diag_opts){.stall_ms = 50});
    return cc_loop_run(stall_main, NULL, NULL) == 0 ? 0 : 1;
}

static void test_stall_reported(void **state)
{
    static struct child_out o;
    run_child(stall_child, NULL, &o);
    assert_true(WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0);
    assert_non_null(strstr(o.text, "concur: stall: task \"spinner\""));
    assert_null(strstr(o.text, "\"main\" of loop")); /* main yielded */
    /* With the loop thread's backtrace: at least one frame, and one of
     * them in this program (the spinner; symbols need -rdynamic, so only
     * the file name is certain). */
    const char *bt = strstr(o.text, "  backtrace of the loop thread");
    assert_non_null(bt);
    const char *frame = strstr(bt, "\n    ");
    assert_non_null(frame);
    assert_non_null(strstr(frame, "[0x"));
    assert_non_null(strstr(frame, "test_loop_diag("));
}

static int quiet_child(void)
{
    /* No detector: the same spin says nothing. */
    return cc_loop_run(stall_main, NULL, NULL) == 0 ? 0 : 1;
}

static void test_stall_off_by_default(void **state)
{
    static struct child_out o;
    unsetenv("CONCUR_STALL_MS");
    run_child(quiet_child, NULL, &o);
    assert_true(WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0);
    assert_null(strstr(o.text, "stall"));
}

/* A task that blocks the loop in a system call is a stall too; the
 * detector must report it without changing what the call does: a signal
 * makes nanosleep (poll, select, ...) fail with EINTR whatever SA_RESTART
 * says. */
static int block_in_sleep(void *arg, void **result)
{
    struct timespec ts = {0, 400 * CC_MSEC};
    return nanosleep(&ts, NULL) == 0 ? 0 : -errno;
}

static int blocked_child(void)
{
    cc_loop_set_diag(&(cc_loop_diag_opts){.stall_ms = 50});
    int r = cc_loop_run(block_in_sleep, NULL, NULL);
    return r == 0 ? 0 : r == -EINTR ? 4 : 1;
}

static void test_stall_in_syscall_not_interrupted(void **state)
{
    static struct child_out o;
    run_child(blocked_child, NULL, &o);
    assert_non_null(strstr(o.text, "concur: stall: task \"main\""));
    assert_non_null(strstr(o.text, "blocked in a system call"));
    assert_true(WIFEXITED(o.status));
    assert_int_equal(WEXITSTATUS(o.status), 0); /* 4: EINTR */
}

/* The stall detector's backtrace is taken by a signal handler that may
 * interrupt the loop thread anywhere, in the middle of a context switch
 * too: unwinding from there must end cleanly, not crash. A thread
 * signals the loop thread as fast as it can while two tasks switch back
 * and forth; the handler takes a backtrace, as the detector's does. */
static pthread_t bt_target;
static atomic_int bt_stop; /* the loop is done (seq_cst: rare) */
static volatile long bt_taken;

static void bt_handler(int sig)
{
    void *frames[48];
    (void)sig;
    if (backtrace(frames, 48) > 0)
        bt_taken++;
}

static void *bt_pester(void *arg)
{
    (void)arg;
    while (!atomic_load(&bt_stop)) {
        pthread_kill(bt_target, SIGUSR1);
        for (volatile int i = 0; i < 200; i++)
            ;
    }
    return NULL;
}

static int ping(void *arg, void **result)
{
    cc_deadline end = cc_deadline_in(cc_test_n(1000) * CC_MSEC);
    while (cc_now() < end)
        for (int i = 0; i < 100; i++)
            cc_yield();
    return 0;
}

static int switches_main(void *arg, void **result)
{
    cc_future *a = spawn_named(ping, NULL, "ping");
    cc_future *b = spawn_named(ping, NULL, "pong");
    int r = cc_future_result(a, CC_FOREVER, NULL);
    r |= cc_future_result(b, CC_FOREVER, NULL);
    cc_future_release(a);
    cc_future_release(b);
    return r;
}

static int switches_child(void)
{
    void *warm[1];
    backtrace(warm, 1); /* loads the unwinder, as the detector does */
    signal(SIGSEGV, SIG_DFL); /* a crash kills the child (not cmocka's) */
    struct sigaction sa = {.sa_handler = bt_handler, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    bt_target = pthread_self();
    pthread_t t;
    if (pthread_create(&t, NULL, bt_pester, NULL) != 0)
        return 2;
    int r = cc_loop_run(switches_main, NULL, NULL);
    atomic_store(&bt_stop, 1);
    pthread_join(t, NULL);
    return r == 0 && bt_taken > 0 ? 0 : 1;
}

static void test_backtrace_during_switches(void **state)
{
    static struct child_out o;
    run_child(switches_child, NULL, &o);
    assert_true(WIFEXITED(o.status)); /* not SIGSEGV in the unwinder */
    assert_int_equal(WEXITSTATUS(o.status), 0);
}

/* ---- deadlock ------------------------------------------------------------ */

static int deadlock_main(void *arg, void **result)
{
    cc_sleep(100 * CC_MSEC); /* a timer: no report while it is armed */
    cc_future *f = spawn_named(wait_ev, NULL, "waiter_a");
    int r = cc_future_result(f, CC_FOREVER, NULL); /* never */
    cc_future_release(f);
    return r;
}

static int deadlock_child(void)
{
    cc_event_init(&ev);
    cc_loop_set_diag(&(cc_loop_diag_opts){.deadlock = true,
                                          .deadlock_quiet_ms = 100});
    cc_loop_run(deadlock_main, NULL, NULL);
    return 3; /* not reached */
}

static void test_deadlock_reported(void **state)
{
    static struct child_out o;
    /* Certain (one thread: abort) or possible (a sanitizer's thread): the
     * report lists both tasks either way. */
    run_child(deadlock_child, "\"waiter_a\" parked", &o);
    assert_non_null(strstr(o.text, "deadlock: "));
    assert_non_null(strstr(o.text, "task \"main\" parked, waiting on a wait "
                                   "queue"));
    assert_non_null(strstr(o.text, "task \"waiter_a\" parked"));
    assert_non_null(strstr(o.text, "no deadline"));
    assert_false(WIFEXITED(o.status)); /* aborted, or killed by us */
}

static int deadlock_stall_child(void)
{
    cc_event_init(&ev);
    cc_loop_set_diag(&(cc_loop_diag_opts){.stall_ms = 60000, .deadlock = true,
                                          .deadlock_quiet_ms = 100});
    cc_loop_run(deadlock_main, NULL, NULL);
    return 3; /* not reached */
}

/* The stall detector's watchdog thread wakes no task: a deadlock is as
 * certain with it as without it (certain in both, or, where a sanitizer
 * runs a thread of its own, possible in both). */
static void test_deadlock_certain_with_stall_watchdog(void **state)
{
    static struct child_out plain, stall;
    run_child(deadlock_child, "\"waiter_a\" parked", &plain);
    run_child(deadlock_stall_child, "\"waiter_a\" parked", &stall);
    assert_non_null(strstr(stall.text, "deadlock: "));
    assert_int_equal(strstr(plain.text, "concur: deadlock: ") != NULL,
                     strstr(stall.text, "concur: deadlock: ") != NULL);
}

static void *set_later(void *arg)
{
    cc_sleep(600 * CC_MSEC);
    cc_event_set(&ev);
    return NULL;
}

static int possible_main(void *arg, void **result)
{
    cc_thread *t = start(set_later, NULL);
    cc_future *f = spawn_named(wait_ev, NULL, "waiter_b");
    int r = cc_future_result(f, CC_FOREVER, NULL);
    cc_future_release(f);
    join(t);
    return r;
}

static int possible_child(void)
{
    cc_event_init(&ev);
    cc_loop_set_diag(&(cc_loop_diag_opts){.deadlock = true,
                                          .deadlock_quiet_ms = 100});
    return cc_loop_run(possible_main, NULL, NULL) == 0 ? 0 : 1;
}

static void test_possible_deadlock_then_woken(void **state)
{
    static struct child_out o;
    run_child(possible_child, NULL, &o);
    assert_true(WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0);
    char *first = strstr(o.text, "concur: possible deadlock: ");
    assert_non_null(first);
    assert_non_null(strstr(first, "task \"waiter_b\" parked"));
    /* Once per quiet period: one while waiter_b waits 600 ms (not one per
     * 100 ms); maybe a second while main joins the exiting thread. */
    int reports = 0;
    for (char *p = first; p; p = strstr(p + 1, "possible deadlock: "))
        reports++;
    assert_true(reports <= 2);
}

/* ---- dumps --------------------------------------------------------------- */

struct dump_run {
    int p[2];     /* a pipe a task reads */
    char *text;   /* the dump */
    size_t len;   /* its length */
    int dumped;   /* cc_loop_dump's return */
};

static int read_pipe(void *arg, void **result)
{
    struct dump_run *d = arg;
    int r = cc_wait_fd(d->p[0], POLLIN, cc_deadline_in(30 * CC_SEC));
    return r > 0 ? 0 : r;
}

static int dump_main(void *arg, void **result)
{
    struct dump_run *d = arg;
    cc_future *a = spawn_named(wait_ev, NULL, "sleeper");
    cc_future *b = spawn_named(read_pipe, d, "reader");
    cc_yield(); /* both park */
    FILE *m = open_memstream(&d->text, &d->len);
    d->dumped = cc_loop_dump(cc_loop_current(), m);
    fclose(m);
    cc_event_set(&ev);
    if (write(d->p[1], "x", 1) != 1)
        abort();
    cc_future_result(a, CC_FOREVER, NULL);
    cc_future_result(b, CC_FOREVER, NULL);
    cc_future_release(a);
    cc_future_release(b);
    return 0;
}

static void test_dump(void **state)
{
    struct dump_run d = {0};
    cc_event_init(&ev);
    assert_int_equal(pipe2(d.p, O_CLOEXEC | O_NONBLOCK), 0);
    assert_int_equal(cc_loop_run(dump_main, &d, NULL), 0);
    assert_int_equal(d.dumped, 0);
    assert_non_null(strstr(d.text, "3 task(s)"));
    assert_non_null(strstr(d.text, "task \"main\" running"));
    assert_non_null(strstr(d.text, "task \"sleeper\" parked, waiting on a "
                                   "wait queue"));
    char want[64];
    snprintf(want, sizeof want, "task \"reader\" parked, waiting on fd (read) "
             "%d, deadline in", d.p[0]);
    assert_non_null(strstr(d.text, want));
    assert_int_equal(cc_loop_dump(NULL, stderr), -EPERM);
    free(d.text);
    close(d.p[0]);
    close(d.p[1]);
    cc_event_destroy(&ev);
}

static int sigquit_main(void *arg, void **result)
{
    if (cc_loop_dump_on_sigquit() != 0)
        return -1;
    cc_future *f = spawn_named(wait_ev, NULL, "idler");
    cc_yield();
    kill(getpid(), SIGQUIT);
    cc_sleep(200 * CC_MSEC); /* the loop idles: it dumps */
    cc_event_set(&ev);
    int r = cc_future_result(f, CC_FOREVER, NULL);
    cc_future_release(f);
    return r;
}

static int sigquit_child(void)
{
    cc_event_init(&ev);
    return cc_loop_run(sigquit_main, NULL, NULL) == 0 ? 0 : 1;
}

static void test_dump_on_sigquit(void **state)
{
    static struct child_out o;
    run_child(sigquit_child, NULL, &o);
    assert_true(WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0);
    assert_non_null(strstr(o.text, "concur: loop "));
    assert_non_null(strstr(o.text, "task \"idler\" parked"));
    assert_non_null(strstr(o.text, "task \"main\" parked, waiting on sleep"));
    assert_int_equal(cc_loop_dump_on_sigquit(), -EPERM); /* no loop here */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CC_TEST(test_stall_reported),
        CC_TEST(test_stall_off_by_default),
        CC_TEST(test_stall_in_syscall_not_interrupted),
        CC_TEST(test_backtrace_during_switches),
        CC_TEST(test_deadlock_reported),
        CC_TEST(test_deadlock_certain_with_stall_watchdog),
        CC_TEST(test_possible_deadlock_then_woken),
        CC_TEST(test_dump),
        CC_TEST(test_dump_on_sigquit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
