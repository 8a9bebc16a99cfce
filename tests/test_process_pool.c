/*
 * test_process_pool.c: the process pool executor (concur/procpool.h).
 *
 * main() calls cc_worker_main_hook first: a spawned worker is this very
 * program run again, and the functions below are found by name.
 */
#include "procpool_test.h"

#include <concur/procpool.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- worker functions ----------------------------------------------------- */

static uint64_t sum_squares_of(uint64_t n)
{
    uint64_t sum = 0;
    for (uint64_t i = 0; i < n; i++)
        sum += i * i;
    return sum;
}

/* The classic CPU-bound task: sum of i*i for i < n (n: 8 bytes). */
static int pp_sum_squares(const void *arg, size_t len, cc_bytes *result)
{
    uint64_t n;
    if (len != sizeof n)
        return 2;
    memcpy(&n, arg, sizeof n);
    uint64_t sum = sum_squares_of(n);
    return cc_bytes_append(result, &sum, sizeof sum) == 0 ? 0 : 3;
}
CC_WORKER_FUNCTION(pp_sum_squares)

static int pp_echo(const void *arg, size_t len, cc_bytes *result)
{
    return cc_bytes_append(result, arg, len) == 0 ? 0 : 3;
}
CC_WORKER_FUNCTION(pp_echo)

/* A result of the size given (u32), filled with its low byte. */
static int pp_sized(const void *arg, size_t len, cc_bytes *result)
{
    uint32_t n;
    if (len != sizeof n)
        return 2;
    memcpy(&n, arg, sizeof n);
    for (uint32_t i = 0; i < n; i++)
        if (cc_bytes_append(result, &(char){(char)n}, 1) < 0)
            return 3;
    return 0;
}
CC_WORKER_FUNCTION(pp_sized)

static int pp_getpid(const void *arg, size_t len, cc_bytes *result)
{
    (void)arg, (void)len;
    pid_t pid = getpid();
    return cc_bytes_append(result, &pid, sizeof pid) == 0 ? 0 : 3;
}
CC_WORKER_FUNCTION(pp_getpid)

/* Die as the argument says: 'a' abort, 's' segfault, 'e' exit(7), 'r' a
 * SIGALRM while the (large) result is being delivered, 'k' SIGKILL. */
static int pp_die(const void *arg, size_t len, cc_bytes *result)
{
    char how = len ? *(const char *)arg : 'a';
    signal(SIGABRT, SIG_DFL);
    signal(SIGSEGV, SIG_DFL);
    if (how == 'a')
        abort();
    if (how == 's')
        raise(SIGSEGV);
    if (how == 'e')
        exit(7);
    if (how == 'k')
        raise(SIGKILL);
    /* 'r': 256 MiB of result take far longer than 20 ms to deliver when
     * they are copied: in a buffer of its own, replacing *result (a result
     * appended to *result is in shared memory already: nothing to copy). */
    size_t big = (size_t)256 << 20;
    char *p = malloc(big);
    if (!p)
        return 3;
    memset(p, 'r', big);
    cc_bytes own = {0};
    int r = cc_bytes_append(&own, p, big);
    free(p);
    cc_bytes_free(result);
    *result = own;
    signal(SIGALRM, SIG_DFL);
    ualarm(20000, 0); /* 20 ms: well inside the delivery */
    return r == 0 ? 0 : 3;
}
CC_WORKER_FUNCTION(pp_die)

/* Move into the cgroup directory given, then use memory until killed. */
static int pp_hog(const void *arg, size_t len, cc_bytes *result)
{
    (void)result;
    char path[512];
    snprintf(path, sizeof path, "%.*s/cgroup.procs", (int)len,
             (const char *)arg);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, "0", 1) != 1)
        return 9;
    close(fd);
    for (;;) {
        char *p = mmap(NULL, 16 << 20, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return 10;
        memset(p, 1, 16 << 20);
    }
}
CC_WORKER_FUNCTION(pp_hog)

