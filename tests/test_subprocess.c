/*
 * test_subprocess.c: child processes (include/concur/subprocess.h): spawn,
 * wait and poll, spawn errors, cwd and env, each stdio mode, process groups,
 * fd hygiene, signals. communicate and run: tests/test_communicate.c.
 */
#include "subprocess_test.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------- */

/* Spawn argv with opts, wait, return its returncode. */
static int run_rc(char *const argv[], const cc_spawn_options *opts)
{
    cc_process *p;
    assert_int_equal(cc_process_spawn(&p, argv, opts), 0);
    int rc = 12345;
    assert_int_equal(cc_process_wait(p, CC_FOREVER, &rc), 0);
    cc_process_free(p);
    return rc;
}

/* Spawn argv with stdout piped (opts' other settings kept); its stdout. */
static cc_bytes run_out(char *const argv[], cc_spawn_options opts, int *rc)
{
    opts.stdout_io = pipe_io;
    cc_process *p;
    assert_int_equal(cc_process_spawn(&p, argv, &opts), 0);
    cc_bytes out = {0};
    assert_int_equal(cc_process_communicate(p, NULL, 0, CC_FOREVER, &out, NULL),
                     0);
    assert_int_equal(cc_process_poll(p, rc), 0);
    cc_process_free(p);
    return out;
}

/* The first line of a child's stdout, as a pid. */
static pid_t read_pid_line(int fd)
{
    char buf[32];
    size_t n = 0;
    while (n < sizeof buf - 1 && read(fd, buf + n, 1) == 1 && buf[n] != '\n')
        n++;
    buf[n] = '\0';
    return (pid_t)atoi(buf);
}

/* ---- spawn, wait, poll --------------------------------------------------- */

static void wait_gives_exit_status(void **state)
{
    assert_int_equal(run_rc(ARGV("true"), NULL), 0);
    assert_int_equal(run_rc(ARGV("false"), NULL), 1);
    assert_int_equal(run_rc(ARGV("sh", "-c", "exit 77"), NULL), 77);
}

static void wait_gives_minus_signal(void **state)
{
    assert_int_equal(run_rc(ARGV("sh", "-c", "kill -9 $$"), NULL), -SIGKILL);
    cc_process *p;
    assert_int_equal(cc_process_spawn(&p, ARGV("sleep", "100"), NULL), 0);
    assert_int_equal(cc_process_send_signal(p, SIGTERM), 0);
    int rc;
    assert_int_equal(cc_process_wait(p, CC_FOREVER, &rc), 0);
    assert_int_equal(rc, -SIGTERM);
    cc_process_free(p);
}

static void poll_is_eagain_while_running(void **state)
{
    cc_process *p;
    assert_int_equal(cc_process_spawn(&p, ARGV("sleep", "0.2"), NULL), 0);
    int rc = -1;
    assert_int_equal(cc_process_poll(p, &rc), -EAGAIN);
    assert_int_equal(cc_process_wait(p, CC_FOREVER, &rc), 0);
    assert_int_equal(rc, 0);
    rc = -1;
    assert_int_equal(cc_process_poll(p, &rc), 0); /* reaped: same answer */
    assert_int_equal(rc, 0);
    cc_process_free(p);
}

static void wait_times_out_never_early(void **state)
{
    cc_process *p;
    assert_int_equal(cc_process_spawn(&p, ARGV("sleep", "100"), NULL), 0);
    int64_t t0 = cc_now();
    assert_int_equal(cc_process_wait(p, cc_deadline_in(30 * CC_MSEC), NULL),
                     -ETIMEDOUT);
    assert_true(cc_now() - t0 >= 30 * CC_MSEC);
    assert_int_equal(cc_process_wait(p, CC_NOWAIT, NULL), -ETIMEDOUT);
    /* However far in the past: INT64_MIN - now overflowed into a ppoll of
     * some 292 years. */
    assert_int_equal(cc_process_wait(p, INT64_MIN, NULL), -ETIMEDOUT);
    assert_int_equal(cc_process_kill(p), 0);
    int rc;
    assert_int_equal(cc_process_wait(p, CC_FOREVER, &rc), 0);
    assert_int_equal(rc, -SIGKILL);
    /* Reaped: signals are no-ops (the pid may be recycled by now). */
    assert_int_equal(cc_process_send_signal(p, SIGKILL), 0);
    assert_int_equal(cc_process_terminate(p), 0);
    assert_int_equal(cc_process_kill(p), 0);
    cc_process_free(p);
}

static void free_kills_and_reaps_a_running_child(void **state)
{
    cc_process *p;
    cc_spawn_options o = {.stdout_io = pipe_io};
    assert_int_equal(cc_process_spawn(&p, ARGV("sleep", "100"), &o), 0);
    pid_t pid = cc_process_pid(p);
    cc_process_free(p); /* the teardown checks that no zombie is left */
    assert_true(kill(pid, 0) < 0 && errno == ESRCH);
}

/* ---- spawn errors -------------------------------------------------------- */

