/*
 * test_future.c: futures made by hand (include/concur/future.h): states,
 * outcomes, done callbacks, waiting on many, as-completed.
 */
#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static cc_future *new_future(void)
{
    cc_future *f;
    assert_int_equal(cc_future_new(&f), 0);
    return f;
}

static void new_futures(cc_future **fs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fs[i] = new_future();
}

static void release_futures(cc_future **fs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cc_future_release(fs[i]);
}

/* ---- states and outcomes --------------------------------------------------- */

static void states_pending_running_finished(void **state)
{
    cc_future *f = new_future();
    assert_false(cc_future_done(f));
    assert_false(cc_future_running(f));
    assert_int_equal(cc_future_error(f), -EAGAIN);
    assert_true(cc_future_set_running_or_notify_cancel(f));
    assert_true(cc_future_running(f));
    assert_false(cc_future_cancel(f)); /* running: too late */
    assert_int_equal(cc_future_set_result(f, (void *)42), 0);
    assert_true(cc_future_done(f));
    assert_false(cc_future_running(f));
    assert_false(cc_future_cancelled(f));
    void *r;
    assert_int_equal(cc_future_result(f, CC_NOWAIT, &r), 0);
    assert_ptr_equal(r, (void *)42);
    assert_int_equal(cc_future_error(f), 0);
    assert_null(cc_future_error_message(f));
    /* Final: no second outcome, no cancel. */
    assert_int_equal(cc_future_set_result(f, (void *)7), -EINVAL);
    assert_int_equal(cc_future_set_error(f, -EIO, "late"), -EINVAL);
    assert_false(cc_future_cancel(f));
    assert_false(cc_future_set_running_or_notify_cancel(f));
    assert_int_equal(cc_future_result(f, CC_NOWAIT, &r), 0);
    assert_ptr_equal(r, (void *)42);
    cc_future_release(f);
}

static void cancel_only_pending(void **state)
{
    cc_future *f = new_future();
    assert_true(cc_future_cancel(f));
    assert_true(cc_future_cancel(f)); /* already cancelled: still true */
    assert_true(cc_future_cancelled(f));
    assert_true(cc_future_done(f));
    assert_false(cc_future_set_running_or_notify_cancel(f));
    assert_int_equal(cc_future_set_result(f, NULL), -EINVAL);
    void *r = (void *)1;
    assert_int_equal(cc_future_result(f, CC_FOREVER, &r), -ECANCELED);
    assert_null(r);
    assert_int_equal(cc_future_error(f), -ECANCELED);
    cc_future_release(f);
}

static void error_keeps_code_and_message(void **state)
{
    cc_future *f = new_future();
    assert_int_equal(cc_future_set_error(f, 5, "positive"), -EINVAL);
    assert_false(cc_future_done(f));
    assert_int_equal(cc_future_set_error(f, -EIO, "disk on fire"), 0);
    assert_int_equal(cc_future_result(f, CC_NOWAIT, NULL), -EIO);
    assert_int_equal(cc_future_error(f), -EIO);
    assert_string_equal(cc_future_error_message(f), "disk on fire");
    cc_future_release(f);

    f = new_future();
    assert_int_equal(cc_future_set_error(f, -ENOSPC, NULL), 0);
    assert_null(cc_future_error_message(f));
    cc_future_release(f);
}

static void retain_keeps_alive(void **state)
{
    cc_future *f = new_future();
    assert_ptr_equal(cc_future_retain(f), f);
    cc_future_release(f);
    assert_int_equal(cc_future_set_result(f, (void *)3), 0); /* still alive */
    cc_future_release(f);
    cc_future_release(NULL);
}

static void wait_times_out_never_early(void **state)
{
    cc_future *f = new_future();
    int64_t t0 = cc_now();
    assert_int_equal(cc_future_wait(f, cc_deadline_in(20 * CC_MSEC)), -ETIMEDOUT);
    assert_true(cc_now() - t0 >= 20 * CC_MSEC);
    assert_int_equal(cc_future_result(f, CC_NOWAIT, NULL), -ETIMEDOUT);
    assert_int_equal(cc_future_wait(f, CC_NOWAIT), -ETIMEDOUT);
    assert_false(cc_future_done(f));
    cc_future_release(f);
}

struct delayed {
    cc_future *f;  /* what to complete */
    int64_t delay; /* after this many ns */
    int err;       /* with this error (0: a result) */
    bool cancel;   /* or cancel it */
};

