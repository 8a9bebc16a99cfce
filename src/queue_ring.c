/*
 * queue_ring.c: the bounded FIFO, a lock-free MPMC ring (Vyukov's bounded
 * queue, one sequence number per slot) with blocking only when full or empty.
 *
 * DESIGN. A put claims position `enq` with a CAS once the slot's seq says the
 * item of the previous lap is gone (seq == 2 pos), writes the item and
 * releases seq = 2 pos + 1; a get claims `deq` when seq == 2 pos + 1, reads
 * the item and releases seq = 2 (pos + cap). (Vyukov uses pos, pos + 1 and
 * pos + cap, which cannot tell full from free when cap is 1; doubling can.)
 * Neither takes a lock. A caller that finds the ring
 * full (empty) spins briefly, then announces itself in put_waiters
 * (get_waiters), looks again and parks on the queue's wait queue. The other
 * side reads that counter right after its claiming CAS: both are seq_cst, so
 * either the waker sees the sleeper or the sleeper sees the claim (and then
 * waits for the claimed slot to be published, a few instructions, instead of
 * parking). cc_wait_any's subscriptions count in get_waiters too, so the
 * same check serves them (queue_sub.c). Shutdown sets a bit in enq, so a put
 * either claimed its slot before the shutdown or fails; a get fails once deq
 * reaches the frozen enq.
 * Join counts done tasks against enq: unfinished = enq - done; a joiner
 * sets a bit in done, so that task_done's CAS fails while one may be
 * parked, and counts under the lock instead.
 * Freeing: the caller of a put, get or join may free q as soon as it
 * returns, while the call it saw is still returning (queue.h). So a call
 * touches q after its publishing store only if nobody can have seen it: one
 * that wakes someone holds the lock from before that store to its end, and
 * a caller that took a slot (saw the count) without the lock waits for the
 * lock to be free first (one load when it is). A shutdown counts itself in
 * `shutting` until it is done; callers that see it shut wait for that.
 */
#include "queue_impl.h"

#include "concur/loop.h"
#include "loop_internal.h"

#include <errno.h>
#include <sched.h>

/* Tries of the fast path before a full/empty caller announces itself and
 * parks: a partner on the other vCPU usually frees a slot within a
 * microsecond or two, far cheaper than the ~20 us of waking a parked thread
 * (BENCHMARKS.md). Yielding soon matters when there are more threads than
 * vCPUs (2p2c on 2 vCPUs: 2 x the throughput of pure spinning), where the
 * partner we wait for may be the thread waiting for our vCPU. Yields are
 * cc_yield: in a task of an event loop they run the loop's other tasks (the
 * partner may be one of them), elsewhere sched_yield. */
enum { RING_SPINS = 20, RING_YIELDS = 10 };

int cc__ring_init(cc_queue *q, size_t cap)
{
    struct cc__ring *r = &q->ring;
    r->cells = cc__calloc(cap, sizeof *r->cells);
    if (!r->cells)
        return -ENOMEM;
    r->cap = cap;
    r->pow2 = (cap & (cap - 1)) == 0;
    r->mask = r->pow2 ? cap - 1 : 0;
    for (uint64_t i = 0; i < cap; i++)
        cc__store_relaxed(&r->cells[i].seq, 2 * i);
    return 0;
}

static inline struct cc__ring_cell *cell_at(struct cc__ring *r, uint64_t pos)
{
    return &r->cells[r->pow2 ? (pos & r->mask) : (pos % r->cap)];
}

static inline uint64_t enq_pos(struct cc__ring *r)
{
    /* seq_cst: the second half of the sleeper's handshake (see DESIGN). */
    return cc__load_seq_cst(&r->enq) & ~CC__RING_SHUT;
}

/*
 * Publish a slot (store its seq) when the other side may be parked (it
 * announced itself): under q->lock, then wake one of it (a put: one getter
 * and, not instead of it, every cc_wait_any subscription, queue_sub.c). A
 * caller that takes the slot without the lock waits for our unlock first
 * (take_published), so we are done with q when its call returns. The
 * parked one is chosen under the lock and woken after it (its system call
 * would otherwise hold up every take_published): that touches only its
 * waiter, which it cannot leave before our store (cc__wait_on).
 */
