/*
 * loop_timer.c: a loop's timers, a binary min-heap (design in loop_timer.h).
 */
#include "loop_timer.h"

#include "internal.h"

static bool before(const cc__timer *a, const cc__timer *b)
{
    return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static void set(cc__timer_heap *h, size_t i, cc__timer *t)
{
    h->heap[i] = t;
    t->idx = i;
}

static void sift_up(cc__timer_heap *h, size_t i)
{
    cc__timer *t = h->heap[i];
    while (i > 0 && before(t, h->heap[(i - 1) / 2])) {
        set(h, i, h->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    set(h, i, t);
}

static void sift_down(cc__timer_heap *h, size_t i)
{
    cc__timer *t = h->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->len)
            break;
        if (c + 1 < h->len && before(h->heap[c + 1], h->heap[c]))
            c++;
        if (!before(h->heap[c], t))
            break;
        set(h, i, h->heap[c]);
        i = c;
    }
    set(h, i, t);
}

int cc__timer_reserve(cc__timer_heap *h, size_t n)
{
    if (n <= h->cap)
        return 0;
    size_t cap = h->cap ? 2 * h->cap : 64;
    while (cap < n)
        cap *= 2;
    void *p = cc__realloc(h->heap, h->cap * sizeof *h->heap,
                          cap * sizeof *h->heap);
    if (!p)
        return -ENOMEM;
    h->heap = p;
    h->cap = cap;
    return 0;
}

void cc__timer_arm(cc__timer_heap *h, cc__timer *t, cc_deadline when)
{
    if (when == CC_FOREVER)
        return;
    t->when = when;
    t->seq = h->seq++;
    set(h, h->len++, t);
    sift_up(h, t->idx);
}

void cc__timer_disarm(cc__timer_heap *h, cc__timer *t)
{
    size_t i = t->idx;
    if (i == CC__TIMER_OFF)
        return;
    t->idx = CC__TIMER_OFF;
    cc__timer *last = h->heap[--h->len];
    if (i == h->len)
        return;
    set(h, i, last);
    sift_up(h, i);
    sift_down(h, last->idx);
}

cc__timer *cc__timer_pop_due(cc__timer_heap *h, cc_deadline now)
{
    if (h->len == 0 || h->heap[0]->when > now)
        return NULL;
    cc__timer *t = h->heap[0];
    cc__timer_disarm(h, t);
    return t;
}

void cc__timer_heap_free(cc__timer_heap *h)
{
    cc__free(h->heap, h->cap * sizeof *h->heap);
    *h = (cc__timer_heap){0};
}