static void *complete_later(void *arg)
{
    struct delayed *d = arg;
    cc_sleep(d->delay);
    if (d->cancel)
        cc_future_cancel(d->f);
    else if (d->err)
        cc_future_set_error(d->f, d->err, "later");
    else
        cc_future_set_result(d->f, (void *)99);
    return NULL;
}

static void wait_wakes_when_another_thread_completes(void **state)
{
    cc_future *f = new_future();
    struct delayed d = {f, 10 * CC_MSEC, 0, false};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, complete_later, &d), 0);
    void *r;
    assert_int_equal(cc_future_result(f, CC_FOREVER, &r), 0);
    assert_ptr_equal(r, (void *)99);
    pthread_join(t, NULL);
    cc_future_release(f);
}

/* ---- done callbacks ----------------------------------------------------------- */

struct record {
    int order[8];   /* the tags, in the order the callbacks ran */
    int n;          /* how many ran */
    pthread_t ran_in; /* the thread that ran the last one */
};

static struct record rec;

static void note(cc_future *f, void *arg)
{
    assert_true(cc_future_done(f));
    rec.order[rec.n++] = (int)(intptr_t)arg;
    rec.ran_in = pthread_self();
}

static void callbacks_run_once_in_order(void **state)
{
    memset(&rec, 0, sizeof rec);
    cc_future *f = new_future();
    for (int i = 1; i <= 3; i++)
        assert_int_equal(cc_future_add_done_callback(f, note, (void *)(intptr_t)i), 0);
    assert_int_equal(rec.n, 0);
    struct delayed d = {f, 5 * CC_MSEC, 0, false};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, complete_later, &d), 0);
    pthread_join(t, NULL);
    assert_int_equal(rec.n, 3);
    assert_true(pthread_equal(rec.ran_in, t)); /* the completing thread */
    for (int i = 0; i < 3; i++)
        assert_int_equal(rec.order[i], i + 1);
    /* Added after completion: runs at once, here. */
    assert_int_equal(cc_future_add_done_callback(f, note, (void *)4), 0);
    assert_int_equal(rec.n, 4);
    assert_int_equal(rec.order[3], 4);
    assert_true(pthread_equal(rec.ran_in, pthread_self()));
    cc_future_release(f);
}

static void callbacks_run_on_cancel(void **state)
{
    memset(&rec, 0, sizeof rec);
    cc_future *f = new_future();
    assert_int_equal(cc_future_add_done_callback(f, note, (void *)7), 0);
    assert_true(cc_future_cancel(f));
    assert_int_equal(rec.n, 1);
    assert_true(cc_future_cancel(f));
    assert_int_equal(rec.n, 1); /* once */
    cc_future_release(f);
}

/* ---- wait on many -------------------------------------------------------------- */

static void wait_first_completed(void **state)
{
    cc_future *fs[3];
    new_futures(fs, 3);
    int64_t t0 = cc_now();
    assert_int_equal(cc_futures_wait(fs, 3, CC_FIRST_COMPLETED,
                                     cc_deadline_in(10 * CC_MSEC)), 0);
    assert_true(cc_now() - t0 >= 10 * CC_MSEC);
    struct delayed d = {fs[1], 10 * CC_MSEC, 0, false};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, complete_later, &d), 0);
    assert_int_equal(cc_futures_wait(fs, 3, CC_FIRST_COMPLETED, CC_FOREVER), 1);
    assert_true(cc_future_done(fs[1]));
    assert_false(cc_future_done(fs[0]) || cc_future_done(fs[2]));
    pthread_join(t, NULL);
    assert_int_equal(cc_futures_wait(fs, 3, 99, CC_FOREVER), -EINVAL);
    assert_int_equal(cc_futures_wait(fs, 0, CC_ALL_COMPLETED, CC_FOREVER), 0);
    release_futures(fs, 3);
}

/* n == 0 returns 0 at once, whatever return_when (as Python's wait([])). */
static void wait_none_returns_at_once(void **state)
{
    static const cc_return_when whens[] = {CC_FIRST_COMPLETED,
                                           CC_FIRST_EXCEPTION, CC_ALL_COMPLETED};
    for (size_t i = 0; i < sizeof whens / sizeof whens[0]; i++) {
        int64_t t0 = cc_now();
        assert_int_equal(cc_futures_wait(NULL, 0, whens[i],
                                         cc_deadline_in(CC_SEC)), 0);
        assert_true(cc_now() - t0 < CC_SEC / 2);
    }
}

