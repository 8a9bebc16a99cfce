/*
 * test_loop_io.c: a task's cc_recv/cc_read that waits (on the io_uring
 * backend: a RECV or READ request the kernel completes, src/loop_io.c; on
 * epoll: readiness, then the system call). A read cancelled or timed out
 * while in flight, data arriving at the same time as the cancel (never
 * lost), a peer close, a reader and a writer on one socket, more readers
 * at once than the ring's submission queue holds, a pipe through cc_read.
 * `make check-epoll` runs it on epoll too.
 */
#include "testutil.h"

#include "loop_helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void sockpair(int s[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC |
                                SOCK_NONBLOCK, 0, s), 0);
}

/* A reader task: one cc_recv (or cc_read) into buf until its deadline. */
struct reader {
    int fd;               /* from */
    bool use_read;        /* cc_read, else cc_recv */
    cc_deadline deadline; /* of the call */
    char buf[64];         /* into */
    ssize_t got;          /* what the call returned */
    bool done;            /* it returned */
};

static int read_once(void *arg, void **result)
{
    struct reader *r = arg;
    r->got = r->use_read
                 ? cc_read(r->fd, r->buf, sizeof r->buf, r->deadline)
                 : cc_recv(r->fd, r->buf, sizeof r->buf, 0, r->deadline);
    r->done = true;
    return 0;
}

/* Let the loop run a few rounds (and submit what the tasks asked for). */
static void rounds(int n)
{
    for (int i = 0; i < n; i++)
        cc_yield();
}

/* ---- cancellation and deadlines ----------------------------------------- */

struct cancel_run {
    int s[2];           /* the socket pair */
    ssize_t cancelled;  /* the reader's result after cc_task_cancel */
    bool done_early;    /* the reader returned before the cancel */
    ssize_t after;      /* a later cc_recv of the data sent after */
    char buf[8];        /* its bytes */
};

static int cancel_main(void *arg, void **result)
{
    struct cancel_run *c = arg;
    struct reader r = {.fd = c->s[0], .deadline = CC_FOREVER};
    cc_future *f;
    if (cc_spawn(read_once, &r, &f) != 0)
        abort();
    rounds(3);
    cc_sleep(5 * CC_MSEC); /* the recv is the kernel's now */
    c->done_early = r.done;
    cc_task_cancel(f);
    cc_future_wait(f, CC_FOREVER);
    cc_future_release(f);
    c->cancelled = r.got;
    if (write(c->s[1], "after", 5) != 5)
        abort();
    c->after = cc_recv(c->s[0], c->buf, sizeof c->buf, 0,
                       cc_deadline_in(10 * CC_SEC));
    return 0;
}

static void test_recv_cancelled_in_flight(void **state)
{
    (void)state;
    struct cancel_run c = {0};
    sockpair(c.s);
    assert_int_equal(cc_loop_run(cancel_main, &c, NULL), 0);
    assert_false(c.done_early);
    assert_int_equal(c.cancelled, -ECANCELED);
    /* The cancelled request took nothing: the next recv gets it all. */
    assert_int_equal(c.after, 5);
    assert_memory_equal(c.buf, "after", 5);
    close(c.s[0]);
    close(c.s[1]);
}

struct deadline_run {
    int s[2];        /* the socket pair */
    ssize_t first;   /* a recv with a 20 ms deadline on an empty socket */
    int64_t waited;  /* how long it took, ns */
    ssize_t second;  /* a recv after the peer wrote */
    char buf[8];     /* its bytes */
    ssize_t scoped;  /* a recv under a deadline scope of 10 ms */
    ssize_t read_to; /* cc_read on an empty pipe, 10 ms */
};

static int deadline_main(void *arg, void **result)
{
    struct deadline_run *d = arg;
    int64_t t0 = cc_now();
    d->first = cc_recv(d->s[0], d->buf, sizeof d->buf, 0,
                       cc_deadline_in(20 * CC_MSEC));
    d->waited = cc_now() - t0;
    if (write(d->s[1], "later", 5) != 5)
        abort();
    d->second = cc_recv(d->s[0], d->buf, sizeof d->buf, 0, CC_FOREVER);
    cc_deadline_scope sc;
    cc_deadline_scope_begin(&sc, cc_deadline_in(10 * CC_MSEC));
    char b[4];
    d->scoped = cc_recv(d->s[0], b, sizeof b, 0, CC_FOREVER);
    cc_deadline_scope_end(&sc);
    int p[2];
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0)
        abort();
    d->read_to = cc_read(p[0], b, sizeof b, cc_deadline_in(10 * CC_MSEC));
    close(p[0]);
    close(p[1]);
    return 0;
}

