/*
 * test_communicate.c: talking to a child (include/concur/subprocess.h):
 * communicate with large data both ways, its deadline, and cc_run with its
 * capture and its timeout, which kills the child's whole group.
 */
#include "subprocess_test.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>


/* ---- communicate --------------------------------------------------------- */

/* A pattern that a shifted or dropped block would break. */
static char *make_pattern(size_t n)
{
    char *b = malloc(n);
    assert_non_null(b);
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245 + 12345;
        b[i] = (char)(x >> 24);
    }
    return b;
}

static bool all_zero(const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

/* 100 MiB in on stdin while 100 MiB come out on stdout and on stderr at once:
 * a writer that waits for stdin to drain before reading would deadlock. */
static void communicate_100mib_each_way(void **state)
{
    size_t n = cc_test_n(100) * MIB;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "head -c %zu /dev/zero >&2 & cat; wait", n);
    cc_spawn_options o = {
        .stdin_io = pipe_io, .stdout_io = pipe_io, .stderr_io = pipe_io};
    cc_process *p;
    assert_int_equal(cc_process_spawn(&p, ARGV("sh", "-c", cmd), &o), 0);
    char *input = make_pattern(n);
    cc_bytes out = {0}, err = {0};
    assert_int_equal(
        cc_process_communicate(p, input, n, CC_FOREVER, &out, &err), 0);
    int rc;
    assert_int_equal(cc_process_poll(p, &rc), 0);
    assert_int_equal(rc, 0);
    assert_int_equal(out.len, n);
    assert_int_equal(err.len, n);
    assert_memory_equal(out.data, input, n);
    assert_true(all_zero(err.data, n));
    assert_int_equal(out.data[n], '\0');
    assert_int_equal(cc_process_stdout_fd(p), -1); /* closed at EOF */
    free(input);
    cc_bytes_free(&out);
    cc_bytes_free(&err);
    cc_process_free(p);
}

static bool sigpipe_pending(void)
{
    sigset_t set;
    sigpending(&set);
    return sigismember(&set, SIGPIPE);
}

/* The child exits without reading: EPIPE ends the input, no SIGPIPE kills us
 * (its default action would end this test program). */
static void communicate_child_never_reads_input(void **state)
{
    size_t n = 16 * MIB;
    char *input = make_pattern(n);
    char *scripts[] = {"exit 3", "exec 0<&-; sleep 0.1; echo done"};
    for (int i = 0; i < 2; i++) {
        cc_spawn_options o = {.stdin_io = pipe_io, .stdout_io = pipe_io};
        cc_process *p;
        assert_int_equal(cc_process_spawn(&p, ARGV("sh", "-c", scripts[i]), &o),
                         0);
        cc_bytes out = {0};
        assert_int_equal(
            cc_process_communicate(p, input, n, CC_FOREVER, &out, NULL), 0);
        int rc;
        assert_int_equal(cc_process_poll(p, &rc), 0);
        assert_int_equal(rc, i == 0 ? 3 : 0);
        assert_string_equal(i == 0 ? "" : "done\n", out.len ? out.data : "");
        assert_false(sigpipe_pending());
        cc_bytes_free(&out);
        cc_process_free(p);
    }
    free(input);
}

/* As Python: a timed-out communicate leaves the child running and keeps what
 * was read; calling it again goes on. */
/* The child answers "abc", then holds on until the test creates a flag file:
 * communicate times out (however slow the machine) and resumes. */
