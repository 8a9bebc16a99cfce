/*
 * test_loop_poller.c: the poller backends (src/linux/poller.c, epoll.c,
 * io_uring.c) as the loop uses them: which one runs (CONCUR_NO_IO_URING),
 * more fds at once than the io_uring submission queue holds, a fd closed
 * and its number reused between waits, a wait re-armed while a poll is in
 * flight, wakeups from other threads on a ring without IORING_FEAT_EXT_ARG
 * (as before Linux 5.11), reads on a ring without RECV and READ requests
 * (as Linux 5.5). `make check` runs every test program with
 * both backends.
 */
#include "testutil.h"

#include "loop_helpers.h"
#include "loop_internal.h"
#include "poller.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- which backend ----------------------------------------------------- */

static int note_backend(void *arg, void **result)
{
    *(const char **)arg = cc__poller_backend(cc__loop_poller());
    return 0;
}

static void test_backend_chosen(void **state)
{
    const char *name = NULL;
    assert_int_equal(cc_loop_run(note_backend, &name, NULL), 0);
    assert_non_null(name);
    const char *no = getenv("CONCUR_NO_IO_URING");
    if (no && strcmp(no, "1") == 0)
        assert_string_equal(name, "epoll");
    else
        assert_true(strcmp(name, "epoll") == 0 ||
                    strcmp(name, "io_uring") == 0);
    fprintf(stderr, "poller backend: %s\n", name);
}

/* ---- many fds at once -------------------------------------------------- */

enum { NPIPES = 300 }; /* more than the ring's 256 entries */

struct many {
    int p[NPIPES][2]; /* non-blocking pipes */
    int got[NPIPES];  /* what each reader task's cc_wait_fd returned */
    int sum;          /* bytes the reader tasks read */
};

struct reader {
    struct many *m; /* the shared state */
    int i;          /* which pipe */
};

static int read_one(void *arg, void **result)
{
    struct reader *r = arg;
    r->m->got[r->i] = cc_wait_fd(r->m->p[r->i][0], POLLIN,
                                 cc_deadline_in(30 * CC_SEC));
    char c;
    if (read(r->m->p[r->i][0], &c, 1) == 1)
        r->m->sum += c;
    return 0;
}

static int many_main(void *arg, void **result)
{
    struct many *m = arg;
    static struct reader rd[NPIPES];
    for (int i = 0; i < NPIPES; i++) {
        rd[i] = (struct reader){m, i};
        if (cc_spawn(read_one, &rd[i], NULL) != 0)
            abort();
    }
    cc_yield(); /* every reader is parked on its pipe now */
    for (int i = 0; i < NPIPES; i++)
        if (write(m->p[i][1], "\1", 1) != 1)
            abort();
    return 0;
}

static void test_many_fds(void **state)
{
    struct many *m = calloc(1, sizeof *m);
    for (int i = 0; i < NPIPES; i++)
        assert_int_equal(pipe2(m->p[i], O_NONBLOCK | O_CLOEXEC), 0);
    assert_int_equal(cc_loop_run(many_main, m, NULL), 0);
    for (int i = 0; i < NPIPES; i++) {
        assert_int_equal(m->got[i], POLLIN);
        close(m->p[i][0]);
        close(m->p[i][1]);
    }
    assert_int_equal(m->sum, NPIPES);
    free(m);
}

/* ---- fd numbers reused, polls re-armed --------------------------------- */

struct reuse {
    int first;   /* cc_wait_fd on the first pipe (readable) */
    int timeout; /* on a fresh pipe with the same number (empty) */
    int second;  /* on it once written */
    int dup_r;   /* a reader and a writer task on one socket pair: */
    int dup_w;   /* each one's result */
};

struct writer {
    int fd;   /* the socket */
    int *out; /* what cc_wait_fd returned */
};

static int wait_write(void *arg, void **result)
{
    struct writer *w = arg;
    *w->out = cc_wait_fd(w->fd, POLLOUT, cc_deadline_in(10 * CC_SEC));
    return 0;
}

static int reuse_main(void *arg, void **result)
{
    struct reuse *r = arg;
    int p[2];
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) || write(p[1], "x", 1) != 1)
        abort();
    r->first = cc_wait_fd(p[0], POLLIN, cc_deadline_in(10 * CC_SEC));
    close(p[0]);
    close(p[1]);
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC)) /* same numbers, new pipe */
        abort();
    r->timeout = cc_wait_fd(p[0], POLLIN, cc_deadline_in(20 * CC_MSEC));
    if (write(p[1], "y", 1) != 1)
        abort();
    r->second = cc_wait_fd(p[0], POLLIN, cc_deadline_in(10 * CC_SEC));
    close(p[0]);
    close(p[1]);
    /* A reader parks first; a writer joins: the poll is re-armed for
     * POLLIN|POLLOUT while the reader's is in flight. */
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv))
        abort();
    cc_future *w;
    struct writer wr = {sv[0], &r->dup_w};
    if (cc_spawn(wait_write, &wr, &w) != 0)
        abort();
    r->dup_r = cc_wait_fd(sv[0], POLLIN, cc_deadline_in(50 * CC_MSEC));
    if (cc_future_result(w, CC_FOREVER, NULL) != 0)
        abort();
    cc_future_release(w);
    close(sv[0]);
    close(sv[1]);
    return 0;
}

