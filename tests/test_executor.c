/*
 * test_executor.c: the thread pool executor (include/concur/executor.h):
 * submit, errors, cancel, done callbacks, shutdown, map, initializers.
 */
#include "testutil.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static cc_executor *new_pool(size_t workers)
{
    cc_executor *pool;
    cc_thread_pool_options opts = {.max_workers = workers};
    assert_int_equal(cc_thread_pool_new(&pool, &opts), 0);
    return pool;
}

static cc_future *submit(cc_executor *pool, cc_task_fn fn, void *arg)
{
    cc_future *f;
    assert_int_equal(cc_executor_submit(pool, fn, arg, &f), 0);
    return f;
}

static int square(void *arg, void **result)
{
    intptr_t x = (intptr_t)arg;
    *result = (void *)(x * x);
    return 0;
}

/* Fails for odd inputs, with a message. */
static int fail_odd(void *arg, void **result)
{
    intptr_t x = (intptr_t)arg;
    if (x % 2) {
        cc_task_set_error_message("odd input %ld", (long)x);
        return -EDOM;
    }
    *result = arg;
    return 0;
}

static int return_positive(void *arg, void **result) { return 1; }

/* Blocks until the hand-made future `arg` is done: holds a worker. */
static int wait_gate(void *arg, void **result)
{
    return cc_future_wait(arg, CC_FOREVER);
}

static void submit_gives_results(void **state)
{
    cc_executor *pool = new_pool(2);
    assert_int_equal(cc_executor_max_workers(pool), 2);
    enum { N = 1000 };
    cc_future *fs[N];
    for (intptr_t i = 0; i < N; i++)
        fs[i] = submit(pool, square, (void *)i);
    for (intptr_t i = 0; i < N; i++) {
        void *r;
        assert_int_equal(cc_future_result(fs[i], CC_FOREVER, &r), 0);
        assert_int_equal((intptr_t)r, i * i);
        cc_future_release(fs[i]);
    }
    assert_int_equal(cc_executor_submit(pool, square, NULL, NULL), 0);
    cc_executor_free(pool);
}

static void failing_task_keeps_pool(void **state)
{
    cc_executor *pool = new_pool(2);
    cc_future *bad = submit(pool, fail_odd, (void *)7);
    assert_int_equal(cc_future_result(bad, CC_FOREVER, NULL), -EDOM);
    assert_string_equal(cc_future_error_message(bad), "odd input 7");
    cc_future *pos = submit(pool, return_positive, NULL);
    assert_int_equal(cc_future_result(pos, CC_FOREVER, NULL), -EINVAL);
    cc_future *good = submit(pool, fail_odd, (void *)8);
    void *r;
    assert_int_equal(cc_future_result(good, CC_FOREVER, &r), 0);
    assert_int_equal((intptr_t)r, 8);
    assert_null(cc_future_error_message(good));
    cc_future_release(bad);
    cc_future_release(pos);
    cc_future_release(good);
    cc_executor_free(pool);
}

/* ---- cancel --------------------------------------------------------------------- */

static atomic_int *runs;

static int count_run(void *arg, void **result)
{
    atomic_fetch_add(&runs[(intptr_t)arg], 1);
    return 0;
}

static void cancel_true_only_for_unrun(void **state)
{
    size_t n = (size_t)cc_test_n(10000);
    runs = calloc(n, sizeof *runs);
    cc_future **fs = calloc(n, sizeof *fs);
    bool *cancelled = calloc(n, sizeof *cancelled);
    cc_executor *pool = new_pool(1);
    cc_future *gate, *blocker;
    assert_int_equal(cc_future_new(&gate), 0);
    blocker = submit(pool, wait_gate, gate);
    for (size_t i = 0; i < n; i++)
        fs[i] = submit(pool, count_run, (void *)(intptr_t)i);
    for (size_t i = 0; i < n / 4; i++) /* surely before they run */
        cancelled[i] = cc_future_cancel(fs[i]);
    cc_future_set_result(gate, NULL);
    for (size_t i = n / 4; i < n; i++) /* racing the worker */
        cancelled[i] = cc_future_cancel(fs[i]);
    cc_executor_shutdown(pool, true, false);
    size_t ncancelled = 0;
    for (size_t i = 0; i < n; i++) {
        assert_true(cc_future_done(fs[i]));
        assert_int_equal(cc_future_cancelled(fs[i]), cancelled[i]);
        assert_int_equal(atomic_load(&runs[i]), cancelled[i] ? 0 : 1);
        ncancelled += cancelled[i];
        cc_future_release(fs[i]);
    }
    assert_true(ncancelled >= n / 4);
    cc_future_release(blocker);
    cc_future_release(gate);
    cc_executor_free(pool);
    free(runs);
    free(fs);
    free(cancelled);
}

/* ---- done callbacks -------------------------------------------------------------- */

static atomic_int *calls;

