/*
 * concur/future.h: tasks and futures, waiting on many futures, as-completed
 * (Python's concurrent.futures.Future, wait and as_completed).
 *
 * A future holds the outcome of a task that may not have run yet. Its state moves
 * pending -> running -> finished, or pending -> cancelled; finished and cancelled
 * are "done" and final. Executors (executor.h) make futures; programs may also make
 * their own (cc_future_new) and complete them by hand, as Python's executors do.
 * A cancelled future is done, for waiters and as-completed too, from the moment
 * it is cancelled (Python's wait() notices only when the executor gets to it).
 *
 * Futures are reference counted: whoever makes one (cc_future_new, an executor's
 * submit) gets one reference, released with cc_future_release.
 *
 * Thread safety: every function here may be called from any thread, concurrently,
 * on the same future (base.h), except where a docstring says otherwise.
 */
#ifndef CONCUR_FUTURE_H
#define CONCUR_FUTURE_H

#include "base.h"

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- tasks ---------------------------------------------------------------- */

/*
 * cc_task_fn: the function type of every task concur runs (thread pool now;
 * coroutines and process pools later). Returns 0 and sets *result (which is NULL
 * on entry) on success, or a negative errno: the task's error, kept in its future.
 * A positive return is a bug in the task; it is recorded as -EINVAL.
 */
typedef int (*cc_task_fn)(void *arg, void **result);

/*
 * cc_task_set_error_message: attach a printf-style message to the error the
 * calling task is about to return. The message is kept in the task's future
 * (cc_future_error_message) when the task returns < 0 and dropped otherwise; a
 * second call replaces the first. Outside a task it does nothing. Never blocks;
 * on allocation failure the message is silently lost.
 */
