/*
 * shm.c: shared memory segments (include/concur/shm.h).
 *
 * DESIGN. Every segment is one file mapped MAP_SHARED: a memfd when
 * anonymous, a file in /dev/shm when named. Its first 64 bytes are a header
 * (magic, shape) written before anyone else can see the file: a memfd is
 * private until its fd is passed on, and a named segment is made as an
 * O_TMPFILE, filled in, then linked under its name (linkat fails with EEXIST
 * if someone was first, which is how two creators race safely). Named
 * segments count their users with flock: each attachment opens the file
 * itself and holds LOCK_SH; a closer that can upgrade to LOCK_EX is the last
 * one and unlinks the name (if the name still refers to its file). An opener
 * that finds, once it holds LOCK_SH, that its file has no name any more (a
 * last closer got there in between) starts again. The kernel drops the flocks
 * of dead processes, which is what makes crashed users harmless.
 */
#include "concur/shm.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SHM_DIR "/dev/shm"
#define SHM_MAGIC 0x636f6e6375727368ull /* "concursh" */
#define HEADER_SIZE 64

/* The first HEADER_SIZE bytes of every segment. */
typedef struct shm_header {
    _Atomic uint64_t magic; /* SHM_MAGIC once the rest is written (release) */
    uint64_t elem_size;     /* bytes per element */
    uint64_t count;         /* elements */
} shm_header;

struct cc_shm {
    void *map;         /* the whole mapping, header first */
    size_t map_size;   /* HEADER_SIZE + data bytes */
    int fd;            /* the file, close-on-exec */
    bool named;        /* a /dev/shm file: unlink when last */
    pid_t opener;      /* process that opened fd (a forked child is not) */
    char path[sizeof SHM_DIR + CC_SHM_NAME_MAX + 1]; /* for named ones */
};

static const shm_header *header_of(const cc_shm *s) { return s->map; }

void *cc_shm_data(const cc_shm *s) { return (char *)s->map + HEADER_SIZE; }
size_t cc_shm_size(const cc_shm *s) { return s->map_size - HEADER_SIZE; }
size_t cc_shm_elem_size(const cc_shm *s) { return header_of(s)->elem_size; }
size_t cc_shm_count(const cc_shm *s) { return header_of(s)->count; }
int cc_shm_fd(const cc_shm *s) { return s->fd; }

/* HEADER_SIZE + elem_size * count, or 0 when 0-sized or overflowing. */
static size_t total_size(size_t elem_size, size_t count)
{
    size_t data;
    if (elem_size == 0 || count == 0 ||
        __builtin_mul_overflow(elem_size, count, &data) ||
        data > (size_t)INT64_MAX - HEADER_SIZE)
        return 0;
    return data + HEADER_SIZE;
}

/* Map fd (of map_size bytes) into a new cc_shm that takes the fd. */
static int shm_wrap(cc_shm **out, int fd, size_t map_size)
{
    cc_shm *s = cc__calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->map = mmap(NULL, map_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (s->map == MAP_FAILED) {
        int err = -errno;
        cc__free(s, sizeof *s);
        return err;
    }
    s->map_size = map_size;
    s->fd = fd;
    s->opener = getpid();
    *out = s;
    return 0;
}

/* Size the new file and write its header; magic last, with release, so
 * that whoever reads the magic with acquire sees the shape. */
static int shm_format(cc_shm **out, int fd, size_t elem_size, size_t count)
{
    size_t total = total_size(elem_size, count);
    if (ftruncate(fd, (off_t)total) < 0)
        return errno == EINVAL ? -EFBIG : -errno;
    int r = shm_wrap(out, fd, total);
    if (r < 0)
        return r;
    shm_header *h = (*out)->map;
    h->elem_size = elem_size;
    h->count = count;
    atomic_store_explicit(&h->magic, SHM_MAGIC, memory_order_release);
    return 0;
}

/* Check the header of a file mapped by someone else against its size. */
static int shm_validate(const cc_shm *s, size_t elem_size, size_t count)
{
    const shm_header *h = s->map;
    uint64_t magic = atomic_load_explicit(&((shm_header *)h)->magic,
                                          memory_order_acquire);
    if (magic != SHM_MAGIC || total_size(h->elem_size, h->count) != s->map_size)
        return -EINVAL;
    if ((elem_size || count) &&
        (elem_size != h->elem_size || count != h->count))
        return -EINVAL;
    return 0;
}

/* Map an open file of a segment made elsewhere; takes fd (closed on error). */
static int shm_map_existing(cc_shm **out, int fd, size_t elem_size,
                            size_t count)
{
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_size < HEADER_SIZE) {
        close(fd);
        return -EINVAL;
    }
    int r = shm_wrap(out, fd, (size_t)st.st_size);
    if (r < 0) {
        close(fd);
        return r;
    }
    r = shm_validate(*out, elem_size, count);
    if (r < 0)
        cc_shm_close(*out);
    return r;
}