static void wait_first_exception(void **state)
{
    cc_future *fs[3];
    new_futures(fs, 3);
    cc_future_set_result(fs[0], NULL);
    assert_true(cc_future_cancel(fs[2])); /* cancelled is not an exception */
    int64_t t0 = cc_now();
    assert_int_equal(cc_futures_wait(fs, 3, CC_FIRST_EXCEPTION,
                                     cc_deadline_in(10 * CC_MSEC)), 2);
    assert_true(cc_now() - t0 >= 10 * CC_MSEC);
    struct delayed d = {fs[1], 5 * CC_MSEC, -EIO, false};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, complete_later, &d), 0);
    assert_int_equal(cc_futures_wait(fs, 3, CC_FIRST_EXCEPTION, CC_FOREVER), 3);
    assert_int_equal(cc_future_error(fs[1]), -EIO);
    pthread_join(t, NULL);
    release_futures(fs, 3);

    /* No exception at all: returns when all are done. */
    new_futures(fs, 2);
    cc_future_set_result(fs[0], NULL);
    struct delayed d2 = {fs[1], 5 * CC_MSEC, 0, false};
    assert_int_equal(pthread_create(&t, NULL, complete_later, &d2), 0);
    assert_int_equal(cc_futures_wait(fs, 2, CC_FIRST_EXCEPTION, CC_FOREVER), 2);
    pthread_join(t, NULL);
    release_futures(fs, 2);
}

static void wait_all_completed(void **state)
{
    enum { N = 8 };
    cc_future *fs[N];
    new_futures(fs, N);
    for (int i = 0; i < N / 2; i++)
        cc_future_set_result(fs[i], NULL);
    int64_t t0 = cc_now();
    assert_int_equal(cc_futures_wait(fs, N, CC_ALL_COMPLETED,
                                     cc_deadline_in(10 * CC_MSEC)), N / 2);
    assert_true(cc_now() - t0 >= 10 * CC_MSEC);
    assert_int_equal(cc_futures_wait(fs, N, CC_ALL_COMPLETED, CC_NOWAIT), N / 2);
    struct delayed d[N / 2];
    pthread_t t[N / 2];
    for (int i = 0; i < N / 2; i++) {
        d[i] = (struct delayed){fs[N / 2 + i], (i + 1) * CC_MSEC, 0, i == 1};
        assert_int_equal(pthread_create(&t[i], NULL, complete_later, &d[i]), 0);
    }
    assert_int_equal(cc_futures_wait(fs, N, CC_ALL_COMPLETED, CC_FOREVER), N);
    for (int i = 0; i < N / 2; i++)
        pthread_join(t[i], NULL);
    assert_true(cc_future_cancelled(fs[N / 2 + 1]));
    release_futures(fs, N);
}

/* ---- as completed --------------------------------------------------------------- */

static void as_completed_yields_each_once_in_order(void **state)
{
    enum { N = 5 };
    static const int order[N] = {3, 1, 4, 0, 2};
    cc_future *fs[N];
    new_futures(fs, N);
    cc_future_set_result(fs[order[0]], NULL); /* done before: yielded first */
    cc_as_completed *it;
    assert_int_equal(cc_as_completed_new(&it, fs, N), 0);
    release_futures(fs, N); /* the iterator holds its own references */
    cc_future *got;
    assert_int_equal(cc_as_completed_next(it, CC_NOWAIT, &got), 0);
    assert_ptr_equal(got, fs[order[0]]);
    int64_t t0 = cc_now();
    assert_int_equal(cc_as_completed_next(it, cc_deadline_in(5 * CC_MSEC), &got),
                     -ETIMEDOUT);
    assert_true(cc_now() - t0 >= 5 * CC_MSEC);
    for (int k = 1; k < N; k++) {
        struct delayed d = {fs[order[k]], CC_MSEC, k == 2 ? -EIO : 0, k == 3};
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, complete_later, &d), 0);
        assert_int_equal(cc_as_completed_next(it, CC_FOREVER, &got), 0);
        assert_ptr_equal(got, fs[order[k]]);
        assert_true(cc_future_done(got));
        pthread_join(t, NULL);
    }
    assert_int_equal(cc_as_completed_next(it, CC_FOREVER, &got), -ENOENT);
    assert_int_equal(cc_as_completed_next(it, CC_FOREVER, &got), -ENOENT);
    cc_as_completed_free(it);
}

/* Many completers race the iterator: every future comes out exactly once. */
struct racer {
    cc_future **fs; /* the futures */
    size_t from;    /* first index this thread completes */
    size_t step;    /* then every step-th */
    size_t n;       /* of n */
};

