/*
 * io_uring.c: the io_uring poller (poller.h, through poller_impl.h), built
 * only when liburing is found.
 *
 * DESIGN. Readiness only: each armed fd has one IORING_OP_POLL_ADD in
 * flight (one-shot, as epoll's EPOLLONESHOT), whose user_data is the fd and
 * a generation number of the fd's slot in our table. The slot remembers the
 * data, whether the fd is registered and whether its poll is still armed.
 * Re-arming an armed fd or deleting it removes the poll (POLL_REMOVE) and
 * bumps the generation, so a completion of an old poll is recognised as
 * stale and dropped. SQEs are not submitted one by one: they go to the
 * kernel with the next wait (io_uring_submit_and_wait_timeout), one system
 * call for a whole round of re-arms; a poll that must not sleep only
 * submits and flushes (io_uring_submit_and_get_events); a submission the
 * kernel refuses while its completion queue overflows (-EBUSY, older
 * kernels) first moves the ring's completions aside, to be reported by
 * the next wait (hold_completions). Cross-thread
 * wakeups: an eventfd with its own poll, re-armed after each. Timers: the
 * wait's timeout (ns). A poll that fails (the fd was closed) reports
 * POLLERR|POLLHUP|POLLNVAL. A file that epoll refuses (no poll method:
 * a regular file, /dev/null) is refused here too (-EPERM), as a probe
 * epoll instance tells, where io_uring would report it always ready.
 * Unlike epoll, a pending poll holds a reference to its file: closing an fd
 * while a task waits on it does not release the file until the wait ends.
 * I/O requests (cc__uring_io: a RECV or READ that the kernel completes
 * itself) live in a second table, ioslots, with a free list; their
 * user_data is the slot's index with IO_TAG set (an fd never has bit 31)
 * and the slot's generation, bumped when the completion is taken, so a
 * cancel aimed at a request already reported finds nothing. Each request
 * is reported exactly once (CC__POLL_IO, with its result). A kernel
 * without RECV and READ requests (5.5; the ring's probe tells) refuses
 * them (-ENOSYS), and tasks wait for readiness as on epoll.
 */
#ifdef CONCUR_HAVE_IO_URING
#include "poller_impl.h"
#include "../atomics.h"

#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

enum { RING_ENTRIES = 256, CQ_ENTRIES = 4096 };

/* user_data of the eventfd's poll, and of POLL_REMOVE requests (ignored).
 * Not UINT64_MAX: that is LIBURING_UDATA_TIMEOUT, whose completions
 * liburing takes itself before 5.11 (the notify poll's would be lost). */
#define UD_NOTIFY (UINT64_MAX - 2)
#define UD_IGNORE (UINT64_MAX - 1)
_Static_assert(UD_NOTIFY != LIBURING_UDATA_TIMEOUT &&
               UD_IGNORE != LIBURING_UDATA_TIMEOUT, "liburing's own");

/* In the low word of an I/O request's user_data (an fd's is below 2^31). */
#define IO_TAG 0x80000000u

/* Bytes at most per request, as the kernel's own limit (MAX_RW_COUNT). */
#define IO_MAX 0x7ffff000u

/* One I/O request's slot. */
struct ioslot {
    void *data;   /* reported with its completion */
    uint32_t gen; /* bumped when its completion is taken: old ids stale */
    int32_t next; /* the next free slot (-1: none), or IO_BUSY */
};

enum { IO_BUSY = -2 };

/* One fd's registration. */
struct uslot {
    void *data;      /* reported with its events */
    uint32_t gen;    /* bumped at each arm/removal: old completions stale */
    bool registered; /* add was called, del not yet */
    bool armed;      /* a poll is in flight for it */
};

