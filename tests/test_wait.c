/*
 * test_wait.c: the waiting mechanism (src/wait.h): park/wake, deadlines, the
 * internal mutex; cc_sleep_until with a deadline in the past.
 */
#include "testutil.h"

#include "loop_helpers.h"
#include "wait.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

static void park_times_out_at_deadline(void **state)
{
    cc__waiter w;
    cc__waiter_init(&w);
    int64_t t0 = cc_now();
    assert_int_equal(cc__waiter_park(&w, cc_deadline_in(20 * CC_MSEC)), -ETIMEDOUT);
    assert_true(cc_now() - t0 >= 20 * CC_MSEC); /* never early */
    assert_int_equal(cc__waiter_park(&w, CC_NOWAIT), -ETIMEDOUT);
}

struct pingpong {
    cc__mutex m;
    cc__waitq q;
    long rounds;
    long turn; /* whose turn: even = A, odd = B */
};

static void take_turns(struct pingpong *pp, long parity)
{
    for (long i = parity; i < pp->rounds; i += 2) {
        cc__mutex_lock(&pp->m);
        while (pp->turn != i) {
            cc__waiter w;
            cc__waiter_init(&w);
            assert_int_equal(cc__wait_on(&pp->q, &pp->m, &w, CC_FOREVER), 0);
        }
        pp->turn++;
        cc__wake_all(&pp->q, 0);
        cc__mutex_unlock(&pp->m);
    }
}

static void *player_b(void *arg)
{
    take_turns(arg, 1);
    return NULL;
}

/* Two threads hand a turn back and forth: a lost wakeup would hang. */
static void wait_on_pingpong_loses_no_wakeup(void **state)
{
    struct pingpong pp = {.rounds = cc_test_n(200000)};
    pthread_t b;
    assert_int_equal(pthread_create(&b, NULL, player_b, &pp), 0);
    take_turns(&pp, 0);
    pthread_join(b, NULL);
    assert_int_equal(pp.turn, pp.rounds);
    assert_true(cc__waitq_empty(&pp.q));
}

static void wait_on_times_out_and_unlinks(void **state)
{
    cc__mutex m = CC__MUTEX_INIT;
    cc__waitq q = {0};
    cc__waiter w;
    cc__waiter_init(&w);
    cc__mutex_lock(&m);
    assert_int_equal(cc__wait_on(&q, &m, &w, cc_deadline_in(5 * CC_MSEC)), -ETIMEDOUT);
    assert_false(w.linked);
    assert_true(cc__waitq_empty(&q));
    cc__mutex_unlock(&m);
}

struct counter {
    cc__mutex m;
    long value;
    long per_thread;
};

static void *add_many(void *arg)
{
    struct counter *c = arg;
    for (long i = 0; i < c->per_thread; i++) {
        cc__mutex_lock(&c->m);
        c->value++;
        cc__mutex_unlock(&c->m);
    }
    return NULL;
}

static void mutex_excludes(void **state)
{
    struct counter c = {.per_thread = cc_test_n(500000)};
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, add_many, &c), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(c.value, 4 * c.per_thread);
}

static void deadline_in_saturates(void **state)
{
    assert_int_equal(cc_deadline_in(0), CC_NOWAIT);
    assert_int_equal(cc_deadline_in(-5), CC_NOWAIT);
    assert_true(cc_deadline_in(INT64_MAX - 1) == CC_FOREVER);
    int64_t d = cc_deadline_in(CC_SEC);
    assert_true(d > cc_now() && d <= cc_now() + CC_SEC);
}

/* A deadline in the past never blocks, however far back: a negative one made
 * clock_nanosleep fail with EINVAL, and the thread retried it forever. */
static void sleep_until_past_returns(void **state)
{
    int64_t t0 = cc_now();
    assert_int_equal(cc_sleep_until(CC_NOWAIT), 0);
    assert_int_equal(cc_sleep_until(-1), 0);
    assert_int_equal(cc_sleep_until(-5 * CC_SEC - 1), 0);
    assert_int_equal(cc_sleep_until(INT64_MIN), 0);
    assert_int_equal(cc_sleep(-CC_SEC), 0);
    assert_true(cc_now() - t0 < 60 * CC_SEC); /* returned at all */
}

