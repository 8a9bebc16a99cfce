/*
 * coro_san.h: what coro.c tells ASan, TSan and valgrind about coroutine stacks
 * and switches. Every hook is an empty inline function in a build without the
 * tool, so the switch costs nothing extra there.
 *
 * ASan: before a switch, __sanitizer_start_switch_fiber(save, to's stack); in
 * the resumed context, __sanitizer_finish_switch_fiber(restore, &prev's stack)
 * (which also tells us the bounds of a thread's main stack). A coroutine that
 * finishes passes NULL so that its fake stack is freed; so does one that is
 * destroyed while suspended. A reused stack is unpoisoned: abandoned frames
 * may have left redzones behind.
 * TSan: one fiber per coroutine; a switch is __tsan_switch_to_fiber(to, 0),
 * which orders everything before the switch before everything after it.
 * valgrind: each stack mapping is registered while it is mapped (optional:
 * only when <valgrind/valgrind.h> exists and CONCUR_NO_VALGRIND is not set).
 */
#ifndef CONCUR_CORO_SAN_H
#define CONCUR_CORO_SAN_H

#include <stdbool.h>
#include <stddef.h>

#if defined(__SANITIZE_ADDRESS__)
#define CC__CORO_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CC__CORO_ASAN 1
#endif
#endif

#if defined(__SANITIZE_THREAD__)
#define CC__CORO_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CC__CORO_TSAN 1
#endif
#endif

#if !defined(CONCUR_NO_VALGRIND) && defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define CC__CORO_VALGRIND 1
#endif
#endif

#ifdef CC__CORO_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#ifdef CC__CORO_TSAN
void *__tsan_get_current_fiber(void);
void *__tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void *fiber);
void __tsan_switch_to_fiber(void *fiber, unsigned flags);
void __tsan_set_fiber_name(void *fiber, const char *name);
#endif

/* Functions that must stay invisible to TSan (they change stacks under it). */
#if defined(__clang__) && defined(__has_attribute)
#if __has_attribute(disable_sanitizer_instrumentation)
#define CC__CORO_NO_TSAN __attribute__((disable_sanitizer_instrumentation))
#endif
#endif
#ifndef CC__CORO_NO_TSAN
#define CC__CORO_NO_TSAN __attribute__((no_sanitize_thread))
#endif

struct cc__coro_san {
#ifdef CC__CORO_ASAN
    void *fake;     /* ASan's fake stack while suspended */
    const void *lo; /* stack bottom as ASan knows it */
    size_t size;    /* its bytes (learned for a main stack) */
#endif
#ifdef CC__CORO_TSAN
    void *fiber; /* TSan fiber */
#endif
#ifdef CC__CORO_VALGRIND
    unsigned vg_id; /* valgrind stack id */
#endif
    char unused; /* keeps the struct non-empty */
};

static inline void cc__san_stack_mapped(struct cc__coro_san *s, char *lo,
                                        size_t size)
{
#ifdef CC__CORO_VALGRIND
    s->vg_id = VALGRIND_STACK_REGISTER(lo, lo + size);
#endif
    (void)s, (void)lo, (void)size;
}

static inline void cc__san_stack_unmapped(struct cc__coro_san *s, char *map,
                                          size_t size)
{
#ifdef CC__CORO_VALGRIND
    VALGRIND_STACK_DEREGISTER(s->vg_id);
#endif
#ifdef CC__CORO_ASAN
    ASAN_UNPOISON_MEMORY_REGION(map, size);
#endif
    (void)s, (void)map, (void)size;
}

static inline void cc__san_stack_reused(struct cc__coro_san *s, char *lo,
                                        size_t size)
{
#ifdef CC__CORO_ASAN
    ASAN_UNPOISON_MEMORY_REGION(lo, size);
#endif
    (void)s, (void)lo, (void)size;
}

