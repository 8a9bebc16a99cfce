/*
 * cond.c: cc_cond, a condition bound to a lock (include/concur/sync.h).
 *
 * DESIGN. A condition is a wait queue and its guard. A waiter takes the guard,
 * releases the user's lock, links itself and parks (cc__wait_on drops the guard
 * only after linking). A notifier takes the guard to pop waiters, so any notify
 * that starts after the waiter released the user's lock finds it linked: no
 * lost wakeups. The woken waiter then takes the user's lock again, without a
 * deadline (as Python). Lock order: the condition's guard, then the lock's guard
 * (inside cc_lock_release); the lock never takes a condition's guard.
 * `inside` counts the waiters in cc_cond_wait; a woken one leaves it (takes
 * the guard once more) before it takes the lock back, and touches the
 * condition no more; destroy waits for those leaving, so a condition may die
 * as soon as its waiters are notified (POSIX's pthread_cond_destroy example).
 */
#include "loop_internal.h"
#include "sync_impl.h"

#include <string.h>

struct cond {
    cc_lock *lock;             /* the bound lock, or NULL */
    cc_rlock *rlock;           /* the bound rlock, or NULL */
    struct cc__waitblock wait; /* guard and parked waiters */
    uint32_t inside;           /* waiters in cc_cond_wait; under the guard */
};

_Static_assert(sizeof(struct cond) == sizeof(cc_cond), "cc_cond size");
_Static_assert(offsetof(struct cond, wait) == offsetof(cc_cond, wait_), "wait");

static struct cond *impl(cc_cond *c) { return (struct cond *)c; }

void cc_cond_init(cc_cond *cond, cc_lock *lock)
{
    memset(cond, 0, sizeof *cond);
    impl(cond)->lock = lock;
}

void cc_cond_init_rlock(cc_cond *cond, cc_rlock *lock)
{
    memset(cond, 0, sizeof *cond);
    impl(cond)->rlock = lock;
}

void cc_cond_destroy(cc_cond *cond)
{
    struct cond *C = impl(cond);
    cc__mutex_lock(&C->wait.guard);
    if (!cc__waitq_empty(&C->wait.q))
        cc__panic("cc_cond_destroy: threads are waiting", -EBUSY);
    cc__await_leavers(&C->wait, &C->inside); /* notified, leaving */
    cc__mutex_unlock(&C->wait.guard);
}

static bool caller_holds_lock(struct cond *C)
{
    return C->rlock ? cc_rlock_held(C->rlock) : cc_lock_held(C->lock);
}

/* Release the bound lock entirely; returns what reacquire() needs. */
static uint32_t release_lock(struct cond *C)
{
    if (C->rlock)
        return cc__rlock_release_all(C->rlock);
    cc_lock_release(C->lock);
    return 0;
}

/* Not through the condition: it may be gone once we left it. */
static void reacquire_lock(cc_lock *lock, cc_rlock *rlock, uint32_t saved)
{
    struct cc__protect p; /* a cancelled task must get its lock back too */
    cc__protect_begin(&p);
    if (rlock)
        cc__rlock_acquire_restore(rlock, saved);
    else
        cc_lock_acquire(lock, CC_FOREVER);
    cc__protect_end(&p);
}

int cc_cond_wait(cc_cond *cond, cc_deadline deadline)
{
    struct cond *C = impl(cond);
    if (!caller_holds_lock(C))
        return -EPERM;
    cc_lock *lock = C->lock;
    cc_rlock *rlock = C->rlock;
    cc__waiter w;
    cc__waiter_init(&w);
    cc__mutex_lock(&C->wait.guard);
    uint32_t saved = release_lock(C);
    C->inside++;
    int r = cc__wait_on(&C->wait.q, &C->wait.guard, &w, deadline);
    C->inside--; /* our last access but the unlock's (cc_cond_destroy) */
    cc__mutex_unlock(&C->wait.guard);
    reacquire_lock(lock, rlock, saved);
    return r;
}

int cc_cond_wait_for(cc_cond *cond, cc_predicate pred, void *arg,
                     cc_deadline deadline)
{
    while (!pred(arg)) {
        int r = cc_cond_wait(cond, deadline);
        if (r == -EPERM || r == -ECANCELED)
            return r;
        if (r == -ETIMEDOUT)
            return pred(arg) ? 0 : -ETIMEDOUT;
    }
    return 0;
}

int cc_cond_notify(cc_cond *cond, int n)
{
    struct cond *C = impl(cond);
    int woken = 0;
    cc__mutex_lock(&C->wait.guard);
    while (woken < n && cc__wake_one(&C->wait.q, 0))
        woken++;
    cc__mutex_unlock(&C->wait.guard);
    return woken;
}

int cc_cond_notify_all(cc_cond *cond)
{
    struct cond *C = impl(cond);
    cc__mutex_lock(&C->wait.guard);
    int woken = cc__wake_all(&C->wait.q, 0);
    cc__mutex_unlock(&C->wait.guard);
    return woken;
}
