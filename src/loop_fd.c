/*
 * loop_fd.c: fd readiness for tasks, and socket helpers that park on EAGAIN
 * (include/concur/loop.h).
 *
 * DESIGN. Each loop thread keeps a table indexed by fd: the tasks waiting
 * on that fd (a list of waiters on their stacks, each with the events it
 * wants), registered one-shot with the loop's poller for the union of their
 * events, with the fd as the event's data. When epoll reports the fd, the
 * loop (cc__loop_fd_ready) hands each waiter whose events are ready those
 * events as its token, wakes it and unlinks it, and re-arms the fd for the
 * waiters left. A task whose wait ends (woken or timed out) unlinks itself
 * if still linked. The last one to leave deletes the registration only if
 * it is still armed (a timeout); a fired one-shot registration stays, silent,
 * so the next wait on the fd costs one epoll_ctl (mod), not two. A silent
 * registration can never report a stale event, and a closed fd's is gone
 * from epoll (mod then fails with ENOENT and we add). So a reader and a
 * writer task can share a socket. A task may wait on several fds at once
 * (cc__wait_fds: subprocess pipes and pidfds, cc_wait_any): one entry per
 * fd, all pointing at one cc__wake_once, whose first firing wakes the task;
 * the others only record their events. Outside a task, the thread uses
 * poll(). A task's short read marks the fd drained: its next read lets the
 * ready tasks run first, or waits first, rather than fail with EAGAIN. On
 * the io_uring poller a task's read that would wait (drained, or EAGAIN)
 * is instead a RECV/READ request the kernel completes into the task's
 * buffer (loop_io.c); reads with recv flags, and threads, are as before.
 * Such reads are linked in their fd's slot while in flight, so that
 * cc_close can end every use of the fd by this loop's tasks before it
 * closes it: waiters are handed POLLNVAL (-EBADF), reads cancelled (they
 * give -EBADF unless their bytes won), the registration deleted; a call
 * that the poller woke before the close, and that has not run yet, sees
 * the slot's close count changed and gives -EBADF too.
 */
