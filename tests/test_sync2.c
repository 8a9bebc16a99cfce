/*
 * test_sync2.c: more of include/concur/sync.h (test_sync.c is full): races
 * between wakeups and timeouts or cancellation, threads and tasks on the
 * same objects, and rounds of a barrier.
 */
#include "testutil.h"

#include "loop_helpers.h"
#include "sync_helpers.h"

#include <stdatomic.h>
#include <stdlib.h>

/* ---- barrier ------------------------------------------------------------------ */

static void *wait_barrier(void *arg)
{
    return (void *)(intptr_t)cc_barrier_wait(arg, cc_deadline_in(60 * CC_SEC));
}

struct gated_action {
    cc_event running; /* set once the action runs */
    cc_event go;      /* the action returns once this is set */
};

static int gated_round(void *arg)
{
    struct gated_action *g = arg;
    cc_event_set(&g->running);
    return cc_event_wait(&g->go, cc_deadline_in(60 * CC_SEC));
}

/*
 * A thread that arrives while the action runs belongs to the next round; its
 * timeout breaks the barrier for that round, not for the round whose parties
 * have all arrived (Python's wait holds the lock through the action, so the
 * late thread can only time out after the round is released).
 */
static void barrier_early_arrival_timeout_spares_full_round(void **state)
{
    struct gated_action g;
    cc_event_init(&g.running);
    cc_event_init(&g.go);
    cc_barrier b;
    assert_int_equal(cc_barrier_init(&b, 2, gated_round, &g), 0);
    cc_thread *t[2] = {start(wait_barrier, &b), start(wait_barrier, &b)};
    assert_int_equal(cc_event_wait(&g.running, cc_deadline_in(60 * CC_SEC)), 0);
    cc_deadline d = cc_deadline_in(5 * CC_MSEC);
    assert_int_equal(cc_barrier_wait(&b, d), -ETIMEDOUT);
    assert_true(cc_now() >= d);
    cc_event_set(&g.go);
    intptr_t r0 = (intptr_t)join(t[0]), r1 = (intptr_t)join(t[1]);
    assert_true(r0 >= 0 && r1 >= 0);
    assert_int_equal(r0 + r1, 0 + 1);
    assert_true(cc_barrier_broken(&b)); /* for the next round */
    assert_int_equal(cc_barrier_wait(&b, CC_FOREVER), -EPIPE);
    cc_barrier_reset(&b);
    assert_false(cc_barrier_broken(&b));
    cc_barrier_destroy(&b);
    cc_event_destroy(&g.go);
    cc_event_destroy(&g.running);
}

/* ---- condition: a notify racing with timeouts and cancellation ------------- */

/*
 * Waiters that give up (thread timeouts, cancelled tasks) while a thread
 * notifies one at a time: every waiter a notify counted must return 0 from its
 * wait (the wakeup is consumed, never dropped), whatever happened to it at the
 * same moment.
 */
struct notify_run {
    cc_lock lock;            /* the condition's lock */
    cc_cond cond;            /* notified one at a time */
    atomic_long notified;    /* what notify returned, summed */
    atomic_long woken;       /* waits that returned 0 */
    atomic_long gave_up;     /* waits that returned -ETIMEDOUT/-ECANCELED */
    atomic_long odd;         /* anything else */
    atomic_bool stop;        /* the notifier is done */
    long notifies;           /* notify(1) calls to make */
};

static void count_wait(struct notify_run *r, int got)
{
    if (got == 0)
        r->woken++;
    else if (got == -ETIMEDOUT || got == -ECANCELED)
        r->gave_up++;
    else
        r->odd++;
    if (!cc_lock_held(&r->lock)) /* the lock is always held again */
        r->odd++;
}

static void *timed_cond_waiter(void *arg)
{
    struct notify_run *r = arg;
    uint32_t seed = 2463534242u ^ (uint32_t)(uintptr_t)&seed;
    while (!r->stop) {
        cc_lock_acquire(&r->lock, CC_FOREVER);
        count_wait(r, cc_cond_wait(&r->cond,
                                   cc_deadline_in(rnd(&seed) % 50 * CC_USEC)));
        cc_lock_release(&r->lock);
    }
    return NULL;
}

