/*
 * lock.c: cc_lock and cc_rlock (include/concur/sync.h).
 *
 * DESIGN. The lock's state word has two bits: LOCKED, and WAITERS (the wait
 * queue is not empty). Acquire is one CAS 0 -> LOCKED; release one CAS
 * LOCKED -> 0. When that fails, an acquirer spins a little, then takes the guard,
 * sets WAITERS and parks on the queue; a releaser that sees WAITERS takes the
 * guard and pops the first waiter. WAITERS only changes under the guard, and a
 * releaser must take the guard to clear LOCKED while WAITERS is set, so an
 * acquirer that parks is always found: no lost wakeups.
 * The popped waiter normally gets RETRY: the lock is free and it competes again
 * with running threads (barging: no convoy of sleeping owners). If it has waited
 * STARVING_NS or more since it first parked, it gets HANDOFF instead: LOCKED
 * stays set and ownership passes to it directly, so nobody starves (Go's
 * sync.Mutex does the same). A retrying waiter that loses parks again at the
 * tail, keeping its original start time.
 * The rlock is a lock plus an owner and a count touched only by the owner.
 */
#include "sync_impl.h"

#include <string.h>

enum { LOCKED = 1, WAITERS = 2 };          /* bits of the state word */
enum { WAKE_RETRY = 1, WAKE_HANDOFF = 2 }; /* tokens a release hands over */

/* A waiter parked this long gets the lock handed to it (as Go's 1 ms). */
#define STARVING_NS (1 * CC_MSEC)
/* Acquire attempts before parking; a holder usually leaves within a few. */
enum { LOCK_SPINS = 100 };

struct lock {
    cc__atomic_u32 state;       /* LOCKED | WAITERS */
    struct cc__waitblock wait;  /* guard and parked acquirers */
    _Atomic uintptr_t owner;    /* cc__self_id() of the holder (CONCUR_DEBUG) */
};

_Static_assert(sizeof(struct lock) == sizeof(cc_lock), "cc_lock size");
_Static_assert(offsetof(struct lock, wait) == offsetof(cc_lock, wait_), "wait");
_Static_assert(offsetof(struct lock, owner) == offsetof(cc_lock, owner_), "owner");

/* A parked acquirer. */
struct lock_waiter {
    cc__waiter w;  /* the parked thread */
    int64_t since; /* when it first parked, for starvation */
};

static struct lock *impl(const cc_lock *l) { return (struct lock *)l; }

/* ---- debug ownership --------------------------------------------------------- */

#ifdef CONCUR_DEBUG
/* relaxed: only the holder writes owner; other threads merely compare. */
static void set_owner(struct lock *L, uintptr_t id)
{
    cc__store_relaxed(&L->owner, id);
}

static void check_release(struct lock *L)
{
    if (cc__load_relaxed(&L->owner) != cc__self_id())
        cc__panic("cc_lock_release: lock not held by the calling thread", -EPERM);
    set_owner(L, 0);
}
#else
static void set_owner(struct lock *L, uintptr_t id) { (void)L, (void)id; }
static void check_release(struct lock *L) { (void)L; }
#endif

/* ---- acquire ----------------------------------------------------------------- */

/* One attempt to take a free lock, keeping the WAITERS bit as it is. */
static bool try_barge(struct lock *L)
{
    uint32_t s = cc__load_relaxed(&L->state);
    /* acq_rel CAS: acquire pairs with the previous holder's release. */
    return !(s & LOCKED) && cc__cas(&L->state, &s, s | LOCKED);
}

static bool spin(struct lock *L)
{
    /* A task does not spin: the holder may be a task of the same loop, which
     * cannot run meanwhile, and parking a task costs only a switch. */
    int spins = cc__loop_task() ? 0 : LOCK_SPINS;
    for (int i = 0; i < spins; i++) {
        if (try_barge(L))
            return true;
        cc__cpu_relax();
    }
    return false;
}