static void strerror_names_codes(void **state)
{
    assert_string_equal(cc_strerror(-ETIMEDOUT), cc_strerror(ETIMEDOUT));
    assert_non_null(strstr(cc_strerror(-ETIMEDOUT), "timed out"));
    assert_string_equal(cc_strerror(0), "Success");
    assert_non_null(cc_strerror(-99999));
}

/* ---- a task's wait that times out as a late waker chooses it -------------- */

/*
 * A waker may unlink a waiter under the mutex and wake it after dropping it
 * (wait.h; the queue's ring does). A task whose deadline passes in between
 * finds itself unlinked and must stay parked until the wake: without the
 * mutex, or every other task of its loop that takes the mutex blocks the loop
 * thread, and with it the wakeup that would end the wait.
 */
struct late_wake {
    cc__mutex m;          /* the owner's mutex */
    cc__waitq q;          /* one waiter, the task */
    atomic_bool done;     /* the task's wait returned */
    int wait_r;           /* what it returned */
    int mutex_free;       /* the other task found m free */
};

static void *late_waker(void *arg)
{
    struct late_wake *lw = arg;
    while (!lw->done) {
        cc__mutex_lock(&lw->m);
        cc__waiter *w = cc__waitq_pop(&lw->q);
        cc__mutex_unlock(&lw->m);
        if (w) {
            cc_sleep(150 * CC_MSEC); /* preempted, say */
            cc__waiter_wake(w);
            break;
        }
        cc_sleep(100 * CC_USEC);
    }
    return NULL;
}

static int timed_waiter(void *arg, void **result)
{
    struct late_wake *lw = arg;
    cc__waiter w;
    cc__waiter_init(&w);
    cc__mutex_lock(&lw->m);
    lw->wait_r = cc__wait_on(&lw->q, &lw->m, &w, cc_deadline_in(20 * CC_MSEC));
    cc__mutex_unlock(&lw->m);
    lw->done = true;
    return 0;
}

static int mutex_user(void *arg, void **result)
{
    struct late_wake *lw = arg;
    cc_sleep(60 * CC_MSEC); /* the waiter timed out meanwhile, most likely */
    /* The waiter runs on our thread: whenever we run, it is parked, and a
     * parked waiter never holds the mutex. */
    lw->mutex_free = cc__mutex_trylock(&lw->m);
    if (lw->mutex_free)
        cc__mutex_unlock(&lw->m);
    return 0;
}

static int late_wake_main(void *arg, void **result)
{
    cc_thread *t = start(late_waker, arg);
    cc_future *f[2];
    cc_spawn(timed_waiter, arg, &f[0]);
    cc_spawn(mutex_user, arg, &f[1]);
    cc_futures_wait(f, 2, CC_ALL_COMPLETED, CC_FOREVER);
    cc_future_release(f[0]);
    cc_future_release(f[1]);
    join(t);
    return 0;
}

static void task_timing_out_as_woken_late_parks_without_mutex(void **state)
{
    struct late_wake lw = {.m = CC__MUTEX_INIT};
    assert_int_equal(cc_loop_run(late_wake_main, &lw, NULL), 0);
    assert_true(lw.wait_r == 0 || lw.wait_r == -ETIMEDOUT);
    assert_true(lw.mutex_free);
    assert_true(cc__waitq_empty(&lw.q));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CC_TEST(park_times_out_at_deadline),
        CC_TEST(wait_on_pingpong_loses_no_wakeup),
        CC_TEST(wait_on_times_out_and_unlinks),
        CC_TEST(mutex_excludes),
        CC_TEST(deadline_in_saturates),
        CC_TEST(sleep_until_past_returns),
        CC_TEST(strerror_names_codes),
        CC_TEST(task_timing_out_as_woken_late_parks_without_mutex),
    };
    return CC_RUN_TESTS(tests);
}