struct cc__uring {
    struct io_uring ring; /* the ring (its fd is close-on-exec) */
    int evfd;             /* the eventfd of cc__uring_notify */
    int probe;            /* an epoll instance: may an fd be polled?
                             (-1 until a file needs asking) */
    struct uslot *slots;  /* indexed by fd */
    int nslots;           /* entries in slots */
    struct ioslot *io;    /* I/O requests, indexed by user_data's low bits */
    int nio;              /* entries in io */
    int io_free;          /* the first free entry of io, or -1 */
    bool poll_first;      /* the kernel takes IORING_RECVSEND_POLL_FIRST */
    bool has_io;          /* and IORING_OP_RECV and READ (Linux 5.6) */
    bool busy_if_cqes;    /* test knob: refuse submissions as old kernels
                             may (submit_now) */
    struct held *held;    /* completions taken off the ring (below) */
    uint32_t nheld;       /* how many */
    uint32_t reported;    /* of those, the ones a wait reported already */
    uint32_t held_cap;    /* room in held */
};

/* A completion moved off the ring before the loop could report it. */
struct held {
    uint64_t ud;  /* its user_data */
    int32_t res;  /* its result */
};

/* Move every completion off the ring, to be reported by the next wait.
 * Older kernels (5.10, Debian 11's, among them) refuse submissions
 * (-EBUSY) while completions that found the ring full wait in their
 * overflow list, and only the application can make room: without this, a
 * submission made to free the full queue of requests would be refused
 * for ever. */
static void hold_completions(cc__uring *p)
{
    struct io_uring_cqe *cqe;
    while (io_uring_peek_cqe(&p->ring, &cqe) == 0) {
        if (p->nheld == p->held_cap) {
            uint32_t n = p->held_cap ? 2 * p->held_cap : 256;
            struct held *h = cc__realloc(p->held, p->held_cap * sizeof *h,
                                         n * sizeof *h);
            if (!h)
                cc__panic("io_uring: no memory for completions", -ENOMEM);
            p->held = h;
            p->held_cap = n;
        }
        p->held[p->nheld++] = (struct held){cqe->user_data, cqe->res};
        io_uring_cqe_seen(&p->ring, cqe);
    }
}

/* Hand the queued requests to the kernel now (-EBUSY: after making room
 * for its completions). With `finish`, also have the kernel end the
 * requests that these cancel or remove: a DEFER_TASKRUN ring (or a
 * COOP_TASKRUN one) ends them only when entered for events, and until
 * then they hold their files open. */
static void submit_now(cc__uring *p, bool finish)
{
    for (;;) {
        int r = -EBUSY;
        if (!p->busy_if_cqes || !io_uring_cq_ready(&p->ring))
            r = finish ? io_uring_submit_and_get_events(&p->ring)
                       : io_uring_submit(&p->ring);
        if (r >= 0 || r == -EAGAIN) /* -EAGAIN: they go with the wait */
            return;
        if (r == -EBUSY)
            hold_completions(p);
        else if (r != -EINTR)
            cc__panic("io_uring_submit", r);
    }
}

static struct io_uring_sqe *get_sqe(cc__uring *p)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&p->ring);
    while (!sqe) { /* the queue is full: hand it to the kernel now */
        submit_now(p, false);
        sqe = io_uring_get_sqe(&p->ring);
    }
    return sqe;
}

static void arm_notify(cc__uring *p)
{
    struct io_uring_sqe *sqe = get_sqe(p);
    io_uring_prep_poll_add(sqe, p->evfd, POLLIN);
    io_uring_sqe_set_data64(sqe, UD_NOTIFY);
}

static bool env_is_1(const char *name)
{
    const char *v = getenv(name);
    return v && v[0] == '1' && !v[1];
}

/* A completion queue larger than the default 2 x RING_ENTRIES: every armed
 * fd may complete in one round, and a full queue makes submissions fail
 * with EBUSY on older kernels. */
static int ring_init_flags(struct io_uring *ring, unsigned flags)
{
    struct io_uring_params p = {.flags = flags | IORING_SETUP_CQSIZE,
                                .cq_entries = CQ_ENTRIES};
    return io_uring_queue_init_params(RING_ENTRIES, ring, &p);
}

