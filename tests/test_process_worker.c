/*
 * test_process_worker.c: worker processes (include/concur/process.h) with
 * the spawn and fork start methods: a registered function's result as
 * bytes, exit codes (a return value, exit, a signal), kill, terminate, join
 * with a timeout, daemon workers that die with their parent, passed fds
 * (shared memory seen across spawn), large arguments and results, errors.
 *
 * main() calls cc_worker_main_hook first: a spawned worker is this very
 * program run again, and never gets to the tests.
 */
#include "testutil.h"

#include <concur/process.h>
#include <concur/ipc.h>
#include <concur/shm.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MIB ((size_t)1024 * 1024)
#define SEC_DEADLINE(s) cc_deadline_in((int64_t)(s) * CC_SEC)

/* ---- worker functions (registered before main by CC_WORKER_FUNCTION) ---- */

/* The classic CPU-bound task: sum of i*i for i < n (n: 8 bytes). */
static int sum_squares(const void *arg, size_t len, cc_bytes *result)
{
    uint64_t n, sum = 0;
    if (len != sizeof n)
        return 2;
    memcpy(&n, arg, sizeof n);
    for (uint64_t i = 0; i < n; i++)
        sum += i * i;
    return cc_bytes_append(result, &sum, sizeof sum) == 0 ? 0 : 3;
}
CC_WORKER_FUNCTION(sum_squares)

/* Return the byte given (an exit code); a result of "ret" first. */
static int return_code(const void *arg, size_t len, cc_bytes *result)
{
    cc_bytes_append(result, "ret", 3);
    return len == 1 ? *(const unsigned char *)arg : 300;
}
CC_WORKER_FUNCTION(return_code)

static int call_exit(const void *arg, size_t len, cc_bytes *result)
{
    (void)arg, (void)len, (void)result;
    exit(7);
}
CC_WORKER_FUNCTION(call_exit)

static int call_abort(const void *arg, size_t len, cc_bytes *result)
{
    (void)arg, (void)len, (void)result;
    signal(SIGABRT, SIG_DFL);
    abort();
}
CC_WORKER_FUNCTION(call_abort)

static int sleep_forever(const void *arg, size_t len, cc_bytes *result)
{
    (void)arg, (void)len, (void)result;
    for (;;)
        pause();
    return 0;
}
CC_WORKER_FUNCTION(sleep_forever)

/* The argument back, as the result. */
static int echo(const void *arg, size_t len, cc_bytes *result)
{
    return cc_bytes_append(result, arg, len) == 0 ? 0 : 3;
}
CC_WORKER_FUNCTION(echo)

/* Attach the segment passed as fd 0 and fill it with 'w'. */
static int fill_passed_segment(const void *arg, size_t len, cc_bytes *result)
{
    (void)arg, (void)len, (void)result;
    cc_shm *s;
    if (cc_shm_attach(&s, cc_worker_passed_fd(0)) != 0)
        return 2;
    memset(cc_shm_data(s), 'w', cc_shm_size(s));
    cc_shm_close(s);
    return 0;
}
CC_WORKER_FUNCTION(fill_passed_segment)

/* Open the named segment whose name is the argument; add 1 to its int. */
static int bump_named_segment(const void *arg, size_t len, cc_bytes *result)
{
    (void)result;
    char name[64];
    cc_shm *s;
    if (len >= sizeof name)
        return 2;
    memcpy(name, arg, len);
    name[len] = 0;
    if (cc_shm_open(&s, name, 0, 0, 0) != 0)
        return 3;
    CC_SHM_ARRAY(s, int)[0]++;
    cc_shm_close(s);
    return 0;
}
CC_WORKER_FUNCTION(bump_named_segment)