/* An initializer that dies as its argument says (as pp_die), or returns. */
static int pp_init(const void *arg, size_t len, cc_bytes *result)
{
    if (len && *(const char *)arg == 'x')
        return 5;
    if (len && *(const char *)arg != '0')
        return pp_die(arg, len, result);
    return 0;
}
CC_WORKER_FUNCTION(pp_init)

/* ---- helpers -------------------------------------------------------------- */

static uint64_t run_sum(cc_executor *ex, uint64_t n)
{
    cc_bytes out = {0};
    cc_future *f;
    assert_int_equal(cc_process_pool_submit(ex, "pp_sum_squares", &n, sizeof n,
                                            &out, &f), 0);
    void *res;
    assert_int_equal(cc_future_result(f, CC_FOREVER, &res), 0);
    assert_ptr_equal(res, &out);
    assert_int_equal(out.len, 8);
    uint64_t v;
    memcpy(&v, out.data, 8);
    cc_bytes_free(&out);
    cc_future_release(f);
    return v;
}

/* The one worker of a one-worker pool, once it runs pp_sleep_forever. */
static pid_t wait_in_task(cc_executor *ex)
{
    for (;;) {
        pid_t pid;
        if (cc_process_pool_worker_pids(ex, &pid, 1) == 1 &&
            comm_is(pid, "cc-in-task"))
            return pid;
        usleep(200);
    }
}

/* ---- tests ---------------------------------------------------------------- */

static void cpu_bound_matches_sequential(void **state)
{
    (void)state;
    static const cc_start_method methods[] = {CC_START_SPAWN, CC_START_FORK,
                                              CC_START_FORKSERVER};
    for (size_t m = 0; m < 3; m++) {
        cc_executor *ex = new_pool(2, methods[m], 0);
        cc_future *f[20];
        cc_bytes out[20] = {{0}};
        uint64_t n[20];
        for (int i = 0; i < 20; i++) {
            n[i] = 5000000 + (uint64_t)i * 1000 - (m ? 4000000 : 0);
            assert_int_equal(cc_process_pool_submit(ex, "pp_sum_squares",
                                                    &n[i], 8, &out[i], &f[i]),
                             0);
        }
        for (int i = 0; i < 20; i++) {
            assert_int_equal(cc_future_result(f[i], CC_FOREVER, NULL), 0);
            uint64_t v;
            memcpy(&v, out[i].data, 8);
            assert_true(v == sum_squares_of(n[i]));
            cc_bytes_free(&out[i]);
            cc_future_release(f[i]);
        }
        cc_executor_free(ex);
    }
    if (cc_forkserver_start() == 0)
        cc_forkserver_stop();
}

static void generic_submit_is_not_supported(void **state)
{
    (void)state;
    cc_executor *ex = new_pool(1, CC_START_SPAWN, 0);
    assert_int_equal(cc_executor_max_workers(ex), 1);
    assert_int_equal(cc_executor_submit(ex, NULL, NULL, NULL), -ENOTSUP);
    cc_map *m;
    cc_map_array a = {.args = (void *const[]){NULL}, .n = 1};
    assert_int_equal(cc_executor_map(&m, ex, NULL, cc_map_array_next, &a, NULL),
                     0);
    void *res;
    assert_int_equal(cc_map_next(m, CC_FOREVER, &res), -ENOTSUP);
    assert_int_equal(cc_map_next(m, CC_FOREVER, &res), -ENOENT);
    cc_map_free(m);
    assert_int_equal(cc_process_pool_submit(ex, "no_such_fn", NULL, 0, NULL,
                                            NULL), -ENOENT);
    cc_executor_shutdown(ex, true, false);
    assert_int_equal(cc_process_pool_submit(ex, "pp_echo", "x", 1, NULL,
                                            NULL), -ESHUTDOWN);
    cc_executor_free(ex);
}

