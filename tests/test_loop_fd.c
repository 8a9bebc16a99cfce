/*
 * test_loop_fd.c: fd readiness and socket helpers of the event loop
 * (include/concur/loop.h): cc_wait_fd with deadlines, several tasks on one fd,
 * a reader and a writer on one socket, a TCP echo server with one task per
 * connection.
 */
#include "testutil.h"

#include "http_mini.h"
#include "loop_helpers.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* ---- fds --------------------------------------------------------------- */

struct fd_run {
    int p[2];           /* a non-blocking pipe */
    int timed_out;      /* cc_wait_fd on the empty pipe */
    int64_t waited;     /* how long that took, ns */
    int ready;          /* cc_wait_fd once a thread wrote */
    long echoed;        /* bytes a reader task got from a writer task */
    int second;         /* a second waiter on the same fd */
    int duplex_r;       /* a reader and a writer task on one socket: */
    int duplex_w;       /* what each one's cc_wait_fd returned */
};

static void *write_later(void *arg)
{
    cc_sleep(10 * CC_MSEC);
    if (write(((struct fd_run *)arg)->p[1], "x", 1) != 1)
        abort();
    return NULL;
}

static int second_waiter(void *arg, void **result)
{
    struct fd_run *f = arg;
    f->second = cc_wait_fd(f->p[0], POLLIN, cc_deadline_in(60 * CC_SEC));
    return 0;
}

static int duplex_reader(void *arg, void **result)
{
    void **a = arg; /* the fd_run and the socket pair */
    struct fd_run *f = a[0];
    int *s = a[1];
    f->duplex_r = cc_wait_fd(s[0], POLLIN, cc_deadline_in(60 * CC_SEC));
    return 0;
}

/* A reader waits on s[0]; a writer waits on s[0] too (ready at once), and
 * only then makes s[0] readable: the fd's re-arming must keep the reader. */
static int duplex(struct fd_run *f)
{
    int s[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, s))
        return -errno;
    cc_future *r;
    void *a[2] = {f, s};
    cc_spawn(duplex_reader, a, &r);
    cc_yield(); /* the reader parks */
    f->duplex_w = cc_wait_fd(s[0], POLLOUT, cc_deadline_in(60 * CC_SEC));
    cc_yield();
    int err = write(s[1], "z", 1) == 1 ? cc_future_wait(r, CC_FOREVER) : -EIO;
    cc_future_release(r);
    close(s[0]);
    close(s[1]);
    return err;
}

static int pipe_writer(void *arg, void **result)
{
    int fd = *(int *)arg;
    char buf[4096];
    memset(buf, 'y', sizeof buf);
    for (int i = 0; i < 64; i++) /* 256 KiB: fills the pipe many times */
        for (size_t off = 0; off < sizeof buf;) {
            ssize_t n = cc_write(fd, buf + off, sizeof buf - off, CC_FOREVER);
            if (n < 0)
                return (int)n;
            off += (size_t)n;
        }
    close(fd);
    return 0;
}

static int fd_main(void *arg, void **result)
{
    struct fd_run *f = arg;
    int64_t t0 = cc_now();
    f->timed_out = cc_wait_fd(f->p[0], POLLIN, cc_deadline_in(20 * CC_MSEC));
    f->waited = cc_now() - t0;
    cc_thread *t = start(write_later, f);
    cc_spawn(second_waiter, f, NULL);
    f->ready = cc_wait_fd(f->p[0], POLLIN, cc_deadline_in(60 * CC_SEC));
    join(t);
    char c;
    if (read(f->p[0], &c, 1) != 1)
        return -EIO;
    cc_future *w;
    cc_spawn(pipe_writer, &f->p[1], &w);
    char buf[1000];
    ssize_t n;
    while ((n = cc_read(f->p[0], buf, sizeof buf, CC_FOREVER)) > 0)
        f->echoed += n;
    int r = cc_future_result(w, CC_FOREVER, NULL);
    cc_future_release(w);
    if (n < 0 || r < 0)
        return n < 0 ? (int)n : r;
    return duplex(f);
}

