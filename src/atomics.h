/*
 * atomics.h: every atomic operation and futex call of concur goes through this
 * header, so that model checkers and sanitizers see them all in one place.
 *
 * Naming: cc__load_acq, cc__store_rel, ... name their memory order; callers write
 * why that order is needed next to each use. Futex calls here are process-private
 * unless the name says _shared.
 */
#ifndef CONCUR_ATOMICS_H
#define CONCUR_ATOMICS_H

#include "concur/base.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef _Atomic uint32_t cc__atomic_u32;
typedef _Atomic uint64_t cc__atomic_u64;
typedef _Atomic int64_t cc__atomic_i64;
typedef _Atomic size_t cc__atomic_size;
typedef _Atomic(void *) cc__atomic_ptr;

#define cc__load_relaxed(p) atomic_load_explicit((p), memory_order_relaxed)
#define cc__load_acq(p) atomic_load_explicit((p), memory_order_acquire)
#define cc__store_relaxed(p, v) atomic_store_explicit((p), (v), memory_order_relaxed)
#define cc__store_rel(p, v) atomic_store_explicit((p), (v), memory_order_release)
#define cc__xchg(p, v) atomic_exchange_explicit((p), (v), memory_order_acq_rel)
#define cc__xchg_acq(p, v) atomic_exchange_explicit((p), (v), memory_order_acquire)
#define cc__xchg_rel(p, v) atomic_exchange_explicit((p), (v), memory_order_release)
#define cc__fetch_add(p, v) atomic_fetch_add_explicit((p), (v), memory_order_acq_rel)
#define cc__fetch_add_relaxed(p, v) \
    atomic_fetch_add_explicit((p), (v), memory_order_relaxed)
#define cc__fetch_sub(p, v) atomic_fetch_sub_explicit((p), (v), memory_order_acq_rel)
#define cc__fetch_or(p, v) atomic_fetch_or_explicit((p), (v), memory_order_acq_rel)
#define cc__fetch_and(p, v) atomic_fetch_and_explicit((p), (v), memory_order_acq_rel)
/* Strong CAS, acq_rel on success, acquire on failure; updates *expected. */
#define cc__cas(p, expected, desired)                                          \
    atomic_compare_exchange_strong_explicit((p), (expected), (desired),        \
                                            memory_order_acq_rel,              \
                                            memory_order_acquire)
#define cc__cas_weak(p, expected, desired)                                     \
    atomic_compare_exchange_weak_explicit((p), (expected), (desired),          \
                                          memory_order_acq_rel,                \
                                          memory_order_acquire)
#define cc__fence_seq_cst() atomic_thread_fence(memory_order_seq_cst)
/* Sequentially consistent forms, for store-then-load handshakes (Dekker style:
 * "publish, then look for sleepers" against "announce a sleeper, then look
 * again") where a seq_cst RMW followed by a seq_cst load is cheaper than a
 * fence: on x86 the RMW is already a full barrier and the load a plain mov. */
#define cc__load_seq_cst(p) atomic_load_explicit((p), memory_order_seq_cst)
#define cc__xchg_seq_cst(p, v) \
    atomic_exchange_explicit((p), (v), memory_order_seq_cst)
#define cc__fetch_add_seq_cst(p, v) \
    atomic_fetch_add_explicit((p), (v), memory_order_seq_cst)
#define cc__fetch_sub_seq_cst(p, v) \
    atomic_fetch_sub_explicit((p), (v), memory_order_seq_cst)
#define cc__fetch_or_seq_cst(p, v) \
    atomic_fetch_or_explicit((p), (v), memory_order_seq_cst)
/* Weak CAS, seq_cst on success, relaxed on failure; updates *expected. */
#define cc__cas_weak_seq_cst(p, expected, desired)                             \
    atomic_compare_exchange_weak_explicit((p), (expected), (desired),          \
                                          memory_order_seq_cst,                \
                                          memory_order_relaxed)

/* A pause for spin loops (x86 PAUSE, arm64 YIELD). */
static inline void cc__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#else
    __asm__ __volatile__("" ::: "memory");
#endif
}

/*
 * cc__futex_wait: sleep while *addr == expected, until woken or until `deadline`
 * (absolute, monotonic ns; CC_FOREVER for none). Returns 0 when woken or when *addr
 * changed (also spuriously: callers always recheck), -ETIMEDOUT at the deadline,
 * -EINTR on a signal. shared: the word may sit in memory shared between processes.
 */
int cc__futex_wait(cc__atomic_u32 *addr, uint32_t expected, cc_deadline deadline,
                   bool shared);

/* cc__futex_wake: wake up to n sleepers on addr (INT32_MAX for all). */
void cc__futex_wake(cc__atomic_u32 *addr, int n, bool shared);

#endif
