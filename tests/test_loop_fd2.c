/*
 * test_loop_fd2.c: more of the event loop's fd I/O (include/concur/loop.h,
 * src/loop_fd.c, src/loop_io.c), on whichever poller the loop picks
 * (CONCUR_NO_IO_URING=1: epoll): fd numbers beyond the fd table, waits
 * whose deadline has passed on a ready fd, reads of 0 bytes, a closed
 * listener's port free at once (cc_close under a parked cc_accept, or a
 * close after one timed out), a deadline that ends a send to a socket
 * that polls writable but refuses.
 */
#include "testutil.h"

#include "loop_helpers.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* ---- an fd number far beyond any open one ------------------------------ */

struct huge {
    int wait;   /* cc_wait_fd(INT_MAX) in a task */
    int wait2;  /* cc_wait_fd(1 << 30) */
};

static int huge_task(void *arg, void **result)
{
    struct huge *h = arg;
    h->wait = cc_wait_fd(INT_MAX, POLLIN, cc_deadline_in(5 * CC_SEC));
    h->wait2 = cc_wait_fd(1 << 30, POLLOUT, cc_deadline_in(5 * CC_SEC));
    return 0;
}

/* A number no file can have: -EBADF, as poll(2) says outside a task; not
 * a fd table grown (its size overflowing an int) to hold it. */
static void test_wait_fd_huge_number(void **state)
{
    (void)state;
    struct huge h = {0};
    assert_int_equal(cc_loop_run(huge_task, &h, NULL), 0);
    assert_int_equal(h.wait, -EBADF);
    assert_int_equal(h.wait2, -EBADF);
    assert_int_equal(cc_wait_fd(INT_MAX, POLLIN, cc_deadline_in(CC_SEC)),
                     -EBADF);
}

/* ---- a deadline that has passed, on a ready fd ------------------------- */

struct nowait {
    int p[2];
    int task_r; /* cc_wait_fd(readable, POLLIN, CC_NOWAIT) in a task */
};

static int nowait_task(void *arg, void **result)
{
    struct nowait *w = arg;
    w->task_r = cc_wait_fd(w->p[0], POLLIN, CC_NOWAIT);
    return 0;
}

/* As poll(2) with timeout 0, and as a thread's call: a wait whose deadline
 * has passed still reports a ready fd, in a task too. */
static void test_wait_fd_nowait_ready(void **state)
{
    (void)state;
    struct nowait w = {0};
    assert_int_equal(pipe2(w.p, O_CLOEXEC | O_NONBLOCK), 0);
    assert_int_equal(write(w.p[1], "x", 1), 1);
    assert_int_equal(cc_loop_run(nowait_task, &w, NULL), 0);
    int thread_r = cc_wait_fd(w.p[0], POLLIN, CC_NOWAIT);
    close(w.p[0]);
    close(w.p[1]);
    assert_int_equal(thread_r, POLLIN);
    assert_int_equal(w.task_r, POLLIN); /* was -ETIMEDOUT */
}

/* ---- a read of 0 bytes after a short read --------------------------------- */

struct zero {
    int p[2];      /* a non-blocking pipe */
    ssize_t short_; /* cc_read that empties it (1 of 8 bytes) */
    ssize_t zero;   /* then cc_read of 0 bytes */
    ssize_t again;  /* and once more, with the hint gone */
};

static int zero_task(void *arg, void **result)
{
    struct zero *z = arg;
    char buf[8];
    if (write(z->p[1], "b", 1) != 1)
        abort();
    z->short_ = cc_read(z->p[0], buf, sizeof buf, cc_deadline_in(CC_SEC));
    z->zero = cc_read(z->p[0], buf, 0, cc_deadline_in(CC_SEC));
    z->again = cc_read(z->p[0], buf, 0, cc_deadline_in(CC_SEC));
    return 0;
}