static void test_wait_fd_pipe(void **state)
{
    (void)state;
    struct fd_run f = {0};
    assert_int_equal(pipe2(f.p, O_CLOEXEC | O_NONBLOCK), 0);
    assert_int_equal(cc_loop_run(fd_main, &f, NULL), 0);
    assert_int_equal(f.timed_out, -ETIMEDOUT);
    assert_true(f.waited >= 20 * CC_MSEC);
    assert_true(f.ready & POLLIN);
    assert_true(f.second & POLLIN);
    assert_int_equal(f.duplex_w, POLLOUT);
    assert_int_equal(f.duplex_r, POLLIN);
    assert_int_equal(f.echoed, 64 * 4096);
    close(f.p[0]);
    /* Outside a loop it polls: a deadline still holds. */
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    assert_int_equal(cc_wait_fd(p[0], POLLIN, cc_deadline_in(CC_MSEC)),
                     -ETIMEDOUT);
    assert_int_equal(cc_wait_fd(p[1], POLLOUT, CC_NOWAIT), POLLOUT);
    close(p[0]);
    close(p[1]);
}

/* ---- a closed fd whose number comes back ---------------------------------- */

struct reuse_run {
    int first;     /* wait on the first pipe (readable) */
    int same_fd;   /* the second pipe got the same number */
    int second;    /* wait on the second, empty pipe: must time out */
    int third;     /* and once written */
};

static int reuse_main(void *arg, void **result)
{
    struct reuse_run *r = arg;
    int p[2], q[2];
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK) || write(p[1], "a", 1) != 1)
        return -errno;
    r->first = cc_wait_fd(p[0], POLLIN, cc_deadline_in(60 * CC_SEC));
    close(p[0]); /* its registration, fired and silent, goes with it */
    close(p[1]);
    if (pipe2(q, O_CLOEXEC | O_NONBLOCK))
        return -errno;
    r->same_fd = q[0] == p[0];
    r->second = cc_wait_fd(q[0], POLLIN, cc_deadline_in(5 * CC_MSEC));
    if (write(q[1], "b", 1) != 1)
        return -errno;
    r->third = cc_wait_fd(q[0], POLLIN, cc_deadline_in(60 * CC_SEC));
    close(q[0]);
    close(q[1]);
    return 0;
}

static void test_fd_number_reused(void **state)
{
    (void)state;
    struct reuse_run r = {0};
    assert_int_equal(cc_loop_run(reuse_main, &r, NULL), 0);
    assert_int_equal(r.first, POLLIN);
    assert_true(r.same_fd);
    assert_int_equal(r.second, -ETIMEDOUT);
    assert_int_equal(r.third, POLLIN);
}

/* ---- a read after a short read --------------------------------------------- */

/* A short read drained the socket: the next cc_recv of the task lets the
 * ready tasks run first, or, when none is, waits before the system call.
 * Either way it must return what arrives, never too early, and never lose
 * data that came in between. */
struct short_run {
    int s[2];          /* a non-blocking socket pair */
    int order[4];      /* who ran when (1: the reader, 2: a ready task) */
    int n_order;       /* entries in order */
    ssize_t got[6];    /* what each cc_recv of the reader returned */
    int64_t waited;    /* how long the timed-out one took, ns */
    int reused;        /* a new pair got the old number */
    ssize_t stale;     /* cc_recv on it, data there: the stale hint */
    ssize_t file[2];   /* two cc_read of a 4-byte regular file */
};

static void *send_later(void *arg)
{
    cc_sleep(10 * CC_MSEC);
    if (write(*(int *)arg, "later", 5) != 5)
        abort();
    return NULL;
}

/* A ready task that writes to the reader's socket when it runs. */
static int ready_writer(void *arg, void **result)
{
    struct short_run *r = arg;
    r->order[r->n_order++] = 2;
    return write(r->s[1], "ready", 5) == 5 ? 0 : -EIO;
}

static ssize_t recv_some(struct short_run *r, cc_deadline d)
{
    char buf[64];
    return cc_recv(r->s[0], buf, sizeof buf, 0, d);
}

