/*
 * test_thread.c: threads (include/concur/thread.h): names, joins with
 * deadlines, detach, current thread, daemon semantics at exit, thread-locals.
 */
#include "testutil.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void *return_arg(void *arg) { return arg; }

static void read_comm(int tid, char *buf, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/comm", tid);
    FILE *f = fopen(path, "re");
    assert_non_null(f);
    assert_non_null(fgets(buf, (int)size, f));
    fclose(f);
    buf[strcspn(buf, "\n")] = '\0';
}

struct name_check {
    cc_event checked; /* the main thread has read the name */
};

static void *wait_checked(void *arg)
{
    struct name_check *nc = arg;
    cc_event_wait(&nc->checked, CC_FOREVER);
    return NULL;
}

static void name_visible_to_os(void **state)
{
    struct name_check nc = {CC_EVENT_INIT};
    cc_thread *t;
    cc_thread_options o = {.name = "a-rather-long-thread-name"};
    assert_int_equal(cc_thread_start(&t, wait_checked, &nc, &o), 0);
    char comm[64];
    read_comm(cc_thread_native_id(t), comm, sizeof comm);
    assert_string_equal(comm, "a-rather-long-t"); /* 15 bytes */
    assert_string_equal(cc_thread_name(t), "a-rather-long-thread-name");
    cc_event_set(&nc.checked);
    assert_int_equal(cc_thread_join(t, CC_FOREVER, NULL), 0);
}

static void default_name_is_numbered(void **state)
{
    cc_thread *t;
    assert_int_equal(cc_thread_start(&t, return_arg, NULL, NULL), 0);
    assert_memory_equal(cc_thread_name(t), "concur-", 7);
    assert_false(cc_thread_is_daemon(t));
    assert_int_equal(cc_thread_join(t, CC_FOREVER, NULL), 0);
}

static void join_returns_result(void **state)
{
    cc_thread *t;
    int x;
    void *result = NULL;
    assert_int_equal(cc_thread_start(&t, return_arg, &x, NULL), 0);
    assert_int_equal(cc_thread_join(t, CC_FOREVER, &result), 0);
    assert_ptr_equal(result, &x);
}

static void join_times_out_then_succeeds(void **state)
{
    struct name_check nc = {CC_EVENT_INIT};
    cc_thread *t;
    assert_int_equal(cc_thread_start(&t, wait_checked, &nc, NULL), 0);
    int64_t t0 = cc_now();
    cc_deadline d = cc_deadline_in(20 * CC_MSEC);
    assert_int_equal(cc_thread_join(t, d, NULL), -ETIMEDOUT);
    assert_true(cc_now() >= d); /* never early */
    assert_true(cc_now() - t0 >= 20 * CC_MSEC);
    assert_int_equal(cc_thread_join(t, CC_NOWAIT, NULL), -ETIMEDOUT);
    assert_true(cc_thread_is_alive(t));
    cc_event_set(&nc.checked);
    assert_int_equal(cc_thread_join(t, cc_deadline_in(10 * CC_SEC), NULL), 0);
}

static void *join_self(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)cc_thread_join(cc_thread_current(), CC_NOWAIT, NULL);
}

static void join_self_or_foreign_fails(void **state)
{
    cc_thread *t;
    void *r;
    assert_int_equal(cc_thread_start(&t, join_self, NULL, NULL), 0);
    assert_int_equal(cc_thread_join(t, CC_FOREVER, &r), 0);
    assert_int_equal((intptr_t)r, -EDEADLK);
    assert_int_equal(cc_thread_join(cc_thread_current(), CC_NOWAIT, NULL), -EDEADLK);
    assert_int_equal(cc_thread_detach(cc_thread_current()), -EINVAL);
}

static void *set_event(void *arg)
{
    cc_event_set(arg);
    return NULL;
}