/* Put the argument into the queue at the start of the passed segment. */
static int put_into_passed_queue(const void *arg, size_t len, cc_bytes *result)
{
    (void)result;
    cc_shm *s;
    if (cc_shm_attach(&s, cc_worker_passed_fd(0)) != 0)
        return 2;
    int r = cc_ipc_queue_put(cc_shm_data(s), arg, len,
                             cc_deadline_in(60 * CC_SEC));
    cc_shm_close(s);
    return r == 0 ? 0 : 3;
}
CC_WORKER_FUNCTION(put_into_passed_queue)

/* The fds this process has open, as text. */
static int list_fds(const void *arg, size_t len, cc_bytes *result)
{
    (void)arg, (void)len;
    char line[32];
    for (int fd = 0; fd < 1024; fd++)
        if (fcntl(fd, F_GETFD) >= 0) {
            snprintf(line, sizeof line, "%d ", fd);
            cc_bytes_append(result, line, strlen(line));
        }
    return 0;
}
CC_WORKER_FUNCTION(list_fds)

/* 0 when stdin is /dev/null. */
static int stdin_is_devnull(const void *arg, size_t len, cc_bytes *result)
{
    (void)arg, (void)len, (void)result;
    struct stat in, null;
    if (fstat(0, &in) < 0 || stat("/dev/null", &null) < 0)
        return 2;
    return S_ISCHR(in.st_mode) && in.st_rdev == null.st_rdev ? 0 : 1;
}
CC_WORKER_FUNCTION(stdin_is_devnull)

/* ---- helpers ------------------------------------------------------------- */

static const cc_worker_options spawn_opts = {.start_method = CC_START_SPAWN};
static const cc_worker_options fork_opts = {.start_method = CC_START_FORK};
static const cc_worker_options fs_opts = {.start_method = CC_START_FORKSERVER};
/* Every start method; tests that use them stop the forkserver at the end. */
static const cc_worker_options *all_methods[] = {&spawn_opts, &fork_opts,
                                                 &fs_opts};

static uint64_t squares_below(uint64_t n)
{
    uint64_t sum = 0;
    for (uint64_t i = 0; i < n; i++)
        sum += i * i;
    return sum;
}

/* Start `name` with arg, join, check the exit code; its result. */
static cc_bytes run_worker(const char *name, const void *arg, size_t len,
                           const cc_worker_options *o, int want_code)
{
    cc_worker *w;
    assert_int_equal(cc_worker_start(&w, name, arg, len, o), 0);
    int code = 12345;
    assert_int_equal(cc_worker_join(w, SEC_DEADLINE(60), &code), 0);
    assert_int_equal(code, want_code);
    assert_false(cc_worker_is_alive(w));
    cc_bytes out = {0};
    assert_int_equal(cc_worker_result(w, &out), 0);
    cc_worker_free(w);
    return out;
}

/* ---- results and exit codes ---------------------------------------------- */

static void check_sum_squares(const cc_worker_options *o)
{
    for (uint64_t n = 0; n < 300000; n = n * 3 + 1000) {
        cc_bytes out = run_worker("sum_squares", &n, sizeof n, o, 0);
        uint64_t got;
        assert_int_equal(out.len, sizeof got);
        memcpy(&got, out.data, sizeof got);
        assert_true(got == squares_below(n));
        cc_bytes_free(&out);
    }
}

static void spawn_computes_sum_of_squares(void **state)
{
    (void)state;
    check_sum_squares(&spawn_opts);
    check_sum_squares(NULL); /* spawn is the default */
}

/* fork and forkserver: by name, and by function pointer. */
static void fork_and_forkserver_compute_sum_of_squares(void **state)
{
    (void)state;
    for (int m = 1; m < 3; m++) {
        check_sum_squares(all_methods[m]);
        cc_worker *w;
        uint64_t n = 1234, got;
        assert_int_equal(cc_worker_start_fn(&w, sum_squares, &n, sizeof n,
                                            all_methods[m]), 0);
        assert_int_equal(cc_worker_join(w, SEC_DEADLINE(60), NULL), 0);
        cc_bytes out = {0};
        assert_int_equal(cc_worker_result(w, &out), 0);
        memcpy(&got, out.data, sizeof got);
        assert_true(got == squares_below(n));
        cc_bytes_free(&out);
        cc_worker_free(w);
    }
    cc_forkserver_stop();
}

