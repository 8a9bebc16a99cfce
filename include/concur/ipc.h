/*
 * concur/ipc.h: primitives that work BETWEEN processes, placed in shared
 * memory (a cc_shm segment, or any MAP_SHARED mapping): a robust lock, an
 * event, a semaphore, a condition, a barrier and a bounded queue of byte
 * messages (Python's multiprocessing.Lock, Event, Semaphore, Condition,
 * Barrier and Queue).
 *
 * Placement. Each object lives at an address inside the shared mapping, is
 * initialised once by one process (cc_ipc_*_init) before others use it, and
 * is then used by every process that maps the segment, at whatever address
 * its own mapping has (nothing inside holds a pointer). They are never
 * destroyed: unmapping the segment everywhere is the end of them.
 *
 * Blocking. These calls block the calling THREAD (a futex on the shared
 * word, or the kernel's robust mutex); unlike the in-process primitives of
 * concur/sync.h they do not park through concur's wait queues, because those
 * link waiters by pointer, which means nothing in another process. Do not
 * call them from a coroutine that shares its thread with others until the
 * coroutine integration of issue 5 exists; a thread per blocking wait is the
 * way for now. Every blocking call takes a deadline (CC_NOWAIT: never
 * blocks) and returns -ETIMEDOUT at it, never before.
 *
 * Death of a process. A process killed at any point leaves every object
 * usable by the others: the lock reports the holder's death to the next
 * owner (-EOWNERDEAD); the queue's get copies a message out before it
 * commits its removal, so a getter that dies mid-copy leaves the message in
 * the queue; a waiter that dies while asleep costs at most a spurious wakeup
 * later; an event set, a queue put or get and the end of a barrier round
 * wake the sleepers they concern in a step that a death cannot separate from
 * their store, so a process killed right after one strands nobody. A
 * semaphore release wakes up to n sleepers (as sem_post), so a releaser
 * killed between its add and its wake, or a woken acquirer killed before it
 * takes its unit, leaves the others asleep until they look again on their
 * own, within a second. A semaphore unit acquired by a process that then
 * died is lost, as with POSIX semaphores.
 *
 * Thread safety: every call is thread safe and process safe, except init,
 * which must happen once, before any other call on the object.
 */
#ifndef CONCUR_IPC_H
#define CONCUR_IPC_H

#include "base.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- robust lock (multiprocessing.Lock, with pthread's robustness) ------- */

/* A lock in shared memory. Fields are private. */
typedef struct cc_ipc_lock {
    pthread_mutex_t mutex; /* PTHREAD_PROCESS_SHARED, PTHREAD_MUTEX_ROBUST */
} cc_ipc_lock;

/*
 * cc_ipc_lock_init: make *l an unlocked, process-shared, robust lock. Once,
 * before any other use, in memory every user maps shared. Returns 0, -ENOMEM,
 * -EINVAL, -ENOTSUP (no robust mutexes). Never blocks.
 */
int cc_ipc_lock_init(cc_ipc_lock *l);

/*
 * cc_ipc_lock_acquire: take the lock, waiting until the deadline. Returns 0;
 * -EOWNERDEAD: the previous holder died holding it (process exit or kill, or
 * its thread exited): the caller OWNS the lock now, must repair the data it
 * protects, then call cc_ipc_lock_consistent before releasing (as
 * pthread_mutex_lock on a robust mutex); -ENOTRECOVERABLE: an earlier owner
 * after a death released without making it consistent: the lock is
 * permanently unusable; -ETIMEDOUT (never before the deadline); -EDEADLK
 * (the caller already holds it). Blocks the calling thread (header comment).
 * The lock belongs to the calling thread: release it from that thread.
 */
int cc_ipc_lock_acquire(cc_ipc_lock *l, cc_deadline deadline);

/*
 * cc_ipc_lock_consistent: after -EOWNERDEAD, mark the lock usable again (as
 * pthread_mutex_consistent). Returns 0, or -EINVAL if the lock was not
 * acquired with -EOWNERDEAD by this thread. Never blocks.
 */
int cc_ipc_lock_consistent(cc_ipc_lock *l);

/*
 * cc_ipc_lock_release: release the lock held by the calling thread. Returns
 * 0 or -EPERM (not held by this thread). Never blocks.
 */
int cc_ipc_lock_release(cc_ipc_lock *l);

/* ---- event (multiprocessing.Event) --------------------------------------- */

/* An event in shared memory. Fields are private. */
typedef struct cc_ipc_event {
    uint32_t flag; /* futex word: 1 set, 0 clear, 2 clear with sleepers */
} cc_ipc_event;

