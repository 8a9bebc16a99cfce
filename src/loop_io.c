/*
 * loop_io.c: a task's read done by the loop's io_uring (cc_recv, cc_read in
 * loop_fd.c), instead of a wait for readiness and then the system call.
 *
 * DESIGN. Where a task would wait for POLLIN, it submits an IORING_OP_RECV
 * (or READ) with its own buffer (cc__poller_io) and parks; the request goes
 * to the kernel with the loop's next io_uring_enter, one system call for a
 * whole round of tasks, and the kernel does the read when data comes. The
 * completion (CC__POLL_IO, dispatched by the loop to cc__loop_io_done)
 * stores the result in the task's request and wakes it. The buffer is the
 * kernel's until then, so a task never leaves before its completion: when
 * its park fails (cancelled: -ECANCELED; a deadline: -ETIMEDOUT) it asks
 * the kernel to cancel the request and waits on, protected (cancellation
 * and deadline scopes ignored), for the completion. If the read won the
 * race, its bytes are returned (nothing is lost); if the cancel won, the
 * park's error is. A request is linked in its fd's slot while in flight:
 * cc_close (loop_fd.c) cancels it too, and then the read gives -EBADF
 * (unless its bytes won). As the loop runs until its last task ends, no
 * request is ever in flight when the loop frees its poller.
 */
#include "loop_internal.h"
#include "poller.h"

#include <errno.h>

/* A task's request in flight. */
struct io_req {
    cc__waiter w;          /* the task, woken by the completion */
    int32_t res;           /* the request's result, once done */
    bool done;             /* the completion came (loop thread only) */
    struct cc__io_read rd; /* its id, linked in the fd's slot */
};

void cc__loop_io_done(void *data, int32_t res)
{
    struct io_req *q = data;
    q->res = res;
    q->done = true;
    cc__waiter_wake(&q->w); /* the task resumes only after we return */
}

/* The park failed with err and q is still the kernel's: cancel it and wait
 * for its completion, which always comes. */
static void cancel_and_wait(struct io_req *q)
{
    cc__poller_cancel(cc__loop_poller(), q->rd.id);
    struct cc__protect p;
    cc__protect_begin(&p);
    while (!q->done)
        cc__waiter_park(&q->w, CC_FOREVER);
    cc__protect_end(&p);
}

/* What the call returns: the request's bytes (or 0: end of file) even
 * when the park failed or the fd was closed; -EBADF when cc_close's
 * cancel won; the park's error when its own cancel won (or the request
 * was refused: -EAGAIN). */
static ssize_t io_result(const struct io_req *q, int park)
{
    if (q->res >= 0)
        return q->res;
    bool ended = q->res == -ECANCELED || q->res == -EINTR ||
                 q->res == -EAGAIN;
    if (q->rd.closed && ended)
        return -EBADF;
    return park == 0 || !ended ? q->res : park;
}

/* Park until q's completion; returns the park's result (0 or the error
 * that made it cancel the request). */
static int io_wait(struct io_req *q, int fd, cc_deadline deadline)
{
    bool tracked = cc__loop_fd_track(fd, &q->rd);
    cc__loop_fd_waits(1);
    cc__loop_note_wait("fd (read)", fd);
    int r = cc__waiter_park(&q->w, deadline);
    if (!q->done)
        cancel_and_wait(q);
    cc__loop_note_wait(NULL, -1);
    cc__loop_fd_waits(-1);
    if (tracked)
        cc__loop_fd_untrack(fd, &q->rd);
    return r;
}

int cc__loop_io_read(int op, int fd, void *buf, size_t n,
                     cc_deadline deadline, ssize_t *out)
{
    if (deadline != CC_FOREVER && deadline <= cc__now())
        return 0; /* the poll path gives -ETIMEDOUT without a request */
    struct io_req q = {.res = 0, .done = false};
    cc__waiter_init(&q.w);
    if (cc__poller_io(cc__loop_poller(), (enum cc__io_op)op, fd, buf, n,
                      &q, &q.rd.id) < 0)
        return 0; /* epoll, or no memory: wait for readiness instead */
    int r = io_wait(&q, fd, deadline);
    if (q.res == -EAGAIN && r == 0 && !q.rd.closed)
        return 0; /* the file cannot be waited on this way */
    *out = io_result(&q, r);
    return 1;
}