static void *notifier(void *arg)
{
    struct notify_run *r = arg;
    uint32_t seed = 88172645u;
    for (long i = 0; i < r->notifies; i++) {
        if (rnd(&seed) % 4 == 0)
            cc_sleep(5 * CC_USEC);
        r->notified += cc_cond_notify(&r->cond, 1);
    }
    r->stop = true;
    return NULL;
}

static int cancelled_cond_waiter(void *arg, void **result)
{
    struct notify_run *r = arg;
    if (cc_lock_acquire(&r->lock, CC_FOREVER) != 0)
        return 0; /* cancelled before its wait */
    count_wait(r, cc_cond_wait(&r->cond, cc_deadline_in(30 * CC_SEC)));
    cc_lock_release(&r->lock);
    return 0;
}

static int notify_main(void *arg, void **result)
{
    struct notify_run *r = arg;
    uint32_t seed = 123456789u;
    cc_thread *t[3] = {start(notifier, r), start(timed_cond_waiter, r),
                       start(timed_cond_waiter, r)};
    while (!r->stop) {
        cc_future *f;
        cc_spawn(cancelled_cond_waiter, r, &f);
        for (uint32_t y = rnd(&seed) % 3; y > 0; y--)
            cc_yield();
        cc_task_cancel(f);
        cc_future_wait(f, CC_FOREVER);
        cc_future_release(f);
    }
    for (int i = 0; i < 3; i++)
        join(t[i]);
    return 0;
}

static void cond_notify_one_survives_timeouts_and_cancels(void **state)
{
    struct notify_run r = {.notifies = cc_test_n(20000)};
    cc_lock_init(&r.lock);
    cc_cond_init(&r.cond, &r.lock);
    assert_int_equal(cc_loop_run(notify_main, &r, NULL), 0);
    print_message("notified %ld, woken %ld, gave up %ld\n", (long)r.notified,
                  (long)r.woken, (long)r.gave_up);
    assert_int_equal(r.odd, 0);
    assert_true(r.woken >= r.notified); /* none lost */
    assert_true(r.gave_up > 0);
    cc_cond_destroy(&r.cond);
    cc_lock_destroy(&r.lock);
}

/* ---- semaphore: units racing with timeouts ------------------------------------ */

struct unit_run {
    cc_semaphore sem;   /* released one unit at a time */
    long units;         /* how many */
    atomic_long taken;  /* acquires that returned 0 */
    atomic_bool stop;   /* the releaser is done */
};

static void *unit_releaser(void *arg)
{
    struct unit_run *r = arg;
    uint32_t seed = 362436069u;
    for (long i = 0; i < r->units; i++) {
        if (rnd(&seed) % 4 == 0)
            cc_sleep(5 * CC_USEC);
        cc_semaphore_release(&r->sem, 1);
    }
    r->stop = true;
    return NULL;
}

static void *timed_acquirer(void *arg)
{
    struct unit_run *r = arg;
    uint32_t seed = 521288629u ^ (uint32_t)(uintptr_t)&seed;
    while (!r->stop)
        if (cc_semaphore_acquire(&r->sem,
                                 cc_deadline_in(rnd(&seed) % 30 * CC_USEC)) == 0)
            r->taken++;
    return NULL;
}

static void semaphore_units_survive_timeouts(void **state)
{
    struct unit_run r = {.units = cc_test_n(50000)};
    cc_semaphore_init(&r.sem, 0);
    cc_thread *t[4] = {start(unit_releaser, &r), start(timed_acquirer, &r),
                       start(timed_acquirer, &r), start(timed_acquirer, &r)};
    for (int i = 0; i < 4; i++)
        join(t[i]);
    long left = 0;
    while (cc_semaphore_acquire(&r.sem, CC_NOWAIT) == 0)
        left++;
    assert_int_equal(r.taken + left, r.units);
    cc_semaphore_destroy(&r.sem);
}

