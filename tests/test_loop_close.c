/*
 * test_loop_close.c: cc_close wakes the tasks of its loop that wait on the
 * fd (readers in flight on the io_uring included), with -EBADF, and the
 * kernel lets go of the file (the peer sees end of file); other fds are
 * untouched; a woken reader never reads the file that takes the number
 * next. `make check-epoll` runs it on epoll too.
 */
#include "testutil.h"

#include "loop_helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void sockpair(int s[2])
{
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0,
                   s) != 0)
        abort();
}

/* Let the tasks park, and the loop hand their requests to the kernel. */
static void settle(void)
{
    for (int i = 0; i < 3; i++)
        cc_yield();
    cc_sleep(5 * CC_MSEC);
}

/* A task that makes one call on fd and records what it returned. */
enum call { RECV, READ, WAIT_IN, ACCEPT, SEND, RECV_AFTER_SHORT, WAIT_ANY };

struct party {
    enum call call;
    int fd;
    ssize_t got;   /* what the call returned */
    bool done;     /* it returned */
    char buf[64];  /* what it read */
};

static int run_party(void *arg, void **result)
{
    struct party *p = arg;
    cc_deadline d = cc_deadline_in(60 * CC_SEC);
    static char big[1 << 16];
    switch (p->call) {
    case RECV:
        p->got = cc_recv(p->fd, p->buf, sizeof p->buf, 0, d);
        break;
    case READ:
        p->got = cc_read(p->fd, p->buf, sizeof p->buf, d);
        break;
    case WAIT_IN:
        p->got = cc_wait_fd(p->fd, POLLIN, d);
        break;
    case ACCEPT:
        p->got = cc_accept(p->fd, d);
        break;
    case SEND: /* the socket is full: the first send that waits */
        for (;;) {
            p->got = cc_send(p->fd, big, sizeof big, 0, d);
            if (p->got < 0)
                break;
        }
        break;
    case WAIT_ANY: { /* the fd and a timer far away: the fd's revents */
        cc_waitable w[2] = {
            {.kind = CC_WAIT_TIMER, .at = d},
            {.kind = CC_WAIT_FD, .fd = p->fd, .events = POLLIN},
        };
        p->got = cc_wait_any(w, 2, d) == 1 ? w[1].ready : -1;
        break;
    }
    case RECV_AFTER_SHORT: /* a short read first: the fd is drained */
        if (cc_recv(p->fd, p->buf, sizeof p->buf, 0, d) != 2)
            abort();
        p->got = cc_recv(p->fd, p->buf, sizeof p->buf, 0, d);
        break;
    }
    p->done = true;
    return 0;
}

static cc_future *spawn_party(struct party *p)
{
    cc_future *f;
    if (cc_spawn(run_party, p, &f) != 0)
        abort();
    return f;
}

/* Wait for the party's task; abort if it does not end within 10 s. */
static void finish(cc_future *f)
{
    if (cc_future_wait(f, cc_deadline_in(10 * CC_SEC)) != 0)
        abort();
    cc_future_release(f);
}

/* Whether fd reaches end of file within 10 s (the peer's file is gone). */
static bool sees_eof(int fd)
{
    char c;
    cc_deadline d = cc_deadline_in(10 * CC_SEC);
    for (;;) {
        ssize_t r = cc_recv(fd, &c, 1, 0, d);
        if (r == 0)
            return true;
        if (r < 0)
            return false;
    }
}

/* ---- a parked reader ---------------------------------------------------- */

struct reader_run {
    ssize_t recv_got, read_got; /* the readers' results */
    bool eof_socket, eof_pipe;  /* their peers saw the close */
    bool early;                 /* a reader returned before the close */
};

static int reader_main(void *arg, void **result)
{
    struct reader_run *r = arg;
    int s[2], p[2];
    sockpair(s);
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0)
        abort();
    struct party a = {.call = RECV, .fd = s[0]};
    struct party b = {.call = READ, .fd = p[0]};
    cc_future *fa = spawn_party(&a), *fb = spawn_party(&b);
    settle();
    r->early = a.done || b.done;
    if (cc_close(s[0]) != 0 || cc_close(p[0]) != 0)
        abort();
    finish(fa);
    finish(fb);
    r->recv_got = a.got;
    r->read_got = b.got;
    r->eof_socket = sees_eof(s[1]);
    /* The pipe's writer sees its reader gone: EPIPE (SIGPIPE ignored). */
    cc_deadline d = cc_deadline_in(10 * CC_SEC);
    while (cc_now() < d && !r->eof_pipe) {
        r->eof_pipe = cc_write(p[1], "x", 1, d) == -EPIPE;
        cc_sleep(CC_MSEC);
    }
    close(s[1]);
    close(p[1]);
    return 0;
}