static void publish_and_wake(cc_queue *q, cc__atomic_u64 *seq, uint64_t v,
                             bool put, bool held)
{
    if (!held)
        cc__mutex_lock(&q->lock);
    /* release: as the plain publish, in try_put and try_get. */
    cc__store_rel(seq, v);
    cc__waiter *w = cc__waitq_pop(put ? &q->getters : &q->putters);
    if (w)
        w->token = 0;
    if (put && q->subs)
        cc__queue_notify_held(q);
    if (!held)
        cc__mutex_unlock(&q->lock);
    if (w)
        cc__waiter_wake(w);
}

/* After claiming a slot that the other side published, and before our own
 * publish (after it, our caller's partner may free q): if its publisher
 * took q->lock to wake us, wait until it is out (our caller may free q as
 * soon as we return). One load when the lock is free; nothing when we hold
 * it (then that wake is over). */
static inline void take_published(cc_queue *q, bool held)
{
    if (!held)
        cc__mutex_wait_unlocked(&q->lock);
}

/*
 * try_put: claim and fill a slot, waking a getter if one may be parked.
 * Returns 0, -EAGAIN when the slot at *pos is still taken (full),
 * -ESHUTDOWN. held: the caller holds q->lock.
 */
static inline int try_put(cc_queue *q, void *item, uint64_t *pos_out,
                          bool held)
{
    struct cc__ring *r = &q->ring;
    uint64_t pos = cc__load_relaxed(&r->enq);
    struct cc__ring_cell *c;
    for (;;) {
        if (CC__UNLIKELY(pos & CC__RING_SHUT))
            return -ESHUTDOWN;
        c = cell_at(r, pos);
        /* acquire: the last getter's read of this slot precedes our write. */
        int64_t diff = (int64_t)(cc__load_acq(&c->seq) - 2 * pos);
        if (diff == 0) {
            /* seq_cst: orders the claim before the get_waiters load below. */
            if (cc__cas_weak_seq_cst(&r->enq, &pos, pos + 1))
                break;
        } else if (diff < 0) {
            *pos_out = pos;
            return -EAGAIN;
        } else {
            pos = cc__load_relaxed(&r->enq);
        }
    }
    bool wake = cc__load_seq_cst(&r->get_waiters) != 0;
    take_published(q, held);
    c->item = item;
    if (CC__UNLIKELY(wake))
        publish_and_wake(q, &c->seq, 2 * pos + 1, true, held);
    else /* release: the item is written before a getter sees the slot */
        cc__store_rel(&c->seq, 2 * pos + 1);
    return 0;
}

/* try_get: as try_put, the other way; -EAGAIN when the slot at *pos is
 * empty. */
static inline int try_get(cc_queue *q, void **item, uint64_t *pos_out,
                          bool held)
{
    struct cc__ring *r = &q->ring;
    uint64_t pos = cc__load_relaxed(&r->deq);
    struct cc__ring_cell *c;
    for (;;) {
        c = cell_at(r, pos);
        /* acquire: pairs with the putter's release; the item is visible. */
        int64_t diff = (int64_t)(cc__load_acq(&c->seq) - (2 * pos + 1));
        if (diff == 0) {
            /* seq_cst: orders the claim before the put_waiters load below. */
            if (cc__cas_weak_seq_cst(&r->deq, &pos, pos + 1))
                break;
        } else if (diff < 0) {
            *pos_out = pos;
            return -EAGAIN;
        } else {
            pos = cc__load_relaxed(&r->deq);
        }
    }
    bool wake = cc__load_seq_cst(&r->put_waiters) != 0;
    take_published(q, held);
    *item = c->item;
    if (CC__UNLIKELY(wake))
        publish_and_wake(q, &c->seq, 2 * (pos + r->cap), false, held);
    else /* release: our read of the item precedes the next lap's put */
        cc__store_rel(&c->seq, 2 * (pos + r->cap));
    return 0;
}

