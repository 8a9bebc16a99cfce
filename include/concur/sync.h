/*
 * concur/sync.h: locks, recursive locks, conditions, semaphores, events and
 * barriers, with Python's threading semantics.
 *
 * Every object here lives in caller storage (a variable, a struct member, shared
 * memory of one process): initialise it with its _init function (for cc_lock,
 * cc_rlock and cc_event also with zero bytes or the _INIT macro), destroy it with
 * _destroy once nobody uses it, then reuse or free the memory. The fields are
 * private.
 *
 * Every blocking call takes a cc_deadline (base.h) and parks through concur's one
 * wait mechanism, so the same objects work between threads and the tasks of
 * event loops (loop.h): a task that waits parks only itself. None of them can
 * fail for lack of memory: waiting allocates nothing.
 *
 * Tasks. In a task, every blocking call below also fails with -ECANCELED (the
 * task was cancelled: loop.h's cc_task_cancel) and with -ETIMEDOUT when a
 * deadline scope ends first; a call that need not wait still succeeds, and a
 * wakeup that came first (a unit, a notify, a handed-over lock) is taken, not
 * lost: the call then returns 0. Where "the calling thread" owns a lock below
 * (cc_rlock, and cc_lock in CONCUR_DEBUG builds), a task is the owner: two
 * tasks of one thread never share an rlock, and a task owns what it took
 * across its parks.
 *
 * Debug builds. When the library is built with CONCUR_DEBUG defined (the
 * sanitizer builds), a cc_lock remembers its owner: releasing a lock the caller
 * does not hold, or destroying a held lock, aborts with a message. cc_lock_held()
 * and cc_rlock_held() are meant for assert()s (SQLite's held()).
 */
#ifndef CONCUR_SYNC_H
#define CONCUR_SYNC_H

#include "base.h"

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Private: the storage of an internal guard and wait queue (src/wait.h). */
struct cc__wait_storage {
    uint32_t guard_; /* a cc__mutex */
    void *head_;     /* a cc__waitq: first waiter */
    void *tail_;     /* last waiter */
};

/* ---- lock (Python's threading.Lock) ---------------------------------------- */

/*
 * A mutual exclusion lock. Uncontended acquire and release are one atomic
 * compare-and-swap each. Contended acquirers spin briefly, then park in FIFO
 * order. A release wakes the first parked acquirer, which competes again with
 * running threads (barging keeps throughput high); but once the first parked
 * acquirer has waited 1 ms or more, the release hands the lock straight to it,
 * so no waiter starves (Go's sync.Mutex starvation mode).
 */
typedef struct cc_lock {
    uint32_t state_;               /* private: locked and has-waiters bits */
    struct cc__wait_storage wait_; /* private: parked acquirers */
    uintptr_t owner_;              /* private: holder, in CONCUR_DEBUG builds */
} cc_lock;

#define CC_LOCK_INIT {0}

/* cc_lock_init: make an unlocked lock (same as CC_LOCK_INIT). Never fails. */
void cc_lock_init(cc_lock *lock);

/*
 * cc_lock_destroy: end the lock's life; it must be unlocked with no waiter
 * (CONCUR_DEBUG builds abort otherwise). Its memory may then be reused.
 */
void cc_lock_destroy(cc_lock *lock);

/*
 * cc_lock_acquire: take the lock, blocking until the deadline (Python's
 * Lock.acquire(blocking, timeout); CC_NOWAIT is blocking=False).
 * Returns 0 (the caller holds the lock), -ETIMEDOUT (it is still held by
 * another at the deadline) or, in a task, -ECANCELED (see "Tasks" above).
 * Not recursive: a thread that acquires a lock it holds waits for itself
 * until the deadline. Blocks; thread safe.
 */
int cc_lock_acquire(cc_lock *lock, cc_deadline deadline);

/*
 * cc_lock_release: release a lock the caller holds, waking a waiter if any
 * (Python's Lock.release()). Unlike Python, only the holder may release: in
 * CONCUR_DEBUG builds releasing a lock held by another thread or by nobody
 * aborts with "lock not held by the calling thread"; in other builds it is
 * undefined. Never blocks (beyond a short internal critical section).
 */
void cc_lock_release(cc_lock *lock);

/* cc_lock_locked: whether anybody holds the lock now (Python's Lock.locked()).
 * A snapshot: another thread may change it at once. Never blocks. */
bool cc_lock_locked(const cc_lock *lock);

