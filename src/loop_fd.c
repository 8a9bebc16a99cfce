/*
 * loop_fd.c: fd readiness for tasks, and socket helpers that park on EAGAIN
 * (include/concur/loop.h).
 *
 * DESIGN. A task waiting for an fd registers it one-shot with its loop's
 * poller, with a waiter on its own stack as the event's data, and parks that
 * waiter (cc__waiter_park) with the deadline. The loop's dispatch hands the
 * ready events to the waiter as its token and wakes it. Whatever ended the
 * wait, the task deletes the registration before it returns; the loop
 * dispatches a whole batch of events before it runs any task, so no event can
 * name a waiter that is gone. One registration per wait costs two epoll_ctl
 * calls; it keeps no per-fd table that a closed and reused fd could confuse.
 * Outside a task, the thread waits in poll().
 */
#include "loop_internal.h"
#include "poller.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

/* Milliseconds for poll() until the deadline, rounded up. */
static int poll_timeout(cc_deadline deadline)
{
    if (deadline == CC_FOREVER)
        return -1;
    int64_t left = deadline - cc__now();
    if (left <= 0)
        return 0;
    int64_t ms = (left + CC_MSEC - 1) / CC_MSEC;
    return ms > 1000000 ? 1000000 : (int)ms;
}

static int wait_fd_thread(int fd, short events, cc_deadline deadline)
{
    struct pollfd p = {.fd = fd, .events = events};
    for (;;) {
        int n = poll(&p, 1, poll_timeout(deadline));
        if (n > 0)
            return p.revents & POLLNVAL ? -EBADF : p.revents;
        if (n < 0 && errno != EINTR)
            return -errno;
        if (n == 0 && deadline != CC_FOREVER && cc__now() >= deadline)
            return -ETIMEDOUT;
    }
}

static int wait_fd_task(int fd, short events, cc_deadline deadline)
{
    cc__waiter w;
    cc__waiter_init(&w);
    struct cc__poller *p = cc__loop_poller();
    int r = cc__poller_add(p, fd, (uint16_t)events, &w);
    if (r < 0)
        return r;
    cc__loop_fd_waits(1);
    r = cc__waiter_park(&w, deadline);
    cc__loop_fd_waits(-1);
    cc__poller_del(p, fd);
    return r < 0 ? r : (int)w.token;
}

int cc_wait_fd(int fd, short events, cc_deadline deadline)
{
    if (fd < 0)
        return -EBADF;
    if (!(events & (POLLIN | POLLOUT | POLLPRI)))
        return -EINVAL;
    if (cc__loop_task())
        return wait_fd_task(fd, events, deadline);
    return wait_fd_thread(fd, events, deadline);
}

/* After a call failed with errno: 1 to retry at once, 0 to retry once fd is
 * ready for `events`, else the negative errno to return. */
static int retry_after(int fd, short events, cc_deadline deadline)
{
    int err = errno;
    if (err == EINTR)
        return 1;
    if (err != EAGAIN && err != EWOULDBLOCK)
        return -err;
    int r = cc_wait_fd(fd, events, deadline);
    return r < 0 ? r : 0;
}

ssize_t cc_read(int fd, void *buf, size_t n, cc_deadline deadline)
{
    for (;;) {
        ssize_t r = read(fd, buf, n);
        if (r >= 0)
            return r;
        int again = retry_after(fd, POLLIN, deadline);
        if (again < 0)
            return again;
    }
}

ssize_t cc_write(int fd, const void *buf, size_t n, cc_deadline deadline)
{
    for (;;) {
        ssize_t r = write(fd, buf, n);
        if (r >= 0)
            return r;
        int again = retry_after(fd, POLLOUT, deadline);
        if (again < 0)
            return again;
    }
}

int cc_accept(int fd, cc_deadline deadline)
{
    for (;;) {
        int s = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (s >= 0)
            return s;
        int again = retry_after(fd, POLLIN, deadline);
        if (again < 0)
            return again;
    }
}

int cc_connect(int fd, const struct sockaddr *addr, unsigned addrlen,
               cc_deadline deadline)
{
    if (connect(fd, addr, addrlen) == 0)
        return 0;
    if (errno != EINPROGRESS && errno != EINTR)
        return -errno;
    int r = cc_wait_fd(fd, POLLOUT, deadline);
    if (r < 0)
        return r;
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return -errno;
    return -err;
}