static void *complete_some(void *arg)
{
    struct racer *r = arg;
    for (size_t i = r->from; i < r->n; i += r->step)
        cc_future_set_result(r->fs[i], (void *)(uintptr_t)i);
    return NULL;
}

static void as_completed_under_races(void **state)
{
    size_t n = (size_t)cc_test_n(20000);
    cc_future **fs = calloc(n, sizeof *fs);
    char *seen = calloc(n, 1);
    new_futures(fs, n);
    cc_as_completed *it;
    assert_int_equal(cc_as_completed_new(&it, fs, n), 0);
    struct racer r[3];
    pthread_t t[3];
    for (int i = 0; i < 3; i++) {
        r[i] = (struct racer){fs, (size_t)i, 3, n};
        assert_int_equal(pthread_create(&t[i], NULL, complete_some, &r[i]), 0);
    }
    cc_future *got;
    size_t count = 0;
    while (cc_as_completed_next(it, CC_FOREVER, &got) == 0) {
        void *res;
        assert_int_equal(cc_future_result(got, CC_NOWAIT, &res), 0);
        assert_int_equal(seen[(uintptr_t)res]++, 0);
        count++;
    }
    assert_int_equal(count, n);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    cc_as_completed_free(it);
    release_futures(fs, n);
    free(fs);
    free(seen);
}

/* Freeing the iterator while futures complete must not race. */
static void as_completed_free_early(void **state)
{
    enum { N = 64 };
    cc_future *fs[N];
    new_futures(fs, N);
    cc_as_completed *it;
    assert_int_equal(cc_as_completed_new(&it, fs, N), 0);
    struct racer r = {fs, 0, 1, N};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, complete_some, &r), 0);
    cc_as_completed_free(it);
    pthread_join(t, NULL);
    release_futures(fs, N);
}

static void count_call(cc_future *f, void *arg)
{
    (void)f;
    ((unsigned char *)arg)[0]++;
}

/* Completes fs[i] once the test thread has published i in `go`. */
struct lockstep {
    cc_future **fs;      /* the futures */
    size_t n;            /* how many */
    _Atomic size_t go;   /* the one to complete now, + 1 (0: none yet) */
};

static void *complete_in_step(void *arg)
{
    struct lockstep *ls = arg;
    for (size_t i = 0; i < ls->n; i++) {
        while (atomic_load(&ls->go) != i + 1)
            ;
        cc_future_set_result(ls->fs[i], (void *)(uintptr_t)i);
    }
    return NULL;
}

/* Listeners that come while another thread completes the future, aimed at
 * the window between the completer's claim (the future reads as running)
 * and its done store, which skips a second RMW when it saw no listener:
 * every callback runs exactly once and no wait hangs. */
static void listeners_race_completion(void **state)
{
    size_t n = (size_t)cc_test_n(20000);
    struct lockstep ls = {calloc(n, sizeof(cc_future *)), n, 0};
    unsigned char *calls = calloc(n, 1);
    new_futures(ls.fs, n);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, complete_in_step, &ls), 0);
    for (size_t i = 0; i < n; i++) {
        cc_future *f = ls.fs[i];
        atomic_store(&ls.go, i + 1);
        while (!cc_future_running(f) && !cc_future_done(f))
            ;
        assert_int_equal(cc_future_add_done_callback(f, count_call,
                                                     &calls[i]), 0);
        void *res;
        assert_int_equal(cc_future_result(f, CC_FOREVER, &res), 0);
        assert_ptr_equal(res, (void *)(uintptr_t)i);
    }
    pthread_join(t, NULL);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(calls[i], 1);
    release_futures(ls.fs, n);
    free(ls.fs);
    free(calls);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CC_TEST(states_pending_running_finished),
        CC_TEST(cancel_only_pending),
        CC_TEST(error_keeps_code_and_message),
        CC_TEST(retain_keeps_alive),
        CC_TEST(wait_times_out_never_early),
        CC_TEST(wait_wakes_when_another_thread_completes),
        CC_TEST(callbacks_run_once_in_order),
        CC_TEST(callbacks_run_on_cancel),
        CC_TEST(wait_first_completed),
        CC_TEST(wait_none_returns_at_once),
        CC_TEST(wait_first_exception),
        CC_TEST(wait_all_completed),
        CC_TEST(as_completed_yields_each_once_in_order),
        CC_TEST(as_completed_under_races),
        CC_TEST(as_completed_free_early),
        CC_TEST(listeners_race_completion),
    };
    return CC_RUN_TESTS(tests);
}
