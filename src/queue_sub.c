/*
 * queue_sub.c: subscriptions to a queue's readiness ("a get would not block
 * now"), which let cc_wait_any (wait_any.c) wait on queues beside futures,
 * fds, timers and child processes.
 *
 * DESIGN. A subscription is a node in the waiter's own memory, linked on
 * q->subs under q->lock. It is not a getter: it never takes an item and is
 * never handed a getter's wakeup. A put wakes one real getter as before and
 * then fires every subscription (unlinking it), so a blocked cc_queue_get
 * and a cc_wait_any on the same queue both wake; a shutdown fires them too.
 * The locked queue puts under q->lock, so a check under the lock is exact.
 * The lock-free ring puts without the lock: a subscription counts itself in
 * ring.get_waiters, the counter every put already reads (seq_cst) right
 * after claiming its slot, so the ring's fast path gains no instruction.
 * Either the put sees the count and takes the lock to fire us, or our check
 * after counting sees its claim on enq (seq_cst on both sides, as getters).
 */
#include "queue_impl.h"

static void link_sub(cc_queue *q, cc__queue_sub *s)
{
    s->prev = NULL;
    s->next = q->subs;
    if (q->subs)
        q->subs->prev = s;
    q->subs = s;
    s->linked = true;
    if (q->ring_mode) /* seq_cst: announce before looking (see DESIGN) */
        cc__fetch_add_seq_cst(&q->ring.get_waiters, 1);
}

static void unlink_sub(cc_queue *q, cc__queue_sub *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        q->subs = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->linked = false;
    if (q->ring_mode) /* the count is a hint to puts; no order needed */
        cc__fetch_sub(&q->ring.get_waiters, 1);
}

bool cc__queue_ready(cc_queue *q)
{
    if (q->ring_mode)
        return cc__ring_ready(q);
    cc__mutex_lock(&q->lock);
    bool ready = cc__queue_ready_held(q);
    cc__mutex_unlock(&q->lock);
    return ready;
}

bool cc__queue_subscribe(cc_queue *q, cc__queue_sub *s)
{
    cc__mutex_lock(&q->lock);
    link_sub(q, s);
    bool ready = q->ring_mode ? cc__ring_ready(q) : cc__queue_ready_held(q);
    if (ready)
        unlink_sub(q, s);
    cc__mutex_unlock(&q->lock);
    return !ready;
}

void cc__queue_unsubscribe(cc_queue *q, cc__queue_sub *s)
{
    cc__mutex_lock(&q->lock);
    if (s->linked)
        unlink_sub(q, s);
    cc__mutex_unlock(&q->lock);
}

void cc__queue_notify_held(cc_queue *q)
{
    while (q->subs) {
        cc__queue_sub *s = q->subs;
        unlink_sub(q, s);
        s->notify(s, q); /* s is its owner's again: not touched after */
    }
}
