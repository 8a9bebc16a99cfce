/*
 * linebuf.c: --line-buffer of `concur run`: output as it comes, whole lines.
 *
 * DESIGN. With --line-buffer a job writes into two pipes instead of files.
 * Their read ends (non-blocking) sit in the runner's epoll beside the pidfd,
 * with cookies that say slot and stream (cookie_of). Whenever one is
 * readable, what came is appended to that stream's pending bytes and every
 * complete line is written out at once (after its --tag); a partial line
 * waits for its end. When the job ends, the pipes are drained (what the job
 * wrote is all there by then), the partial lines written, the pipes closed;
 * a pipe that ends before its job (closed, or left to a child) is closed
 * then, as it would otherwise wake epoll_wait forever.
 * Lines of different jobs never mix; their order is the order they came in.
 */
#include "runner.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

int lb_open(job *j, int child[2])
{
    for (int k = 0; k < 2; k++) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0) {
            int err = -errno;
            lb_close(j);
            if (k)
                close(child[0]);
            return err;
        }
        fcntl(p[0], F_SETFL, O_NONBLOCK);
        j->pipe[k] = p[0];
        child[k] = p[1];
    }
    return 0;
}

void lb_watch(runner *r, long i)
{
    for (int k = 0; k < 2; k++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = cookie_of(i, k + 1)};
        if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->slots[i].pipe[k], &ev) < 0) {
            fprintf(stderr, "concur run: epoll_ctl: %s\n", strerror(errno));
            exit(RUN_EXIT_ERROR);
        }
    }
}

/* Write the first n pending bytes of stream k, each line after the tag. */
static void emit(runner *r, job *j, int k, size_t n)
{
    strbuf *p = &j->pend[k];
    int fd = k ? STDERR_FILENO : STDOUT_FILENO;
    int err;
    if (!j->tag) {
        err = fd_write_all(fd, p->data, n);
    } else {
        r->scratch.len = 0;
        for (size_t s = 0, e; s < n; s = e) {
            const char *nl = memchr(p->data + s, '\n', n - s);
            e = nl ? (size_t)(nl - p->data) + 1 : n;
            sb_puts(&r->scratch, j->tag);
            sb_putc(&r->scratch, '\t');
            sb_put(&r->scratch, p->data + s, e - s);
        }
        err = fd_write_all(fd, r->scratch.data, r->scratch.len);
    }
    r->pool.write_err |= err < 0;
    memmove(p->data, p->data + n, p->len - n);
    p->len -= n;
}

/* Read what stream k of job j has; write its complete lines. 0 at its end. */
static int pull(runner *r, job *j, int k)
{
    char buf[65536];
    ssize_t n = read(j->pipe[k], buf, sizeof buf);
    if (n <= 0)
        return n < 0 && (errno == EAGAIN || errno == EINTR) ? -1 : 0;
    if (k == 0)
        j->received += n;
    size_t before = j->pend[k].len;
    sb_put(&j->pend[k], buf, (size_t)n);
    const char *nl = memrchr(buf, '\n', (size_t)n); /* only the new bytes */
    if (nl)
        emit(r, j, k, before + (size_t)(nl - buf) + 1);
    return 1;
}

/* Stream k ended (or its job did): write what it has left, close its pipe
 * (which takes it out of epoll: an ended pipe would be readable forever). */
static void end_stream(runner *r, job *j, int k)
{
    while (pull(r, j, k) > 0)
        ;
    if (j->pend[k].len)
        emit(r, j, k, j->pend[k].len);
    close(j->pipe[k]);
    j->pipe[k] = -1;
    sb_free(&j->pend[k]);
}

void lb_read(runner *r, long i, int k)
{
    job *j = &r->slots[i];
    if (j->pipe[k] >= 0 && pull(r, j, k) == 0)
        end_stream(r, j, k); /* the job closed it before its end */
}

void lb_close(job *j)
{
    for (int k = 0; k < 2; k++) {
        if (j->pipe[k] >= 0)
            close(j->pipe[k]);
        j->pipe[k] = -1;
        sb_free(&j->pend[k]);
    }
}

void lb_finish(runner *r, job *j)
{
    for (int k = 0; k < 2; k++)
        if (j->pipe[k] >= 0)
            end_stream(r, j, k);
}
