/*
 * epoll.c: the epoll poller (poller.h, through poller_impl.h). An eventfd registered level-triggered
 * with a NULL data pointer carries cross-thread wakeups; a wakeup's count is
 * read back (and so reset) when epoll reports it. fds are registered one-shot:
 * an event disarms them until they are re-armed (mod) or deleted. Waits use
 * epoll_pwait2 (Linux 5.11), whose timeout is in nanoseconds, so timers are
 * not rounded up to the next millisecond; epoll_wait where it is missing.
 */
#include "../atomics.h"
#include "poller_impl.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

struct cc__epoll {
    int epfd; /* the epoll instance */
    int evfd; /* the eventfd of cc__epoll_notify */
};

/* The eventfd's epoll data: the address of this tag, never a waiter's. */
static char notify_tag;

int cc__epoll_new(cc__epoll **out)
{
    cc__epoll *p = cc__malloc(sizeof *p);
    if (!p)
        return -ENOMEM;
    p->epfd = epoll_create1(EPOLL_CLOEXEC);
    p->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &notify_tag};
    if (p->epfd < 0 || p->evfd < 0 ||
        epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->evfd, &ev) < 0) {
        int err = errno == ENOMEM ? -ENOMEM : -EMFILE;
        cc__epoll_free(p);
        return err;
    }
    *out = p;
    return 0;
}

void cc__epoll_free(cc__epoll *p)
{
    if (p->epfd >= 0)
        close(p->epfd);
    if (p->evfd >= 0)
        close(p->evfd);
    cc__free(p, sizeof *p);
}

static int ctl(cc__epoll *p, int op, int fd, uint32_t events, void *data)
{
    /* POLLIN/POLLOUT have the values of EPOLLIN/EPOLLOUT on Linux. */
    struct epoll_event ev = {
        .events = (events & (POLLIN | POLLOUT | POLLPRI)) | EPOLLONESHOT,
        .data.ptr = data,
    };
    return epoll_ctl(p->epfd, op, fd, &ev) < 0 ? -errno : 0;
}

int cc__epoll_add(cc__epoll *p, int fd, uint32_t events, void *data)
{
    return ctl(p, EPOLL_CTL_ADD, fd, events, data);
}

int cc__epoll_mod(cc__epoll *p, int fd, uint32_t events, void *data)
{
    return ctl(p, EPOLL_CTL_MOD, fd, events, data);
}

void cc__epoll_del(cc__epoll *p, int fd)
{
    epoll_ctl(p->epfd, EPOLL_CTL_DEL, fd, NULL); /* ENOENT/EBADF: closed */
}

/* Milliseconds until the deadline, rounded up so that no timer fires early. */
static int timeout_ms(cc_deadline deadline)
{
    if (deadline == CC_FOREVER)
        return -1;
    int64_t left = deadline - cc__now();
    if (left <= 0)
        return 0;
    int64_t ms = (left + 999999) / 1000000;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 35)
/* 1 until epoll_pwait2 answers ENOSYS (an older kernel), then 0. Relaxed:
 * every thread that tries finds the same answer. */
static cc__atomic_u32 have_pwait2 = 1;

static int epoll_wait_until(int epfd, struct epoll_event *evs, int n,
                            cc_deadline deadline)
{
    if (cc__load_relaxed(&have_pwait2)) {
        struct timespec ts = {0, 0}, *tp = NULL;
        if (deadline != CC_FOREVER) {
            int64_t left = deadline - cc__now();
            if (left > 0)
                ts = (struct timespec){left / CC_SEC, left % CC_SEC};
            tp = &ts;
        }
        int r = epoll_pwait2(epfd, evs, n, tp, NULL);
        if (r >= 0 || errno != ENOSYS)
            return r;
        cc__store_relaxed(&have_pwait2, 0);
    }
    return epoll_wait(epfd, evs, n, timeout_ms(deadline));
}
#else
static int epoll_wait_until(int epfd, struct epoll_event *evs, int n,
                            cc_deadline deadline)
{
    return epoll_wait(epfd, evs, n, timeout_ms(deadline));
}
#endif

static void drain_notify(cc__epoll *p)
{
    uint64_t n;
    if (read(p->evfd, &n, sizeof n) < 0 && errno != EAGAIN)
        cc__panic("read(eventfd)", -errno);
}

int cc__epoll_wait(cc__epoll *p, cc_deadline deadline, cc__poll_event *out,
                    int max)
{
    enum { BATCH = 64 };
    struct epoll_event evs[BATCH];
    int n = epoll_wait_until(p->epfd, evs, max < BATCH ? max : BATCH,
                             deadline);
    if (n < 0) {
        if (errno != EINTR)
            cc__panic("epoll_wait", -errno);
        return 0;
    }
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (evs[i].data.ptr == &notify_tag) {
            drain_notify(p);
            continue;
        }
        out[k].data = evs[i].data.ptr;
        out[k].events = evs[i].events;
        out[k].res = 0;
        k++;
    }
    return k;
}

void cc__epoll_notify(cc__epoll *p)
{
    uint64_t one = 1;
    /* EAGAIN: the counter is saturated, so a wakeup is pending anyway. */
    if (write(p->evfd, &one, sizeof one) < 0 && errno != EAGAIN)
        cc__panic("write(eventfd)", -errno);
}