static void count_call(cc_future *f, void *arg)
{
    assert_true(cc_future_done(f));
    atomic_fetch_add(&calls[(intptr_t)arg], 1);
}

static void done_callbacks_run_exactly_once(void **state)
{
    size_t n = (size_t)cc_test_n(100000);
    calls = calloc(n, sizeof *calls);
    cc_future **fs = calloc(n, sizeof *fs);
    cc_executor *pool = new_pool(2);
    for (size_t i = 0; i < n; i++) {
        fs[i] = submit(pool, square, (void *)(intptr_t)i);
        /* Races the task: runs in the worker or at once, here. */
        assert_int_equal(cc_future_add_done_callback(fs[i], count_call,
                                                     (void *)(intptr_t)i), 0);
    }
    assert_int_equal(cc_futures_wait(fs, n, CC_ALL_COMPLETED, CC_FOREVER), n);
    for (size_t i = 0; i < n; i++) { /* after completion: at once */
        int before = atomic_load(&calls[i]);
        assert_int_equal(cc_future_add_done_callback(fs[i], count_call,
                                                     (void *)(intptr_t)i), 0);
        assert_true(atomic_load(&calls[i]) > before);
    }
    /* A waiter may wake before the worker has run the callbacks (as in
     * Python): the workers are done with them once they exit. */
    cc_executor_shutdown(pool, true, false);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(atomic_load(&calls[i]), 2);
        cc_future_release(fs[i]);
    }
    cc_executor_free(pool);
    free(calls);
    free(fs);
}

/* ---- wait on many and as-completed with pool tasks ------------------------------- */

static int sleep_ms(void *arg, void **result)
{
    cc_sleep((intptr_t)arg * CC_MSEC);
    *result = arg;
    return (intptr_t)arg == 1 ? -EIO : 0;
}

static void wait_and_as_completed_on_pool(void **state)
{
    cc_executor *pool = new_pool(3);
    cc_future *fs[3];
    fs[0] = submit(pool, sleep_ms, (void *)300);
    fs[1] = submit(pool, sleep_ms, (void *)1);  /* fails with -EIO */
    fs[2] = submit(pool, sleep_ms, (void *)30);
    int done = cc_futures_wait(fs, 3, CC_FIRST_EXCEPTION, CC_FOREVER);
    assert_true(done >= 1);
    assert_int_equal(cc_future_error(fs[1]), -EIO);
    cc_as_completed *it;
    assert_int_equal(cc_as_completed_new(&it, fs, 3), 0);
    cc_future *got;
    assert_int_equal(cc_as_completed_next(it, CC_FOREVER, &got), 0);
    assert_ptr_equal(got, fs[1]); /* the only one done */
    assert_int_equal(cc_as_completed_next(it, CC_FOREVER, &got), 0);
    assert_ptr_equal(got, fs[2]);
    assert_int_equal(cc_as_completed_next(it, CC_FOREVER, &got), 0);
    assert_ptr_equal(got, fs[0]);
    assert_int_equal(cc_as_completed_next(it, CC_FOREVER, &got), -ENOENT);
    cc_as_completed_free(it);
    for (int i = 0; i < 3; i++)
        cc_future_release(fs[i]);
    cc_executor_free(pool);
}

/* ---- shutdown ------------------------------------------------------------------- */

static atomic_long ran;

static int count_ran(void *arg, void **result)
{
    atomic_fetch_add(&ran, 1);
    return 0;
}

static void shutdown_wait_runs_everything(void **state)
{
    size_t n = (size_t)cc_test_n(5000);
    cc_future **fs = calloc(n, sizeof *fs);
    atomic_store(&ran, 0);
    cc_executor *pool = new_pool(2);
    for (size_t i = 0; i < n; i++)
        fs[i] = submit(pool, count_ran, NULL);
    cc_executor_shutdown(pool, true, false);
    assert_int_equal(atomic_load(&ran), n);
    for (size_t i = 0; i < n; i++) {
        assert_true(cc_future_done(fs[i]) && !cc_future_cancelled(fs[i]));
        cc_future_release(fs[i]);
    }
    cc_future *f = (cc_future *)1;
    assert_int_equal(cc_executor_submit(pool, count_ran, NULL, &f), -ESHUTDOWN);
    assert_ptr_equal(f, (cc_future *)1);
    cc_executor_shutdown(pool, true, false); /* again: harmless */
    cc_executor_free(pool);
    free(fs);
}

struct opener {
    cc_future *gate; /* to complete */
    int64_t delay;   /* after this many ns */
};

static void *open_later(void *arg)
{
    struct opener *o = arg;
    cc_sleep(o->delay);
    cc_future_set_result(o->gate, NULL);
    return NULL;
}

