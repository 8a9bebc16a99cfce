/*
 * wait.c: waiters, wait queues and the internal mutex (see wait.h for the design).
 */
#include "wait.h"

#include "loop_internal.h"

#include <errno.h>

/* Spins before sleeping: an idle vCPU takes ~20 us to wake (BENCHMARKS.md), so a
 * wakeup that arrives within a microsecond or two is cheaper to spin for. */
enum { CC__PARK_SPINS = 200, CC__MUTEX_SPINS = 100 };

void cc__mutex_lock_slow(cc__mutex *m)
{
    for (int i = 0; i < CC__MUTEX_SPINS; i++) {
        cc__cpu_relax();
        if (cc__load_relaxed(&m->state) == 0 && cc__mutex_trylock(m))
            return;
    }
    /* acquire: as in trylock. Setting 2 tells the holder there may be sleepers. */
    while (atomic_exchange_explicit(&m->state, 2, memory_order_acquire) != 0)
        cc__futex_wait(&m->state, 2, CC_FOREVER, false);
}

void cc__mutex_unlock_slow(cc__mutex *m)
{
    cc__futex_wake(&m->state, 1, false);
}

void cc__waiter_init(cc__waiter *w)
{
    cc__store_relaxed(&w->state, CC__WAITING);
    w->next = w->prev = NULL;
    w->linked = false;
    w->token = 0;
    w->context = cc__loop_task(); /* a task parks in its loop, not here */
}

int cc__waiter_park(cc__waiter *w, cc_deadline deadline)
{
    if (w->context)
        return cc__loop_park(w, deadline);
    /* acquire: pairs with the waker's release store of CC__WOKEN. */
    for (int i = 0; i < CC__PARK_SPINS; i++) {
        if (cc__load_acq(&w->state) != CC__WAITING)
            return 0;
        cc__cpu_relax();
    }
    while (cc__load_acq(&w->state) == CC__WAITING) {
        int r = cc__futex_wait(&w->state, CC__WAITING, deadline, false);
        if (r == -ETIMEDOUT)
            return cc__load_acq(&w->state) == CC__WAITING ? -ETIMEDOUT : 0;
    }
    return 0;
}

void cc__waiter_wake(cc__waiter *w)
{
    if (w->context) {
        cc__loop_wake(w); /* the same store, then its loop queues the task */
        return;
    }
    /* release: the token and the waker's writes happen-before the woken party's
     * return from park. After this store the waiter may be gone; futex_wake only
     * passes the address to the kernel, which tolerates a stale one (a spurious
     * wakeup that every futex sleeper already handles). */
    cc__store_rel(&w->state, CC__WOKEN);
    cc__futex_wake(&w->state, 1, false);
}

void cc__waitq_push(cc__waitq *q, cc__waiter *w)
{
    w->next = NULL;
    w->prev = q->tail;
    if (q->tail)
        q->tail->next = w;
    else
        q->head = w;
    q->tail = w;
    w->linked = true;
}

void cc__waitq_push_front(cc__waitq *q, cc__waiter *w)
{
    w->prev = NULL;
    w->next = q->head;
    if (q->head)
        q->head->prev = w;
    else
        q->tail = w;
    q->head = w;
    w->linked = true;
}

bool cc__waitq_remove(cc__waitq *q, cc__waiter *w)
{
    if (!w->linked)
        return false;
    if (w->prev)
        w->prev->next = w->next;
    else
        q->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        q->tail = w->prev;
    w->next = w->prev = NULL;
    w->linked = false;
    return true;
}

cc__waiter *cc__waitq_pop(cc__waitq *q)
{
    cc__waiter *w = q->head;
    if (w)
        cc__waitq_remove(q, w);
    return w;
}

/* Park w until its waker's store, whatever the task's cancellation or
 * deadline scopes say: the waker is at work, and w's frame must outlive it. */
static void park_until_woken(cc__waiter *w)
{
    struct cc__protect p;
    cc__protect_begin(&p);
    cc__waiter_park(w, CC_FOREVER);
    cc__protect_end(&p);
}

int cc__wait_on(cc__waitq *q, cc__mutex *m, cc__waiter *w, cc_deadline deadline)
{
    cc__waitq_push(q, w);
    cc__mutex_unlock(m);
    int r = cc__waiter_park(w, deadline);
    cc__mutex_lock(m);
    if (r == 0 || !w->linked) {
        /* A waker unlinked us first; it may not have stored CC__WOKEN yet, and
         * our frame must outlive that store. Not with m held: a task parked
         * so would block the next task of its loop that takes m, and the
         * loop thread with it (the wake then never runs the task).
         * acquire: pairs with the waker's release store of CC__WOKEN. */
        if (r != 0 && cc__load_acq(&w->state) == CC__WAITING) {
            cc__mutex_unlock(m);
            park_until_woken(w);
            cc__mutex_lock(m);
        }
        return 0;
    }
    cc__waitq_remove(q, w);
    return r; /* -ETIMEDOUT, or -ECANCELED for a cancelled task */
}

int cc__wake_one(cc__waitq *q, uintptr_t token)
{
    cc__waiter *w = cc__waitq_pop(q);
    if (!w)
        return 0;
    w->token = token;
    cc__waiter_wake(w);
    return 1;
}

int cc__wake_all(cc__waitq *q, uintptr_t token)
{
    int n = 0;
    while (cc__wake_one(q, token))
        n++;
    return n;
}