/*
 * cc_lock_held: for asserts. In CONCUR_DEBUG builds, whether the calling thread
 * holds the lock; in other builds, whether anybody holds it (so
 * assert(cc_lock_held(l)) never fails wrongly). Never blocks.
 */
bool cc_lock_held(const cc_lock *lock);

/* ---- recursive lock (Python's threading.RLock) ----------------------------- */

/* A lock that its holder may acquire again; it is free once released as many
 * times as acquired. Always knows its owner, in every build. */
typedef struct cc_rlock {
    cc_lock lock_;    /* private: the lock underneath */
    uintptr_t owner_; /* private: the holding thread, 0 if none */
    uint32_t count_;  /* private: acquisitions by the owner */
} cc_rlock;

#define CC_RLOCK_INIT {CC_LOCK_INIT, 0, 0}

/* cc_rlock_init / cc_rlock_destroy: as cc_lock_init / cc_lock_destroy. */
void cc_rlock_init(cc_rlock *rlock);
void cc_rlock_destroy(cc_rlock *rlock);

/*
 * cc_rlock_acquire: take the lock, or take it once more if the caller holds it
 * (Python's RLock.acquire(blocking, timeout)). Returns 0, -ETIMEDOUT (another
 * thread held it until the deadline), -EOVERFLOW (the caller already holds it
 * 2^32 - 1 times), -ECANCELED (in a task, see "Tasks" above). Blocks; thread
 * safe.
 */
int cc_rlock_acquire(cc_rlock *rlock, cc_deadline deadline);

/*
 * cc_rlock_release: undo one acquisition; the last one frees the lock
 * (Python's RLock.release()). Returns 0, or -EPERM if the caller does not hold
 * the lock (Python raises RuntimeError). Never blocks; thread safe.
 */
int cc_rlock_release(cc_rlock *rlock);

/* cc_rlock_held: whether the calling thread holds the lock (Python's
 * RLock._is_owned()); exact in every build. Never blocks; thread safe. */
bool cc_rlock_held(const cc_rlock *rlock);

/* ---- condition (Python's threading.Condition(lock)) ------------------------ */

/*
 * A condition variable bound at init to one lock (a cc_lock or a cc_rlock), as
 * Python's Condition(lock). Waiters park in FIFO order; notify wakes the oldest.
 * No lost wakeups: a waiter is queued before it releases the lock, so a notify
 * made by anyone after that point wakes it.
 */
typedef struct cc_cond {
    cc_lock *lock_;                /* private: the bound lock, or NULL */
    cc_rlock *rlock_;              /* private: the bound rlock, or NULL */
    struct cc__wait_storage wait_; /* private: parked waiters */
    uint32_t inside_;              /* private: waiters in cc_cond_wait */
} cc_cond;

/* A predicate for cc_cond_wait_for: true when the awaited state holds. It runs
 * with the condition's lock held. */
typedef bool (*cc_predicate)(void *arg);

/*
 * cc_cond_init / cc_cond_init_rlock: bind a condition to `lock` (not owned: it
 * must outlive the condition). Never fail. cc_cond_destroy: end its life; no
 * thread may be blocked in cc_cond_wait. It may follow a notify that woke the
 * last waiters at once (POSIX's pthread_cond_destroy example): it waits for
 * them to leave the condition, which they do before they take the lock
 * back, so the caller may hold the lock; then the memory may be reused.
 * That wait yields; from a loop's thread outside its tasks (a
 * cc_call_soon_threadsafe callback) it would never end while a leaving
 * waiter is a task of that loop, so destroy from a task or a thread.
 */
void cc_cond_init(cc_cond *cond, cc_lock *lock);
void cc_cond_init_rlock(cc_cond *cond, cc_rlock *lock);
void cc_cond_destroy(cc_cond *cond);

/*
 * cc_cond_wait: release the lock (an rlock fully, whatever its count), park
 * until notified or the deadline, then take the lock back (as before, without a
 * deadline) (Python's Condition.wait(timeout)). May return 0 without a matching
 * notify (a spurious wakeup is rare but allowed; loop on your predicate, or use
 * cc_cond_wait_for).
 * Returns 0 (notified), -ETIMEDOUT (the deadline passed; the lock is held
 * again), -EPERM (the caller does not hold the lock, as Python's RuntimeError:
 * always detected for an rlock and in CONCUR_DEBUG builds; for a cc_lock in
 * other builds, only when nobody holds it), -ECANCELED (in a task, see "Tasks"
 * above; the lock is held again). Blocks; thread safe.
 */