static void test_close_wakes_a_parked_reader(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    struct reader_run r = {0};
    assert_int_equal(cc_loop_run(reader_main, &r, NULL), 0);
    assert_false(r.early);
    assert_int_equal(r.recv_got, -EBADF);
    assert_int_equal(r.read_got, -EBADF);
    assert_true(r.eof_socket);
    assert_true(r.eof_pipe);
}

/* ---- every kind of wait, and the fds left alone ------------------------- */

struct kinds_run {
    struct party wait_in, accept, send, reader, writer, any, other;
    char other_buf[8];
};

static int listener(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(fd, 8) != 0)
        abort();
    return fd;
}

static int kinds_main(void *arg, void **result)
{
    struct kinds_run *k = arg;
    int s1[2], s2[2], s3[2], s4[2], s5[2];
    sockpair(s1);
    sockpair(s2);
    sockpair(s3);
    sockpair(s4);
    sockpair(s5);
    k->wait_in = (struct party){.call = WAIT_IN, .fd = s1[0]};
    k->accept = (struct party){.call = ACCEPT, .fd = listener()};
    k->send = (struct party){.call = SEND, .fd = s4[0]};
    /* A reader and a writer on one socket, its send buffer full. */
    k->reader = (struct party){.call = RECV, .fd = s2[0]};
    k->writer = (struct party){.call = SEND, .fd = s2[0]};
    k->any = (struct party){.call = WAIT_ANY, .fd = s5[0]};
    k->other = (struct party){.call = RECV, .fd = s3[0]};
    struct party *all[] = {&k->wait_in, &k->accept, &k->send, &k->reader,
                           &k->writer,  &k->any,    &k->other};
    enum { CLOSED = 6 }; /* all but the last */
    cc_future *f[CLOSED + 1];
    for (int i = 0; i <= CLOSED; i++)
        f[i] = spawn_party(all[i]);
    settle();
    for (int i = 0; i < CLOSED; i++) /* s2[0] once, for its two tasks */
        if (all[i]->done || (all[i] != &k->writer && cc_close(all[i]->fd)))
            abort();
    for (int i = 0; i < CLOSED; i++)
        finish(f[i]);
    if (k->other.done || write(s3[1], "later", 5) != 5)
        abort();
    finish(f[CLOSED]);
    close(s1[1]);
    close(s2[1]);
    close(s4[1]);
    close(s5[1]);
    close(s3[0]);
    close(s3[1]);
    return 0;
}

static void test_close_wakes_every_kind_of_wait(void **state)
{
    (void)state;
    struct kinds_run k = {0};
    assert_int_equal(cc_loop_run(kinds_main, &k, NULL), 0);
    assert_int_equal(k.wait_in.got, -EBADF);
    assert_int_equal(k.accept.got, -EBADF);
    assert_int_equal(k.send.got, -EBADF);
    assert_int_equal(k.reader.got, -EBADF);
    assert_int_equal(k.writer.got, -EBADF);
    assert_true(k.any.got > 0 && (k.any.got & POLLNVAL));
    /* The task on another fd was not woken, and reads what comes. */
    assert_int_equal(k.other.got, 5);
    assert_memory_equal(k.other.buf, "later", 5);
}

/* ---- the number taken again at once ------------------------------------- */

struct reuse_run {
    ssize_t old_got, old_drained_got; /* the woken readers' results */
    ssize_t new_got;                  /* a read of the new file */
    char new_buf[8];
    bool reused;                      /* the new file got the old numbers */
};

static int reuse_main(void *arg, void **result)
{
    struct reuse_run *r = arg;
    int a[2], b[2], c[2];
    sockpair(a);
    sockpair(b);
    /* One reader parks at once; the other after a short read (drained:
     * on epoll it waits before its system call). */
    struct party first = {.call = RECV, .fd = a[0]};
    struct party second = {.call = RECV_AFTER_SHORT, .fd = b[0]};
    if (write(b[1], "hi", 2) != 2)
        abort();
    cc_future *f1 = spawn_party(&first), *f2 = spawn_party(&second);
    cc_sleep(5 * CC_MSEC); /* not a yield: second finds nothing else ready */
    sockpair(c);
    int old_a = a[0], old_b = b[0];
    if (cc_close(a[0]) != 0 || cc_close(b[0]) != 0)
        abort();
    /* Before the woken readers run: another file under the old numbers,
     * with data ready. A reader that retried its system call would read
     * it. */
    r->reused = dup2(c[0], old_a) == old_a && dup2(c[0], old_b) == old_b;
    if (write(c[1], "new", 3) != 3)
        abort();
    finish(f1);
    finish(f2);
    r->old_got = first.got;
    r->old_drained_got = second.got;
    r->new_got = cc_recv(c[0], r->new_buf, sizeof r->new_buf, 0,
                         cc_deadline_in(10 * CC_SEC));
    close(a[1]);
    close(b[1]);
    close(c[0]);
    close(c[1]);
    close(old_a);
    close(old_b);
    return 0;
}