static void communicate_times_out_and_resumes(void **state)
{
    char flag[] = "/tmp/concur-test-flag-XXXXXX", script[256];
    int fd = mkstemp(flag);
    assert_true(fd >= 0);
    close(fd);
    unlink(flag);
    snprintf(script, sizeof script,
             "head -c 3; echo; while [ ! -e %s ]; do sleep 0.01; done; cat", flag);
    cc_spawn_options o = {.stdin_io = pipe_io, .stdout_io = pipe_io};
    cc_process *p;
    char *argv[] = {"sh", "-c", script, NULL};
    assert_int_equal(cc_process_spawn(&p, argv, &o), 0);
    cc_bytes out = {0};
    for (int i = 0; i < 1000 && out.len < 4; i++) {
        int64_t t0 = cc_now();
        int r = cc_process_communicate(p, "abcdef", 6,
                                       cc_deadline_in(20 * CC_MSEC), &out, NULL);
        assert_int_equal(r, -ETIMEDOUT);
        assert_true(cc_now() - t0 >= 20 * CC_MSEC); /* never early */
    }
    assert_int_equal(cc_process_poll(p, NULL), -EAGAIN); /* not killed */
    assert_string_equal(out.data, "abc\n");
    fd = open(flag, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(
        cc_process_communicate(p, "abcdef", 6, CC_FOREVER, &out, NULL), 0);
    assert_string_equal(out.data, "abc\ndef");
    unlink(flag);
    cc_bytes_free(&out);
    cc_process_free(p);
}

static void communicate_rejects_input_without_stdin_pipe(void **state)
{
    cc_process *p;
    assert_int_equal(cc_process_spawn(&p, ARGV("true"), NULL), 0);
    assert_int_equal(cc_process_communicate(p, "x", 1, CC_FOREVER, NULL, NULL),
                     -EINVAL);
    assert_int_equal(cc_process_communicate(p, NULL, 0, CC_FOREVER, NULL, NULL),
                     0);
    cc_process_free(p);
}

/* ---- run ----------------------------------------------------------------- */

static void run_captures_output_and_input(void **state)
{
    cc_run_options o = {
        .capture_output = true, .input = "x y\n", .input_len = 4};
    cc_completed_process r;
    char *argv[] = {"sh", "-c", "tr x z; echo e >&2; exit 4", NULL};
    assert_int_equal(cc_run(argv, &o, CC_FOREVER, &r), 0);
    assert_true(r.started);
    assert_int_equal(r.returncode, 4);
    assert_string_equal(r.out.data, "z y\n");
    assert_string_equal(r.err.data, "e\n");
    cc_completed_process_free(&r);
    o.check = true;
    assert_int_equal(cc_run(argv, &o, CC_FOREVER, &r), -ECHILD);
    assert_int_equal(r.returncode,
                     4); /* still available, as CalledProcessError */
    cc_completed_process_free(&r);
    assert_int_equal(cc_run(ARGV("true"), &o, CC_FOREVER, &r), 0);
    cc_completed_process_free(&r);
    assert_int_equal(
        cc_run(ARGV("concur-no-such-program"), NULL, CC_FOREVER, &r), -ENOENT);
    assert_false(r.started);
    cc_completed_process_free(&r);
}

/* A child that prints nothing leaves empty buffers that are still strings. */
static void run_empty_output_is_an_empty_string(void **state)
{
    cc_run_options o = {.capture_output = true};
    cc_completed_process r;
    assert_int_equal(cc_run(ARGV("true"), &o, CC_FOREVER, &r), 0);
    assert_int_equal(r.out.len, 0);
    assert_non_null(r.out.data);
    assert_string_equal(r.out.data, "");
    assert_string_equal(r.err.data, "");
    cc_completed_process_free(&r);
}

/* The shell's background grandchild holds stdout open: the timeout must kill
 * the whole group and return at once, the grandchild gone. */
static void run_timeout_kills_shell_and_grandchild(void **state)
{
    cc_run_options o = {.capture_output = true};
    cc_completed_process r;
    char *argv[] = {"sh", "-c", "sleep 100 & echo $!; sleep 100", NULL};
    int64_t t0 = cc_now();
    assert_int_equal(cc_run(argv, &o, cc_deadline_in(300 * CC_MSEC), &r),
                     -ETIMEDOUT);
    int64_t took = cc_now() - t0;
    assert_true(took >= 300 * CC_MSEC);
    assert_true(took < 10 * CC_SEC); /* not the 100 s of the sleeps */
    assert_int_equal(r.returncode, -SIGKILL);
    pid_t grandchild = atoi(r.out.data);
    assert_true(grandchild > 0);
    assert_true(pid_gone(grandchild));
    cc_completed_process_free(&r);
}

/* A grandchild that left the group (setsid) survives the kill and keeps the
 * pipe open: run still returns at the deadline instead of waiting for EOF. */
static void run_timeout_does_not_wait_for_escaped_grandchild(void **state)
{
    cc_run_options o = {.capture_output = true};
    cc_completed_process r;
    char *argv[] = {"sh", "-c", "setsid sleep 100 & echo $!; sleep 100", NULL};
    int64_t t0 = cc_now();
    assert_int_equal(cc_run(argv, &o, cc_deadline_in(300 * CC_MSEC), &r),
                     -ETIMEDOUT);
    assert_true(cc_now() - t0 < 10 * CC_SEC);
    pid_t escaped = atoi(r.out.data);
    assert_true(escaped > 0);
    assert_int_equal(kill(escaped, SIGKILL), 0); /* it was still alive */
    assert_true(pid_gone(escaped));
    cc_completed_process_free(&r);
}

/* The child itself exits at once; its background grandchild holds stdout
 * open until the deadline: the returncode is the child's own, not -9. */
static void run_timeout_keeps_the_exited_childs_returncode(void **state)
{
    cc_run_options o = {.capture_output = true};
    cc_completed_process r;
    char *argv[] = {"sh", "-c", "sleep 100 & echo $!; exit 3", NULL};
    assert_int_equal(cc_run(argv, &o, cc_deadline_in(300 * CC_MSEC), &r),
                     -ETIMEDOUT);
    assert_int_equal(r.returncode, 3);
    pid_t grandchild = atoi(r.out.data);
    assert_true(grandchild > 0);
    assert_true(pid_gone(grandchild)); /* the group was still killed */
    cc_completed_process_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CC_TEST(communicate_100mib_each_way),
        CC_TEST(communicate_child_never_reads_input),
        CC_TEST(communicate_times_out_and_resumes),
        CC_TEST(communicate_rejects_input_without_stdin_pipe),
        CC_TEST(run_captures_output_and_input),
        CC_TEST(run_empty_output_is_an_empty_string),
        CC_TEST(run_timeout_kills_shell_and_grandchild),
        CC_TEST(run_timeout_does_not_wait_for_escaped_grandchild),
        CC_TEST(run_timeout_keeps_the_exited_childs_returncode),
    };
    return CC_RUN_TESTS(tests);
}