static void forkserver_stop_kills_what_runs(void **state)
{
    (void)state;
    cc_worker *w[3];
    int code;
    assert_int_equal(cc_forkserver_start(), 0);
    assert_int_equal(cc_forkserver_start(), 0); /* already running */
    for (int i = 0; i < 3; i++)
        assert_int_equal(cc_worker_start(&w[i], "sleep_forever", NULL, 0,
                                         &fs_opts), 0);
    assert_true(cc_worker_is_alive(w[0]));
    assert_int_equal(cc_worker_join(w[0], cc_deadline_in(20 * CC_MSEC), &code),
                     -ETIMEDOUT);
    cc_worker_free(w[0]); /* killed and reaped through the server */
    cc_forkserver_stop();
    for (int i = 1; i < 3; i++) {
        assert_int_equal(cc_worker_join(w[i], CC_NOWAIT, &code), 0);
        assert_int_equal(code, -SIGKILL);
        cc_worker_free(w[i]);
    }
    cc_forkserver_stop(); /* no server: nothing to do */
    /* a new one is made on demand */
    cc_bytes out = run_worker("return_code", &(unsigned char){5}, 1, &fs_opts,
                              5);
    cc_bytes_free(&out);
    cc_forkserver_stop();
}

/* In a forked child: use the forkserver (inherited from the parent, which
 * started it), stop it, exit 0 if all went well. */
static _Noreturn void forked_child_uses_the_forkserver(void)
{
    cc_worker *w;
    int code = -1;
    unsigned char five = 5;
    if (cc_worker_start(&w, "return_code", &five, 1, &fs_opts) != 0)
        _exit(1);
    if (cc_worker_join(w, SEC_DEADLINE(30), &code) != 0 || code != 5)
        _exit(2);
    cc_worker_free(w);
    cc_forkserver_stop();
    _exit(0);
}

/* The parent's forkserver is not the child's: a forked child that uses
 * and stops "its" forkserver leaves the parent's server, and the workers
 * it runs, alone (they shared the socket: the child's stop ended the
 * parent's server and killed its workers). */
static void forked_child_has_its_own_forkserver(void **state)
{
    (void)state;
    for (long i = 0; i < cc_test_n(3); i++) {
        cc_worker *w;
        int code, st;
        assert_int_equal(cc_worker_start(&w, "sleep_forever", NULL, 0,
                                         &fs_opts), 0);
        pid_t child = fork();
        assert_true(child >= 0);
        if (child == 0)
            forked_child_uses_the_forkserver();
        assert_int_equal(waitpid(child, &st, 0), child);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        assert_int_equal(cc_worker_join(w, cc_deadline_in(50 * CC_MSEC),
                                        &code), -ETIMEDOUT);
        cc_worker_free(w);
    }
    cc_forkserver_stop();
}

/* The classic example: 20 values of n near 5,000,000, one worker each, all
 * running at once, give what a sequential run gives. */
static void cpu_bound_split_over_processes(void **state)
{
    (void)state;
    enum { N = 20 };
    cc_worker *w[N];
    uint64_t n[N];
    for (int i = 0; i < N; i++) {
        n[i] = 5000000 + (uint64_t)i * 1000;
        assert_int_equal(cc_worker_start(&w[i], "sum_squares", &n[i],
                                         sizeof n[i], NULL), 0);
    }
    for (int i = 0; i < N; i++) {
        int code;
        uint64_t got;
        cc_bytes out = {0};
        assert_int_equal(cc_worker_join(w[i], SEC_DEADLINE(120), &code), 0);
        assert_int_equal(code, 0);
        assert_int_equal(cc_worker_result(w[i], &out), 0);
        assert_int_equal(out.len, sizeof got);
        memcpy(&got, out.data, sizeof got);
        assert_true(got == squares_below(n[i]));
        cc_bytes_free(&out);
        cc_worker_free(w[i]);
    }
}