/* A fresh socket pair on the number of r->s[0], with data in it. */
static int reuse_number(struct short_run *r)
{
    int old = r->s[0], t[2];
    close(r->s[0]);
    close(r->s[1]);
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, t))
        return -errno;
    r->reused = t[0] == old;
    r->s[0] = t[0];
    r->s[1] = t[1];
    return write(t[1], "new", 3) == 3 ? 0 : -EIO;
}

/* A regular file (which no poller watches) read in two calls: the first
 * is short, the second must still read (end of file), not fail. */
static int read_file(struct short_run *r)
{
    char path[] = "/tmp/concur_short_XXXXXX", buf[64];
    int fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0)
        return -errno;
    unlink(path);
    if (write(fd, "file", 4) != 4 || lseek(fd, 0, SEEK_SET) != 0)
        return -errno;
    r->file[0] = cc_read(fd, buf, sizeof buf, cc_deadline_in(60 * CC_SEC));
    r->file[1] = cc_read(fd, buf, sizeof buf, cc_deadline_in(60 * CC_SEC));
    close(fd);
    return 0;
}

static int short_main(void *arg, void **result)
{
    struct short_run *r = arg;
    if (write(r->s[1], "ab", 2) != 2)
        return -EIO;
    r->got[0] = recv_some(r, CC_FOREVER); /* short: drained */
    cc_thread *t = start(send_later, &r->s[1]);
    r->got[1] = recv_some(r, cc_deadline_in(60 * CC_SEC)); /* waits first */
    join(t);
    cc_spawn(ready_writer, r, NULL);
    r->got[2] = recv_some(r, cc_deadline_in(60 * CC_SEC)); /* lets go */
    r->order[r->n_order++] = 1; /* the writer ran during our cc_recv */
    int64_t t0 = cc_now();
    r->got[3] = recv_some(r, cc_deadline_in(20 * CC_MSEC));
    r->waited = cc_now() - t0;
    if (write(r->s[1], "yz", 2) != 2)
        return -EIO;
    r->got[4] = recv_some(r, CC_FOREVER); /* no hint left: reads, short */
    if (write(r->s[1], "x", 1) != 1)
        return -EIO;
    r->got[5] = recv_some(r, CC_NOWAIT); /* no time to wait: tries */
    int err = reuse_number(r); /* after a short read: the hint is stale */
    if (err == 0)
        r->stale = recv_some(r, cc_deadline_in(60 * CC_SEC));
    return err ? err : read_file(r);
}

static void test_recv_after_short_read(void **state)
{
    (void)state;
    struct short_run r = {0};
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC |
                                SOCK_NONBLOCK, 0, r.s), 0);
    assert_int_equal(cc_loop_run(short_main, &r, NULL), 0);
    assert_int_equal(r.got[0], 2);
    assert_int_equal(r.got[1], 5); /* "later", sent 10 ms after */
    assert_int_equal(r.got[2], 5); /* "ready": the writer ran first */
    assert_int_equal(r.n_order, 2);
    assert_int_equal(r.order[0], 2);
    assert_int_equal(r.order[1], 1);
    assert_int_equal(r.got[3], -ETIMEDOUT);
    assert_true(r.waited >= 20 * CC_MSEC);
    assert_int_equal(r.got[4], 2);
    assert_int_equal(r.got[5], 1);
    assert_true(r.reused);
    assert_int_equal(r.stale, 3);
    assert_int_equal(r.file[0], 4);
    assert_int_equal(r.file[1], 0);
    close(r.s[0]);
    close(r.s[1]);
}

/* ---- sockets: an echo server, one task per connection --------------------- */

enum { CLIENTS = 50, MSG = 20000 };

struct echo_run {
    int listener;            /* non-blocking, on 127.0.0.1 */
    struct sockaddr_in addr; /* where it listens */
    long ok;                 /* clients that got their bytes back intact */
    int errors;              /* failed calls */
};