static void spawn_missing_program_is_enoent(void **state)
{
    cc_process *p = NULL;
    assert_int_equal(cc_process_spawn(&p, ARGV("concur-no-such-program"), NULL),
                     -ENOENT);
    assert_int_equal(cc_process_spawn(&p, ARGV("/nonexistent/prog"), NULL),
                     -ENOENT);
    cc_spawn_options o = {.stdout_io = pipe_io, .stdin_io = pipe_io};
    assert_int_equal(cc_process_spawn(&p, ARGV("concur-no-such-program"), &o),
                     -ENOENT);
    assert_null(p); /* and the teardown checks that no fd or child remains */
}

/* Write an executable-or-not file into a fresh temp dir; return its path. */
static void make_file(char *path, const char *content, mode_t mode)
{
    strcpy(path, "/tmp/concur-test-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)),
                     (ssize_t)strlen(content));
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static void spawn_not_executable_is_eacces_or_enoexec(void **state)
{
    char path[64];
    cc_process *p = NULL;
    make_file(path, "#!/bin/sh\nexit 0\n", 0644);
    assert_int_equal(cc_process_spawn(&p, ARGV(path), NULL), -EACCES);
    unlink(path);
    make_file(path,
              "\x7f"
              "ELF garbage",
              0755);
    assert_int_equal(cc_process_spawn(&p, ARGV(path), NULL), -ENOEXEC);
    unlink(path);
    make_file(path, "exit 5\n", 0755); /* no #!: no silent fallback to sh */
    assert_int_equal(cc_process_spawn(&p, ARGV(path), NULL), -ENOEXEC);
    unlink(path);
    assert_int_equal(cc_process_spawn(&p, ARGV("/tmp"), NULL), -EACCES);
    assert_null(p);
}

/* As execvp: a PATH search that met a non-executable file (EACCES) and
 * then a file that exists but cannot run reports that file's error, not
 * EACCES. Here the second fails with E2BIG: one argument over the
 * kernel's 128 KiB limit per string. */
static void spawn_path_search_reports_the_found_files_error(void **state)
{
    char a[] = "/tmp/concur-test-XXXXXX", b[] = "/tmp/concur-test-XXXXXX";
    char pa[64], pb[64], path[160];
    assert_non_null(mkdtemp(a));
    assert_non_null(mkdtemp(b));
    snprintf(pa, sizeof pa, "%s/concur-prog", a);
    snprintf(pb, sizeof pb, "%s/concur-prog", b);
    int fd = open(pa, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(symlink("/bin/true", pb), 0);
    char *old = getenv("PATH");
    char *saved = old ? strdup(old) : NULL;
    snprintf(path, sizeof path, "%s:%s", a, b);
    setenv("PATH", path, 1);
    size_t n = 200 * 1024;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, 'x', n);
    big[n] = '\0';
    cc_process *p = NULL;
    int r = cc_process_spawn(&p, ARGV("concur-prog", big), NULL);
    int r2 = cc_process_spawn(&p, ARGV("concur-prog"), NULL);
    if (r2 == 0) {
        assert_int_equal(cc_process_wait(p, CC_FOREVER, NULL), 0);
        cc_process_free(p);
    }
    saved ? setenv("PATH", saved, 1) : unsetenv("PATH");
    free(saved);
    free(big);
    unlink(pa), unlink(pb), rmdir(a), rmdir(b);
    assert_int_equal(r, -E2BIG);
    assert_int_equal(r2, 0); /* and without the big argument, it runs */
}

/* As execvp: an empty PATH entry (leading, inner or trailing) is the
 * current directory, the child's (after cwd); an empty PATH is too. */
static void spawn_path_empty_entry_is_the_cwd(void **state)
{
    char *old = getenv("PATH");
    char *saved = old ? strdup(old) : NULL;
    const char *paths[] = {":/nonexistent", "/nonexistent::/no", "/no:", ""};
    int r[4], rc[4];
    cc_spawn_options o = {.cwd = "/usr/bin"};
    for (int i = 0; i < 4; i++) {
        setenv("PATH", paths[i], 1);
        cc_process *p;
        rc[i] = -1;
        r[i] = cc_process_spawn(&p, ARGV("true"), &o);
        if (r[i] == 0) {
            cc_process_wait(p, CC_FOREVER, &rc[i]);
            cc_process_free(p);
        }
    }
    setenv("PATH", "/nonexistent", 1);
    cc_process *none = NULL;
    int r_none = cc_process_spawn(&none, ARGV("true"), &o);
    if (r_none == 0) {
        cc_process_wait(none, CC_FOREVER, NULL);
        cc_process_free(none);
    }
    saved ? setenv("PATH", saved, 1) : unsetenv("PATH");
    free(saved);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(r[i], 0);
        assert_int_equal(rc[i], 0);
    }
    assert_int_equal(r_none, -ENOENT); /* no empty entry: not searched */
}