static void exit_codes(void **state)
{
    (void)state;
    const cc_worker_options **opts = all_methods;
    for (int m = 0; m < 3; m++) {
        unsigned char code = 42;
        cc_bytes out = run_worker("return_code", &code, 1, opts[m], 42);
        assert_int_equal(out.len, 3); /* delivered with a non-zero code too */
        cc_bytes_free(&out);
        out = run_worker("return_code", NULL, 0, opts[m], 1); /* 300 */
        cc_bytes_free(&out);
        cc_worker *w;
        int got;
        const char *dying[] = {"call_exit", "call_abort"};
        int want[] = {7, -SIGABRT};
        for (int i = 0; i < 2; i++) {
            assert_int_equal(cc_worker_start(&w, dying[i], NULL, 0, opts[m]), 0);
            assert_int_equal(cc_worker_join(w, SEC_DEADLINE(60), &got), 0);
            assert_int_equal(got, want[i]);
            assert_int_equal(cc_worker_result(w, &out), -ENODATA);
            cc_worker_free(w);
        }
    }
    cc_forkserver_stop();
}

/* ---- signals and joins --------------------------------------------------- */

static void kill_gives_minus_9(void **state)
{
    (void)state;
    for (int m = 0; m < 3; m++) {
        cc_worker *w;
        int code;
        assert_int_equal(cc_worker_start(&w, "sleep_forever", NULL, 0,
                                         all_methods[m]), 0);
        assert_true(cc_worker_pid(w) > 0);
        assert_true(cc_worker_is_alive(w));
        cc_bytes out = {0};
        assert_int_equal(cc_worker_result(w, &out), -EAGAIN);
        assert_int_equal(cc_worker_kill(w), 0); /* at once: never missed */
        assert_int_equal(cc_worker_join(w, SEC_DEADLINE(60), &code), 0);
        assert_int_equal(code, -SIGKILL);
        assert_false(cc_worker_is_alive(w));
        assert_int_equal(cc_worker_kill(w), 0); /* reaped: nothing to do */
        cc_worker_free(w);
    }
    cc_forkserver_stop();
}

static void join_times_out_then_terminate(void **state)
{
    (void)state;
    const cc_worker_options **opts = all_methods;
    for (int m = 0; m < 3; m++) {
        cc_worker *w;
        int code;
        assert_int_equal(cc_worker_start(&w, "sleep_forever", NULL, 0, opts[m]),
                         0);
        cc_deadline d = cc_deadline_in(50 * CC_MSEC);
        assert_int_equal(cc_worker_join(w, d, &code), -ETIMEDOUT);
        assert_true(cc_now() >= d);
        assert_true(cc_worker_is_alive(w));
        assert_int_equal(cc_worker_terminate(w), 0);
        assert_int_equal(cc_worker_join(w, SEC_DEADLINE(60), &code), 0);
        assert_int_equal(code, -SIGTERM);
        cc_worker_free(w);
    }
    cc_forkserver_stop();
}

static void free_kills_a_running_worker(void **state)
{
    (void)state;
    cc_worker *w;
    assert_int_equal(cc_worker_start(&w, "sleep_forever", NULL, 0, NULL), 0);
    cc_worker_free(w); /* the teardown checks that no child is left */
}

static bool pid_gone(pid_t pid);

/* The pid of this thread's only child (the forkserver, here). */
static pid_t only_child(void)
{
    FILE *f = fopen("/proc/thread-self/children", "re");
    int pid = 0;
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%d", &pid), 1);
    fclose(f);
    return pid;
}

