/*
 * event.c: cc_event (include/concur/sync.h).
 *
 * DESIGN. An atomic flag, and a wait queue under a guard. wait() returns at
 * once when it sees the flag set; otherwise it checks again under the guard and
 * parks. set() stores 1 and wakes every waiter in one critical section of the
 * guard (while the flag is 1 nobody is parked, so a set() that sees 1 is done).
 * A waiter checked the flag under the guard before linking itself, so the set()
 * that follows that check finds it: no lost wakeups; and a set() cannot wake,
 * late, a waiter that began after the flag was seen and cleared. A woken
 * waiter returns 0 without looking at the flag again, so a clear() right after
 * set() cannot strand it (Python's semantics). clear() is a plain store: it
 * wakes nobody. A wait that sees the flag without the guard returns only once
 * the guard is free (the setter is done with the event), so its caller may
 * destroy the event at once, as POSIX allows after sem_wait.
 */
#include "sync_impl.h"

#include <string.h>

struct event {
    cc__atomic_u32 flag;       /* 1 when set */
    struct cc__waitblock wait; /* guard and parked waiters */
};

_Static_assert(sizeof(struct event) == sizeof(cc_event), "cc_event size");
_Static_assert(offsetof(struct event, wait) == offsetof(cc_event, wait_), "wait");

static struct event *impl(const cc_event *e) { return (struct event *)e; }

void cc_event_init(cc_event *event) { memset(event, 0, sizeof *event); }

void cc_event_destroy(cc_event *event)
{
    if (!cc__waitq_empty(&impl(event)->wait.q))
        cc__panic("cc_event_destroy: threads are waiting", -EBUSY);
}

void cc_event_set(cc_event *event)
{
    struct event *E = impl(event);
    /* acquire: pairs with the release below. While the flag is 1 nobody can
     * be parked (waiters park only after seeing 0 under the guard). */
    if (cc__load_acq(&E->flag) == 1)
        return;
    cc__mutex_lock(&E->wait.guard);
    /* release: the setter's writes happen-before a waiter that sees the flag
     * without parking. Stored under the guard, together with the wakeups: a
     * set() that stored the flag outside it could wake, late, a waiter that
     * started waiting after the flag was seen and cleared. */
    cc__store_rel(&E->flag, 1);
    cc__wake_all(&E->wait.q, 0);
    cc__mutex_unlock(&E->wait.guard);
}

void cc_event_clear(cc_event *event)
{
    /* relaxed: clearing publishes nothing; waiters park only under the guard. */
    cc__store_relaxed(&impl(event)->flag, 0);
}

bool cc_event_is_set(const cc_event *event)
{
    /* acquire: a caller that sees the flag also sees what the setter wrote. */
    return cc__load_acq(&impl(event)->flag) == 1;
}

int cc_event_wait(cc_event *event, cc_deadline deadline)
{
    struct event *E = impl(event);
    if (cc_event_is_set(event)) {
        /* The setter may still be in set(); our caller may free the event
         * on our return. */
        cc__mutex_wait_unlocked(&E->wait.guard);
        return 0;
    }
    if (deadline == CC_NOWAIT)
        return -ETIMEDOUT;
    cc__waiter w;
    cc__waiter_init(&w);
    cc__mutex_lock(&E->wait.guard);
    int r = cc_event_is_set(event)
                ? 0
                : cc__wait_on(&E->wait.q, &E->wait.guard, &w, deadline);
    if (r == -ETIMEDOUT && cc_event_is_set(event)) /* under the guard: */
        r = 0;                                     /* its setter is done */
    cc__mutex_unlock(&E->wait.guard);
    return r;
}
