/*
 * test_process_pool3.c: the process pool (concur/procpool.h), found by the
 * review of session 10: a task's time limit counts from when its worker
 * can run it, not while the worker runs its initializer; freeing one
 * forkserver pool leaves the server, and the other pools' workers, alone;
 * a worker whose exit status was lost with its forkserver is not said to
 * have exited with code 0.
 *
 * main() calls cc_worker_main_hook first: a spawned worker is this very
 * program run again, and the functions below are found by name.
 */
#include "testutil.h"

#include <concur/procpool.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* ---- worker functions ----------------------------------------------------- */

/* An initializer that takes 400 ms (loads a model, opens a database). */
static int pp3_slow_init(const void *arg, size_t len, cc_bytes *result)
{
    (void)arg, (void)len, (void)result;
    usleep(400 * 1000);
    return 0;
}
CC_WORKER_FUNCTION(pp3_slow_init)

/* Give the argument back (at once). */
static int pp3_echo(const void *arg, size_t len, cc_bytes *result)
{
    return cc_bytes_append(result, arg, len) == 0 ? 0 : 3;
}
CC_WORKER_FUNCTION(pp3_echo)

/* Sleep 300 ms, then give the argument back. */
static int pp3_nap_echo(const void *arg, size_t len, cc_bytes *result)
{
    usleep(300 * 1000);
    return cc_bytes_append(result, arg, len) == 0 ? 0 : 3;
}
CC_WORKER_FUNCTION(pp3_nap_echo)

/* Create the file named by the argument, then sleep 30 s. */
static int pp3_mark_sleep(const void *arg, size_t len, cc_bytes *result)
{
    (void)result;
    char path[128];
    snprintf(path, sizeof path, "%.*s", (int)len, (const char *)arg);
    FILE *f = fopen(path, "we");
    if (f)
        fclose(f);
    sleep(30);
    return 0;
}
CC_WORKER_FUNCTION(pp3_mark_sleep)

/* ---- tests ---------------------------------------------------------------- */

static const cc_process_pool_options fs_pool = {
    .max_workers = 1, .start_method = CC_START_FORKSERVER};

/* Run pp3_echo on ex and check its result. */
static void echo_on(cc_executor *ex, const char *name)
{
    cc_bytes out = {0};
    cc_future *f;
    assert_int_equal(cc_process_pool_submit(ex, name, "ok", 2, &out, &f), 0);
    assert_int_equal(cc_future_wait(f, cc_deadline_in(30 * CC_SEC)), 0);
    const char *msg = cc_future_error_message(f);
    if (msg)
        print_message("%s\n", msg);
    assert_int_equal(cc_future_error(f), 0);
    assert_int_equal(out.len, 2);
    cc_future_release(f);
    cc_bytes_free(&out);
}

/* The forkserver dies with the thread that started it. A forkserver pool
 * started it from its feeder thread, so freeing that pool (joining its
 * feeders) killed the server, and with it the workers of every other
 * forkserver pool: pool b's running task failed with -ECHILD. */
static void freeing_a_forkserver_pool_spares_the_others(void **state)
{
    (void)state;
    for (long i = 0; i < cc_test_n(2); i++) {
        cc_executor *a, *b;
        assert_int_equal(cc_process_pool_new(&a, &fs_pool), 0);
        echo_on(a, "pp3_echo"); /* a's worker runs: the server too */
        assert_int_equal(cc_process_pool_new(&b, &fs_pool), 0);
        echo_on(b, "pp3_echo");
        cc_bytes out = {0};
        cc_future *f;
        assert_int_equal(cc_process_pool_submit(b, "pp3_nap_echo", "ok", 2,
                                                &out, &f), 0);
        usleep(50 * 1000); /* let it start (it passes if it has not) */
        cc_executor_free(a);
        assert_int_equal(cc_future_wait(f, cc_deadline_in(30 * CC_SEC)), 0);
        const char *msg = cc_future_error_message(f);
        if (msg)
            print_message("%s\n", msg);
        assert_int_equal(cc_future_error(f), 0);
        cc_future_release(f);
        cc_bytes_free(&out);
        cc_executor_free(b);
        cc_forkserver_stop(); /* a child of this process: counted */
    }
}