static void kill9_mid_task_fails_only_that_task(void **state)
{
    (void)state;
    cc_executor *ex = new_pool(1, CC_START_SPAWN, 0);
    long n = cc_test_n(1000);
    int64_t worst = 0, total = 0;
    for (long i = 0; i < n; i++) {
        cc_future *f;
        assert_int_equal(cc_process_pool_submit(ex, "pp_sleep_forever", NULL, 0,
                                                NULL, &f), 0);
        pid_t pid = wait_in_task(ex);
        int64_t t0 = cc_now();
        assert_int_equal(kill(pid, SIGKILL), 0);
        assert_int_equal(cc_future_wait(f, cc_deadline_in(2000000000LL)), 0);
        int64_t dt = cc_now() - t0;
        total += dt;
        worst = dt > worst ? dt : worst;
        assert_int_equal(cc_future_error(f), -ECHILD);
        char want[96];
        snprintf(want, sizeof want, "worker %d was killed by signal 9",
                 (int)pid);
        assert_non_null(strstr(cc_future_error_message(f), want));
        assert_non_null(strstr(cc_future_error_message(f), "running the task"));
        cc_future_release(f);
    }
    /* The pool goes on with a new worker. */
    assert_true(run_sum(ex, 10) == sum_squares_of(10));
    /* A worker killed while idle costs no task. */
    for (int i = 0; i < 5; i++) {
        pid_t pid;
        assert_int_equal(cc_process_pool_worker_pids(ex, &pid, 1), 1);
        assert_int_equal(kill(pid, SIGKILL), 0);
        usleep(1000);
        assert_true(run_sum(ex, 10) == sum_squares_of(10));
    }
    cc_executor_free(ex);
    fprintf(stderr, "kill -9 to failed future: mean %.1f us, worst %.1f us "
            "(%ld kills)\n", total / 1e3 / n, worst / 1e3, n);
}

/* Our memory cgroup (v1 or v2) directory, or false. */
static bool own_memory_cgroup(char *buf, size_t n)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    char line[512];
    bool ok = false;
    while (f && !ok && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char *p = strstr(line, ":memory:");
        if (p) {
            ok = snprintf(buf, n, "/sys/fs/cgroup/memory%s", p + 8) < (int)n;
        } else if (!strncmp(line, "0::", 3) &&
                   access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0) {
            ok = snprintf(buf, n, "/sys/fs/cgroup%s", line + 3) < (int)n;
        }
    }
    if (f)
        fclose(f);
    return ok;
}

static bool write_file(const char *dir, const char *name, const char *v)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool ok = write(fd, v, strlen(v)) == (ssize_t)strlen(v);
    close(fd);
    return ok;
}

static void oom_kill_is_reported(void **state)
{
    (void)state;
    char base[400], dir[480];
    if (!own_memory_cgroup(base, sizeof base)) {
        print_message("skipped: no memory cgroup found\n");
        return;
    }
    snprintf(dir, sizeof dir, "%s/cc-pp-test-%d", base, (int)getpid());
    if (mkdir(dir, 0755) < 0) {
        print_message("skipped: cannot make a cgroup %s: %s\n", dir,
                      strerror(errno));
        return;
    }
    bool v2 = access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0;
    bool ok = v2 ? write_file(dir, "memory.max", "33554432")
                 : write_file(dir, "memory.limit_in_bytes", "33554432");
    if (!v2)
        write_file(dir, "memory.memsw.limit_in_bytes", "33554432");
    if (!ok) {
        print_message("skipped: cannot set a memory limit in %s\n", dir);
        rmdir(dir);
        return;
    }
    cc_executor *ex = new_pool(1, CC_START_SPAWN, 0);
    cc_future *f;
    assert_int_equal(cc_process_pool_submit(ex, "pp_hog", dir, strlen(dir),
                                            NULL, &f), 0);
    assert_int_equal(cc_future_wait(f, CC_FOREVER), 0);
    const char *msg = cc_future_error_message(f);
    print_message("%s\n", msg ? msg : "(no message)");
    assert_int_equal(cc_future_error(f), -ECHILD);
    assert_non_null(strstr(msg, "signal 9"));
    assert_non_null(strstr(msg, "OOM killer"));
    cc_future_release(f);
    assert_true(run_sum(ex, 1000) == sum_squares_of(1000));
    cc_executor_free(ex);
    assert_int_equal(rmdir(dir), 0);
}

