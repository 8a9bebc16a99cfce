/*
 * concur/base.h: errors, time and deadlines, the allocation hook.
 *
 * Conventions for the whole library (stated once here):
 *
 * - Errors. A fallible call returns 0 (or a non-negative count) on success and a
 *   negative errno on failure (-ETIMEDOUT, -ECANCELED, ...). cc_strerror() names it.
 *   A call that cannot fail in a correct program returns void and aborts with a
 *   message on an impossible OS error.
 *
 * - Deadlines. Every blocking call takes a cc_deadline: an absolute point on the
 *   monotonic clock, in nanoseconds (the clock of cc_now()). CC_FOREVER blocks
 *   without limit; CC_NOWAIT (or any deadline already in the past) never blocks: the
 *   call succeeds only if it can without waiting and otherwise returns -ETIMEDOUT.
 *   A Python `timeout=t` (seconds) is cc_deadline_in(t * CC_SEC). Deadlines compose:
 *   one deadline can be passed down to several calls that together must finish by it.
 *
 * - Thread safety. Unless a function's docstring says otherwise, every function may
 *   be called from any thread, concurrently, on the same object.
 *
 * - Ownership. An object made by cc_X_new()/cc_X_create() is freed by the matching
 *   cc_X_free()/cc_X_release(); docstrings say when memory passed in may be reused.
 */
#ifndef CONCUR_BASE_H
#define CONCUR_BASE_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CONCUR_VERSION_MAJOR 0
#define CONCUR_VERSION_MINOR 1
#define CONCUR_VERSION_PATCH 0
#define CONCUR_VERSION_STRING "0.1.0"

/* ---- time ---------------------------------------------------------------- */

/* A point on the monotonic clock, in nanoseconds. */
typedef int64_t cc_deadline;

/* Block without limit. */
#define CC_FOREVER INT64_MAX
/* Never block: succeed at once or fail with -ETIMEDOUT. */
#define CC_NOWAIT ((cc_deadline)0)

/* Durations in nanoseconds. */
#define CC_NSEC ((int64_t)1)
#define CC_USEC ((int64_t)1000)
#define CC_MSEC ((int64_t)1000000)
#define CC_SEC ((int64_t)1000000000)

/*
 * cc_now: the current time on the monotonic clock (CLOCK_MONOTONIC), in ns.
 * Never fails, never blocks; thread safe.
 */
int64_t cc_now(void);

/*
 * cc_deadline_in: the deadline `ns` nanoseconds from now.
 * ns <= 0 gives CC_NOWAIT; a sum that would overflow gives CC_FOREVER.
 * Never fails, never blocks; thread safe. (Python: time.monotonic() + timeout.)
 */
cc_deadline cc_deadline_in(int64_t ns);

/*
 * cc_sleep_until / cc_sleep: block the caller until the deadline / for `ns`
 * nanoseconds (as Python's time.sleep). Never returns early; restarts after
 * signals. Blocks; thread safe. Called from a task of an event loop (loop.h)
 * it parks only that task, and the loop runs others meanwhile (as gevent.sleep
 * and asyncio.sleep): one sleep for threads and coroutines.
 * Returns 0; in a task also -ECANCELED (the task was cancelled: loop.h's
 * cc_task_cancel) or -ETIMEDOUT (a deadline scope ended before the sleep).
 */
int cc_sleep_until(cc_deadline deadline);
int cc_sleep(int64_t ns);

/* ---- errors -------------------------------------------------------------- */

/*
 * cc_strerror: a static English description of a concur error code. Accepts a
 * negative errno (as returned by concur calls) or a positive one. Never returns
 * NULL; the string is never freed. Thread safe.
 */
const char *cc_strerror(int err);

/* ---- allocation hook ----------------------------------------------------- */

/*
 * cc_alloc_fn: the one allocation function concur uses, Lua style.
 *   ptr == NULL, size > 0: allocate `size` bytes;
 *   ptr != NULL, size > 0: resize the block `ptr` (of `old_size` bytes) to `size`;
 *   ptr != NULL, size == 0: free `ptr`, return NULL.
 * Returns NULL on failure (concur then returns -ENOMEM to its caller).
 * `ud` is the pointer given to cc_set_allocator().
 */
typedef void *(*cc_alloc_fn)(void *ud, void *ptr, size_t old_size, size_t size);

/*
 * cc_set_allocator: replace the allocator (NULL restores malloc/realloc/free).
 * Call it before any other concur call, while no concur object exists: blocks
 * allocated by one allocator are freed by the allocator in force when they die.
 * Not thread safe. Used by the tests to fail the n-th allocation.
 */
void cc_set_allocator(cc_alloc_fn fn, void *ud);

#ifdef __cplusplus
}
#endif
#endif
