/*
 * base.c: time and deadlines, error names, the allocation hook, panics.
 */
#include "internal.h"
#include "loop_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- time ---------------------------------------------------------------- */

int64_t cc__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * CC_SEC + ts.tv_nsec;
}

int64_t cc_now(void) { return cc__now(); }

cc_deadline cc_deadline_in(int64_t ns)
{
    if (ns <= 0)
        return CC_NOWAIT;
    int64_t now = cc__now();
    if (ns >= CC_FOREVER - now)
        return CC_FOREVER;
    return now + ns;
}

int cc_sleep_until(cc_deadline deadline)
{
    int r = cc__loop_sleep_until(deadline); /* a task: park it, not us */
    if (r != -EPERM)
        return r;
    if (deadline == CC_FOREVER)
        for (;;)
            pause();
    if (deadline <= 0) /* past; a negative one is no timespec (EINVAL) */
        return 0;
    struct timespec ts = {deadline / CC_SEC, deadline % CC_SEC};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0)
        ;
    return 0;
}

int cc_sleep(int64_t ns) { return cc_sleep_until(cc_deadline_in(ns)); }

/* ---- errors -------------------------------------------------------------- */

const char *cc_strerror(int err)
{
    if (err < 0)
        err = -err;
    if (err == 0)
        return "Success";
    /* strerrordesc_np is thread safe and never formats into a buffer. */
    const char *s = strerrordesc_np(err);
    return s ? s : "Unknown error";
}

/* ---- allocation ---------------------------------------------------------- */

static void *default_alloc(void *ud, void *ptr, size_t old_size, size_t size)
{
    (void)ud;
    (void)old_size;
    if (size == 0) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, size);
}

/* The hook; set once before use (cc_set_allocator is not thread safe). */
static cc_alloc_fn alloc_fn = default_alloc;
static void *alloc_ud;

void cc_set_allocator(cc_alloc_fn fn, void *ud)
{
    alloc_fn = fn ? fn : default_alloc;
    alloc_ud = fn ? ud : NULL;
}

void *cc__malloc(size_t size) { return alloc_fn(alloc_ud, NULL, 0, size ? size : 1); }

void *cc__calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    void *p = cc__malloc(n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

void *cc__realloc(void *ptr, size_t old_size, size_t size)
{
    return alloc_fn(alloc_ud, ptr, old_size, size ? size : 1);
}

void cc__free(void *ptr, size_t size)
{
    if (ptr)
        alloc_fn(alloc_ud, ptr, size, 0);
}

/* ---- panics -------------------------------------------------------------- */

_Noreturn void cc__panic(const char *what, int err)
{
    fprintf(stderr, "concur: %s: %s\n", what, cc_strerror(err));
    abort();
}