/* The slot at pos is claimed and being filled or emptied: wait until its
 * claimer is done, the slot's seq at `want` (or past it: taken again). The
 * claimer never parks in between, so this is a few instructions unless
 * its thread was preempted. */
static void await_claimer(cc_queue *q, uint64_t pos, uint64_t want)
{
    struct cc__ring_cell *c = cell_at(&q->ring, pos);
    /* acquire: as try_put's and try_get's loads of seq. */
    while (cc__load_acq(&c->seq) < want)
        cc_yield();
}

/* await_claimer under q->lock, which it drops meanwhile: the claimer may
 * need it (take_published, or its wake). */
static void let_claimer_finish(cc_queue *q, uint64_t pos, uint64_t want)
{
    cc__mutex_unlock(&q->lock);
    await_claimer(q, pos, want);
    cc__mutex_lock(&q->lock);
}

/*
 * A caller that saw the queue shut down (put, get, join) returns only once
 * every shutdown under way is done with q: its caller may free q then.
 * Under q->lock; parks on joiners (only ever woken all at once), protected
 * from the caller's cancellation (the wait is short).
 */
static void wait_shutdowns_held(cc_queue *q)
{
    struct cc__protect p;
    cc__protect_begin(&p);
    while (q->ring.shutting > 0) {
        cc__waiter w;
        cc__waiter_init(&w);
        cc__wait_on(&q->joiners, &q->lock, &w, CC_FOREVER);
    }
    cc__protect_end(&p);
}

static void wait_shutdowns(cc_queue *q)
{
    cc__mutex_lock(&q->lock);
    wait_shutdowns_held(q);
    cc__mutex_unlock(&q->lock);
}

/* Spin a little for a partner on another vCPU. Returns what try_put did. */
static int spin_put(cc_queue *q, void *item, uint64_t *pos)
{
    int r = -EAGAIN;
    for (int i = 0; i < RING_SPINS + RING_YIELDS && r == -EAGAIN; i++) {
        if (i < RING_SPINS)
            cc__cpu_relax();
        else
            cc_yield();
        r = try_put(q, item, pos, false);
    }
    return r;
}

/* Under q->lock, announced in put_waiters: put or park until the deadline. */
static int put_parked(cc_queue *q, void *item, cc_deadline deadline)
{
    struct cc__ring *r = &q->ring;
    for (;;) {
        uint64_t pos;
        int ret = try_put(q, item, &pos, true);
        if (ret != -EAGAIN)
            return ret;
        /* seq_cst: the deq claim of a getter that missed us is visible. */
        if (cc__load_seq_cst(&r->deq) + r->cap > pos) {
            let_claimer_finish(q, pos, 2 * pos); /* emptied */
            continue;
        }
        cc__waiter w;
        cc__waiter_init(&w);
        if (cc__deadline_passed(deadline))
            return -ETIMEDOUT;
        int err = cc__wait_on(&q->putters, &q->lock, &w, deadline);
        if (err < 0)
            return err;
    }
}

static int put_slow(cc_queue *q, void *item, cc_deadline deadline)
{
    uint64_t pos;
    int ret = spin_put(q, item, &pos);
    if (ret == -EAGAIN) {
        cc__mutex_lock(&q->lock);
        /* seq_cst: announce before looking again (see DESIGN). */
        cc__fetch_add_seq_cst(&q->ring.put_waiters, 1);
        ret = put_parked(q, item, deadline);
        cc__fetch_sub(&q->ring.put_waiters, 1);
        cc__mutex_unlock(&q->lock);
    }
    return ret;
}

/*
 * A put whose deadline has passed, after try_put found the slot at pos
 * taken: a getter that has claimed it (deq passed it) but not emptied it
 * yet counts already as gone in qsize and full, so wait for it, as a
 * locked queue's put would find the room, rather than fail (the caller
 * may have seen full() false). Else -ETIMEDOUT.
 */
