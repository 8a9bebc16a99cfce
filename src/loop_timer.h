/*
 * loop_timer.h: a loop's timers (loop.c): a binary min-heap of the parked
 * tasks that have a deadline, ordered by (deadline, arrival), so that ties
 * fire in the order they were armed. Not installed.
 *
 * Each task embeds a cc__timer; the heap holds pointers to them and each
 * timer knows its index, so disarming a task (woken before its deadline) is
 * O(log n). The loop reserves room for every live task at spawn, so arming
 * never allocates and never fails. Loop thread only.
 */
#ifndef CONCUR_LOOP_TIMER_H
#define CONCUR_LOOP_TIMER_H

#include "concur/base.h"

#include <stddef.h>
#include <stdint.h>

/* A task's timer. */
typedef struct cc__timer {
    cc_deadline when; /* its deadline, while armed */
    uint64_t seq;     /* its arrival, to break ties */
    size_t idx;       /* its place in the heap, or CC__TIMER_OFF */
} cc__timer;

#define CC__TIMER_OFF ((size_t)-1)

typedef struct cc__timer_heap {
    cc__timer **heap; /* min-heap by (when, seq) */
    size_t len;       /* armed timers */
    size_t cap;       /* room */
    uint64_t seq;     /* arrivals so far */
} cc__timer_heap;

/* An unarmed timer. */
static inline void cc__timer_init(cc__timer *t)
{
    *t = (cc__timer){.when = CC_FOREVER, .idx = CC__TIMER_OFF};
}

/* Make room for n armed timers: 0 or -ENOMEM. */
int cc__timer_reserve(cc__timer_heap *h, size_t n);

/* Arm t for `when` (CC_FOREVER: nothing). Needs the room reserved. */
void cc__timer_arm(cc__timer_heap *h, cc__timer *t, cc_deadline when);

/* Disarm t if armed. */
void cc__timer_disarm(cc__timer_heap *h, cc__timer *t);

/* The earliest deadline, or CC_FOREVER. */
static inline cc_deadline cc__timer_next(const cc__timer_heap *h)
{
    return h->len ? h->heap[0]->when : CC_FOREVER;
}

/* Disarm and return the earliest timer if its deadline is <= now, else
 * NULL. */
cc__timer *cc__timer_pop_due(cc__timer_heap *h, cc_deadline now);

/* Free the heap's storage. */
void cc__timer_heap_free(cc__timer_heap *h);

#endif