/*
 * Under the guard: take the lock if free, else set WAITERS (the caller then
 * parks before dropping the guard). Returns whether the lock was taken.
 */
static bool take_or_flag(struct lock *L)
{
    /* acq_rel CASes: acquire when taking the lock, as in try_barge; setting
     * WAITERS publishes nothing, the guard orders it with the releaser. */
    uint32_t s = cc__load_relaxed(&L->state);
    for (;;) {
        if (!(s & LOCKED)) {
            if (cc__cas(&L->state, &s, s | LOCKED))
                return true;
        } else if (s & WAITERS || cc__cas(&L->state, &s, s | WAITERS)) {
            return false;
        }
    }
}

/* Under the guard: the last waiter left by timing out. */
static void clear_waiters_if_empty(struct lock *L)
{
    /* acq_rel (more than needed): only the bit matters, the guard orders it. */
    if (cc__waitq_empty(&L->wait.q))
        cc__fetch_and(&L->state, ~(uint32_t)WAITERS);
}

/* Under the guard: park until the lock is ours or the deadline. */
static int park_until_acquired(struct lock *L, cc_deadline deadline)
{
    struct lock_waiter lw = {.since = cc__now()};
    while (!take_or_flag(L)) {
        cc__waiter_init(&lw.w);
        int r = cc__wait_on(&L->wait.q, &L->wait.guard, &lw.w, deadline);
        if (r < 0) {
            clear_waiters_if_empty(L);
            return r;
        }
        if (lw.w.token == WAKE_HANDOFF)
            return 0;
    }
    return 0;
}

static int acquire_slow(struct lock *L, cc_deadline deadline)
{
    if (deadline == CC_NOWAIT) /* a try: one more look, no spinning */
        return try_barge(L) ? 0 : -ETIMEDOUT;
    if (spin(L))
        return 0;
    cc__mutex_lock(&L->wait.guard);
    int r = park_until_acquired(L, deadline);
    cc__mutex_unlock(&L->wait.guard);
    return r;
}

int cc_lock_acquire(cc_lock *lock, cc_deadline deadline)
{
    struct lock *L = impl(lock);
    uint32_t expected = 0;
    /* acq_rel CAS (acquire is what matters): see the last holder's writes. */
    int r = CC__LIKELY(cc__cas(&L->state, &expected, LOCKED))
                ? 0
                : acquire_slow(L, deadline);
    if (r == 0)
        set_owner(L, cc__self_id());
    return r;
}

/* ---- release ----------------------------------------------------------------- */

static bool starving(cc__waiter *w)
{
    struct lock_waiter *lw = CC__CONTAINER_OF(w, struct lock_waiter, w);
    return cc__now() - lw->since >= STARVING_NS;
}

/*
 * Holding LOCKED with WAITERS set: hand the lock to the first waiter. Under
 * the guard nobody else can change the state (acquirers need the guard or a
 * clear LOCKED bit), so plain stores suffice; release order publishes the
 * critical section to the next holder. Returns false, having done nothing,
 * when the waiters have all timed out meanwhile (they cleared WAITERS): the
 * caller releases with its CAS again. Storing the release under the guard
 * then would let another thread take, release, destroy and free the lock
 * before our unlock of the guard (a lock may die once unlocked, as POSIX
 * allows); with a waiter woken that cannot happen, as the waiter is still
 * in its acquire.
 */
static bool release_slow(struct lock *L)
{
    cc__mutex_lock(&L->wait.guard);
    cc__waiter *w = cc__waitq_pop(&L->wait.q);
    if (!w) {
        cc__mutex_unlock(&L->wait.guard);
        return false;
    }
    uint32_t waiters = cc__waitq_empty(&L->wait.q) ? 0 : WAITERS;
    bool handoff = starving(w);
    cc__store_rel(&L->state, (handoff ? LOCKED : 0) | waiters);
    w->token = handoff ? WAKE_HANDOFF : WAKE_RETRY;
    cc__waiter_wake(w);
    cc__mutex_unlock(&L->wait.guard);
    return true;
}