/* cc_ipc_event_init: a clear event. Never fails, never blocks. */
void cc_ipc_event_init(cc_ipc_event *e);

/* cc_ipc_event_set: set the flag and wake every waiter. Never blocks. */
void cc_ipc_event_set(cc_ipc_event *e);

/* cc_ipc_event_clear: clear the flag. Never blocks. */
void cc_ipc_event_clear(cc_ipc_event *e);

/* cc_ipc_event_is_set: the flag, now. Never blocks. */
int cc_ipc_event_is_set(const cc_ipc_event *e);

/*
 * cc_ipc_event_wait: block until the flag is set (as Event.wait(timeout)).
 * Returns 0 when set (at once if already set), -ETIMEDOUT (never before the
 * deadline). Blocks the calling thread.
 */
int cc_ipc_event_wait(cc_ipc_event *e, cc_deadline deadline);

/* ---- semaphore (multiprocessing.Semaphore) -------------------------------*/

/* A counting semaphore in shared memory. Fields are private. */
typedef struct cc_ipc_semaphore {
    uint32_t value;   /* futex word: units available */
    uint32_t waiters; /* threads that may sleep on value (a dead one: stale) */
} cc_ipc_semaphore;

/* The largest value a semaphore holds. */
#define CC_IPC_SEMAPHORE_MAX 0x7fffffffu

/*
 * cc_ipc_semaphore_init: a semaphore holding `value` units. Returns 0 or
 * -EINVAL (value over CC_IPC_SEMAPHORE_MAX). Never blocks.
 */
int cc_ipc_semaphore_init(cc_ipc_semaphore *s, uint32_t value);

/*
 * cc_ipc_semaphore_acquire: take one unit, waiting until the deadline (as
 * Semaphore.acquire(timeout)). Returns 0 or -ETIMEDOUT (never before the
 * deadline). Blocks the calling thread.
 */
int cc_ipc_semaphore_acquire(cc_ipc_semaphore *s, cc_deadline deadline);

/*
 * cc_ipc_semaphore_release: add n units and wake up to n waiters. Returns 0
 * or -EOVERFLOW (the value would pass CC_IPC_SEMAPHORE_MAX; nothing added).
 * Never blocks.
 */
int cc_ipc_semaphore_release(cc_ipc_semaphore *s, uint32_t n);

/* cc_ipc_semaphore_value: the units available now. Never blocks. */
uint32_t cc_ipc_semaphore_value(const cc_ipc_semaphore *s);

/* ---- condition (multiprocessing.Condition) ------------------------------- */

/* A condition variable in shared memory, used with a cc_ipc_lock that is
 * passed to each wait (pointers differ between processes). Private fields. */
typedef struct cc_ipc_condition {
    uint32_t seq;     /* futex word: bumped by every notify */
    uint32_t waiters; /* threads that may sleep on seq (a dead one: stale) */
} cc_ipc_condition;

/* cc_ipc_condition_init: a condition with no waiters. Never fails. */
void cc_ipc_condition_init(cc_ipc_condition *c);

/*
 * cc_ipc_condition_wait: release l (held by the caller), sleep until
 * notified or the deadline, then take l back without a deadline (as
 * Condition.wait(timeout), and pthread_cond_wait with the mutex passed in).
 * Wakeups may be spurious: loop on your predicate. Returns 0, -ETIMEDOUT
 * (l held again), -EPERM (l not held by this thread: nothing waited),
 * -EOWNERDEAD (l is held again, but its previous holder died holding it:
 * repair, then cc_ipc_lock_consistent, as after cc_ipc_lock_acquire),
 * -ENOTRECOVERABLE (l is broken; not held). Blocks the calling thread.
 */
int cc_ipc_condition_wait(cc_ipc_condition *c, cc_ipc_lock *l,
                          cc_deadline deadline);

/*
 * cc_ipc_condition_notify / notify_all: wake up to n / every waiter (as
 * Condition.notify(n) / notify_all). Hold the lock while changing the state
 * waiters test (the lock need not be held for the notify itself). Never
 * block.
 */
void cc_ipc_condition_notify(cc_ipc_condition *c, uint32_t n);
void cc_ipc_condition_notify_all(cc_ipc_condition *c);

/* ---- barrier (multiprocessing.Barrier) -----------------------------------*/

/* A barrier for a fixed number of parties (processes or threads), reusable
 * round after round; no action (a function pointer means nothing in a
 * spawned process). Private fields. */