/* One worker held by a blocker, thousands queued: shutdown cancels the queue. */
static void check_shutdown_cancel(bool wait)
{
    size_t n = (size_t)cc_test_n(5000);
    cc_future **fs = calloc(n, sizeof *fs);
    atomic_store(&ran, 0);
    cc_executor *pool = new_pool(1);
    cc_future *gate, *blocker;
    assert_int_equal(cc_future_new(&gate), 0);
    blocker = submit(pool, wait_gate, gate);
    for (size_t i = 0; i < n; i++)
        fs[i] = submit(pool, count_ran, NULL);
    struct opener o = {gate, 20 * CC_MSEC};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, open_later, &o), 0);
    cc_executor_shutdown(pool, wait, true);
    if (wait)
        assert_true(cc_future_done(blocker));
    pthread_join(t, NULL);
    assert_int_equal(cc_future_wait(blocker, CC_FOREVER), 0);
    cc_executor_free(pool);
    size_t cancelled = 0;
    for (size_t i = 0; i < n; i++) {
        assert_true(cc_future_done(fs[i]));
        cancelled += cc_future_cancelled(fs[i]);
        cc_future_release(fs[i]);
    }
    assert_int_equal(cancelled + (size_t)atomic_load(&ran), n);
    assert_true(cancelled > 0);
    cc_future_release(blocker);
    cc_future_release(gate);
    free(fs);
}

static void shutdown_cancel_futures_wait(void **state) { check_shutdown_cancel(true); }

static void shutdown_cancel_futures_nowait(void **state)
{
    check_shutdown_cancel(false);
}

/* Submits racing shutdown: each either fails with -ESHUTDOWN or its future
 * ends done (run or cancelled); nothing is stranded. */
struct submitter {
    cc_executor *pool; /* where to submit */
    cc_future **fs;    /* the futures submitted (NULL: refused) */
    size_t n;          /* how many tries */
};

static void *submit_many(void *arg)
{
    struct submitter *s = arg;
    for (size_t i = 0; i < s->n; i++) {
        int r = cc_executor_submit(s->pool, count_ran, NULL, &s->fs[i]);
        assert_true(r == 0 || r == -ESHUTDOWN);
        if (r < 0)
            s->fs[i] = NULL;
    }
    return NULL;
}

static void submit_racing_shutdown(void **state)
{
    size_t n = (size_t)cc_test_n(20000);
    for (int round = 0; round < 20; round++) {
        cc_executor *pool = new_pool(2);
        struct submitter s[2];
        pthread_t t[2];
        for (int i = 0; i < 2; i++) {
            s[i] = (struct submitter){pool, calloc(n, sizeof(cc_future *)), n};
            assert_int_equal(pthread_create(&t[i], NULL, submit_many, &s[i]), 0);
        }
        cc_sleep((round % 4) * 100 * CC_USEC);
        cc_executor_shutdown(pool, round % 2, round % 3 == 0);
        for (int i = 0; i < 2; i++)
            pthread_join(t[i], NULL);
        for (int i = 0; i < 2; i++) {
            for (size_t k = 0; k < n; k++) {
                if (!s[i].fs[k])
                    continue;
                assert_int_equal(cc_future_wait(s[i].fs[k], CC_FOREVER), 0);
                cc_future_release(s[i].fs[k]);
            }
            free(s[i].fs);
        }
        cc_executor_free(pool);
    }
}

/* Submits until the pool refuses; the tasks count themselves in `ran`. */
static void *submit_until_refused(void *pool)
{
    int r;
    while ((r = cc_executor_submit(pool, count_ran, NULL, NULL)) == 0)
        ;
    assert_int_equal(r, -ESHUTDOWN);
    return NULL;
}

/*
 * The only worker is held from before shutdown(cancel_futures) to after
 * it, so every task a racing submit got in (returning 0: queued before the
 * shutdown, executor.h) is still queued when it cancels: none may run.
 */
static void cancel_futures_cancels_racing_submits(void **state)
{
    for (long round = 0; round < cc_test_n(300); round++) {
        atomic_store(&ran, 0);
        cc_executor *pool = new_pool(1);
        cc_future *gate;
        assert_int_equal(cc_future_new(&gate), 0);
        cc_future *blocker = submit(pool, wait_gate, gate);
        while (!cc_future_running(blocker)) /* the worker is held */
            cc_sleep(10 * CC_USEC);
        pthread_t t;
        assert_int_equal(
            pthread_create(&t, NULL, submit_until_refused, pool), 0);
        cc_sleep((round % 5) * 20 * CC_USEC);
        cc_executor_shutdown(pool, false, true);
        assert_int_equal(cc_future_set_result(gate, NULL), 0);
        pthread_join(t, NULL);
        cc_executor_free(pool);
        assert_int_equal(atomic_load(&ran), 0);
        cc_future_release(blocker);
        cc_future_release(gate);
    }
}

/* Waits (up to 2 s) for the hand-made future `arg`, which the next task
 * sets: fails with -ETIMEDOUT when that task sat in the queue meanwhile. */