static void spawn_rejects_bad_options(void **state)
{
    cc_process *p = NULL;
    cc_spawn_options o = {.stdout_io = {.mode = CC_STDIO_STDOUT}};
    assert_int_equal(cc_process_spawn(&p, ARGV("true"), &o), -EINVAL);
    o = (cc_spawn_options){.stdin_io = {.mode = CC_STDIO_FD, .fd = -1}};
    assert_int_equal(cc_process_spawn(&p, ARGV("true"), &o), -EINVAL);
    o = (cc_spawn_options){.stdout_io = {.mode = CC_STDIO_FD, .fd = 1000}};
    assert_int_equal(cc_process_spawn(&p, ARGV("true"), &o), -EBADF);
    assert_int_equal(cc_process_spawn(&p, (char *const[]){NULL}, NULL),
                     -EINVAL);
    assert_null(p);
}

/* ---- cwd and env --------------------------------------------------------- */

static void spawn_in_cwd(void **state)
{
    int rc;
    cc_bytes out =
        run_out(ARGV("pwd"), (cc_spawn_options){.cwd = "/usr/bin"}, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(out.data, "/usr/bin\n");
    cc_bytes_free(&out);
    /* A relative path with a slash is found from the new cwd, as Python. */
    out = run_out(ARGV("./true"), (cc_spawn_options){.cwd = "/usr/bin"}, &rc);
    assert_int_equal(rc, 0);
    cc_bytes_free(&out);
    cc_process *p;
    cc_spawn_options o = {.cwd = "/nonexistent-dir"};
    assert_int_equal(cc_process_spawn(&p, ARGV("true"), &o), -ENOENT);
}

static void spawn_with_env(void **state)
{
    char *env[] = {"CONCUR_A=1", "CONCUR_B=two words", NULL};
    int rc;
    cc_bytes out = run_out(ARGV("env"), (cc_spawn_options){.envp = env}, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(out.data, "CONCUR_A=1\nCONCUR_B=two words\n");
    cc_bytes_free(&out);
    setenv("CONCUR_INHERITED", "yes", 1);
    out = run_out(ARGV("sh", "-c", "echo $CONCUR_INHERITED"),
                  (cc_spawn_options){0}, &rc);
    assert_string_equal(out.data, "yes\n");
    cc_bytes_free(&out);
    unsetenv("CONCUR_INHERITED");
}

/* ---- stdio modes --------------------------------------------------------- */

static void stdio_devnull(void **state)
{
    int rc;
    cc_spawn_options o = {.stdin_io = {.mode = CC_STDIO_DEVNULL}};
    cc_bytes out = run_out(ARGV("cat"), o, &rc); /* reads EOF at once */
    assert_int_equal(rc, 0);
    assert_int_equal(out.len, 0);
    cc_bytes_free(&out);
    cc_process *p;
    o = (cc_spawn_options){.stdout_io = {.mode = CC_STDIO_DEVNULL},
                           .stderr_io = pipe_io};
    assert_int_equal(
        cc_process_spawn(&p, ARGV("sh", "-c", "echo hi; echo x >&2"), &o), 0);
    assert_int_equal(cc_process_stdout_fd(p), -1);
    cc_bytes err = {0};
    assert_int_equal(cc_process_communicate(p, NULL, 0, CC_FOREVER, NULL, &err),
                     0);
    assert_string_equal(err.data, "x\n");
    cc_bytes_free(&err);
    cc_process_free(p);
}

static void stdio_stderr_merged_into_stdout(void **state)
{
    int rc;
    cc_spawn_options o = {.stderr_io = {.mode = CC_STDIO_STDOUT}};
    cc_bytes out =
        run_out(ARGV("sh", "-c", "echo out; echo err >&2; echo out2"), o, &rc);
    assert_string_equal(out.data, "out\nerr\nout2\n");
    cc_bytes_free(&out);
}

static void stdio_given_fds(void **state)
{
    int in[2], out[2];
    assert_int_equal(pipe2(in, O_CLOEXEC), 0);
    assert_int_equal(pipe2(out, O_CLOEXEC), 0);
    cc_spawn_options o = {.stdin_io = {.mode = CC_STDIO_FD, .fd = in[0]},
                          .stdout_io = {.mode = CC_STDIO_FD, .fd = out[1]}};
    cc_process *p;
    assert_int_equal(cc_process_spawn(&p, ARGV("cat"), &o), 0);
    assert_int_equal(cc_process_stdin_fd(p), -1);
    close(in[0]); /* the caller may close its fds once spawn returned */
    close(out[1]);
    assert_int_equal(write(in[1], "given fds", 9), 9);
    close(in[1]);
    char buf[32] = {0};
    assert_int_equal(read(out[0], buf, sizeof buf), 9);
    assert_string_equal(buf, "given fds");
    close(out[0]);
    int rc;
    assert_int_equal(cc_process_wait(p, CC_FOREVER, &rc), 0);
    assert_int_equal(rc, 0);
    cc_process_free(p);
}

/* Zeroed options: the child writes to our own fd 1 and 2. */
static void stdio_inherit(void **state)
{
    int saved1 = dup(1), saved2 = dup(2), pa[2];
    assert_int_equal(pipe2(pa, O_CLOEXEC), 0);
    dup2(pa[1], 1);
    dup2(pa[1], 2);
    int rc = run_rc(ARGV("sh", "-c", "echo one; echo two >&2"), NULL);
    dup2(saved1, 1);
    dup2(saved2, 2);
    close(saved1), close(saved2), close(pa[1]);
    char a[32] = {0};
    assert_int_equal(read(pa[0], a, sizeof a), 8);
    close(pa[0]);
    assert_int_equal(rc, 0);
    assert_string_equal(a, "one\ntwo\n");
}

/* stdout given as fd 2 and stderr as fd 1: each dup2 must not clobber the
 * source of the next (sources on 0-2 are lifted first). */
static void stdio_given_low_fds_swap(void **state)
{
    int saved1 = dup(1), saved2 = dup(2), pa[2], pb[2];
    assert_int_equal(pipe2(pa, O_CLOEXEC), 0);
    assert_int_equal(pipe2(pb, O_CLOEXEC), 0);
    dup2(pa[1], 1); /* our fd 1 -> pipe a, fd 2 -> pipe b */
    dup2(pb[1], 2);
    cc_spawn_options o = {.stdout_io = {.mode = CC_STDIO_FD, .fd = 2},
                          .stderr_io = {.mode = CC_STDIO_FD, .fd = 1}};
    int rc = run_rc(ARGV("sh", "-c", "echo to-out; echo to-err >&2"), &o);
    dup2(saved1, 1);
    dup2(saved2, 2);
    close(saved1), close(saved2), close(pa[1]), close(pb[1]);
    char a[32] = {0}, b[32] = {0};
    assert_true(read(pa[0], a, sizeof a) > 0);
    assert_true(read(pb[0], b, sizeof b) > 0);
    close(pa[0]), close(pb[0]);
    assert_int_equal(rc, 0);
    assert_string_equal(a, "to-err\n"); /* stderr was given our fd 1 */
    assert_string_equal(b, "to-out\n");
}

/* ---- fd hygiene ---------------------------------------------------------- */

/* The child sees 0, 1, 2 and ls's own directory fd (3), nothing else, even
 * with a non-close-on-exec fd open in the parent. */
static void child_gets_only_its_stdio(void **state)
{
    int leaky[2];
    assert_int_equal(pipe(leaky), 0); /* deliberately inheritable */
    int rc;
    cc_spawn_options o = {.stdin_io = pipe_io, .stderr_io = pipe_io};
    cc_bytes out = run_out(ARGV("ls", "/proc/self/fd"), o, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(out.data, "0\n1\n2\n3\n");
    cc_bytes_free(&out);
    close(leaky[0]);
    close(leaky[1]);
}

/* The same with 3,000 inheritable fds open in the parent (the child takes
 * no copy of them on the clone path, and still must hold none). */
static void child_gets_only_its_stdio_among_many_fds(void **state)
{
    enum { N = 3000 };
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < N + 200) {
        print_message("skipped: RLIMIT_NOFILE %lu\n", (unsigned long)rl.rlim_cur);
        skip();
    }
    static int fds[N];
    for (int i = 0; i < N; i++)
        assert_true((fds[i] = open("/dev/null", O_RDONLY)) >= 0);
    int rc;
    cc_spawn_options o = {.stdin_io = pipe_io, .stderr_io = pipe_io};
    cc_bytes out = run_out(ARGV("ls", "/proc/self/fd"), o, &rc);
    for (int i = 0; i < N; i++)
        close(fds[i]);
    assert_int_equal(rc, 0);
    assert_string_equal(out.data, "0\n1\n2\n3\n");
    cc_bytes_free(&out);
}

static void *spawn_and_list_fds(void *arg)
{
    long n = (long)(intptr_t)arg;
    for (long i = 0; i < n; i++) {
        int rc;
        cc_spawn_options o = {.stdin_io = pipe_io, .stderr_io = pipe_io};
        cc_bytes out = run_out(ARGV("ls", "/proc/self/fd"), o, &rc);
        if (rc != 0 || strcmp(out.data, "0\n1\n2\n3\n") != 0)
            abort(); /* another thread's pipe leaked into this child */
        cc_bytes_free(&out);
    }
    return NULL;
}

static void concurrent_spawns_leak_no_pipes(void **state)
{
    pthread_t t[4];
    long n = cc_test_n(100);
    for (int i = 0; i < 4; i++)
        assert_int_equal(
            pthread_create(&t[i], NULL, spawn_and_list_fds, (void *)n), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
}

/* 10^4 children, 16 at a time: no fd and no zombie left (teardown). */
static void many_spawns_leak_nothing(void **state)
{
    enum { K = 16 };
    cc_process *p[K] = {0};
    long n = cc_test_n(10000);
    for (long i = 0; i < n + K; i++) {
        cc_process **slot = &p[i % K];
        if (*slot) {
            int rc = -1;
            assert_int_equal(cc_process_wait(*slot, CC_FOREVER, &rc), 0);
            assert_int_equal(rc, 0);
            cc_process_free(*slot);
            *slot = NULL;
        }
        if (i < n)
            assert_int_equal(cc_process_spawn(slot, ARGV("true"), NULL), 0);
    }
}

/* ---- process groups ------------------------------------------------------ */

static void group_signal_reaches_grandchildren(int (*signal_fn)(cc_process *),
                                               int sig)
{
    cc_process *p;
    cc_spawn_options o = {.stdout_io = pipe_io};
    assert_int_equal(
        cc_process_spawn(&p, ARGV("sh", "-c", "sleep 100 & echo $!; wait"), &o),
        0);
    pid_t grandchild = read_pid_line(cc_process_stdout_fd(p));
    assert_true(grandchild > 0);
    assert_int_equal(signal_fn(p), 0);
    int rc;
    assert_int_equal(cc_process_wait(p, CC_FOREVER, &rc), 0);
    assert_int_equal(rc, -sig);
    assert_true(pid_gone(grandchild));
    cc_process_free(p);
}

static void terminate_kills_the_group(void **state)
{
    group_signal_reaches_grandchildren(cc_process_terminate, SIGTERM);
}

static void kill_kills_the_group(void **state)
{
    group_signal_reaches_grandchildren(cc_process_kill, SIGKILL);
}

/* The child itself joins this process's group (setpgid, as a job-control
 * shell's jobs do): kill(-pgid) no longer reaches it, yet terminate and kill
 * must, as Python's (which signal the child); else it lives on and free, or
 * run at its deadline, waits for it forever. It prints its pid once moved. */
static void group_signal_reaches_a_child_that_left(int (*signal_fn)(cc_process *),
                                                   int sig)
{
    cc_process *p;
    cc_spawn_options o = {.stdout_io = pipe_io};
    char *argv[] = {"perl", "-e",
                    "setpgrp(0, getpgrp(getppid())) or die; $| = 1;"
                    " print \"$$\\n\"; sleep 100",
                    NULL};
    assert_int_equal(cc_process_spawn(&p, argv, &o), 0);
    assert_int_equal(read_pid_line(cc_process_stdout_fd(p)), cc_process_pid(p));
    assert_int_equal(getpgid(cc_process_pid(p)), getpgrp());
    assert_int_equal(signal_fn(p), 0);
    int rc = 0;
    assert_int_equal(cc_process_wait(p, cc_deadline_in(10 * CC_SEC), &rc), 0);
    assert_int_equal(rc, -sig);
    cc_process_free(p);
}

static void terminate_reaches_a_child_that_left_its_group(void **state)
{
    group_signal_reaches_a_child_that_left(cc_process_terminate, SIGTERM);
}

static void kill_reaches_a_child_that_left_its_group(void **state)
{
    group_signal_reaches_a_child_that_left(cc_process_kill, SIGKILL);
}
/* ---- concur's own fds (the clone path's slots) --------------------------- */

/* Spawn `echo hi` with stdout piped; 0 if it printed hi and its pipe reached
 * EOF within five seconds (no copy of the write end stayed in this
 * process), else a distinct non-zero code. No cmocka: runs in children. */
static int echo_hi_reaches_eof(void)
{
    cc_run_options o = {.capture_output = true};
    cc_completed_process r;
    int e = cc_run(ARGV("echo", "hi"), &o, cc_deadline_in(5 * CC_SEC), &r);
    bool ok = e == 0 && r.returncode == 0 && strcmp(r.out.data, "hi\n") == 0;
    cc_completed_process_free(&r);
    return ok ? 0 : e == -ETIMEDOUT ? 20 : 21;
}

/* Run in a fresh process (a re-exec of this test program) whose fd 0 was
 * closed before its first spawn: that spawn must not keep fd 0 for itself.
 * "lowest": the program's next open gets fd 0, as the close(0); open()
 * idiom expects. "close-again": the program closes fd 0 again and puts a
 * pipe's read end there; once it closed that end, a write gets EPIPE (no
 * copy of it hides in concur's fds). 0 if so. */
static int closed_stdin_helper(const char *what)
{
    close(0);
    cc_process *p;
    if (cc_process_spawn(&p, ARGV("true"), NULL) != 0)
        return 10;
    cc_process_wait(p, CC_FOREVER, NULL);
    cc_process_free(p);
    if (strcmp(what, "lowest") == 0) {
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        return fd == 0 ? echo_hi_reaches_eof() : 11;
    }
    close(0); /* ours, as far as this program knows, if anyone's */
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0 || pfd[0] != 0)
        return 12;
    int r = echo_hi_reaches_eof();
    if (r)
        return r;
    close(pfd[0]); /* the pipe's only reader */
    signal(SIGPIPE, SIG_IGN);
    return write(pfd[1], "x", 1) < 0 && errno == EPIPE ? 0 : 13;
}

static void spawn_keeps_no_fd_the_program_closed(void **state)
{
    const char *whats[] = {"lowest", "close-again"};
    for (int i = 0; i < 2; i++) {
        char *argv[] = {"/proc/self/exe", "--closed-stdin-helper",
                        (char *)whats[i], NULL};
        cc_run_options o = {.capture_output = true};
        cc_completed_process r;
        assert_int_equal(cc_run(argv, &o, cc_deadline_in(60 * CC_SEC), &r), 0);
        if (r.returncode != 0)
            print_message("%s: %d %s%s\n", whats[i], r.returncode,
                          r.out.data, r.err.data);
        assert_int_equal(r.returncode, 0);
        cc_completed_process_free(&r);
    }
}

/* A daemon closes every fd above 2 (as after fork) and opens its own, which
 * take the numbers concur's spawn fds had: a spawn must not dup over them,
 * and its pipes must still reach EOF. In a forked child; 0 if all well. */
static int fds_closed_under_concur(void *arg)
{
    enum { N = 40 }; /* pipe ends on fds 3 .. N + 2 */
    (void)arg;
    ino_t ino[N + 3];
    close_range(3, ~0U, 0);
    for (int fd = 3; fd < N + 3; fd += 2) {
        int pfd[2];
        if (pipe2(pfd, O_CLOEXEC) < 0 || pfd[0] != fd)
            return 30;
    }
    for (int fd = 3; fd < N + 3; fd++) {
        struct stat st;
        if (fstat(fd, &st) < 0)
            return 31;
        ino[fd] = st.st_ino;
    }
    int r = echo_hi_reaches_eof();
    r = r ? r : echo_hi_reaches_eof();
    for (int fd = 3; fd < N + 3 && r == 0; fd++) {
        struct stat st;
        if (fstat(fd, &st) < 0 || st.st_ino != ino[fd])
            r = 40 + fd; /* a spawn replaced this fd of ours */
    }
    close_range(3, ~0U, 0);
    return r;
}

static void spawn_survives_the_program_closing_its_fds(void **state)
{
    assert_int_equal(cc_test_reap(cc_test_fork(fds_closed_under_concur, NULL)),
                     0);
}

/* The child's fds 0-2, as its shell sees them, one line each (no
 * redirection: dash would apply it to itself around readlink); read from
 * its stdout: a pipe, or the fd o gives, whose read end is `in`. */
static int fd_links(cc_spawn_options o, int in, char *out, size_t size)
{
    char *argv[] = {"sh", "-c",
                    "for f in 0 1 2; do "
                    "readlink /proc/$$/fd/$f || echo closed; done",
                    NULL};
    cc_process *p;
    if (in < 0)
        o.stdout_io = pipe_io;
    if (cc_process_spawn(&p, argv, &o) != 0)
        return -1;
    cc_bytes b = {0};
    int r = in >= 0 ? cc_process_wait(p, cc_deadline_in(5 * CC_SEC), NULL)
                    : cc_process_communicate(p, NULL, 0,
                                             cc_deadline_in(5 * CC_SEC), &b,
                                             NULL);
    ssize_t n = in >= 0 ? read(in, out, size - 1) : 0;
    if (in < 0)
        snprintf(out, size, "%s", r == 0 && b.data ? b.data : "");
    else
        out[n > 0 ? n : 0] = '\0';
    cc_bytes_free(&b);
    cc_process_free(p);
    return r;
}

/* With the parent's fds 0-2 closed (its pipes and /dev/null then land
 * there, or the child's /dev/null opens do): each mode still puts the
 * right file on each child fd. In a forked child; 0 if all well. */
static int stdio_with_parent_stdio_closed(void *arg)
{
    (void)arg;
    char a[256], b[256], c[256], want[256], pipe_line[64];
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0)
        return 49;
    close(0), close(1), close(2);
    cc_spawn_options dn_out = {.stdin_io = {.mode = CC_STDIO_DEVNULL},
                               .stderr_io = {.mode = CC_STDIO_STDOUT}};
    cc_spawn_options dn_fd = {
        .stdin_io = {.mode = CC_STDIO_DEVNULL},
        .stdout_io = {.mode = CC_STDIO_FD, .fd = pfd[1]},
        .stderr_io = {.mode = CC_STDIO_DEVNULL}};
    if (fd_links(dn_out, -1, a, sizeof a) != 0 ||
        fd_links((cc_spawn_options){0}, -1, b, sizeof b) != 0 ||
        fd_links(dn_fd, pfd[0], c, sizeof c) != 0)
        return 50;
    if (sscanf(a, "/dev/null\n%63s\n", pipe_line) != 1 ||
        strncmp(pipe_line, "pipe:", 5) != 0)
        return 51;
    snprintf(want, sizeof want, "/dev/null\n%s\n%s\n", pipe_line, pipe_line);
    if (strcmp(a, want) != 0)
        return 52;
    if (sscanf(b, "closed\n%63s\nclosed\n", pipe_line) != 1 ||
        strncmp(pipe_line, "pipe:", 5) != 0)
        return 53; /* inherited: closed as in the parent */
    if (sscanf(c, "/dev/null\n%63s\n/dev/null\n", pipe_line) != 1 ||
        strncmp(pipe_line, "pipe:", 5) != 0)
        return 54;
    return 0;
}

static void stdio_when_the_parents_stdio_is_closed(void **state)
{
    assert_int_equal(
        cc_test_reap(cc_test_fork(stdio_with_parent_stdio_closed, NULL)), 0);
}

static void *spawn_true_loop(void *arg)
{
    _Atomic bool *stop = arg;
    while (!*stop) {
        cc_process *p;
        if (cc_process_spawn(&p, ARGV("true"), &(cc_spawn_options){
                                 .stdout_io = pipe_io}) != 0)
            abort();
        cc_process_wait(p, CC_FOREVER, NULL);
        cc_process_free(p);
    }
    return NULL;
}

static int spawn_after_fork(void *arg)
{
    (void)arg;
    alarm(5); /* a spawn lock copied held: SIGALRM aborts, the test fails */
    return echo_hi_reaches_eof();
}

/* Forks while another thread spawns (often with concur's spawn lock held,
 * across the clone and the exec): each forked child can spawn in turn. */
static void fork_while_another_thread_spawns(void **state)
{
    _Atomic bool stop = false;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, spawn_true_loop, &stop), 0);
    long n = cc_test_n(200);
    int bad = 0;
    for (long i = 0; i < n && !bad; i++)
        bad = cc_test_reap(cc_test_fork(spawn_after_fork, NULL));
    stop = true;
    pthread_join(t, NULL);
    assert_int_equal(bad, 0);
}