void cc_lock_release(cc_lock *lock)
{
    struct lock *L = impl(lock);
    check_release(L);
    for (;;) {
        uint32_t expected = LOCKED;
        /* acq_rel CAS (release is what matters): publish the critical
         * section. */
        if (CC__LIKELY(cc__cas(&L->state, &expected, 0)) || release_slow(L))
            return;
    }
}

/* ---- the rest of cc_lock ------------------------------------------------------ */

void cc_lock_init(cc_lock *lock) { memset(lock, 0, sizeof *lock); }

void cc_lock_destroy(cc_lock *lock)
{
#ifdef CONCUR_DEBUG
    if (cc__load_relaxed(&impl(lock)->state) != 0)
        cc__panic("cc_lock_destroy: lock is held or has waiters", -EBUSY);
#endif
    (void)lock;
}

bool cc_lock_locked(const cc_lock *lock)
{
    return cc__load_relaxed(&impl(lock)->state) & LOCKED;
}

bool cc_lock_held(const cc_lock *lock)
{
#ifdef CONCUR_DEBUG
    return cc__load_relaxed(&impl(lock)->owner) == cc__self_id();
#else
    return cc_lock_locked(lock);
#endif
}

/* ---- rlock --------------------------------------------------------------------- */

struct rlock {
    cc_lock lock;             /* the lock underneath */
    _Atomic uintptr_t owner;  /* holder's cc__self_id(), 0 if none; relaxed:
                                 only the holder stores its own id, and a thread
                                 reads back its own id only if it stored it */
    uint32_t count;           /* acquisitions by the owner; owner only */
};

_Static_assert(sizeof(struct rlock) == sizeof(cc_rlock), "cc_rlock size");
_Static_assert(offsetof(struct rlock, count) == offsetof(cc_rlock, count_), "count");

static struct rlock *rimpl(const cc_rlock *r) { return (struct rlock *)r; }

void cc_rlock_init(cc_rlock *rlock) { memset(rlock, 0, sizeof *rlock); }

void cc_rlock_destroy(cc_rlock *rlock) { cc_lock_destroy(&rlock->lock_); }

bool cc_rlock_held(const cc_rlock *rlock)
{
    return cc__load_relaxed(&rimpl(rlock)->owner) == cc__self_id();
}

int cc_rlock_acquire(cc_rlock *rlock, cc_deadline deadline)
{
    struct rlock *R = rimpl(rlock);
    if (cc_rlock_held(rlock)) {
        if (R->count == UINT32_MAX)
            return -EOVERFLOW;
        R->count++;
        return 0;
    }
    int r = cc_lock_acquire(&R->lock, deadline);
    if (r < 0)
        return r;
    cc__store_relaxed(&R->owner, cc__self_id());
    R->count = 1;
    return 0;
}

int cc_rlock_release(cc_rlock *rlock)
{
    struct rlock *R = rimpl(rlock);
    if (!cc_rlock_held(rlock))
        return -EPERM;
    if (--R->count == 0) {
        cc__store_relaxed(&R->owner, 0);
        cc_lock_release(&R->lock);
    }
    return 0;
}

uint32_t cc__rlock_release_all(cc_rlock *rlock)
{
    struct rlock *R = rimpl(rlock);
    uint32_t count = R->count;
    R->count = 0;
    cc__store_relaxed(&R->owner, 0);
    cc_lock_release(&R->lock);
    return count;
}

void cc__rlock_acquire_restore(cc_rlock *rlock, uint32_t count)
{
    struct rlock *R = rimpl(rlock);
    cc_lock_acquire(&R->lock, CC_FOREVER);
    cc__store_relaxed(&R->owner, cc__self_id());
    R->count = count;
}