static void test_recv_deadline(void **state)
{
    (void)state;
    struct deadline_run d = {0};
    sockpair(d.s);
    assert_int_equal(cc_loop_run(deadline_main, &d, NULL), 0);
    assert_int_equal(d.first, -ETIMEDOUT);
    assert_true(d.waited >= 20 * CC_MSEC);
    assert_int_equal(d.second, 5);
    assert_memory_equal(d.buf, "later", 5);
    assert_int_equal(d.scoped, -ETIMEDOUT);
    assert_int_equal(d.read_to, -ETIMEDOUT);
    close(d.s[0]);
    close(d.s[1]);
}

/* ---- races: data and cancel at once ------------------------------------- */

struct race_run {
    int s[2];      /* the socket pair */
    uint32_t seed; /* for the random pauses */
    long sent;     /* bytes written */
    long taken;    /* bytes the readers or the final drain got */
    long wrong;    /* bytes out of sequence */
    long lost;     /* readers that returned neither bytes nor the error */
    long won;      /* rounds where the read kept its byte despite cancel */
    long cancelled; /* rounds where the cancel won */
};

/* Account for n bytes got, which must continue the sequence. */
static void take(struct race_run *r, const char *buf, ssize_t n)
{
    for (ssize_t i = 0; i < n; i++, r->taken++)
        r->wrong += (unsigned char)buf[i] != (unsigned char)r->taken;
}

/* One round: a reader parks on the empty socket; after 0-3 loop rounds
 * the peer writes one byte and the reader is cancelled, just before or
 * after the write. */
static void race_round(struct race_run *r)
{
    struct reader rd = {.fd = r->s[0], .deadline = CC_FOREVER};
    cc_future *f;
    if (cc_spawn(read_once, &rd, &f) != 0)
        abort();
    rounds((int)(rnd(&r->seed) % 4));
    char b = (char)(unsigned char)r->sent;
    bool cancel_first = rnd(&r->seed) % 2;
    if (cancel_first) { /* the reader's cancel goes in 0-2 rounds before */
        cc_task_cancel(f);
        rounds((int)(rnd(&r->seed) % 3));
    }
    if (write(r->s[1], &b, 1) != 1)
        abort();
    r->sent++;
    if (!cancel_first)
        cc_task_cancel(f);
    cc_future_wait(f, CC_FOREVER);
    cc_future_release(f);
    if (rd.got > 0) {
        take(r, rd.buf, rd.got);
        r->won++;
    } else if (rd.done && rd.got != -ECANCELED) { /* else never ran */
        r->lost++;
    } else {
        r->cancelled += rd.done;
    }
    char buf[64]; /* what the cancelled readers left */
    ssize_t n;
    while ((n = recv(r->s[0], buf, sizeof buf, 0)) > 0)
        take(r, buf, n);
}

static int race_main(void *arg, void **result)
{
    struct race_run *r = arg;
    long n = cc_test_n(3000);
    for (long i = 0; i < n; i++)
        race_round(r);
    return 0;
}

static void test_data_with_cancel_not_lost(void **state)
{
    (void)state;
    struct race_run r = {.seed = 12345};
    sockpair(r.s);
    assert_int_equal(cc_loop_run(race_main, &r, NULL), 0);
    assert_int_equal(r.lost, 0);
    assert_int_equal(r.wrong, 0);
    assert_int_equal(r.taken, r.sent);
    /* Both outcomes happened: the race was run. */
    print_message("read won %ld, cancel won %ld\n", r.won, r.cancelled);
    assert_true(r.cancelled > 0);
    close(r.s[0]);
    close(r.s[1]);
}

/* A writer thread streams a byte sequence with short pauses; a reader
 * task reads it with deadlines of 0-50 us: many time out while their
 * request is in flight, and every byte still arrives once, in order. */
struct stream_run {
    int s[2];      /* the socket pair */
    long total;    /* bytes to stream */
    long taken;    /* bytes read */
    long wrong;    /* out of sequence */
    long timeouts; /* reads that timed out */
    long errors;   /* reads that failed otherwise */
};

