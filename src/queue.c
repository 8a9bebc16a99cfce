/*
 * queue.c: the public queue calls, and the locked queue behind every kind but
 * the small bounded FIFO (queue_ring.c).
 *
 * DESIGN. A locked queue is Python's queue.Queue in C: one short cc__mutex
 * guards the container (queue_store.c), the unfinished-task count and the
 * shutdown flag; callers that must wait park on one of three wait queues
 * (getters, putters, joiners) through cc__wait_on, which drops the mutex while
 * parked. A put wakes one getter, a get wakes one putter (each wakeup is
 * handed to exactly one waiter, who re-checks under the lock), the last
 * task_done wakes every joiner, and shutdown wakes everyone. An immediate
 * shutdown detaches the container under the lock and destroys the dropped
 * items after releasing it, so the destructor never runs under our lock.
 */
#include "queue_impl.h"

#include <errno.h>
#include <string.h>

static void *alloc_aligned(size_t size, void **mem)
{
    *mem = cc__malloc(size + CC__CACHE_LINE - 1);
    if (!*mem)
        return NULL;
    uintptr_t p = ((uintptr_t)*mem + CC__CACHE_LINE - 1) &
                  ~(uintptr_t)(CC__CACHE_LINE - 1);
    return memset((void *)p, 0, size);
}

int cc_queue_new(cc_queue **qp, cc_queue_kind kind, size_t maxsize)
{
    if (!qp || (unsigned)kind > CC_QUEUE_PRIORITY)
        return -EINVAL;
    void *mem;
    cc_queue *q = alloc_aligned(sizeof *q, &mem);
    if (!q)
        return -ENOMEM;
    q->mem = mem;
    q->mem_size = sizeof *q + CC__CACHE_LINE - 1;
    q->kind = kind;
    q->maxsize = maxsize;
    q->ring_mode = kind == CC_QUEUE_FIFO && maxsize > 0 &&
                   maxsize <= CC_QUEUE_RING_MAX;
    if (q->ring_mode) {
        int r = cc__ring_init(q, maxsize);
        if (r < 0) {
            cc__free(mem, q->mem_size);
            return r;
        }
    } else {
        cc__store_init(&q->locked.store, kind);
    }
    *qp = q;
    return 0;
}

void cc_queue_free(cc_queue *q)
{
    if (!q)
        return;
    if (q->ring_mode)
        cc__ring_destroy(q);
    else
        cc__store_destroy(&q->locked.store, q->dtor, q->dtor_arg);
    cc__free(q->mem, q->mem_size);
}

void cc_queue_set_destructor(cc_queue *q, cc_queue_destructor fn, void *arg)
{
    cc__mutex_lock(&q->lock);
    q->dtor = fn;
    q->dtor_arg = fn ? arg : NULL;
    cc__mutex_unlock(&q->lock);
}

size_t cc_queue_maxsize(const cc_queue *q) { return q->maxsize; }

/* ---- the locked queue ---------------------------------------------------- */

static bool locked_is_full(cc_queue *q)
{
    return q->maxsize > 0 && q->locked.store.count >= q->maxsize;
}

/* Park on wq under q->lock; the caller re-checks its condition. */
static int park(cc_queue *q, cc__waitq *wq, cc_deadline deadline)
{
    cc__waiter w;
    cc__waiter_init(&w);
    return cc__wait_on(wq, &q->lock, &w, deadline);
}

/* Under q->lock: wait for room, then push. */
static int locked_put_held(cc_queue *q, void *item, int64_t prio,
                           cc_deadline deadline)
{
    struct cc__locked *l = &q->locked;
    for (;;) {
        /* relaxed: shut is only written under the lock we hold. */
        if (cc__load_relaxed(&l->shut))
            return -ESHUTDOWN;
        if (!locked_is_full(q))
            break;
        if (cc__deadline_passed(deadline))
            return -ETIMEDOUT;
        int r = park(q, &q->putters, deadline);
        if (r < 0)
            return r;
    }
    int r = cc__store_push(&l->store, item, prio);
    if (r < 0) {
        cc__wake_one(&q->putters, 0); /* pass on a wakeup we may have taken */
        return r;
    }
    l->unfinished++;
    cc__wake_one(&q->getters, 0);
    if (q->subs)
        cc__queue_notify_held(q); /* besides the getter, not instead */
    return 0;
}

static int locked_put(cc_queue *q, void *item, int64_t prio,
                      cc_deadline deadline)
{
    cc__mutex_lock(&q->lock);
    int r = locked_put_held(q, item, prio, deadline);
    cc__mutex_unlock(&q->lock);
    return r;
}

