/*
 * queue_store.c: the containers behind the locked queues: a growable circular
 * buffer (FIFO), a growable stack (LIFO) and a binary min-heap ordered by
 * (priority, put sequence) (PRIORITY, FIFO among equal priorities, as
 * Python's PriorityQueue of (prio, count, item) tuples). Not thread safe:
 * queue.c calls them under the queue's lock.
 */
#include "queue_impl.h"

#include <errno.h>
#include <string.h>

enum { STORE_MIN_CAP = 16 };

void cc__store_init(struct cc__store *s, cc_queue_kind kind)
{
    memset(s, 0, sizeof *s);
    s->kind = kind;
}

static size_t entry_size(const struct cc__store *s)
{
    return s->kind == CC_QUEUE_PRIORITY ? sizeof(struct cc__qentry)
                                        : sizeof(void *);
}

/* After doubling a FIFO ring from `old` slots: move the wrapped part (the
 * newest items, at the start) behind the oldest, so the items are contiguous
 * again from head. It fits: it is shorter than old. */
static void fifo_unwrap(struct cc__store *s, void **slots, size_t old)
{
    if (s->head + s->count > old)
        memcpy(slots + old, slots, (s->head + s->count - old) * sizeof *slots);
}

static int grow(struct cc__store *s)
{
    size_t esz = entry_size(s);
    size_t cap = s->cap ? s->cap * 2 : STORE_MIN_CAP;
    if (cap > SIZE_MAX / 2 / esz)
        return -ENOMEM;
    void *slots = cc__realloc(s->slots, s->cap * esz, cap * esz);
    if (!slots)
        return -ENOMEM;
    if (s->kind == CC_QUEUE_FIFO)
        fifo_unwrap(s, slots, s->cap);
    s->slots = slots;
    s->cap = cap;
    return 0;
}

static bool entry_less(const struct cc__qentry *a, const struct cc__qentry *b)
{
    return a->prio < b->prio || (a->prio == b->prio && a->seq < b->seq);
}

static void heap_up(struct cc__qentry *h, size_t i)
{
    struct cc__qentry e = h[i];
    while (i > 0 && entry_less(&e, &h[(i - 1) / 2])) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = e;
}

static void heap_down(struct cc__qentry *h, size_t n, size_t i)
{
    struct cc__qentry e = h[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && entry_less(&h[c + 1], &h[c]))
            c++;
        if (!entry_less(&h[c], &e))
            break;
        h[i] = h[c];
        i = c;
    }
    h[i] = e;
}

int cc__store_push(struct cc__store *s, void *item, int64_t prio)
{
    if (s->count == s->cap) {
        int r = grow(s);
        if (r < 0)
            return r;
    }
    if (s->kind == CC_QUEUE_PRIORITY) {
        struct cc__qentry *h = s->slots;
        h[s->count] = (struct cc__qentry){prio, s->seq++, item};
        heap_up(h, s->count);
    } else if (s->kind == CC_QUEUE_FIFO) {
        ((void **)s->slots)[(s->head + s->count) % s->cap] = item;
    } else {
        ((void **)s->slots)[s->count] = item;
    }
    s->count++;
    return 0;
}

/* Remove and return the next item; the store must not be empty. */
void *cc__store_pop(struct cc__store *s)
{
    void **slots = s->slots;
    void *item;
    s->count--;
    if (s->kind == CC_QUEUE_PRIORITY) {
        struct cc__qentry *h = s->slots;
        item = h[0].item;
        h[0] = h[s->count];
        heap_down(h, s->count, 0);
    } else if (s->kind == CC_QUEUE_FIFO) {
        item = slots[s->head];
        s->head = (s->head + 1) % s->cap;
    } else {
        item = slots[s->count];
    }
    return item;
}

void cc__store_destroy(struct cc__store *s, cc_queue_destructor fn, void *arg)
{
    while (fn && s->count > 0)
        fn(cc__store_pop(s), arg);
    cc__free(s->slots, s->cap * entry_size(s));
    s->slots = NULL;
    s->cap = s->count = s->head = 0;
}