static int echo_conn(void *arg, void **result)
{
    int fd = (int)(intptr_t)arg;
    char buf[4096];
    ssize_t n;
    while ((n = cc_read(fd, buf, sizeof buf, cc_deadline_in(60 * CC_SEC))) > 0)
        for (ssize_t off = 0; off < n;) {
            ssize_t w = cc_write(fd, buf + off, n - off, CC_FOREVER);
            if (w < 0) {
                close(fd);
                return (int)w;
            }
            off += w;
        }
    close(fd);
    return (int)n;
}

static int echo_server(void *arg, void **result)
{
    struct echo_run *e = arg;
    for (int i = 0; i < CLIENTS; i++) {
        int fd = cc_accept(e->listener, cc_deadline_in(60 * CC_SEC));
        if (fd < 0 || cc_spawn(echo_conn, (void *)(intptr_t)fd, NULL) < 0) {
            e->errors++;
            return fd;
        }
    }
    return 0;
}

static int client_io(int fd, int id)
{
    static __thread char out[MSG], in[MSG];
    memset(out, 'a' + id % 26, sizeof out);
    size_t sent = 0, got = 0;
    while (got < MSG) { /* interleave, or both sides' buffers fill up */
        if (sent < MSG) {
            ssize_t w = cc_send(fd, out + sent, MSG - sent > 1000 ? 1000
                                : MSG - sent, 0, CC_FOREVER);
            if (w < 0)
                return (int)w;
            sent += (size_t)w;
        }
        ssize_t r = cc_recv(fd, in + got, MSG - got, 0,
                            cc_deadline_in(60 * CC_SEC));
        if (r <= 0)
            return r < 0 ? (int)r : -EPIPE;
        got += (size_t)r;
    }
    return memcmp(in, out, MSG) == 0 ? 0 : -EIO;
}

static int echo_client(void *arg, void **result)
{
    struct echo_run *e = arg;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int r = cc_connect(fd, (struct sockaddr *)&e->addr, sizeof e->addr,
                       cc_deadline_in(60 * CC_SEC));
    if (r == 0)
        r = client_io(fd, (int)(intptr_t)cc_task_current() & 0xff);
    close(fd);
    if (r == 0)
        e->ok++;
    else
        e->errors++;
    return r;
}

static int echo_main(void *arg, void **result)
{
    struct echo_run *e = arg;
    cc_spawn(echo_server, e, NULL);
    for (int i = 0; i < CLIENTS; i++)
        cc_spawn(echo_client, e, NULL);
    return 0;
}

static void test_socket_echo(void **state)
{
    (void)state;
    struct echo_run e = {0};
    e.listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(e.listener >= 0);
    e.addr.sin_family = AF_INET;
    e.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof e.addr;
    assert_int_equal(bind(e.listener, (struct sockaddr *)&e.addr, len), 0);
    assert_int_equal(getsockname(e.listener, (struct sockaddr *)&e.addr, &len), 0);
    assert_int_equal(listen(e.listener, CLIENTS), 0);
    assert_int_equal(cc_loop_run(echo_main, &e, NULL), 0);
    assert_int_equal(e.errors, 0);
    assert_int_equal(e.ok, CLIENTS);
    close(e.listener);
}


/* ---- socket errors: a closed peer, a refused connection, a timeout ---------- */

struct sock_errors {
    int send_closed;   /* cc_send to a closed peer */
    int refused;       /* cc_connect to a port nobody listens on */
    int recv_timeout;  /* cc_recv with nothing to read */
};

static int sock_errors_main(void *arg, void **result)
{
    struct sock_errors *e = arg;
    int s[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, s))
        return -errno;
    char c;
    e->recv_timeout = (int)cc_recv(s[0], &c, 1, 0, cc_deadline_in(CC_MSEC));
    close(s[1]);
    e->send_closed = (int)cc_send(s[0], "x", 1, 0, CC_FOREVER);
    close(s[0]);
    /* A port that was just free: bind, read it, close, then connect. */
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (bind(l, (struct sockaddr *)&a, len) ||
        getsockname(l, (struct sockaddr *)&a, &len))
        return -errno;
    close(l);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    e->refused = cc_connect(fd, (struct sockaddr *)&a, sizeof a,
                            cc_deadline_in(60 * CC_SEC));
    close(fd);
    return 0;
}