/* ---- concurrency, signal state, allocation failures ---------------------- */

struct shared_child {
    cc_process *p; /* waited for by every thread */
    int rc[4];     /* what each thread saw */
};

static void *wait_shared(void *arg)
{
    struct shared_child *sc = arg;
    static _Atomic int next;
    int i = next++ % 4;
    if (cc_process_wait(sc->p, CC_FOREVER, &sc->rc[i]) != 0)
        sc->rc[i] = 1000;
    return NULL;
}

/* Several threads wait for one child while another kills it: one reaps, all
 * see the same returncode. The pidfd also works in the caller's own poll. */
static void concurrent_waiters_see_one_returncode(void **state)
{
    struct shared_child sc = {0};
    assert_int_equal(cc_process_spawn(&sc.p, ARGV("sleep", "100"), NULL), 0);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, wait_shared, &sc), 0);
    struct pollfd pfd = {.fd = cc_process_pidfd(sc.p), .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, 20), 0); /* still running */
    assert_int_equal(cc_process_kill(sc.p), 0);
    assert_int_equal(poll(&pfd, 1, -1), 1);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 4; i++)
        assert_int_equal(sc.rc[i], -SIGKILL);
    cc_process_free(sc.p);
}

/* The child starts with an empty signal mask and SIGPIPE at its default, even
 * when the parent blocks SIGTERM and ignores SIGPIPE. */
