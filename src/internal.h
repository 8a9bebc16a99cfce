/*
 * internal.h: what every concur source file uses: the allocation hook, the abort
 * helper for impossible OS errors, and small macros. Not installed.
 */
#ifndef CONCUR_INTERNAL_H
#define CONCUR_INTERNAL_H

#include "concur/base.h"

#include <limits.h>
#include <stddef.h>

#define CC__LIKELY(x) __builtin_expect(!!(x), 1)
#define CC__UNLIKELY(x) __builtin_expect(!!(x), 0)
/* A slow path, kept out of line: its callers' hot paths stay small enough
 * to inline and carry no frame for it. */
#define CC__COLD __attribute__((cold, noinline))
#define CC__CONTAINER_OF(p, type, member) \
    ((type *)((char *)(p) - offsetof(type, member)))
#define CC__ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/*
 * CC__THREAD_LOCAL: the library's thread-local variables, initial-exec: one
 * %fs-relative access. In libconcur.so the default model calls
 * __tls_get_addr at every access, which made a yield through the shared
 * library 1.5 x as dear as through the static one. The price is static TLS
 * (about 800 bytes in all), well within what glibc keeps for libraries loaded
 * by dlopen.
 */
#define CC__THREAD_LOCAL __thread __attribute__((tls_model("initial-exec")))

/* Allocation through the hook of cc_set_allocator(); NULL on failure. */
void *cc__malloc(size_t size);
void *cc__calloc(size_t n, size_t size);
void *cc__realloc(void *ptr, size_t old_size, size_t size);
/* `size` is the block's size when known, 0 otherwise (the default hook ignores it). */
void cc__free(void *ptr, size_t size);

/*
 * cc__panic: print "concur: <what>: <strerror(err)>" to stderr and abort. For OS
 * errors that a correct program cannot cause (DESIGN.md: such calls return void).
 */
_Noreturn void cc__panic(const char *what, int err);

/* cc__check: abort through cc__panic when a syscall-style result is negative. */
#define CC__CHECK(what, ret)                      \
    do {                                          \
        int cc__r_ = (ret);                       \
        if (CC__UNLIKELY(cc__r_ < 0))             \
            cc__panic((what), cc__r_);            \
    } while (0)

/* The length a table indexed by fd, of len entries, grows to so that it
 * holds fd: doubled from 64, in size_t (an int doubled past 2^30 wraps and
 * never ends: fs.nr_open allows fds up to 2^31 - 64), and just fd + 1 once
 * doubling would pass INT_MAX. */
static inline size_t cc__fd_table_len(size_t len, int fd)
{
    size_t n = len ? len : 64;
    while (n <= (size_t)fd)
        n *= 2;
    return n > INT_MAX ? (size_t)fd + 1 : n;
}

/* Read the monotonic clock (ns); same as cc_now(), inlinable. */
int64_t cc__now(void);

#endif
