/*
 * concur/queue.h: FIFO, LIFO and priority queues between threads, with
 * task_done/join and shutdown (Python's queue.Queue, LifoQueue, PriorityQueue,
 * including Python 3.13's shutdown).
 *
 * Items are `void *`. The queue stores the pointer and never looks at or frees
 * what it points to; ownership of the pointee passes to whoever gets the item.
 * The one exception is an optional destructor (cc_queue_set_destructor) that
 * the queue calls on the items it drops: those removed by an immediate shutdown
 * and those still queued at cc_queue_free. NULL is a valid item.
 *
 * Errors, the same for every kind:
 *   -ETIMEDOUT  the deadline passed (or CC_NOWAIT) with the queue full (put) or
 *               empty (get): Python's queue.Full / queue.Empty.
 *   -ESHUTDOWN  the queue is shut down: Python 3.13's queue.ShutDown.
 *   -EINVAL     task_done called more times than items were put: Python's
 *               ValueError; or a bad argument.
 *   -ENOMEM     allocation failed (cc_queue_new; put on an unbounded queue).
 *
 * Thread safety: every function except cc_queue_free may be called from any
 * thread, concurrently, on the same queue.
 *
 * A bounded FIFO (maxsize 1 to CC_QUEUE_RING_MAX) is a lock-free ring; the
 * other kinds take a short internal lock. Both block through concur's one way
 * to wait (src/wait.h), spinning and yielding briefly before they park, so a
 * task of an event loop that gets or puts parks only itself.
 *
 * To wait on several queues (and futures, fds, processes, timers) at once,
 * as Go's select on channel receives, use cc_wait_any with CC_WAIT_QUEUE
 * (concur/loop.h): ready when a get would not block; a hint, as poll's.
 */
#ifndef CONCUR_QUEUE_H
#define CONCUR_QUEUE_H

#include "base.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cc_queue cc_queue;

/* Which item a get returns. */
typedef enum cc_queue_kind {
    CC_QUEUE_FIFO = 0,     /* first put, first got (queue.Queue) */
    CC_QUEUE_LIFO = 1,     /* last put, first got (queue.LifoQueue) */
    CC_QUEUE_PRIORITY = 2, /* lowest priority value first, FIFO among
                              equal values (queue.PriorityQueue of
                              (prio, seq, item) tuples) */
} cc_queue_kind;

/* The largest maxsize served by the preallocated lock-free ring (16 bytes
 * per slot); a bounded FIFO above it uses the locked store, which grows on
 * demand. */
#define CC_QUEUE_RING_MAX ((size_t)1 << 16)

/* Called on each item the queue drops; `arg` as given to the setter. */
typedef void (*cc_queue_destructor)(void *item, void *arg);

/*
 * cc_queue_new: make an empty queue of `kind` holding at most `maxsize` items
 * (0: unbounded, as Python's maxsize=0). Stores it in *q.
 * Returns 0, -EINVAL (unknown kind, q NULL), -ENOMEM.
 * Ownership: the caller frees it with cc_queue_free. Does not block.
 * Semantics: queue.Queue(maxsize) / LifoQueue / PriorityQueue.
 */
int cc_queue_new(cc_queue **q, cc_queue_kind kind, size_t maxsize);

/*
 * cc_queue_free: free the queue, first passing each item still queued to the
 * destructor if one is set. NULL is a no-op. Not thread safe: no call may be
 * blocked on, or enter, the queue during or after this call, and every call
 * must have returned, but for one that the caller's own call saw, which may
 * still be returning (as POSIX's sem_destroy right after sem_wait). So the
 * caller may free the queue as soon as
 *   - its get returned 0: the put of that item may still be waking it;
 *   - its put returned 0: the get that made room may still be waking it;
 *   - its join returned 0: the last task_done (or an immediate shutdown)
 *     may still be waking it;
 *   - its get or put returned -ESHUTDOWN: these wait, before they return,
 *     for every shutdown under way to be done with the queue.
 * Other results (-ETIMEDOUT; qsize, empty, is_shutdown) say nothing about
 * other calls still running.
 */
void cc_queue_free(cc_queue *q);

/*
 * cc_queue_set_destructor: set the function called on each dropped item (see
 * the top of this file); NULL removes it. Set it before sharing the queue
 * (not thread safe against a concurrent shutdown or free). The destructor
 * must not put, get or join on the queue it is called for (in a shutdown,
 * those wait for the shutdown to finish), nor wait for another thread or
 * task that may be in such a call: that one waits for the shutdown, which
 * waits for the destructor (a deadlock). Never blocks.
 */
