/*
 * test_sync.c: locks, recursive locks, conditions, semaphores, events and
 * barriers (include/concur/sync.h).
 */
#include "testutil.h"

#include "sync_helpers.h"

#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers -------------------------------------------------------------------- */

static cc_thread *start(cc_thread_fn fn, void *arg)
{
    cc_thread *t;
    assert_int_equal(cc_thread_start(&t, fn, arg, NULL), 0);
    return t;
}

static intptr_t join(cc_thread *t)
{
    void *r;
    assert_int_equal(cc_thread_join(t, cc_deadline_in(60 * CC_SEC), &r), 0);
    return (intptr_t)r;
}

static void wait_parked(struct cc__wait_storage *ws, int n)
{
    while (parked(ws) < n)
        cc_sleep(CC_MSEC);
}

/* ---- lock ----------------------------------------------------------------------- */

struct counter {
    cc_lock lock;
    long value;
    long per_thread;
};

static void *add_many(void *arg)
{
    struct counter *c = arg;
    for (long i = 0; i < c->per_thread; i++) {
        if (cc_lock_acquire(&c->lock, CC_FOREVER) != 0)
            return (void *)1;
        if (!cc_lock_held(&c->lock))
            return (void *)2; /* never lets go: the test then hangs and fails */
        c->value++;
        cc_lock_release(&c->lock);
    }
    return NULL;
}

static void lock_excludes_four_threads(void **state)
{
    struct counter c = {CC_LOCK_INIT, 0, cc_test_n(300000)};
    cc_thread *t[4];
    for (int i = 0; i < 4; i++)
        t[i] = start(add_many, &c);
    for (int i = 0; i < 4; i++)
        assert_int_equal(join(t[i]), 0);
    assert_int_equal(c.value, 4 * c.per_thread);
    assert_false(cc_lock_locked(&c.lock));
    cc_lock_destroy(&c.lock);
}

static void lock_zero_initialised_works(void **state)
{
    cc_lock l;
    memset(&l, 0, sizeof l);
    assert_false(cc_lock_locked(&l));
    assert_int_equal(cc_lock_acquire(&l, CC_NOWAIT), 0);
    assert_true(cc_lock_locked(&l));
    assert_true(cc_lock_held(&l));
    assert_int_equal(cc_lock_acquire(&l, CC_NOWAIT), -ETIMEDOUT);
    cc_lock_release(&l);
    assert_false(cc_lock_locked(&l));
    cc_lock_init(&l);
    cc_lock_destroy(&l);
}

static void lock_timed_acquire_never_early(void **state)
{
    cc_lock l = CC_LOCK_INIT;
    assert_int_equal(cc_lock_acquire(&l, CC_FOREVER), 0);
    for (int i = 0; i < 3; i++) {
        cc_deadline d = cc_deadline_in((5 + 10 * i) * CC_MSEC);
        assert_int_equal(cc_lock_acquire(&l, d), -ETIMEDOUT);
        assert_true(cc_now() >= d);
    }
    assert_true(cc_lock_locked(&l));
    cc_lock_release(&l);
    assert_int_equal(cc_lock_acquire(&l, cc_deadline_in(CC_MSEC)), 0);
    cc_lock_release(&l);
}

struct timed_counter {
    cc_lock lock;
    int inside;          /* threads in the critical section: at most 1 */
    long acquired;       /* successful acquisitions */
    long per_thread;     /* attempts per thread */
    cc__atomic_u32 bad;  /* set if two threads were inside at once */
};

static void *acquire_with_short_deadlines(void *arg)
{
    struct timed_counter *c = arg;
    for (long i = 0; i < c->per_thread; i++) {
        if (cc_lock_acquire(&c->lock, cc_deadline_in((i % 50) * CC_USEC)) != 0)
            continue;
        if (c->inside++ != 0)
            atomic_store(&c->bad, 1);
        c->acquired++;
        for (int k = 0; k < 200; k++)
            cc__cpu_relax();
        c->inside--;
        cc_lock_release(&c->lock);
    }
    return NULL;
}