static int wait_for_partner(void *arg, void **result)
{
    return cc_future_wait(arg, cc_deadline_in(2 * CC_SEC));
}

/* Sets the hand-made future `arg`, holding a reference of its own: the
 * waiter may release its reference as soon as the future is done, while
 * set_result still runs (future.h). */
static int set_partner(void *arg, void **result)
{
    int r = cc_future_set_result(arg, NULL);
    cc_future_release(arg);
    return r;
}

/*
 * Two workers, one spinning for work (it just ran the last round), the
 * other parked. Task 1 blocks until task 2 runs; task 2 is pushed right
 * after it. A submit that sees a spinner wakes nobody, so the spinner,
 * whichever way it takes task 1 (spinning, or parking just after its spin
 * ran out), must wake a worker for the task behind it: else task 2 waits
 * behind task 1 with a worker parked.
 */
static void second_task_wakes_idle_worker_while_first_blocks(void **state)
{
    cc_executor *pool = new_pool(2);
    long n = cc_test_n(20000), stalls = 0;
    for (long i = 0; i < n && stalls == 0; i++) {
        cc_future *gate;
        assert_int_equal(cc_future_new(&gate), 0);
        cc_future *t1 = submit(pool, wait_for_partner, gate);
        assert_int_equal(cc_executor_submit(pool, set_partner,
                                            cc_future_retain(gate), NULL), 0);
        if (cc_future_result(t1, CC_FOREVER, NULL) == -ETIMEDOUT)
            stalls++;
        cc_future_release(t1);
        cc_future_wait(gate, CC_FOREVER);
        cc_future_release(gate);
    }
    cc_executor_free(pool);
    assert_int_equal(stalls, 0);
}

/* ---- map --------------------------------------------------------------------------- */

/* Generator 0, 1, ..., limit - 1 that checks the bound on work in flight. */
struct numbers {
    long next;     /* next number to give */
    long limit;    /* how many */
    long consumed; /* results taken by the consumer */
    long bound;    /* most inputs that may be out at once */
    long peak;     /* most seen */
};

static int next_number(void *state, void **arg)
{
    struct numbers *g = state;
    if (g->next == g->limit)
        return 0;
    long out = g->next - g->consumed + 1;
    g->peak = out > g->peak ? out : g->peak;
    *arg = (void *)(intptr_t)g->next++;
    return 1;
}

static int add_one(void *arg, void **result)
{
    *result = (void *)((intptr_t)arg + 1);
    return 0;
}

static long max_rss_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static void map_is_lazy_ordered_and_bounded(void **state)
{
    cc_executor *pool = new_pool(2);
    /* In flight: 8 chunks of 1000, plus the result in the consumer's hand. */
    struct numbers g = {.limit = cc_test_n(10000000), .bound = 8 * 1000 + 1};
    cc_map_options opts = {.chunksize = 1000, .max_chunks = 8};
    long rss0 = max_rss_kib();
    cc_map *m;
    assert_int_equal(cc_executor_map(&m, pool, add_one, next_number, &g, &opts), 0);
    void *r;
    int err;
    while ((err = cc_map_next(m, CC_FOREVER, &r)) == 0) {
        assert_int_equal((intptr_t)r, g.consumed + 1); /* in input order */
        g.consumed++;
    }
    assert_int_equal(err, -ENOENT);
    assert_int_equal(g.consumed, g.limit);
    assert_true(g.peak <= g.bound);
    assert_true(max_rss_kib() - rss0 < 64 * 1024); /* 10^7 items: not in memory */
    cc_map_free(m);
    cc_executor_free(pool);
}

static void map_reports_errors_in_order(void **state)
{
    cc_executor *pool = new_pool(2);
    enum { N = 101 };
    void *args[N];
    for (intptr_t i = 0; i < N; i++)
        args[i] = (void *)i;
    cc_map_array in = {args, N, 0};
    cc_map_options opts = {.chunksize = 7};
    cc_map *m;
    assert_int_equal(cc_executor_map(&m, pool, fail_odd, cc_map_array_next, &in,
                                     &opts), 0);
    for (intptr_t i = 0; i < N; i++) {
        void *r;
        int err = cc_map_next(m, CC_FOREVER, &r);
        assert_int_equal(err, i % 2 ? -EDOM : 0);
        assert_ptr_equal(r, i % 2 ? NULL : (void *)i);
    }
    void *r;
    assert_int_equal(cc_map_next(m, CC_FOREVER, &r), -ENOENT);
    cc_map_free(m);
    cc_executor_free(pool);
}

static int failing_generator(void *state, void **arg)
{
    long *left = state;
    if ((*left)-- == 0)
        return -EBADMSG;
    *arg = NULL;
    return 1;
}

