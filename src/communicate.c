/*
 * communicate.c: feeding and draining a child's pipes without deadlock, and
 * run (include/concur/subprocess.h).
 *
 * DESIGN. A child blocks when a pipe it writes is full; a parent that writes
 * all of stdin before reading stdout deadlocks with it. So communicate makes
 * the parent's ends non-blocking and runs one poll loop over the three pipes:
 * it writes whatever stdin accepts, reads whatever stdout and stderr hold
 * (straight into the spare room of the caller's growing buffers), closes each
 * pipe at its end (stdin once the input is written or the child closed its
 * end: EPIPE), and then waits for the child. SIGPIPE cannot be turned off per
 * fd for a pipe, so it is blocked in the calling thread for the duration and
 * the one a write raised is consumed before the mask is restored. All progress
 * (pipes closed, input offset, buffers) lives in the process and the caller's
 * buffers, so a call that timed out can simply be repeated.
 */
#include "loop_internal.h"
#include "bytes_owner.h"
#include "process.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Reads go straight into the buffer; keep at least this much room. */
#define READ_ROOM ((size_t)64 * 1024)

/* ---- cc_bytes ------------------------------------------------------------ */

_Atomic(struct cc__bytes_owner *) cc__bytes_owner;

/* The owner of b's memory when it is not the allocator's, else NULL. */
static struct cc__bytes_owner *owner_of(const cc_bytes *b)
{
    /* acquire: the owner's fields were set before it was registered. */
    struct cc__bytes_owner *o = cc__load_acq(&cc__bytes_owner);
    if (!o || !b->data)
        return NULL;
    uintptr_t d = (uintptr_t)b->data, lo = cc__load_relaxed(&o->lo);
    return d >= lo && d - lo < cc__load_relaxed(&o->size) ? o : NULL;
}

void cc_bytes_free(cc_bytes *b)
{
    if (!owner_of(b)) /* owned memory is only detached */
        cc__free(b->data, b->cap);
    memset(b, 0, sizeof *b);
}

/* Make room for `room` more bytes plus the NUL, doubling the capacity
 * (bytes_owner.h). */
int cc__bytes_reserve(cc_bytes *b, size_t room)
{
    if (b->cap - b->len > room)
        return 0;
    size_t want = b->len + room + 1, cap = b->cap ? b->cap : 4096;
    while (cap < want)
        cap *= 2;
    struct cc__bytes_owner *o = owner_of(b);
    if (o)
        return o->grow(o, b, cap);
    char *d = cc__realloc(b->data, b->cap, cap);
    if (!d)
        return -ENOMEM;
    d[b->len] = '\0'; /* a buffer that never gets a byte is still a string */
    b->data = d;
    b->cap = cap;
    return 0;
}