static int ring_init(struct io_uring *ring, bool old_kernel)
{
    if (old_kernel) /* as before Linux 5.11: none of the flags below */
        return ring_init_flags(ring, 0);
#ifdef IORING_SETUP_DEFER_TASKRUN
    /* Completions are worked on only when the loop waits (Linux 6.1):
     * in one batch, not at the end of whatever system call the loop
     * thread makes (a task's send) as COOP_TASKRUN does. */
    if (ring_init_flags(ring, IORING_SETUP_SINGLE_ISSUER |
                        IORING_SETUP_DEFER_TASKRUN) == 0)
        return 0;
#endif
#if defined(IORING_SETUP_SINGLE_ISSUER) && defined(IORING_SETUP_COOP_TASKRUN)
    /* Only the loop thread submits; no IPI for completions (Linux 6.0). */
    if (ring_init_flags(ring, IORING_SETUP_SINGLE_ISSUER |
                        IORING_SETUP_COOP_TASKRUN) == 0)
        return 0;
#endif
    return ring_init_flags(ring, 0);
}

/* Whether the kernel is Linux 5.19 or later (IORING_RECVSEND_POLL_FIRST;
 * an older one fails such a recv with EINVAL). */
static bool kernel_has_poll_first(void)
{
    struct utsname u;
    int major = 0, minor = 0;
    if (uname(&u) < 0 || sscanf(u.release, "%d.%d", &major, &minor) != 2)
        return false;
    return major > 5 || (major == 5 && minor >= 19);
}

/* Whether the ring takes the RECV and READ requests of cc__uring_io. Linux
 * 5.5 has io_uring but neither (a request would fail with EINVAL), nor the
 * probe, which came with them in 5.6. */
static bool kernel_has_io(struct io_uring *ring)
{
    union {
        struct io_uring_probe probe;
        char bytes[sizeof(struct io_uring_probe) +
                   256 * sizeof(struct io_uring_probe_op)];
    } u;
    memset(&u, 0, sizeof u);
    if (io_uring_register_probe(ring, &u.probe, 256) < 0)
        return false;
    return io_uring_opcode_supported(&u.probe, IORING_OP_RECV) &&
           io_uring_opcode_supported(&u.probe, IORING_OP_READ);
}

/* What the kernel offers, found with the process's first ring (a uname
 * and a probe; the kernel does not change): CAPS_KNOWN | CAP_*, or 0 not
 * yet. Threads that race to find it store the same value. */
enum { CAPS_KNOWN = 1, CAP_POLL_FIRST = 2, CAP_IO = 4 };
static cc__atomic_u32 kernel_caps;

static uint32_t caps_of(struct io_uring *ring)
{
    uint32_t caps = cc__load_relaxed(&kernel_caps);
    if (!caps) {
        caps = CAPS_KNOWN | (kernel_has_poll_first() ? CAP_POLL_FIRST : 0) |
               (kernel_has_io(ring) ? CAP_IO : 0);
        cc__store_relaxed(&kernel_caps, caps);
    }
    return caps;
}

