/*
 * poller.h: the OS readiness mechanism behind an event loop, kept small so
 * that another backend (io_uring) can replace epoll later, as Redis's ae.c
 * does. Linux: src/linux/poller.c picks src/linux/io_uring.c or
 * src/linux/epoll.c per loop at run time. Not installed.
 *
 * One poller per loop; every call except cc__poller_notify is made from the
 * loop's thread only.
 */
#ifndef CONCUR_POLLER_H
#define CONCUR_POLLER_H

#include "internal.h"

#include <stdint.h>

typedef struct cc__poller cc__poller;

/* One ready fd: the data given to cc__poller_add and the ready events
 * (POLLIN, POLLOUT, POLLERR, POLLHUP bits). */
typedef struct cc__poll_event {
    void *data;      /* as registered */
    uint32_t events; /* what is ready */
} cc__poll_event;

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

/* cc__poller_backend: "io_uring" or "epoll" (diagnostics, tests). */
const char *cc__poller_backend(cc__poller *p);

#endif
