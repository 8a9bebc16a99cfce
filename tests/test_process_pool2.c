/*
 * test_process_pool2.c: the process pool's scheduling and worker lifetime
 * (concur/procpool.h): tasks spread over the workers, workers started with
 * the pool and replaced at once, batches posted ahead carrying large
 * arguments and results, the fork warning given once; races of a cancel
 * with the task's end and of terminate with a worker's start; deaths and
 * timeouts with one task per child; a death inside a map's chunk.
 *
 * main() calls cc_worker_main_hook first: a spawned worker is this very
 * program run again, and the functions below are found by name.
 */
#include "procpool_test.h"
#include "procpool_impl.h"

#include <concur/procpool.h>
#include <concur/thread.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

/* ---- worker functions ----------------------------------------------------- */

/* Sleep 10 ms, then give the worker's pid. */
static int pp_nap_pid(const void *arg, size_t len, cc_bytes *result)
{
    (void)arg, (void)len;
    usleep(10000);
    pid_t pid = getpid();
    return cc_bytes_append(result, &pid, sizeof pid) == 0 ? 0 : 3;
}
CC_WORKER_FUNCTION(pp_nap_pid)

/* The argument with every byte plus one. */
static int pp_plus1(const void *arg, size_t len, cc_bytes *result)
{
    if (cc_bytes_append(result, arg, len) < 0)
        return 3;
    for (size_t i = 0; i < len; i++)
        result->data[i]++;
    return 0;
}
CC_WORKER_FUNCTION(pp_plus1)

/* Kill the worker (SIGKILL to itself). */
static int pp_kill_self(const void *arg, size_t len, cc_bytes *result)
{
    (void)arg, (void)len, (void)result;
    raise(SIGKILL);
    return 9;
}
CC_WORKER_FUNCTION(pp_kill_self)

/* pp_plus1 of one byte, but a worker given 'K' kills itself. */
static int pp_plus1_or_die(const void *arg, size_t len, cc_bytes *result)
{
    if (len == 1 && *(const char *)arg == 'K')
        raise(SIGKILL);
    return pp_plus1(arg, len, result);
}
CC_WORKER_FUNCTION(pp_plus1_or_die)

/* Name the process "cc-ec-N" (N: the int argument), then return as soon
 * as the parent, cancelling this very task, asks the worker to wait for
 * the kill after it (halt), before the kill can land (5 s at most; then
 * 5). */
static int pp_end_on_cancel(const void *arg, size_t len, cc_bytes *result)
{
    (void)result;
    static struct cc__pp_ctl *ctl; /* kept: no syscall once cancelled */
    if (!ctl)
        ctl = mmap(NULL, CC__PP_CTL_SIZE, PROT_READ, MAP_SHARED,
                   cc_worker_passed_fd(0), 0);
    if (ctl == MAP_FAILED || len != sizeof(int))
        return 4;
    char name[16];
    int n;
    memcpy(&n, arg, sizeof n);
    snprintf(name, sizeof name, "cc-ec-%d", n);
    prctl(PR_SET_NAME, name);
    int64_t end = cc_now() + 5 * CC_SEC;
    while (!cc__load_relaxed(&ctl->halt)) /* relaxed: a flag to poll */
        if (cc_now() > end)
            return 5;
    return 0;
}
CC_WORKER_FUNCTION(pp_end_on_cancel)

/* Shared with the forked workers of cancel_races_the_start: ran[n] is 1
 * once the function of task n has started. */
static cc__atomic_u32 *ran;

static void spin_ns(int64_t ns)
{
    for (int64_t end = cc_now() + ns; cc_now() < end;)
        cc__cpu_relax();
}

/* The at-start hook: the start of a task takes 20 us more. */
static void slow_start(void) { spin_ns(20000); }

/* Initializer: slow the start of every task of this worker. */
static int pp_slow_start(const void *arg, size_t len, cc_bytes *result)
{
    (void)arg, (void)len, (void)result;
    cc__store_relaxed(&cc__pp_test_at_start, slow_start); /* relaxed: ours */
    return 0;
}
CC_WORKER_FUNCTION(pp_slow_start)

/* Mark task n (the int argument) as run in `ran`, then give n back. */
static int pp_mark_ran(const void *arg, size_t len, cc_bytes *result)
{
    int n;
    if (len != sizeof n)
        return 4;
    memcpy(&n, arg, sizeof n);
    cc__store_relaxed(&ran[n], 1); /* relaxed: read after the future */
    return cc_bytes_append(result, &n, sizeof n) == 0 ? 0 : 3;
}
CC_WORKER_FUNCTION(pp_mark_ran)

/* ---- helpers -------------------------------------------------------------- */