/* Timeouts racing with releases keep exclusion and leave no stale state. */
static void lock_timeouts_under_contention(void **state)
{
    struct timed_counter c = {.per_thread = cc_test_n(50000)};
    cc_thread *t[4];
    for (int i = 0; i < 4; i++)
        t[i] = start(acquire_with_short_deadlines, &c);
    for (int i = 0; i < 4; i++)
        join(t[i]);
    assert_int_equal(atomic_load(&c.bad), 0);
    assert_true(c.acquired > 0 && c.acquired <= 4 * c.per_thread);
    assert_int_equal(c.lock.state_, 0); /* unlocked, no waiter flag left */
    assert_int_equal(parked(&c.lock.wait_), 0);
}

struct hog {
    cc_lock lock;
    cc__atomic_u32 stop;
};

/* Takes the lock back as soon as it lets go of it, as long as asked. */
static void *hog_lock(void *arg)
{
    struct hog *h = arg;
    while (!atomic_load(&h->stop)) {
        cc_lock_acquire(&h->lock, CC_FOREVER);
        for (int i = 0; i < 2000; i++)
            cc__cpu_relax();
        cc_lock_release(&h->lock);
    }
    return NULL;
}

/* Against threads that re-take the lock at once, a waiter still gets it. */
static void lock_waiter_does_not_starve(void **state)
{
    struct hog h = {CC_LOCK_INIT, 0};
    cc_thread *t[2] = {start(hog_lock, &h), start(hog_lock, &h)};
    for (long i = 0; i < cc_test_n(200); i++) {
        assert_int_equal(cc_lock_acquire(&h.lock, cc_deadline_in(5 * CC_SEC)), 0);
        cc_lock_release(&h.lock);
    }
    atomic_store(&h.stop, 1);
    join(t[0]);
    join(t[1]);
}

/* ---- rlock ---------------------------------------------------------------------- */

static void *try_rlock_elsewhere(void *arg)
{
    cc_rlock *r = arg;
    if (cc_rlock_release(r) != -EPERM)
        return (void *)1;
    if (cc_rlock_held(r))
        return (void *)2;
    int got = cc_rlock_acquire(r, CC_NOWAIT);
    if (got == 0)
        cc_rlock_release(r);
    return (void *)(intptr_t)got;
}

static void rlock_recursion_and_eperm(void **state)
{
    cc_rlock r = CC_RLOCK_INIT;
    assert_int_equal(cc_rlock_release(&r), -EPERM);
    for (int i = 0; i < 3; i++)
        assert_int_equal(cc_rlock_acquire(&r, CC_NOWAIT), 0);
    assert_true(cc_rlock_held(&r));
    assert_int_equal(join(start(try_rlock_elsewhere, &r)), -ETIMEDOUT);
    for (int i = 0; i < 3; i++)
        assert_int_equal(cc_rlock_release(&r), 0);
    assert_false(cc_rlock_held(&r));
    assert_int_equal(cc_rlock_release(&r), -EPERM);
    assert_int_equal(join(start(try_rlock_elsewhere, &r)), 0);
    cc_rlock_destroy(&r);
}

/* ---- condition ------------------------------------------------------------------ */

struct gate {
    cc_lock lock;
    cc_cond cond;
    int waiting; /* threads inside the wait loop */
    int tokens;  /* each wakes one thread for good */
    int woken;   /* threads that took a token */
    bool open;   /* wakes everyone */
};

static void gate_init(struct gate *g)
{
    memset(g, 0, sizeof *g);
    cc_cond_init(&g->cond, &g->lock);
}