static void child_signal_state_is_reset(void **state)
{
    sigset_t term, old;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &term, &old);
    void (*old_pipe)(int) = signal(SIGPIPE, SIG_IGN);
    assert_int_equal(run_rc(ARGV("sh", "-c", "kill -PIPE $$; exit 0"), NULL),
                     -SIGPIPE);
    cc_process *p;
    assert_int_equal(cc_process_spawn(&p, ARGV("sleep", "100"), NULL), 0);
    assert_int_equal(cc_process_terminate(p), 0);
    int rc;
    assert_int_equal(cc_process_wait(p, CC_FOREVER, &rc), 0);
    assert_int_equal(rc, -SIGTERM);
    cc_process_free(p);
    signal(SIGPIPE, old_pipe);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* A "SigXxx:" mask of /proc/<pid>/status (pid 0: this process); once the
 * process runs `sleep` (it has exec'd). */
static uint64_t sig_mask_of(pid_t pid, const char *field)
{
    char path[64], line[256];
    if (pid)
        snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    else
        snprintf(path, sizeof path, "/proc/self/status");
    for (int i = 0; i < 500; i++) {
        FILE *f = fopen(path, "re");
        assert_non_null(f);
        bool sleeping = pid == 0;
        uint64_t v = ~0ULL;
        while (fgets(line, sizeof line, f)) {
            if (strcmp(line, "Name:\tsleep\n") == 0)
                sleeping = true;
            if (strncmp(line, field, strlen(field)) == 0)
                v = strtoull(line + strlen(field) + 2, NULL, 16);
        }
        fclose(f);
        if (sleeping)
            return v;
        usleep(10000);
    }
    fail_msg("%d never ran sleep", (int)pid);
    return 0;
}

static void on_usr1(int sig) { (void)sig; }

/* After exec: no signal blocked (real-time ones included), the parent's
 * ignored signals still ignored but SIGPIPE and SIGXFSZ, as posix_spawn
 * with concur's attributes. Signals 32 and 33 are not compared: glibc's
 * posix_spawn leaves its internal signals ignored, the clone path not. */
static void child_signal_masks_after_exec(void **state)
{
    const uint64_t glibc_internal = 3ULL << 31;
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGRTMIN + 2);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    struct sigaction sa = {.sa_handler = on_usr1}, old_usr1;
    sigaction(SIGUSR1, &sa, &old_usr1);
    void (*old_usr2)(int) = signal(SIGUSR2, SIG_IGN);
    void (*old_pipe)(int) = signal(SIGPIPE, SIG_IGN);
    void (*old_xfsz)(int) = signal(SIGXFSZ, SIG_IGN);
    uint64_t ign = sig_mask_of(0, "SigIgn");
    cc_process *p;
    assert_int_equal(cc_process_spawn(&p, ARGV("sleep", "100"), NULL), 0);
    uint64_t blk = sig_mask_of(cc_process_pid(p), "SigBlk");
    uint64_t cign = sig_mask_of(cc_process_pid(p), "SigIgn");
    uint64_t cgt = sig_mask_of(cc_process_pid(p), "SigCgt");
    cc_process_free(p);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    sigaction(SIGUSR1, &old_usr1, NULL);
    signal(SIGUSR2, old_usr2);
    signal(SIGPIPE, old_pipe);
    signal(SIGXFSZ, old_xfsz);
    assert_true(ign & (1ULL << (SIGUSR2 - 1))); /* /proc reads right */
    assert_int_equal(blk, 0);
    assert_int_equal(cgt, 0);
    uint64_t dfl = (1ULL << (SIGPIPE - 1)) | (1ULL << (SIGXFSZ - 1));
    assert_int_equal(cign & ~glibc_internal, ign & ~dfl & ~glibc_internal);
}