int cc_cond_wait(cc_cond *cond, cc_deadline deadline);

/*
 * cc_cond_wait_for: wait until pred(arg) is true (Python's
 * Condition.wait_for(predicate, timeout)); pred runs with the lock held, first
 * before any wait. Returns 0 (pred is true), -ETIMEDOUT (still false at the
 * deadline), -EPERM (as cc_cond_wait), -ECANCELED (in a task, see "Tasks"
 * above). The lock is held on return, but after -EPERM. Blocks.
 */
int cc_cond_wait_for(cc_cond *cond, cc_predicate pred, void *arg,
                     cc_deadline deadline);

/*
 * cc_cond_notify: wake up to n waiters, oldest first (Python's
 * Condition.notify(n)). cc_cond_notify_all: wake every waiter (notify_all).
 * Return the number woken. Unlike Python, the lock need not be held (as
 * pthread_cond_signal); hold it when you change the state waiters test, or
 * a waiter may miss the change. Never block; thread safe.
 */
int cc_cond_notify(cc_cond *cond, int n);
int cc_cond_notify_all(cc_cond *cond);

/* ---- semaphore (Python's threading.Semaphore / BoundedSemaphore) ----------- */

/*
 * A counter of available units. A release hands its units straight to parked
 * acquirers, oldest first, before anything is left for others to take.
 */
typedef struct cc_semaphore {
    uint32_t value_;               /* private: available units */
    uint32_t bound_;               /* private: the initial value, if bounded */
    bool bounded_;                 /* private: release may not pass bound_ */
    struct cc__wait_storage wait_; /* private: parked acquirers */
} cc_semaphore;

/*
 * cc_semaphore_init: a semaphore with `value` units (Python's Semaphore(value)).
 * cc_bounded_semaphore_init: one whose value may never exceed `value` (Python's
 * BoundedSemaphore(value)). Never fail. cc_semaphore_destroy: end its life; no
 * thread may be waiting. A thread whose acquire returned may destroy it at
 * once, even while the release that gave the unit is still returning (as
 * POSIX's sem_destroy after sem_wait).
 */
void cc_semaphore_init(cc_semaphore *sem, uint32_t value);
void cc_bounded_semaphore_init(cc_semaphore *sem, uint32_t value);
void cc_semaphore_destroy(cc_semaphore *sem);

/*
 * cc_semaphore_acquire: take one unit, blocking until one is available or the
 * deadline (Python's Semaphore.acquire(blocking, timeout)). Returns 0,
 * -ETIMEDOUT or, in a task, -ECANCELED (see "Tasks" above). Blocks; thread
 * safe.
 */
int cc_semaphore_acquire(cc_semaphore *sem, cc_deadline deadline);

/*
 * cc_semaphore_release: add n units, waking up to n waiters (Python's
 * Semaphore.release(n)). Returns 0; -EINVAL if n == 0 (Python's ValueError);
 * -EOVERFLOW if the value would exceed the bound of a bounded semaphore
 * (Python's ValueError "Semaphore released too many times") or 2^32 - 1; on an
 * error nothing is released. Never blocks; thread safe.
 */
int cc_semaphore_release(cc_semaphore *sem, uint32_t n);

/* cc_semaphore_value: the units available now (Python's Semaphore._value);
 * a snapshot. Never blocks. */
uint32_t cc_semaphore_value(const cc_semaphore *sem);

/* ---- event (Python's threading.Event) -------------------------------------- */

/*
 * A flag that threads wait to see set. set() wakes every waiter; a thread that
 * was waiting when set() was called returns 0 even if clear() follows at once
 * (Python's semantics).
 */
typedef struct cc_event {
    uint32_t flag_;                /* private: 1 when set */
    struct cc__wait_storage wait_; /* private: parked waiters */
} cc_event;

#define CC_EVENT_INIT {0}

/* cc_event_init: a clear event (same as CC_EVENT_INIT). cc_event_destroy: end
 * its life; no thread may be waiting. A thread whose wait returned 0 may
 * destroy it at once, even while the set() that it saw is still returning.
 * Never fail. */
void cc_event_init(cc_event *event);
void cc_event_destroy(cc_event *event);

/* cc_event_set: set the flag and wake all waiters (Event.set()). Never blocks
 * (beyond a short internal critical section); thread safe. */