typedef struct cc_ipc_barrier {
    cc_ipc_lock lock;       /* guards the fields below but generation's wait */
    uint32_t parties;       /* arrivals per round */
    uint32_t count;         /* arrived in this round */
    uint32_t generation;    /* futex word: bumped when a round ends or breaks */
    uint32_t broken;        /* broken until reset */
    uint32_t broken_rounds; /* bit g % 32: round g ended broken, not passed */
} cc_ipc_barrier;

/*
 * cc_ipc_barrier_init: a barrier for `parties` arrivals per round. Returns 0,
 * -EINVAL (parties 0 or above INT32_MAX), or an error of cc_ipc_lock_init.
 */
int cc_ipc_barrier_init(cc_ipc_barrier *b, uint32_t parties);

/*
 * cc_ipc_barrier_wait: arrive and wait for the others (as Barrier.wait).
 * Returns the arrival index (0 to parties - 1, the last one parties - 1);
 * -EPIPE if the barrier is or becomes broken (Python's BrokenBarrierError):
 * by an abort, a reset while waiting, another party's timeout, or a party
 * that died inside the barrier's own lock; -ETIMEDOUT (never before the
 * deadline), which breaks the barrier for the others. A party that dies
 * while merely waiting is not noticed: the others wait for their deadline.
 * A party of a round that passed gets its index even when it wakes only
 * after later rounds broke (the outcome of a round is kept for the 31
 * rounds after it). Blocks the calling thread.
 */
int cc_ipc_barrier_wait(cc_ipc_barrier *b, cc_deadline deadline);

/* cc_ipc_barrier_abort: break it: waits fail with -EPIPE until reset.
 * cc_ipc_barrier_reset: empty and unbroken again; current waiters get
 * -EPIPE (as Barrier.abort() and reset()). Block only on the internal lock. */
void cc_ipc_barrier_abort(cc_ipc_barrier *b);
void cc_ipc_barrier_reset(cc_ipc_barrier *b);

/* ---- bounded queue of byte messages (multiprocessing.Queue) --------------*/

/* A queue in shared memory: a header, then a ring of bytes. Opaque. */
typedef struct cc_ipc_queue cc_ipc_queue;

/* The bytes of the queue's header; the rest of its memory is the ring. */
size_t cc_ipc_queue_header_size(void);

/*
 * cc_ipc_queue_init: make a queue in the mem_size bytes at q (64-byte
 * aligned, shared; cc_shm_data of a segment qualifies). The ring is what
 * remains after the header, rounded down to 8 bytes; a message takes 8 bytes
 * plus its length rounded up to 8, so the queue is bounded in bytes, not in
 * messages, and one message of up to the ring's size - 8 bytes fits (100
 * bytes after the header: a ring of 96, a message of 88). Other
 * processes use the queue at the same place of their own mapping (a cast of
 * their pointer). Returns 0, -EINVAL (q NULL or misaligned, or a ring under
 * 64 bytes), -ENOMEM, -ENOTSUP. Never blocks.
 */
int cc_ipc_queue_init(cc_ipc_queue *q, size_t mem_size);

/*
 * cc_ipc_queue_put: append a copy of the len bytes at msg (len may be 0),
 * waiting until the deadline for room (as Queue.put(block, timeout)).
 * Returns 0; -EMSGSIZE (the message can never fit: larger than the ring;
 * nothing is waited for); -ETIMEDOUT (never before the deadline; nothing
 * added); -ENOTRECOVERABLE (the internal lock was broken by misuse; cannot
 * happen through this API). A put that dies half-way adds nothing. Blocks
 * the calling thread.
 */
int cc_ipc_queue_put(cc_ipc_queue *q, const void *msg, size_t len,
                     cc_deadline deadline);

/*
 * cc_ipc_queue_get: remove the oldest message, copying it to buf (cap bytes)
 * and its length to *len, waiting until the deadline for one (as
 * Queue.get(block, timeout)). Returns 0; -EMSGSIZE when cap is too small:
 * *len is set to the length needed and the message STAYS in the queue (call
 * again with a larger buffer); -ETIMEDOUT (never before the deadline);
 * -EINVAL (len NULL, or buf NULL with cap > 0); -ENOTRECOVERABLE (as put).
 * A get that dies half-way leaves the message in the queue. Blocks the
 * calling thread.
 */
int cc_ipc_queue_get(cc_ipc_queue *q, void *buf, size_t cap, size_t *len,
                     cc_deadline deadline);

/* cc_ipc_queue_count: messages in the queue now (as qsize). Takes the
 * internal lock (held only for copies: blocks at most milliseconds). */
size_t cc_ipc_queue_count(cc_ipc_queue *q);

#ifdef __cplusplus
}
#endif
#endif