/* Under q->lock: wait for an item, then pop it. */
static int locked_get_held(cc_queue *q, void **item, cc_deadline deadline)
{
    struct cc__locked *l = &q->locked;
    while (l->store.count == 0) {
        if (cc__load_relaxed(&l->shut))
            return -ESHUTDOWN;
        if (cc__deadline_passed(deadline))
            return -ETIMEDOUT;
        int r = park(q, &q->getters, deadline);
        if (r < 0)
            return r;
    }
    *item = cc__store_pop(&l->store);
    cc__wake_one(&q->putters, 0);
    return 0;
}

static int locked_get(cc_queue *q, void **item, cc_deadline deadline)
{
    cc__mutex_lock(&q->lock);
    int r = locked_get_held(q, item, deadline);
    cc__mutex_unlock(&q->lock);
    return r;
}

static int locked_task_done(cc_queue *q)
{
    int r = 0;
    cc__mutex_lock(&q->lock);
    if (q->locked.unfinished == 0)
        r = -EINVAL;
    else if (--q->locked.unfinished == 0)
        cc__wake_all(&q->joiners, 0);
    cc__mutex_unlock(&q->lock);
    return r;
}

static int locked_join(cc_queue *q, cc_deadline deadline)
{
    int r = 0;
    cc__mutex_lock(&q->lock);
    while (r == 0 && q->locked.unfinished > 0)
        r = cc__deadline_passed(deadline) ? -ETIMEDOUT
                                          : park(q, &q->joiners, deadline);
    cc__mutex_unlock(&q->lock);
    return r;
}

/* Under q->lock: detach the items into *dropped and count them done. */
static void locked_drop_held(cc_queue *q, struct cc__store *dropped)
{
    struct cc__locked *l = &q->locked;
    *dropped = l->store;
    cc__store_init(&l->store, q->kind);
    l->store.seq = dropped->seq;
    l->unfinished -= dropped->count < l->unfinished ? dropped->count
                                                    : l->unfinished;
    cc__wake_all(&q->joiners, 0);
}

bool cc__queue_ready_held(cc_queue *q)
{
    /* relaxed: shut is only written under the lock we hold. */
    return q->locked.store.count > 0 || cc__load_relaxed(&q->locked.shut);
}

static void locked_shutdown(cc_queue *q, bool immediate)
{
    struct cc__store dropped;
    cc__store_init(&dropped, q->kind);
    cc__mutex_lock(&q->lock);
    /* Read under the lock: a getter woken below may free q at once. */
    cc_queue_destructor dtor = q->dtor;
    void *dtor_arg = q->dtor_arg;
    /* relaxed: readers under the lock are ordered by it; is_shutdown is a
     * snapshot. */
    cc__store_relaxed(&q->locked.shut, 1);
    if (immediate)
        locked_drop_held(q, &dropped);
    cc__wake_all(&q->getters, 0);
    cc__wake_all(&q->putters, 0);
    cc__queue_notify_held(q);
    cc__mutex_unlock(&q->lock);
    cc__store_destroy(&dropped, dtor, dtor_arg);
}

/* ---- public calls: dispatch ---------------------------------------------- */

int cc_queue_put(cc_queue *q, void *item, cc_deadline deadline)
{
    if (CC__LIKELY(q->ring_mode))
        return cc__ring_put(q, item, deadline);
    return locked_put(q, item, 0, deadline);
}

int cc_queue_put_priority(cc_queue *q, void *item, int64_t priority,
                          cc_deadline deadline)
{
    if (q->kind != CC_QUEUE_PRIORITY)
        return -EINVAL;
    return locked_put(q, item, priority, deadline);
}

int cc_queue_get(cc_queue *q, void **item, cc_deadline deadline)
{
    if (CC__LIKELY(q->ring_mode))
        return cc__ring_get(q, item, deadline);
    return locked_get(q, item, deadline);
}

size_t cc_queue_qsize(cc_queue *q)
{
    if (q->ring_mode)
        return cc__ring_qsize(q);
    cc__mutex_lock(&q->lock);
    size_t n = q->locked.store.count;
    cc__mutex_unlock(&q->lock);
    return n;
}

bool cc_queue_empty(cc_queue *q) { return cc_queue_qsize(q) == 0; }

bool cc_queue_full(cc_queue *q)
{
    return q->maxsize > 0 && cc_queue_qsize(q) >= q->maxsize;
}

int cc_queue_task_done(cc_queue *q)
{
    return q->ring_mode ? cc__ring_task_done(q) : locked_task_done(q);
}

int cc_queue_join(cc_queue *q, cc_deadline deadline)
{
    return q->ring_mode ? cc__ring_join(q, deadline) : locked_join(q, deadline);
}

void cc_queue_shutdown(cc_queue *q, bool immediate)
{
    if (q->ring_mode)
        cc__ring_shutdown(q, immediate);
    else
        locked_shutdown(q, immediate);
}

bool cc_queue_is_shutdown(cc_queue *q)
{
    if (q->ring_mode)
        return cc__ring_is_shutdown(q);
    return cc__load_relaxed(&q->locked.shut) != 0;
}
