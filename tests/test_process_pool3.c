/*
 * test_process_pool3.c: the process pool (concur/procpool.h), found by the
 * review of session 10: a task's time limit counts from when its worker
 * can run it, not while the worker runs its initializer; freeing one
 * forkserver pool leaves the server, and the other pools' workers, alone.
 *
 * main() calls cc_worker_main_hook first: a spawned worker is this very
 * program run again, and the functions below are found by name.
 */
#include "testutil.h"

#include <concur/procpool.h>

#include <errno.h>
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

int main(int argc, char **argv)
{
    cc_worker_main_hook(argc, argv); /* a spawned worker never returns */
    const struct CMUnitTest tests[] = {
        CC_TEST(timeout_counts_from_the_end_of_the_initializer),
        CC_TEST(freeing_a_forkserver_pool_spares_the_others),
    };
    return CC_RUN_TESTS(tests);
}
