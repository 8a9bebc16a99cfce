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
 * cannot split. A waiter that times out or dies leaves the bit: the next set
 * pays one needless syscall. The semaphore keeps a count of its sleepers
 * beside the value and wakes n of them per release of n, as POSIX's
 * sem_post: a store-and-wake in one call would have to wake them all (the
 * event's bit can only go when nobody sleeps on it), which cost 25 x the
 * throughput at 8 processes on one unit. So a releaser that dies between its
 * add and its wake, or an acquirer that is woken and dies before it takes
 * its unit, can leave a unit with the others asleep; they look again every
 * SEM_RECHECK_NS (1 s) without a wake, which bounds that to a second (the
 * price: a timer armed per sleep, 5-15 % of the throughput when every
 * acquire sleeps). A sleeper that dies leaves the count too high, which
 * costs extra wake calls only.
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

/* How long an acquirer sleeps before it looks again without a wake: the
 * bound on what a death in the window between a release's add and its
 * wake, or of a woken acquirer before it took its unit, costs the others
 * (DESIGN). */
#define SEM_RECHECK_NS CC_SEC

int cc_ipc_semaphore_init(cc_ipc_semaphore *s, uint32_t value)
{
    if (value > CC_IPC_SEMAPHORE_MAX)
        return -EINVAL;
    cc__store_relaxed(word(&s->value), value);
    cc__store_relaxed(word(&s->waiters), 0);
    return 0;
}

/* Take a unit if there is one, without waiting. */
static bool try_take(cc_ipc_semaphore *s)
{
    uint32_t v = cc__load_relaxed(word(&s->value));
    while (v > 0)
        if (cc__cas_weak(word(&s->value), &v, v - 1)) /* acquire on success */
            return true;
    return false;
}

/* Sleep while the value is 0, counted in waiters, until a wake, the
 * deadline or the next look (SEM_RECHECK_NS). -ETIMEDOUT at the deadline. */
static int sleep_on(cc_ipc_semaphore *s, cc_deadline deadline)
{
    cc_deadline look = cc__now() + SEM_RECHECK_NS;
    bool last = deadline != CC_FOREVER && deadline <= look;
    /* seq_cst, both: a release adds, then reads waiters; we count
     * ourselves, then read the value: one of us sees the other */
    cc__fetch_add_seq_cst(word(&s->waiters), 1);
    int r = 0;
    if (cc__load_seq_cst(word(&s->value)) == 0)
        r = cc__futex_wait(word(&s->value), 0, last ? deadline : look, true);
    cc__fetch_sub(word(&s->waiters), 1);
    return r == -ETIMEDOUT && last ? r : 0;
}

int cc_ipc_semaphore_acquire(cc_ipc_semaphore *s, cc_deadline deadline)
{
    while (!try_take(s)) {
        /* A wake meant for us may have come with the deadline: a unit
         * left then is ours, not stranded for the sleepers after us. */
        if (sleep_on(s, deadline) == -ETIMEDOUT)
            return try_take(s) ? 0 : -ETIMEDOUT;
    }
    return 0;
}

int cc_ipc_semaphore_release(cc_ipc_semaphore *s, uint32_t n)
{
    uint32_t v = cc__load_relaxed(word(&s->value));
    do {
        if (n > CC_IPC_SEMAPHORE_MAX - v)
            return -EOVERFLOW;
    } while (!cc__cas_weak_seq_cst(word(&s->value), &v, v + n));
    cc__ipc_after_commit(CC__IPC_SEM_RELEASE);
    if (n > 0 && cc__load_seq_cst(word(&s->waiters)) > 0)
        cc__futex_wake(word(&s->value), n > INT32_MAX ? INT32_MAX : (int)n,
                       true);
    return 0;
}

uint32_t cc_ipc_semaphore_value(const cc_ipc_semaphore *s)
{
    return cc__load_relaxed(word(&s->value));
}