static void *pass_gate(void *arg)
{
    struct gate *g = arg;
    cc_lock_acquire(&g->lock, CC_FOREVER);
    g->waiting++;
    while (!g->open && g->tokens == 0)
        if (cc_cond_wait(&g->cond, cc_deadline_in(60 * CC_SEC)) != 0)
            break;
    if (!g->open && g->tokens > 0)
        g->tokens--;
    g->woken++;
    cc_lock_release(&g->lock);
    return NULL;
}

static int gate_count(struct gate *g, int *field)
{
    cc_lock_acquire(&g->lock, CC_FOREVER);
    int n = *field;
    cc_lock_release(&g->lock);
    return n;
}

static void start_waiters(struct gate *g, cc_thread **t, int n)
{
    for (int i = 0; i < n; i++)
        t[i] = start(pass_gate, g);
    /* A waiter counted in `waiting` under the lock is queued once the lock is
     * free again; count the queue itself to be sure. */
    wait_parked(&g->cond.wait_, n);
    assert_int_equal(gate_count(g, &g->waiting), n);
}

static void cond_notify_all_wakes_sixteen(void **state)
{
    struct gate g;
    gate_init(&g);
    cc_thread *t[16];
    start_waiters(&g, t, 16);
    cc_lock_acquire(&g.lock, CC_FOREVER);
    g.open = true;
    assert_int_equal(cc_cond_notify_all(&g.cond), 16);
    cc_lock_release(&g.lock);
    for (int i = 0; i < 16; i++)
        join(t[i]);
    assert_int_equal(g.woken, 16);
    cc_cond_destroy(&g.cond);
}

static void cond_notify_n_wakes_n(void **state)
{
    struct gate g;
    gate_init(&g);
    cc_thread *t[8];
    start_waiters(&g, t, 8);
    cc_lock_acquire(&g.lock, CC_FOREVER);
    g.tokens = 3;
    assert_int_equal(cc_cond_notify(&g.cond, 3), 3);
    cc_lock_release(&g.lock);
    while (gate_count(&g, &g.woken) < 3)
        cc_sleep(CC_MSEC);
    cc_sleep(20 * CC_MSEC);
    assert_int_equal(gate_count(&g, &g.woken), 3);
    assert_int_equal(parked(&g.cond.wait_), 5);
    assert_int_equal(cc_cond_notify(&g.cond, 0), 0);
    cc_lock_acquire(&g.lock, CC_FOREVER);
    g.open = true;
    assert_int_equal(cc_cond_notify(&g.cond, 100), 5);
    cc_lock_release(&g.lock);
    for (int i = 0; i < 8; i++)
        join(t[i]);
    assert_int_equal(g.woken, 8);
}

static bool is_open(void *arg) { return ((struct gate *)arg)->open; }

static void *open_gate_later(void *arg)
{
    struct gate *g = arg;
    cc_sleep(10 * CC_MSEC);
    cc_lock_acquire(&g->lock, CC_FOREVER);
    g->open = true;
    cc_cond_notify_all(&g->cond);
    cc_lock_release(&g->lock);
    return NULL;
}

static void cond_wait_for_predicate(void **state)
{
    struct gate g;
    gate_init(&g);
    cc_lock_acquire(&g.lock, CC_FOREVER);
    cc_deadline d = cc_deadline_in(20 * CC_MSEC);
    assert_int_equal(cc_cond_wait_for(&g.cond, is_open, &g, d), -ETIMEDOUT);
    assert_true(cc_now() >= d);
    assert_true(cc_lock_held(&g.lock));
    cc_thread *t = start(open_gate_later, &g);
    d = cc_deadline_in(30 * CC_SEC);
    assert_int_equal(cc_cond_wait_for(&g.cond, is_open, &g, d), 0);
    assert_true(g.open);
    cc_lock_release(&g.lock);
    join(t);
    /* Without the lock: refused. */
    assert_int_equal(cc_cond_wait(&g.cond, CC_NOWAIT), -EPERM);
}

struct rgate {
    cc_rlock lock;
    cc_cond cond;
    bool open;
};

