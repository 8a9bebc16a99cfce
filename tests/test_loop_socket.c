/*
 * test_loop_socket.c: the socket helpers beyond recv and send
 * (include/concur/loop.h): cc_sendall, which sends every byte whatever the
 * socket's buffer takes at a time, and cc_recvfrom / cc_sendto on datagram
 * sockets; from tasks and from threads, with deadlines, cancellation,
 * cc_close and bad input.
 */
#include "testutil.h"

#include "loop_helpers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Far more than a Unix socket's buffer: one send(2) cannot take it all. */
#define BIG (8u << 20)

static unsigned char pattern(size_t i)
{
    return (unsigned char)(i * 7 + i / 4093);
}

static unsigned char *big_buffer(void)
{
    unsigned char *b = malloc(BIG);
    if (!b)
        abort();
    for (size_t i = 0; i < BIG; i++)
        b[i] = pattern(i);
    return b;
}

static void stream_pair(int s[2])
{
    assert_int_equal(
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, s),
        0);
}

/* ---- cc_sendall ---------------------------------------------------------- */

struct sendall_run {
    int s[2];
    const unsigned char *out;
    int sent;        /* cc_sendall's result */
    ssize_t first;   /* one cc_send of the whole buffer, nobody reading */
    size_t got;      /* bytes the reader received */
    size_t mismatch; /* received bytes that differ from the pattern */
};

/* Read BIG bytes in small pieces, yielding now and then, and check them. */
static int reader(void *arg, void **result)
{
    struct sendall_run *r = arg;
    unsigned char buf[1500];
    while (r->got < BIG) {
        ssize_t n = cc_recv(r->s[1], buf, sizeof buf, 0,
                            cc_deadline_in(60 * CC_SEC));
        if (n <= 0)
            return n < 0 ? (int)n : -EPIPE;
        for (ssize_t i = 0; i < n; i++)
            r->mismatch += buf[i] != pattern(r->got + (size_t)i);
        r->got += (size_t)n;
        if (r->got % 7 == 0)
            cc_yield();
    }
    return 0;
}

static int sendall_task(void *arg, void **result)
{
    struct sendall_run *r = arg;
    r->sent = cc_sendall(r->s[0], r->out, BIG, 0, cc_deadline_in(60 * CC_SEC));
    return 0;
}

/* The first cc_send, alone, takes only part of the buffer; then the sender
 * and the reader run as tasks (both: the sender parks on a full buffer). */
static int sendall_tasks_main(void *arg, void **result)
{
    struct sendall_run *r = arg;
    r->first = cc_send(r->s[0], r->out, BIG, 0, CC_FOREVER);
    if (r->first <= 0)
        return -EIO;
    cc_future *f;
    if (cc_spawn(reader, r, &f) != 0)
        return -ENOMEM;
    r->out += r->first;
    r->sent = cc_sendall(r->s[0], r->out, BIG - (size_t)r->first, 0,
                         cc_deadline_in(60 * CC_SEC));
    int rr = cc_future_result(f, CC_FOREVER, NULL);
    cc_future_release(f);
    return rr;
}

/* Every byte came, in order; then free the run's socket pair and buffer. */
static void check_all_sent(struct sendall_run *r, unsigned char *out)
{
    assert_int_equal(r->sent, 0);
    assert_int_equal(r->got, BIG);
    assert_int_equal(r->mismatch, 0);
    close(r->s[0]);
    close(r->s[1]);
    free(out);
}

static void test_sendall_in_tasks(void **state)
{
    (void)state;
    unsigned char *out = big_buffer();
    struct sendall_run r = {.out = out};
    stream_pair(r.s);
    assert_int_equal(cc_loop_run(sendall_tasks_main, &r, NULL), 0);
    assert_true(r.first > 0 && (size_t)r.first < BIG);
    check_all_sent(&r, out);
}

static void *sendall_thread(void *arg)
{
    sendall_task(arg, NULL);
    return NULL;
}

static int reader_main(void *arg, void **result) { return reader(arg, result); }

/* A thread sends (blocking on the full buffer), a task reads. */
static void test_sendall_from_thread(void **state)
{
    (void)state;
    unsigned char *out = big_buffer();
    struct sendall_run r = {.out = out};
    stream_pair(r.s);
    cc_thread *t = start(sendall_thread, &r);
    assert_int_equal(cc_loop_run(reader_main, &r, NULL), 0);
    join(t);
    check_all_sent(&r, out);
}

struct sendall_errors {
    int timed_out;   /* nobody reads: the deadline ends the call */
    int64_t waited;      /* ns */
    int peer_closed; /* the peer is gone */
    int bad_fd;      /* fd -1 */
    int empty;       /* n == 0 on a good socket */
    int empty_bad;   /* n == 0 on fd -1: the fd is still checked */
};

