/*
 * ipc_cond.c: the cross-process condition and barrier (include/concur/ipc.h).
 *
 * DESIGN. Both sleep on a futex word in shared memory (shared futex). The
 * condition's word is a sequence: a waiter reads it while still holding the
 * caller's lock, then releases the lock and sleeps only while the sequence
 * is unchanged; a notify bumps it first, so a notify that comes after the
 * read is never lost (the state it announces was changed under the lock).
 * A waiter count (seq_cst against the notifier's bump, Dekker style) spares
 * the wake syscall when nobody waits. The barrier keeps its state under a
 * robust lock of its own and sleeps on its generation word, which is bumped
 * whenever a round ends, passed or broken (broken_rounds keeps which, for
 * the last 32 rounds: a party of a passed round may wake only after the
 * next one broke, and must still see its own round passed). A
 * process that dies holding the barrier's lock breaks the barrier: its
 * count can no longer be trusted. The bump and the wake of the sleepers
 * are one futex call (cc__ipc_store_wake): as two, a process killed
 * between them would leave the sleepers asleep on a round that had ended,
 * since a sleeper on generation is no locker, and only a locker hears of
 * a dead holder.
 */
#include "atomics.h"
#include "internal.h"
#include "ipc_impl.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>

/* The public structs hold plain words; they are accessed only atomically. */
static cc__atomic_u32 *word(const uint32_t *w) { return (cc__atomic_u32 *)w; }

/* ---- condition ----------------------------------------------------------- */

void cc_ipc_condition_init(cc_ipc_condition *c)
{
    cc__store_relaxed(word(&c->seq), 0);
    cc__store_relaxed(word(&c->waiters), 0);
}

int cc_ipc_condition_wait(cc_ipc_condition *c, cc_ipc_lock *l,
                          cc_deadline deadline)
{
    uint32_t seen = cc__load_relaxed(word(&c->seq)); /* under l */
    cc__fetch_add_seq_cst(word(&c->waiters), 1);
    int r = cc_ipc_lock_release(l);
    if (r < 0) {
        cc__fetch_sub(word(&c->waiters), 1);
        return r;
    }
    r = cc__futex_wait(word(&c->seq), seen, deadline, true);
    cc__fetch_sub(word(&c->waiters), 1);
    int lr = cc_ipc_lock_acquire(l, CC_FOREVER);
    if (lr < 0)
        return lr; /* -EOWNERDEAD (held) or -ENOTRECOVERABLE */
    return r == -ETIMEDOUT ? r : 0;
}

static void notify(cc_ipc_condition *c, int n)
{
    cc__fetch_add_seq_cst(word(&c->seq), 1);
    if (cc__load_seq_cst(word(&c->waiters)) > 0)
        cc__futex_wake(word(&c->seq), n, true);
}

void cc_ipc_condition_notify(cc_ipc_condition *c, uint32_t n)
{
    if (n > 0)
        notify(c, n > INT32_MAX ? INT32_MAX : (int)n);
}

void cc_ipc_condition_notify_all(cc_ipc_condition *c) { notify(c, INT32_MAX); }

/* ---- barrier ------------------------------------------------------------- */

/* Under the lock: end the current round, passed or broken; wake its
 * waiters in the same futex call as the bump of generation, their futex
 * word (one that dies right after it dies holding the lock: the woken
 * waiters then take it with EOWNERDEAD, see the round ended and break the
 * barrier). */
static void end_round_locked(cc_ipc_barrier *b, bool broken)
{
    uint32_t bit = 1u << (cc__load_relaxed(word(&b->generation)) % 32);
    b->count = 0;
    b->broken_rounds = broken ? b->broken_rounds | bit
                              : b->broken_rounds & ~bit;
    cc__ipc_store_wake(word(&b->generation), FUTEX_OP_ADD, 1);
    cc__ipc_after_commit(CC__IPC_BARRIER_END);
}

static void break_locked(cc_ipc_barrier *b)
{
    b->broken = 1;
    if (b->count > 0)
        end_round_locked(b, true);
}

/* Take the barrier's lock; a holder's death breaks the barrier. */
static void barrier_lock(cc_ipc_barrier *b)
{
    int r = cc_ipc_lock_acquire(&b->lock, CC_FOREVER);
    if (r == -EOWNERDEAD) {
        break_locked(b);
        r = cc_ipc_lock_consistent(&b->lock);
    }
    if (r < 0)
        cc__panic("cc_ipc_barrier: lock", r);
}

static void barrier_unlock(cc_ipc_barrier *b) { cc_ipc_lock_release(&b->lock); }

int cc_ipc_barrier_init(cc_ipc_barrier *b, uint32_t parties)
{
    if (parties == 0 || parties > INT32_MAX)
        return -EINVAL;
    b->parties = parties;
    b->count = b->broken = b->broken_rounds = 0;
    cc__store_relaxed(word(&b->generation), 0);
    return cc_ipc_lock_init(&b->lock);
}

/* Under the lock, having arrived in round gen: sleep until it ends or the
 * deadline. Returns with the lock held. */
static void await_round_locked(cc_ipc_barrier *b, uint32_t gen,
                               cc_deadline deadline)
{
    int r = 0;
    while (cc__load_relaxed(word(&b->generation)) == gen && r != -ETIMEDOUT) {
        barrier_unlock(b);
        r = cc__futex_wait(word(&b->generation), gen, deadline, true);
        barrier_lock(b);
    }
}

int cc_ipc_barrier_wait(cc_ipc_barrier *b, cc_deadline deadline)
{
    barrier_lock(b);
    if (b->broken) {
        barrier_unlock(b);
        return -EPIPE;
    }
    int index = (int)b->count++;
    uint32_t gen = cc__load_relaxed(word(&b->generation));
    if (b->count == b->parties)
        end_round_locked(b, false);
    else
        await_round_locked(b, gen, deadline);
    int r = index;
    if (cc__load_relaxed(word(&b->generation)) == gen) {
        break_locked(b); /* our deadline passed first */
        r = -ETIMEDOUT;
    } else if (b->broken_rounds & 1u << (gen % 32)) {
        r = -EPIPE;
    }
    barrier_unlock(b);
    return r;
}

void cc_ipc_barrier_abort(cc_ipc_barrier *b)
{
    barrier_lock(b);
    break_locked(b);
    barrier_unlock(b);
}

void cc_ipc_barrier_reset(cc_ipc_barrier *b)
{
    barrier_lock(b);
    if (b->count > 0)
        end_round_locked(b, true);
    b->broken = 0;
    barrier_unlock(b);
}