static void a_killed_forkserver_is_replaced(void **state)
{
    (void)state;
    cc_worker *w;
    cc_worker_options o = {.start_method = CC_START_FORKSERVER, .daemon = true};
    assert_int_equal(cc_forkserver_start(), 0);
    pid_t server = only_child();
    assert_int_equal(cc_worker_start(&w, "sleep_forever", NULL, 0, &o), 0);
    pid_t pid = cc_worker_pid(w);
    assert_int_equal(kill(server, SIGKILL), 0);
    /* the daemon worker goes with its server; nobody can say how it ended */
    assert_int_equal(cc_worker_join(w, SEC_DEADLINE(60), NULL), -ECHILD);
    cc_worker_free(w);
    assert_true(pid_gone(pid));
    /* the next start finds the server dead and makes a new one */
    cc_bytes out = run_worker("return_code", &(unsigned char){3}, 1, &fs_opts,
                              3);
    cc_bytes_free(&out);
    cc_forkserver_stop();
}

/* ---- daemon workers ------------------------------------------------------ */

/* A pid is gone: no /proc entry, or a zombie waiting for its reaper. Polls
 * for up to ten seconds. */
static bool pid_gone(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    for (int i = 0; i < 1000; i++) {
        FILE *f = fopen(path, "re");
        if (!f)
            return true;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        const char *paren = strrchr(buf, ')');
        if (!paren || paren[2] == 'Z' || paren[2] == 'X')
            return true;
        usleep(10000);
    }
    return false;
}

/* In a forked middle process: start a worker, send its pid, then die. */
static _Noreturn void middle_process(bool daemon, int wfd)
{
    cc_worker_options o = {.daemon = daemon};
    cc_worker *w;
    if (cc_worker_start(&w, "sleep_forever", NULL, 0, &o) != 0)
        _exit(1);
    pid_t pid = cc_worker_pid(w);
    _exit(write(wfd, &pid, sizeof pid) == sizeof pid ? 0 : 2);
}

/* Start a middle process that leaves a worker behind; the worker's pid. */
static pid_t orphan_a_worker(bool daemon)
{
    int fds[2];
    assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
    pid_t middle = fork();
    assert_true(middle >= 0);
    if (middle == 0)
        middle_process(daemon, fds[1]);
    pid_t worker = 0;
    assert_int_equal(read(fds[0], &worker, sizeof worker), sizeof worker);
    int st;
    assert_int_equal(waitpid(middle, &st, 0), middle);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(fds[0]);
    close(fds[1]);
    return worker;
}

static void daemon_worker_dies_with_its_parent(void **state)
{
    (void)state;
    for (long i = 0; i < cc_test_n(5); i++)
        assert_true(pid_gone(orphan_a_worker(true)));
    /* The contrast: a worker that is not a daemon outlives its parent. */
    pid_t pid = orphan_a_worker(false);
    usleep(100 * 1000);
    assert_int_equal(kill(pid, 0), 0);
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_true(pid_gone(pid));
}

/* ---- fds, large data, errors --------------------------------------------- */

static void shm_is_seen_across_spawn_through_pass_fds(void **state)
{
    (void)state;
    cc_shm *s;
    assert_int_equal(cc_shm_create(&s, 1, 8192), 0);
    int fd = cc_shm_fd(s);
    cc_worker_options o = {.pass_fds = &fd, .npass_fds = 1};
    cc_bytes out = run_worker("fill_passed_segment", NULL, 0, &o, 0);
    cc_bytes_free(&out);
    const char *p = cc_shm_data(s);
    assert_int_equal(p[0], 'w');
    assert_int_equal(p[8191], 'w');
    cc_shm_close(s);
}

static void named_shm_is_opened_by_a_spawned_worker(void **state)
{
    (void)state;
    char name[64];
    snprintf(name, sizeof name, "concur-test-worker-%d", (int)getpid());
    cc_shm *s;
    assert_int_equal(cc_shm_open(&s, name, sizeof(int), 1,
                                 CC_SHM_CREATE | CC_SHM_EXCL), 0);
    CC_SHM_ARRAY(s, int)[0] = 41;
    cc_bytes out = run_worker("bump_named_segment", name, strlen(name),
                              NULL, 0);
    cc_bytes_free(&out);
    assert_int_equal(CC_SHM_ARRAY(s, int)[0], 42);
    cc_shm_close(s); /* the last user: the name goes */
    assert_int_equal(cc_shm_open(&s, name, 0, 0, 0), -ENOENT);
}