/* Submit pp_die(how) and check the failure names the signal/code, stage. */
static void expect_death(cc_executor *ex, const char *fn, char how,
                         const char *what, const char *stage)
{
    cc_future *f;
    cc_bytes out = {0};
    assert_int_equal(cc_process_pool_submit(ex, fn, &how, 1, &out, &f), 0);
    assert_int_equal(cc_future_wait(f, CC_FOREVER), 0);
    const char *msg = cc_future_error_message(f);
    assert_int_equal(cc_future_error(f), -ECHILD);
    assert_non_null(msg);
    if (!strstr(msg, what) || !strstr(msg, stage))
        fail_msg("%c: %s (want %s, %s)", how, msg, what, stage);
    cc_future_release(f);
    cc_bytes_free(&out);
}

static void death_at_each_stage_fails_only_that_task(void **state)
{
    (void)state;
    cc_executor *ex = new_pool(1, CC_START_SPAWN, 0);
    expect_death(ex, "pp_die", 'a', "signal 6", "running the task");
    expect_death(ex, "pp_die", 's', "signal 11", "running the task");
    expect_death(ex, "pp_die", 'e', "exited with code 7", "running the task");
    expect_death(ex, "pp_die", 'k', "signal 9", "running the task");
    expect_death(ex, "pp_die", 'r', "signal 14", "delivering the result");
    assert_true(run_sum(ex, 100) == sum_squares_of(100));
    cc_executor_free(ex);
    /* The initializer: every task fails, nothing hangs. */
    static const char hows[] = {'a', 'e', 'x'};
    static const char *whats[] = {"signal 6", "code 7", "code 5"};
    for (int i = 0; i < 3; i++) {
        cc_process_pool_options o = {.max_workers = 2, .initializer = "pp_init",
                                     .initargs = &hows[i], .initargs_len = 1};
        assert_int_equal(cc_process_pool_new(&ex, &o), 0);
        for (int j = 0; j < 3; j++)
            expect_death(ex, "pp_getpid", 0, whats[i],
                         "running the initializer");
        cc_executor_free(ex);
    }
    cc_process_pool_options o = {.max_workers = 1, .initializer = "pp_init",
                                 .initargs = "0", .initargs_len = 1};
    assert_int_equal(cc_process_pool_new(&ex, &o), 0);
    assert_true(run_sum(ex, 100) == sum_squares_of(100));
    cc_executor_free(ex);
}