static void test_socket_errors(void **state)
{
    (void)state;
    struct sock_errors e = {0};
    assert_int_equal(cc_loop_run(sock_errors_main, &e, NULL), 0);
    assert_int_equal(e.recv_timeout, -ETIMEDOUT);
    assert_int_equal(e.send_closed, -EPIPE);
    assert_int_equal(e.refused, -ECONNREFUSED);
}

/* ---- bad input ----------------------------------------------------------- */

/* What cc_wait_fd and cc_close say to bad arguments, from a task (the
 * loop's poller) and from a thread (poll). */
struct bad_fd {
    int open_fd;     /* a pipe's read end */
    int closed_fd;   /* a number that names no file */
    int negative;    /* cc_wait_fd(-1, POLLIN) */
    int no_event;    /* cc_wait_fd(open_fd, 0) */
    int only_hup;    /* cc_wait_fd(open_fd, POLLHUP): none of IN/OUT/PRI */
    int not_open;    /* cc_wait_fd(closed_fd, POLLIN) */
    int close_neg;   /* cc_close(-1) */
};

static void bad_fd_calls(struct bad_fd *b)
{
    cc_deadline d = cc_deadline_in(5 * CC_SEC);
    b->negative = cc_wait_fd(-1, POLLIN, d);
    b->no_event = cc_wait_fd(b->open_fd, 0, d);
    b->only_hup = cc_wait_fd(b->open_fd, POLLHUP, d);
    b->not_open = cc_wait_fd(b->closed_fd, POLLIN, d);
    b->close_neg = cc_close(-1);
}

static int bad_fd_task(void *arg, void **result)
{
    bad_fd_calls(arg);
    return 0;
}

static void *bad_fd_thread(void *arg)
{
    bad_fd_calls(arg);
    return NULL;
}

static void check_bad_fd(const struct bad_fd *b)
{
    assert_int_equal(b->negative, -EBADF);
    assert_int_equal(b->no_event, -EINVAL);
    assert_int_equal(b->only_hup, -EINVAL);
    assert_int_equal(b->not_open, -EBADF);
    assert_int_equal(b->close_neg, -EBADF);
}

static void test_wait_fd_bad_input(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    /* High: the loop's own fds (its poller) take the lowest free numbers. */
    int gone = fcntl(p[0], F_DUPFD_CLOEXEC, 900);
    assert_true(gone >= 900);
    close(gone);
    struct bad_fd in_task = {.open_fd = p[0], .closed_fd = gone};
    assert_int_equal(cc_loop_run(bad_fd_task, &in_task, NULL), 0);
    check_bad_fd(&in_task);
    struct bad_fd in_thread = {.open_fd = p[0], .closed_fd = gone};
    join(start(bad_fd_thread, &in_thread));
    check_bad_fd(&in_thread);
    close(p[0]);
    close(p[1]);
}

/* ---- 200 HTTP GETs, one task each, against a server that waits 10 ms ------- */

enum { GETS = 200 };

struct gets_run {
    struct http_server server; /* in the same loop */
    long correct;              /* answers with the right body */
    int errors;                /* failed GETs */
};

struct get_task {
    struct gets_run *run; /* shared */
    int i;                /* which GET */
};

static int get_one(void *arg, void **result)
{
    struct get_task *g = arg;
    char path[32], body[64];
    snprintf(path, sizeof path, "/item/%d", g->i);
    int r = http_get(&g->run->server.addr, path, body, sizeof body);
    if (r == 0 && strcmp(body, path) == 0)
        g->run->correct++;
    else
        g->run->errors++;
    return 0;
}

static int gets_main(void *arg, void **result)
{
    struct gets_run *run = arg;
    static struct get_task gs[GETS];
    cc_spawn(http_serve, &run->server, NULL);
    for (int i = 0; i < GETS; i++) {
        gs[i] = (struct get_task){run, i};
        cc_spawn(get_one, &gs[i], NULL);
    }
    return 0;
}

