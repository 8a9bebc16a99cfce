/*
 * ipc_conn.c: message connections between processes (include/concur/conn.h).
 *
 * DESIGN. A non-blocking Unix stream socket pair; a message is its length
 * (8 bytes, native order: both ends are on this machine) and its bytes. The
 * header and the body go out in one sendmsg of two iovecs, MSG_NOSIGNAL so
 * that a closed peer is -EPIPE and never a SIGPIPE. Each end remembers how
 * far the message in flight has got in each direction (send_done; rgot and
 * rbuf), which is what makes a deadline in the middle of a message harmless:
 * the next call resumes. A received body is read straight into a buffer of
 * its final size, handed to the caller without a copy when the caller's
 * buffer is empty. Waiting is cc__poll_wait on the socket: a task on an
 * event loop parks there (its loop runs on, a cancellation or deadline
 * scope ends the wait with the progress kept); a thread polls.
 */
#include "concur/conn.h"
#include "process.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define HEADER 8 /* the length before each message */

struct cc_conn {
    int fd;               /* the socket: close-on-exec, non-blocking */
    bool can_send;        /* not the read end of a one-way pipe */
    bool can_recv;        /* not the write end of a one-way pipe */
    uint64_t send_len;    /* length of the message being sent */
    size_t send_done;     /* bytes of it (header first) sent; 0: none */
    unsigned char rhdr[HEADER]; /* the incoming message's length, as read */
    size_t rgot;          /* bytes of it (header first) read so far */
    cc_bytes rbuf;        /* its body: allocated whole once the header is in */
};

static cc_conn *conn_new(int fd)
{
    cc_conn *c = cc__calloc(1, sizeof *c);
    if (c) {
        c->fd = fd;
        c->can_send = c->can_recv = true;
    }
    return c;
}

int cc_pipe(cc_conn **a, cc_conn **b, bool duplex)
{
    int sv[2];
    if (!a || !b)
        return -EINVAL;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv))
        return -errno;
    cc_conn *x = conn_new(sv[0]), *y = conn_new(sv[1]);
    if (!x || !y) {
        cc__free(x, sizeof *x);
        cc__free(y, sizeof *y);
        close(sv[0]);
        close(sv[1]);
        return -ENOMEM;
    }
    if (!duplex) { /* a reads, b writes (as Python's Pipe(False)) */
        shutdown(sv[0], SHUT_WR);
        shutdown(sv[1], SHUT_RD);
        x->can_send = y->can_recv = false;
    }
    *a = x;
    *b = y;
    return 0;
}

int cc_conn_from_fd(cc_conn **out, int fd)
{
    int type;
    socklen_t len = sizeof type;
    if (!out)
        return -EINVAL;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
        return -errno; /* EBADF, ENOTSOCK */
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
        fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
        return -errno;
    *out = conn_new(fd);
    return *out ? 0 : -ENOMEM;
}

int cc_conn_fd(const cc_conn *c) { return c->fd; }

void cc_conn_close(cc_conn *c)
{
    if (!c)
        return;
    close(c->fd);
    cc_bytes_free(&c->rbuf);
    cc__free(c, sizeof *c);
}

static int wait_for(const cc_conn *c, short events, cc_deadline deadline)
{
    struct pollfd p = {.fd = c->fd, .events = events};
    int r = cc__poll_wait(&p, 1, deadline);
    return r < 0 ? r : 0;
}

int cc_conn_poll(cc_conn *c, cc_deadline deadline)
{
    return wait_for(c, POLLIN, deadline);
}

/* ---- send ---------------------------------------------------------------- */

/* One sendmsg of what remains of the header and the body. */
static ssize_t send_some(cc_conn *c, const void *msg, size_t len)
{
    uint64_t header = len;
    struct iovec iov[2];
    int n = 0;
    size_t body = c->send_done > HEADER ? c->send_done - HEADER : 0;
    if (c->send_done < HEADER)
        iov[n++] = (struct iovec){(char *)&header + c->send_done,
                                  HEADER - c->send_done};
    if (len > body)
        iov[n++] = (struct iovec){(char *)msg + body, len - body};
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
    return sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
}

int cc_conn_send(cc_conn *c, const void *msg, size_t len, cc_deadline deadline)
{
    if (!c->can_send)
        return -EPIPE;
    if ((!msg && len > 0) || (c->send_done > 0 && len != c->send_len))
        return -EINVAL;
    c->send_len = len;
    while (c->send_done < HEADER + len) {
        ssize_t n = send_some(c, msg, len);
        if (n > 0) {
            c->send_done += (size_t)n;
            continue;
        }
        if (errno == ECONNRESET)
            return -EPIPE;
        if (errno != EAGAIN && errno != EINTR)
            return -errno;
        int r = errno == EAGAIN ? wait_for(c, POLLOUT, deadline) : 0;
        if (r < 0)
            return r;
    }
    c->send_done = 0;
    return 0;
}

/* ---- recv ---------------------------------------------------------------- */

static uint64_t incoming_len(const cc_conn *c)
{
    uint64_t len;
    memcpy(&len, c->rhdr, sizeof len);
    return len;
}

/* Where the next bytes go, and how many are still wanted (0: complete).
 * Allocates the body once the header is in. */
static int next_space(cc_conn *c, void **at, size_t *want)
{
    if (c->rgot < HEADER) {
        *at = c->rhdr + c->rgot;
        *want = HEADER - c->rgot;
        return 0;
    }
    uint64_t len = incoming_len(c);
    if (!c->rbuf.data) {
        if (len >= SIZE_MAX || !(c->rbuf.data = cc__malloc((size_t)len + 1)))
            return -ENOMEM;
        c->rbuf.cap = (size_t)len + 1;
    }
    *at = c->rbuf.data + c->rbuf.len;
    *want = (size_t)len - c->rbuf.len;
    return 0;
}

/* Read until the message is complete: 0, or an error (progress kept). */
static int read_message(cc_conn *c, cc_deadline deadline)
{
    for (;;) {
        void *at;
        size_t want;
        int r = next_space(c, &at, &want);
        if (r < 0 || want == 0)
            return r;
        ssize_t n = recv(c->fd, at, want, MSG_DONTWAIT);
        if (n > 0) {
            if (c->rgot >= HEADER)
                c->rbuf.len += (size_t)n;
            c->rgot += (size_t)n;
        } else if (n == 0) {
            return c->rgot == 0 ? -EPIPE : -EIO;
        } else if (errno == EAGAIN) {
            if ((r = wait_for(c, POLLIN, deadline)) < 0)
                return r;
        } else if (errno != EINTR) {
            return errno == ECONNRESET ? -EPIPE : -errno;
        }
    }
}

int cc_conn_recv(cc_conn *c, cc_bytes *out, cc_deadline deadline)
{
    if (!c->can_recv)
        return -EPIPE;
    int r = read_message(c, deadline);
    if (r < 0)
        return r;
    c->rbuf.data[c->rbuf.len] = '\0';
    if (!out->data) {
        *out = c->rbuf; /* hand the buffer over */
    } else {
        r = cc_bytes_append(out, c->rbuf.data, c->rbuf.len);
        if (r < 0)
            return r; /* the message stays, for the next recv */
        cc_bytes_free(&c->rbuf);
    }
    memset(&c->rbuf, 0, sizeof c->rbuf);
    c->rgot = 0;
    return 0;
}