int cc_shm_create(cc_shm **out, size_t elem_size, size_t count)
{
    if (!out || total_size(elem_size, count) == 0)
        return -EINVAL;
    int fd = memfd_create("concur-shm", MFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    int r = shm_format(out, fd, elem_size, count);
    if (r < 0)
        close(fd);
    return r;
}

int cc_shm_attach(cc_shm **out, int fd)
{
    if (!out)
        return -EINVAL;
    int dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup < 0)
        return -errno;
    return shm_map_existing(out, dup, 0, 0);
}

/* ---- named segments ------------------------------------------------------ */

/* "/dev/shm/<name>" into path; -EINVAL or -ENAMETOOLONG for a bad name. */
static int shm_path(char *path, size_t cap, const char *name)
{
    if (!name)
        return -EINVAL;
    if (name[0] == '/')
        name++;
    size_t len = strlen(name);
    if (len == 0 || strchr(name, '/') || !strcmp(name, ".") ||
        !strcmp(name, ".."))
        return -EINVAL;
    if (len > CC_SHM_NAME_MAX)
        return -ENAMETOOLONG;
    snprintf(path, cap, SHM_DIR "/%s", name);
    return 0;
}

static int flock_retry(int fd, int op)
{
    int r;
    do
        r = flock(fd, op);
    while (r < 0 && errno == EINTR);
    return r < 0 ? -errno : 0;
}

/* Make the segment as an unnamed file, then give it the name: -EEXIST if
 * the name was taken meanwhile. */
static int shm_create_named(cc_shm **out, const char *path, size_t elem_size,
                            size_t count)
{
    int fd = open(SHM_DIR, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    int r = shm_format(out, fd, elem_size, count);
    if (r < 0) {
        close(fd);
        return r;
    }
    char self[64];
    snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
    r = flock_retry(fd, LOCK_SH);
    if (r == 0 && linkat(AT_FDCWD, self, AT_FDCWD, path, AT_SYMLINK_FOLLOW) < 0)
        r = -errno;
    if (r < 0)
        cc_shm_close(*out); /* not named yet: nothing to unlink */
    return r;
}

/* Open the existing file at path under LOCK_SH: 1 when it was unlinked
 * before the lock was had (try again), 0 with *out set, or an error. */
static int shm_open_existing(cc_shm **out, const char *path, size_t elem_size,
                             size_t count)
{
    int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    struct stat st;
    int r = flock_retry(fd, LOCK_SH);
    if (r == 0 && fstat(fd, &st) < 0)
        r = -errno;
    if (r < 0 || st.st_nlink == 0) {
        close(fd);
        return r < 0 ? r : 1;
    }
    return shm_map_existing(out, fd, elem_size, count);
}

int cc_shm_open(cc_shm **out, const char *name, size_t elem_size, size_t count,
                int flags)
{
    char path[sizeof SHM_DIR + CC_SHM_NAME_MAX + 1];
    int r = shm_path(path, sizeof path, name);
    bool create = flags & CC_SHM_CREATE, excl = flags & CC_SHM_EXCL;
    if (r < 0)
        return r;
    if (!out || (flags & ~(CC_SHM_CREATE | CC_SHM_EXCL)) || (excl && !create) ||
        (create && total_size(elem_size, count) == 0))
        return -EINVAL;
    for (;;) {
        r = create ? shm_create_named(out, path, elem_size, count) : -EEXIST;
        if (r != -EEXIST || excl)
            break; /* made, or failed (-ENOENT: no /dev/shm) */
        r = shm_open_existing(out, path, elem_size, count);
        if (r == -ENOENT && create)
            continue; /* unlinked between our link and our open: again */
        if (r != 1)
            break;
    }
    if (r == 0) {
        (*out)->named = true;
        memcpy((*out)->path, path, sizeof path);
    }
    return r;
}

int cc_shm_unlink(const char *name)
{
    char path[sizeof SHM_DIR + CC_SHM_NAME_MAX + 1];
    int r = shm_path(path, sizeof path, name);
    if (r == 0 && unlink(path) < 0)
        r = -errno;
    return r;
}

/* Unlink the name if we are its last user and it still names our file. */
static void shm_unlink_if_last(cc_shm *s)
{
    struct stat mine, named;
    if (flock(s->fd, LOCK_EX | LOCK_NB) < 0)
        return; /* others hold LOCK_SH: they will */
    if (fstat(s->fd, &mine) == 0 && stat(s->path, &named) == 0 &&
        mine.st_ino == named.st_ino && mine.st_dev == named.st_dev)
        unlink(s->path);
}

void cc_shm_close(cc_shm *s)
{
    if (!s)
        return;
    munmap(s->map, s->map_size);
    if (s->named && s->opener == getpid())
        shm_unlink_if_last(s);
    close(s->fd); /* drops our flock */
    cc__free(s, sizeof *s);
}