static void map_generator_error_and_early_free(void **state)
{
    cc_executor *pool = new_pool(2);
    long left = 5;
    cc_map *m;
    assert_int_equal(cc_executor_map(&m, pool, add_one, failing_generator, &left,
                                     NULL), 0);
    void *r;
    for (int i = 0; i < 5; i++)
        assert_int_equal(cc_map_next(m, CC_FOREVER, &r), 0);
    assert_int_equal(cc_map_next(m, CC_FOREVER, &r), -EBADMSG);
    assert_int_equal(cc_map_next(m, CC_FOREVER, &r), -ENOENT);
    cc_map_free(m);

    /* Stop after a few of a million: nothing hangs, nothing leaks. */
    struct numbers g = {.limit = 1000000};
    assert_int_equal(cc_executor_map(&m, pool, add_one, next_number, &g, NULL), 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(cc_map_next(m, CC_FOREVER, &r), 0);
    cc_map_free(m);
    assert_true(g.next < 1000);
    cc_executor_free(pool);
}

/* A submit that fails (the pool was shut down) ends the input, and the
 * inputs already taken for that chunk get no result (executor.h). */
static void map_submit_error_drops_its_chunk(void **state)
{
    cc_executor *pool = new_pool(1);
    struct numbers g = {.limit = 6};
    cc_map_options opts = {.chunksize = 2, .max_chunks = 1};
    cc_map *m;
    assert_int_equal(cc_executor_map(&m, pool, add_one, next_number, &g,
                                     &opts), 0);
    cc_executor_shutdown(pool, false, false); /* the first chunk still runs */
    void *r;
    for (intptr_t i = 0; i < 2; i++) {
        assert_int_equal(cc_map_next(m, CC_FOREVER, &r), 0);
        assert_int_equal((intptr_t)r, i + 1);
    }
    assert_int_equal(cc_map_next(m, CC_FOREVER, &r), -ESHUTDOWN);
    assert_int_equal(cc_map_next(m, CC_FOREVER, &r), -ENOENT);
    assert_int_equal(g.next, 4); /* inputs 2 and 3 were taken, not run */
    cc_map_free(m);
    cc_executor_free(pool);
}

static atomic_int slow_ran; /* slow_one calls that ran to their end */

static int slow_one(void *arg, void **result)
{
    (void)arg;
    cc_sleep(100 * CC_MSEC);
    atomic_fetch_add(&slow_ran, 1);
    *result = NULL;
    return 0;
}

/* Freeing a map cancels every queued chunk before it waits for the running
 * one: else each wait would let the next queued chunk start (all 8 would
 * run). What runs: the chunk taken and the one running at the free (one
 * more where the free came late). */
static void map_free_cancels_queued_chunks_first(void **state)
{
    cc_executor *pool = new_pool(1);
    struct numbers g = {.limit = 1000};
    cc_map_options opts = {.chunksize = 1, .max_chunks = 8};
    cc_map *m;
    atomic_store(&slow_ran, 0);
    assert_int_equal(cc_executor_map(&m, pool, slow_one, next_number, &g,
                                     &opts), 0);
    void *r;
    assert_int_equal(cc_map_next(m, CC_FOREVER, &r), 0);
    cc_map_free(m);
    cc_executor_free(pool);
    int done = atomic_load(&slow_ran);
    assert_true(done >= 1 && done <= 3);
}

/* ---- initializers ------------------------------------------------------------------ */

static atomic_int inits, named;

static int init_ok(void *arg)
{
    char name[16];
    atomic_fetch_add(&inits, 1);
    if (pthread_getname_np(pthread_self(), name, sizeof name) == 0 &&
        strncmp(name, "initpool-", 9) == 0)
        atomic_fetch_add(&named, 1);
    return 0;
}

static int init_fails(void *arg)
{
    cc_task_set_error_message("no database");
    return -ECONNREFUSED;
}

static void initializer_runs_once_per_worker(void **state)
{
    atomic_store(&inits, 0);
    cc_executor *pool;
    cc_thread_pool_options opts = {.max_workers = 3, .initializer = init_ok,
                                   .thread_name_prefix = "initpool"};
    assert_int_equal(cc_thread_pool_new(&pool, &opts), 0);
    cc_future *f = submit(pool, square, (void *)3);
    assert_int_equal(cc_future_wait(f, CC_FOREVER), 0);
    cc_future_release(f);
    cc_executor_free(pool);
    assert_int_equal(atomic_load(&inits), 3);
    assert_int_equal(atomic_load(&named), 3); /* "<prefix>-<i>" */
}

static void failing_initializer_breaks_pool(void **state)
{
    cc_executor *pool;
    cc_thread_pool_options opts = {.max_workers = 1, .initializer = init_fails};
    assert_int_equal(cc_thread_pool_new(&pool, &opts), 0);
    cc_future *f;
    int r = cc_executor_submit(pool, square, (void *)3, &f);
    if (r == 0) {
        assert_int_equal(cc_future_result(f, CC_FOREVER, NULL), -EPIPE);
        assert_non_null(strstr(cc_future_error_message(f),
                               "initializer failed: no database"));
        cc_future_release(f);
    } else {
        assert_int_equal(r, -EPIPE);
    }
    assert_int_equal(cc_executor_submit(pool, square, NULL, &f), -EPIPE);
    /* A map on a broken pool yields -EPIPE, then ends. */
    void *args[3] = {0}, *res;
    cc_map_array in = {args, 3, 0};
    cc_map *m;
    assert_int_equal(cc_executor_map(&m, pool, square, cc_map_array_next, &in,
                                     NULL), 0);
    assert_int_equal(cc_map_next(m, CC_FOREVER, &res), -EPIPE);
    int k = 0;
    while ((r = cc_map_next(m, CC_FOREVER, &res)) == -EPIPE)
        assert_true(++k < 3);
    assert_int_equal(r, -ENOENT);
    cc_map_free(m);
    cc_executor_free(pool);
}

static void default_size_is_cpu_count(void **state)
{
    cc_executor *pool;
    assert_int_equal(cc_thread_pool_new(&pool, NULL), 0);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    assert_int_equal(cc_executor_max_workers(pool), cpus);
    cc_executor_free(pool);
}

/* ---- the worker threads ---------------------------------------------------------- */

/* A task that reports its worker's cc_thread name and daemon flag. */
static int describe_worker(void *arg, void **result)
{
    cc_thread *me = cc_thread_current();
    char *s = malloc(64);
    snprintf(s, 64, "%s %d", cc_thread_name(me), (int)cc_thread_is_daemon(me));
    *result = s;
    return 0;
}

static void workers_are_named_cc_threads(void **state)
{
    cc_executor *pool;
    cc_thread_pool_options opts = {.max_workers = 1,
                                   .thread_name_prefix = "a-long-pool-prefix"};
    assert_int_equal(cc_thread_pool_new(&pool, &opts), 0);
    cc_future *f = submit(pool, describe_worker, NULL);
    void *r;
    assert_int_equal(cc_future_result(f, CC_FOREVER, &r), 0);
    /* The whole name (the OS keeps 15 bytes); joined, so not a daemon. */
    assert_string_equal(r, "a-long-pool-prefix-0 0");
    free(r);
    cc_future_release(f);
    cc_executor_free(pool);
}

/* Sleeps, then writes a byte to the pipe fd in arg. */
static int sleep_then_write(void *arg, void **result)
{
    cc_sleep(100 * CC_MSEC);
    return write((int)(intptr_t)arg, "x", 1) == 1 ? 0 : -EIO;
}

static int call_exit(void *arg, void **result) { exit(0); }

enum at_exit { QUEUED, IDLE, FROM_TASK };

/* In a child: a pool left open at exit() runs its queue, then lets it exit
 * (Python joins ThreadPoolExecutor workers at interpreter exit). */
static void pool_left_open_at_exit(int fd, enum at_exit how)
{
    cc_executor *pool;
    cc_thread_pool_options opts = {.max_workers = 2};
    if (cc_thread_pool_new(&pool, &opts) != 0)
        _exit(2);
    if (how != IDLE && cc_executor_submit(pool, sleep_then_write,
                                          (void *)(intptr_t)fd, NULL) != 0)
        _exit(3);
    if (how == FROM_TASK && cc_executor_submit(pool, call_exit, NULL, NULL) == 0)
        cc_sleep(10 * CC_SEC); /* the task exits first */
    exit(0);
}

static void run_child_at_exit(enum at_exit how, const char *expect)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        pool_left_open_at_exit(fds[1], how);
    }
    close(fds[1]);
    char buf[8];
    ssize_t n = read(fds[0], buf, sizeof buf); /* EOF once the child is gone */
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(n, strlen(expect));
    assert_memory_equal(buf, expect, n);
}