/* Wait (10 s at most) until the pool has n workers, none of them `not`. */
static bool workers_appear(cc_executor *ex, int n, pid_t not)
{
    int64_t end = cc_now() + 10000000000LL;
    while (cc_now() < end) {
        pid_t pids[4];
        int k = cc_process_pool_worker_pids(ex, pids, 4);
        bool fresh = k == n;
        for (int i = 0; i < k && i < 4; i++)
            fresh = fresh && pids[i] != not;
        if (fresh)
            return true;
        usleep(1000);
    }
    return false;
}

/* ---- tests ---------------------------------------------------------------- */

/* 16 tasks of 10 ms on 2 workers: both run a fair share (batches are
 * sized from the queue and the next is posted ahead only while another
 * worker has work left), not one worker the lot while the other idles. */
static void tasks_spread_over_both_workers(void **state)
{
    (void)state;
    cc_executor *ex = new_pool(2, CC_START_SPAWN, 0);
    assert_true(workers_appear(ex, 2, 0));
    enum { N = 16 };
    cc_future *f[N];
    cc_bytes out[N] = {{0}};
    for (int i = 0; i < N; i++)
        assert_int_equal(cc_process_pool_submit(ex, "pp_nap_pid", NULL, 0,
                                                &out[i], &f[i]), 0);
    pid_t pid[2] = {0, 0};
    int count[2] = {0, 0};
    for (int i = 0; i < N; i++) {
        assert_int_equal(cc_future_result(f[i], CC_FOREVER, NULL), 0);
        pid_t p;
        assert_int_equal(out[i].len, sizeof p);
        memcpy(&p, out[i].data, sizeof p);
        int w = pid[0] == 0 || pid[0] == p ? 0 : 1;
        assert_true(pid[w] == 0 || pid[w] == p); /* two workers, no more */
        pid[w] = p;
        count[w]++;
        cc_bytes_free(&out[i]);
        cc_future_release(f[i]);
    }
    cc_executor_free(ex);
    assert_true(count[0] >= 3 && count[1] >= 3);
}

/* The workers start with the pool, and a dead one is replaced at once,
 * not when the next task comes. */
static void workers_start_eagerly_and_are_replaced_at_once(void **state)
{
    (void)state;
    cc_executor *ex = new_pool(1, CC_START_SPAWN, 0);
    assert_true(workers_appear(ex, 1, 0));
    cc_future *f;
    assert_int_equal(cc_process_pool_submit(ex, "pp_sleep_forever", NULL, 0,
                                            NULL, &f), 0);
    pid_t pid = 0;
    while (cc_process_pool_worker_pids(ex, &pid, 1) != 1 ||
           !comm_is(pid, "cc-in-task"))
        usleep(200);
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_int_equal(cc_future_wait(f, CC_FOREVER), 0);
    assert_int_equal(cc_future_error(f), -ECHILD);
    cc_future_release(f);
    assert_true(workers_appear(ex, 1, pid)); /* no task submitted */
    /* Killed while idle: replaced too, and no task is lost. */
    assert_int_equal(cc_process_pool_worker_pids(ex, &pid, 1), 1);
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_true(workers_appear(ex, 1, pid));
    cc_bytes out = {0};
    assert_int_equal(cc_process_pool_submit(ex, "pp_plus1", "a", 1, &out, &f),
                     0);
    assert_int_equal(cc_future_result(f, CC_FOREVER, NULL), 0);
    assert_true(out.len == 1 && out.data[0] == 'b');
    cc_bytes_free(&out);
    cc_future_release(f);
    cc_executor_free(ex);
}

static cc_semaphore post_held; /* released when a feeder holds a batch */
static cc_semaphore post_go;   /* released to let it post */

static void hold_post(void)
{
    cc_semaphore_release(&post_held, 1);
    cc_semaphore_acquire(&post_go, CC_FOREVER);
}

/* A task a feeder has taken from the queue but not yet handed to its
 * worker is running for its future; cancelling it (cc_process_pool_cancel,
 * or cc_future_cancel with kill_on_cancel) must still work: it never runs
 * and its future is cancelled. */