/* A task limited to 100 ms that runs in no time, handed to a worker still
 * in its 400 ms initializer, completes: it was killed with the worker
 * ("timed out after 100 ms") without ever running, and so was each
 * replacement that a timed task found starting. */
static void timeout_counts_from_the_end_of_the_initializer(void **state)
{
    (void)state;
    for (long i = 0; i < cc_test_n(2); i++) {
        cc_executor *ex;
        cc_process_pool_options o = {.max_workers = 1,
                                     .initializer = "pp3_slow_init",
                                     .task_timeout_ns = 100 * CC_MSEC};
        assert_int_equal(cc_process_pool_new(&ex, &o), 0);
        cc_bytes out = {0};
        cc_future *f;
        assert_int_equal(cc_process_pool_submit(ex, "pp3_echo", "ok", 2,
                                                &out, &f), 0);
        assert_int_equal(cc_future_wait(f, cc_deadline_in(30 * CC_SEC)), 0);
        const char *msg = cc_future_error_message(f);
        assert_int_equal(cc_future_error(f), 0);
        assert_null(msg);
        assert_int_equal(out.len, 2);
        assert_memory_equal(out.data, "ok", 2);
        cc_future_release(f);
        cc_bytes_free(&out);
        cc_executor_free(ex);
    }
}

/* The parent of pid (from /proc), or -1. */
static pid_t parent_of(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    int ppid = -1;
    if (f && fscanf(f, "%*d (%*[^)]) %*c %d", &ppid) != 1)
        ppid = -1;
    if (f)
        fclose(f);
    return ppid;
}

/* A worker whose forkserver is killed dies with it, and its exit status is
 * lost with the server: its task failed "exited with code 0", as if the
 * function had called exit(0). */
static void a_lost_exit_status_is_not_code_0(void **state)
{
    (void)state;
    cc_executor *ex;
    assert_int_equal(cc_process_pool_new(&ex, &fs_pool), 0);
    echo_on(ex, "pp3_echo");
    pid_t worker;
    assert_int_equal(cc_process_pool_worker_pids(ex, &worker, 1), 1);
    pid_t server = parent_of(worker);
    assert_true(server > 0 && server != getpid());
    char mark[64];
    snprintf(mark, sizeof mark, "/tmp/cc-pp3-%d", (int)getpid());
    cc_future *f;
    assert_int_equal(cc_process_pool_submit(ex, "pp3_mark_sleep", mark,
                                            strlen(mark), NULL, &f), 0);
    for (int i = 0; i < 30000 && access(mark, F_OK) != 0; i++)
        usleep(1000); /* until the task runs */
    assert_int_equal(unlink(mark), 0);
    assert_int_equal(kill(server, SIGKILL), 0);
    assert_int_equal(cc_future_wait(f, cc_deadline_in(30 * CC_SEC)), 0);
    const char *msg = cc_future_error_message(f);
    print_message("%s\n", msg ? msg : "(none)");
    assert_int_equal(cc_future_error(f), -ECHILD);
    assert_non_null(msg);
    assert_null(strstr(msg, "code 0"));
    assert_non_null(strstr(msg, "unknown"));
    cc_future_release(f);
    echo_on(ex, "pp3_echo"); /* a new server, a new worker */
    cc_executor_free(ex);
    cc_forkserver_stop();
}

int main(int argc, char **argv)
{
    cc_worker_main_hook(argc, argv); /* a spawned worker never returns */
    const struct CMUnitTest tests[] = {
        CC_TEST(timeout_counts_from_the_end_of_the_initializer),
        CC_TEST(freeing_a_forkserver_pool_spares_the_others),
        CC_TEST(a_lost_exit_status_is_not_code_0),
    };
    return CC_RUN_TESTS(tests);
}