static void detach_frees_itself(void **state)
{
    cc_event done = CC_EVENT_INIT;
    cc_thread *t;
    assert_int_equal(cc_thread_start(&t, set_event, &done, NULL), 0);
    assert_int_equal(cc_thread_detach(t), 0);
    assert_int_equal(cc_event_wait(&done, cc_deadline_in(10 * CC_SEC)), 0);
    /* The detached thread must not be joinable; a finished one is reaped. */
    assert_int_equal(cc_thread_start(&t, return_arg, NULL, NULL), 0);
    cc_sleep(5 * CC_MSEC);
    assert_int_equal(cc_thread_detach(t), 0);
    /* teardown checks that both threads are gone */
}

static void *current_info(void *arg)
{
    cc_thread *me = cc_thread_current();
    *(cc_thread **)arg = me;
    return (void *)(intptr_t)(cc_thread_native_id(me) == gettid());
}

static void current_thread_handles(void **state)
{
    cc_thread *t, *seen = NULL;
    void *ok;
    assert_int_equal(cc_thread_start(&t, current_info, &seen, NULL), 0);
    cc_thread *started = t;
    assert_int_equal(cc_thread_join(t, CC_FOREVER, &ok), 0);
    assert_ptr_equal(seen, started);
    assert_true((intptr_t)ok);
    cc_thread *main_t = cc_thread_current();
    assert_ptr_equal(main_t, cc_thread_current());
    assert_string_equal(cc_thread_name(main_t), "MainThread");
    assert_int_equal(cc_thread_native_id(main_t), getpid());
    assert_false(cc_thread_is_daemon(main_t));
    assert_true(cc_thread_is_alive(main_t));
}

static void *foreign_name(void *arg)
{
    snprintf(arg, 32, "%s", cc_thread_name(cc_thread_current()));
    return NULL;
}

static void foreign_thread_gets_dummy_handle(void **state)
{
    char name[32] = "";
    pthread_t pt;
    assert_int_equal(pthread_create(&pt, NULL, foreign_name, name), 0);
    pthread_join(pt, NULL);
    assert_memory_equal(name, "Dummy-", 6);
}

static void start_fails_cleanly(void **state)
{
    cc_thread *t = NULL;
    cc_thread_options o = {.stack_size = 1}; /* below PTHREAD_STACK_MIN */
    assert_int_equal(cc_thread_start(&t, return_arg, NULL, &o), -EINVAL);
    assert_null(t);
}

/* ---- exit waits for non-daemon threads -------------------------------------- */

struct late_writer {
    int fd;          /* pipe to write to */
    int64_t delay;   /* ns to sleep first */
};

static void *write_late(void *arg)
{
    struct late_writer *lw = arg;
    cc_sleep(lw->delay);
    (void)!write(lw->fd, "x", 1);
    return NULL;
}

/* Fork a child that starts a thread writing after `delay` ns, then exits as
 * main() would return; return how many bytes reached the pipe. */