static void test_io_bound_200_gets(void **state)
{
    (void)state;
    struct gets_run run = {.server = {.delay_ns = 10 * CC_MSEC,
                                      .connections = GETS}};
    assert_int_equal(http_listen(&run.server), 0);
    assert_int_equal(cc_loop_run(gets_main, &run, NULL), 0);
    close(run.server.listener);
    assert_int_equal(run.errors, 0);
    assert_int_equal(run.correct, GETS);
    /* The waits overlapped: one loop served many requests at once. */
    assert_true(run.server.max_inflight > 1);
}

/* ---- files epoll cannot watch; many waiters; a growing fd table ---------- */

struct nopoll_run {
    int devnull_wait;   /* cc_wait_fd(/dev/null, POLLIN) in a task */
    int file_wait;      /* cc_wait_fd(a regular file, POLLIN) in a task */
    ssize_t devnull_rd; /* cc_read of /dev/null: 0 (end of file) */
    ssize_t devnull_wr; /* cc_write of 3 bytes to /dev/null */
};

static int nopoll_main(void *arg, void **result)
{
    struct nopoll_run *n = arg;
    int fd = open("/dev/null", O_RDWR | O_CLOEXEC | O_NONBLOCK);
    int file = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || file < 0)
        abort();
    char c[4];
    n->devnull_wait = cc_wait_fd(fd, POLLIN, cc_deadline_in(CC_SEC));
    n->file_wait = cc_wait_fd(file, POLLIN, cc_deadline_in(CC_SEC));
    n->devnull_rd = cc_read(fd, c, sizeof c, cc_deadline_in(CC_SEC));
    n->devnull_wr = cc_write(fd, "abc", 3, cc_deadline_in(CC_SEC));
    cc_close(file);
    cc_close(fd);
    return 0;
}

/* Files without readiness answer -EPERM on both pollers (as the header
 * says), and their reads and writes never wait. */
static void test_files_epoll_refuses(void **state)
{
    (void)state;
    struct nopoll_run n = {0};
    assert_int_equal(cc_loop_run(nopoll_main, &n, NULL), 0);
    assert_int_equal(n.devnull_wait, -EPERM);
    assert_int_equal(n.file_wait, -EPERM);
    assert_int_equal(n.devnull_rd, 0);
    assert_int_equal(n.devnull_wr, 3);
}

/* Tasks on one socket: two readers (the first times out), a writer
 * parked on a full send buffer, and a wait on a high duplicate of the
 * socket (its number past the fd tables' first size: they grow while the
 * others' waits and reads are linked in them). Each must be woken for its
 * own event only, on both pollers. */
struct share_run {
    int s[2];          /* the socket pair: tasks use s[0] */
    ssize_t first;     /* reader 1: cc_recv with a short deadline */
    ssize_t second;    /* reader 2: cc_recv, gets the byte */
    char byte;         /* what reader 2 read */
    int writer;        /* cc_wait_fd(POLLOUT) on the full socket */
    bool drained;      /* the peer read the buffer (before the writer) */
    bool writer_early; /* the writer was woken before the drain */
    int high;          /* cc_wait_fd on the high duplicate */
};

static int share_reader1(void *arg, void **result)
{
    struct share_run *r = arg;
    char c;
    r->first = cc_recv(r->s[0], &c, 1, 0, cc_deadline_in(20 * CC_MSEC));
    return 0;
}

static int share_reader2(void *arg, void **result)
{
    struct share_run *r = arg;
    r->second = cc_recv(r->s[0], &r->byte, 1, 0, cc_deadline_in(10 * CC_SEC));
    return 0;
}

static int share_writer(void *arg, void **result)
{
    struct share_run *r = arg;
    r->writer = cc_wait_fd(r->s[0], POLLOUT, cc_deadline_in(10 * CC_SEC));
    r->writer_early = !r->drained;
    return 0;
}

static int share_high(void *arg, void **result)
{
    struct share_run *r = arg;
    int hi = fcntl(r->s[0], F_DUPFD_CLOEXEC, 3000);
    if (hi < 0)
        abort();
    r->high = cc_wait_fd(hi, POLLPRI, cc_deadline_in(30 * CC_MSEC));
    cc_close(hi);
    return 0;
}

