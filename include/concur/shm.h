/*
 * concur/shm.h: shared memory segments, anonymous and named (Python's
 * multiprocessing.shared_memory.SharedMemory, and the typed storage behind
 * multiprocessing.Value and Array).
 *
 * A segment is a header (magic, element size, element count) followed by the
 * data, which cc_shm_data returns, aligned to 64 bytes. Raw bytes are an
 * array of elements of size 1; a typed value is an array of one element;
 * CC_SHM_ARRAY gives a typed pointer.
 *
 * Anonymous segments are a memfd (close-on-exec). A child gets one by
 * inheriting its fd: with fork it is simply there (the mapping too); with
 * spawn pass the fd (cc_worker_options.pass_fds in concur/process.h) and call
 * cc_shm_attach in the child. The memory goes when the last fd and the last
 * mapping go, crashes included (the kernel closes them).
 *
 * Named segments are files in /dev/shm (as shm_open). Cleanup: every
 * attachment holds a shared flock on its own open of the file; whoever closes
 * and can then upgrade to an exclusive flock is the last user and unlinks the
 * name. The kernel drops the flocks of a process that dies, so users that
 * crash do not keep the name alive; only when the LAST user dies without
 * closing does the name remain (remove it with cc_shm_unlink, as with
 * shm_open; Python's resource_tracker has the same gap for SIGKILL). A new
 * segment is filled in before it gets its name (an O_TMPFILE linked into
 * place), so an opener never sees a half-made header. A forked child shares
 * its parent's open file (hence its flock): it counts as a user only if it
 * opens the name itself; its cc_shm_close of an inherited attachment only
 * unmaps.
 *
 * Thread safety: the accessors are thread safe; cc_shm_close must be the
 * last call on a segment. Nothing here blocks except for page faults.
 */
#ifndef CONCUR_SHM_H
#define CONCUR_SHM_H

#include "base.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cc_shm cc_shm;

/* Flags of cc_shm_open. */
#define CC_SHM_CREATE 1 /* create the segment when it does not exist */
#define CC_SHM_EXCL 2   /* with CC_SHM_CREATE: fail if it exists */

/* The longest name cc_shm_open accepts, in bytes. */
#define CC_SHM_NAME_MAX 200

/*
 * cc_shm_create: a new anonymous segment of count elements of elem_size
 * bytes, zero-filled (raw bytes: elem_size 1, count = size). On success *out
 * is the segment (close with cc_shm_close) and 0 is returned. Errors:
 * -EINVAL (out NULL, elem_size or count 0, or a size that overflows),
 * -ENOMEM, -EMFILE/-ENFILE (no fd), -ENOSPC or -EFBIG (tmpfs full or over a
 * limit). Never blocks. Thread safe.
 */
int cc_shm_create(cc_shm **out, size_t elem_size, size_t count);

/*
 * cc_shm_attach: attach the anonymous (or named) segment open at fd, such as
 * one inherited from the parent. fd is duplicated (close-on-exec); the caller
 * keeps its own. Returns 0 with *out set; -EINVAL (out NULL, or fd is not a
 * concur segment: wrong size or header), -EBADF, -ENOMEM, -EMFILE. Never
 * blocks. Thread safe.
 */
int cc_shm_attach(cc_shm **out, int fd);

/*
 * cc_shm_open: attach the named segment `name` (a file name without '/', at
 * most CC_SHM_NAME_MAX bytes; a single leading '/' is skipped, as shm_open),
 * creating it with count elements of elem_size bytes when flags has
 * CC_SHM_CREATE and it does not exist (as SharedMemory(name, create=True,
 * size) with CC_SHM_EXCL; without EXCL, open-or-create). When opening an
 * existing segment, elem_size and count of 0 accept any shape; otherwise they
 * must match. Cleanup is in the header comment. Returns 0 with *out set;
 * -ENOENT (missing, no CC_SHM_CREATE; or no /dev/shm directory, as in some
 * containers), -EEXIST (CC_SHM_EXCL and it exists),
 * -EINVAL (bad name or flags, out NULL, a shape that does not match, a file
 * that is not a concur segment, or creating with a 0 shape), -ENAMETOOLONG,
 * -EACCES, -ENOMEM, -EMFILE/-ENFILE, -ENOSPC. Never blocks (the flocks it
 * takes are shared and never wait on anyone but a closer's instant). Thread
 * safe.
 */
int cc_shm_open(cc_shm **out, const char *name, size_t elem_size, size_t count,
                int flags);

/*
 * cc_shm_unlink: remove the name of a named segment now (as shm_unlink);
 * attached users keep their memory. Returns 0, -ENOENT, -EINVAL (bad name),
 * -EACCES. Never blocks. Thread safe.
 */
int cc_shm_unlink(const char *name);

/* cc_shm_data: the segment's data (64-byte aligned), valid until close. */
void *cc_shm_data(const cc_shm *shm);

/* cc_shm_size: bytes of data (elem_size * count). */
size_t cc_shm_size(const cc_shm *shm);

/* cc_shm_elem_size / cc_shm_count: the shape given at creation. */
size_t cc_shm_elem_size(const cc_shm *shm);
size_t cc_shm_count(const cc_shm *shm);

/*
 * cc_shm_fd: the segment's fd (close-on-exec, owned by the segment: do not
 * close it), to pass to a child.
 */
int cc_shm_fd(const cc_shm *shm);

/*
 * cc_shm_close: unmap, close the fd, and for a named segment unlink the name
 * when this was the last user (header comment). NULL is a no-op. Never fails,
 * never blocks. Not thread safe: the last call on shm.
 */
void cc_shm_close(cc_shm *shm);

/* CC_SHM_ARRAY: the data as an array of `type` (Python's Array/Value). */
#define CC_SHM_ARRAY(shm, type) ((type *)cc_shm_data(shm))

#ifdef __cplusplus
}
#endif
#endif