int cc__uring_new(cc__uring **out)
{
    cc__uring *p = cc__calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    /* Test knobs, so that tests reach the paths of older kernels:
     * CONCUR_IO_URING_NO_EXT_ARG=1 acts as Linux before 5.11 (no
     * IORING_FEAT_EXT_ARG: liburing times a wait with a TIMEOUT request,
     * whose completions it takes itself); CONCUR_IO_URING_NO_IO=1 as Linux
     * 5.5 (no RECV or READ requests: tasks wait for readiness instead).
     * Either also leaves out what later kernels brought (the setup flags,
     * POLL_FIRST), as such a kernel would: liburing's wait without EXT_ARG
     * does not work on a DEFER_TASKRUN ring, which no such kernel has.
     * And either refuses a submission while completions wait on the ring
     * (more often than such a kernel, which does only when they overflowed
     * it), so that hold_completions runs in the tests. */
    bool no_ext_arg = env_is_1("CONCUR_IO_URING_NO_EXT_ARG");
    bool no_io = env_is_1("CONCUR_IO_URING_NO_IO");
    bool old_kernel = no_ext_arg || no_io;
    int r = ring_init(&p->ring, old_kernel);
    if (r < 0) {
        cc__free(p, sizeof *p);
        return r;
    }
    p->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    p->probe = -1;
    if (p->evfd < 0) {
        r = errno == ENOMEM ? -ENOMEM : -EMFILE;
        io_uring_queue_exit(&p->ring);
        cc__free(p, sizeof *p);
        return r;
    }
    p->io_free = -1;
    uint32_t caps = caps_of(&p->ring);
    p->poll_first = !old_kernel && (caps & CAP_POLL_FIRST);
    p->has_io = !no_io && (caps & CAP_IO);
    p->busy_if_cqes = old_kernel;
    if (no_ext_arg)
        p->ring.features &= ~IORING_FEAT_EXT_ARG;
    arm_notify(p);
    *out = p;
    return 0;
}

void cc__uring_free(cc__uring *p)
{
    io_uring_queue_exit(&p->ring); /* cancels the polls in flight */
    close(p->evfd);
    if (p->probe >= 0)
        close(p->probe);
    cc__free(p->slots, (size_t)p->nslots * sizeof *p->slots);
    cc__free(p->io, (size_t)p->nio * sizeof *p->io);
    cc__free(p->held, p->held_cap * sizeof *p->held);
    cc__free(p, sizeof *p);
}

static struct uslot *slot_get(cc__uring *p, int fd)
{
    if (fd < p->nslots)
        return &p->slots[fd];
    size_t n = cc__fd_table_len((size_t)p->nslots, fd);
    struct uslot *s = cc__realloc(p->slots, (size_t)p->nslots * sizeof *s,
                                  n * sizeof *s);
    if (!s)
        return NULL;
    memset(s + p->nslots, 0, (n - (size_t)p->nslots) * sizeof *s);
    p->slots = s;
    p->nslots = (int)n;
    return &s[fd];
}

static uint64_t user_data(int fd, uint32_t gen)
{
    return (uint64_t)gen << 32 | (uint32_t)fd;
}

/* Remove the poll in flight for fd, if any; its completion becomes stale. */
static void disarm(cc__uring *p, struct uslot *s, int fd)
{
    if (!s->armed)
        return;
    struct io_uring_sqe *sqe = get_sqe(p);
    io_uring_prep_poll_remove(sqe, user_data(fd, s->gen));
    io_uring_sqe_set_data64(sqe, UD_IGNORE);
    s->armed = false;
    s->gen++;
}

static void arm(cc__uring *p, struct uslot *s, int fd, uint32_t events,
                void *data)
{
    disarm(p, s, fd);
    s->gen++;
    s->data = data;
    s->registered = s->armed = true;
    struct io_uring_sqe *sqe = get_sqe(p);
    io_uring_prep_poll_add(sqe, fd, events & (POLLIN | POLLOUT | POLLPRI));
    io_uring_sqe_set_data64(sqe, user_data(fd, s->gen));
}

/* epoll's synchronous answers for what io_uring would accept: a closed fd
 * (-EBADF) and files without a poll method, always ready (-EPERM: regular
 * files, directories, some devices such as /dev/null). Sockets and pipes
 * can always be polled; any other file is asked of the probe instance. */
static int check_fd(cc__uring *p, int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    if (S_ISSOCK(st.st_mode) || S_ISFIFO(st.st_mode))
        return 0;
    if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))
        return -EPERM;
    if (p->probe < 0 && (p->probe = epoll_create1(EPOLL_CLOEXEC)) < 0)
        return 0; /* no probe: let the poll say */
    struct epoll_event ev = {.events = EPOLLIN};
    if (epoll_ctl(p->probe, EPOLL_CTL_ADD, fd, &ev) < 0)
        return errno == EPERM ? -EPERM : 0; /* else let the poll say */
    epoll_ctl(p->probe, EPOLL_CTL_DEL, fd, NULL);
    return 0;
}