static int put_now(cc_queue *q, void *item, uint64_t pos)
{
    struct cc__ring *r = &q->ring;
    int ret = -EAGAIN;
    /* seq_cst: as put_parked's load of deq. */
    while (ret == -EAGAIN && cc__load_seq_cst(&r->deq) + r->cap > pos) {
        await_claimer(q, pos, 2 * pos); /* emptied */
        ret = try_put(q, item, &pos, false);
    }
    return ret == -EAGAIN ? -ETIMEDOUT : ret;
}

int cc__ring_put(cc_queue *q, void *item, cc_deadline deadline)
{
    uint64_t pos;
    int ret = try_put(q, item, &pos, false);
    if (CC__LIKELY(ret == 0))
        return 0;
    if (ret == -EAGAIN && cc__deadline_passed(deadline))
        ret = put_now(q, item, pos);
    else if (ret == -EAGAIN)
        ret = put_slow(q, item, deadline);
    if (ret == -ESHUTDOWN)
        wait_shutdowns(q);
    return ret;
}

/* After a failed try_get at pos: whether the ring is shut down and drained. */
static bool drained(struct cc__ring *r, uint64_t pos)
{
    uint64_t enq = cc__load_seq_cst(&r->enq);
    return (enq & CC__RING_SHUT) && (enq & ~CC__RING_SHUT) <= pos;
}

static int spin_get(cc_queue *q, void **item, uint64_t *pos)
{
    int r = -EAGAIN;
    for (int i = 0; i < RING_SPINS + RING_YIELDS && r == -EAGAIN; i++) {
        if (i < RING_SPINS)
            cc__cpu_relax();
        else
            cc_yield();
        r = try_get(q, item, pos, false);
        if (r == -EAGAIN && drained(&q->ring, *pos))
            return -ESHUTDOWN;
    }
    return r;
}

/* Under q->lock, announced in get_waiters: get or park until the deadline. */
static int get_parked(cc_queue *q, void **item, cc_deadline deadline)
{
    struct cc__ring *r = &q->ring;
    for (;;) {
        uint64_t pos;
        if (try_get(q, item, &pos, true) == 0)
            return 0;
        uint64_t enq = cc__load_seq_cst(&r->enq);
        if ((enq & ~CC__RING_SHUT) > pos) {
            /* A put claimed the slot and is filling it. */
            let_claimer_finish(q, pos, 2 * pos + 1);
            continue;
        }
        if (enq & CC__RING_SHUT)
            return -ESHUTDOWN;
        cc__waiter w;
        cc__waiter_init(&w);
        if (cc__deadline_passed(deadline))
            return -ETIMEDOUT;
        int err = cc__wait_on(&q->getters, &q->lock, &w, deadline);
        if (err < 0)
            return err;
    }
}

static int get_slow(cc_queue *q, void **item, cc_deadline deadline)
{
    uint64_t pos;
    int ret = spin_get(q, item, &pos);
    if (ret == -EAGAIN) {
        cc__mutex_lock(&q->lock);
        /* seq_cst: announce before looking again (see DESIGN). */
        cc__fetch_add_seq_cst(&q->ring.get_waiters, 1);
        ret = get_parked(q, item, deadline);
        cc__fetch_sub(&q->ring.get_waiters, 1);
        cc__mutex_unlock(&q->lock);
    }
    return ret;
}

/* As put_now, for a get: a put that has claimed the slot at pos (enq
 * passed it) counts already in qsize, empty and cc_wait_any's readiness,
 * so wait for its item. Else -ETIMEDOUT, or -ESHUTDOWN once drained. */
static int get_now(cc_queue *q, void **item, uint64_t pos)
{
    int ret = -EAGAIN;
    /* seq_cst: as get_parked's load of enq. */
    while (ret == -EAGAIN &&
           (cc__load_seq_cst(&q->ring.enq) & ~CC__RING_SHUT) > pos) {
        await_claimer(q, pos, 2 * pos + 1); /* filled */
        ret = try_get(q, item, &pos, false);
    }
    if (ret == -EAGAIN)
        ret = drained(&q->ring, pos) ? -ESHUTDOWN : -ETIMEDOUT;
    return ret;
}