static void open_pool_at_exit_finishes_queue(void **state)
{
    run_child_at_exit(QUEUED, "x");    /* the queued task ran */
    run_child_at_exit(IDLE, "");       /* idle workers do not hang exit() */
    run_child_at_exit(FROM_TASK, "x"); /* nor a task calling exit() */
}

/* ---- exit() from a task while the pool is being shut down ------------------- */

/* Status of fn(arg) run in a forked child, or -1 if it hung. */
static int child_status_within(int (*fn)(void *), void *arg, int64_t limit)
{
    return cc_test_reap_within(cc_test_fork(fn, arg), limit);
}

/* A hang-free exit ends well within this, even under TSan (~1 s in exit). */
#define EXIT_LIMIT (10 * CC_SEC)

static atomic_int task_started, closing;

/* Runs until `closing` is set and the closer is inside the call, then exits
 * the process with status 7. */
static int exit_while_closing(void *arg, void **result)
{
    atomic_store(&task_started, 1);
    while (!atomic_load(&closing))
        cc_sleep(CC_MSEC);
    cc_sleep(100 * CC_MSEC); /* the closer is joining the workers by now */
    exit(7);
}

enum closer { SHUTDOWN, FREE };

/* Start a task that calls exit(), then close the pool while it runs. */
static void close_pool_under_exit(enum closer how)
{
    cc_executor *pool;
    cc_thread_pool_options opts = {.max_workers = 2};
    if (cc_thread_pool_new(&pool, &opts) != 0)
        _exit(2);
    if (cc_executor_submit(pool, exit_while_closing, NULL, NULL) != 0)
        _exit(3);
    while (!atomic_load(&task_started))
        cc_sleep(CC_MSEC);
    atomic_store(&closing, 1);
    if (how == SHUTDOWN)
        cc_executor_shutdown(pool, true, false); /* joins the exiting worker */
    else
        cc_executor_free(pool);
    _exit(4); /* never: the worker's exit() ends the process first */
}

