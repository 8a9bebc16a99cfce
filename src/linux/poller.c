/*
 * poller.c: picks the poller backend of each loop at run time. io_uring
 * (io_uring.c) when it was compiled in (liburing found), the kernel accepts
 * it and CONCUR_NO_IO_URING is unset or 0; epoll (epoll.c) otherwise. The
 * dispatch is one predictable branch per call, next to a system call.
 */
#include "poller_impl.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

struct cc__poller {
    bool uring;       /* which backend: io_uring, else epoll */
    union {
        cc__epoll *ep; /* the epoll backend */
#ifdef CONCUR_HAVE_IO_URING
        cc__uring *ur; /* the io_uring backend */
#endif
    };
};

#ifdef CONCUR_HAVE_IO_URING
#define PICK(p, uring_call, epoll_call) \
    ((p)->uring ? (uring_call) : (epoll_call))
#else
#define PICK(p, uring_call, epoll_call) (epoll_call)
#endif

#ifdef CONCUR_HAVE_IO_URING
/* io_uring unless the environment forbids it. */
static bool want_uring(void)
{
    const char *no = getenv("CONCUR_NO_IO_URING");
    return !no || !*no || (no[0] == '0' && !no[1]);
}
#endif

int cc__poller_new(cc__poller **out)
{
    cc__poller *p = cc__calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    int r = -ENOSYS;
#ifdef CONCUR_HAVE_IO_URING
    if (want_uring()) {
        r = cc__uring_new(&p->ur);
        p->uring = r == 0; /* any failure (even ENOMEM: RLIMIT_MEMLOCK on
                              kernels before 5.12) falls back to epoll */
    }
#endif
    if (r != 0)
        r = cc__epoll_new(&p->ep);
    if (r != 0) {
        cc__free(p, sizeof *p);
        return r;
    }
    *out = p;
    return 0;
}

void cc__poller_free(cc__poller *p)
{
    PICK(p, cc__uring_free(p->ur), cc__epoll_free(p->ep));
    cc__free(p, sizeof *p);
}

int cc__poller_add(cc__poller *p, int fd, uint32_t events, void *data)
{
    return PICK(p, cc__uring_add(p->ur, fd, events, data),
                cc__epoll_add(p->ep, fd, events, data));
}

int cc__poller_mod(cc__poller *p, int fd, uint32_t events, void *data)
{
    return PICK(p, cc__uring_mod(p->ur, fd, events, data),
                cc__epoll_mod(p->ep, fd, events, data));
}

void cc__poller_del(cc__poller *p, int fd)
{
    PICK(p, cc__uring_del(p->ur, fd), cc__epoll_del(p->ep, fd));
}

int cc__poller_wait(cc__poller *p, cc_deadline deadline, cc__poll_event *out,
                    int max)
{
    return PICK(p, cc__uring_wait(p->ur, deadline, out, max),
                cc__epoll_wait(p->ep, deadline, out, max));
}

void cc__poller_notify(cc__poller *p)
{
    PICK(p, cc__uring_notify(p->ur), cc__epoll_notify(p->ep));
}

int cc__poller_io(cc__poller *p, enum cc__io_op op, int fd, void *buf,
                  size_t n, void *data, uint64_t *id)
{
#ifdef CONCUR_HAVE_IO_URING
    if (p->uring)
        return cc__uring_io(p->ur, op, fd, buf, n, data, id);
#endif
    (void)p, (void)op, (void)fd, (void)buf, (void)n, (void)data, (void)id;
    return -ENOSYS;
}

void cc__poller_cancel(cc__poller *p, uint64_t id)
{
#ifdef CONCUR_HAVE_IO_URING
    if (p->uring)
        cc__uring_cancel(p->ur, id);
#endif
    (void)p, (void)id;
}

void cc__poller_submit(cc__poller *p)
{
#ifdef CONCUR_HAVE_IO_URING
    if (p->uring)
        cc__uring_submit(p->ur);
#endif
    (void)p;
}

const char *cc__poller_backend(cc__poller *p)
{
    return p->uring ? "io_uring" : "epoll";
}