/* ---- lock and rlock: tasks of two loops and threads, with timeouts -------- */

/*
 * Threads and the tasks of two loops take one lock (or rlock, twice over)
 * with short deadlines, tasks yielding inside: nobody may ever be inside
 * with another, whoever released last and whoever gave up meanwhile.
 */
struct excl_run {
    cc_lock lock;          /* the lock under test, or */
    cc_rlock rlock;        /* this one */
    bool recursive;        /* use rlock */
    long per;              /* attempts per thread or task */
    atomic_int inside;     /* parties inside now */
    atomic_long entered;   /* attempts that got in */
    atomic_long odd;       /* two inside, or a failed release/recursion */
};

static int excl_acquire(struct excl_run *r, cc_deadline d)
{
    if (!r->recursive)
        return cc_lock_acquire(&r->lock, d);
    int got = cc_rlock_acquire(&r->rlock, d);
    if (got == 0 && cc_rlock_acquire(&r->rlock, CC_NOWAIT) != 0)
        r->odd++; /* the holder takes it again at once */
    return got;
}

static void excl_release(struct excl_run *r)
{
    if (!r->recursive) {
        cc_lock_release(&r->lock);
        return;
    }
    if (cc_rlock_release(&r->rlock) != 0 || !cc_rlock_held(&r->rlock) ||
        cc_rlock_release(&r->rlock) != 0 || cc_rlock_held(&r->rlock))
        r->odd++;
}

static void excl_attempts(struct excl_run *r, bool task)
{
    uint32_t seed = 1597334677u ^ (uint32_t)(uintptr_t)&seed;
    for (long i = 0; i < r->per; i++) {
        if (excl_acquire(r, cc_deadline_in(rnd(&seed) % 20 * CC_USEC)) != 0)
            continue;
        if (r->inside++ != 0)
            r->odd++;
        r->entered++;
        if (task && rnd(&seed) % 2)
            cc_yield(); /* the loop's other tasks run, and wait */
        r->inside--;
        excl_release(r);
    }
}

static void *excl_thread(void *arg)
{
    excl_attempts(arg, false);
    return NULL;
}

static int excl_task(void *arg, void **result)
{
    excl_attempts(arg, true);
    return 0;
}

static int excl_loop_main(void *arg, void **result)
{
    for (int i = 0; i < 3; i++)
        cc_spawn(excl_task, arg, NULL);
    return 0;
}

static void *excl_loop(void *arg)
{
    return (void *)(intptr_t)cc_loop_run(excl_loop_main, arg, NULL);
}

static void run_exclusion(bool recursive)
{
    struct excl_run r = {.recursive = recursive, .per = cc_test_n(20000)};
    cc_lock_init(&r.lock);
    cc_rlock_init(&r.rlock);
    cc_thread *t[4] = {start(excl_loop, &r), start(excl_loop, &r),
                       start(excl_thread, &r), start(excl_thread, &r)};
    for (int i = 0; i < 4; i++)
        assert_int_equal((intptr_t)join(t[i]), 0);
    assert_int_equal(r.odd, 0);
    assert_true(r.entered > 0);
    assert_false(cc_lock_locked(&r.lock));
    cc_rlock_destroy(&r.rlock);
    cc_lock_destroy(&r.lock);
}

static void lock_excludes_tasks_and_threads_with_timeouts(void **state)
{
    run_exclusion(false);
}

static void rlock_excludes_tasks_and_threads_with_timeouts(void **state)
{
    run_exclusion(true);
}

/* ---- destroyed as soon as a wait returns ---------------------------------- */

/*
 * pthread_barrier_destroy may follow the caller's own wait at once (POSIX
 * only forbids it while threads are blocked; glibc waits out the ones still
 * leaving), and so may cc_barrier_destroy: the barrier lives in the frame of
 * its last user here, freed as soon as that user's wait returns, while the
 * threads the round released may still be leaving cc_barrier_wait. ASan
 * and TSan see any access after the free.
 */