static inline void cc__san_coro_created(struct cc__coro_san *s, char *lo,
                                        size_t size, const char *name)
{
#ifdef CC__CORO_ASAN
    s->fake = NULL;
    s->lo = lo;
    s->size = size;
#endif
#ifdef CC__CORO_TSAN
    s->fiber = __tsan_create_fiber(0);
    __tsan_set_fiber_name(s->fiber, name);
#endif
    (void)s, (void)lo, (void)size, (void)name;
}

static inline void cc__san_coro_destroyed(struct cc__coro_san *s)
{
#ifdef CC__CORO_TSAN
    __tsan_destroy_fiber(s->fiber);
#endif
    (void)s;
}

/* A suspended coroutine is destroyed: free its fake stack, which only a
 * switch out of it "for good" would (ASan has no call for another
 * context's). Pretend to be on its stack, with its fake stack, and leave
 * it for good; then come back. No instrumented code runs in between. */
static inline void cc__san_coro_abandoned(struct cc__coro_san *s)
{
#ifdef CC__CORO_ASAN
    if (!s->fake)
        return;
    void *mine;
    const void *lo;
    size_t size;
    __sanitizer_start_switch_fiber(&mine, s->lo, s->size);
    __sanitizer_finish_switch_fiber(s->fake, &lo, &size);
    __sanitizer_start_switch_fiber(NULL, lo, size); /* frees s->fake */
    __sanitizer_finish_switch_fiber(mine, NULL, NULL);
    s->fake = NULL;
#endif
    (void)s;
}

static inline void cc__san_main_init(struct cc__coro_san *s)
{
#ifdef CC__CORO_TSAN
    s->fiber = __tsan_get_current_fiber();
#endif
    (void)s;
}

/* `from_done`: from will never run again, so ASan may free its fake stack. */
static inline void cc__san_before_switch(struct cc__coro_san *from,
                                         bool from_done,
                                         struct cc__coro_san *to)
{
#ifdef CC__CORO_ASAN
    __sanitizer_start_switch_fiber(from_done ? NULL : &from->fake, to->lo,
                                   to->size);
#endif
#ifdef CC__CORO_TSAN
    __tsan_switch_to_fiber(to->fiber, 0);
#endif
    (void)from, (void)from_done, (void)to;
}

/* In the resumed context `self`; prev is the context that switched in. */
static inline void cc__san_after_switch(struct cc__coro_san *self,
                                        struct cc__coro_san *prev)
{
#ifdef CC__CORO_ASAN
    const void *lo;
    size_t size;
    __sanitizer_finish_switch_fiber(self->fake, &lo, &size);
    prev->lo = lo;
    prev->size = size;
#endif
    (void)self, (void)prev;
}

/* The fallback's one-time bootstrap (makecontext) onto a new stack and back:
 * announced to the sanitizers like a switch there and back. */
static inline void cc__san_before_boot(struct cc__coro_san *c, void **fake)
{
#ifdef CC__CORO_ASAN
    __sanitizer_start_switch_fiber(fake, c->lo, c->size);
#endif
#ifdef CC__CORO_TSAN
    __tsan_switch_to_fiber(c->fiber, 0);
#endif
    (void)c, (void)fake;
}

static inline void cc__san_after_boot(void **lo, size_t *size)
{
#ifdef CC__CORO_ASAN
    __sanitizer_finish_switch_fiber(NULL, (const void **)lo, size);
#endif
    (void)lo, (void)size;
}

static inline void cc__san_before_boot_return(struct cc__coro_san *c,
                                              struct cc__coro_san *creator,
                                              void *lo, size_t size)
{
#ifdef CC__CORO_ASAN
    __sanitizer_start_switch_fiber(&c->fake, lo, size);
#endif
#ifdef CC__CORO_TSAN
    __tsan_switch_to_fiber(creator->fiber, 0);
#endif
    (void)c, (void)creator, (void)lo, (void)size;
}

static inline void cc__san_after_boot_return(void *fake)
{
#ifdef CC__CORO_ASAN
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
    (void)fake;
}

#endif