static void *stream_writer(void *arg)
{
    struct stream_run *s = arg;
    uint32_t seed = 777;
    for (long i = 0; i < s->total;) {
        char b[16];
        long k = 1 + rnd(&seed) % 16;
        k = k < s->total - i ? k : s->total - i;
        for (long j = 0; j < k; j++)
            b[j] = (char)(unsigned char)(i + j);
        ssize_t n = cc_send(s->s[1], b, (size_t)k, 0, CC_FOREVER);
        if (n <= 0)
            abort();
        i += n;
        if (rnd(&seed) % 4 == 0)
            cc_sleep((int64_t)(rnd(&seed) % 30) * CC_USEC);
    }
    return NULL;
}

static int stream_main(void *arg, void **result)
{
    struct stream_run *s = arg;
    cc_thread *t = start(stream_writer, s);
    uint32_t seed = 99;
    while (s->taken < s->total) {
        char buf[8];
        int64_t us = rnd(&seed) % 50;
        ssize_t n = cc_recv(s->s[0], buf, sizeof buf, 0,
                            cc_deadline_in(us * CC_USEC));
        for (ssize_t i = 0; i < n; i++, s->taken++)
            s->wrong += (unsigned char)buf[i] != (unsigned char)s->taken;
        s->timeouts += n == -ETIMEDOUT;
        s->errors += n < 0 && n != -ETIMEDOUT;
        if (n == 0)
            break;
    }
    join(t);
    return 0;
}

static void test_stream_with_deadlines(void **state)
{
    (void)state;
    struct stream_run s = {.total = cc_test_n(200000)};
    sockpair(s.s);
    assert_int_equal(cc_loop_run(stream_main, &s, NULL), 0);
    assert_int_equal(s.errors, 0);
    assert_int_equal(s.wrong, 0);
    assert_int_equal(s.taken, s.total);
    assert_true(s.timeouts > 0);
    close(s.s[0]);
    close(s.s[1]);
}

/* ---- end of file, sharing, many --------------------------------------- */

struct close_run {
    int s[2];         /* the socket pair */
    ssize_t got;      /* the parked reader's result once the peer closed */
    ssize_t pipe_got; /* a parked cc_read once the pipe's writer closed */
};

static int close_main(void *arg, void **result)
{
    struct close_run *c = arg;
    struct reader r = {.fd = c->s[0], .deadline = cc_deadline_in(60 * CC_SEC)};
    cc_future *f;
    if (cc_spawn(read_once, &r, &f) != 0)
        abort();
    rounds(3);
    cc_sleep(2 * CC_MSEC);
    close(c->s[1]);
    cc_future_wait(f, CC_FOREVER);
    cc_future_release(f);
    c->got = r.got;
    int p[2];
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0)
        abort();
    struct reader pr = {.fd = p[0], .use_read = true,
                        .deadline = cc_deadline_in(60 * CC_SEC)};
    if (cc_spawn(read_once, &pr, &f) != 0)
        abort();
    rounds(3);
    cc_sleep(2 * CC_MSEC);
    close(p[1]);
    cc_future_wait(f, CC_FOREVER);
    cc_future_release(f);
    c->pipe_got = pr.got;
    close(p[0]);
    return 0;
}

static void test_peer_close_gives_0(void **state)
{
    (void)state;
    struct close_run c = {0};
    sockpair(c.s);
    assert_int_equal(cc_loop_run(close_main, &c, NULL), 0);
    assert_int_equal(c.got, 0);
    assert_int_equal(c.pipe_got, 0);
    close(c.s[0]);
}

/* On s[0] one task writes a byte sequence and another reads the echo; on
 * s[1] a task echoes. Small buffers: both sides wait (POLLOUT, reads). */
struct duplex_run {
    int s[2];     /* the socket pair */
    long total;   /* bytes each way */
    long echoed;  /* bytes the reader got back */
    long wrong;   /* out of sequence */
    long errors;  /* failed calls */
};

static int duplex_writer(void *arg, void **result)
{
    struct duplex_run *d = arg;
    char buf[3000];
    for (long i = 0; i < d->total;) {
        size_t k = (size_t)(d->total - i < 3000 ? d->total - i : 3000);
        for (size_t j = 0; j < k; j++)
            buf[j] = (char)(unsigned char)(i + (long)j);
        ssize_t n = cc_send(d->s[0], buf, k, 0, cc_deadline_in(60 * CC_SEC));
        if (n <= 0) {
            d->errors++;
            return 0;
        }
        i += n;
    }
    return 0;
}