enum { BARRIER_PARTIES = 4 };

static void barrier_destroyed_as_soon_as_wait_returns(void **state)
{
    long rounds = cc_test_n(300);
    for (long i = 0; i < rounds; i++) {
        cc_barrier *b = malloc(sizeof *b);
        assert_non_null(b);
        assert_int_equal(cc_barrier_init(b, BARRIER_PARTIES, NULL, NULL), 0);
        cc_thread *t[BARRIER_PARTIES - 1];
        for (int j = 0; j < BARRIER_PARTIES - 1; j++)
            t[j] = start(wait_barrier, b);
        int mine = cc_barrier_wait(b, cc_deadline_in(60 * CC_SEC));
        cc_barrier_destroy(b);
        free(b);
        intptr_t sum = mine;
        for (int j = 0; j < BARRIER_PARTIES - 1; j++)
            sum += (intptr_t)join(t[j]);
        assert_int_equal(sum, 0 + 1 + 2 + 3);
    }
}

/*
 * POSIX's pthread_cond_destroy example: a list element's condition is
 * destroyed, and the element freed, right after notify_all wakes its
 * waiters, who have yet to take the list's lock again (they then see that
 * the element is gone and never touch it).
 */
enum { ELEMENT_WAITERS = 3 };

struct element_list {
    cc_lock lock;            /* the list's lock, the conditions' too */
    bool gone;               /* the element was deleted; under lock */
    struct element *element; /* the element waited on */
};

struct element {
    cc_cond not_busy; /* notified when the element is deleted */
};

static void *wait_not_busy(void *arg)
{
    struct element_list *l = arg;
    cc_lock_acquire(&l->lock, CC_FOREVER);
    struct element *e = l->element;
    int r = 0;
    while (!l->gone && r == 0)
        r = cc_cond_wait(&e->not_busy, cc_deadline_in(60 * CC_SEC));
    cc_lock_release(&l->lock);
    return (void *)(intptr_t)r;
}

static void cond_destroyed_as_soon_as_notified(void **state)
{
    struct element_list l;
    cc_lock_init(&l.lock);
    for (long i = 0; i < cc_test_n(300); i++) {
        l.gone = false;
        l.element = malloc(sizeof *l.element);
        assert_non_null(l.element);
        cc_cond_init(&l.element->not_busy, &l.lock);
        cc_thread *t[ELEMENT_WAITERS];
        for (int j = 0; j < ELEMENT_WAITERS; j++)
            t[j] = start(wait_not_busy, &l);
        while (parked(&l.element->not_busy.wait_) < ELEMENT_WAITERS)
            cc_yield();
        cc_lock_acquire(&l.lock, CC_FOREVER);
        l.gone = true;
        assert_int_equal(cc_cond_notify_all(&l.element->not_busy),
                         ELEMENT_WAITERS);
        cc_lock_release(&l.lock);
        cc_cond_destroy(&l.element->not_busy);
        free(l.element);
        for (int j = 0; j < ELEMENT_WAITERS; j++)
            assert_int_equal((intptr_t)join(t[j]), 0);
    }
    cc_lock_destroy(&l.lock);
}

/* ---- deadlines at the ends of the range ------------------------------------ */

/*
 * Every blocking call with a deadline far in the past (INT64_MIN, -1) fails
 * at once with -ETIMEDOUT, and with one far in the future but not
 * CC_FOREVER (INT64_MAX - 1) waits for its wakeup; in a thread and in a task.
 */
struct extremes {
    cc_lock held;      /* held by the caller throughout */
    cc_rlock rheld;    /* held by another party */
    cc_lock cond_lock; /* the condition's lock */
    cc_cond cond;      /* never notified */
    cc_semaphore sem;  /* value 0 */
    cc_event ev;       /* never set */
    cc_event late;     /* set a little after the far deadline's wait began */
    cc_event done;     /* lets rheld's holder go */
    cc_barrier bar;    /* two parties, one comes */
    long odd;          /* unexpected results */
};

