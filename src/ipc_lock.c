/*
 * ipc_lock.c: the robust cross-process lock (include/concur/ipc.h), and
 * what the other ipc files share (ipc_impl.h): the robust mutex calls,
 * cc__ipc_store_wake and the tests' hook.
 *
 * DESIGN. A pthread mutex made PTHREAD_PROCESS_SHARED and
 * PTHREAD_MUTEX_ROBUST: glibc keeps every robust mutex a thread holds on the
 * thread's robust list (registered with the kernel by set_robust_list), and
 * when the thread dies the kernel walks that list, marks each held mutex's
 * futex word FUTEX_OWNER_DIED and wakes a waiter, whose lock call then
 * returns EOWNERDEAD. That is the one protocol the kernel supports (a thread
 * has one robust list, and glibc owns it), so concur uses it rather than a
 * futex word of its own. Deadlines: pthread_mutex_timedlock takes
 * CLOCK_REALTIME; the monotonic deadline is converted on each try, and a
 * timeout is only believed once the monotonic clock has passed the deadline
 * (a clock step cannot make us return early). A trylock comes first: it is
 * the fast path, and the call every sanitizer understands.
 */
#include "ipc_impl.h"
#include "internal.h"

#include <errno.h>
#include <linux/futex.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifdef __SANITIZE_THREAD__
#include <sanitizer/tsan_interface.h>
/* TSan's pthread_mutex_timedlock interceptor records a lock only on 0; an
 * EOWNERDEAD return is an acquisition too (its lock and trylock
 * interceptors know that): tell TSan, as a successful try-lock. */
static void tsan_owner_died(pthread_mutex_t *m)
{
    __tsan_mutex_pre_lock(m, __tsan_mutex_try_lock);
    __tsan_mutex_post_lock(m, __tsan_mutex_try_lock, 0);
}
/* The kernel's store in cc__ipc_store_wake is a release TSan cannot see. */
static void tsan_release(void *w) { __tsan_release(w); }
#else
static void tsan_owner_died(pthread_mutex_t *m) { (void)m; }
static void tsan_release(void *w) { (void)w; }
#endif

_Atomic(void (*)(enum cc__ipc_commit)) cc__ipc_test_after_commit;

void cc__ipc_store_wake(cc__atomic_u32 *w, int op, int oparg)
{
    tsan_release(w);
    cc__fence_seq_cst(); /* the caller's writes before the kernel's store */
    /* wake all on w after the op; nr_wake2 (0), for the same word, after
     * that finds nobody left */
    uint32_t *u = (uint32_t *)w;
    if (syscall(SYS_futex, u, FUTEX_WAKE_OP, INT32_MAX, (void *)0, u,
                FUTEX_OP(op, oparg, FUTEX_OP_CMP_EQ, 0)) < 0)
        cc__panic("cc__ipc_store_wake", -errno);
}

int cc__robust_mutex_init(pthread_mutex_t *m)
{
    pthread_mutexattr_t a;
    int r = pthread_mutexattr_init(&a);
    if (r != 0)
        return -r;
    r = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    if (r == 0)
        r = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (r == 0) /* EDEADLK on a relock, EPERM on a stranger's unlock */
        r = pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
    if (r == 0)
        r = pthread_mutex_init(m, &a);
    pthread_mutexattr_destroy(&a);
    return -r;
}

/* The realtime instant `deadline` (monotonic) corresponds to, now. */
static struct timespec realtime_of(cc_deadline deadline)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t left = deadline - cc__now();
    int64_t ns = (int64_t)now.tv_sec * CC_SEC + now.tv_nsec;
    ns += left > 0 ? left : 0;
    return (struct timespec){ns / CC_SEC, ns % CC_SEC};
}

static int timed_lock(pthread_mutex_t *m, cc_deadline deadline)
{
    for (;;) {
        struct timespec ts = realtime_of(deadline);
        int r = pthread_mutex_timedlock(m, &ts);
        if (r == EOWNERDEAD)
            tsan_owner_died(m);
        if (r != ETIMEDOUT)
            return -r;
        if (cc__now() >= deadline)
            return -ETIMEDOUT;
    }
}

int cc__robust_mutex_lock(pthread_mutex_t *m, cc_deadline deadline)
{
    int r = pthread_mutex_trylock(m);
    if (r != EBUSY)
        return -r;
    if (deadline == CC_FOREVER)
        return -pthread_mutex_lock(m);
    if (deadline <= cc__now())
        return -ETIMEDOUT;
    return timed_lock(m, deadline);
}

int cc_ipc_lock_init(cc_ipc_lock *l)
{
    return cc__robust_mutex_init(&l->mutex);
}

int cc_ipc_lock_acquire(cc_ipc_lock *l, cc_deadline deadline)
{
    return cc__robust_mutex_lock(&l->mutex, deadline);
}

int cc_ipc_lock_consistent(cc_ipc_lock *l)
{
    return -pthread_mutex_consistent(&l->mutex);
}

int cc_ipc_lock_release(cc_ipc_lock *l)
{
    return -pthread_mutex_unlock(&l->mutex);
}
