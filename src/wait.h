/*
 * wait.h: the one way to wait (DESIGN.md). Every blocking operation of concur parks
 * a cc__waiter on a cc__waitq until another party wakes it or its deadline passes.
 *
 * How it works. A primitive (lock, queue, future...) keeps its state and a wait
 * queue under a short internal cc__mutex. To block, the caller links a waiter (on
 * its own stack) to the queue, drops the mutex, and parks. A waker takes the mutex,
 * unlinks waiters (so each wakeup is delivered to exactly one waiter: no lost and no
 * doubled wakeups), may hand each a token, and wakes them, with or without the mutex
 * held. A waiter whose deadline passes relocks the mutex: still linked means it
 * timed out and unlinks itself; unlinked means a waker chose it first, and the
 * wakeup is consumed as a success.
 *
 * Today a waiter is an OS thread parked on a futex. A coroutine (issue 4) is the
 * same waiter with `context` set: park switches to its event loop instead of
 * sleeping, wake schedules it on its loop. Primitives never see the difference.
 */
#ifndef CONCUR_WAIT_H
#define CONCUR_WAIT_H

#include "atomics.h"
#include "internal.h"

#include <stdbool.h>
#include <stdint.h>

/* ---- internal mutex: short critical sections only ------------------------ */

/*
 * cc__mutex: a three-state futex mutex (0 free, 1 locked, 2 locked with sleepers),
 * after Drepper's "Futexes are tricky". It guards the state of concur's primitives
 * for a few dozen instructions at a time; it is never held across a park.
 * Zero-initialised memory is an unlocked mutex.
 */
typedef struct cc__mutex {
    cc__atomic_u32 state; /* 0, 1 or 2 as above */
} cc__mutex;

#define CC__MUTEX_INIT {0}

void cc__mutex_lock_slow(cc__mutex *m);
void cc__mutex_unlock_slow(cc__mutex *m);

static inline bool cc__mutex_trylock(cc__mutex *m)
{
    uint32_t expected = 0;
    /* acquire: the critical section must see the previous holder's writes. */
    return atomic_compare_exchange_strong_explicit(
        &m->state, &expected, 1, memory_order_acquire, memory_order_relaxed);
}

static inline void cc__mutex_lock(cc__mutex *m)
{
    if (CC__LIKELY(cc__mutex_trylock(m)))
        return;
    cc__mutex_lock_slow(m);
}

static inline void cc__mutex_unlock(cc__mutex *m)
{
    /* release: publish the critical section's writes to the next holder. */
    if (CC__LIKELY(cc__xchg_rel(&m->state, 0) == 1))
        return;
    cc__mutex_unlock_slow(m);
}

/*
 * cc__mutex_wait_unlocked: return once whoever holds m now has released it.
 * For a caller that saw, without m, a change that another party made under m
 * (an event's flag, a semaphore's unit) and may destroy the object as soon as
 * it returns: that party's last access is its unlock's exchange (a futex_wake
 * after it only passes the address, which may be stale: see
 * cc__waiter_wake). Costs one load when m is free.
 */
static inline void cc__mutex_wait_unlocked(cc__mutex *m)
{
    /* acquire: pairs with the unlock's release exchange. Seeing the change
     * made under m, we see m at least as taken by its maker; 0 is its
     * unlock. */
    if (CC__LIKELY(cc__load_acq(&m->state) == 0))
        return;
    cc__mutex_lock(m);
    cc__mutex_unlock(m);
}

/* ---- waiters and wait queues --------------------------------------------- */

enum {
    CC__WAITING = 0, /* parked or about to park */
    CC__WOKEN = 1,   /* a waker has chosen this waiter; it may run */
};

typedef struct cc__waiter {
    cc__atomic_u32 state;      /* CC__WAITING until the waker stores CC__WOKEN
                                  (release: the token and the waker's writes are
                                  visible to the woken party) */
    struct cc__waiter *next;   /* links in a cc__waitq, under its owner's mutex */
    struct cc__waiter *prev;   /* likewise */
    bool linked;               /* on a cc__waitq; under the owner's mutex */
    uintptr_t token;           /* value handed over by the waker, or 0 */
    void *context;             /* the coroutine to resume; NULL for a thread */
} cc__waiter;

/* A FIFO of waiters; zero-initialised memory is an empty queue. */
typedef struct cc__waitq {
    cc__waiter *head; /* first to wake */
    cc__waiter *tail; /* last linked */
} cc__waitq;

/* cc__waiter_init: prepare a waiter for the calling thread, or for the
 * running task of an event loop (then context is the task: loop.c). */
void cc__waiter_init(cc__waiter *w);

/*
 * cc__waiter_park: block until the waiter is woken (0) or the deadline passes
 * (-ETIMEDOUT). Spins briefly before sleeping. Does not touch any wait queue.
 */
int cc__waiter_park(cc__waiter *w, cc_deadline deadline);
/* (A task's park also fails with -ECANCELED when the task is cancelled, and
 * with -ETIMEDOUT at the deadline of its deadline scopes: loop_cancel.c.) */

/*
 * cc__waiter_wake: mark the waiter woken and wake it. After the store the waker
 * never touches the waiter's memory again: the waiter may return at once and its
 * stack frame be reused.
 */
void cc__waiter_wake(cc__waiter *w);

static inline bool cc__waitq_empty(const cc__waitq *q) { return q->head == NULL; }

/* Link w at the tail / head. Under the owner's mutex. */
void cc__waitq_push(cc__waitq *q, cc__waiter *w);
void cc__waitq_push_front(cc__waitq *q, cc__waiter *w);
/* Unlink and return the head, or NULL. Under the owner's mutex. */
cc__waiter *cc__waitq_pop(cc__waitq *q);
/* Unlink w if linked; returns whether it was. Under the owner's mutex. */
bool cc__waitq_remove(cc__waitq *q, cc__waiter *w);

/*
 * cc__wait_on: the blocking step of every primitive. Called with m held: links w
 * to q, releases m, parks until woken or the deadline, then relocks m. Returns 0
 * if a waker chose w (its token is in w->token), -ETIMEDOUT if the deadline passed
 * first, -ECANCELED if the waiting task was cancelled (w is then unlinked). Returns with m held either way.
 */
int cc__wait_on(cc__waitq *q, cc__mutex *m, cc__waiter *w, cc_deadline deadline);

/*
 * cc__wake_one / cc__wake_all: unlink and wake the first waiter / every waiter,
 * handing each `token`. Under the owner's mutex. Return the number woken.
 */
int cc__wake_one(cc__waitq *q, uintptr_t token);
int cc__wake_all(cc__waitq *q, uintptr_t token);

#endif