static int bytes_after_exit(bool daemon, int64_t delay)
{
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        static struct late_writer lw;
        lw = (struct late_writer){p[1], delay};
        cc_thread *t;
        cc_thread_options o = {.name = "late", .daemon = daemon};
        if (cc_thread_start(&t, write_late, &lw, &o) != 0)
            _exit(3);
        cc_thread_detach(t);
        exit(0); /* as a return from main */
    }
    close(p[1]);
    char buf[8];
    int n = 0;
    ssize_t r;
    while ((r = read(p[0], buf, sizeof buf)) > 0)
        n += (int)r;
    close(p[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    return n;
}

static void exit_waits_for_non_daemon(void **state)
{
    assert_int_equal(bytes_after_exit(false, 100 * CC_MSEC), 1);
}

static void exit_does_not_wait_for_daemon(void **state)
{
    /* 3 s: TSan's runtime lingers 1 s in exit (atexit_sleep_ms). */
    assert_int_equal(bytes_after_exit(true, 3 * CC_SEC), 0);
}

/* ---- exit() from a concur thread ------------------------------------------ */

/* Status of fn(arg) run in a forked child, or -1 if it hung. */
static int child_status_within(int (*fn)(void *), void *arg, int64_t limit)
{
    return cc_test_reap_within(cc_test_fork(fn, arg), limit);
}

/* A hang-free exit ends well within this, even under TSan (~1 s in exit). */
#define EXIT_LIMIT (10 * CC_SEC)

static void *exit_7(void *arg)
{
    cc_sleep(50 * CC_MSEC); /* the joiner parks first */
    exit(7);
}

/* Start a non-daemon thread that calls exit() and join it. */
static void *start_exiting_and_join(void *arg)
{
    cc_thread *t;
    if (cc_thread_start(&t, exit_7, NULL, NULL) != 0)
        _exit(3);
    cc_thread_join(t, arg ? cc_deadline_in(*(int64_t *)arg) : CC_FOREVER,
                   NULL);
    if (arg) /* timed out: the exiting thread is not done, as expected */
        cc_sleep(CC_SEC);
    return NULL;
}

/* The main thread (not waited for at exit) joins the exiting thread. */
static int main_joins_exiting(void *arg)
{
    start_exiting_and_join(NULL);
    return 4; /* never: the thread's exit() ends the process first */
}

/* A non-daemon thread joins the exiting thread: the exit hook must not wait
 * for a thread whose join can never end. arg: the join's timeout, or NULL. */
static int thread_joins_exiting(void *arg)
{
    cc_thread *t;
    if (cc_thread_start(&t, start_exiting_and_join, arg, NULL) != 0)
        return 3;
    cc_thread_join(t, CC_FOREVER, NULL);
    cc_sleep(EXIT_LIMIT); /* the exiting thread ends the process first */
    return 4;
}

static void exit_from_non_daemon_thread(void **state)
{
    int64_t timeout = 100 * CC_MSEC;
    int st[3] = {
        child_status_within(main_joins_exiting, NULL, EXIT_LIMIT),
        child_status_within(thread_joins_exiting, NULL, EXIT_LIMIT),
        /* a joiner that times out is waited for again once it returns */
        child_status_within(thread_joins_exiting, &timeout, EXIT_LIMIT),
    };
    for (int i = 0; i < 3; i++)
        if (st[i] != 7)
            print_error("case %d: status %d (-1: hung)\n", i, st[i]);
    for (int i = 0; i < 3; i++)
        assert_int_equal(st[i], 7);
}

/* ---- thread-local values ------------------------------------------------------ */

static cc_thread_local *slot;
static atomic_uint destroyed;

static void count_destroyed(void *value)
{
    assert_int_equal(*(int *)value, 42);
    atomic_fetch_add(&destroyed, 1);
}

static void *use_slot(void *arg)
{
    static __thread int mine = 42;
    if (cc_thread_local_get(slot) != NULL)
        return (void *)1;
    if (cc_thread_local_set(slot, &mine) != 0)
        return (void *)2;
    return cc_thread_local_get(slot) == &mine ? NULL : (void *)3;
}

static void thread_local_values_and_destructors(void **state)
{
    atomic_store(&destroyed, 0);
    assert_int_equal(cc_thread_local_new(&slot, count_destroyed), 0);
    int main_value = 7;
    assert_int_equal(cc_thread_local_set(slot, &main_value), 0);
    cc_thread *t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(cc_thread_start(&t[i], use_slot, NULL, NULL), 0);
    for (int i = 0; i < 4; i++) {
        void *r;
        assert_int_equal(cc_thread_join(t[i], CC_FOREVER, &r), 0);
        assert_null(r);
    }
    assert_int_equal(atomic_load(&destroyed), 4);
    assert_ptr_equal(cc_thread_local_get(slot), &main_value);
    assert_int_equal(cc_thread_local_set(slot, NULL), 0);
    cc_thread_local_free(slot);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CC_TEST(name_visible_to_os),
        CC_TEST(default_name_is_numbered),
        CC_TEST(join_returns_result),
        CC_TEST(join_times_out_then_succeeds),
        CC_TEST(join_self_or_foreign_fails),
        CC_TEST(detach_frees_itself),
        CC_TEST(current_thread_handles),
        CC_TEST(foreign_thread_gets_dummy_handle),
        CC_TEST(start_fails_cleanly),
        CC_TEST(exit_waits_for_non_daemon),
        CC_TEST(exit_does_not_wait_for_daemon),
        CC_TEST(exit_from_non_daemon_thread),
        CC_TEST(thread_local_values_and_destructors),
    };
    return CC_RUN_TESTS(tests);
}
