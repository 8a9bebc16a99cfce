/*
 * poller.h: the OS readiness mechanism behind an event loop, kept small so
 * that another backend (io_uring) can replace epoll later, as Redis's ae.c
 * does. Linux: src/linux/poller.c picks src/linux/io_uring.c or
 * src/linux/epoll.c per loop at run time. Not installed.
 *
 * One poller per loop; every call except cc__poller_notify is made from the
 * loop's thread only. Besides readiness, io_uring also does reads for the
 * loop's tasks (cc__poller_io; epoll answers -ENOSYS): their completions
 * come back through cc__poller_wait as events flagged CC__POLL_IO.
 */
#ifndef CONCUR_POLLER_H
#define CONCUR_POLLER_H

#include "internal.h"

#include <stdint.h>

typedef struct cc__poller cc__poller;

/* In cc__poll_event.events: an I/O request of cc__poller_io completed,
 * not a readiness report; res holds its result. */
#define CC__POLL_IO (1u << 31)

/* One ready fd: the data given to cc__poller_add and the ready events
 * (POLLIN, POLLOUT, POLLERR, POLLHUP bits); or, with CC__POLL_IO, one
 * completed I/O request: the data given to cc__poller_io and its result. */
typedef struct cc__poll_event {
    void *data;      /* as registered or submitted */
    uint32_t events; /* what is ready, or CC__POLL_IO */
    int32_t res;     /* CC__POLL_IO: bytes moved, or a negative errno */
} cc__poll_event;

/* What a cc__poller_io request does: recv(fd, buf, n, 0) or
 * read(fd, buf, n) at the file's position. */
enum cc__io_op { CC__IO_RECV, CC__IO_READ };

/* cc__poller_new: a poller with its wakeup channel. 0, -ENOMEM, -EMFILE. */
int cc__poller_new(cc__poller **out);
void cc__poller_free(cc__poller *p);

/*
 * cc__poller_add: report fd once when it is ready for `events` (POLLIN,
 * POLLOUT), with `data`; then it stays registered but silent until
 * cc__poller_del. Returns 0, -EEXIST (fd is registered already), -EBADF,
 * -EPERM (fd cannot be polled), -EINVAL or -ENOMEM.
 */
int cc__poller_add(cc__poller *p, int fd, uint32_t events, void *data);

/* cc__poller_mod: re-arm a registered fd for `events` and `data`, one-shot
 * as cc__poller_add. Returns 0, -ENOENT (not registered: closed since), or
 * another negative errno of cc__poller_add. */
int cc__poller_mod(cc__poller *p, int fd, uint32_t events, void *data);

/* cc__poller_del: forget fd (a closed fd is forgotten already). */
void cc__poller_del(cc__poller *p, int fd);

/*
 * cc__poller_wait: wait until an fd is ready, cc__poller_notify is called, or
 * the deadline passes (never before it: rounded up), and store up to `max`
 * events. Returns how many (0 for a notify or the deadline). EINTR is 0.
 */
int cc__poller_wait(cc__poller *p, cc_deadline deadline, cc__poll_event *out,
                    int max);

/* cc__poller_notify: make a cc__poller_wait in progress, or the next one,
 * return. Any thread; async-signal-safe. */
void cc__poller_notify(cc__poller *p);

/*
 * cc__poller_io: start an I/O request that the kernel completes by itself,
 * waiting for readiness first if need be (io_uring only): buf belongs to
 * the kernel until cc__poller_wait reports it done, as exactly one
 * CC__POLL_IO event with `data` and the result (-ECANCELED when
 * cc__poller_cancel won, -EAGAIN when the file does not support waiting
 * this way). Stores in *id what cc__poller_cancel takes. Returns 0,
 * -ENOSYS (epoll, or a ring without such requests: Linux 5.5; poll and do
 * the call yourself) or -ENOMEM.
 */
int cc__poller_io(cc__poller *p, enum cc__io_op op, int fd, void *buf,
                  size_t n, void *data, uint64_t *id);

/* cc__poller_cancel: ask the kernel to end request id early. Its event
 * still comes (the request may have completed meanwhile: its result then
 * stands); an id already reported is ignored. */
void cc__poller_cancel(cc__poller *p, uint64_t id);

/* cc__poller_submit: hand the kernel the requests queued so far now, not
 * with the next wait (io_uring; epoll has none): each has looked its fd up
 * when this returns, so the fd may be closed and its number reused (unless
 * the kernel refused them, -EBUSY for a completion queue in overflow: then
 * they go with the next wait), and the polls and reads they removed or
 * cancelled have let go of their files (their events still come). */
void cc__poller_submit(cc__poller *p);

/* cc__poller_backend: "io_uring" or "epoll" (diagnostics, tests). */
const char *cc__poller_backend(cc__poller *p);

#endif