static void allocation_failures_are_reported_and_recoverable(void **state)
{
    cc_process *p = NULL;
    cc_spawn_options o = {.stdout_io = pipe_io};
    cc_test_alloc_fail_after(0);
    assert_int_equal(cc_process_spawn(&p, ARGV("true"), &o), -ENOMEM);
    assert_null(p);
    cc_test_alloc_normal();
    char *argv[] = {"sh", "-c", "echo partial", NULL};
    assert_int_equal(cc_process_spawn(&p, argv, &o), 0);
    cc_test_alloc_fail_after(0); /* the output buffer */
    cc_bytes out = {0};
    assert_int_equal(cc_process_communicate(p, NULL, 0, CC_FOREVER, &out, NULL),
                     -ENOMEM);
    cc_test_alloc_fail_after(100); /* memory is back: the same call goes on */
    assert_int_equal(cc_process_communicate(p, NULL, 0, CC_FOREVER, &out, NULL),
                     0);
    assert_string_equal(out.data, "partial\n");
    cc_bytes_free(&out);
    cc_process_free(p);
    /* Each allocation in turn fails: in the spawn (1 or 2 of them, the
     * clone path's PATH candidates), then in the output, once started. */
    cc_completed_process r;
    cc_run_options ro = {.capture_output = true};
    bool started = false;
    for (long k = 0; k < 4 && !started; k++) {
        cc_test_alloc_fail_after(k);
        assert_int_equal(cc_run(argv, &ro, CC_FOREVER, &r), -ENOMEM);
        started = r.started;
        cc_completed_process_free(&r);
    }
    assert_true(started); /* and the child was killed and reaped (teardown) */
    cc_test_alloc_normal();
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--closed-stdin-helper") == 0)
        return closed_stdin_helper(argv[2]);
    const struct CMUnitTest tests[] = {
        CC_TEST(wait_gives_exit_status),
        CC_TEST(wait_gives_minus_signal),
        CC_TEST(poll_is_eagain_while_running),
        CC_TEST(wait_times_out_never_early),
        CC_TEST(free_kills_and_reaps_a_running_child),
        CC_TEST(spawn_missing_program_is_enoent),
        CC_TEST(spawn_not_executable_is_eacces_or_enoexec),
        CC_TEST(spawn_path_search_reports_the_found_files_error),
        CC_TEST(spawn_path_empty_entry_is_the_cwd),
        CC_TEST(spawn_rejects_bad_options),
        CC_TEST(spawn_in_cwd),
        CC_TEST(spawn_with_env),
        CC_TEST(stdio_inherit),
        CC_TEST(stdio_devnull),
        CC_TEST(stdio_stderr_merged_into_stdout),
        CC_TEST(stdio_given_fds),
        CC_TEST(stdio_given_low_fds_swap),
        CC_TEST(child_gets_only_its_stdio),
        CC_TEST(child_gets_only_its_stdio_among_many_fds),
        CC_TEST(concurrent_spawns_leak_no_pipes),
        CC_TEST(many_spawns_leak_nothing),
        CC_TEST(terminate_kills_the_group),
        CC_TEST(kill_kills_the_group),
        CC_TEST(terminate_reaches_a_child_that_left_its_group),
        CC_TEST(kill_reaches_a_child_that_left_its_group),
        CC_TEST(spawn_keeps_no_fd_the_program_closed),
        CC_TEST(spawn_survives_the_program_closing_its_fds),
        CC_TEST(stdio_when_the_parents_stdio_is_closed),
        CC_TEST(fork_while_another_thread_spawns),
        CC_TEST(concurrent_waiters_see_one_returncode),
        CC_TEST(child_signal_state_is_reset),
        CC_TEST(child_signal_masks_after_exec),
        CC_TEST(allocation_failures_are_reported_and_recoverable),
    };
    return CC_RUN_TESTS(tests);
}
