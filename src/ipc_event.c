/*
 * ipc_event.c: the cross-process event and semaphore (include/concur/ipc.h).
 *
 * DESIGN. Each is one futex word in shared memory, waited on with the shared
 * (not FUTEX_PRIVATE) futex, so that the kernel keys it by the page rather
 * than by our address space. The event needs no waiter count: a waiter
 * sleeps only while the flag is 0, so a set that turns it from 0 to 1 wakes
 * everyone who could be asleep, and a set of an already set flag wakes
 * nobody. The semaphore counts its sleepers: a release must wake one even
 * when the value was not 0 (two releases racing with two sleepers), and
 * checks the count after adding to the value while a sleeper adds itself
 * before looking at the value (both seq_cst: one of them sees the other). A
 * sleeper that dies leaves the count too high, which costs extra wake calls
 * only.
 */
#include "atomics.h"
#include "concur/ipc.h"
#include "internal.h"

#include <errno.h>
#include <limits.h>

/* The public structs hold plain words; they are accessed only atomically. */
static cc__atomic_u32 *word(const uint32_t *w) { return (cc__atomic_u32 *)w; }

/* ---- event --------------------------------------------------------------- */

void cc_ipc_event_init(cc_ipc_event *e)
{
    cc__store_relaxed(word(&e->flag), 0);
}

void cc_ipc_event_set(cc_ipc_event *e)
{
    /* release: what was written before set is visible to whoever sees 1 */
    if (cc__xchg_rel(word(&e->flag), 1) == 0)
        cc__futex_wake(word(&e->flag), INT32_MAX, true);
}

void cc_ipc_event_clear(cc_ipc_event *e)
{
    cc__store_relaxed(word(&e->flag), 0); /* waiters re-check: no order */
}

int cc_ipc_event_is_set(const cc_ipc_event *e)
{
    return cc__load_acq(word(&e->flag)) != 0; /* pairs with set's release */
}

int cc_ipc_event_wait(cc_ipc_event *e, cc_deadline deadline)
{
    while (!cc_ipc_event_is_set(e)) {
        int r = cc__futex_wait(word(&e->flag), 0, deadline, true);
        if (r == -ETIMEDOUT)
            return r;
    }
    return 0;
}

/* ---- semaphore ----------------------------------------------------------- */

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

int cc_ipc_semaphore_acquire(cc_ipc_semaphore *s, cc_deadline deadline)
{
    while (!try_take(s)) {
        cc__fetch_add_seq_cst(word(&s->waiters), 1);
        int r = 0;
        if (cc__load_seq_cst(word(&s->value)) == 0)
            r = cc__futex_wait(word(&s->value), 0, deadline, true);
        cc__fetch_sub(word(&s->waiters), 1);
        if (r == -ETIMEDOUT)
            return r;
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
    if (n > 0 && cc__load_seq_cst(word(&s->waiters)) > 0)
        cc__futex_wake(word(&s->value), n > INT32_MAX ? INT32_MAX : (int)n,
                       true);
    return 0;
}

uint32_t cc_ipc_semaphore_value(const cc_ipc_semaphore *s)
{
    return cc__load_relaxed(word(&s->value));
}