static int share_main(void *arg, void **result)
{
    struct share_run *r = arg;
    char fill[4096] = {0};
    while (send(r->s[0], fill, sizeof fill, MSG_DONTWAIT) > 0)
        ;
    cc_future *f[4];
    cc_spawn(share_reader1, r, &f[0]);
    cc_spawn(share_reader2, r, &f[1]);
    cc_spawn(share_writer, r, &f[2]);
    cc_future_wait(f[0], CC_FOREVER); /* reader 1 timed out */
    cc_spawn(share_high, r, &f[3]);
    cc_future_wait(f[3], CC_FOREVER); /* the tables grew */
    cc_sleep(5 * CC_MSEC);
    if (write(r->s[1], "z", 1) != 1)
        abort();
    cc_future_wait(f[1], CC_FOREVER);
    r->drained = true;
    while (read(r->s[1], fill, sizeof fill) > 0)
        ;
    cc_future_wait(f[2], CC_FOREVER);
    for (int i = 0; i < 4; i++)
        cc_future_release(f[i]);
    return 0;
}

static void test_tasks_sharing_a_socket(void **state)
{
    (void)state;
    struct share_run r = {0};
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
                                SOCK_CLOEXEC, 0, r.s), 0);
    assert_int_equal(cc_loop_run(share_main, &r, NULL), 0);
    assert_int_equal(r.first, -ETIMEDOUT);
    assert_int_equal(r.high, -ETIMEDOUT);
    assert_int_equal(r.second, 1);
    assert_int_equal(r.byte, 'z');
    assert_true(r.writer > 0 && (r.writer & POLLOUT));
    assert_false(r.writer_early);
    close(r.s[0]);
    close(r.s[1]);
}

/* A Unix-domain listener with a full backlog: cc_connect gives -EAGAIN
 * at once, deadline or not (as loop.h says); a later try after an accept
 * connects. */
struct unix_run {
    int first, full, after; /* the three cc_connect results */
    int64_t waited;         /* how long the full one took, ns */
};

static int unix_connect(const struct sockaddr_un *a, socklen_t len,
                        cc_deadline deadline, int *fd)
{
    *fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (*fd < 0)
        abort();
    return cc_connect(*fd, (const struct sockaddr *)a, len, deadline);
}

static int unix_main(void *arg, void **result)
{
    struct unix_run *u = arg;
    int l = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int n = snprintf(a.sun_path + 1, sizeof a.sun_path - 1,
                     "concur-test-%d", (int)getpid());
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
                                (size_t)n); /* an abstract address */
    if (l < 0 || bind(l, (struct sockaddr *)&a, len) < 0 || listen(l, 0) < 0)
        abort();
    int c[3];
    cc_deadline d = cc_deadline_in(10 * CC_SEC);
    u->first = unix_connect(&a, len, d, &c[0]);
    int64_t t0 = cc_now();
    u->full = unix_connect(&a, len, d, &c[1]);
    u->waited = cc_now() - t0;
    int s = cc_accept(l, d);
    u->after = unix_connect(&a, len, d, &c[2]);
    for (int i = 0; i < 3; i++)
        cc_close(c[i]);
    cc_close(s);
    cc_close(l);
    return 0;
}

static void test_unix_connect_backlog_full(void **state)
{
    (void)state;
    struct unix_run u = {0};
    assert_int_equal(cc_loop_run(unix_main, &u, NULL), 0);
    assert_int_equal(u.first, 0);
    assert_int_equal(u.full, -EAGAIN);
    assert_true(u.waited < 5 * CC_SEC);
    assert_int_equal(u.after, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CC_TEST(test_wait_fd_pipe),
        CC_TEST(test_fd_number_reused),
        CC_TEST(test_recv_after_short_read),
        CC_TEST(test_socket_echo),
        CC_TEST(test_socket_errors),
        CC_TEST(test_wait_fd_bad_input),
        CC_TEST(test_io_bound_200_gets),
        CC_TEST(test_files_epoll_refuses),
        CC_TEST(test_tasks_sharing_a_socket),
        CC_TEST(test_unix_connect_backlog_full),
    };
    return CC_RUN_TESTS(tests);
}
