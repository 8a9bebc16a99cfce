/*
 * output.c: the captured output of jobs (GNU parallel's --group).
 *
 * DESIGN. A job writes its stdout and stderr into two unlinked temporary files
 * (O_TMPFILE in $TMPDIR, else /tmp), not pipes: the child never blocks on a
 * full pipe, so nothing can deadlock and nothing needs draining while the job
 * runs; big outputs go to the file system instead of our memory; and a job
 * that wrote nothing costs two fstat calls. When the job ends, its files are
 * copied whole to our stdout and stderr (sendfile), emptied and reused by the
 * next job: the pool holds as many pairs as jobs run or wait to be printed.
 * A pair is reused only once emptied, so a lingering background process of a
 * finished job could still append to it: such output is printed with a later
 * job's (GNU parallel loses it instead).
 */
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

static int tmpfile_open(void)
{
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir)
        dir = "/tmp";
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0)
        return fd;
    strbuf path = {0};
    sb_puts(&path, dir);
    sb_puts(&path, "/concur.XXXXXX");
    fd = mkostemp(path.data, O_CLOEXEC);
    if (fd >= 0)
        unlink(path.data);
    sb_free(&path);
    if (fd < 0)
        fd = memfd_create("concur-output", MFD_CLOEXEC);
    return fd >= 0 ? fd : -errno;
}

int outpool_get(outpool *pool, outpair **out)
{
    outpair *p = pool->free;
    if (p) {
        pool->free = p->next;
        *out = p;
        return 0;
    }
    p = xmalloc(sizeof *p);
    p->tag = NULL;
    p->fd[0] = tmpfile_open();
    p->fd[1] = p->fd[0] < 0 ? -1 : tmpfile_open();
    if (p->fd[1] < 0) {
        int err = p->fd[0] < 0 ? p->fd[0] : p->fd[1];
        if (p->fd[0] >= 0)
            close(p->fd[0]);
        free(p);
        return err;
    }
    pool->live++;
    *out = p;
    return 0;
}

static off_t file_size(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 ? st.st_size : 0;
}

bool outpair_empty(const outpair *p)
{
    return file_size(p->fd[0]) == 0 && file_size(p->fd[1]) == 0;
}

/* Wait until `fd` takes more bytes (our stdout may be non-blocking). */
static void wait_writable(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLOUT};
    poll(&pfd, 1, -1);
}

/* Copy by read and write, where sendfile cannot (an O_APPEND file, ...). */
static int copy_rw(int to, int from, off_t off, off_t size)
{
    char buf[65536];
    while (off < size) {
        size_t want = size - off < (off_t)sizeof buf ? (size_t)(size - off) : sizeof buf;
        ssize_t n = pread(from, buf, want, off);
        if (n <= 0)
            return n < 0 ? -errno : 0;
        for (ssize_t done = 0; done < n;) {
            ssize_t w = write(to, buf + done, (size_t)(n - done));
            if (w < 0 && errno == EAGAIN)
                wait_writable(to);
            else if (w < 0 && errno != EINTR)
                return -errno;
            else if (w > 0)
                done += w;
        }
        off += n;
    }
    return 0;
}

static int copy_file(int to, int from, off_t size)
{
    off_t off = 0;
    while (off < size) {
        ssize_t n = sendfile(to, from, &off, (size_t)(size - off));
        if (n > 0)
            continue;
        if (n == 0)
            return 0; /* the file shrank under us */
        if (errno == EAGAIN)
            wait_writable(to);
        else if (errno == EINVAL || errno == ENOSYS)
            return copy_rw(to, from, off, size);
        else if (errno != EINTR)
            return -errno;
    }
    return 0;
}

int fd_copy_all(int to, int from) { return copy_file(to, from, file_size(from)); }

int fd_write_all(int to, const char *buf, size_t n)
{
    while (n > 0) {
        ssize_t w = write(to, buf, n);
        if (w < 0 && errno == EAGAIN)
            wait_writable(to);
        else if (w < 0 && errno != EINTR)
            return -errno;
        else if (w > 0)
            buf += w, n -= (size_t)w;
    }
    return 0;
}

/* --tag: copy with "TAG\t" before every line (the last one even unended). */
static int copy_tagged(int to, int from, off_t size, const char *tag)
{
    char buf[65536];
    strbuf out = {0};
    bool line_start = true;
    int r = 0;
    for (off_t off = 0; off < size && r == 0;) {
        size_t want = size - off < (off_t)sizeof buf ? (size_t)(size - off) : sizeof buf;
        ssize_t n = pread(from, buf, want, off);
        if (n <= 0)
            break;
        out.len = 0;
        for (ssize_t k = 0; k < n; k++) {
            if (line_start)
                sb_puts(&out, tag), sb_putc(&out, '\t');
            sb_putc(&out, buf[k]);
            line_start = buf[k] == '\n';
        }
        r = fd_write_all(to, out.data, out.len);
        off += n;
    }
    sb_free(&out);
    return r;
}

static void flush_one(outpool *pool, int to, int from, const char *tag)
{
    off_t size = file_size(from);
    if (size == 0)
        return;
    int r = tag ? copy_tagged(to, from, size, tag) : copy_file(to, from, size);
    /* EPIPE: no message, SIGPIPE stops us (run.c, on_signal) */
    if (r < 0 && r != -EPIPE && !pool->write_err)
        fprintf(stderr, "concur run: cannot write the output of a job: %s\n",
                strerror(-r));
    pool->write_err |= r < 0;
    if (ftruncate(from, 0) < 0 || lseek(from, 0, SEEK_SET) < 0)
        pool->write_err = true;
}

void outpair_flush(outpool *pool, outpair *p)
{
    flush_one(pool, STDOUT_FILENO, p->fd[0], p->tag);
    flush_one(pool, STDERR_FILENO, p->fd[1], p->tag);
}

off_t outpair_size(const outpair *p) { return file_size(p->fd[0]); }

void outpair_discard(outpool *pool, outpair *p)
{
    for (int k = 0; k < 2; k++)
        if (ftruncate(p->fd[k], 0) < 0 || lseek(p->fd[k], 0, SEEK_SET) < 0)
            pool->write_err = true;
}

void outpool_put(outpool *pool, outpair *p)
{
    free(p->tag);
    p->tag = NULL;
    p->next = pool->free;
    pool->free = p;
}

void outpool_free(outpool *pool)
{
    while (pool->free) {
        outpair *p = pool->free;
        pool->free = p->next;
        close(p->fd[0]);
        close(p->fd[1]);
        free(p);
        pool->live--;
    }
}