static void *open_rgate(void *arg)
{
    struct rgate *g = arg;
    cc_rlock_acquire(&g->lock, CC_FOREVER);
    g->open = true;
    cc_cond_notify(&g->cond, 1);
    cc_rlock_release(&g->lock);
    return NULL;
}

static void cond_with_rlock_releases_all_levels(void **state)
{
    struct rgate g = {.lock = CC_RLOCK_INIT};
    cc_cond_init_rlock(&g.cond, &g.lock);
    assert_int_equal(cc_cond_wait(&g.cond, CC_NOWAIT), -EPERM);
    cc_rlock_acquire(&g.lock, CC_FOREVER);
    cc_rlock_acquire(&g.lock, CC_FOREVER);
    cc_thread *t = start(open_rgate, &g);
    while (!g.open)
        assert_int_equal(cc_cond_wait(&g.cond, cc_deadline_in(30 * CC_SEC)), 0);
    assert_true(cc_rlock_held(&g.lock));
    assert_int_equal(cc_rlock_release(&g.lock), 0);
    assert_int_equal(cc_rlock_release(&g.lock), 0);
    assert_int_equal(cc_rlock_release(&g.lock), -EPERM);
    join(t);
}

/* ---- event ---------------------------------------------------------------------- */

struct pingpong {
    cc_event ping, pong;
    long rounds;
};

static void *pong_player(void *arg)
{
    struct pingpong *pp = arg;
    for (long i = 0; i < pp->rounds; i++) {
        if (cc_event_wait(&pp->ping, cc_deadline_in(60 * CC_SEC)) != 0)
            return (void *)1;
        cc_event_clear(&pp->ping);
        cc_event_set(&pp->pong);
    }
    return NULL;
}

static void event_pingpong_million(void **state)
{
    struct pingpong pp = {CC_EVENT_INIT, CC_EVENT_INIT, cc_test_n(1000000)};
    cc_thread *t = start(pong_player, &pp);
    for (long i = 0; i < pp.rounds; i++) {
        cc_event_set(&pp.ping);
        assert_int_equal(cc_event_wait(&pp.pong, cc_deadline_in(60 * CC_SEC)), 0);
        cc_event_clear(&pp.pong);
    }
    assert_int_equal(join(t), 0);
    assert_false(cc_event_is_set(&pp.ping));
}

static void *wait_event(void *arg)
{
    return (void *)(intptr_t)cc_event_wait(arg, cc_deadline_in(60 * CC_SEC));
}

static void event_set_then_clear_still_wakes_waiters(void **state)
{
    cc_event e;
    cc_event_init(&e);
    cc_thread *t[4];
    for (int i = 0; i < 4; i++)
        t[i] = start(wait_event, &e);
    wait_parked(&e.wait_, 4);
    cc_event_set(&e);
    cc_event_clear(&e);
    for (int i = 0; i < 4; i++)
        assert_int_equal(join(t[i]), 0);
    assert_false(cc_event_is_set(&e));
    cc_event_destroy(&e);
}

static void event_wait_times_out_never_early(void **state)
{
    cc_event e = CC_EVENT_INIT;
    assert_int_equal(cc_event_wait(&e, CC_NOWAIT), -ETIMEDOUT);
    cc_deadline d = cc_deadline_in(20 * CC_MSEC);
    assert_int_equal(cc_event_wait(&e, d), -ETIMEDOUT);
    assert_true(cc_now() >= d);
    cc_event_set(&e);
    assert_true(cc_event_is_set(&e));
    assert_int_equal(cc_event_wait(&e, CC_NOWAIT), 0);
}

/* ---- semaphore ------------------------------------------------------------------ */

struct sem_pingpong {
    cc_semaphore ping, pong;
    long rounds;
};

static void *sem_pong(void *arg)
{
    struct sem_pingpong *pp = arg;
    for (long i = 0; i < pp->rounds; i++) {
        if (cc_semaphore_acquire(&pp->ping, cc_deadline_in(60 * CC_SEC)) != 0)
            return (void *)1;
        cc_semaphore_release(&pp->pong, 1);
    }
    return NULL;
}

