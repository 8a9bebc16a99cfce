/*
 * semaphore.c: cc_semaphore, plain and bounded (include/concur/sync.h).
 *
 * DESIGN. The value is an atomic counter: acquire takes a unit with a CAS
 * when one is there, without the guard. Otherwise the acquirer takes the guard,
 * looks once more, and parks. A release takes the guard and hands its units
 * directly to parked acquirers, oldest first (the token says "you have a
 * unit"), adding only what is left to the counter. The counter grows only under
 * the guard, so an acquirer that saw zero under the guard and parked will be
 * found by the next release: no lost wakeups, and no woken thread ever finds
 * its unit stolen. An acquire that takes a unit without the guard returns only
 * once the guard is free (its releaser is done), so its caller may destroy the
 * semaphore at once, as POSIX's sem_destroy after sem_wait.
 */
#include "sync_impl.h"

#include <string.h>

struct semaphore {
    cc__atomic_u32 value;      /* free units; grows under the guard only */
    uint32_t bound;            /* the largest value, if bounded */
    bool bounded;              /* release checks bound */
    struct cc__waitblock wait; /* guard and parked acquirers */
};

_Static_assert(sizeof(struct semaphore) == sizeof(cc_semaphore), "size");
_Static_assert(offsetof(struct semaphore, wait) == offsetof(cc_semaphore, wait_),
               "wait");

static struct semaphore *impl(const cc_semaphore *s)
{
    return (struct semaphore *)s;
}

void cc_semaphore_init(cc_semaphore *sem, uint32_t value)
{
    memset(sem, 0, sizeof *sem);
    cc__store_relaxed(&impl(sem)->value, value);
}

void cc_bounded_semaphore_init(cc_semaphore *sem, uint32_t value)
{
    cc_semaphore_init(sem, value);
    impl(sem)->bound = value;
    impl(sem)->bounded = true;
}

void cc_semaphore_destroy(cc_semaphore *sem)
{
    if (!cc__waitq_empty(&impl(sem)->wait.q))
        cc__panic("cc_semaphore_destroy: threads are waiting", -EBUSY);
}

static bool try_take(struct semaphore *S)
{
    uint32_t v = cc__load_relaxed(&S->value);
    /* acq_rel CAS: acquire pairs with the release that added the unit. */
    while (v > 0)
        if (cc__cas_weak(&S->value, &v, v - 1))
            return true;
    return false;
}

static int acquire_slow(struct semaphore *S, cc_deadline deadline)
{
    if (deadline == CC_NOWAIT)
        return -ETIMEDOUT;
    cc__waiter w;
    cc__waiter_init(&w);
    cc__mutex_lock(&S->wait.guard);
    int r = try_take(S) ? 0
                        : cc__wait_on(&S->wait.q, &S->wait.guard, &w, deadline);
    cc__mutex_unlock(&S->wait.guard);
    return r;
}

int cc_semaphore_acquire(cc_semaphore *sem, cc_deadline deadline)
{
    struct semaphore *S = impl(sem);
    if (CC__UNLIKELY(!try_take(S)))
        return acquire_slow(S, deadline);
    /* Our unit's releaser may still be in release(); our caller may free
     * the semaphore on our return. */
    cc__mutex_wait_unlocked(&S->wait.guard);
    return 0;
}

/* Under the guard: would n more units pass the limit? */
static bool overflows(struct semaphore *S, uint32_t n)
{
    uint64_t after = (uint64_t)cc__load_relaxed(&S->value) + n;
    return after > (S->bounded ? S->bound : UINT32_MAX);
}

int cc_semaphore_release(cc_semaphore *sem, uint32_t n)
{
    struct semaphore *S = impl(sem);
    if (n == 0)
        return -EINVAL;
    cc__mutex_lock(&S->wait.guard);
    if (overflows(S, n)) {
        cc__mutex_unlock(&S->wait.guard);
        return -EOVERFLOW;
    }
    while (n > 0 && cc__wake_one(&S->wait.q, 1))
        n--;
    if (n > 0)
        cc__fetch_add(&S->value, n); /* release: pairs with try_take */
    cc__mutex_unlock(&S->wait.guard);
    return 0;
}

uint32_t cc_semaphore_value(const cc_semaphore *sem)
{
    return cc__load_relaxed(&impl(sem)->value);
}