#include "loop_internal.h"
#include "poller.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Milliseconds for poll() until the deadline, rounded up. */
static int poll_timeout(cc_deadline deadline)
{
    if (deadline == CC_FOREVER)
        return -1;
    int64_t now = cc__now();
    if (deadline <= now) /* before subtracting: INT64_MIN - now overflows */
        return 0;
    int64_t left = deadline - now;
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

/* A task waiting on an fd, linked in the fd's slot. */
struct fd_wait {
    cc__wake_once *g;     /* the task's wait this entry belongs to */
    uint32_t events;      /* what it waits for, plus POLLERR | POLLHUP */
    uint32_t revents;     /* the ready events handed over, or 0 */
    uint32_t closes;      /* the fd's closes when linked (closes_of) */
    struct fd_wait *next; /* the next waiter on the same fd */
};

void cc__wake_once_fire(cc__wake_once *o)
{
    /* acq_rel: one source wins; it alone wakes (or writes the eventfd). */
    if (cc__xchg(&o->fired, 1))
        return;
    if (o->efd >= 0) {
        uint64_t one = 1;
        if (write(o->efd, &one, sizeof one) < 0 && errno != EAGAIN)
            cc__panic("cc__wake_once_fire: eventfd write", -errno);
        return;
    }
    cc__waiter_wake(&o->w); /* o may be gone after this */
}

/* Hand fw its events (unlinked already) and wake its task once. */
static void fd_wait_fire(struct fd_wait *fw, uint32_t revents)
{
    fw->revents = revents;
    cc__wake_once_fire(fw->g);
}

/* The waiters on one fd of this thread's loop. */
struct fd_slot {
    struct fd_wait *head;      /* waiting tasks, newest first */
    struct cc__io_read *reads; /* their reads in flight on the io_uring */
    bool registered;           /* the poller knows the fd */
    bool armed;                /* and may still report it (one-shot not
                                  fired) */
    bool drained;              /* a task's last read of it came back short */
    uint32_t closes;           /* times cc_close let go of it: a call that
                                  sees this change while it is off the CPU
                                  never touches the number again */
};

/* This thread's table (one loop per thread), indexed by fd. */
static CC__THREAD_LOCAL struct fd_slot *slots;
static CC__THREAD_LOCAL int nslots;

/* Grow the table to hold fd: 0, -EBADF (fd is not open: a number such as
 * INT_MAX would ask for gigabytes, its size overflowing an int) or
 * -ENOMEM. Out of line: the rare case, kept off the hot callers' frames. */
static CC__COLD int slots_grow(int fd)
{
    if (fcntl(fd, F_GETFD) < 0)
        return -EBADF;
    size_t n = cc__fd_table_len((size_t)nslots, fd);
    struct fd_slot *s = cc__realloc(slots, nslots * sizeof *s, n * sizeof *s);
    if (!s)
        return -ENOMEM;
    memset(s + nslots, 0, (n - (size_t)nslots) * sizeof *s);
    slots = s;
    nslots = (int)n;
    return 0;
}

static struct fd_slot *slot_get(int fd)
{
    return fd < nslots || slots_grow(fd) == 0 ? &slots[fd] : NULL;
}

void cc__loop_fd_close(void)
{
    cc__free(slots, nslots * sizeof *slots);
    slots = NULL;
    nslots = 0;
}

/* How many times a task of this loop has cc_closed fd. A call samples it
 * before it waits and looks again once it runs: a change means that fd
 * was closed meanwhile, even after the poller woke the call (then it was
 * no longer linked for cc_close to hand POLLNVAL), and that the number
 * may name another file. */
static uint32_t closes_of(int fd)
{
    return fd < nslots ? slots[fd].closes : 0;
}

static void unlink_wait(struct fd_slot *s, struct fd_wait *fw)
{
    for (struct fd_wait **p = &s->head; *p; p = &(*p)->next)
        if (*p == fw) {
            *p = fw->next;
            return;
        }
}

bool cc__loop_fd_track(int fd, struct cc__io_read *r)
{
    struct fd_slot *s = slot_get(fd);
    if (!s)
        return false;
    r->next = s->reads;
    s->reads = r;
    return true;
}

void cc__loop_fd_untrack(int fd, struct cc__io_read *r)
{
    for (struct cc__io_read **p = &slots[fd].reads; *p; p = &(*p)->next)
        if (*p == r) {
            *p = r->next;
            return;
        }
}

/* Register or re-arm fd for the union of its waiters' events. */
static int arm(struct fd_slot *s, int fd)
{
    uint32_t events = 0;
    for (struct fd_wait *fw = s->head; fw; fw = fw->next)
        events |= fw->events;
    struct cc__poller *p = cc__loop_poller();
    void *data = (void *)(uintptr_t)fd;
    int r = s->registered ? cc__poller_mod(p, fd, events, data) : -ENOENT;
    if (r == -ENOENT) /* new, or closed since (epoll forgot it) */
        r = cc__poller_add(p, fd, events, data);
    s->registered = s->armed = r == 0;
    return r;
}

/* The fd cannot be watched any more: its waiters get POLLNVAL (-EBADF). */
static void wake_all_invalid(struct fd_slot *s)
{
    while (s->head) {
        struct fd_wait *fw = s->head;
        s->head = fw->next;
        fd_wait_fire(fw, POLLNVAL);
    }
}

void cc__loop_fd_ready(void *data, uint32_t events)
{
    int fd = (int)(uintptr_t)data;
    struct fd_slot *s = fd < nslots ? &slots[fd] : NULL;
    if (!s)
        return;
    s->armed = false; /* one-shot: fired */
    if (!s->head)
        return; /* its waiters left in this batch already */
    if (events & POLLNVAL) { /* io_uring: the fd was closed meanwhile */
        s->registered = false;
        wake_all_invalid(s);
        return;
    }
    for (struct fd_wait **p = &s->head; *p;) {
        struct fd_wait *fw = *p;
        if (!(events & fw->events)) {
            p = &fw->next;
            continue;
        }
        *p = fw->next;
        fd_wait_fire(fw, events & fw->events); /* fw may be gone after */
    }
    if (s->head && arm(s, fd) < 0)
        wake_all_invalid(s); /* closed by another thread meanwhile */
}

/* Link fw, waiting for `events` on fd, and (re-)arm the fd. */
static int fd_wait_add(struct fd_wait *fw, cc__wake_once *g, int fd,
                       short events)
{
    *fw = (struct fd_wait){.g = g,
                           .events = (uint16_t)events | POLLERR | POLLHUP};
    int r = fd < nslots ? 0 : slots_grow(fd);
    if (r < 0)
        return r;
    struct fd_slot *s = &slots[fd];
    fw->closes = s->closes;
    fw->next = s->head;
    s->head = fw;
    return arm(s, fd);
}

/* Unlink fw if still linked; the last waiter of an fd still armed deletes
 * its registration (nobody would take its event): then true. */
static bool fd_wait_remove(struct fd_wait *fw, int fd)
{
    if (fd >= nslots)
        return false; /* slot_get failed: never linked */
    struct fd_slot *s = &slots[fd]; /* others may have grown the table */
    unlink_wait(s, fw);
    if (s->head || !s->armed)
        return false;
    cc__poller_del(cc__loop_poller(), fd);
    s->registered = s->armed = false;
    return true;
}

/* Link one fd_wait per fd to o; returns how many were linked (all of them,
 * or up to the one that failed, counted) and the error in *err. */
static nfds_t fds_add(cc__wake_once *o, struct fd_wait *fw,
                      struct pollfd *fds, nfds_t n, int *err)
{
    nfds_t added = 0;
    *err = 0;
    for (; added < n && *err == 0; added++)
        *err = fd_wait_add(&fw[added], o, fds[added].fd, fds[added].events);
    return added;
}

/* Unlink them again; fill revents; return how many are ready. An fd
 * cc_closed since it was linked is POLLNVAL, even when it was woken ready
 * first: its number may name another file by now. A poll removed (a
 * timeout, a cancel, another fd first) holds its file open on io_uring
 * until the removal is done: it is submitted now, so that a close(2) that
 * follows frees the file at once (a listener's port, the peer told), as
 * on epoll. */
static int fds_remove(struct fd_wait *fw, struct pollfd *fds, nfds_t added)
{
    int ready = 0;
    bool removed = false;
    for (nfds_t i = 0; i < added; i++) {
        removed |= fd_wait_remove(&fw[i], fds[i].fd);
        if (closes_of(fds[i].fd) != fw[i].closes)
            fw[i].revents = POLLNVAL;
        fds[i].revents = (short)fw[i].revents;
        ready += fw[i].revents != 0;
    }
    if (removed)
        cc__poller_submit(cc__loop_poller());
    return ready;
}

static const char *note_of(const struct pollfd *fds, nfds_t n)
{
    return n > 1                     ? "fds"
           : fds[0].events & POLLOUT ? "fd (write)"
                                     : "fd (read)";
}

int cc__wait_fds_once(cc__wake_once *o, struct pollfd *fds, unsigned long n,
                      cc_deadline deadline)
{
    struct fd_wait stackv[4];
    struct fd_wait *fw = n <= 4 ? stackv : cc__calloc(n, sizeof *fw);
    if (!fw)
        return -ENOMEM;
    int r;
    nfds_t added = fds_add(o, fw, fds, n, &r);
    if (r == 0) {
        cc__loop_fd_waits(1);
        cc__loop_note_wait(n ? note_of(fds, n) : NULL, n ? fds[0].fd : -1);
        r = cc__waiter_park(&o->w, deadline);
        cc__loop_note_wait(NULL, -1);
        cc__loop_fd_waits(-1);
    }
    int ready = fds_remove(fw, fds, added);
    if (fw != stackv)
        cc__free(fw, n * sizeof *fw);
    return r < 0 ? r : ready;
}

/* Park the running task until one of fds is ready (poll's contract: fills
 * revents, returns the count > 0), or -ETIMEDOUT / -ECANCELED / -ENOMEM /
 * the poller's error. Every fd is registered with one shared waiter. */
static int wait_fds_task(struct pollfd *fds, nfds_t n, cc_deadline deadline)
{
    cc__wake_once o = {.efd = -1};
    cc__waiter_init(&o.w);
    return cc__wait_fds_once(&o, fds, n, deadline);
}

static int wait_fd_task(int fd, short events, cc_deadline deadline)
{
    struct pollfd p = {.fd = fd, .events = events};
    uint32_t closes = closes_of(fd);
    int r = wait_fds_task(&p, 1, deadline);
    /* The park times out before the poller has looked (at once when the
     * deadline had passed): at its own deadline the call answers as
     * poll(2) with timeout 0 does, and as a thread's call, a ready fd's
     * events (a scope's deadline stays -ETIMEDOUT). */
    if (r == -ETIMEDOUT && deadline <= cc__now() && closes_of(fd) == closes)
        return wait_fd_thread(fd, events, CC_NOWAIT);
    if (r < 0)
        return r;
    /* POLLNVAL also when cc_closed meanwhile (fds_remove) */
    return p.revents & POLLNVAL ? -EBADF : p.revents;
}

int cc__wait_fds(struct pollfd *fds, nfds_t n, cc_deadline deadline)
{
    if (!cc__loop_task())
        return -EPERM;
    return wait_fds_task(fds, n, deadline);
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
static CC__COLD int retry_after(int fd, short events, cc_deadline deadline)
{
    int err = errno;
    if (err == EINTR)
        return 1;
    if (err != EAGAIN && err != EWOULDBLOCK)
        return -err;
    /* Past the deadline that try was the last: a file may poll ready and
     * refuse all the same (an unconnected Unix datagram socket, whose
     * receiver is full), and its waits would answer at once for ever. */
    if (deadline != CC_FOREVER && deadline <= cc__now())
        return -ETIMEDOUT;
    int r = cc_wait_fd(fd, events, deadline);
    return r < 0 ? r : 0;
}

/* After a task's read of r bytes out of n: note whether it drained fd. */
static void after_read(int fd, ssize_t r, size_t n)
{
    if (r <= 0 || (size_t)r >= n || !cc__loop_task())
        return;
    struct fd_slot *s = slot_get(fd);
    if (s) /* else no hint: nothing lost */
        s->drained = true;
}

/* One read of a task, with what it reads and into what. */
struct rd {
    int op;       /* CC__IO_RECV (flags 0) or CC__IO_READ; -1: no ring */
    int fd;       /* from */
    void *buf;    /* into */
    size_t n;     /* bytes at most */
    ssize_t res;  /* the result, when ring_read did it */
};

/* Instead of waiting for readiness: the read done by the loop's io_uring
 * (loop_io.c). Whether it was done (then rd->res is the result). */
static bool ring_read(struct rd *rd, cc_deadline deadline)
{
    if (rd->op < 0 || !cc__loop_task() ||
        !cc__loop_io_read(rd->op, rd->fd, rd->buf, rd->n, deadline,
                          &rd->res))
        return false;
    after_read(rd->fd, rd->res, rd->n);
    return true;
}

/*
 * Before a task reads fd: when its last read came back short, it emptied
 * the buffer, and on a request/response connection the next read would
 * almost always fail with EAGAIN (a wasted system call, as many as there
 * are requests). On the io_uring backend the loop's ring does the read
 * when the data comes (1: rd->res is the result). Else let the other
 * ready tasks run first, which usually gives the peer time to answer; when
 * none is ready, wait for readiness before the system call. Only a hint: a
 * stale one (the fd number reused) costs a yield or a wait that the poller
 * answers at once (it reports the level when armed). Returns 0 (now do the
 * system call), 1, -ETIMEDOUT, -ECANCELED or -EBADF (cc_close meanwhile).
 */
static int before_read(struct rd *rd, cc_deadline deadline)
{
    int fd = rd->fd;
    if (fd < 0 || fd >= nslots || !slots[fd].drained || !cc__loop_task())
        return 0;
    slots[fd].drained = false;
    if (deadline != CC_FOREVER && deadline <= cc__now())
        return 0; /* no time to wait: try the system call only */
    if (ring_read(rd, deadline))
        return 1;
    if (rd->n == 0)
        return 0; /* nothing to wait for: read(2) of 0 bytes may give 0 */
    if (cc__loop_others_ready()) {
        uint32_t closes = closes_of(fd);
        cc_yield(); /* they may cc_close fd: then it is not ours to read */
        return closes_of(fd) != closes ? -EBADF : 0;
    }
    int r = wait_fd_task(fd, POLLIN, deadline);
    /* A time-out, a cancellation or a close (cc_close: the number may
     * name another file by now) ends the call; -EPERM (a regular file,
     * which never blocks) is left to the system call. */
    return r == -ETIMEDOUT || r == -ECANCELED || r == -EBADF ? r : 0;
}

/* After a read failed with errno: 1 to retry at once, 0 when the ring did
 * the read (rd->res), else the negative errno to return; waits for
 * readiness first when the ring did not. */
static int read_again(struct rd *rd, cc_deadline deadline)
{
    int err = errno;
    if ((err == EAGAIN || err == EWOULDBLOCK) && ring_read(rd, deadline))
        return 0;
    errno = err;
    int again = retry_after(rd->fd, POLLIN, deadline);
    return again == 0 ? 1 : again;
}

/* The read (or recv with flags) of a task or a thread. */
static ssize_t do_read(struct rd *rd, int flags, cc_deadline deadline)
{
    int w = flags & MSG_PEEK ? 0 : before_read(rd, deadline);
    if (w != 0)
        return w < 0 ? w : rd->res;
    for (;;) {
        ssize_t r = rd->op == CC__IO_READ ? read(rd->fd, rd->buf, rd->n)
                                          : recv(rd->fd, rd->buf, rd->n, flags);
        if (!(flags & MSG_PEEK)) /* a short peek drains nothing */
            after_read(rd->fd, r, rd->n);
        if (r >= 0)
            return r;
        int again = read_again(rd, deadline);
        if (again == 0)
            return rd->res;
        if (again < 0)
            return again;
    }
}

ssize_t cc_read(int fd, void *buf, size_t n, cc_deadline deadline)
{
    struct rd rd = {CC__IO_READ, fd, buf, n, 0};
    return do_read(&rd, 0, deadline);
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

ssize_t cc_recv(int fd, void *buf, size_t n, int flags, cc_deadline deadline)
{
    /* The ring's recv takes no flags; a peek drains nothing (no hint). */
    struct rd rd = {flags ? -1 : CC__IO_RECV, fd, buf, n, 0};
    return do_read(&rd, flags, deadline);
}

ssize_t cc_send(int fd, const void *buf, size_t n, int flags,
                cc_deadline deadline)
{
    return cc_sendto(fd, buf, n, flags, NULL, 0, deadline);
}

int cc_sendall(int fd, const void *buf, size_t n, int flags,
               cc_deadline deadline)
{
    const char *p = buf;
    do { /* once even for n == 0: a bad fd still gets its error */
        ssize_t r = cc_send(fd, p, n, flags, deadline);
        if (r < 0)
            return (int)r;
        p += r;
        n -= (size_t)r;
    } while (n > 0);
    return 0;
}

ssize_t cc_recvfrom(int fd, void *buf, size_t n, int flags,
                    struct sockaddr *addr, unsigned *addrlen,
                    cc_deadline deadline)
{
    for (;;) {
        ssize_t r = recvfrom(fd, buf, n, flags, addr, addrlen);
        if (r >= 0)
            return r;
        int again = retry_after(fd, POLLIN, deadline);
        if (again < 0)
            return again;
    }
}

ssize_t cc_sendto(int fd, const void *buf, size_t n, int flags,
                  const struct sockaddr *addr, unsigned addrlen,
                  cc_deadline deadline)
{
    for (;;) {
        ssize_t r = sendto(fd, buf, n, flags | MSG_NOSIGNAL, addr, addrlen);
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

/* cc_close in a task: the loop lets go of fd before it is closed. A read
 * queued in this round has not looked fd up yet: submitted after the
 * close, it would find whatever file takes the number next, and might
 * read its data before the cancel comes. And on io_uring a poll or a read
 * in flight holds the file open (a listener's port taken, the peer not
 * told) until its removal is done. So the queue goes to the kernel
 * first. */
static void forget(struct fd_slot *s, int fd)
{
    struct cc__poller *p = cc__loop_poller();
    bool in_flight = s->armed || s->reads;
    wake_all_invalid(s);
    if (s->registered)
        cc__poller_del(p, fd);
    for (struct cc__io_read *r = s->reads; r; r = r->next)
        if (!r->closed) {
            r->closed = true;
            cc__poller_cancel(p, r->id);
        }
    if (in_flight)
        cc__poller_submit(p);
    s->registered = s->armed = s->drained = false;
    s->closes++;
}

int cc_close(int fd)
{
    if (fd < 0)
        return -EBADF;
    if (fd < nslots && cc__loop_task())
        forget(&slots[fd], fd);
    /* Linux frees the number even when close is interrupted (EINTR). */
    return close(fd) == 0 || errno == EINTR ? 0 : -errno;
}