int cc__uring_add(cc__uring *p, int fd, uint32_t events, void *data)
{
    if (fd < 0)
        return -EBADF;
    int r = check_fd(p, fd);
    if (r < 0)
        return r;
    struct uslot *s = slot_get(p, fd);
    if (!s)
        return -ENOMEM;
    if (s->registered)
        return -EEXIST;
    arm(p, s, fd, events, data);
    return 0;
}

int cc__uring_mod(cc__uring *p, int fd, uint32_t events, void *data)
{
    if (fd < 0 || fd >= p->nslots || !p->slots[fd].registered)
        return -ENOENT;
    arm(p, &p->slots[fd], fd, events, data);
    return 0;
}

void cc__uring_del(cc__uring *p, int fd)
{
    if (fd < 0 || fd >= p->nslots)
        return;
    struct uslot *s = &p->slots[fd];
    disarm(p, s, fd);
    s->registered = false;
}

/* A free I/O slot's index (grown as need be), or -1 for ENOMEM. */
static int io_alloc(cc__uring *p)
{
    if (p->io_free < 0) {
        int n = p->nio ? p->nio * 2 : 64;
        if (n <= p->nio || n > 1 << 30) /* index below UD_IGNORE's */
            return -1;
        struct ioslot *s = cc__realloc(p->io, (size_t)p->nio * sizeof *s,
                                       (size_t)n * sizeof *s);
        if (!s)
            return -1;
        for (int i = p->nio; i < n; i++)
            s[i] = (struct ioslot){NULL, 0, i + 1 < n ? i + 1 : -1};
        p->io = s;
        p->io_free = p->nio;
        p->nio = n;
    }
    int i = p->io_free;
    p->io_free = p->io[i].next;
    p->io[i].next = IO_BUSY;
    return i;
}

static uint64_t io_user_data(int i, uint32_t gen)
{
    return (uint64_t)gen << 32 | IO_TAG | (uint32_t)i;
}

int cc__uring_io(cc__uring *p, enum cc__io_op op, int fd, void *buf,
                 size_t n, void *data, uint64_t *id)
{
    if (!p->has_io)
        return -ENOSYS;
    int i = io_alloc(p);
    if (i < 0)
        return -ENOMEM;
    p->io[i].data = data;
    unsigned len = n < IO_MAX ? (unsigned)n : IO_MAX;
    struct io_uring_sqe *sqe = get_sqe(p);
    if (op == CC__IO_RECV) {
        io_uring_prep_recv(sqe, fd, buf, len, 0);
        /* The caller found nothing to read: wait before the first try
         * (which would fail, and then wait). */
        if (p->poll_first)
            sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
    } else /* offset -1: the file's position, as read() */
        io_uring_prep_read(sqe, fd, buf, len, (uint64_t)-1);
    *id = io_user_data(i, p->io[i].gen);
    io_uring_sqe_set_data64(sqe, *id);
    return 0;
}

void cc__uring_cancel(cc__uring *p, uint64_t id)
{
    struct io_uring_sqe *sqe = get_sqe(p);
    io_uring_prep_cancel64(sqe, id, 0);
    io_uring_sqe_set_data64(sqe, UD_IGNORE); /* its own result: none */
}

void cc__uring_submit(cc__uring *p) { submit_now(p, true); }

/* An I/O request's completion: report it and free its slot, or 0 if the
 * id is stale (it cannot be: each request completes once; kept as the
 * fd table's discipline). */
static int take_io(cc__uring *p, uint64_t ud, int32_t res,
                   cc__poll_event *out)
{
    uint32_t i = (uint32_t)ud & ~IO_TAG;
    if (i >= (uint32_t)p->nio || p->io[i].next != IO_BUSY ||
        p->io[i].gen != (uint32_t)(ud >> 32))
        return 0;
    struct ioslot *s = &p->io[i];
    out->data = s->data;
    out->events = CC__POLL_IO;
    out->res = res;
    s->gen++;
    s->next = p->io_free;
    p->io_free = (int)i;
    return 1;
}