int cc__ring_get(cc_queue *q, void **item, cc_deadline deadline)
{
    uint64_t pos;
    int ret = try_get(q, item, &pos, false);
    if (CC__LIKELY(ret == 0))
        return 0;
    if (drained(&q->ring, pos))
        ret = -ESHUTDOWN;
    else if (cc__deadline_passed(deadline))
        ret = get_now(q, item, pos);
    else
        ret = get_slow(q, item, deadline);
    if (ret == -ESHUTDOWN)
        wait_shutdowns(q);
    return ret;
}

size_t cc__ring_qsize(cc_queue *q)
{
    /* deq first: enq read later is at least as large, so no underflow. */
    uint64_t deq = cc__load_acq(&q->ring.deq);
    uint64_t n = enq_pos(&q->ring) - deq;
    return n > q->ring.cap ? q->ring.cap : n;
}

/* The tasks done, without the joiners' bit. */
static inline uint64_t done_count(uint64_t done)
{
    return done & ~CC__RING_JOINING;
}

/* task_done while a joiner may be parked: count under q->lock, so that a
 * joiner that sees the count without the lock waits for our unlock (our
 * wake is over when its join returns). */
static int task_done_locked(cc_queue *q)
{
    struct cc__ring *r = &q->ring;
    int ret = 0;
    cc__mutex_lock(&q->lock);
    uint64_t done = cc__load_relaxed(&r->done);
    do {
        if (done_count(done) >= enq_pos(r)) {
            ret = -EINVAL;
            break;
        }
        /* acq_rel: as task_done's; the joiners check under the lock. */
    } while (!cc__cas_weak(&r->done, &done, done + 1));
    if (ret == 0 && done_count(done) + 1 == enq_pos(r))
        cc__wake_all(&q->joiners, 0);
    cc__mutex_unlock(&q->lock);
    return ret;
}

int cc__ring_task_done(cc_queue *q)
{
    struct cc__ring *r = &q->ring;
    uint64_t done = cc__load_relaxed(&r->done);
    do {
        if (done & CC__RING_JOINING)
            return task_done_locked(q);
        if (done >= enq_pos(r))
            return -EINVAL;
        /* acq_rel: the CAS expects no joiner's bit, so it succeeds only
         * before a joiner announces itself (its fetch_or then reads our
         * count): nothing to wake, and nothing of q touched after it. */
    } while (!cc__cas_weak(&r->done, &done, done + 1));
    return 0;
}

/* Whether every task put is done. done first: enq only grows, and done <=
 * enq at all times, so equal values mean all were done at the first load. */
static bool all_done(struct cc__ring *r)
{
    uint64_t done = cc__load_acq(&r->done); /* acquire: the task_done's */
    return done_count(done) == enq_pos(r);
}

/* After seeing every task done: return once the last task_done (or an
 * immediate shutdown, which counts its drops done) is out of q. */
static void done_seen(cc_queue *q, bool held)
{
    if (!held)
        cc__mutex_wait_unlocked(&q->lock); /* a task_done_locked */
    if (cc__ring_is_shutdown(q)) {
        if (held)
            wait_shutdowns_held(q);
        else
            wait_shutdowns(q);
    }
}

/* Under q->lock: the first joiner sets the bit, which sends every
 * task_done to the lock (task_done_locked); the last one clears it. */
static void announce_joiner(struct cc__ring *r, bool in)
{
    /* relaxed (acq_rel for the sub: no relaxed macro; no need either):
     * the count is ours under the lock. */
    if (in && cc__fetch_add_relaxed(&r->join_waiters, 1) == 0)
        cc__fetch_or(&r->done, CC__RING_JOINING); /* acq_rel: an RMW */
    else if (!in && cc__fetch_sub(&r->join_waiters, 1) == 1)
        cc__fetch_and(&r->done, ~CC__RING_JOINING);
}