static void sendall_error_calls(struct sendall_errors *e, const void *out)
{
    int s[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, s))
        abort();
    int64_t t0 = cc_now();
    e->timed_out = cc_sendall(s[0], out, BIG, 0, cc_deadline_in(50 * CC_MSEC));
    e->waited = cc_now() - t0;
    e->empty = cc_sendall(s[0], out, 0, 0, CC_FOREVER);
    close(s[1]);
    e->peer_closed = cc_sendall(s[0], out, BIG, 0, CC_FOREVER);
    close(s[0]);
    e->bad_fd = cc_sendall(-1, out, 1, 0, CC_FOREVER);
    e->empty_bad = cc_sendall(-1, out, 0, 0, CC_FOREVER);
}

struct errors_arg {
    struct sendall_errors *e;
    const void *out;
};

static int sendall_errors_task(void *arg, void **result)
{
    struct errors_arg *a = arg;
    sendall_error_calls(a->e, a->out);
    return 0;
}

static void *sendall_errors_thread(void *arg)
{
    struct errors_arg *a = arg;
    sendall_error_calls(a->e, a->out);
    return NULL;
}

static void check_sendall_errors(const struct sendall_errors *e)
{
    assert_int_equal(e->timed_out, -ETIMEDOUT);
    assert_true(e->waited >= 50 * CC_MSEC); /* never early */
    assert_int_equal(e->empty, 0);
    assert_int_equal(e->peer_closed, -EPIPE); /* and no SIGPIPE */
    assert_int_equal(e->bad_fd, -EBADF);
    assert_int_equal(e->empty_bad, -EBADF);
}

static void test_sendall_errors(void **state)
{
    (void)state;
    unsigned char *out = big_buffer();
    struct sendall_errors in_task = {0}, in_thread = {0};
    struct errors_arg a = {&in_task, out};
    assert_int_equal(cc_loop_run(sendall_errors_task, &a, NULL), 0);
    check_sendall_errors(&in_task);
    a.e = &in_thread;
    join(start(sendall_errors_thread, &a));
    check_sendall_errors(&in_thread);
    free(out);
}

/* ---- cc_recvfrom / cc_sendto --------------------------------------------- */

#define CLIENTS 8

struct udp_run {
    int server;                 /* the server's UDP socket */
    struct sockaddr_in addr;    /* its address */
    int answered;               /* datagrams the server echoed */
    int ok;                     /* client tasks whose echo matched */
    int wrong;                  /* client tasks whose echo did not */
    bool thread_ok;             /* the client thread's echo matched */
    int server_result;          /* its last cc_recvfrom: -ECANCELED */
};

static int udp_socket(struct sockaddr_in *a)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        abort();
    struct sockaddr_in any = {.sin_family = AF_INET,
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof any;
    if (bind(fd, (struct sockaddr *)&any, len) ||
        getsockname(fd, (struct sockaddr *)&any, &len))
        abort();
    if (a)
        *a = any;
    return fd;
}

/* Echo each datagram, upper-cased, to its sender, until cancelled. */
static int udp_server(void *arg, void **result)
{
    struct udp_run *u = arg;
    for (;;) {
        char buf[64];
        struct sockaddr_in from;
        socklen_t len = sizeof from;
        ssize_t n = cc_recvfrom(u->server, buf, sizeof buf, 0,
                                (struct sockaddr *)&from, &len, CC_FOREVER);
        if (n < 0) {
            u->server_result = (int)n;
            return 0;
        }
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] >= 'a' && buf[i] <= 'z')
                buf[i] = (char)(buf[i] - 'a' + 'A');
        if (cc_sendto(u->server, buf, (size_t)n, 0, (struct sockaddr *)&from,
                      len, CC_FOREVER) != n)
            abort();
        u->answered++;
    }
}

/* Send "client N"; whether the server's address sent it back upper-cased. */
static bool udp_exchange(const struct udp_run *u, int i)
{
    int fd = udp_socket(NULL);
    char msg[32], want[32], got[64];
    int len = snprintf(msg, sizeof msg, "client %d", i);
    snprintf(want, sizeof want, "CLIENT %d", i);
    cc_deadline d = cc_deadline_in(60 * CC_SEC);
    struct sockaddr_in from = {0};
    socklen_t flen = sizeof from;
    ssize_t n = -1;
    if (cc_sendto(fd, msg, (size_t)len, 0, (struct sockaddr *)&u->addr,
                  sizeof u->addr, d) == len)
        n = cc_recvfrom(fd, got, sizeof got, 0, (struct sockaddr *)&from,
                        &flen, d);
    bool same = n == len && memcmp(got, want, (size_t)len) == 0 &&
                flen == sizeof from && from.sin_port == u->addr.sin_port &&
                from.sin_addr.s_addr == u->addr.sin_addr.s_addr;
    close(fd);
    return same;
}