static void drain_notify(cc__uring *p)
{
    uint64_t n;
    if (read(p->evfd, &n, sizeof n) < 0 && errno != EAGAIN)
        cc__panic("read(eventfd)", -errno);
    arm_notify(p);
}

/* One completion (its user_data and result): store it in *out and return
 * 1, or 0 if it reports nothing (a wakeup, a removal, a stale poll). */
static int take(cc__uring *p, uint64_t ud, int32_t res, cc__poll_event *out)
{
    if (ud == UD_NOTIFY) {
        drain_notify(p);
        return 0;
    }
    if (ud == UD_IGNORE)
        return 0;
    if ((uint32_t)ud & IO_TAG)
        return take_io(p, ud, res, out);
    int fd = (int)(uint32_t)ud;
    struct uslot *s = fd < p->nslots ? &p->slots[fd] : NULL;
    if (!s || !s->armed || s->gen != (uint32_t)(ud >> 32))
        return 0;
    s->armed = false;
    out->data = s->data;
    if (res < 0) { /* closed meanwhile: nothing will ever be ready */
        s->registered = false;
        out->events = POLLERR | POLLHUP | POLLNVAL;
    } else {
        out->events = (uint32_t)res;
    }
    out->res = 0;
    return 1;
}

/* Submit, then wait for a completion until the deadline. A deadline that
 * has passed only submits and flushes what completed: a zero timeout
 * would still sleep on an hrtimer when nothing is ready (a context switch
 * per busy round of the loop, which polls with CC_NOWAIT). */
static int submit_and_wait(cc__uring *p, cc_deadline deadline)
{
    struct io_uring_cqe *cqe;
    struct __kernel_timespec ts, *tp = NULL;
    if (deadline != CC_FOREVER) {
        int64_t left = deadline == CC_NOWAIT ? 0 : deadline - cc__now();
        if (left <= 0)
            return io_uring_submit_and_get_events(&p->ring);
        ts = (struct __kernel_timespec){left / CC_SEC, left % CC_SEC};
        tp = &ts;
    }
    return io_uring_submit_and_wait_timeout(&p->ring, &cqe, 1, tp, NULL);
}

int cc__uring_wait(cc__uring *p, cc_deadline deadline, cc__poll_event *out,
                   int max)
{
    if (p->reported < p->nheld)
        deadline = CC_NOWAIT; /* held completions are ready to report */
    int r = submit_and_wait(p, deadline);
    if (r < 0 && r != -ETIME && r != -EINTR && r != -EAGAIN && r != -EBUSY)
        cc__panic("io_uring_submit_and_wait_timeout", r);
    int k = 0;
    for (; k < max && p->reported < p->nheld; p->reported++) {
        struct held *h = &p->held[p->reported];
        k += take(p, h->ud, h->res, &out[k]);
    }
    if (p->reported == p->nheld) /* all told (older than the ring's) */
        p->reported = p->nheld = 0;
    struct io_uring_cqe *cqe;
    while (k < max && io_uring_peek_cqe(&p->ring, &cqe) == 0) {
        /* Off the ring before take: its re-arm may hold the rest. */
        uint64_t ud = cqe->user_data;
        int32_t res = cqe->res;
        io_uring_cqe_seen(&p->ring, cqe);
        k += take(p, ud, res, &out[k]);
    }
    return k;
}

void cc__uring_notify(cc__uring *p)
{
    uint64_t one = 1;
    /* EAGAIN: the counter is saturated, so a wakeup is pending anyway. */
    if (write(p->evfd, &one, sizeof one) < 0 && errno != EAGAIN)
        cc__panic("write(eventfd)", -errno);
}

#endif /* CONCUR_HAVE_IO_URING */
