/*
 * ipc_impl.h: what the cross-process primitives (ipc_*.c) share. Not
 * installed.
 */
#ifndef CONCUR_IPC_IMPL_H
#define CONCUR_IPC_IMPL_H

#include "concur/ipc.h"

#include <pthread.h>
#include <stdbool.h>

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
 * Tests only: when set, a process's put (put true) or get (false) of an
 * ipc queue calls it right after its commit, with the queue's lock held,
 * so that a test can make the process die there.
 */
extern _Atomic(void (*)(bool put)) cc__ipc_queue_test_after_commit;

#endif
