/*
 * sync_impl.h: the private layouts behind the public structs of concur/sync.h,
 * shared by lock.c, cond.c, semaphore.c, event.c and barrier.c. Not installed.
 *
 * The public structs spell their private fields with plain types so that the
 * header needs neither stdatomic.h nor src/wait.h; each source file views the
 * same bytes through the matching struct below, whose layout the static
 * assertions pin to the public one. Every field is only ever accessed through
 * these views.
 */
#ifndef CONCUR_SYNC_IMPL_H
#define CONCUR_SYNC_IMPL_H

#include "concur/sync.h"

#include "loop_internal.h"
#include "wait.h"

#include <pthread.h>
#include <stddef.h>

/* Mirror of struct cc__wait_storage: a guard and the wait queue it guards. */
struct cc__waitblock {
    cc__mutex guard; /* held for a few instructions around queue changes */
    cc__waitq q;     /* the parked waiters, FIFO */
};

_Static_assert(sizeof(struct cc__waitblock) == sizeof(struct cc__wait_storage),
               "wait storage size");
_Static_assert(_Alignof(struct cc__waitblock) == _Alignof(struct cc__wait_storage),
               "wait storage alignment");
_Static_assert(offsetof(struct cc__waitblock, q) ==
                   offsetof(struct cc__wait_storage, head_),
               "wait storage layout");

/* The caller's identity for owner fields: never 0, unique among live threads
 * and tasks. In a task of an event loop it is the task (tasks of one thread
 * must not share an rlock's ownership), else the thread (pthread_self() is the
 * address of the thread's descriptor). */
static inline uintptr_t cc__self_id(void)
{
    struct cc__task *t = cc__loop_task();
    return t ? (uintptr_t)t : (uintptr_t)pthread_self();
}

/* For a destroy, under wb's guard: wait, yielding without the guard, until
 * `inside` (threads in a wait, counted under the guard) is 0. The released
 * ones still take the guard on their way out, so the memory may go only
 * then (POSIX lets a condition or barrier die as soon as a wait returns). */
static inline void cc__await_leavers(struct cc__waitblock *wb,
                                     const uint32_t *inside)
{
    while (*inside > 0) {
        cc__mutex_unlock(&wb->guard);
        cc_yield();
        cc__mutex_lock(&wb->guard);
    }
}

/* Internal to cond.c: release an rlock whatever its count, returning the count;
 * take it back with that count. The caller holds it / nobody checks. */
uint32_t cc__rlock_release_all(cc_rlock *rlock);
void cc__rlock_acquire_restore(cc_rlock *rlock, uint32_t count);

#endif