int cc__ring_join(cc_queue *q, cc_deadline deadline)
{
    struct cc__ring *r = &q->ring;
    if (all_done(r)) {
        done_seen(q, false);
        return 0;
    }
    int ret = 0;
    cc__mutex_lock(&q->lock);
    announce_joiner(r, true);
    while (ret == 0 && !all_done(r)) {
        cc__waiter w;
        cc__waiter_init(&w);
        ret = cc__deadline_passed(deadline)
                  ? -ETIMEDOUT
                  : cc__wait_on(&q->joiners, &q->lock, &w, deadline);
    }
    announce_joiner(r, false);
    if (ret == 0)
        done_seen(q, true);
    cc__mutex_unlock(&q->lock);
    return ret;
}

/* Remove every item (they and puts under way can no longer be got), passing
 * each to the destructor; returns how many. */
static uint64_t drop_all(cc_queue *q)
{
    struct cc__ring *r = &q->ring;
    uint64_t n = 0;
    for (;;) {
        void *item;
        uint64_t pos;
        if (try_get(q, &item, &pos, false) == 0) {
            if (q->dtor)
                q->dtor(item, q->dtor_arg);
            n++;
        } else if (enq_pos(r) <= pos) {
            return n;
        } else {
            cc_yield(); /* a put claimed a slot before the shutdown */
        }
    }
}

/* Count n dropped items done, but never past the puts: task_done may have
 * run ahead of the gets (Python decrements only while tasks are unfinished).
 * enq is frozen once shut down and drained of claims. Keeps the joiners'
 * bit: the joiners are woken when the shutdown ends. */
static void count_dropped_done(struct cc__ring *r, uint64_t n)
{
    uint64_t enq = enq_pos(r);
    uint64_t done = cc__load_relaxed(&r->done);
    uint64_t next;
    do {
        uint64_t count = done_count(done);
        next = (enq - count > n ? count + n : enq) |
               (done & CC__RING_JOINING);
        /* acq_rel: as task_done's. */
    } while (!cc__cas_weak(&r->done, &done, next));
}

/*
 * A shutdown counts itself in `shutting` from before it sets the bit until
 * its last wakeups: a caller that sees the bit waits for the count to fall
 * to 0 (wait_shutdowns), so that its caller may free q at once.
 */
void cc__ring_shutdown(cc_queue *q, bool immediate)
{
    struct cc__ring *r = &q->ring;
    cc__mutex_lock(&q->lock);
    r->shutting++;
    /* seq_cst: every put claims before this or sees it (the CAS fails). */
    cc__fetch_or_seq_cst(&r->enq, CC__RING_SHUT);
    cc__mutex_unlock(&q->lock);
    if (immediate) /* the destructor never runs under our lock */
        count_dropped_done(r, drop_all(q));
    cc__mutex_lock(&q->lock);
    r->shutting--;
    cc__wake_all(&q->getters, 0);
    cc__wake_all(&q->putters, 0);
    cc__queue_notify_held(q);
    cc__wake_all(&q->joiners, 0); /* joins, and waits in wait_shutdowns */
    cc__mutex_unlock(&q->lock);
}

/* enq first, seq_cst: the second half of a subscription's handshake
 * (queue_sub.c). A deq read later may pass that enq: then every item put
 * before our look is got already, and later puts see our count. */
bool cc__ring_ready(cc_queue *q)
{
    uint64_t enq = cc__load_seq_cst(&q->ring.enq);
    if (enq & CC__RING_SHUT)
        return true;
    return enq > cc__load_acq(&q->ring.deq);
}

bool cc__ring_is_shutdown(cc_queue *q)
{
    return (cc__load_acq(&q->ring.enq) & CC__RING_SHUT) != 0;
}

void cc__ring_destroy(cc_queue *q)
{
    struct cc__ring *r = &q->ring;
    if (q->dtor) {
        for (uint64_t pos = cc__load_relaxed(&r->deq); pos < enq_pos(r); pos++)
            q->dtor(cell_at(r, pos)->item, q->dtor_arg);
    }
    cc__free(r->cells, r->cap * sizeof *r->cells);
}