static void test_woken_reader_never_reads_the_next_file(void **state)
{
    (void)state;
    struct reuse_run r = {0};
    assert_int_equal(cc_loop_run(reuse_main, &r, NULL), 0);
    assert_true(r.reused); /* else the test shows nothing */
    assert_int_equal(r.old_got, -EBADF);
    assert_int_equal(r.old_drained_got, -EBADF);
    assert_int_equal(r.new_got, 3);
    assert_memory_equal(r.new_buf, "new", 3);
}

/* A wait_any woken by its fd, which another task cc_closes before the
 * woken one runs, putting a ready file under the same number: the wait
 * reports the fd closed (POLLNVAL), not the next file's readiness. */
struct any_reuse_run {
    struct party any; /* its wait_any */
    bool reused;      /* dup2 gave the number */
};

static int any_reuse_main(void *arg, void **result)
{
    struct any_reuse_run *r = arg;
    int a[2], c[2];
    sockpair(a);
    sockpair(c);
    r->any = (struct party){.call = WAIT_ANY, .fd = a[0]};
    cc_future *f = spawn_party(&r->any);
    settle();
    if (write(a[1], "x", 1) != 1)
        abort();
    /* Queued again before the loop polls: it wakes the waiter behind us. */
    cc_yield();
    if (r->any.done || cc_close(a[0]) != 0)
        abort();
    r->reused = dup2(c[0], a[0]) == a[0];
    if (write(c[1], "new", 3) != 3)
        abort();
    finish(f);
    close(a[0]);
    close(a[1]);
    close(c[0]);
    close(c[1]);
    return 0;
}

static void test_woken_wait_any_never_sees_the_next_file(void **state)
{
    (void)state;
    struct any_reuse_run r = {0};
    assert_int_equal(cc_loop_run(any_reuse_main, &r, NULL), 0);
    assert_true(r.reused); /* else the test shows nothing */
    assert_true(r.any.got > 0);
    assert_true(r.any.got & POLLNVAL);
}

/* A read queued in the same round as the close: a reader parks (on the
 * io_uring its READ is queued, not yet submitted), or, after a short read,
 * lets the other ready task run before its system call (on epoll), and
 * before the loop polls again that task closes the reader's fd and puts a
 * file with data under the same number. The read must not take that data. */
struct round_run {
    struct party reader;
    int fd;         /* the reader's file */
    int other[2];   /* the file put under its number */
    bool reused;    /* dup2 gave the number */
    ssize_t later;  /* a read of the other file afterwards */
    char buf[8];
};

static int close_and_reuse(void *arg, void **result)
{
    struct round_run *r = arg;
    if (cc_close(r->fd) != 0)
        abort();
    r->reused = dup2(r->other[0], r->fd) == r->fd;
    if (write(r->other[1], "new", 3) != 3)
        abort();
    return 0;
}

/* The file a reader's call reads: a pipe for cc_read, else a socket. */
static void pair_for(enum call call, int p[2])
{
    if (call != READ)
        sockpair(p);
    else if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0)
        abort();
}

static int round_main(void *arg, void **result)
{
    struct round_run *r = arg;
    int p[2];
    pair_for(r->reader.call, p);
    pair_for(r->reader.call, r->other);
    if (r->reader.call == RECV_AFTER_SHORT && write(p[1], "hi", 2) != 2)
        abort();
    r->fd = r->reader.fd = p[0];
    cc_future *fr = spawn_party(&r->reader), *fc;
    /* Spawned after the reader: runs after it in the same round. */
    if (cc_spawn(close_and_reuse, r, &fc) != 0)
        abort();
    finish(fc);
    finish(fr);
    r->later = cc_read(r->other[0], r->buf, sizeof r->buf,
                       cc_deadline_in(10 * CC_SEC));
    close(p[0]); /* the dup of other[0] */
    close(p[1]);
    close(r->other[0]);
    close(r->other[1]);
    return 0;
}

static void run_round(enum call call)
{
    struct round_run r = {.reader.call = call};
    assert_int_equal(cc_loop_run(round_main, &r, NULL), 0);
    assert_true(r.reused);
    assert_int_equal(r.reader.got, -EBADF);
    assert_int_equal(r.later, 3);
    assert_memory_equal(r.buf, "new", 3);
}