/* read(2) of 0 bytes from an empty pipe returns 0 at once, and so does
 * cc_read's, even when the last read of the fd came back short: the drained
 * hint (only a hint) made it wait for data it would not take. (A socket's
 * recv(2) of 0 bytes is another matter: the kernel gives EAGAIN, so cc_recv
 * waits for data, hint or not.) */
static void test_zero_byte_read_after_short_read(void **state)
{
    (void)state;
    struct zero z = {0};
    assert_int_equal(pipe2(z.p, O_CLOEXEC | O_NONBLOCK), 0);
    assert_int_equal(cc_loop_run(zero_task, &z, NULL), 0);
    close(z.p[0]);
    close(z.p[1]);
    assert_int_equal(z.short_, 1);
    assert_int_equal(z.zero, 0); /* was -ETIMEDOUT, 1 s later */
    assert_int_equal(z.again, 0);
}

/* ---- a listener closed while a task accepts, and its port taken again ---- */

/* A non-blocking listener on 127.0.0.1, its address in *a. */
static int local_listener(struct sockaddr_in *a)
{
    socklen_t len = sizeof *a;
    *a = (struct sockaddr_in){.sin_family = AF_INET,
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(l >= 0);
    assert_int_equal(bind(l, (struct sockaddr *)a, len), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)a, &len), 0);
    assert_int_equal(listen(l, 4), 0);
    return l;
}

/* bind(2) of a new socket to *a: 0 or -errno (-EADDRINUSE: the old
 * listener lives on). */
static int bind_again(const struct sockaddr_in *a)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int r = bind(fd, (const struct sockaddr *)a, sizeof *a) == 0 ? 0 : -errno;
    close(fd);
    return r;
}

struct relisten {
    int l;                  /* the listener, on 127.0.0.1 */
    struct sockaddr_in a;   /* its address */
    int accepted;           /* the parked cc_accept's result */
    int bound;              /* bind_again once cc_closed */
    int accepted2, bound2;  /* the same, closed with close(2) */
    int s[2];               /* a socket pair */
    ssize_t recvd;          /* a parked cc_recv on s[0] once cc_closed */
    ssize_t peer;           /* read(2) of s[1] right after the cc_close */
};

static int accept_once(void *arg, void **result)
{
    struct relisten *r = arg;
    r->accepted = cc_accept(r->l, cc_deadline_in(60 * CC_SEC));
    return 0;
}

static int recv_once(void *arg, void **result)
{
    struct relisten *r = arg;
    char buf[8];
    r->recvd = cc_recv(r->s[0], buf, sizeof buf, 0,
                       cc_deadline_in(60 * CC_SEC));
    return 0;
}

static int relisten_main(void *arg, void **result)
{
    struct relisten *r = arg;
    cc_future *f, *g;
    if (cc_spawn(accept_once, r, &f) != 0 || cc_spawn(recv_once, r, &g) != 0)
        abort();
    cc_sleep(5 * CC_MSEC); /* the acceptor and the reader park */
    if (cc_close(r->l) != 0 || cc_close(r->s[0]) != 0)
        abort();
    r->bound = bind_again(&r->a);
    char c;
    r->peer = read(r->s[1], &c, 1);
    cc_future_wait(f, CC_FOREVER);
    cc_future_wait(g, CC_FOREVER);
    cc_future_release(f);
    cc_future_release(g);
    return 0;
}

/* As close(2) (and epoll): once cc_close returns, the socket is gone and
 * its port free, even while a task of the loop was waiting on it (the
 * io_uring's poll in flight held the file until the loop's next turn:
 * bind gave EADDRINUSE). */
static void test_close_frees_the_port_at_once(void **state)
{
    (void)state;
    struct relisten r = {0};
    r.l = local_listener(&r.a);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
                                SOCK_CLOEXEC, 0, r.s), 0);
    assert_int_equal(cc_loop_run(relisten_main, &r, NULL), 0);
    close(r.s[1]);
    assert_int_equal(r.accepted, -EBADF);
    assert_int_equal(r.recvd, -EBADF);
    assert_int_equal(r.bound, 0); /* was -EADDRINUSE */
    assert_int_equal(r.peer, 0);  /* end of file, not EAGAIN */
}