static void expect(struct extremes *x, int got, int want)
{
    if (got != want)
        x->odd++;
}

static void *set_later(void *arg)
{
    struct extremes *x = arg;
    cc_sleep(5 * CC_MSEC);
    cc_event_set(&x->late);
    return NULL;
}

static void past_deadlines(struct extremes *x)
{
    cc_deadline past[] = {INT64_MIN, INT64_MIN + 1, -1, 1};
    for (size_t i = 0; i < sizeof past / sizeof *past; i++) {
        cc_deadline d = past[i];
        expect(x, cc_lock_acquire(&x->held, d), -ETIMEDOUT);
        expect(x, cc_rlock_acquire(&x->rheld, d), -ETIMEDOUT);
        expect(x, cc_semaphore_acquire(&x->sem, d), -ETIMEDOUT);
        expect(x, cc_event_wait(&x->ev, d), -ETIMEDOUT);
        cc_lock_acquire(&x->cond_lock, CC_FOREVER);
        expect(x, cc_cond_wait(&x->cond, d), -ETIMEDOUT);
        cc_lock_release(&x->cond_lock);
        expect(x, cc_barrier_wait(&x->bar, d), -ETIMEDOUT);
        cc_barrier_reset(&x->bar);
    }
    cc_event_clear(&x->late);
    cc_thread *t = start(set_later, x);
    expect(x, cc_event_wait(&x->late, INT64_MAX - 1), 0);
    join(t);
}

static void *hold_rlock(void *arg)
{
    struct extremes *x = arg;
    cc_rlock_acquire(&x->rheld, CC_FOREVER);
    cc_event_wait(&x->done, CC_FOREVER);
    cc_rlock_release(&x->rheld);
    return NULL;
}

static int past_deadlines_task(void *arg, void **result)
{
    past_deadlines(arg);
    return 0;
}

static void deadlines_at_the_ends_of_the_range(void **state)
{
    struct extremes x = {0};
    cc_lock_init(&x.held);
    cc_rlock_init(&x.rheld);
    cc_lock_init(&x.cond_lock);
    cc_cond_init(&x.cond, &x.cond_lock);
    cc_semaphore_init(&x.sem, 0);
    cc_event_init(&x.ev);
    cc_event_init(&x.late);
    cc_event_init(&x.done);
    assert_int_equal(cc_barrier_init(&x.bar, 2, NULL, NULL), 0);
    cc_thread *t = start(hold_rlock, &x);
    while (!cc_lock_locked(&x.rheld.lock_))
        cc_yield();
    cc_lock_acquire(&x.held, CC_FOREVER);
    past_deadlines(&x);
    assert_int_equal(cc_loop_run(past_deadlines_task, &x, NULL), 0);
    assert_int_equal(x.odd, 0);
    cc_lock_release(&x.held);
    cc_event_set(&x.done);
    join(t);
    cc_barrier_destroy(&x.bar);
    cc_event_destroy(&x.done);
    cc_event_destroy(&x.late);
    cc_event_destroy(&x.ev);
    cc_semaphore_destroy(&x.sem);
    cc_cond_destroy(&x.cond);
    cc_lock_destroy(&x.cond_lock);
    cc_rlock_destroy(&x.rheld);
    cc_lock_destroy(&x.held);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CC_TEST(barrier_early_arrival_timeout_spares_full_round),
        CC_TEST(cond_notify_one_survives_timeouts_and_cancels),
        CC_TEST(semaphore_units_survive_timeouts),
        CC_TEST(lock_excludes_tasks_and_threads_with_timeouts),
        CC_TEST(rlock_excludes_tasks_and_threads_with_timeouts),
        CC_TEST(barrier_destroyed_as_soon_as_wait_returns),
        CC_TEST(cond_destroyed_as_soon_as_notified),
        CC_TEST(deadlines_at_the_ends_of_the_range),
    };
    return CC_RUN_TESTS(tests);
}