static void cancel_between_take_and_post(void **state)
{
    (void)state;
    for (int kill_on_cancel = 0; kill_on_cancel < 2; kill_on_cancel++) {
        cc_process_pool_options o = {.max_workers = 1,
                                     .kill_on_cancel = kill_on_cancel};
        cc_executor *ex;
        assert_int_equal(cc_process_pool_new(&ex, &o), 0);
        assert_true(workers_appear(ex, 1, 0));
        cc_semaphore_init(&post_held, 0);
        cc_semaphore_init(&post_go, 0);
        cc__store_relaxed(&cc__pp_test_before_post, hold_post);
        cc_bytes out = {0};
        cc_future *f;
        assert_int_equal(cc_process_pool_submit(ex, "pp_plus1", "a", 1, &out,
                                                &f), 0);
        assert_int_equal(cc_semaphore_acquire(&post_held,
                                              cc_deadline_in(10 * CC_SEC)), 0);
        cc__store_relaxed(&cc__pp_test_before_post, NULL);
        assert_true(cc_future_running(f));
        bool made = kill_on_cancel ? cc_future_cancel(f)
                                   : cc_process_pool_cancel(ex, f);
        cc_semaphore_release(&post_go, 1);
        assert_true(made);
        assert_int_equal(cc_future_result(f, cc_deadline_in(10 * CC_SEC), NULL),
                         -ECANCELED);
        assert_int_equal(out.len, 0); /* it never ran */
        cc_future_release(f);
        /* The pool goes on. */
        assert_int_equal(cc_process_pool_submit(ex, "pp_plus1", "a", 1, &out,
                                                &f), 0);
        assert_int_equal(cc_future_result(f, cc_deadline_in(10 * CC_SEC), NULL),
                         0);
        assert_true(out.len == 1 && out.data[0] == 'b');
        cc_bytes_free(&out);
        cc_future_release(f);
        cc_executor_free(ex);
        cc_semaphore_destroy(&post_held);
        cc_semaphore_destroy(&post_go);
    }
}

static cc_semaphore death_held; /* released when a feeder holds a death */
static cc_semaphore death_go;   /* released to let it fail the task */

static void hold_death(void)
{
    cc_semaphore_release(&death_held, 1);
    cc_semaphore_acquire(&death_go, CC_FOREVER);
}

/* The worker dies in a task; its feeder has cleared the lanes and is about
 * to fail the task (-ECHILD) when the task is cancelled. A cancel reported
 * made must fail the future with -ECANCELED; a refused one leaves -ECHILD. */
static void cancel_as_its_worker_dies(void **state)
{
    (void)state;
    cc_process_pool_options o = {.max_workers = 1};
    cc_executor *ex;
    assert_int_equal(cc_process_pool_new(&ex, &o), 0);
    assert_true(workers_appear(ex, 1, 0));
    cc_semaphore_init(&death_held, 0);
    cc_semaphore_init(&death_go, 0);
    cc__store_relaxed(&cc__pp_test_after_death, hold_death);
    cc_bytes out = {0};
    cc_future *f;
    assert_int_equal(cc_process_pool_submit(ex, "pp_kill_self", NULL, 0,
                                            &out, &f), 0);
    assert_int_equal(cc_semaphore_acquire(&death_held,
                                          cc_deadline_in(10 * CC_SEC)), 0);
    cc__store_relaxed(&cc__pp_test_after_death, NULL);
    bool made = cc_process_pool_cancel(ex, f);
    cc_semaphore_release(&death_go, 1);
    int r = cc_future_result(f, cc_deadline_in(10 * CC_SEC), NULL);
    if (r != (made ? -ECANCELED : -ECHILD))
        print_error("cancel %s, yet the future failed with %d\n",
                    made ? "made" : "refused", r);
    assert_int_equal(r, made ? -ECANCELED : -ECHILD);
    cc_future_release(f);
    cc_bytes_free(&out);
    cc_executor_free(ex);
    cc_semaphore_destroy(&death_held);
    cc_semaphore_destroy(&death_go);
}

/* A task taken by its feeder, not yet posted, is cancelled (made: its post
 * would skip it); then its argument cannot be passed (RLIMIT_FSIZE makes
 * the lane's memfd refuse to grow), which fails the task. A cancel
 * reported made must still fail it with -ECANCELED. */
static void cancel_then_the_post_fails(void **state)
{
    (void)state;
    cc_executor *ex = new_pool(1, CC_START_SPAWN, 0);
    assert_true(workers_appear(ex, 1, 0));
    struct rlimit old, low;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    low = old;
    low.rlim_cur = 64 << 10; /* the lane's memfd grows by 1 MiB at least */
    void (*old_xfsz)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &low), 0);
    size_t len = (size_t)2 << 20;
    unsigned char *a = calloc(1, len);
    assert_non_null(a);
    cc_semaphore_init(&post_held, 0);
    cc_semaphore_init(&post_go, 0);
    cc__store_relaxed(&cc__pp_test_before_post, hold_post);
    cc_future *f;
    assert_int_equal(cc_process_pool_submit(ex, "pp_plus1", a, len, NULL,
                                            &f), 0);
    assert_int_equal(cc_semaphore_acquire(&post_held,
                                          cc_deadline_in(10 * CC_SEC)), 0);
    cc__store_relaxed(&cc__pp_test_before_post, NULL);
    bool made = cc_process_pool_cancel(ex, f);
    cc_semaphore_release(&post_go, 1);
    int r = cc_future_result(f, cc_deadline_in(10 * CC_SEC), NULL);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, old_xfsz);
    if (made && r != -ECANCELED)
        print_error("cancel made, yet the future failed with %d (%s)\n", r,
                    cc_future_error_message(f));
    cc_future_release(f);
    free(a);
    cc_executor_free(ex);
    cc_semaphore_destroy(&post_held);
    cc_semaphore_destroy(&post_go);
    assert_true(made); /* taken, not posted: the cancel is made */
    assert_int_equal(r, -ECANCELED);
}