/* Batched results of every size: inline while they fit, else in the memfd. */
static void batched_results_of_every_size(void **state)
{
    (void)state;
    cc_executor *ex = new_pool(1, CC_START_SPAWN, 0);
    enum { N = 400 };
    cc_future *f[N];
    cc_bytes out[N] = {{0}};
    uint32_t size[N];
    for (int i = 0; i < N; i++) {
        size[i] = (uint32_t)((i * 7919) % 40000);
        assert_int_equal(cc_process_pool_submit(ex, "pp_sized", &size[i], 4,
                                                &out[i], &f[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(cc_future_result(f[i], CC_FOREVER, NULL), 0);
        assert_int_equal(out[i].len, size[i]);
        for (uint32_t j = 0; j < size[i]; j++)
            if (out[i].data[j] != (char)size[i])
                fail_msg("task %d byte %u", i, j);
        cc_bytes_free(&out[i]);
        cc_future_release(f[i]);
    }
    cc_executor_free(ex);
}

/* Tiny tasks go in batches: a death inside a batch fails only its task. */
static void death_inside_a_batch_fails_only_its_task(void **state)
{
    (void)state;
    cc_executor *ex = new_pool(1, CC_START_SPAWN, 0);
    enum { N = 300 };
    cc_future *f[N];
    cc_bytes out[N] = {{0}};
    for (int i = 0; i < N; i++) {
        uint64_t n = (uint64_t)i;
        int r = i % 100 == 50
                    ? cc_process_pool_submit(ex, "pp_die", "k", 1, &out[i], &f[i])
                    : cc_process_pool_submit(ex, "pp_sum_squares", &n, 8,
                                             &out[i], &f[i]);
        assert_int_equal(r, 0);
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(cc_future_wait(f[i], CC_FOREVER), 0);
        if (i % 100 == 50) {
            assert_int_equal(cc_future_error(f[i]), -ECHILD);
        } else {
            assert_int_equal(cc_future_error(f[i]), 0);
            uint64_t v;
            memcpy(&v, out[i].data, 8);
            assert_true(v == sum_squares_of((uint64_t)i));
        }
        cc_bytes_free(&out[i]);
        cc_future_release(f[i]);
    }
    cc_executor_free(ex);
}

static void big_argument_and_result(void **state)
{
    (void)state;
    size_t len = (size_t)64 << 20;
    char *big = malloc(len);
    assert_non_null(big);
    for (size_t i = 0; i < len; i++)
        big[i] = (char)(i * 7 + (i >> 20));
    static const cc_start_method methods[] = {CC_START_SPAWN, CC_START_FORK};
    for (int m = 0; m < 2; m++) {
        cc_executor *ex = new_pool(1, methods[m], 0);
        for (int rep = 0; rep < 2; rep++) {
            cc_bytes out = {0};
            cc_future *f;
            assert_int_equal(cc_process_pool_submit(ex, "pp_echo", big, len,
                                                    &out, &f), 0);
            assert_int_equal(cc_future_result(f, CC_FOREVER, NULL), 0);
            assert_int_equal(out.len, len);
            assert_memory_equal(out.data, big, len);
            cc_bytes_free(&out);
            cc_future_release(f);
        }
        cc_executor_free(ex);
    }
    free(big);
}

static void max_tasks_per_child_1_with_shutdown_midway(void **state)
{
    (void)state;
    cc_process_pool_options o = {.max_workers = 2, .max_tasks_per_child = 1};
    cc_executor *ex;
    assert_int_equal(cc_process_pool_new(&ex, &o), 0);
    enum { N = 100 };
    cc_future *f[N];
    cc_bytes out[N] = {{0}};
    for (int i = 0; i < N; i++)
        assert_int_equal(cc_process_pool_submit(ex, "pp_getpid", NULL, 0,
                                                &out[i], &f[i]), 0);
    assert_int_equal(cc_future_wait(f[5], CC_FOREVER), 0);
    cc_executor_shutdown(ex, true, true);
    int done = 0, cancelled = 0;
    pid_t pids[N];
    for (int i = 0; i < N; i++) {
        assert_true(cc_future_done(f[i]));
        if (cc_future_cancelled(f[i])) {
            cancelled++;
        } else {
            assert_int_equal(cc_future_error(f[i]), 0);
            memcpy(&pids[done++], out[i].data, sizeof(pid_t));
        }
        cc_bytes_free(&out[i]);
        cc_future_release(f[i]);
    }
    assert_true(done >= 6);
    assert_int_equal(done + cancelled, N);
    for (int i = 0; i < done; i++) /* one task per worker */
        for (int j = 0; j < i; j++)
            assert_true(pids[i] != pids[j]);
    cc_executor_free(ex);
}

static void timeout_kills_and_replaces_the_worker(void **state)
{
    (void)state;
    cc_process_pool_options o = {.max_workers = 1,
                                 .task_timeout_ns = 100000000};
    cc_executor *ex;
    assert_int_equal(cc_process_pool_new(&ex, &o), 0);
    cc_future *f;
    int64_t t0 = cc_now();
    assert_int_equal(cc_process_pool_submit(ex, "pp_sleep_forever", NULL, 0,
                                            NULL, &f), 0);
    assert_int_equal(cc_future_wait(f, CC_FOREVER), 0);
    assert_true(cc_now() - t0 >= 100000000);
    assert_int_equal(cc_future_error(f), -ETIMEDOUT);
    assert_non_null(strstr(cc_future_error_message(f), "timed out"));
    cc_future_release(f);
    assert_true(run_sum(ex, 1000) == sum_squares_of(1000));
    cc_executor_free(ex);
    /* Per task, among tiny tasks without a limit. */
    ex = new_pool(1, CC_START_SPAWN, 0);
    cc_future *g[10];
    cc_bytes out[10] = {{0}};
    for (int i = 0; i < 10; i++) {
        uint64_t n = (uint64_t)i;
        int r = i == 5 ? cc_process_pool_submit_timeout(
                             ex, "pp_sleep_forever", NULL, 0, 50000000, NULL,
                             &g[i])
                       : cc_process_pool_submit(ex, "pp_sum_squares", &n, 8,
                                                &out[i], &g[i]);
        assert_int_equal(r, 0);
    }
    for (int i = 0; i < 10; i++) {
        assert_int_equal(cc_future_wait(g[i], CC_FOREVER), 0);
        assert_int_equal(cc_future_error(g[i]), i == 5 ? -ETIMEDOUT : 0);
        cc_bytes_free(&out[i]);
        cc_future_release(g[i]);
    }
    assert_int_equal(cc_process_pool_submit_timeout(ex, "pp_echo", NULL, 0, -1,
                                                    NULL, NULL), -EINVAL);
    cc_executor_free(ex);
}

static void cancel_kills_a_running_task(void **state)
{
    (void)state;
    for (int rep = 0; rep < 6; rep++) {
        bool hook = rep >= 3; /* kill_on_cancel: cc_future_cancel does it */
        cc_executor *ex;
        cc_process_pool_options o = {.max_workers = 1,
                                     .kill_on_cancel = hook};
        assert_int_equal(cc_process_pool_new(&ex, &o), 0);
        cc_future *f0, *f1;
        cc_bytes out = {0};
        uint64_t n = 1000;
        assert_int_equal(cc_process_pool_submit(ex, "pp_sleep_forever", NULL, 0,
                                                NULL, &f0), 0);
        assert_int_equal(cc_process_pool_submit(ex, "pp_sum_squares", &n, 8,
                                                &out, &f1), 0);
        pid_t pid = wait_in_task(ex);
        if (hook) {
            assert_true(cc_future_cancel(f0));
        } else {
            assert_false(cc_future_cancel(f0)); /* running: as Python */
            assert_true(cc_process_pool_cancel(ex, f0));
        }
        assert_int_equal(cc_future_wait(f0, CC_FOREVER), 0);
        assert_int_equal(cc_future_error(f0), -ECANCELED);
        char want[64];
        snprintf(want, sizeof want, "worker %d killed", (int)pid);
        assert_non_null(strstr(cc_future_error_message(f0), want));
        assert_int_equal(cc_future_result(f1, CC_FOREVER, NULL), 0);
        uint64_t v;
        memcpy(&v, out.data, 8);
        assert_true(v == sum_squares_of(n));
        assert_false(cc_process_pool_cancel(ex, f1)); /* done */
        assert_false(cc_future_cancel(f1));
        cc_bytes_free(&out);
        cc_future_release(f0);
        cc_future_release(f1);
        cc_executor_free(ex);
    }
}

static void terminate_and_kill_fail_running_tasks(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        cc_executor *ex = new_pool(1, CC_START_SPAWN, 0);
        cc_future *f[3];
        for (int i = 0; i < 3; i++)
            assert_int_equal(cc_process_pool_submit(ex, "pp_sleep_forever",
                                                    NULL, 0, NULL, &f[i]), 0);
        wait_in_task(ex);
        k ? cc_process_pool_kill(ex) : cc_process_pool_terminate(ex);
        assert_int_equal(cc_future_wait(f[0], CC_FOREVER), 0);
        assert_int_equal(cc_future_error(f[0]), -ECHILD);
        assert_non_null(strstr(cc_future_error_message(f[0]),
                               k ? "signal 9" : "signal 15"));
        /* Queued: cancelled; taken into the dead worker's batch: failed. */
        for (int i = 1; i < 3; i++) {
            assert_int_equal(cc_future_wait(f[i], CC_FOREVER), 0);
            assert_true(cc_future_error(f[i]) == -ECANCELED);
        }
        for (int i = 0; i < 3; i++)
            cc_future_release(f[i]);
        cc_executor_free(ex);
    }
}

struct gen {
    uint64_t next, n; /* inputs next..n-1 */
    uint64_t cur;     /* the current one's bytes */
};

static int gen_next(void *state, const void **arg, size_t *len)
{
    struct gen *g = state;
    if (g->next >= g->n)
        return 0;
    g->cur = g->next++;
    *arg = &g->cur;
    *len = sizeof g->cur;
    return 1;
}

static void map_in_order_with_chunks(void **state)
{
    (void)state;
    cc_executor *ex = new_pool(2, CC_START_SPAWN, 0);
    static const size_t chunks[] = {1, 7, 1000};
    for (int c = 0; c < 3; c++) {
        struct gen g = {.n = 3000};
        cc_map_options mo = {.chunksize = chunks[c], .max_chunks = 3};
        cc_process_map *m;
        assert_int_equal(cc_process_pool_map(&m, ex, "pp_sum_squares",
                                             gen_next, &g, &mo), 0);
        for (uint64_t i = 0; i < g.n; i++) {
            cc_bytes out = {0};
            assert_int_equal(cc_process_map_next(m, CC_FOREVER, &out), 0);
            uint64_t v;
            memcpy(&v, out.data, 8);
            assert_true(v == sum_squares_of(i));
            cc_bytes_free(&out);
            /* bounded: the generator runs at most 3 chunks ahead */
            assert_true(g.next <= i + 1 + 3 * chunks[c]);
        }
        assert_int_equal(cc_process_map_next(m, CC_FOREVER, NULL), -ENOENT);
        cc_process_map_free(m);
    }
    cc_executor_free(ex);
}

static void workers_die_with_the_parent(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        cc_executor *ex;
        cc_process_pool_options o = {.max_workers = 1};
        if (cc_process_pool_new(&ex, &o) < 0)
            _exit(1);
        cc_process_pool_submit(ex, "pp_sleep_forever", NULL, 0, NULL, NULL);
        pid_t pid = wait_in_task(ex);
        if (write(p[1], &pid, sizeof pid) != sizeof pid)
            _exit(2);
        _exit(0);
    }
    close(p[1]);
    pid_t worker = 0;
    assert_int_equal(read(p[0], &worker, sizeof worker), sizeof worker);
    close(p[0]);
    int st;
    assert_int_equal(waitpid(child, &st, 0), child);
    /* Gone, or a zombie of whoever reaps orphans here. */
    int64_t end = cc_now() + 5000000000LL;
    while (kill(worker, 0) == 0 && !comm_is(worker, "") && cc_now() < end) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/stat", (int)worker);
        FILE *f = fopen(path, "re");
        char s = 0;
        if (f) {
            if (fscanf(f, "%*d %*s %c", &s) != 1)
                s = 0;
            fclose(f);
        }
        if (s == 'Z' || !f)
            break;
        usleep(1000);
    }
    assert_true(cc_now() < end);
}

int main(int argc, char **argv)
{
    cc_worker_main_hook(argc, argv); /* a spawned worker never returns */
    const struct CMUnitTest tests[] = {
        CC_TEST(cpu_bound_matches_sequential),
        CC_TEST(generic_submit_is_not_supported),
        CC_TEST(kill9_mid_task_fails_only_that_task),
        CC_TEST(oom_kill_is_reported),
        CC_TEST(death_at_each_stage_fails_only_that_task),
        CC_TEST(batched_results_of_every_size),
        CC_TEST(death_inside_a_batch_fails_only_its_task),
        CC_TEST(big_argument_and_result),
        CC_TEST(max_tasks_per_child_1_with_shutdown_midway),
        CC_TEST(timeout_kills_and_replaces_the_worker),
        CC_TEST(cancel_kills_a_running_task),
        CC_TEST(terminate_and_kill_fail_running_tasks),
        CC_TEST(map_in_order_with_chunks),
        CC_TEST(workers_die_with_the_parent),
    };
    return CC_RUN_TESTS(tests);
}
