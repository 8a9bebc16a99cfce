/*
 * ipc_impl.h: what the cross-process primitives (ipc_*.c) share. Not
 * installed.
 */
#ifndef CONCUR_IPC_IMPL_H
#define CONCUR_IPC_IMPL_H

#include "atomics.h"
#include "concur/ipc.h"

#include <pthread.h>

/*
 * cc__robust_mutex_init: a PTHREAD_PROCESS_SHARED, PTHREAD_MUTEX_ROBUST
 * mutex. Returns 0 or a negative errno of pthread_mutex_init.
 */
int cc__robust_mutex_init(pthread_mutex_t *m);

/*
 * cc__robust_mutex_lock: lock m before the deadline. Returns 0,
 * -EOWNERDEAD (owned now; repair, then pthread_mutex_consistent),
 * -ENOTRECOVERABLE, -ETIMEDOUT (never early, whatever CLOCK_REALTIME does),
 * -EDEADLK. Blocks the calling thread.
 */
int cc__robust_mutex_lock(pthread_mutex_t *m, cc_deadline deadline);

/*
 * cc__ipc_store_wake: in one futex call (FUTEX_WAKE_OP), apply op
 * (FUTEX_OP_SET, _ADD, _OR, _ANDN or _XOR of linux/futex.h) with oparg
 * (-2048 to 2047) to the shared futex word w, and wake every thread asleep
 * on it. The kernel does both under the word's futex lock, so a process
 * killed at any point did both or neither: a store that changes what
 * sleepers wait for can no longer be made without its wake. What the caller
 * wrote before is ordered before the store (a fence: release, as a
 * cc__store_rel, for the waiter that reads the new value). Never blocks.
 */
void cc__ipc_store_wake(cc__atomic_u32 *w, int op, int oparg);

/* The commits after which a test may make a process die (tests only). */
enum cc__ipc_commit {
    CC__IPC_QUEUE_PUT,   /* a queue put's commit of its message (locked) */
    CC__IPC_QUEUE_GET,   /* a queue get's commit of its removal (locked) */
    CC__IPC_EVENT_SET,   /* an event set's store of the flag */
    CC__IPC_SEM_RELEASE, /* a semaphore release's addition of its units */
    CC__IPC_BARRIER_END, /* the bump of a barrier's generation (locked) */
};

/*
 * Tests only: when set, a process calls it right after each commit above
 * (with the lock held where the commit is under one), so that a test can
 * make the process die there.
 */
extern _Atomic(void (*)(enum cc__ipc_commit)) cc__ipc_test_after_commit;

/* Call the test hook, if any, after the commit `where`. */
static inline void cc__ipc_after_commit(enum cc__ipc_commit where)
{
    /* relaxed: a test sets it in this process before the call */
    void (*hook)(enum cc__ipc_commit) =
        cc__load_relaxed(&cc__ipc_test_after_commit);
    if (hook)
        hook(where);
}

#endif