/* Large arguments and results, posted ahead in both lanes of a worker and
 * of every size around the inline limit, come back intact. */
static void large_arguments_posted_ahead(void **state)
{
    (void)state;
    cc_executor *ex = new_pool(1, CC_START_SPAWN, 0);
    static const size_t sizes[] = {1 << 20, 100, 70 << 10, 3 << 20, 0,
                                   28 << 10, 5 << 20, 61 << 10};
    enum { N = 24 };
    cc_future *f[N];
    cc_bytes out[N] = {{0}};
    for (int i = 0; i < N; i++) {
        size_t len = sizes[i % 8];
        unsigned char *a = malloc(len + 1);
        assert_non_null(a);
        memset(a, 'a' + i, len);
        assert_int_equal(cc_process_pool_submit(ex, "pp_plus1", a, len,
                                                &out[i], &f[i]), 0);
        free(a);
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(cc_future_result(f[i], CC_FOREVER, NULL), 0);
        assert_int_equal(out[i].len, sizes[i % 8]);
        for (size_t k = 0; k < out[i].len; k += 4093)
            assert_int_equal((unsigned char)out[i].data[k], 'a' + i + 1);
        if (out[i].len)
            assert_int_equal((unsigned char)out[i].data[out[i].len - 1],
                             'a' + i + 1);
        cc_bytes_free(&out[i]);
        cc_future_release(f[i]);
    }
    cc_executor_free(ex);
}

/* A large argument cancelled while queued gives the arena back: the next
 * one uses it. */
static void cancelled_large_argument(void **state)
{
    (void)state;
    cc_executor *ex = new_pool(1, CC_START_SPAWN, 0);
    size_t len = (size_t)2 << 20;
    unsigned char *a = malloc(len);
    assert_non_null(a);
    memset(a, 'x', len);
    cc_future *busy, *f[3];
    cc_bytes out[3] = {{0}};
    assert_int_equal(cc_process_pool_submit(ex, "pp_nap_pid", NULL, 0, NULL,
                                            &busy), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(cc_process_pool_submit(ex, "pp_plus1", a, len,
                                                &out[i], &f[i]), 0);
    bool cancelled = cc_future_cancel(f[0]); /* may have been handed over */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(cc_future_wait(f[i], CC_FOREVER), 0);
        if (i == 0 && cancelled)
            continue;
        assert_int_equal(cc_future_error(f[i]), 0);
        assert_int_equal(out[i].len, len);
        assert_int_equal((unsigned char)out[i].data[len / 2], 'y');
    }
    for (int i = 0; i < 3; i++) {
        cc_bytes_free(&out[i]);
        cc_future_release(f[i]);
    }
    assert_int_equal(cc_future_wait(busy, CC_FOREVER), 0);
    cc_future_release(busy);
    free(a);
    cc_executor_free(ex);
}

/* A thread of the program's own, blocked until the pipe has a byte. */
static void *block_on_pipe(void *arg)
{
    char c;
    while (read(*(int *)arg, &c, 1) < 0 && errno == EINTR)
        ;
    return NULL;
}

/* Run 4 tasks on a fork pool whose workers last one task each. */
static void run_fork_pool(void)
{
    cc_executor *ex = new_pool(2, CC_START_FORK, 1);
    for (int i = 0; i < 4; i++) {
        cc_future *f;
        assert_int_equal(cc_process_pool_submit(ex, "pp_plus1", "x", 1, NULL,
                                                &f), 0);
        assert_int_equal(cc_future_result(f, CC_FOREVER, NULL), 0);
        cc_future_release(f);
    }
    cc_executor_free(ex);
}

/* The fork warning is about the program's threads (the pool's own do not
 * count) and is given once per process, not at every worker start. */
