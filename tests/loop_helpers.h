/*
 * loop_helpers.h: what the event-loop tests (test_loop*.c) share. Tasks
 * record what they see and the assertions run after cc_loop_run returns: a
 * failed cmocka assertion longjmps, which must not leave a coroutine, so the
 * helpers here abort instead.
 */
#ifndef CONCUR_TEST_LOOP_HELPERS_H
#define CONCUR_TEST_LOOP_HELPERS_H

#include <concur.h>

#include <stdint.h>
#include <stdlib.h>

/* Start a thread (abort on failure: callable from a task). */
static inline cc_thread *start(cc_thread_fn fn, void *arg)
{
    cc_thread *t;
    if (cc_thread_start(&t, fn, arg, NULL) != 0)
        abort();
    return t;
}

/* Join from a task or a thread; returns the thread's result. */
static inline void *join(cc_thread *t)
{
    void *r = NULL;
    if (cc_thread_join(t, cc_deadline_in(60 * CC_SEC), &r) != 0)
        abort();
    return r;
}

/* A small xorshift generator per caller. */
static inline uint32_t rnd(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

#endif