static void ipc_queue_between_spawned_workers_and_parent(void **state)
{
    (void)state;
    cc_shm *s;
    assert_int_equal(cc_shm_create(&s, 1, MIB), 0);
    cc_ipc_queue *q = cc_shm_data(s);
    assert_int_equal(cc_ipc_queue_init(q, cc_shm_size(s)), 0);
    int fd = cc_shm_fd(s);
    cc_worker_options o = {.pass_fds = &fd, .npass_fds = 1};
    cc_worker *w[4];
    for (int i = 0; i < 4; i++) {
        char msg[16];
        int n = snprintf(msg, sizeof msg, "worker %d", i);
        assert_int_equal(cc_worker_start(&w[i], "put_into_passed_queue", msg,
                                         (size_t)n, &o), 0);
    }
    int seen = 0;
    for (int i = 0; i < 4; i++) {
        char buf[16];
        size_t len;
        assert_int_equal(cc_ipc_queue_get(q, buf, sizeof buf, &len,
                                          SEC_DEADLINE(60)), 0);
        assert_true(len == 8 && !memcmp(buf, "worker ", 7));
        seen |= 1 << (buf[7] - '0');
    }
    assert_int_equal(seen, 0xf);
    for (int i = 0; i < 4; i++) {
        int code;
        assert_int_equal(cc_worker_join(w[i], SEC_DEADLINE(60), &code), 0);
        assert_int_equal(code, 0);
        cc_worker_free(w[i]);
    }
    cc_shm_close(s);
}

static void spawned_worker_gets_no_other_fds(void **state)
{
    (void)state;
    int stray = dup(0); /* not close-on-exec: fork would pass it on */
    assert_true(stray > 0);
    int pass = open("/dev/null", O_RDONLY | O_CLOEXEC);
    cc_worker_options o = {.pass_fds = &pass, .npass_fds = 1};
    cc_bytes out = run_worker("list_fds", NULL, 0, &o, 0);
    /* stdio, the result memfd (4), the passed fd (5). */
    assert_string_equal(out.data, "0 1 2 4 5 ");
    cc_bytes_free(&out);
    close(pass);
    close(stray);
}

static void stdin_is_dev_null_in_workers(void **state)
{
    (void)state;
    cc_bytes out = run_worker("stdin_is_devnull", NULL, 0, &spawn_opts, 0);
    cc_bytes_free(&out);
    out = run_worker("stdin_is_devnull", NULL, 0, &fork_opts, 0);
    cc_bytes_free(&out);
    out = run_worker("stdin_is_devnull", NULL, 0, &fs_opts, 0);
    cc_bytes_free(&out);
    cc_forkserver_stop();
}

static void large_argument_and_result(void **state)
{
    (void)state;
    size_t size = 16 * MIB;
    unsigned char *buf = malloc(size);
    for (size_t i = 0; i < size; i++)
        buf[i] = (unsigned char)(i * 13 + (i >> 16));
    for (int m = 0; m < 3; m++) {
        cc_bytes out = run_worker("echo", buf, size, all_methods[m], 0);
        assert_int_equal(out.len, size);
        assert_memory_equal(out.data, buf, size);
        cc_bytes_free(&out);
    }
    free(buf);
    cc_forkserver_stop();
}

static int parent_only(const void *arg, size_t len, cc_bytes *result)
{
    (void)arg, (void)len, (void)result;
    return 0;
}