void cc_event_set(cc_event *event);

/* cc_event_clear: reset the flag (Event.clear()). Never blocks; thread safe. */
void cc_event_clear(cc_event *event);

/* cc_event_is_set: the flag now (Event.is_set()). Never blocks; thread safe. */
bool cc_event_is_set(const cc_event *event);

/*
 * cc_event_wait: block until the flag is set or the deadline (Python's
 * Event.wait(timeout)). Returns 0 if the flag was set (now, or by a set() that
 * woke this wait), else -ETIMEDOUT or, in a task, -ECANCELED (see "Tasks"
 * above). Blocks; thread safe.
 */
int cc_event_wait(cc_event *event, cc_deadline deadline);

/* ---- barrier (Python's threading.Barrier) ---------------------------------- */

/*
 * An action run by the last thread to arrive, before the others are released
 * (Python's Barrier action). Return 0, or a negative errno to break the barrier:
 * that thread's cc_barrier_wait then returns it, the others -EPIPE.
 */
typedef int (*cc_barrier_action)(void *arg);

/*
 * A barrier for a fixed number of parties, reusable round after round. A broken
 * barrier (aborted, a wait timed out, or the action failed) fails every wait
 * with -EPIPE, Python's BrokenBarrierError, until cc_barrier_reset().
 */
typedef struct cc_barrier {
    uint32_t parties_;             /* private: threads per round */
    uint32_t count_;               /* private: arrived in this round */
    uint64_t generation_;          /* private: rounds finished or reset */
    bool broken_;                  /* private: broken until reset */
    bool break_next_;              /* private: break after this round */
    uint32_t inside_;              /* private: threads in cc_barrier_wait */
    cc_barrier_action action_;     /* private: run by the last arrival */
    void *arg_;                    /* private: the action's argument */
    struct cc__wait_storage wait_; /* private: arrived, waiting for the round */
    void *entry_[2];               /* private: early arrivals, while the
                                      action of the previous round runs */
} cc_barrier;

/*
 * cc_barrier_init: a barrier for `parties` threads (Python's Barrier(parties,
 * action)). action may be NULL; arg is passed to it. Returns 0, or -EINVAL if
 * parties is 0 or above INT32_MAX. cc_barrier_destroy: end its life; no
 * thread may be blocked in it. It may follow the caller's own wait at once:
 * it waits for the threads that the round released (or that still run the
 * action) to leave cc_barrier_wait, as glibc's pthread_barrier_destroy;
 * then the memory may be reused. As for cc_cond_destroy, not from a loop's
 * callback while one of those is a task of that loop (it would never end).
 */
int cc_barrier_init(cc_barrier *barrier, uint32_t parties,
                    cc_barrier_action action, void *arg);
void cc_barrier_destroy(cc_barrier *barrier);

/*
 * cc_barrier_wait: arrive and wait for the other parties (Python's
 * Barrier.wait(timeout)). Returns the arrival index, 0 for the first to arrive
 * to parties - 1 for the last (the one that ran the action), different for each
 * thread of a round; -EPIPE if the barrier is or becomes broken while waiting
 * (Python's BrokenBarrierError); -ETIMEDOUT if the deadline passed, which breaks
 * the barrier for the others (Python raises BrokenBarrierError here too; a
 * thread that arrived while the previous round's action ran breaks it only
 * once that round is released); -ECANCELED (in a task, see "Tasks" above),
 * which breaks it as a timeout does; or the action's error, for the thread
 * that ran it. Blocks; thread safe.
 */
int cc_barrier_wait(cc_barrier *barrier, cc_deadline deadline);

/* cc_barrier_abort: break the barrier: current and future waits return
 * -EPIPE until reset (Barrier.abort()). Never blocks; thread safe. */
void cc_barrier_abort(cc_barrier *barrier);

/* cc_barrier_reset: return the barrier to its empty, unbroken state; threads
 * waiting now get -EPIPE (Barrier.reset()). Never blocks; thread safe. */
void cc_barrier_reset(cc_barrier *barrier);

/* Snapshots (Python's Barrier.parties, n_waiting, broken). Never block. */
uint32_t cc_barrier_parties(const cc_barrier *barrier);
uint32_t cc_barrier_n_waiting(cc_barrier *barrier);
bool cc_barrier_broken(cc_barrier *barrier);

#ifdef __cplusplus
}
#endif
#endif
