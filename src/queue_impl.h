/*
 * queue_impl.h: the layout of a cc_queue, shared by its three files:
 * queue.c (public calls, the locked queue), queue_ring.c (the lock-free bounded
 * FIFO) and queue_store.c (the containers behind the locked queue).
 */
#ifndef CONCUR_QUEUE_IMPL_H
#define CONCUR_QUEUE_IMPL_H

#include "concur/queue.h"

#include "wait.h"

#include <stdalign.h>

enum { CC__CACHE_LINE = 64 };

/* One slot of the ring (Vyukov's bounded MPMC queue). */
struct cc__ring_cell {
    cc__atomic_u64 seq; /* 2 pos: free for the put at pos; 2 pos + 1: holds
                           that put's item */
    void *item;         /* written before seq's release store, read after its
                           acquire load */
};

/* The lock-free bounded FIFO (queue_ring.c). Hot words on their own lines. */
struct cc__ring {
    struct cc__ring_cell *cells; /* cap slots */
    uint64_t cap;                /* maxsize */
    uint64_t mask;               /* cap - 1 if cap is a power of two, else 0 */
    bool pow2;                   /* index with mask rather than % */
    alignas(CC__CACHE_LINE)
    cc__atomic_u64 enq;          /* next put position; CC__RING_SHUT: shut */
    alignas(CC__CACHE_LINE)
    cc__atomic_u64 deq;          /* next get position */
    alignas(CC__CACHE_LINE)
    cc__atomic_u32 get_waiters;  /* getters past their spin, plus linked
                                    cc__queue_subs (seq_cst, below): a put
                                    that sees 0 skips the lock */
    cc__atomic_u32 put_waiters;  /* putters past their spin (seq_cst) */
    cc__atomic_u32 join_waiters; /* callers in join; changed under the lock
                                    (relaxed), read by tests */
    uint32_t shutting;           /* shutdowns under way; under the lock */
    alignas(CC__CACHE_LINE)
    cc__atomic_u64 done;         /* task_done calls plus dropped items;
                                    CC__RING_JOINING while join_waiters */
};

/* Set in ring.enq by shutdown: a put's CAS on enq then fails for good. */
#define CC__RING_SHUT ((uint64_t)1 << 63)

/* Set in ring.done while a caller is in join: task_done then counts under
 * the lock (queue_ring.c). */
#define CC__RING_JOINING ((uint64_t)1 << 63)

/* One entry of the priority heap. */
struct cc__qentry {
    int64_t prio; /* lower first */
    uint64_t seq; /* put order, FIFO among equal prio */
    void *item;   /* the caller's item */
};

/* The container of a locked queue (queue_store.c); not thread safe. */
struct cc__store {
    cc_queue_kind kind; /* picks the order of pop */
    void *slots;        /* void *[cap] (FIFO ring, LIFO stack) or qentry[cap] */
    size_t cap;         /* allocated entries */
    size_t head;        /* FIFO: index of the oldest item */
    size_t count;       /* items held */
    uint64_t seq;       /* next sequence number for priority entries */
};

/* A locked queue: everything under cc_queue.lock. */
struct cc__locked {
    struct cc__store store;   /* the items */
    size_t unfinished;        /* puts not yet matched by task_done */
    cc__atomic_u32 shut;      /* written under the lock; read lock-free by
                                 cc_queue_is_shutdown (relaxed: a snapshot) */
};

/*
 * A subscription to "the queue may have an item to get" (cc_wait_any):
 * notify(s, q) runs under q->lock when a put or a shutdown makes the queue
 * ready (so it must be short and never block); by then s is unlinked.
 * Unlike a getter it takes no item and consumes no wakeup: the put that
 * fires it still wakes one real getter.
 */
typedef struct cc__queue_sub {
    struct cc__queue_sub *next;                          /* under q->lock */
    struct cc__queue_sub *prev;                          /* under q->lock */
    bool linked;                                         /* under q->lock */
    void (*notify)(struct cc__queue_sub *s, cc_queue *q); /* the callback */
} cc__queue_sub;

struct cc_queue {
    cc_queue_kind kind;          /* as given to cc_queue_new */
    bool ring_mode;              /* the lock-free ring, else the locked queue */
    size_t maxsize;              /* 0: unbounded */
    cc_queue_destructor dtor;    /* called on dropped items, or NULL */
    void *dtor_arg;              /* its second argument */
    void *mem;                   /* the allocation (aligned for the ring) */
    size_t mem_size;             /* its size */
    cc__mutex lock;              /* guards the wait queues (and `locked`) */
    cc__waitq getters;           /* blocked in get */
    cc__waitq putters;           /* blocked in put */
    cc__waitq joiners;           /* blocked in join */
    cc__queue_sub *subs;         /* subscriptions, newest first; under lock */
    union {
        struct cc__ring ring;    /* ring_mode */
        struct cc__locked locked; /* !ring_mode */
    };
};

/*
 * cc__queue_ready: whether a get would not block now: an item is queued (on
 * the ring: a put has claimed a slot, and publishes it within a few
 * instructions) or the queue is shut down. A snapshot. Never blocks.
 */
bool cc__queue_ready(cc_queue *q);

/*
 * cc__queue_subscribe: link s to q unless q is ready already: then returns
 * false and s stays unlinked (the caller handles the ready queue itself).
 * Linked, s fires on the next put or shutdown.
 */
bool cc__queue_subscribe(cc_queue *q, cc__queue_sub *s);

/* cc__queue_unsubscribe: unlink s if still linked; afterwards notify(s) is not
 * running and never will, so s may be freed. */
void cc__queue_unsubscribe(cc_queue *q, cc__queue_sub *s);

/* cc__queue_notify_held: under q->lock, unlink and fire every
 * subscription (a put or a shutdown made q ready). */
void cc__queue_notify_held(cc_queue *q);

/* queue.c: cc__queue_ready of a locked queue, under q->lock. */
bool cc__queue_ready_held(cc_queue *q);

/* queue_ring.c */
bool cc__ring_ready(cc_queue *q);
int cc__ring_init(cc_queue *q, size_t cap);
void cc__ring_destroy(cc_queue *q);
int cc__ring_put(cc_queue *q, void *item, cc_deadline deadline);
int cc__ring_get(cc_queue *q, void **item, cc_deadline deadline);
size_t cc__ring_qsize(cc_queue *q);
int cc__ring_task_done(cc_queue *q);
int cc__ring_join(cc_queue *q, cc_deadline deadline);
void cc__ring_shutdown(cc_queue *q, bool immediate);
bool cc__ring_is_shutdown(cc_queue *q);

/* queue_store.c */
void cc__store_init(struct cc__store *s, cc_queue_kind kind);
int cc__store_push(struct cc__store *s, void *item, int64_t prio);
void *cc__store_pop(struct cc__store *s);
/* Pass every item to fn (if not NULL) and free the slots. */
void cc__store_destroy(struct cc__store *s, cc_queue_destructor fn, void *arg);

/* Whether the deadline has passed (CC_NOWAIT always has). */
static inline bool cc__deadline_passed(cc_deadline deadline)
{
    return deadline != CC_FOREVER && deadline <= cc__now();
}

#endif