static int timed_accept_main(void *arg, void **result)
{
    struct relisten *r = arg;
    r->accepted = cc_accept(r->l, cc_deadline_in(5 * CC_MSEC));
    if (cc_close(r->l) != 0)
        abort();
    r->bound = bind_again(&r->a);
    /* Again with close(2), which the loop does not see. */
    r->l = local_listener(&r->a);
    r->accepted2 = cc_accept(r->l, cc_deadline_in(5 * CC_MSEC));
    close(r->l);
    r->bound2 = bind_again(&r->a);
    return 0;
}

/* The same after a cc_accept that timed out: the poll's removal was still
 * queued when the task closed the listener, with cc_close or close(2)
 * (bind gave EADDRINUSE on io_uring; a connect, ECONNRESET, not
 * ECONNREFUSED). */
static void test_close_after_timeout_frees_the_port(void **state)
{
    (void)state;
    struct relisten r = {0};
    r.l = local_listener(&r.a);
    assert_int_equal(cc_loop_run(timed_accept_main, &r, NULL), 0);
    assert_int_equal(r.accepted, -ETIMEDOUT);
    assert_int_equal(r.bound, 0); /* was -EADDRINUSE */
    assert_int_equal(r.accepted2, -ETIMEDOUT);
    assert_int_equal(r.bound2, 0); /* was -EADDRINUSE */
}

/* ---- a socket that polls writable but will not take the datagram -------- */

/* An unconnected Unix datagram socket polls writable whatever its
 * destination holds; sendto(2) to a receiver whose queue is full fails
 * with EAGAIN all the same. */
struct full_dgram {
    int rx, tx;                 /* the receiver (full), the sender */
    struct sockaddr_un addr;    /* the receiver's (abstract) address */
    socklen_t len;
    ssize_t task_r, thread_r;   /* cc_sendto with a 20 ms deadline */
};

static ssize_t send_full(struct full_dgram *d)
{
    return cc_sendto(d->tx, "x", 1, 0, (struct sockaddr *)&d->addr, d->len,
                     cc_deadline_in(20 * CC_MSEC));
}

static int full_dgram_task(void *arg, void **result)
{
    struct full_dgram *d = arg;
    d->task_r = send_full(d);
    return 0;
}

/* The deadline ends the call (it retried for ever: each wait answered at
 * once, by the poll at the deadline too). */
static void test_sendto_deadline_when_poll_lies(void **state)
{
    (void)state;
    struct full_dgram d = {.addr = {.sun_family = AF_UNIX}};
    snprintf(d.addr.sun_path + 1, sizeof d.addr.sun_path - 1,
             "concur-test-%d", (int)getpid());
    d.len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
                        strlen(d.addr.sun_path + 1));
    d.rx = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    d.tx = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_int_equal(bind(d.rx, (struct sockaddr *)&d.addr, d.len), 0);
    while (sendto(d.tx, "x", 1, 0, (struct sockaddr *)&d.addr, d.len) == 1)
        ;
    assert_int_equal(errno, EAGAIN);
    struct pollfd p = {.fd = d.tx, .events = POLLOUT};
    assert_int_equal(poll(&p, 1, 0), 1); /* the premise */
    assert_int_equal(cc_loop_run(full_dgram_task, &d, NULL), 0);
    d.thread_r = send_full(&d);
    close(d.rx);
    close(d.tx);
    assert_int_equal(d.task_r, -ETIMEDOUT);
    assert_int_equal(d.thread_r, -ETIMEDOUT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CC_TEST(test_wait_fd_huge_number),
        CC_TEST(test_wait_fd_nowait_ready),
        CC_TEST(test_zero_byte_read_after_short_read),
        CC_TEST(test_close_frees_the_port_at_once),
        CC_TEST(test_close_after_timeout_frees_the_port),
        CC_TEST(test_sendto_deadline_when_poll_lies),
    };
    return CC_RUN_TESTS(tests);
}