struct udp_client {
    struct udp_run *u;
    int i;
};

static int udp_client(void *arg, void **result)
{
    struct udp_client *c = arg;
    if (udp_exchange(c->u, c->i)) /* the loop's thread only */
        c->u->ok++;
    else
        c->u->wrong++;
    return 0;
}

static void *udp_thread_client(void *arg)
{
    return udp_exchange(arg, 99) ? arg : NULL; /* read after the join */
}

static int udp_main(void *arg, void **result)
{
    struct udp_run *u = arg;
    cc_future *server, *clients[CLIENTS];
    struct udp_client args[CLIENTS];
    if (cc_spawn(udp_server, u, &server) != 0)
        return -ENOMEM;
    for (int i = 0; i < CLIENTS; i++) {
        args[i] = (struct udp_client){u, i};
        if (cc_spawn(udp_client, &args[i], &clients[i]) != 0)
            return -ENOMEM;
    }
    cc_thread *t = start(udp_thread_client, u); /* a thread's calls block */
    cc_futures_wait(clients, CLIENTS, CC_ALL_COMPLETED, CC_FOREVER);
    u->thread_ok = join(t) != NULL;
    for (int i = 0; i < CLIENTS; i++)
        cc_future_release(clients[i]);
    cc_task_cancel(server); /* parked in cc_recvfrom */
    cc_future_wait(server, CC_FOREVER);
    cc_future_release(server);
    return 0;
}

static void test_udp_echo(void **state)
{
    (void)state;
    struct udp_run u = {0};
    u.server = udp_socket(&u.addr);
    assert_int_equal(cc_loop_run(udp_main, &u, NULL), 0);
    assert_int_equal(u.wrong, 0);
    assert_int_equal(u.ok, CLIENTS);
    assert_true(u.thread_ok);
    assert_int_equal(u.answered, CLIENTS + 1);
    assert_int_equal(u.server_result, -ECANCELED);
    close(u.server);
}

struct udp_waits {
    int sock;           /* a UDP socket nobody sends to */
    int timed_out;      /* cc_recvfrom with a 20 ms deadline */
    int64_t waited;     /* ns */
    int closed;         /* cc_recvfrom while another task cc_closes it */
    int bad_fd;         /* cc_recvfrom(-1) */
    int send_bad_fd;    /* cc_sendto(-1) */
};

static int closer(void *arg, void **result)
{
    struct udp_waits *w = arg;
    cc_sleep(10 * CC_MSEC);
    return cc_close(w->sock);
}

static int udp_waits_main(void *arg, void **result)
{
    struct udp_waits *w = arg;
    char c;
    int64_t t0 = cc_now();
    w->timed_out = (int)cc_recvfrom(w->sock, &c, 1, 0, NULL, NULL,
                                    cc_deadline_in(20 * CC_MSEC));
    w->waited = cc_now() - t0;
    cc_future *f;
    if (cc_spawn(closer, w, &f) != 0)
        return -ENOMEM;
    w->closed = (int)cc_recvfrom(w->sock, &c, 1, 0, NULL, NULL,
                                 cc_deadline_in(60 * CC_SEC));
    int r = cc_future_result(f, CC_FOREVER, NULL);
    cc_future_release(f);
    w->bad_fd = (int)cc_recvfrom(-1, &c, 1, 0, NULL, NULL, CC_FOREVER);
    w->send_bad_fd = (int)cc_sendto(-1, &c, 1, 0, NULL, 0, CC_FOREVER);
    return r;
}

static void test_recvfrom_waits(void **state)
{
    (void)state;
    struct udp_waits w = {.sock = udp_socket(NULL)};
    assert_int_equal(cc_loop_run(udp_waits_main, &w, NULL), 0);
    assert_int_equal(w.timed_out, -ETIMEDOUT);
    assert_true(w.waited >= 20 * CC_MSEC); /* never early */
    assert_int_equal(w.closed, -EBADF);
    assert_int_equal(w.bad_fd, -EBADF);
    assert_int_equal(w.send_bad_fd, -EBADF);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CC_TEST(test_sendall_in_tasks),
        CC_TEST(test_sendall_from_thread),
        CC_TEST(test_sendall_errors),
        CC_TEST(test_udp_echo),
        CC_TEST(test_recvfrom_waits),
    };
    return CC_RUN_TESTS(tests);
}
