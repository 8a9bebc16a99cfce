/*
 * ipc_event.c: the cross-process event and semaphore (include/concur/ipc.h).
 *
 * DESIGN. Each is one futex word in shared memory, waited on with the shared
 * (not FUTEX_PRIVATE) futex, so that the kernel keys it by the page rather
 * than by our address space. A process may die between any two
 * instructions, so a store that sleepers wait for must not be followed by
 * their wake as a separate step: a setter killed in between would leave
 * them asleep with the event set. Hence an event waiter announces itself
 * IN THE WORD (the SLEEPERS bit, from 0) before it sleeps, and sleeps only
 * while the word is exactly SLEEPERS; a set that finds the bit clear has no
 * sleepers and just stores SET (a CAS, which fails if a waiter announced
 * itself meanwhile: no syscall); one that finds it makes its store and the
 * wake one futex call (cc__ipc_store_wake, FUTEX_WAKE_OP), which a death
 * cannot split. A waiter that times out or dies leaves the bit: the next
 * set pays one needless syscall. The semaphore does the same with its
 * value word (units * 2 | SEM_SLEEPERS): an acquirer finding no unit
 * announces itself (0 to SEM_SLEEPERS) and sleeps while the word is just
 * that; a release finding the bit clear adds its units with a CAS (no
 * syscall); one finding it set first clears the bit AND wakes every
 * sleeper in one call, then adds its units with the CAS: a death between
 * the two woke them for nothing (they find no unit, announce themselves
 * again, sleep); after the CAS, nobody sleeps unwoken. The price: with
 * sleepers, a release wakes them all, not n (the bit may only go when
 * nobody sleeps on it), and the losers sleep again.
 */
#include "atomics.h"
#include "concur/ipc.h"
#include "internal.h"
#include "ipc_impl.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>

/* The public structs hold plain words; they are accessed only atomically. */
static cc__atomic_u32 *word(const uint32_t *w) { return (cc__atomic_u32 *)w; }

/* ---- event --------------------------------------------------------------- */

#define SET 1u      /* flag: the event is set */
#define SLEEPERS 2u /* flag (alone): a waiter may be asleep on it */

void cc_ipc_event_init(cc_ipc_event *e)
{
    cc__store_relaxed(word(&e->flag), 0);
}

void cc_ipc_event_set(cc_ipc_event *e)
{
    uint32_t v = cc__load_relaxed(word(&e->flag));
    for (;;) {
        if (v & SLEEPERS) { /* the store and the wake must be one */
            cc__ipc_store_wake(word(&e->flag), FUTEX_OP_SET, SET);
            break;
        }
        /* release: what was written before set is visible to whoever sees
         * SET; fails if a waiter announced itself meanwhile */
        if (cc__cas_weak(word(&e->flag), &v, SET))
            break;
    }
    cc__ipc_after_commit(CC__IPC_EVENT_SET);
}

void cc_ipc_event_clear(cc_ipc_event *e)
{
    uint32_t set = SET; /* SLEEPERS stays: its sleepers still sleep */
    cc__cas(word(&e->flag), &set, 0); /* waiters re-check: no order needed */
}

int cc_ipc_event_is_set(const cc_ipc_event *e)
{
    /* acquire: pairs with set's release (its CAS, or the fenced store) */
    return (cc__load_acq(word(&e->flag)) & SET) != 0;
}

int cc_ipc_event_wait(cc_ipc_event *e, cc_deadline deadline)
{
    uint32_t v = cc__load_acq(word(&e->flag)); /* as is_set */
    while (!(v & SET)) {
        /* announce a sleeper in the word itself (0 to SLEEPERS): a set's
         * CAS then fails, and it wakes us in its store */
        if (v == 0 && !cc__cas(word(&e->flag), &v, SLEEPERS))
            continue;
        if (cc__futex_wait(word(&e->flag), SLEEPERS, deadline, true) ==
            -ETIMEDOUT)
            return -ETIMEDOUT;
        v = cc__load_acq(word(&e->flag));
    }
    return 0;
}

/* ---- semaphore ----------------------------------------------------------- */

#define SEM_SLEEPERS 1u /* value: an acquirer may be asleep on it */
#define SEM_UNIT 2u     /* value: units * SEM_UNIT | SEM_SLEEPERS */

int cc_ipc_semaphore_init(cc_ipc_semaphore *s, uint32_t value)
{
    if (value > CC_IPC_SEMAPHORE_MAX)
        return -EINVAL;
    cc__store_relaxed(word(&s->value), value * SEM_UNIT);
    cc__store_relaxed(word(&s->waiters), 0); /* unused */
    return 0;
}

/* Take a unit if there is one, without waiting (SEM_SLEEPERS stays). */
static bool try_take(cc_ipc_semaphore *s)
{
    uint32_t v = cc__load_relaxed(word(&s->value));
    while (v >= SEM_UNIT)
        if (cc__cas_weak(word(&s->value), &v, v - SEM_UNIT)) /* acquire */
            return true;
    return false;
}

int cc_ipc_semaphore_acquire(cc_ipc_semaphore *s, cc_deadline deadline)
{
    while (!try_take(s)) {
        /* announce a sleeper in the word (0 to SEM_SLEEPERS): a release's
         * CAS then fails, and it wakes us as it clears the bit */
        uint32_t v = 0;
        if (!cc__cas(word(&s->value), &v, SEM_SLEEPERS) &&
            v != SEM_SLEEPERS)
            continue; /* a unit came */
        if (cc__futex_wait(word(&s->value), SEM_SLEEPERS, deadline, true) ==
            -ETIMEDOUT)
            return -ETIMEDOUT;
    }
    return 0;
}

int cc_ipc_semaphore_release(cc_ipc_semaphore *s, uint32_t n)
{
    if (n == 0)
        return 0;
    uint32_t v = cc__load_relaxed(word(&s->value));
    for (;;) {
        if (n > CC_IPC_SEMAPHORE_MAX - v / SEM_UNIT)
            return -EOVERFLOW;
        if (v & SEM_SLEEPERS) { /* the bit goes with the wake: one call */
            cc__ipc_store_wake(word(&s->value), FUTEX_OP_ANDN,
                               SEM_SLEEPERS);
            v &= ~SEM_SLEEPERS; /* a guess: the CAS checks it */
        } else if (cc__cas_weak(word(&s->value), &v, v + n * SEM_UNIT)) {
            break; /* release: the units, and what came before them */
        }
    }
    cc__ipc_after_commit(CC__IPC_SEM_RELEASE);
    return 0;
}

uint32_t cc_ipc_semaphore_value(const cc_ipc_semaphore *s)
{
    return cc__load_relaxed(word(&s->value)) / SEM_UNIT;
}