static void semaphore_pingpong(void **state)
{
    struct sem_pingpong pp = {.rounds = cc_test_n(300000)};
    cc_semaphore_init(&pp.ping, 0);
    cc_semaphore_init(&pp.pong, 0);
    cc_thread *t = start(sem_pong, &pp);
    for (long i = 0; i < pp.rounds; i++) {
        assert_int_equal(cc_semaphore_release(&pp.ping, 1), 0);
        assert_int_equal(cc_semaphore_acquire(&pp.pong, cc_deadline_in(60 * CC_SEC)), 0);
    }
    assert_int_equal(join(t), 0);
    assert_int_equal(cc_semaphore_value(&pp.ping), 0);
    assert_int_equal(cc_semaphore_value(&pp.pong), 0);
}

enum { RING = 8 };

struct ring {
    cc_semaphore free, used; /* slots free to put / used to get */
    cc_lock lock;
    long items[RING];
    unsigned head, tail;
    long per_producer;
    long sum;
};

static void *produce(void *arg)
{
    struct ring *r = arg;
    for (long i = 1; i <= r->per_producer; i++) {
        cc_semaphore_acquire(&r->free, CC_FOREVER);
        cc_lock_acquire(&r->lock, CC_FOREVER);
        r->items[r->tail++ % RING] = i;
        cc_lock_release(&r->lock);
        cc_semaphore_release(&r->used, 1);
    }
    return NULL;
}

static void *consume(void *arg)
{
    struct ring *r = arg;
    long sum = 0;
    for (long i = 0; i < r->per_producer; i++) {
        cc_semaphore_acquire(&r->used, CC_FOREVER);
        cc_lock_acquire(&r->lock, CC_FOREVER);
        sum += r->items[r->head++ % RING];
        cc_lock_release(&r->lock);
        cc_semaphore_release(&r->free, 1);
    }
    cc_lock_acquire(&r->lock, CC_FOREVER);
    r->sum += sum;
    cc_lock_release(&r->lock);
    return NULL;
}

static void semaphore_producer_consumer_exact(void **state)
{
    struct ring r = {.per_producer = cc_test_n(100000)};
    cc_bounded_semaphore_init(&r.free, RING);
    cc_semaphore_init(&r.used, 0);
    cc_thread *t[4] = {start(produce, &r), start(produce, &r), start(consume, &r),
                       start(consume, &r)};
    for (int i = 0; i < 4; i++)
        join(t[i]);
    long n = r.per_producer;
    assert_int_equal(r.sum, n * (n + 1)); /* two producers of 1..n each */
    assert_int_equal(cc_semaphore_value(&r.free), RING);
    assert_int_equal(cc_semaphore_value(&r.used), 0);
}

static void bounded_semaphore_over_release(void **state)
{
    cc_semaphore s;
    cc_bounded_semaphore_init(&s, 2);
    assert_int_equal(cc_semaphore_release(&s, 1), -EOVERFLOW);
    assert_int_equal(cc_semaphore_acquire(&s, CC_NOWAIT), 0);
    assert_int_equal(cc_semaphore_acquire(&s, CC_NOWAIT), 0);
    cc_deadline d = cc_deadline_in(10 * CC_MSEC);
    assert_int_equal(cc_semaphore_acquire(&s, d), -ETIMEDOUT);
    assert_true(cc_now() >= d);
    assert_int_equal(cc_semaphore_release(&s, 3), -EOVERFLOW);
    assert_int_equal(cc_semaphore_value(&s), 0);
    assert_int_equal(cc_semaphore_release(&s, 2), 0);
    assert_int_equal(cc_semaphore_release(&s, 1), -EOVERFLOW);
    assert_int_equal(cc_semaphore_release(&s, 0), -EINVAL);
    assert_int_equal(cc_semaphore_value(&s), 2);
    cc_semaphore_init(&s, UINT32_MAX - 1);
    assert_int_equal(cc_semaphore_release(&s, 2), -EOVERFLOW);
    cc_semaphore_destroy(&s);
}