static void fork_warning_once(void **state)
{
    (void)state;
    fflush(stderr);
    int saved = dup(2), mem = memfd_create("stderr", MFD_CLOEXEC);
    assert_true(saved >= 0 && mem >= 0);
    assert_int_equal(dup2(mem, 2), 2);
    bool alone = cc_test_count_threads() == 1; /* no sanitizer thread */
    run_fork_pool();
    fflush(stderr);
    off_t quiet = lseek(mem, 0, SEEK_CUR);
    int p[2];
    assert_int_equal(pipe(p), 0);
    cc_thread *t;
    assert_int_equal(cc_thread_start(&t, block_on_pipe, &p[0], NULL), 0);
    run_fork_pool();
    run_fork_pool();
    assert_int_equal(write(p[1], "x", 1), 1);
    assert_int_equal(cc_thread_join(t, CC_FOREVER, NULL), 0);
    close(p[0]);
    close(p[1]);
    fflush(stderr);
    assert_int_equal(dup2(saved, 2), 2);
    close(saved);
    char buf[4096] = "";
    ssize_t n = pread(mem, buf, sizeof buf - 1, 0);
    close(mem);
    buf[n > 0 ? n : 0] = 0;
    int warnings = 0;
    for (char *s = buf; (s = strstr(s, "concur: warning")); s++)
        warnings++;
    if (alone && quiet != 0)
        fail_msg("a warning with the pool's threads alone: %s", buf);
    assert_int_equal(warnings, 1);
}

/* Cancelling a running task that ends just then (it returns as soon as it
 * sees the cancel) must not kill the task after it in its batch: the kill
 * is meant for the cancelled one only. The cancelled task fails with
 * -ECANCELED if the cancel was made, else keeps its outcome; the next one
 * always succeeds. The
 * first post (of a 10 ms task) is held until the rest are queued, so that
 * the cancelled task and the next go together in the batch posted ahead. */
static void cancel_as_the_task_ends_spares_the_next(void **state)
{
    (void)state;
    cc_executor *ex = new_pool(1, CC_START_SPAWN, 0);
    assert_true(workers_appear(ex, 1, 0));
    enum { FILL = 6 };
    int reps = cc_test_n(20) < 5 ? 5 : (int)cc_test_n(20);
    for (int rep = 0; rep < reps; rep++) {
        cc_future *f[3 + FILL];
        cc_bytes out = {0};
        cc_semaphore_init(&post_held, 0);
        cc_semaphore_init(&post_go, 0);
        cc__store_relaxed(&cc__pp_test_before_post, hold_post);
        assert_int_equal(cc_process_pool_submit(ex, "pp_nap_pid", NULL, 0,
                                                NULL, &f[0]), 0);
        assert_int_equal(cc_semaphore_acquire(&post_held,
                                              cc_deadline_in(10 * CC_SEC)), 0);
        cc__store_relaxed(&cc__pp_test_before_post, NULL);
        assert_int_equal(cc_process_pool_submit(ex, "pp_end_on_cancel", &rep,
                                                sizeof rep, NULL, &f[1]), 0);
        for (int i = 2; i < 3 + FILL; i++)
            assert_int_equal(cc_process_pool_submit(ex, "pp_nap_pid", NULL, 0,
                                                    i == 2 ? &out : NULL,
                                                    &f[i]), 0);
        cc_semaphore_release(&post_go, 1);
        bool in_task = false;
        char name[16];
        snprintf(name, sizeof name, "cc-ec-%d", rep);
        for (int64_t end = cc_now() + 10 * CC_SEC; !in_task && cc_now() < end;) {
            pid_t pid;
            if (cc_process_pool_worker_pids(ex, &pid, 1) == 1)
                in_task = comm_is(pid, name);
        }
        assert_true(in_task);
        bool made = cc_process_pool_cancel(ex, f[1]);
        for (int i = 0; i < 3 + FILL; i++)
            assert_int_equal(cc_future_wait(f[i], cc_deadline_in(10 * CC_SEC)),
                             0);
        int ea = cc_future_error(f[1]);
        if (ea != (made ? -ECANCELED : 0))
            fail_msg("the cancelled task (%s): %d (%s)",
                     made ? "made" : "refused", ea,
                     cc_future_error_message(f[1]));
        for (int i = 0; i < 3 + FILL; i++)
            if (i != 1 && cc_future_error(f[i]) != 0)
                fail_msg("rep %d: task %d failed: %s", rep, i,
                         cc_future_error_message(f[i]));
        assert_int_equal(out.len, sizeof(pid_t));
        cc_bytes_free(&out);
        for (int i = 0; i < 3 + FILL; i++)
            cc_future_release(f[i]);
        cc_semaphore_destroy(&post_held);
        cc_semaphore_destroy(&post_go);
    }
    cc_executor_free(ex);
}

