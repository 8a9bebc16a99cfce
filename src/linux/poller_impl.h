/*
 * poller_impl.h: the two Linux backends behind poller.h (epoll.c and
 * io_uring.c), each with the semantics poller.h gives cc__poller_*;
 * poller.c picks one per loop at run time. Not installed.
 */
#ifndef CONCUR_POLLER_IMPL_H
#define CONCUR_POLLER_IMPL_H

#include "../poller.h"

typedef struct cc__epoll cc__epoll;
int cc__epoll_new(cc__epoll **out);
void cc__epoll_free(cc__epoll *p);
int cc__epoll_add(cc__epoll *p, int fd, uint32_t events, void *data);
int cc__epoll_mod(cc__epoll *p, int fd, uint32_t events, void *data);
void cc__epoll_del(cc__epoll *p, int fd);
int cc__epoll_wait(cc__epoll *p, cc_deadline deadline, cc__poll_event *out,
                   int max);
void cc__epoll_notify(cc__epoll *p);

#ifdef CONCUR_HAVE_IO_URING
typedef struct cc__uring cc__uring;
/* cc__uring_new: as cc__epoll_new; also -ENOSYS, -EPERM (io_uring refused:
 * old kernel, seccomp, io_uring_disabled), so that the caller falls back. */
int cc__uring_new(cc__uring **out);
void cc__uring_free(cc__uring *p);
int cc__uring_add(cc__uring *p, int fd, uint32_t events, void *data);
int cc__uring_mod(cc__uring *p, int fd, uint32_t events, void *data);
void cc__uring_del(cc__uring *p, int fd);
int cc__uring_wait(cc__uring *p, cc_deadline deadline, cc__poll_event *out,
                   int max);
void cc__uring_notify(cc__uring *p);
int cc__uring_io(cc__uring *p, enum cc__io_op op, int fd, void *buf,
                 size_t n, void *data, uint64_t *id);
void cc__uring_cancel(cc__uring *p, uint64_t id);
void cc__uring_submit(cc__uring *p);
#endif

#endif
