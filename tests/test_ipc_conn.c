/*
 * test_ipc_conn.c: message connections (include/concur/conn.h) between a
 * parent and a forked child: whole messages of every size (0 to 64 MiB),
 * one-way pipes, the end of the stream, deadlines that expire in the middle
 * of a message and resume, and an end made from an inherited fd; and in
 * tasks of an event loop: a receive or a send that waits parks its task
 * while the others run, and a cancellation ends the wait, resumably.
 */
#include "testutil.h"

#include <concur/conn.h>

#include "loop_helpers.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MIB ((size_t)1024 * 1024)
#define SEC_DEADLINE(s) cc_deadline_in((int64_t)(s) * CC_SEC)

static void fill(unsigned char *buf, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (unsigned char)(seed * 31 + i * 7 + (i >> 12));
}

/* The two ends, for a forked child: it uses [1] and closes its copy of
 * [0], or the parent's close would not be the end of the stream. */
static cc_conn *ends[2];

/* Echo every message back until the other end closes. */
static int child_echo(void *arg)
{
    (void)arg;
    cc_conn *c = ends[1];
    cc_conn_close(ends[0]);
    for (;;) {
        cc_bytes m = {0};
        int r = cc_conn_recv(c, &m, SEC_DEADLINE(60));
        if (r == -EPIPE)
            return 0;
        if (r < 0 || cc_conn_send(c, m.data, m.len, SEC_DEADLINE(60)) < 0)
            return 1;
        cc_bytes_free(&m);
    }
}

static void messages_of_every_size_round_trip(void **state)
{
    (void)state;
    cc_conn *a, *b;
    assert_int_equal(cc_pipe(&a, &b, true), 0);
    ends[0] = a;
    ends[1] = b;
    pid_t pid = cc_test_fork(child_echo, NULL);
    cc_conn_close(b);
    size_t sizes[] = {0, 1, 7, 8, 4096, 100000, MIB + 3, 64 * MIB};
    unsigned char *buf = malloc(64 * MIB);
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        fill(buf, sizes[i], (unsigned)i);
        assert_int_equal(cc_conn_send(a, buf, sizes[i], SEC_DEADLINE(60)), 0);
        cc_bytes m = {0};
        assert_int_equal(cc_conn_recv(a, &m, SEC_DEADLINE(60)), 0);
        assert_int_equal(m.len, sizes[i]);
        assert_memory_equal(m.data, buf, sizes[i]);
        cc_bytes_free(&m);
    }
    free(buf);
    cc_conn_close(a); /* the child sees the end, and exits 0 */
    assert_int_equal(cc_test_reap(pid), 0);
}

static void many_small_messages_keep_their_bounds(void **state)
{
    (void)state;
    cc_conn *a, *b;
    assert_int_equal(cc_pipe(&a, &b, false), 0); /* a reads, b writes */
    long n = cc_test_n(5000);
    for (long i = 0; i < n; i++) {
        char msg[32];
        int len = snprintf(msg, sizeof msg, "message %ld", i);
        assert_int_equal(cc_conn_send(b, msg, (size_t)len, CC_NOWAIT), 0);
        cc_bytes m = {0};
        assert_int_equal(cc_conn_recv(a, &m, CC_NOWAIT), 0);
        assert_string_equal(m.data, msg);
        cc_bytes_free(&m);
    }
    cc_bytes m = {0};
    assert_int_equal(cc_conn_send(a, "x", 1, CC_NOWAIT), -EPIPE); /* one-way */
    assert_int_equal(cc_conn_recv(b, &m, CC_NOWAIT), -EPIPE);
    cc_conn_close(b);
    assert_int_equal(cc_conn_recv(a, &m, CC_NOWAIT), -EPIPE); /* the end */
    cc_conn_close(a);
}

static void deadlines_never_early_and_errors(void **state)
{
    (void)state;
    cc_conn *a, *b;
    assert_int_equal(cc_pipe(&a, &b, true), 0);
    cc_bytes m = {0};
    cc_deadline d = cc_deadline_in(20 * CC_MSEC);
    assert_int_equal(cc_conn_recv(a, &m, d), -ETIMEDOUT);
    assert_true(cc_now() >= d);
    d = cc_deadline_in(20 * CC_MSEC);
    assert_int_equal(cc_conn_poll(a, d), -ETIMEDOUT);
    assert_true(cc_now() >= d);
    assert_int_equal(cc_conn_send(b, "hi", 2, CC_NOWAIT), 0);
    assert_int_equal(cc_conn_poll(a, CC_NOWAIT), 0);
    assert_int_equal(cc_conn_send(b, NULL, 3, CC_NOWAIT), -EINVAL);
    cc_conn_close(a);
    assert_int_equal(cc_conn_send(b, "hi", 2, CC_NOWAIT), -EPIPE);
    cc_conn_close(b);
    cc_conn *c;
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(cc_conn_from_fd(&c, p[0]), -ENOTSOCK); /* not taken */
    close(p[0]);
    close(p[1]);
    assert_int_equal(cc_conn_from_fd(&c, 1000), -EBADF);
    assert_int_equal(cc_conn_from_fd(NULL, 0), -EINVAL);
    assert_int_equal(cc_pipe(NULL, &c, true), -EINVAL);
    assert_int_equal(cc_pipe(&c, NULL, false), -EINVAL);
}