static int duplex_echo(void *arg, void **result)
{
    struct duplex_run *d = arg;
    char buf[1500];
    for (long i = 0; i < d->total;) {
        ssize_t n = cc_recv(d->s[1], buf, sizeof buf, 0,
                            cc_deadline_in(60 * CC_SEC));
        for (ssize_t off = 0; n > 0 && off < n;) {
            ssize_t w = cc_send(d->s[1], buf + off, (size_t)(n - off), 0,
                                cc_deadline_in(60 * CC_SEC));
            if (w <= 0) {
                d->errors++;
                return 0;
            }
            off += w;
        }
        if (n <= 0) {
            d->errors++;
            return 0;
        }
        i += n;
    }
    return 0;
}

static int duplex_main(void *arg, void **result)
{
    struct duplex_run *d = arg;
    cc_future *w, *e;
    if (cc_spawn(duplex_writer, d, &w) || cc_spawn(duplex_echo, d, &e))
        abort();
    char buf[700];
    while (d->echoed < d->total) {
        ssize_t n = cc_recv(d->s[0], buf, sizeof buf, 0,
                            cc_deadline_in(60 * CC_SEC));
        if (n <= 0) {
            d->errors++;
            break;
        }
        for (ssize_t i = 0; i < n; i++, d->echoed++)
            d->wrong += (unsigned char)buf[i] != (unsigned char)d->echoed;
    }
    cc_future_wait(w, CC_FOREVER);
    cc_future_wait(e, CC_FOREVER);
    cc_future_release(w);
    cc_future_release(e);
    return 0;
}