void cc_task_set_error_message(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* ---- futures ------------------------------------------------------------- */

typedef struct cc_future cc_future;

/*
 * cc_future_new: make a pending future with one reference, given to the caller
 * (release it with cc_future_release). Returns 0, or -ENOMEM. Never blocks.
 */
int cc_future_new(cc_future **out);

/* cc_future_retain: take one more reference; returns f. Never blocks. */
cc_future *cc_future_retain(cc_future *f);

/*
 * cc_future_release: drop one reference; the last one frees the future (and its
 * error message). NULL is ignored. Never blocks. The task of a future still
 * queued in an executor keeps its own reference: releasing yours never cancels.
 */
void cc_future_release(cc_future *f);

/*
 * cc_future_cancel: cancel the future if it is pending (its task has not started):
 * it becomes cancelled and done, its waiters wake and its done callbacks run in
 * this thread. Returns true if the future is cancelled (now or before), false if
 * it is running or finished (as Python's Future.cancel). Exception: an executor
 * may stop a running task (the process pool with kill_on_cancel kills its
 * worker, procpool.h): then true, and the future fails with -ECANCELED.
 * Never blocks.
 */
bool cc_future_cancel(cc_future *f);

/* State queries, as Python's Future.cancelled / running / done. Never block. */
bool cc_future_cancelled(const cc_future *f);
bool cc_future_running(const cc_future *f);
bool cc_future_done(const cc_future *f); /* finished or cancelled */

/*
 * cc_future_wait: block until the future is done or the deadline passes.
 * Returns 0 when done, -ETIMEDOUT at the deadline (never before), or, in a
 * task (loop.h), -ECANCELED when the task is cancelled (or -ETIMEDOUT when a
 * deadline scope ends). Blocks, parking a task (CC_NOWAIT polls). Thread safe.
 */
int cc_future_wait(cc_future *f, cc_deadline deadline);

/*
 * cc_future_result: wait as cc_future_wait, then give the outcome: 0 with *out set
 * to the task's result; the task's negative errno; -ECANCELED if cancelled;
 * -ETIMEDOUT if the deadline passed first (as Python's Future.result(timeout)).
 * A task may itself fail with -ETIMEDOUT or -ECANCELED: where that matters, call
 * cc_future_wait first, then cc_future_result(f, CC_NOWAIT, ...). out may be NULL.
 * Blocks.
 */
int cc_future_result(cc_future *f, cc_deadline deadline, void **out);

/*
 * cc_future_error: the outcome of a done future, without blocking: 0 if it
 * finished with a result, the task's negative errno if it failed, -ECANCELED if
 * cancelled, -EAGAIN if it is not done yet (check cc_future_done when the task may
 * itself return -EAGAIN). As Python's Future.exception(timeout=0).
 */
int cc_future_error(const cc_future *f);

/*
 * cc_future_error_message: the message of a failed future (set by
 * cc_task_set_error_message or cc_future_set_error), or NULL if it has none, has
 * not failed, or is not done. Owned by the future: valid while you hold a
 * reference. Never blocks.
 */
const char *cc_future_error_message(const cc_future *f);

/*
 * cc_future_set_running_or_notify_cancel: for executors and hand-made futures, as
 * Python's method of that name: a pending future becomes running (true); a
 * cancelled one stays cancelled (false: do not run the task). Its waiters were
 * already notified by cc_future_cancel. A future already running or finished also
 * gives false. Never blocks.
 */
bool cc_future_set_running_or_notify_cancel(cc_future *f);

/*
 * cc_future_set_result / cc_future_set_error: complete a pending or running future
 * with a result / with an error (err < 0) and an optional message (copied; NULL
 * for none). Waiters wake; done callbacks run in the calling thread before the
 * call returns. Return 0, or -EINVAL if the future is already done (Python's
 * InvalidStateError) or err >= 0. set_error keeps the error without its message
 * when copying the message fails. The caller must hold a reference of its
 * own: a waiter may release its reference as soon as the future is done,
 * while these still run. Never block (beyond the callbacks).
 */
int cc_future_set_result(cc_future *f, void *result);
int cc_future_set_error(cc_future *f, int err, const char *msg);

/* A done callback: f is borrowed for the call; arg as given when added. */
typedef void (*cc_future_callback)(cc_future *f, void *arg);

/*
 * cc_future_add_done_callback: call fn(f, arg) once when f is done (finished or
 * cancelled), in the thread that completes or cancels it. If f is already done,
 * fn runs at once in the calling thread. Callbacks run in the order they were
 * added (as Python's Future.add_done_callback). Waiters wake as the future
 * becomes done, possibly before its callbacks have run (as in Python). A
 * callback must not block for long: it delays the thread that completed the
 * future (a pool worker).
 * Returns 0, or -ENOMEM (fn was not added and will not run). Never blocks itself.
 */
int cc_future_add_done_callback(cc_future *f, cc_future_callback fn, void *arg);

/* ---- waiting on many ------------------------------------------------------ */

/* When cc_futures_wait returns (Python's FIRST_COMPLETED, ...). */
typedef enum cc_return_when {
    CC_FIRST_COMPLETED = 1, /* any future is done */
    CC_FIRST_EXCEPTION = 2, /* any future failed (cancelled does not count), or
                               all are done */
    CC_ALL_COMPLETED = 3,   /* all futures are done */
} cc_return_when;

/*
 * cc_futures_wait: block until the condition `return_when` holds for the n
 * futures fs[0..n-1], or the deadline passes (as Python's concurrent.futures.wait;
 * a deadline is not an error: the call just returns, as it does when a task's
 * deadline scope ends). Returns the number of futures done at return (the
 * caller checks cc_future_done on each); -EINVAL for a bad return_when;
 * -ENOMEM if the bookkeeping (one node per future for FIRST_COMPLETED /
 * FIRST_EXCEPTION) cannot be allocated; in a task (loop.h), -ECANCELED when
 * the task is cancelled. The futures stay owned by the caller. n == 0
 * returns 0 at once. Blocks (parks a task).
 */
int cc_futures_wait(cc_future *const *fs, size_t n, cc_return_when return_when,
                    cc_deadline deadline);

/*
 * As-completed: an iterator yielding the futures fs[0..n-1] as they become done,
 * each entry once, in completion order (those already done first, in array
 * order), as Python's concurrent.futures.as_completed.
 *
 * cc_as_completed_new: start iterating. Takes a reference on each future (the
 * caller may release its own). Returns 0, or -ENOMEM. Never blocks.
 * cc_as_completed_next: the next done future in *out (borrowed: valid until
 * cc_as_completed_free). Returns 0; -ETIMEDOUT if none became done by the
 * deadline (or a task's deadline scope ended); -ENOENT when all n were
 * yielded; in a task, -ECANCELED when the task is cancelled. Blocks (parks
 * a task). One consumer at a time.
 * cc_as_completed_free: stop and free (drops the references). NULL is ignored.
 */
typedef struct cc_as_completed cc_as_completed;

int cc_as_completed_new(cc_as_completed **out, cc_future *const *fs, size_t n);
int cc_as_completed_next(cc_as_completed *it, cc_deadline deadline,
                         cc_future **out);
void cc_as_completed_free(cc_as_completed *it);

#ifdef __cplusplus
}
#endif
#endif