/* Read one message slowly: small deadlines, many resumptions. */
static int child_recv_in_slices(void *arg)
{
    cc_conn *c = arg;
    cc_bytes m = {0};
    int r, timeouts = 0;
    while ((r = cc_conn_recv(c, &m, cc_deadline_in(CC_MSEC))) == -ETIMEDOUT)
        timeouts++;
    if (r < 0)
        return 1;
    unsigned char *want = malloc(m.len);
    fill(want, m.len, 99);
    r = m.len == 16 * MIB && !memcmp(m.data, want, m.len) ? 0 : 2;
    free(want);
    cc_bytes_free(&m);
    return r;
}

static void a_deadline_mid_message_resumes(void **state)
{
    (void)state;
    cc_conn *a, *b;
    assert_int_equal(cc_pipe(&a, &b, true), 0);
    size_t size = 16 * MIB;
    unsigned char *buf = malloc(size);
    fill(buf, size, 99);
    /* nobody reads yet: the socket fills and the send stops part-way */
    assert_int_equal(cc_conn_send(a, buf, size, CC_NOWAIT), -ETIMEDOUT);
    assert_int_equal(cc_conn_send(a, buf, size - 1, CC_NOWAIT), -EINVAL);
    pid_t pid = cc_test_fork(child_recv_in_slices, b);
    int r;
    while ((r = cc_conn_send(a, buf, size, cc_deadline_in(CC_MSEC))) ==
           -ETIMEDOUT)
        ;
    assert_int_equal(r, 0);
    assert_int_equal(cc_test_reap(pid), 0);
    free(buf);
    cc_conn_close(a);
    cc_conn_close(b);
}

/* An end rebuilt from an inherited fd number (as a spawned worker does). */
static int child_from_fd(void *arg)
{
    cc_conn *c;
    if (cc_conn_from_fd(&c, dup(*(int *)arg)) != 0)
        return 1;
    int r = cc_conn_send(c, "from fd", 7, SEC_DEADLINE(60));
    cc_conn_close(c);
    return r == 0 ? 0 : 2;
}

static void an_end_from_an_inherited_fd(void **state)
{
    (void)state;
    cc_conn *a, *b;
    assert_int_equal(cc_pipe(&a, &b, true), 0);
    int fd = cc_conn_fd(b);
    pid_t pid = cc_test_fork(child_from_fd, &fd);
    cc_bytes m = {0};
    assert_int_equal(cc_conn_recv(a, &m, SEC_DEADLINE(60)), 0);
    assert_string_equal(m.data, "from fd");
    cc_bytes_free(&m);
    assert_int_equal(cc_test_reap(pid), 0);
    cc_conn_close(a);
    cc_conn_close(b);
}

/* ---- allocation failures ------------------------------------------------- */

static void allocation_failures_are_recoverable(void **state)
{
    (void)state;
    cc_conn *a = NULL, *b = NULL;
    cc_test_alloc_fail_after(1);
    assert_int_equal(cc_pipe(&a, &b, true), -ENOMEM); /* and no fd left */
    cc_test_alloc_fail_after(2);
    assert_int_equal(cc_pipe(&a, &b, true), 0);
    assert_int_equal(cc_conn_send(a, "whole", 5, CC_NOWAIT), 0);
    cc_bytes m = {0};
    cc_test_alloc_fail_after(0);
    assert_int_equal(cc_conn_recv(b, &m, CC_NOWAIT), -ENOMEM);
    cc_test_alloc_fail_after(100); /* memory is back: the message is still there */
    assert_int_equal(cc_conn_recv(b, &m, CC_NOWAIT), 0);
    assert_string_equal(m.data, "whole");
    cc_bytes_free(&m);
    cc_conn_close(a);
    cc_conn_close(b);
    cc_test_alloc_normal();
}

/* ---- in tasks of an event loop ------------------------------------------- */

/* Two tasks on one loop and one duplex pipe. */
struct duo {
    cc_conn *a, *b;  /* the ends: the receiver's, the sender's */
    size_t len;      /* the message's bytes */
    int recv_r;      /* the receiver's cc_conn_recv */
    int send_r;      /* the sender's cc_conn_send */
    cc_bytes got;    /* what the receiver got */
    long ran;        /* sender steps while the receiver was waiting */
    bool recv_done;  /* the receiver's recv returned */
};

static int duo_receiver(void *arg, void **result)
{
    (void)result;
    struct duo *d = arg;
    d->recv_r = cc_conn_recv(d->a, &d->got, SEC_DEADLINE(5));
    d->recv_done = true;
    return 0;
}