static void test_read_queued_in_the_round_of_the_close(void **state)
{
    (void)state;
    run_round(READ);
}

static void test_yielded_reader_never_reads_the_next_file(void **state)
{
    (void)state;
    run_round(RECV_AFTER_SHORT);
}

/* Two writers, each parked on its own full pipe, are woken by the poller
 * in one batch (both pipes drained at once). The first to run closes the
 * other's pipe and puts an empty pipe under its number before the other
 * runs: woken but not yet run, the other must not write into that pipe. */
struct woken_run {
    int pipes[2][2];  /* the writers' pipes */
    int fresh[2];     /* the pipe put under the closed number */
    int closer;       /* the writer that ran first, or -1 */
    bool reused;      /* dup2 gave the number */
    ssize_t got[2];   /* what each writer's cc_write returned */
    ssize_t in_fresh; /* bytes that reached the fresh pipe */
};

struct woken_writer {
    struct woken_run *run;
    int i; /* which writer */
};

static int woken_write(void *arg, void **result)
{
    struct woken_writer *w = arg;
    struct woken_run *r = w->run;
    static char big[1 << 16];
    r->got[w->i] = cc_write(r->pipes[w->i][1], big, sizeof big,
                            cc_deadline_in(60 * CC_SEC));
    if (r->closer < 0) { /* first: the other is woken, not yet run */
        r->closer = w->i;
        int fd = r->pipes[!w->i][1];
        if (cc_close(fd) != 0)
            abort();
        r->reused = dup2(r->fresh[1], fd) == fd;
    }
    return 0;
}

/* Fill a non-blocking pipe until a write would block. */
static void fill(int fd)
{
    static char chunk[4096];
    while (write(fd, chunk, sizeof chunk) > 0)
        ;
}

/* Empty a non-blocking pipe; returns the bytes it held. */
static ssize_t drain(int fd)
{
    char buf[4096];
    ssize_t n, total = 0;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        total += n;
    return total;
}

static int woken_main(void *arg, void **result)
{
    struct woken_run *r = arg;
    for (int i = 0; i < 2; i++) {
        if (pipe2(r->pipes[i], O_NONBLOCK | O_CLOEXEC) != 0)
            abort();
        fill(r->pipes[i][1]);
    }
    if (pipe2(r->fresh, O_NONBLOCK | O_CLOEXEC) != 0)
        abort();
    struct woken_writer w[2] = {{r, 0}, {r, 1}};
    cc_future *f[2];
    for (int i = 0; i < 2; i++)
        if (cc_spawn(woken_write, &w[i], &f[i]) != 0)
            abort();
    settle();
    if (r->got[0] || r->got[1])
        abort(); /* a writer did not wait */
    drain(r->pipes[0][0]); /* no yield between: one batch wakes both */
    drain(r->pipes[1][0]);
    finish(f[0]);
    finish(f[1]);
    r->in_fresh = drain(r->fresh[0]);
    for (int i = 0; i < 2; i++) {
        close(r->pipes[i][0]);
        close(r->pipes[i][1]); /* the closed one's number: the dup */
    }
    close(r->fresh[0]);
    close(r->fresh[1]);
    return 0;
}

static void test_woken_writer_never_writes_the_next_file(void **state)
{
    (void)state;
    struct woken_run r = {.closer = -1};
    assert_int_equal(cc_loop_run(woken_main, &r, NULL), 0);
    assert_true(r.reused);
    assert_true(r.closer == 0 || r.closer == 1);
    assert_true(r.got[r.closer] > 0);
    assert_int_equal(r.got[!r.closer], -EBADF);
    assert_int_equal(r.in_fresh, 0);
}

/* ---- outside a task ----------------------------------------------------- */

static void test_close_outside_a_task(void **state)
{
    (void)state;
    int s[2];
    sockpair(s);
    assert_int_equal(cc_close(-1), -EBADF);
    assert_int_equal(cc_close(s[0]), 0);
    assert_int_equal(cc_close(s[0]), -EBADF);
    char c;
    assert_int_equal(read(s[1], &c, 1), 0); /* the peer sees it at once */
    assert_int_equal(cc_close(s[1]), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CC_TEST(test_close_wakes_a_parked_reader),
        CC_TEST(test_close_wakes_every_kind_of_wait),
        CC_TEST(test_woken_reader_never_reads_the_next_file),
        CC_TEST(test_woken_wait_any_never_sees_the_next_file),
        CC_TEST(test_read_queued_in_the_round_of_the_close),
        CC_TEST(test_woken_writer_never_writes_the_next_file),
        CC_TEST(test_yielded_reader_never_reads_the_next_file),
        CC_TEST(test_close_outside_a_task),
    };
    return CC_RUN_TESTS(tests);
}
