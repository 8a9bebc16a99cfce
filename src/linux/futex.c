/*
 * futex.c: the Linux futex behind cc__futex_wait / cc__futex_wake (atomics.h).
 */
#include "../atomics.h"
#include "../internal.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long futex(cc__atomic_u32 *addr, int op, uint32_t val,
                  const struct timespec *ts, uint32_t bitset)
{
    return syscall(SYS_futex, (uint32_t *)addr, op, val, ts, NULL, bitset);
}

int cc__futex_wait(cc__atomic_u32 *addr, uint32_t expected, cc_deadline deadline,
                   bool shared)
{
    struct timespec ts, *tsp = NULL;
    if (deadline != CC_FOREVER) {
        if (deadline <= cc__now())
            return -ETIMEDOUT;
        ts.tv_sec = deadline / CC_SEC;
        ts.tv_nsec = deadline % CC_SEC;
        tsp = &ts;
    }
    /* FUTEX_WAIT_BITSET takes an absolute timeout on CLOCK_MONOTONIC. */
    int op = FUTEX_WAIT_BITSET | (shared ? 0 : FUTEX_PRIVATE_FLAG);
    if (futex(addr, op, expected, tsp, FUTEX_BITSET_MATCH_ANY) == 0)
        return 0;
    switch (errno) {
    case EAGAIN:
        return 0;
    case ETIMEDOUT:
        return -ETIMEDOUT;
    case EINTR:
        return -EINTR;
    default:
        cc__panic("futex wait", -errno);
    }
}

void cc__futex_wake(cc__atomic_u32 *addr, int n, bool shared)
{
    int op = FUTEX_WAKE | (shared ? 0 : FUTEX_PRIVATE_FLAG);
    if (futex(addr, op, (uint32_t)n, NULL, 0) < 0 && errno != EFAULT)
        cc__panic("futex wake", -errno);
}