/* Runs (yielding) while the receiver waits, then sends. */
static int duo_sender(void *arg, void **result)
{
    (void)result;
    struct duo *d = arg;
    for (int i = 0; i < 5; i++) {
        cc_sleep(CC_MSEC);
        d->ran += !d->recv_done;
    }
    unsigned char *msg = malloc(d->len + 1);
    if (!msg)
        abort();
    fill(msg, d->len, 3);
    d->send_r = cc_conn_send(d->b, msg, d->len, SEC_DEADLINE(5));
    free(msg);
    return 0;
}

static int duo_main(void *arg, void **result)
{
    (void)result;
    cc_future *r, *s;
    if (cc_spawn(duo_receiver, arg, &r) || cc_spawn(duo_sender, arg, &s))
        abort();
    if (cc_future_wait(r, SEC_DEADLINE(30)) || cc_future_wait(s, SEC_DEADLINE(30)))
        abort();
    cc_future_release(r);
    cc_future_release(s);
    return 0;
}

static void check_duo(size_t len)
{
    struct duo d = {.len = len, .recv_r = 1, .send_r = 1};
    assert_int_equal(cc_pipe(&d.a, &d.b, true), 0);
    int64_t t0 = cc_now();
    assert_int_equal(cc_loop_run(duo_main, &d, NULL), 0);
    assert_int_equal(d.recv_r, 0);
    assert_int_equal(d.send_r, 0);
    assert_int_equal(d.ran, 5); /* a blocking recv would have starved it */
    assert_true(cc_now() - t0 < 5 * CC_SEC); /* no deadline ran out */
    unsigned char *want = malloc(len + 1);
    assert_non_null(want);
    fill(want, len, 3);
    assert_int_equal(d.got.len, len);
    assert_memory_equal(d.got.data, want, len);
    free(want);
    cc_bytes_free(&d.got);
    cc_conn_close(d.a);
    cc_conn_close(d.b);
}

/* The receiver parks on an empty socket; the sender on one loop goes on. */
static void a_recv_in_a_task_lets_the_loop_run(void **state)
{
    (void)state;
    check_duo(100);
}

/* 8 MiB: far more than the socket holds, so the sender parks too, and the
 * two take turns on one thread. */
static void a_big_message_between_two_tasks_of_one_loop(void **state)
{
    (void)state;
    check_duo(8 * MIB);
}

/* Cancelled in mid-message: -ECANCELED, and what arrived stays for the
 * next recv, which completes the message. */
struct cancel_run {
    cc_conn *a, *b;  /* the receiving end, the sending end */
    int first;       /* the cancelled recv's result */
    int second;      /* the next recv's result */
    cc_bytes got;    /* the message */
};

static int recv_task(void *arg, void **result)
{
    (void)result;
    struct cancel_run *c = arg;
    c->first = cc_conn_recv(c->a, &c->got, SEC_DEADLINE(5));
    return 0;
}

static int cancel_main(void *arg, void **result)
{
    (void)result;
    struct cancel_run *c = arg;
    uint64_t len = 10;
    cc_future *t;
    if (write(cc_conn_fd(c->b), &len, sizeof len) != sizeof len ||
        write(cc_conn_fd(c->b), "01234", 5) != 5 || cc_spawn(recv_task, c, &t))
        abort();
    cc_sleep(5 * CC_MSEC); /* it has read the header and half, and parks */
    cc_task_cancel(t);
    if (cc_future_wait(t, SEC_DEADLINE(10)))
        abort();
    cc_future_release(t);
    if (write(cc_conn_fd(c->b), "56789", 5) != 5)
        abort();
    c->second = cc_conn_recv(c->a, &c->got, SEC_DEADLINE(5));
    return 0;
}

static void a_cancelled_recv_keeps_its_progress(void **state)
{
    (void)state;
    struct cancel_run c = {.first = 1, .second = 1};
    assert_int_equal(cc_pipe(&c.a, &c.b, true), 0);
    assert_int_equal(cc_loop_run(cancel_main, &c, NULL), 0);
    assert_int_equal(c.first, -ECANCELED);
    assert_int_equal(c.second, 0);
    assert_int_equal(c.got.len, 10);
    assert_string_equal(c.got.data, "0123456789");
    cc_bytes_free(&c.got);
    cc_conn_close(c.a);
    cc_conn_close(c.b);
}

int main(void)
{
    signal(SIGPIPE, SIG_DFL); /* a SIGPIPE would kill the test: none comes */
    const struct CMUnitTest tests[] = {
        CC_TEST(messages_of_every_size_round_trip),
        CC_TEST(many_small_messages_keep_their_bounds),
        CC_TEST(deadlines_never_early_and_errors),
        CC_TEST(a_deadline_mid_message_resumes),
        CC_TEST(an_end_from_an_inherited_fd),
        CC_TEST(allocation_failures_are_recoverable),
        CC_TEST(a_recv_in_a_task_lets_the_loop_run),
        CC_TEST(a_big_message_between_two_tasks_of_one_loop),
        CC_TEST(a_cancelled_recv_keeps_its_progress),
    };
    return CC_RUN_TESTS(tests);
}