/* Check task n after cc_process_pool_cancel said `made`: a cancel made
 * means the future fails with -ECANCELED, and the function never started
 * unless its worker was killed while running it; one not made means the
 * task ran and its result came back. */
static void check_cancelled_or_ran(cc_future *f, int n, bool made,
                                   cc_bytes *out)
{
    assert_int_equal(cc_future_wait(f, cc_deadline_in(10 * CC_SEC)), 0);
    int e = cc_future_error(f);
    const char *msg = cc_future_error_message(f);
    bool killed = msg && strstr(msg, "while running");
    bool started = cc__load_relaxed(&ran[n]); /* relaxed: the worker is
                                                 past it */
    if (made && (e != -ECANCELED || (started && !killed)))
        fail_msg("task %d: cancel made, yet %d (%s), function %s", n, e,
                 msg ? msg : "", started ? "started" : "not started");
    if (!made && (e != 0 || !started || out->len != sizeof n ||
                  memcmp(out->data, &n, sizeof n)))
        fail_msg("task %d: cancel refused, yet %d (%s), %zu bytes", n, e,
                 msg ? msg : "", out->len);
}

/* A cancel racing with the start of the task it cancels, at random
 * moments around it (its worker's start widened by 20 us): the cancel is
 * made and the task never starts (or its worker is killed while it runs),
 * or it is refused and the result arrives; never a cancel made whose task
 * then runs to its result. Two tasks a round, the second cancelled, so
 * that it is sometimes the first of its batch and sometimes not. */