static void test_reader_and_writer_share_socket(void **state)
{
    (void)state;
    struct duplex_run d = {.total = cc_test_n(4000000)};
    sockpair(d.s);
    int small = 4096;
    setsockopt(d.s[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    setsockopt(d.s[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    assert_int_equal(cc_loop_run(duplex_main, &d, NULL), 0);
    assert_int_equal(d.errors, 0);
    assert_int_equal(d.wrong, 0);
    assert_int_equal(d.echoed, d.total);
    close(d.s[0]);
    close(d.s[1]);
}

/* n readers, each on its own socket pair, parked at once; each gets its
 * own two bytes, sent one by one (a reader late to take the first gets
 * both at once). */
struct many_run {
    int n;            /* readers */
    int (*s)[2];      /* one socket pair per reader */
    struct reader *r; /* the readers */
    long correct;     /* readers that got both their bytes */
};

static int many_reader(void *arg, void **result)
{
    struct reader *r = arg;
    r->got = 0;
    while (r->got < 2) { /* 1 byte of 8: short, so the next read waits */
        ssize_t n = cc_recv(r->fd, r->buf + r->got, 8, 0, r->deadline);
        if (n <= 0) {
            r->got = n * 1000 - 1; /* the failure, for the message */
            return 0;
        }
        r->got += n;
    }
    return 0;
}

static int many_main(void *arg, void **result)
{
    struct many_run *m = arg;
    cc_future **f = calloc((size_t)m->n, sizeof *f);
    if (!f)
        abort();
    for (int i = 0; i < m->n; i++) {
        m->r[i] = (struct reader){.fd = m->s[i][0],
                                  .deadline = cc_deadline_in(60 * CC_SEC)};
        if (cc_spawn(many_reader, &m->r[i], &f[i]) != 0)
            abort();
    }
    for (int k = 0; k < 2; k++) {
        rounds(3);
        cc_sleep(CC_MSEC);
        for (int i = 0; i < m->n; i++) {
            char b = (char)(i * 7 + k);
            if (write(m->s[i][1], &b, 1) != 1)
                abort();
        }
    }
    for (int i = 0; i < m->n; i++) {
        cc_future_wait(f[i], CC_FOREVER);
        cc_future_release(f[i]);
        m->correct += m->r[i].got == 2 && m->r[i].buf[0] == (char)(i * 7) &&
                      m->r[i].buf[1] == (char)(i * 7 + 1);
    }
    free(f);
    return 0;
}

static void run_many_readers(int n)
{
    struct many_run m = {.n = n};
    m.s = calloc((size_t)n, sizeof *m.s);
    m.r = calloc((size_t)n, sizeof *m.r);
    assert_non_null(m.s);
    assert_non_null(m.r);
    for (int i = 0; i < n; i++)
        sockpair(m.s[i]);
    assert_int_equal(cc_loop_run(many_main, &m, NULL), 0);
    assert_int_equal(m.correct, n);
    for (int i = 0; i < n; i++) {
        close(m.s[i][0]);
        close(m.s[i][1]);
    }
    free(m.s);
    free(m.r);
}

/* More readers parked at once than the ring's 256 submission entries. */
static void test_many_readers(void **state)
{
    (void)state;
    run_many_readers(400);
}

/* Far more readers than the completion queue's 4,096 entries, all made
 * ready at once: their completions overflow the queue (the kernel keeps
 * them aside), and the readers' next requests are submitted while it is
 * in overflow. Each reader must get its own two bytes, none may hang. */
static void test_readers_overflow_completion_queue(void **state)
{
    (void)state;
    run_many_readers((int)cc_test_n(5000));
}

/* A whole queue of requests asked for while completions wait on the ring:
 * EARLY readers get their bytes (their completions come, and wait, as the
 * loop takes POLL_BATCH at a time), then LATE readers start in one round,
 * more than the 256 entries of the submission queue, so a submission is
 * made to free it while completions wait. Older kernels refuse that one
 * (-EBUSY) as long as the ring holds their overflow, and the io_uring
 * test knobs (make check-old-kernels) refuse it as long as any completion
 * waits: without moving the completions off the ring first, the loop
 * spun for ever. Every reader must get its byte. */
enum { EARLY = 200, LATE = 300 };

struct queue_run {
    int s[EARLY + LATE][2];
    struct reader r[EARLY + LATE];
};

static int queue_main(void *arg, void **result)
{
    struct queue_run *q = arg;
    cc_future *f[EARLY + LATE];
    for (int i = 0; i < EARLY + LATE; i++)
        q->r[i] = (struct reader){.fd = q->s[i][0],
                                  .deadline = cc_deadline_in(60 * CC_SEC)};
    for (int i = 0; i < EARLY; i++)
        if (cc_spawn(read_once, &q->r[i], &f[i]) != 0)
            abort();
    rounds(3);
    cc_sleep(CC_MSEC); /* the early reads are the kernel's */
    for (int i = 0; i < EARLY; i++)
        if (write(q->s[i][1], "x", 1) != 1)
            abort();
    for (int i = EARLY; i < EARLY + LATE; i++)
        if (cc_spawn(read_once, &q->r[i], &f[i]) != 0)
            abort();
    rounds(3);
    cc_sleep(CC_MSEC); /* the late reads are the kernel's too */
    for (int i = EARLY; i < EARLY + LATE; i++)
        if (write(q->s[i][1], "x", 1) != 1)
            abort();
    for (int i = 0; i < EARLY + LATE; i++) {
        cc_future_wait(f[i], CC_FOREVER);
        cc_future_release(f[i]);
    }
    return 0;
}

static void test_requests_while_completions_wait(void **state)
{
    (void)state;
    struct queue_run *q = calloc(1, sizeof *q);
    assert_non_null(q);
    for (int i = 0; i < EARLY + LATE; i++)
        sockpair(q->s[i]);
    assert_int_equal(cc_loop_run(queue_main, q, NULL), 0);
    int correct = 0;
    for (int i = 0; i < EARLY + LATE; i++) {
        correct += q->r[i].got == 1 && q->r[i].buf[0] == 'x';
        close(q->s[i][0]);
        close(q->s[i][1]);
    }
    assert_int_equal(correct, EARLY + LATE);
    free(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CC_TEST(test_recv_cancelled_in_flight),
        CC_TEST(test_recv_deadline),
        CC_TEST(test_data_with_cancel_not_lost),
        CC_TEST(test_stream_with_deadlines),
        CC_TEST(test_peer_close_gives_0),
        CC_TEST(test_reader_and_writer_share_socket),
        CC_TEST(test_many_readers),
        CC_TEST(test_readers_overflow_completion_queue),
        CC_TEST(test_requests_while_completions_wait),
    };
    return CC_RUN_TESTS(tests);
}