int cc_bytes_append(cc_bytes *b, const void *data, size_t len)
{
    int r = cc__bytes_reserve(b, len);
    if (r < 0)
        return r;
    if (len > 0)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

/* ---- one step on each pipe ----------------------------------------------- */

/* Read what fd holds into b (or discard it when b is NULL); close fd at EOF or
 * on an error. Returns the bytes read, 0 (nothing now, or EOF), or -errno. */
static ssize_t read_some(int *fd, cc_bytes *b)
{
    char scratch[16384];
    if (b && cc__bytes_reserve(b, READ_ROOM) < 0)
        return -ENOMEM;
    char *dst = b ? b->data + b->len : scratch;
    size_t room = b ? b->cap - b->len - 1 : sizeof scratch;
    ssize_t n = read(*fd, dst, room);
    if (n > 0 && b) {
        b->len += (size_t)n;
        b->data[b->len] = '\0';
    }
    if (n > 0)
        return n;
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    int err = n == 0 ? 0 : -errno;
    cc__close_fd(fd);
    return err;
}

/* Write what stdin accepts; close it once all is written or the child is
 * gone (EPIPE). */
static int write_some(cc_process *p, const char *input, size_t len, bool *epipe)
{
    ssize_t n = 0;
    if (p->input_off < len)
        n = write(p->fds[0], input + p->input_off, len - p->input_off);
    if (n > 0)
        p->input_off += (size_t)n;
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    int err = n < 0 && errno != EPIPE ? -errno : 0;
    *epipe |= n < 0 && errno == EPIPE;
    if (n < 0 || p->input_off >= len)
        cc__close_fd(&p->fds[0]);
    return err;
}

/* ---- the poll loop ------------------------------------------------------- */

typedef struct pump {
    cc_process *p;     /* the child */
    const char *input; /* communicate's input */
    size_t len;        /* its length in bytes */
    cc_bytes *sink[3]; /* [1] stdout's buffer, [2] stderr's; NULL: discard */
    bool epipe;        /* a write raised SIGPIPE (to consume) */
} pump;

/* The pollfds of the pipes still open; which[k] is the stdio index of k. */
static nfds_t pump_fds(pump *pm, struct pollfd *pf, int *which)
{
    nfds_t n = 0;
    if (pm->p->fds[0] >= 0 && pm->p->input_off >= pm->len)
        cc__close_fd(&pm->p->fds[0]); /* nothing (more) to write: EOF */
    for (int i = 0; i < 3; i++) {
        if (pm->p->fds[i] < 0)
            continue;
        pf[n] = (struct pollfd){.fd = pm->p->fds[i],
                                .events = i ? POLLIN : POLLOUT};
        which[n++] = i;
    }
    return n;
}

static int pump_step(pump *pm, int i)
{
    if (i == 0)
        return write_some(pm->p, pm->input, pm->len, &pm->epipe);
    ssize_t n = read_some(&pm->p->fds[i], pm->sink[i]);
    return n < 0 ? (int)n : 0;
}

static int pump_run(pump *pm, cc_deadline deadline)
{
    for (;;) {
        struct pollfd pf[3];
        int which[3];
        nfds_t n = pump_fds(pm, pf, which);
        if (n == 0)
            return 0;
        int r = cc__poll_wait(pf, n, deadline); /* a task parks */
        for (nfds_t k = 0; r > 0 && k < n; k++) {
            int err = pf[k].revents ? pump_step(pm, which[k]) : 0;
            r = err < 0 ? err : r;
        }
        if (r < 0)
            return r;
    }
}

/* ---- SIGPIPE ------------------------------------------------------------- */

/*
 * The mask is per thread, and the tasks of a loop share their thread: two
 * communicates parked in it at once must not each restore the mask they
 * found (the first to end would unblock SIGPIPE under the other's writes, and
 * the last would leave it blocked). So the first one in blocks it and the
 * last one out consumes what their writes raised and gives SIGPIPE back its
 * state, and only SIGPIPE: other tasks may have changed the rest of the mask
 * meanwhile (cc_signal_wait blocks its signals for good).
 */
static CC__THREAD_LOCAL struct {
    int depth;        /* communicates in progress in this thread */
    bool was_blocked; /* SIGPIPE was blocked before the first one */
    bool was_pending; /* a SIGPIPE was pending before it (not ours) */
    bool raised;      /* a write of one of them raised SIGPIPE */
} sigpipe;

/* Block SIGPIPE in this thread, unless a communicate of it already did. */
static void sigpipe_block(void)
{
    if (sigpipe.depth++ > 0)
        return;
    sigset_t set, old, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    sigpipe.was_blocked = sigismember(&old, SIGPIPE);
    sigpending(&pending);
    sigpipe.was_pending = sigismember(&pending, SIGPIPE);
    sigpipe.raised = false;
}

/* The last communicate out consumes the SIGPIPE their writes raised (unless
 * one was pending before, which is then left for its owner), then unblocks
 * SIGPIPE if it was not blocked before. */
static void sigpipe_restore(bool raised)
{
    sigpipe.raised |= raised;
    if (--sigpipe.depth > 0)
        return;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    if (sigpipe.raised && !sigpipe.was_pending) {
        static const struct timespec zero = {0, 0};
        while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    if (!sigpipe.was_blocked)
        pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

/* ---- communicate --------------------------------------------------------- */

static void set_nonblocking(int fd)
{
    int fl = fd >= 0 ? fcntl(fd, F_GETFL) : -1;
    if (fl >= 0 && !(fl & O_NONBLOCK))
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static int communicate_start(cc_process *p, const void *input, size_t len)
{
    if (len > 0 && (!input || !p->stdin_piped))
        return -EINVAL;
    if (p->communicating)
        return 0;
    p->communicating = true;
    p->input_off = 0;
    for (int i = 0; i < 3; i++)
        set_nonblocking(p->fds[i]);
    return 0;
}

int cc_process_communicate(cc_process *p, const void *input, size_t input_len,
                           cc_deadline deadline, cc_bytes *out, cc_bytes *err)
{
    int r = communicate_start(p, input, input_len);
    if (r < 0)
        return r;
    pump pm = {
        .p = p, .input = input, .len = input_len, .sink = {NULL, out, err}};
    sigpipe_block();
    r = pump_run(&pm, deadline);
    sigpipe_restore(pm.epipe);
    if (r < 0)
        return r;
    return cc_process_wait(p, deadline, NULL);
}

/* ---- run ----------------------------------------------------------------- */

void cc_completed_process_free(cc_completed_process *result)
{
    cc_bytes_free(&result->out);
    cc_bytes_free(&result->err);
    memset(result, 0, sizeof *result);
}

static cc_spawn_options run_spawn_options(const cc_run_options *o)
{
    cc_spawn_options s = o->spawn;
    if (o->input)
        s.stdin_io = (cc_stdio){.mode = CC_STDIO_PIPE};
    if (o->capture_output) {
        s.stdout_io = (cc_stdio){.mode = CC_STDIO_PIPE};
        s.stderr_io = (cc_stdio){.mode = CC_STDIO_PIPE};
    }
    return s;
}

/* After a timeout or an error: kill the group, reap, keep what the pipes
 * already hold, close them without waiting for an EOF that a grandchild in
 * another group could withhold forever. */
static void run_abandon(cc_process *p, cc_completed_process *res)
{
    cc_process_kill(p);
    struct cc__protect pr; /* a cancelled task must still reap */
    cc__protect_begin(&pr);
    int r = cc_process_wait(p, CC_FOREVER, NULL);
    cc__protect_end(&pr);
    if (r < 0)
        return; /* -ECHILD: reaped by the application; nothing to add */
    cc_bytes *sink[3] = {NULL, &res->out, &res->err};
    for (int i = 1; i < 3; i++)
        for (int k = 0; k < 64 && p->fds[i] >= 0; k++) /* bounded drain */
            if (read_some(&p->fds[i], sink[i]) <= 0)
                break;
    for (int i = 0; i < 3; i++)
        cc__close_fd(&p->fds[i]);
}

int cc_run(char *const argv[], const cc_run_options *opts, cc_deadline deadline,
           cc_completed_process *result)
{
    static const cc_run_options defaults;
    memset(result, 0, sizeof *result);
    if (!opts)
        opts = &defaults;
    cc_spawn_options so = run_spawn_options(opts);
    cc_process *p;
    int r = cc_process_spawn(&p, argv, &so);
    if (r < 0)
        return r;
    result->started = true;
    size_t len = opts->input ? opts->input_len : 0;
    r = cc_process_communicate(p, opts->input, len, deadline, &result->out,
                               &result->err);
    if (r < 0)
        run_abandon(p, result);
    int rc = 0;
    if (cc_process_poll(p, &rc) == 0)
        result->returncode = rc;
    cc_process_free(p);
    if (r == 0 && opts->check && rc != 0)
        r = -ECHILD;
    return r;
}
