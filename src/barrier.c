/*
 * barrier.c: cc_barrier (include/concur/sync.h).
 *
 * DESIGN. Everything happens under the guard. An arrival takes the next index;
 * all but the last park on `wait`. The last marks the round full (count ==
 * parties), runs the action without the guard, then ends the round: count back
 * to 0, generation + 1, and every parked thread woken with the token RELEASED.
 * Threads that arrive while the action runs belong to the next round: they park
 * on `entry` until the round ends, then arrive. Breaking (abort, a timeout, a
 * failed action) sets `broken` and wakes everyone with BROKEN; but an early
 * arrival that gives up on `entry` only sets `break_next`: the full round
 * ends as it would have, then the barrier breaks (as in Python, where the
 * action holds the lock, so the early one times out after the round).
 * reset() wakes the parked ones with BROKEN too and starts a fresh
 * generation. The result of a wait travels in its wakeup token, so it cannot
 * be confused by what happens to the barrier after the wakeup (Python's state
 * machine needs the extra "draining" and "resetting" states for that).
 * `inside` counts the threads in cc_barrier_wait; destroy waits for the
 * released ones to leave (they take the guard once more), so the barrier may
 * die as soon as a wait returns.
 */
#include "sync_impl.h"

#include <string.h>

enum { RELEASED = 1, BROKEN = 2 }; /* tokens of the threads parked on `wait` */

struct barrier {
    uint32_t parties;          /* threads per round */
    uint32_t count;            /* arrived this round; parties while the action
                                  runs */
    uint64_t generation;       /* rounds ended or reset; tells the action's
                                  thread whether its round survived */
    bool broken;               /* until reset */
    bool break_next;           /* break once the running action's round
                                  ends (an early arrival gave up) */
    uint32_t inside;           /* threads in cc_barrier_wait, released
                                  ones until they leave */
    cc_barrier_action action;  /* run by the last arrival, or NULL */
    void *arg;                 /* the action's argument */
    struct cc__waitblock wait; /* guard; threads that arrived this round */
    cc__waitq entry;           /* threads waiting for the action to finish */
};

_Static_assert(sizeof(struct barrier) == sizeof(cc_barrier), "cc_barrier size");
_Static_assert(offsetof(struct barrier, wait) == offsetof(cc_barrier, wait_),
               "wait");
_Static_assert(offsetof(struct barrier, entry) == offsetof(cc_barrier, entry_),
               "entry");

static struct barrier *impl(const cc_barrier *b) { return (struct barrier *)b; }

int cc_barrier_init(cc_barrier *barrier, uint32_t parties,
                    cc_barrier_action action, void *arg)
{
    if (parties == 0 || parties > INT32_MAX) /* indexes are returned as int */
        return -EINVAL;
    memset(barrier, 0, sizeof *barrier);
    struct barrier *B = impl(barrier);
    B->parties = parties;
    B->action = action;
    B->arg = arg;
    return 0;
}

void cc_barrier_destroy(cc_barrier *barrier)
{
    struct barrier *B = impl(barrier);
    cc__mutex_lock(&B->wait.guard);
    if (!cc__waitq_empty(&B->wait.q) || !cc__waitq_empty(&B->entry))
        cc__panic("cc_barrier_destroy: threads are waiting", -EBUSY);
    cc__await_leavers(&B->wait, &B->inside); /* released, leaving */
    cc__mutex_unlock(&B->wait.guard);
}

/* Under the guard. */
static void break_barrier(struct barrier *B)
{
    B->broken = true;
    cc__wake_all(&B->wait.q, BROKEN);
    cc__wake_all(&B->entry, 0);
}

/* Under the guard: wait while the previous round's action runs. */
static int wait_entry(struct barrier *B, cc_deadline deadline)
{
    while (B->count == B->parties && !B->broken) {
        cc__waiter w;
        cc__waiter_init(&w);
        int r = cc__wait_on(&B->entry, &B->wait.guard, &w, deadline);
        if (r < 0) { /* still linked: the full round's action still runs */
            B->break_next = true;
            return r;
        }
    }
    return 0;
}

/* Under the guard: the round is complete; run the action and release all. */
static int end_round(struct barrier *B, uint32_t index)
{
    if (B->action) {
        uint64_t generation = B->generation;
        cc__mutex_unlock(&B->wait.guard);
        int r = B->action(B->arg);
        cc__mutex_lock(&B->wait.guard);
        if (B->broken || B->generation != generation)
            return -EPIPE; /* aborted or reset meanwhile: all were woken */
        if (r < 0) {
            break_barrier(B);
            return r;
        }
    }
    B->count = 0;
    B->generation++;
    cc__wake_all(&B->wait.q, RELEASED);
    if (B->break_next)
        break_barrier(B); /* for the next round: wakes `entry` */
    else
        cc__wake_all(&B->entry, 0);
    return (int)index;
}

/* Under the guard: arrived, not last; park until the round ends or breaks. */
static int wait_round(struct barrier *B, uint32_t index, cc_deadline deadline)
{
    cc__waiter w;
    cc__waiter_init(&w);
    int r = cc__wait_on(&B->wait.q, &B->wait.guard, &w, deadline);
    if (r < 0) {
        break_barrier(B);
        return r;
    }
    return w.token == RELEASED ? (int)index : -EPIPE;
}

static int arrive(struct barrier *B, cc_deadline deadline)
{
    int r = wait_entry(B, deadline);
    if (r < 0)
        return r;
    if (B->broken)
        return -EPIPE;
    uint32_t index = B->count++;
    if (B->count == B->parties)
        return end_round(B, index);
    return wait_round(B, index, deadline);
}

int cc_barrier_wait(cc_barrier *barrier, cc_deadline deadline)
{
    struct barrier *B = impl(barrier);
    cc__mutex_lock(&B->wait.guard);
    B->inside++;
    int r = arrive(B, deadline);
    B->inside--; /* our last access but the unlock's (cc_barrier_destroy) */
    cc__mutex_unlock(&B->wait.guard);
    return r;
}

void cc_barrier_abort(cc_barrier *barrier)
{
    struct barrier *B = impl(barrier);
    cc__mutex_lock(&B->wait.guard);
    break_barrier(B);
    cc__mutex_unlock(&B->wait.guard);
}

void cc_barrier_reset(cc_barrier *barrier)
{
    struct barrier *B = impl(barrier);
    cc__mutex_lock(&B->wait.guard);
    cc__wake_all(&B->wait.q, BROKEN);
    cc__wake_all(&B->entry, 0);
    B->count = 0;
    B->broken = B->break_next = false;
    B->generation++;
    cc__mutex_unlock(&B->wait.guard);
}

uint32_t cc_barrier_parties(const cc_barrier *barrier)
{
    return impl(barrier)->parties; /* constant after init */
}

uint32_t cc_barrier_n_waiting(cc_barrier *barrier)
{
    struct barrier *B = impl(barrier);
    cc__mutex_lock(&B->wait.guard);
    /* A broken barrier keeps the count of its round until reset, but has
     * woken those waiters; a full one is running its action. */
    uint32_t n = B->broken || B->count == B->parties ? 0 : B->count;
    cc__mutex_unlock(&B->wait.guard);
    return n;
}

bool cc_barrier_broken(cc_barrier *barrier)
{
    struct barrier *B = impl(barrier);
    cc__mutex_lock(&B->wait.guard);
    bool broken = B->broken;
    cc__mutex_unlock(&B->wait.guard);
    return broken;
}