static void test_fd_reuse_and_rearm(void **state)
{
    struct reuse r = {0};
    assert_int_equal(cc_loop_run(reuse_main, &r, NULL), 0);
    assert_int_equal(r.first, POLLIN);
    assert_int_equal(r.timeout, -ETIMEDOUT);
    assert_int_equal(r.second, POLLIN);
    assert_int_equal(r.dup_r, -ETIMEDOUT); /* nothing to read, ever */
    assert_int_equal(r.dup_w, POLLOUT);
}

/* ---- wakeups from other threads, as on Linux before 5.11 ----------------- */

/* Without IORING_FEAT_EXT_ARG (CONCUR_IO_URING_NO_EXT_ARG=1 emulates it),
 * liburing times each wait with a TIMEOUT request and silently takes the
 * completions whose user_data is LIBURING_UDATA_TIMEOUT: the notify
 * eventfd's poll must not use that value, or no wakeup from another
 * thread ever reaches the loop (it wakes only at its next timer). */
static void *nap_thread(void *arg)
{
    (void)arg;
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
    return NULL;
}

struct remote_run {
    int joined;     /* joins that returned 0 */
    int64_t slowest; /* the longest join, ns */
};

static int remote_main(void *arg, void **result)
{
    struct remote_run *r = arg;
    for (int i = 0; i < 3; i++) {
        cc_thread *t = start(nap_thread, NULL);
        int64_t t0 = cc_now();
        void *res;
        r->joined += cc_thread_join(t, cc_deadline_in(3 * CC_SEC), &res) == 0;
        int64_t took = cc_now() - t0;
        r->slowest = took > r->slowest ? took : r->slowest;
    }
    return 0;
}

static void test_remote_wakeup_without_ext_arg(void **state)
{
    (void)state;
    setenv("CONCUR_IO_URING_NO_EXT_ARG", "1", 1);
    struct remote_run r = {0};
    int rc = cc_loop_run(remote_main, &r, NULL);
    unsetenv("CONCUR_IO_URING_NO_EXT_ARG");
    assert_int_equal(rc, 0);
    assert_int_equal(r.joined, 3);
    /* The thread ends after 10 ms; a lost wakeup waits out the 3 s. */
    assert_true(r.slowest < 2 * CC_SEC);
}

/* ---- a ring without RECV and READ requests, as Linux 5.5 ---------------- */

/* Linux 5.5 has io_uring but no RECV or READ request: a task's read that
 * would wait must wait for readiness and then read, as on epoll
 * (CONCUR_IO_URING_NO_IO=1 emulates that kernel). */
struct no_io {
    int sv[2], pp[2];    /* a socket pair and a pipe, non-blocking */
    char sbuf[8], pbuf[8];
    ssize_t got_recv;    /* what the task's cc_recv returned */
    ssize_t got_read;    /* and its cc_read */
};

static int write_later(void *arg, void **result)
{
    struct no_io *n = arg;
    cc_sleep(20 * CC_MSEC);
    if (write(n->sv[1], "socket", 6) != 6 || write(n->pp[1], "pipe", 4) != 4)
        abort();
    return 0;
}

static int no_io_main(void *arg, void **result)
{
    struct no_io *n = arg;
    if (cc_spawn(write_later, n, NULL) != 0)
        abort();
    cc_deadline d = cc_deadline_in(10 * CC_SEC);
    n->got_recv = cc_recv(n->sv[0], n->sbuf, sizeof n->sbuf, 0, d);
    n->got_read = cc_read(n->pp[0], n->pbuf, sizeof n->pbuf, d);
    return 0;
}

static void test_ring_without_io_requests(void **state)
{
    (void)state;
    struct no_io n = {.got_recv = -1, .got_read = -1};
    assert_int_equal(
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, n.sv), 0);
    assert_int_equal(pipe2(n.pp, O_NONBLOCK), 0);
    setenv("CONCUR_IO_URING_NO_IO", "1", 1);
    cc__poller *p;
    assert_int_equal(cc__poller_new(&p), 0);
    char b;
    uint64_t id;
    int refused = cc__poller_io(p, CC__IO_RECV, n.sv[0], &b, 1, &b, &id);
    cc__poller_free(p);
    int rc = cc_loop_run(no_io_main, &n, NULL);
    unsetenv("CONCUR_IO_URING_NO_IO");
    assert_int_equal(refused, -ENOSYS);
    assert_int_equal(rc, 0);
    assert_int_equal(n.got_recv, 6);
    assert_memory_equal(n.sbuf, "socket", 6);
    assert_int_equal(n.got_read, 4);
    assert_memory_equal(n.pbuf, "pipe", 4);
    for (int i = 0; i < 2; i++) {
        close(n.sv[i]);
        close(n.pp[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CC_TEST(test_backend_chosen),
        CC_TEST(test_many_fds),
        CC_TEST(test_fd_reuse_and_rearm),
        CC_TEST(test_remote_wakeup_without_ext_arg),
        CC_TEST(test_ring_without_io_requests),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