static void cancel_races_the_start(void **state)
{
    (void)state;
    long rounds = cc_test_n(1500);
    ran = mmap(NULL, 2 * rounds * sizeof *ran, PROT_READ | PROT_WRITE,
               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(ran != MAP_FAILED);
    cc_process_pool_options o = {.max_workers = 1,
                                 .start_method = CC_START_FORK,
                                 .initializer = "pp_slow_start"};
    cc_executor *ex;
    assert_int_equal(cc_process_pool_new(&ex, &o), 0);
    assert_true(workers_appear(ex, 1, 0));
    unsigned seed = 12345;
    int64_t end = cc_now() + 3 * CC_SEC; /* bounded: a few seconds */
    long how[4] = {0}; /* refused, pending, skipped, killed */
    for (long r = 0; r < rounds && cc_now() < end; r++) {
        int n[2] = {2 * (int)r, 2 * (int)r + 1};
        cc_future *f[2];
        cc_bytes out[2] = {{0}};
        for (int k = 0; k < 2; k++)
            assert_int_equal(cc_process_pool_submit(ex, "pp_mark_ran", &n[k],
                                                    sizeof n[k], &out[k],
                                                    &f[k]), 0);
        seed = seed * 1103515245u + 12345u;
        spin_ns((seed >> 8) % 300000); /* 0 to 300 us */
        bool made = cc_process_pool_cancel(ex, f[1]);
        check_cancelled_or_ran(f[0], n[0], false, &out[0]);
        check_cancelled_or_ran(f[1], n[1], made, &out[1]);
        const char *msg = cc_future_error_message(f[1]);
        how[!made ? 0 : cc_future_cancelled(f[1]) ? 1
            : strstr(msg, "before") ? 2 : 3]++;
        for (int k = 0; k < 2; k++) {
            cc_bytes_free(&out[k]);
            cc_future_release(f[k]);
        }
    }
    cc_executor_free(ex);
    munmap(ran, 2 * rounds * sizeof *ran);
    print_message("cancels refused %ld; made: pending %ld, skipped %ld, "
                  "killed %ld\n", how[0], how[1], how[2], how[3]);
}

/* A new worker for every task (max_tasks_per_child 1) while tasks kill
 * their worker, time out, or are released unwaited: every future completes
 * with its own outcome within its deadline (no lost wakeup, no task lost
 * with a dead worker). Then a shutdown that cancels the queue while
 * workers die: every future is done once the pool is freed. CC_TEST
 * checks that no fd or child is left. */
static void deaths_and_timeouts_with_one_task_per_child(void **state)
{
    (void)state;
    cc_process_pool_options o = {.max_workers = 2, .max_tasks_per_child = 1};
    cc_executor *ex;
    assert_int_equal(cc_process_pool_new(&ex, &o), 0);
    int n = (int)cc_test_n(60);
    if (n < 10)
        n = 10;
    cc_future **f = calloc((size_t)n, sizeof *f);
    cc_bytes *out = calloc((size_t)n, sizeof *out);
    assert_true(f && out);
    for (int i = 0; i < n; i++) {
        unsigned char a = (unsigned char)i;
        int r = i % 5 == 1 ? cc_process_pool_submit(ex, "pp_kill_self", NULL,
                                                    0, NULL, &f[i])
              : i % 5 == 2 ? cc_process_pool_submit_timeout(
                                 ex, "pp_sleep_forever", NULL, 0, 30000000,
                                 NULL, &f[i])
              : i % 5 == 3 ? cc_process_pool_submit(ex, "pp_plus1", &a, 1,
                                                    NULL, NULL)
                           : cc_process_pool_submit(ex, "pp_plus1", &a, 1,
                                                    &out[i], &f[i]);
        assert_int_equal(r, 0);
    }
    for (int i = 0; i < n; i++) {
        if (i % 5 == 3)
            continue;
        assert_int_equal(cc_future_wait(f[i], cc_deadline_in(20 * CC_SEC)), 0);
        int want = i % 5 == 1 ? -ECHILD : i % 5 == 2 ? -ETIMEDOUT : 0;
        if (cc_future_error(f[i]) != want)
            fail_msg("task %d: %d, not %d (%s)", i, cc_future_error(f[i]),
                     want, cc_future_error_message(f[i]));
        if (want == 0)
            assert_true(out[i].len == 1 &&
                        (unsigned char)out[i].data[0] == (unsigned char)(i + 1));
        cc_bytes_free(&out[i]);
        cc_future_release(f[i]);
    }
    /* The queue cancelled by the shutdown while its workers die. */
    for (int i = 0; i < n; i++)
        assert_int_equal(i % 2 ? cc_process_pool_submit(ex, "pp_kill_self",
                                                        NULL, 0, NULL, &f[i])
                               : cc_process_pool_submit(ex, "pp_plus1", "a", 1,
                                                        NULL, &f[i]), 0);
    usleep(2000);
    cc_executor_shutdown(ex, false, true);
    cc_executor_free(ex);
    for (int i = 0; i < n; i++) {
        assert_true(cc_future_done(f[i]));
        int e = cc_future_error(f[i]);
        if (e != 0 && e != -ECANCELED && !(i % 2 && e == -ECHILD))
            fail_msg("task %d after the shutdown: %d", i, e);
        cc_future_release(f[i]);
    }
    free(f);
    free(out);
}

/* Terminate while a feeder starts the worker that is to run a task left by
 * a dead one (the queue is empty after a shutdown, so no worker was
 * started ahead): the new worker is killed too, and the task fails rather
 * than run on (here forever, and cc_executor_free would hang). */
static void terminate_while_a_worker_starts(void **state)
{
    (void)state;
    int reps = cc_test_n(12) < 4 ? 4 : (int)cc_test_n(12);
    for (int rep = 0; rep < reps; rep++) {
        cc_executor *ex = new_pool(1, CC_START_SPAWN, 0);
        assert_true(workers_appear(ex, 1, 0));
        cc_semaphore_init(&post_held, 0);
        cc_semaphore_init(&post_go, 0);
        cc__store_relaxed(&cc__pp_test_before_post, hold_post);
        cc_future *fk, *fs;
        assert_int_equal(cc_process_pool_submit(ex, "pp_kill_self", NULL, 0,
                                                NULL, &fk), 0);
        assert_int_equal(cc_semaphore_acquire(&post_held,
                                              cc_deadline_in(10 * CC_SEC)), 0);
        cc__store_relaxed(&cc__pp_test_before_post, NULL);
        assert_int_equal(cc_process_pool_submit(ex, "pp_sleep_forever", NULL,
                                                0, NULL, &fs), 0);
        cc_semaphore_release(&post_go, 1);
        /* Posted ahead (running), or left queued if the worker died first. */
        int64_t end = cc_now() + 10 * CC_SEC;
        while (!cc_future_running(fs) && !cc_future_done(fk) && cc_now() < end)
            ;
        cc_executor_shutdown(ex, false, true);
        assert_int_equal(cc_future_wait(fk, cc_deadline_in(10 * CC_SEC)), 0);
        assert_int_equal(cc_future_error(fk), -ECHILD);
        usleep((useconds_t)(rep % 4) * 1000);
        cc_process_pool_terminate(ex);
        int r = cc_future_wait(fs, cc_deadline_in(5 * CC_SEC));
        if (r != 0)
            cc_process_pool_kill(ex); /* so that the free below ends */
        cc_executor_free(ex);
        if (r != 0)
            fail_msg("rep %d: the task ran on after terminate", rep);
        int e = cc_future_error(fs);
        if (e != -ECHILD && e != -ECANCELED)
            fail_msg("rep %d: %d (%s)", rep, e, cc_future_error_message(fs));
        cc_future_release(fk);
        cc_future_release(fs);
        cc_semaphore_destroy(&post_held);
        cc_semaphore_destroy(&post_go);
    }
}

/* The map's inputs: 'a', 'b', ... with a 'K' at index kill. */
struct letters {
    int next, n, kill; /* the next input, how many, the one that kills */
    char cur;          /* the current input's byte */
};

static int next_letter(void *state, const void **arg, size_t *len)
{
    struct letters *g = state;
    if (g->next == g->n)
        return 0;
    g->cur = g->next == g->kill ? 'K' : (char)('a' + g->next % 26);
    g->next++;
    *arg = &g->cur;
    *len = 1;
    return 1;
}

/* A worker that dies inside a chunk of a map fails exactly the inputs of
 * that chunk (-ECHILD, the ones before the death included: the chunk is
 * one task); the other chunks come through whole, in order, and the map
 * goes on with the replacement. */
static void map_chunk_with_a_death(void **state)
{
    (void)state;
    cc_executor *ex = new_pool(2, CC_START_SPAWN, 0);
    enum { N = 40, CHUNK = 4, KILL = 9 };
    struct letters g = {.n = N, .kill = KILL};
    cc_map_options mo = {.chunksize = CHUNK, .max_chunks = 3};
    cc_process_map *m;
    assert_int_equal(cc_process_pool_map(&m, ex, "pp_plus1_or_die",
                                         next_letter, &g, &mo), 0);
    for (int i = 0; i < N; i++) {
        cc_bytes out = {0};
        int r = cc_process_map_next(m, cc_deadline_in(10 * CC_SEC), &out);
        if (i / CHUNK == KILL / CHUNK) {
            assert_int_equal(r, -ECHILD);
            assert_int_equal(out.len, 0);
        } else {
            assert_int_equal(r, 0);
            assert_true(out.len == 1 && out.data[0] == 'a' + i % 26 + 1);
        }
        cc_bytes_free(&out);
    }
    assert_int_equal(cc_process_map_next(m, cc_deadline_in(10 * CC_SEC),
                                         NULL), -ENOENT);
    cc_process_map_free(m);
    cc_executor_free(ex);
}

/* Options a pool cannot have are refused before anything starts (no
 * process, thread or fd is left: the fixture's teardown counts them). */
static void bad_options_refused(void **state)
{
    (void)state;
    cc_executor *ex = NULL;
    assert_int_equal(cc_process_pool_new(NULL, NULL), -EINVAL);
    cc_process_pool_options o = {.max_workers = 1, .start_method = 99};
    assert_int_equal(cc_process_pool_new(&ex, &o), -EINVAL);
    o = (cc_process_pool_options){.max_workers = 1, .task_timeout_ns = -1};
    assert_int_equal(cc_process_pool_new(&ex, &o), -EINVAL);
    o = (cc_process_pool_options){.max_workers = 1, .initargs_len = 4};
    assert_int_equal(cc_process_pool_new(&ex, &o), -EINVAL);
    o = (cc_process_pool_options){.max_workers = 1,
                                  .initializer = "no_such_function"};
    assert_int_equal(cc_process_pool_new(&ex, &o), -ENOENT);
    char longname[512];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    o.initializer = longname;
    assert_int_equal(cc_process_pool_new(&ex, &o), -ENOENT);
    assert_null(ex);
    /* A thread pool is not a process pool. */
    assert_int_equal(cc_thread_pool_new(&ex, NULL), 0);
    pid_t pid;
    assert_int_equal(cc_process_pool_worker_pids(ex, &pid, 1), -EINVAL);
    cc_executor_free(ex);
}

int main(int argc, char **argv)
{
    cc_worker_main_hook(argc, argv); /* a spawned worker never returns */
    const struct CMUnitTest tests[] = {
        CC_TEST(fork_warning_once), /* first: nothing has warned before */
        CC_TEST(tasks_spread_over_both_workers),
        CC_TEST(workers_start_eagerly_and_are_replaced_at_once),
        CC_TEST(large_arguments_posted_ahead),
        CC_TEST(cancelled_large_argument),
        CC_TEST(cancel_between_take_and_post),
        CC_TEST(cancel_as_the_task_ends_spares_the_next),
        CC_TEST(cancel_races_the_start),
        CC_TEST(cancel_as_its_worker_dies),
        CC_TEST(cancel_then_the_post_fails),
        CC_TEST(deaths_and_timeouts_with_one_task_per_child),
        CC_TEST(terminate_while_a_worker_starts),
        CC_TEST(map_chunk_with_a_death),
        CC_TEST(bad_options_refused),
    };
    return CC_RUN_TESTS(tests);
}