static int main_shuts_down(void *arg)
{
    close_pool_under_exit(SHUTDOWN);
    return 5;
}

static int main_frees(void *arg)
{
    close_pool_under_exit(FREE);
    return 5;
}

static void *shut_down_in_thread(void *arg)
{
    close_pool_under_exit(*(enum closer *)arg);
    return NULL;
}

/* The closer is a non-daemon cc_thread, which the exit hook waits for. */
static int thread_closes(void *arg)
{
    cc_thread *t;
    if (cc_thread_start(&t, shut_down_in_thread, arg, NULL) != 0)
        return 6;
    cc_thread_join(t, CC_FOREVER, NULL);
    return 5;
}

static void task_exits_during_shutdown_wait(void **state)
{
    enum closer shutdown = SHUTDOWN, free_ = FREE;
    /* The exit hooks must neither join the exiting worker nor wait for the
     * shutdown that joins it. */
    int st[4] = {
        child_status_within(main_shuts_down, NULL, EXIT_LIMIT),
        child_status_within(main_frees, NULL, EXIT_LIMIT),
        child_status_within(thread_closes, &shutdown, EXIT_LIMIT),
        child_status_within(thread_closes, &free_, EXIT_LIMIT),
    };
    for (int i = 0; i < 4; i++)
        if (st[i] != 7)
            print_error("case %d: status %d (-1: hung)\n", i, st[i]);
    for (int i = 0; i < 4; i++)
        assert_int_equal(st[i], 7);
}

/* Two non-daemon cc_threads shut the pool down (wait) while its task calls
 * exit(): the first joins the workers and parks on the exiting one for
 * good; the second waits for that join, which never ends either, and the
 * exit hook must not wait for it. */
static cc_executor *shared_pool;

static void *shut_down_shared(void *arg)
{
    cc_executor_shutdown(shared_pool, true, false);
    _exit(4); /* never: the worker's exit() ends the process first */
}

static int two_threads_shut_down(void *arg)
{
    cc_thread_pool_options opts = {.max_workers = 2};
    if (cc_thread_pool_new(&shared_pool, &opts) != 0)
        return 2;
    if (cc_executor_submit(shared_pool, exit_while_closing, NULL, NULL) != 0)
        return 3;
    while (!atomic_load(&task_started))
        cc_sleep(CC_MSEC);
    cc_thread *t[2];
    for (int i = 0; i < 2; i++)
        if (cc_thread_start(&t[i], shut_down_shared, NULL, NULL) != 0)
            return 6;
    atomic_store(&closing, 1); /* both are in the shutdown 100 ms later */
    cc_thread_join(t[0], CC_FOREVER, NULL);
    return 5;
}

static void task_exits_during_two_shutdown_waits(void **state)
{
    int st = child_status_within(two_threads_shut_down, NULL, EXIT_LIMIT);
    if (st != 7)
        print_error("status %d (-1: hung)\n", st);
    assert_int_equal(st, 7);
}

/* A task of an event loop calls exit() while another task waits in
 * cc_to_thread: the hook lets the worker finish its call (whose completion
 * wakes a task of a loop that runs no more), then the process ends. */
static int nap_200ms(void *arg, void **result)
{
    cc_sleep(200 * CC_MSEC);
    return 0;
}

static int wait_in_to_thread(void *arg, void **result)
{
    return cc_to_thread(arg, nap_200ms, NULL, NULL);
}

static int loop_main_exits(void *arg, void **result)
{
    if (cc_spawn(wait_in_to_thread, arg, NULL) != 0)
        _exit(3);
    cc_sleep(50 * CC_MSEC); /* the pool's worker is busy in nap_200ms */
    exit(7);
}

static void *run_loop(void *pool)
{
    cc_loop_run(loop_main_exits, pool, NULL);
    return NULL;
}

/* The loop runs in a thread: LeakSanitizer, at exit, would not see what the
 * main thread's own stack holds while that thread runs a task's stack. */