/* ---- barrier -------------------------------------------------------------------- */

enum { PARTIES = 4 };

struct rounds {
    cc_barrier barrier;
    long rounds;
    long actions;              /* rounds ended, counted by the action */
    int (*seen)[PARTIES];      /* [round][thread] arrival index */
    cc__atomic_u32 next_id;    /* hands out thread numbers */
};

static int count_round(void *arg)
{
    ((struct rounds *)arg)->actions++;
    return 0;
}

static void *run_rounds(void *arg)
{
    struct rounds *r = arg;
    unsigned id = atomic_fetch_add(&r->next_id, 1);
    for (long i = 0; i < r->rounds; i++) {
        int idx = cc_barrier_wait(&r->barrier, cc_deadline_in(60 * CC_SEC));
        if (idx < 0)
            return (void *)(intptr_t)idx;
        r->seen[i][id] = idx;
    }
    return NULL;
}

static void barrier_indices_are_a_permutation(void **state)
{
    struct rounds r = {.rounds = cc_test_n(5000)};
    r.seen = calloc((size_t)r.rounds, sizeof *r.seen);
    assert_int_equal(cc_barrier_init(&r.barrier, PARTIES, count_round, &r), 0);
    cc_thread *t[PARTIES];
    for (int i = 0; i < PARTIES; i++)
        t[i] = start(run_rounds, &r);
    for (int i = 0; i < PARTIES; i++)
        assert_int_equal(join(t[i]), 0);
    for (long i = 0; i < r.rounds; i++) {
        unsigned mask = 0;
        for (int j = 0; j < PARTIES; j++)
            mask |= 1u << r.seen[i][j];
        assert_int_equal(mask, (1u << PARTIES) - 1);
    }
    assert_int_equal(r.actions, r.rounds);
    assert_false(cc_barrier_broken(&r.barrier));
    assert_int_equal(cc_barrier_parties(&r.barrier), PARTIES);
    free(r.seen);
    cc_barrier_destroy(&r.barrier);
}

static void *wait_barrier(void *arg)
{
    return (void *)(intptr_t)cc_barrier_wait(arg, cc_deadline_in(60 * CC_SEC));
}

static void barrier_abort_breaks_waiters(void **state)
{
    cc_barrier b;
    assert_int_equal(cc_barrier_init(&b, 3, NULL, NULL), 0);
    assert_int_equal(cc_barrier_init(&b, 0, NULL, NULL), -EINVAL);
    assert_int_equal(cc_barrier_init(&b, 3, NULL, NULL), 0);
    cc_thread *t[2] = {start(wait_barrier, &b), start(wait_barrier, &b)};
    wait_parked(&b.wait_, 2);
    assert_int_equal(cc_barrier_n_waiting(&b), 2);
    cc_barrier_abort(&b);
    assert_int_equal(join(t[0]), -EPIPE);
    assert_int_equal(join(t[1]), -EPIPE);
    assert_true(cc_barrier_broken(&b));
    assert_int_equal(cc_barrier_wait(&b, CC_FOREVER), -EPIPE);
    cc_barrier_reset(&b);
    assert_false(cc_barrier_broken(&b));
    t[0] = start(wait_barrier, &b);
    t[1] = start(wait_barrier, &b);
    int mine = cc_barrier_wait(&b, cc_deadline_in(60 * CC_SEC));
    int sum = mine + (int)join(t[0]) + (int)join(t[1]);
    assert_int_equal(sum, 0 + 1 + 2);
}

