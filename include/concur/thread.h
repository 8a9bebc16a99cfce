/*
 * concur/thread.h: OS threads with names, deadlines on join, daemon semantics and
 * thread-local values (Python's threading.Thread, current_thread, local).
 *
 * Lifetime of a handle. cc_thread_start() allocates a cc_thread; it is freed by
 * the cc_thread_join() that returns 0, or, for a detached thread, by the thread
 * itself when its body returns. A handle from cc_thread_current() for a thread
 * that concur did not start (the main thread, a thread of another library) lives
 * in that thread's thread-local storage and dies with the thread; it cannot be
 * joined or detached.
 *
 * Process exit (as Python's threading._shutdown). When the process exits through
 * exit() or a return from main(), it first waits for every thread started with
 * daemon == false whose body has not returned, joined or not, detached or not.
 * Daemon threads are not waited for; they are killed with the process.
 * _exit() and a fatal signal wait for nobody. exit() from a concur thread
 * (unlike Python's sys.exit, which ends only that thread) ends the process
 * the same way, but that thread is not waited for, nor are non-daemon
 * threads parked in cc_thread_join on it: such a join never returns (one
 * with a deadline times out, and its thread is waited for again).
 *
 * A thread body must return normally: pthread_exit() or cancellation inside a
 * concur thread skip its bookkeeping, and a join on it would then never succeed.
 */
#ifndef CONCUR_THREAD_H
#define CONCUR_THREAD_H

#include "base.h"

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cc_thread cc_thread;

/* The body of a thread: its return value is handed to cc_thread_join(). */
typedef void *(*cc_thread_fn)(void *arg);

typedef struct cc_thread_options {
    const char *name;  /* shown by the OS (first 15 bytes); NULL: "concur-N" */
    bool daemon;       /* true: not waited for at process exit (Python's daemon) */
    size_t stack_size; /* bytes; 0: the system default */
} cc_thread_options;

/*
 * cc_thread_start: start an OS thread running fn(arg) (Python's
 * threading.Thread(target=fn, args=(arg,), name=..., daemon=...).start()).
 *   out:  receives the handle (join it or detach it, exactly once).
 *   opts: NULL for the defaults (name "concur-N", not a daemon, default stack).
 *         The name is copied; the OS sees its first 15 bytes (pthread_setname_np),
 *         cc_thread_name() returns it whole.
 * Like Python's Thread.start(), returns only once the thread runs: its name is
 * set and cc_thread_native_id() is known by then.
 * Returns 0, -ENOMEM (no memory for the handle), -EAGAIN (the system cannot
 * start another thread), -EINVAL (stack_size too small or not acceptable).
 * On failure *out is untouched and no thread runs. Blocks briefly (until the new
 * thread starts). Thread safe.
 */
int cc_thread_start(cc_thread **out, cc_thread_fn fn, void *arg,
                    const cc_thread_options *opts);

/*
 * cc_thread_join: wait until t's body has returned, then store its return value
 * in *result (if result is not NULL) and free t (Python's Thread.join(timeout),
 * with the result of pthread_join).
 *   deadline: CC_FOREVER, CC_NOWAIT, or an absolute cc_now() time in ns.
 * Returns 0 (t is freed: do not use it again), -ETIMEDOUT (the body still runs
 * at the deadline; t stays valid and may be joined or detached later),
 * -EDEADLK (t is the calling thread; Python raises RuntimeError), -EINVAL (t
 * was detached and still runs, or concur did not start it, e.g. the main
 * thread's handle; a detached thread that ended has no handle left to pass),
 * or in a task (loop.h), -ECANCELED when the task is cancelled (t stays
 * valid, as for -ETIMEDOUT).
 * Blocks through concur's wait queues (a coroutine waiting here will not block
 * its event loop). Not thread safe on one handle: at most one thread may join or
 * detach a given thread, once it has succeeded the handle is gone.
 */
int cc_thread_join(cc_thread *t, cc_deadline deadline, void **result);

/*
 * cc_thread_detach: give up the right to join t; its handle is freed when its
 * body returns, its result is dropped (pthread_detach; Python has no such call).
 * A non-daemon detached thread is still waited for at process exit.
 * Returns 0 (do not use t again unless you are t itself), -EINVAL (already
 * detached, or not started by concur). Never blocks for long (a thread whose
 * body has already returned is reaped at once). Not thread safe on one handle,
 * as cc_thread_join.
 */
int cc_thread_detach(cc_thread *t);

/*
 * cc_thread_current: the handle of the calling thread (Python's
 * threading.current_thread()). Threads that concur did not start get a handle
 * lazily, without allocating: "MainThread" for the process's main thread,
 * "Dummy-N" for the others (as Python). Never fails, never blocks. The handle of
 * a detached concur thread must not be used after its body returns.
 */
cc_thread *cc_thread_current(void);

/*
 * cc_thread_name: t's name, whole (the OS shows its first 15 bytes). The string
 * lives as long as the handle. Never fails, never blocks; thread safe.
 */
const char *cc_thread_name(const cc_thread *t);

/*
 * cc_thread_native_id: t's kernel thread id (gettid(); the name of the
 * /proc/self/task/<tid> directory), as Python's Thread.native_id. Stays valid
 * after the thread ends (the kernel may then reuse the number). Never fails,
 * never blocks; thread safe.
 */
int cc_thread_native_id(const cc_thread *t);

/*
 * cc_thread_is_alive: whether t's body is still running (Python's
 * Thread.is_alive()). Always true for a handle of a thread not started by
 * concur, as seen from that thread. Never blocks; thread safe.
 */
bool cc_thread_is_alive(cc_thread *t);

/*
 * cc_thread_is_daemon: whether t is a daemon thread (Python's Thread.daemon):
 * as given at start; "MainThread" is not a daemon, "Dummy-N" threads are.
 * Never blocks; thread safe.
 */
bool cc_thread_is_daemon(const cc_thread *t);

/* ---- thread-local values ------------------------------------------------- */

/*
 * A thread-local slot (Python's threading.local, one attribute of it): each
 * thread sees its own value, NULL until it sets one. pthread keys underneath.
 */
typedef struct cc_thread_local cc_thread_local;

/*
 * cc_thread_local_new: make a slot.
 *   destructor: NULL, or called with a thread's value when that thread ends
 *               with a non-NULL value in the slot (as pthread key destructors:
 *               also for threads concur did not start; not for the main thread
 *               at process exit, nor for threads still running at exit).
 * Returns 0, -ENOMEM, -EAGAIN (the process's pthread keys are exhausted).
 * Free the slot with cc_thread_local_free(). Never blocks; thread safe.
 */
int cc_thread_local_new(cc_thread_local **out, void (*destructor)(void *value));

/* cc_thread_local_get: the calling thread's value in the slot, or NULL.
 * Never fails, never blocks; thread safe. */
void *cc_thread_local_get(const cc_thread_local *local);

/*
 * cc_thread_local_set: set the calling thread's value (NULL clears it; the
 * destructor is not called for a replaced value). Returns 0 or -ENOMEM (the
 * first value a thread stores may allocate). Never blocks; thread safe.
 */
int cc_thread_local_set(cc_thread_local *local, void *value);

/*
 * cc_thread_local_free: free the slot. Destructors are not run for the values
 * still stored in it (free them first if they own memory). No thread may use
 * the slot afterwards. Never blocks.
 */
void cc_thread_local_free(cc_thread_local *local);

#ifdef __cplusplus
}
#endif
#endif