void cc_queue_set_destructor(cc_queue *q, cc_queue_destructor fn, void *arg);

/*
 * cc_queue_put: append `item`, waiting until the deadline for a free slot if
 * the queue is full. On a priority queue the priority is 0.
 * Returns 0; -ETIMEDOUT if still full at the deadline (at once for CC_NOWAIT);
 * -ESHUTDOWN if the queue is (or gets, while waiting) shut down; -ENOMEM
 * (unbounded or large queues only). On error the item was not queued and is
 * still the caller's. Blocks (when full). Semantics: queue.Queue.put.
 */
int cc_queue_put(cc_queue *q, void *item, cc_deadline deadline);

/*
 * cc_queue_put_priority: cc_queue_put for a priority queue: the item is got
 * before every item of higher `priority` value and after those of lower or
 * equal value put before it. Returns as cc_queue_put, plus -EINVAL if the
 * queue is not a priority queue. Blocks (when full).
 * Semantics: PriorityQueue.put((priority, seq, item)).
 */
int cc_queue_put_priority(cc_queue *q, void *item, int64_t priority,
                          cc_deadline deadline);

/*
 * cc_queue_get: remove the next item (by kind) and store it in *item, waiting
 * until the deadline if the queue is empty. After a shutdown, get still
 * returns the items left, then -ESHUTDOWN.
 * Returns 0; -ETIMEDOUT if still empty at the deadline (at once for CC_NOWAIT);
 * -ESHUTDOWN if shut down and empty. *item is untouched on error. Ownership of
 * the item passes to the caller. Blocks (when empty).
 * Semantics: queue.Queue.get.
 */
int cc_queue_get(cc_queue *q, void **item, cc_deadline deadline);

/*
 * cc_queue_qsize / cc_queue_empty / cc_queue_full: the number of items queued,
 * whether it is 0, whether it is maxsize (never for an unbounded queue).
 * A snapshot that other threads may change at once, as in Python; but what
 * it counts is there: after empty() (or full()) said false, a get (or put)
 * with CC_NOWAIT by the only getter (or putter) succeeds.
 * Never block. Semantics: Queue.qsize, Queue.empty, Queue.full.
 */
size_t cc_queue_qsize(cc_queue *q);
bool cc_queue_empty(cc_queue *q);
bool cc_queue_full(cc_queue *q);

/* cc_queue_maxsize: the maxsize given to cc_queue_new (0: unbounded). */
size_t cc_queue_maxsize(const cc_queue *q);

/*
 * cc_queue_task_done: mark one item got earlier as processed. Each successful
 * put counts one unfinished task; each task_done (and each item dropped by an
 * immediate shutdown) finishes one. Returns 0, or -EINVAL when no task is
 * unfinished (Python's ValueError). Never blocks; wakes joiners when the count
 * reaches 0. Semantics: Queue.task_done.
 */
int cc_queue_task_done(cc_queue *q);

/*
 * cc_queue_join: wait until every item ever put has been marked done (by
 * task_done or by an immediate shutdown dropping it). Returns 0, or -ETIMEDOUT
 * at the deadline. As in Python, shutdown does not make join fail: an
 * immediate shutdown counts the dropped items done, so join returns 0 once the
 * items already got are marked done too. Blocks. Semantics: Queue.join.
 */
int cc_queue_join(cc_queue *q, cc_deadline deadline);

/*
 * cc_queue_shutdown: shut the queue down. From then on every put fails with
 * -ESHUTDOWN; gets return the items left, then -ESHUTDOWN. With `immediate`,
 * the items left are dropped at once (passed to the destructor if set, and
 * counted done for join), so gets fail at once too. Wakes every caller blocked
 * in put, get (and join, which re-checks its count). Calling it again is
 * allowed (an immediate call after a plain one drops the items left). A
 * put or get that fails with -ESHUTDOWN, or a join that returns with the
 * queue shut down, returns only once every shutdown under way is done with
 * the queue (see cc_queue_free). Never blocks (beyond finishing a put
 * already under way). Semantics: Python 3.13's Queue.shutdown(immediate).
 */
void cc_queue_shutdown(cc_queue *q, bool immediate);

/* cc_queue_is_shutdown: whether cc_queue_shutdown was called. Never blocks. */
bool cc_queue_is_shutdown(cc_queue *q);

#ifdef __cplusplus
}
#endif
#endif
