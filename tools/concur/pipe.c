/*
 * pipe.c: --pipe: stdin cut into blocks at record boundaries, one block per
 * job, as its stdin.
 *
 * DESIGN. The cutting is GNU parallel's (spreadstdin), so that -k outputs
 * match it byte for byte: read stdin until the bytes held reach the next
 * multiple of --block (or its end), then cut after the last --recend that is
 * followed by --recstart; the bytes after the cut start the next block. With
 * no such boundary, the block size grows by 1.3 (GNU's rule) and reading goes
 * on. At the end of stdin, what is left is the last block. Each block goes to
 * its job through a memfd, written whole before the job starts: the job reads
 * it at its own pace, nothing of ours waits on a job's stdin, so a job that
 * writes much before it reads cannot deadlock with us, and --retries can run
 * the same block again (the job keeps the memfd until its slot is freed).
 * Reading stdin blocks the runner, as GNU parallel's does.
 */

#include "runner.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* GNU parallel's cap on a grown block (2 GiB - 1). */
#define BLOCK_MAX 2147483647LL

/* --block: a size with GNU parallel's suffixes: k, m, g, t = 10^3...,
 * K, M, G, T, ki, mi, gi, ti = 2^10... */
int parse_block(run_opts *o, const char *s)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    static const char units[] = "kmgt";
    const char *u = *end ? strchr(units, end[0] | 0x20) : NULL;
    double mult = 1;
    if (u) {
        bool bin = (end[0] != (end[0] | 0x20)) || (end[1] | 0x20) == 'i';
        for (long k = 0; k <= u - units; k++)
            mult *= bin ? 1024 : 1000;
        end += 1 + ((end[1] | 0x20) == 'i');
    }
    v *= mult;
    if (errno || end == s || *end || !(v >= 1) || v > BLOCK_MAX)
        return run_fail("--block: '%s' is not a size (like 1M)", s);
    o->block = (long long)v;
    return 0;
}

/* The offset of the last `sep` in buf[0..len), len when sep is empty (as
 * Perl's rindex), or -1. */
static long long last_sep(const char *buf, size_t len, const char *sep, size_t n)
{
    if (n == 0)
        return (long long)len;
    for (size_t i = len >= n ? len - n + 1 : 0; i-- > 0;)
        if (buf[i] == sep[0] && memcmp(buf + i, sep, n) == 0)
            return (long long)i;
    return -1;
}

/* Read until the bytes held are a multiple of the block size, or stdin ends
 * (GNU's read_block). 0 or -errno. */
static int fill_block(blockreader *b)
{
    size_t want = b->block - b->buf.len % b->block;
    if (b->buf.cap < b->buf.len + want + 1) {
        b->buf.cap = b->buf.len + want + 1;
        b->buf.data = xrealloc(b->buf.data, b->buf.cap);
    }
    while (want > 0) {
        ssize_t n = read(STDIN_FILENO, b->buf.data + b->buf.len, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0) {
            b->eof = true;
            return 0;
        }
        b->buf.len += (size_t)n;
        want -= (size_t)n;
    }
    return 0;
}

/* A memfd holding the first n bytes held, which are then dropped. */
static int give_block(blockreader *b, size_t n, int *fd)
{
    int mfd = memfd_create("concur-block", MFD_CLOEXEC);
    if (mfd < 0)
        return -errno;
    int err = fd_write_all(mfd, b->buf.data, n);
    if (err == 0 && lseek(mfd, 0, SEEK_SET) < 0)
        err = -errno;
    if (err < 0) {
        close(mfd);
        return err;
    }
    memmove(b->buf.data, b->buf.data + n, b->buf.len - n);
    b->buf.len -= n;
    *fd = mfd;
    return 1;
}

/* Where to cut the bytes held (after the last recend+recstart), or 0. */
static size_t cut_at(const blockreader *b)
{
    long long i = last_sep(b->buf.data, b->buf.len, b->sep.data ? b->sep.data : "",
                           b->sep.len);
    return i < 0 ? 0 : (size_t)i + b->endlen;
}

void blockreader_init(blockreader *b, const run_opts *o)
{
    const char *end = o->recend ? o->recend : o->recstart ? "" : "\n";
    const char *start = o->recstart ? o->recstart : "";
    *b = (blockreader){.block = (size_t)o->block, .endlen = strlen(end)};
    sb_puts(&b->sep, end);
    sb_puts(&b->sep, start);
}

int blockreader_next(blockreader *b, int *fd)
{
    while (!b->eof) {
        int err = fill_block(b);
        if (err < 0)
            return err;
        if (b->eof)
            break;
        size_t cut = cut_at(b);
        if (cut > 0)
            return give_block(b, cut, fd);
        double grown = ceil((double)b->block * 1.3 + 1);
        grown = grown > BLOCK_MAX ? BLOCK_MAX : grown;
        fprintf(stderr, "concur run: warning: a record is longer than %zu"
                " bytes: --block %.0f\n", b->block, grown);
        b->block = (size_t)grown;
    }
    return b->buf.len > 0 ? give_block(b, b->buf.len, fd) : 0;
}

void blockreader_free(blockreader *b)
{
    sb_free(&b->buf);
    sb_free(&b->sep);
}