static void errors(void **state)
{
    (void)state;
    cc_worker *w;
    assert_int_equal(cc_worker_start(&w, "no such function", NULL, 0, NULL),
                     -ENOENT);
    assert_int_equal(cc_worker_start(&w, NULL, NULL, 0, NULL), -EINVAL);
    assert_int_equal(cc_worker_start(&w, "echo", NULL, 5, NULL), -EINVAL);
    assert_int_equal(cc_worker_start_fn(&w, echo, NULL, 0, &spawn_opts),
                     -EINVAL);
    assert_int_equal(cc_worker_start_fn(&w, echo, NULL, 0, NULL), -EINVAL);
    int bad = 1000;
    cc_worker_options o = {.pass_fds = &bad, .npass_fds = 1};
    assert_int_equal(cc_worker_start(&w, "echo", NULL, 0, &o), -EBADF);
    o.npass_fds = 65;
    assert_int_equal(cc_worker_start(&w, "echo", NULL, 0, &o), -EINVAL);
    o = (cc_worker_options){.start_method = (cc_start_method)9};
    assert_int_equal(cc_worker_start(&w, "echo", NULL, 0, &o), -EINVAL);
    assert_int_equal(cc_worker_register("echo", echo), -EEXIST);
    assert_int_equal(cc_worker_register("", echo), -EINVAL);
    assert_int_equal(cc_worker_register("x", NULL), -EINVAL);
    assert_int_equal(cc_worker_passed_fd(0), -1); /* not in a worker */
}

static void registered_after_the_hook_is_unknown_to_spawn(void **state)
{
    (void)state;
    static bool registered;
    if (!registered)
        assert_int_equal(cc_worker_register("parent_only", parent_only), 0);
    registered = true;
    cc_worker *w;
    int code;
    assert_int_equal(cc_worker_start(&w, "parent_only", NULL, 0, NULL), 0);
    assert_int_equal(cc_worker_join(w, SEC_DEADLINE(60), &code), 0);
    assert_int_equal(code, 127); /* the re-executed program has no such name */
    cc_worker_free(w);
    /* fork copies the table as it is now */
    cc_bytes out = run_worker("parent_only", NULL, 0, &fork_opts, 0);
    cc_bytes_free(&out);
}

/* ---- allocation failures ------------------------------------------------- */

static void allocation_failure_starts_nothing(void **state)
{
    (void)state;
    cc_worker *w = NULL;
    for (long budget = 0; budget < 2; budget++) {
        cc_test_alloc_fail_after(budget);
        assert_int_equal(cc_worker_start(&w, "echo", "x", 1, &spawn_opts),
                         -ENOMEM);
        cc_test_alloc_fail_after(budget);
        assert_int_equal(cc_worker_start(&w, "echo", "x", 1, &fork_opts),
                         -ENOMEM);
    }
    assert_null(w); /* and no child, no fd: the teardown checks */
    cc_test_alloc_normal();
}

int main(int argc, char **argv)
{
    cc_worker_main_hook(argc, argv); /* a spawned worker never returns */
    const struct CMUnitTest tests[] = {
        CC_TEST(spawn_computes_sum_of_squares),
        CC_TEST(fork_and_forkserver_compute_sum_of_squares),
        CC_TEST(forkserver_stop_kills_what_runs),
        CC_TEST(a_killed_forkserver_is_replaced),
        CC_TEST(forked_child_has_its_own_forkserver),
        CC_TEST(cpu_bound_split_over_processes),
        CC_TEST(exit_codes),
        CC_TEST(kill_gives_minus_9),
        CC_TEST(join_times_out_then_terminate),
        CC_TEST(free_kills_a_running_worker),
        CC_TEST(daemon_worker_dies_with_its_parent),
        CC_TEST(shm_is_seen_across_spawn_through_pass_fds),
        CC_TEST(named_shm_is_opened_by_a_spawned_worker),
        CC_TEST(ipc_queue_between_spawned_workers_and_parent),
        CC_TEST(spawned_worker_gets_no_other_fds),
        CC_TEST(stdin_is_dev_null_in_workers),
        CC_TEST(large_argument_and_result),
        CC_TEST(errors),
        CC_TEST(allocation_failure_starts_nothing),
        CC_TEST(registered_after_the_hook_is_unknown_to_spawn),
    };
    return CC_RUN_TESTS(tests);
}