static void barrier_timeout_breaks_it(void **state)
{
    cc_barrier b;
    assert_int_equal(cc_barrier_init(&b, 2, NULL, NULL), 0);
    cc_deadline d = cc_deadline_in(20 * CC_MSEC);
    assert_int_equal(cc_barrier_wait(&b, d), -ETIMEDOUT);
    assert_true(cc_now() >= d);
    assert_true(cc_barrier_broken(&b));
    assert_int_equal(cc_barrier_wait(&b, CC_NOWAIT), -EPIPE);
}

/* Python's n_waiting counts the threads inside wait(); a broken barrier has
 * none (its waiters were woken, new ones fail at once), until reset. */
static void barrier_n_waiting_is_0_once_broken(void **state)
{
    cc_barrier b;
    assert_int_equal(cc_barrier_init(&b, 3, NULL, NULL), 0);
    cc_thread *t = start(wait_barrier, &b);
    wait_parked(&b.wait_, 1);
    assert_int_equal(cc_barrier_n_waiting(&b), 1);
    cc_barrier_abort(&b);
    assert_int_equal(join(t), -EPIPE);
    assert_int_equal(cc_barrier_n_waiting(&b), 0);
    cc_barrier_reset(&b);
    assert_int_equal(cc_barrier_wait(&b, cc_deadline_in(CC_MSEC)), -ETIMEDOUT);
    assert_int_equal(cc_barrier_n_waiting(&b), 0);
    cc_barrier_destroy(&b);
}

static int fail_action(void *arg) { return -EIO; }

static void barrier_failed_action_breaks_it(void **state)
{
    cc_barrier b;
    assert_int_equal(cc_barrier_init(&b, 2, fail_action, NULL), 0);
    cc_thread *t = start(wait_barrier, &b);
    wait_parked(&b.wait_, 1);
    assert_int_equal(cc_barrier_wait(&b, CC_FOREVER), -EIO);
    assert_int_equal(join(t), -EPIPE);
    assert_true(cc_barrier_broken(&b));
}

struct slow_action {
    cc_event running; /* set while the action of a round runs */
    int runs;         /* rounds ended */
};

static int slow_round(void *arg)
{
    struct slow_action *sa = arg;
    sa->runs++;
    cc_event_set(&sa->running);
    cc_sleep(50 * CC_MSEC);
    cc_event_clear(&sa->running);
    return 0;
}

/* Threads that arrive while the action runs belong to the next round. */
static void barrier_arrivals_during_action_wait(void **state)
{
    struct slow_action sa = {CC_EVENT_INIT, 0};
    cc_barrier b;
    assert_int_equal(cc_barrier_init(&b, 2, slow_round, &sa), 0);
    cc_thread *t[3] = {start(wait_barrier, &b), start(wait_barrier, &b)};
    assert_int_equal(cc_event_wait(&sa.running, cc_deadline_in(60 * CC_SEC)), 0);
    assert_int_equal(cc_barrier_n_waiting(&b), 0);
    t[2] = start(wait_barrier, &b);
    int mine = cc_barrier_wait(&b, cc_deadline_in(60 * CC_SEC));
    assert_int_equal(join(t[0]) + join(t[1]), 0 + 1);
    assert_int_equal(mine + join(t[2]), 0 + 1);
    assert_int_equal(sa.runs, 2);
    assert_false(cc_barrier_broken(&b));
}

/* ---- destroyed as soon as the wait returns ------------------------------ */

/*
 * The completion idiom: a waiter owns an event (or a semaphore), another
 * thread sets (releases) it, and the waiter destroys and frees it as soon as
 * its wait returns, with nobody waiting any more. A wait that sees the flag
 * (a unit) without parking must not return while the waker still touches the
 * object (POSIX's rule for sem_post and sem_destroy). Under TSan or ASan the
 * waker's late accesses show as races with the free, or uses after it.
 */
enum { COMPLETIONS = 2000 };

struct completer {
    _Atomic(void *) mailbox; /* the next object to complete, or NULL */
    bool semaphore;          /* release a cc_semaphore, else set a cc_event */
};