static int loop_exits_with_busy_executor(void *arg)
{
    cc_executor *pool;
    cc_thread_pool_options opts = {.max_workers = 1};
    if (cc_thread_pool_new(&pool, &opts) != 0)
        return 2;
    cc_thread *t;
    if (cc_thread_start(&t, run_loop, pool, NULL) != 0)
        return 3;
    cc_thread_join(t, CC_FOREVER, NULL);
    return 4;
}

static void loop_task_exits_with_busy_executor(void **state)
{
    assert_int_equal(child_status_within(loop_exits_with_busy_executor, NULL,
                                         EXIT_LIMIT), 7);
}

/* ---- allocation failures ------------------------------------------------------ */

static void note_done(cc_future *f, void *arg) { atomic_fetch_add(&ran, 1); }

#define OK_OR_ENOMEM(r)                          \
    do {                                         \
        int r_ = (r);                            \
        assert_true(r_ >= 0 || r_ == -ENOMEM);   \
    } while (0)

/* Every call of the module once; each may fail with -ENOMEM, never worse. */
static void use_everything(void)
{
    cc_executor *pool;
    cc_thread_pool_options opts = {.max_workers = 1, .thread_name_prefix = "f"};
    int r = cc_thread_pool_new(&pool, &opts);
    OK_OR_ENOMEM(r);
    if (r < 0)
        return;
    cc_future *fs[2] = {NULL, NULL};
    for (intptr_t i = 0; i < 2; i++) {
        OK_OR_ENOMEM(r = cc_executor_submit(pool, square, (void *)i, &fs[i]));
        if (r == 0)
            OK_OR_ENOMEM(cc_future_add_done_callback(fs[i], note_done, NULL));
    }
    if (fs[0] && fs[1]) {
        OK_OR_ENOMEM(cc_futures_wait(fs, 2, CC_FIRST_COMPLETED, CC_FOREVER));
        cc_as_completed *it;
        OK_OR_ENOMEM(r = cc_as_completed_new(&it, fs, 2));
        cc_future *got;
        while (r == 0 && cc_as_completed_next(it, CC_FOREVER, &got) == 0)
            ;
        if (r == 0)
            cc_as_completed_free(it);
    }
    void *args[5] = {0}, *res;
    cc_map_array in = {args, 5, 0};
    cc_map *m;
    OK_OR_ENOMEM(r = cc_executor_map(&m, pool, square, cc_map_array_next, &in,
                                     NULL));
    bool mapped = r == 0;
    while (mapped && (r = cc_map_next(m, CC_FOREVER, &res)) != -ENOENT)
        OK_OR_ENOMEM(r);
    if (mapped)
        cc_map_free(m);
    cc_future_release(fs[0]);
    cc_future_release(fs[1]);
    cc_executor_free(pool);
}

static void allocation_failures_are_reported(void **state)
{
    long start = cc_test_alloc_failures();
    /* Fail the k-th allocation, k = 0, 1, ... until a run needs none. */
    for (int k = 0;; k++) {
        assert_true(k < 1000);
        long before = cc_test_alloc_failures();
        cc_test_alloc_fail_nth(k);
        use_everything();
        if (cc_test_alloc_failures() == before)
            break;
    }
    cc_test_alloc_normal();
    assert_true(cc_test_alloc_failures() - start >= 10); /* each call's allocations */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CC_TEST(submit_gives_results),
        CC_TEST(failing_task_keeps_pool),
        CC_TEST(cancel_true_only_for_unrun),
        CC_TEST(done_callbacks_run_exactly_once),
        CC_TEST(wait_and_as_completed_on_pool),
        CC_TEST(shutdown_wait_runs_everything),
        CC_TEST(shutdown_cancel_futures_wait),
        CC_TEST(shutdown_cancel_futures_nowait),
        CC_TEST(submit_racing_shutdown),
        CC_TEST(cancel_futures_cancels_racing_submits),
        CC_TEST(second_task_wakes_idle_worker_while_first_blocks),
        CC_TEST(map_is_lazy_ordered_and_bounded),
        CC_TEST(map_reports_errors_in_order),
        CC_TEST(map_generator_error_and_early_free),
        CC_TEST(map_submit_error_drops_its_chunk),
        CC_TEST(map_free_cancels_queued_chunks_first),
        CC_TEST(initializer_runs_once_per_worker),
        CC_TEST(failing_initializer_breaks_pool),
        CC_TEST(default_size_is_cpu_count),
        CC_TEST(workers_are_named_cc_threads),
        CC_TEST(open_pool_at_exit_finishes_queue),
        CC_TEST(task_exits_during_shutdown_wait),
        CC_TEST(task_exits_during_two_shutdown_waits),
        CC_TEST(loop_task_exits_with_busy_executor),
        CC_TEST(allocation_failures_are_reported),
    };
    return CC_RUN_TESTS(tests);
}