static void *complete_each(void *arg)
{
    struct completer *c = arg;
    for (int i = 0; i < COMPLETIONS; i++) {
        void *obj;
        while (!(obj = atomic_exchange(&c->mailbox, NULL)))
            sched_yield();
        if (c->semaphore)
            cc_semaphore_release(obj, 1);
        else
            cc_event_set(obj);
    }
    return NULL;
}

static void destroy_as_soon_as_waited(bool semaphore)
{
    struct completer c = {.semaphore = semaphore};
    cc_thread *t = start(complete_each, &c);
    for (int i = 0; i < COMPLETIONS; i++) {
        cc_event *e = malloc(sizeof *e);
        cc_semaphore *sem = malloc(sizeof *sem);
        assert_non_null(e);
        assert_non_null(sem);
        cc_event_init(e);
        cc_semaphore_init(sem, 0);
        atomic_store(&c.mailbox, semaphore ? (void *)sem : (void *)e);
        while ((semaphore ? cc_semaphore_acquire(sem, CC_NOWAIT)
                          : cc_event_wait(e, CC_NOWAIT)) != 0)
            cc__cpu_relax();
        cc_event_destroy(e);
        cc_semaphore_destroy(sem);
        free(e);
        free(sem);
    }
    assert_int_equal(join(t), 0);
}

static void event_destroyed_as_soon_as_wait_returns(void **state)
{
    destroy_as_soon_as_waited(false);
}

static void semaphore_destroyed_as_soon_as_acquire_returns(void **state)
{
    destroy_as_soon_as_waited(true);
}

/* ---- debug ownership checks ----------------------------------------------------- */

#ifdef CONCUR_DEBUG
static void *release_foreign_lock(void *arg)
{
    cc_lock_release(arg);
    return NULL;
}
#endif

static void debug_release_by_non_owner_aborts(void **state)
{
#ifdef CONCUR_DEBUG
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        static cc_lock l = CC_LOCK_INIT;
        signal(SIGABRT, SIG_DFL);
        cc_lock_acquire(&l, CC_FOREVER);
        cc_thread *t;
        if (cc_thread_start(&t, release_foreign_lock, &l, NULL) == 0)
            cc_thread_join(t, CC_FOREVER, NULL);
        _exit(0); /* not reached when the check works */
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
#else
    skip();
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CC_TEST(lock_excludes_four_threads),
        CC_TEST(lock_zero_initialised_works),
        CC_TEST(lock_timed_acquire_never_early),
        CC_TEST(lock_waiter_does_not_starve),
        CC_TEST(lock_timeouts_under_contention),
        CC_TEST(rlock_recursion_and_eperm),
        CC_TEST(cond_notify_all_wakes_sixteen),
        CC_TEST(cond_notify_n_wakes_n),
        CC_TEST(cond_wait_for_predicate),
        CC_TEST(cond_with_rlock_releases_all_levels),
        CC_TEST(event_pingpong_million),
        CC_TEST(event_set_then_clear_still_wakes_waiters),
        CC_TEST(event_wait_times_out_never_early),
        CC_TEST(semaphore_pingpong),
        CC_TEST(semaphore_producer_consumer_exact),
        CC_TEST(bounded_semaphore_over_release),
        CC_TEST(barrier_indices_are_a_permutation),
        CC_TEST(barrier_abort_breaks_waiters),
        CC_TEST(barrier_timeout_breaks_it),
        CC_TEST(barrier_n_waiting_is_0_once_broken),
        CC_TEST(barrier_failed_action_breaks_it),
        CC_TEST(barrier_arrivals_during_action_wait),
        CC_TEST(event_destroyed_as_soon_as_wait_returns),
        CC_TEST(semaphore_destroyed_as_soon_as_acquire_returns),
        CC_TEST(debug_release_by_non_owner_aborts),
    };
    return CC_RUN_TESTS(tests);
}
