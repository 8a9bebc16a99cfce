/*
 * test_queue.c: FIFO, LIFO and priority queues (concur/queue.h): order,
 * blocking and deadlines, many producers and consumers, task_done/join,
 * shutdown (Python 3.13), the destructor.
 */
#include "testutil.h"

#include "queue_impl.h" /* the ring's counters, to time a race */

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#define ITEM(i) ((void *)(uintptr_t)(i))
#define NUM(p) ((uintptr_t)(p))
#define LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Every shape a queue can take: the lock-free ring and the locked queues. */
struct shape {
    cc_queue_kind kind;
    size_t maxsize;
};

/* Bounded shapes of capacity 2 (the big FIFO: the locked, bounded path). */
static const struct shape bounded[] = {
    {CC_QUEUE_FIFO, 2}, {CC_QUEUE_LIFO, 2}, {CC_QUEUE_PRIORITY, 2},
};

static cc_queue *new_queue(cc_queue_kind kind, size_t maxsize)
{
    cc_queue *q = NULL;
    assert_int_equal(cc_queue_new(&q, kind, maxsize), 0);
    assert_non_null(q);
    return q;
}

/* ---- a thread blocked in one call ---------------------------------------- */

enum op { OP_PUT, OP_GET, OP_JOIN };

struct caller {
    cc_queue *q;          /* the queue to call */
    enum op op;           /* which call */
    void *item;           /* put: the item; get: what was got */
    cc_deadline deadline; /* passed to the call */
    int ret;              /* its result */
    atomic_bool returned; /* set once the call returned */
    pthread_t thread;     /* the caller */
};

static void *call_op(void *arg)
{
    struct caller *c = arg;
    if (c->op == OP_PUT)
        c->ret = cc_queue_put(c->q, c->item, c->deadline);
    else if (c->op == OP_GET)
        c->ret = cc_queue_get(c->q, &c->item, c->deadline);
    else
        c->ret = cc_queue_join(c->q, c->deadline);
    atomic_store(&c->returned, true);
    return NULL;
}

static void start_call(struct caller *c, cc_queue *q, enum op op, void *item)
{
    *c = (struct caller){.q = q, .op = op, .item = item, .deadline = CC_FOREVER};
    assert_int_equal(pthread_create(&c->thread, NULL, call_op, c), 0);
}

static int finish_call(struct caller *c)
{
    assert_int_equal(pthread_join(c->thread, NULL), 0);
    return c->ret;
}

/* ---- order --------------------------------------------------------------- */

static void check_order(cc_queue_kind kind, size_t maxsize, const int *in,
                        const int *out, int n)
{
    cc_queue *q = new_queue(kind, maxsize);
    for (int i = 0; i < n; i++)
        assert_int_equal(cc_queue_put(q, ITEM(in[i]), CC_NOWAIT), 0);
    assert_int_equal(cc_queue_qsize(q), n);
    for (int i = 0; i < n; i++) {
        void *item;
        assert_int_equal(cc_queue_get(q, &item, CC_NOWAIT), 0);
        assert_int_equal(NUM(item), out[i]);
    }
    assert_true(cc_queue_empty(q));
    cc_queue_free(q);
}

static void fifo_gives_first_put_first(void **state)
{
    const int in[] = {1, 2, 3, 4, 5, 6, 7};
    check_order(CC_QUEUE_FIFO, 7, in, in, 7);  /* the ring, power of two */
    check_order(CC_QUEUE_FIFO, 8, in, in, 7);  /* the ring, not one */
    check_order(CC_QUEUE_FIFO, 0, in, in, 7);  /* locked, unbounded */
    check_order(CC_QUEUE_FIFO, CC_QUEUE_RING_MAX + 1, in, in, 7); /* locked */
}

static void fifo_order_survives_wraparound(void **state)
{
    size_t sizes[] = {3, 4, 0};
    for (size_t s = 0; s < LEN(sizes); s++) {
        cc_queue *q = new_queue(CC_QUEUE_FIFO, sizes[s]);
        uintptr_t next_in = 0, next_out = 0;
        for (int round = 0; round < 300; round++) {
            for (int i = 0; i < 1 + round % 4; i++) {
                if (sizes[s] && next_in - next_out == sizes[s]) {
                    assert_int_equal(cc_queue_put(q, NULL, CC_NOWAIT), -ETIMEDOUT);
                    break;
                }
                assert_int_equal(cc_queue_put(q, ITEM(next_in++), CC_NOWAIT), 0);
            }
            for (int i = 0; i < 1 + (round + 1) % 3 && next_out < next_in; i++) {
                void *item;
                assert_int_equal(cc_queue_get(q, &item, CC_NOWAIT), 0);
                assert_int_equal(NUM(item), next_out++);
            }
            assert_int_equal(cc_queue_qsize(q), next_in - next_out);
        }
        cc_queue_free(q);
    }
}

static void lifo_gives_last_put_first(void **state)
{
    const int in[] = {1, 2, 3, 4, 5}, out[] = {5, 4, 3, 2, 1};
    check_order(CC_QUEUE_LIFO, 0, in, out, 5);
    check_order(CC_QUEUE_LIFO, 5, in, out, 5);
}

static void priority_gives_lowest_first_fifo_among_equal(void **state)
{
    cc_queue *q = new_queue(CC_QUEUE_PRIORITY, 0);
    const int64_t prio[] = {5, -3, 5, 0, 100, -3, 5, 0};
    const int expect[] = {1, 5, 3, 7, 0, 2, 6, 4}; /* indexes into prio[] */
    for (int i = 0; i < 8; i++)
        assert_int_equal(cc_queue_put_priority(q, ITEM(i), prio[i], CC_NOWAIT), 0);
    for (int i = 0; i < 8; i++) {
        void *item;
        assert_int_equal(cc_queue_get(q, &item, CC_NOWAIT), 0);
        assert_int_equal(NUM(item), expect[i]);
    }
    cc_queue_free(q);
}

static void priority_heap_sorts_many(void **state)
{
    enum { N = 5000, PRIOS = 50 };
    cc_queue *q = new_queue(CC_QUEUE_PRIORITY, 0);
    srand(7);
    for (int i = 0; i < N; i++) {
        int64_t prio = rand() % PRIOS;
        /* the item carries its priority and its put order */
        void *item = ITEM(prio * N + i);
        assert_int_equal(cc_queue_put_priority(q, item, prio, CC_NOWAIT), 0);
    }
    uintptr_t last = 0;
    for (int i = 0; i < N; i++) {
        void *item;
        assert_int_equal(cc_queue_get(q, &item, CC_NOWAIT), 0);
        assert_true(i == 0 || NUM(item) > last); /* by prio, then put order */
        last = NUM(item);
    }
    assert_true(cc_queue_empty(q));
    cc_queue_free(q);
}

static void put_priority_needs_a_priority_queue(void **state)
{
    cc_queue *q = new_queue(CC_QUEUE_FIFO, 4);
    assert_int_equal(cc_queue_put_priority(q, NULL, 1, CC_NOWAIT), -EINVAL);
    assert_true(cc_queue_empty(q));
    cc_queue_free(q);
    cc_queue *bad = NULL;
    assert_int_equal(cc_queue_new(&bad, (cc_queue_kind)7, 0), -EINVAL);
    assert_int_equal(cc_queue_new(NULL, CC_QUEUE_FIFO, 0), -EINVAL);
}

/* ---- allocation failures ------------------------------------------------ */

static void allocation_failures_return_enomem(void **state)
{
    cc_queue *q = NULL;
    cc_test_alloc_fail_after(0); /* the queue itself */
    assert_int_equal(cc_queue_new(&q, CC_QUEUE_FIFO, 8), -ENOMEM);
    cc_test_alloc_fail_after(1); /* the ring's slots */
    assert_int_equal(cc_queue_new(&q, CC_QUEUE_FIFO, 8), -ENOMEM);
    assert_null(q);
    const cc_queue_kind kinds[] = {CC_QUEUE_FIFO, CC_QUEUE_LIFO, CC_QUEUE_PRIORITY};
    for (size_t k = 0; k < LEN(kinds); k++) {
        cc_test_alloc_fail_after(1);
        assert_int_equal(cc_queue_new(&q, kinds[k], 0), 0);
        assert_int_equal(cc_queue_put(q, ITEM(1), CC_NOWAIT), -ENOMEM);
        assert_true(cc_queue_empty(q));
        assert_int_equal(cc_queue_join(q, CC_NOWAIT), 0); /* not counted */
        cc_test_alloc_fail_after(1);
        for (int i = 0; i < 16; i++) /* the first block holds 16 */
            assert_int_equal(cc_queue_put(q, ITEM(i), CC_NOWAIT), 0);
        assert_int_equal(cc_queue_put(q, ITEM(16), CC_NOWAIT), -ENOMEM);
        assert_int_equal(cc_queue_qsize(q), 16);
        cc_test_alloc_fail_after(1);
        assert_int_equal(cc_queue_put(q, ITEM(16), CC_NOWAIT), 0);
        void *item;
        for (int i = 0; i < 17; i++)
            assert_int_equal(cc_queue_get(q, &item, CC_NOWAIT), 0);
        cc_queue_free(q);
    }
    cc_test_alloc_normal();
}

/* ---- sizes, NOWAIT, deadlines, blocking ---------------------------------- */

static void qsize_empty_full_track_items(void **state)
{
    for (size_t s = 0; s < LEN(bounded); s++) {
        cc_queue *q = new_queue(bounded[s].kind, 2);
        assert_true(cc_queue_empty(q));
        assert_false(cc_queue_full(q));
        assert_int_equal(cc_queue_maxsize(q), 2);
        assert_int_equal(cc_queue_put(q, NULL, CC_NOWAIT), 0); /* NULL is fine */
        assert_int_equal(cc_queue_qsize(q), 1);
        assert_int_equal(cc_queue_put(q, ITEM(2), CC_NOWAIT), 0);
        assert_true(cc_queue_full(q));
        assert_int_equal(cc_queue_qsize(q), 2);
        cc_queue_free(q);
    }
    cc_queue *u = new_queue(CC_QUEUE_FIFO, 0);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(cc_queue_put(u, ITEM(i), CC_NOWAIT), 0);
    assert_false(cc_queue_full(u));
    assert_int_equal(cc_queue_qsize(u), 1000);
    cc_queue_free(u);
}

static void nowait_fails_at_once_when_full_or_empty(void **state)
{
    for (size_t s = 0; s < LEN(bounded); s++) {
        cc_queue *q = new_queue(bounded[s].kind, 2);
        void *item = ITEM(77);
        assert_int_equal(cc_queue_get(q, &item, CC_NOWAIT), -ETIMEDOUT);
        assert_int_equal(NUM(item), 77); /* untouched on error */
        assert_int_equal(cc_queue_put(q, ITEM(1), CC_NOWAIT), 0);
        assert_int_equal(cc_queue_put(q, ITEM(2), CC_NOWAIT), 0);
        assert_int_equal(cc_queue_put(q, ITEM(3), CC_NOWAIT), -ETIMEDOUT);
        assert_int_equal(cc_queue_put(q, ITEM(3), cc_now() - CC_SEC), -ETIMEDOUT);
        assert_int_equal(cc_queue_qsize(q), 2);
        cc_queue_free(q);
    }
}

static void timed_put_and_get_never_return_early(void **state)
{
    for (size_t s = 0; s < LEN(bounded); s++) {
        cc_queue *q = new_queue(bounded[s].kind, 2);
        void *item;
        int64_t t0 = cc_now();
        cc_deadline d = t0 + 20 * CC_MSEC;
        assert_int_equal(cc_queue_get(q, &item, d), -ETIMEDOUT);
        assert_true(cc_now() >= d);
        cc_queue_put(q, ITEM(1), CC_NOWAIT);
        cc_queue_put(q, ITEM(2), CC_NOWAIT);
        d = cc_deadline_in(20 * CC_MSEC);
        assert_int_equal(cc_queue_put(q, ITEM(3), d), -ETIMEDOUT);
        assert_true(cc_now() >= d);
        cc_queue_free(q);
    }
}

static void full_put_blocks_until_a_get(void **state)
{
    for (size_t s = 0; s < LEN(bounded); s++) {
        cc_queue *q = new_queue(bounded[s].kind, 2);
        cc_queue_put(q, ITEM(1), CC_NOWAIT);
        cc_queue_put(q, ITEM(2), CC_NOWAIT);
        struct caller c;
        start_call(&c, q, OP_PUT, ITEM(3));
        cc_sleep(20 * CC_MSEC);
        assert_false(atomic_load(&c.returned)); /* still blocked */
        void *item;
        assert_int_equal(cc_queue_get(q, &item, CC_NOWAIT), 0);
        assert_int_equal(finish_call(&c), 0);
        assert_int_equal(cc_queue_qsize(q), 2);
        cc_queue_free(q);
    }
}

static void empty_get_blocks_until_a_put(void **state)
{
    size_t sizes[] = {1, 2, 0};
    for (size_t s = 0; s < LEN(sizes); s++) {
        cc_queue *q = new_queue(CC_QUEUE_FIFO, sizes[s]);
        struct caller c;
        start_call(&c, q, OP_GET, NULL);
        cc_sleep(20 * CC_MSEC);
        assert_false(atomic_load(&c.returned));
        assert_int_equal(cc_queue_put(q, ITEM(42), CC_FOREVER), 0);
        assert_int_equal(finish_call(&c), 0);
        assert_int_equal(NUM(c.item), 42);
        cc_queue_free(q);
    }
}

/* ---- many producers and consumers ---------------------------------------- */

enum { PRODUCERS = 4, CONSUMERS = 4 };
#define STOP ((void *)UINTPTR_MAX)

struct mpmc {
    cc_queue *q;                 /* under test */
    long n;                      /* items in all, numbered 0..n-1 */
    atomic_long next_producer;   /* hands out producer indexes */
    atomic_uchar *seen;          /* times each item was got */
    atomic_long got;             /* items got in all */
};

static void *produce(void *arg)
{
    struct mpmc *m = arg;
    long p = atomic_fetch_add(&m->next_producer, 1);
    for (long i = p; i < m->n; i += PRODUCERS)
        assert_int_equal(cc_queue_put(m->q, ITEM(i), CC_FOREVER), 0);
    return NULL;
}

static void *consume(void *arg)
{
    struct mpmc *m = arg;
    for (;;) {
        void *item;
        assert_int_equal(cc_queue_get(m->q, &item, CC_FOREVER), 0);
        if (item == STOP)
            return NULL;
        assert_true(NUM(item) < (uintptr_t)m->n);
        atomic_fetch_add_explicit(&m->seen[NUM(item)], 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&m->got, 1, memory_order_relaxed);
    }
}

static void run_mpmc(cc_queue_kind kind, size_t maxsize, long n)
{
    struct mpmc m = {.q = new_queue(kind, maxsize), .n = n};
    m.seen = calloc(n, sizeof *m.seen);
    pthread_t prod[PRODUCERS], cons[CONSUMERS];
    for (int i = 0; i < CONSUMERS; i++)
        assert_int_equal(pthread_create(&cons[i], NULL, consume, &m), 0);
    for (int i = 0; i < PRODUCERS; i++)
        assert_int_equal(pthread_create(&prod[i], NULL, produce, &m), 0);
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(prod[i], NULL);
    /* All got before the stops are put: a LIFO would give the stops first. */
    cc_deadline lost = cc_deadline_in(60 * CC_SEC); /* then some are lost */
    while (atomic_load(&m.got) < n && cc_now() < lost)
        cc_sleep(CC_MSEC);
    for (int i = 0; i < CONSUMERS; i++)
        assert_int_equal(cc_queue_put(m.q, STOP, CC_FOREVER), 0);
    for (int i = 0; i < CONSUMERS; i++)
        pthread_join(cons[i], NULL);
    assert_int_equal(atomic_load(&m.got), n);
    for (long i = 0; i < n; i++)
        if (atomic_load(&m.seen[i]) != 1)
            fail_msg("item %ld got %d times", i, atomic_load(&m.seen[i]));
    assert_true(cc_queue_empty(m.q));
    free(m.seen);
    cc_queue_free(m.q);
}

static void mpmc_capacity_1_delivers_each_once(void **state)
{
    run_mpmc(CC_QUEUE_FIFO, 1, cc_test_n(1000000));
}

static void mpmc_capacity_1024_delivers_each_once(void **state)
{
    run_mpmc(CC_QUEUE_FIFO, 1024, cc_test_n(1000000));
}

static void mpmc_unbounded_delivers_each_once(void **state)
{
    run_mpmc(CC_QUEUE_FIFO, 0, cc_test_n(1000000));
}

static void mpmc_other_shapes_deliver_each_once(void **state)
{
    run_mpmc(CC_QUEUE_FIFO, 3, cc_test_n(200000)); /* ring indexed by % */
    run_mpmc(CC_QUEUE_LIFO, 16, cc_test_n(200000));
    run_mpmc(CC_QUEUE_PRIORITY, 16, cc_test_n(200000));
    run_mpmc(CC_QUEUE_FIFO, CC_QUEUE_RING_MAX + 1, cc_test_n(200000));
}

/* ---- task_done and join -------------------------------------------------- */

static void join_waits_for_every_task_done(void **state)
{
    const struct shape shapes[] = {{CC_QUEUE_FIFO, 4}, {CC_QUEUE_FIFO, 0},
                                   {CC_QUEUE_LIFO, 0}, {CC_QUEUE_PRIORITY, 4}};
    for (size_t s = 0; s < LEN(shapes); s++) {
        cc_queue *q = new_queue(shapes[s].kind, shapes[s].maxsize);
        assert_int_equal(cc_queue_join(q, CC_NOWAIT), 0); /* nothing put */
        assert_int_equal(cc_queue_task_done(q), -EINVAL);
        for (int i = 0; i < 3; i++)
            cc_queue_put(q, ITEM(i), CC_NOWAIT);
        struct caller c;
        start_call(&c, q, OP_JOIN, NULL);
        for (int i = 0; i < 3; i++) {
            void *item;
            assert_int_equal(cc_queue_get(q, &item, CC_NOWAIT), 0);
            cc_sleep(5 * CC_MSEC);
            assert_false(atomic_load(&c.returned));
            assert_int_equal(cc_queue_join(q, cc_deadline_in(CC_MSEC)), -ETIMEDOUT);
            assert_int_equal(cc_queue_task_done(q), 0);
        }
        assert_int_equal(finish_call(&c), 0);
        assert_int_equal(cc_queue_join(q, CC_NOWAIT), 0);
        assert_int_equal(cc_queue_task_done(q), -EINVAL); /* ValueError */
        cc_queue_free(q);
    }
}

/* ---- shutdown ------------------------------------------------------------ */

static const struct shape all_shapes[] = {
    {CC_QUEUE_FIFO, 4}, {CC_QUEUE_FIFO, 3}, {CC_QUEUE_FIFO, 0},
    {CC_QUEUE_LIFO, 4}, {CC_QUEUE_PRIORITY, 0},
};

static void shutdown_fails_puts_and_drains_gets(void **state)
{
    for (size_t s = 0; s < LEN(all_shapes); s++) {
        cc_queue *q = new_queue(all_shapes[s].kind, all_shapes[s].maxsize);
        cc_queue_put(q, ITEM(1), CC_NOWAIT);
        cc_queue_put(q, ITEM(2), CC_NOWAIT);
        assert_false(cc_queue_is_shutdown(q));
        cc_queue_shutdown(q, false);
        assert_true(cc_queue_is_shutdown(q));
        assert_int_equal(cc_queue_put(q, ITEM(3), CC_FOREVER), -ESHUTDOWN);
        assert_int_equal(cc_queue_put(q, ITEM(3), CC_NOWAIT), -ESHUTDOWN);
        void *item;
        assert_int_equal(cc_queue_get(q, &item, CC_FOREVER), 0);
        assert_int_equal(cc_queue_get(q, &item, CC_NOWAIT), 0);
        assert_int_equal(cc_queue_get(q, &item, CC_FOREVER), -ESHUTDOWN);
        assert_int_equal(cc_queue_get(q, &item, CC_NOWAIT), -ESHUTDOWN);
        assert_int_equal(cc_queue_task_done(q), 0);
        assert_int_equal(cc_queue_task_done(q), 0);
        assert_int_equal(cc_queue_join(q, CC_NOWAIT), 0);
        cc_queue_shutdown(q, true); /* again: allowed */
        cc_queue_free(q);
    }
}

static void count_drop(void *item, void *arg)
{
    (void)item;
    (*(int *)arg)++;
}

static void immediate_shutdown_drops_items(void **state)
{
    for (size_t s = 0; s < LEN(all_shapes); s++) {
        cc_queue *q = new_queue(all_shapes[s].kind, all_shapes[s].maxsize);
        int dropped = 0;
        cc_queue_set_destructor(q, count_drop, &dropped);
        for (int i = 0; i < 3; i++)
            cc_queue_put(q, ITEM(i), CC_NOWAIT);
        void *item;
        assert_int_equal(cc_queue_get(q, &item, CC_NOWAIT), 0);
        cc_queue_shutdown(q, true);
        assert_int_equal(dropped, 2);
        assert_true(cc_queue_empty(q));
        assert_int_equal(cc_queue_get(q, &item, CC_NOWAIT), -ESHUTDOWN);
        /* the item got is still unfinished; the dropped ones are done */
        assert_int_equal(cc_queue_join(q, CC_NOWAIT), -ETIMEDOUT);
        assert_int_equal(cc_queue_task_done(q), 0);
        assert_int_equal(cc_queue_join(q, CC_NOWAIT), 0);
        assert_int_equal(cc_queue_task_done(q), -EINVAL);
        cc_queue_free(q);
        assert_int_equal(dropped, 2);
    }
}

/* Python lets task_done run ahead of the gets (the count is of puts); the
 * items an immediate shutdown then drops count done only down to 0, so join
 * returns at once. */
static void immediate_shutdown_after_early_task_done_lets_join_return(void **state)
{
    for (size_t s = 0; s < LEN(all_shapes); s++) {
        cc_queue *q = new_queue(all_shapes[s].kind, all_shapes[s].maxsize);
        for (int i = 0; i < 2; i++)
            assert_int_equal(cc_queue_put(q, ITEM(i), CC_NOWAIT), 0);
        for (int i = 0; i < 2; i++)
            assert_int_equal(cc_queue_task_done(q), 0);
        assert_int_equal(cc_queue_task_done(q), -EINVAL);
        cc_queue_shutdown(q, true);
        assert_int_equal(cc_queue_join(q, CC_NOWAIT), 0);
        assert_int_equal(cc_queue_task_done(q), -EINVAL);
        cc_queue_free(q);
    }
}

static void free_passes_items_left_to_destructor(void **state)
{
    for (size_t s = 0; s < LEN(all_shapes); s++) {
        cc_queue *q = new_queue(all_shapes[s].kind, all_shapes[s].maxsize);
        int dropped = 0;
        cc_queue_set_destructor(q, count_drop, &dropped);
        for (int i = 0; i < 3; i++)
            cc_queue_put(q, ITEM(i), CC_NOWAIT);
        cc_queue_free(q);
        assert_int_equal(dropped, 3);
    }
}

enum { BLOCKED = 2 };

static void immediate_shutdown_wakes_every_blocked_caller(void **state)
{
    for (size_t s = 0; s < LEN(bounded); s++) {
        cc_queue *full = new_queue(bounded[s].kind, 2);
        cc_queue *empty = new_queue(bounded[s].kind, 2);
        cc_queue_put(full, ITEM(1), CC_NOWAIT);
        cc_queue_put(full, ITEM(2), CC_NOWAIT);
        struct caller put[BLOCKED], get[BLOCKED], join[BLOCKED];
        for (int i = 0; i < BLOCKED; i++) {
            start_call(&put[i], full, OP_PUT, ITEM(3));
            start_call(&join[i], full, OP_JOIN, NULL);
            start_call(&get[i], empty, OP_GET, NULL);
        }
        cc_sleep(20 * CC_MSEC); /* let them block */
        cc_queue_shutdown(full, true);
        cc_queue_shutdown(empty, true);
        for (int i = 0; i < BLOCKED; i++) {
            assert_int_equal(finish_call(&put[i]), -ESHUTDOWN);
            assert_int_equal(finish_call(&get[i]), -ESHUTDOWN);
            /* the dropped items count as done: join succeeds, as Python */
            assert_int_equal(finish_call(&join[i]), 0);
        }
        cc_queue_free(full);
        cc_queue_free(empty);
    }
}

static void shutdown_wakes_blocked_getters(void **state)
{
    cc_queue *q = new_queue(CC_QUEUE_FIFO, 8);
    struct caller get[BLOCKED];
    for (int i = 0; i < BLOCKED; i++)
        start_call(&get[i], q, OP_GET, NULL);
    cc_sleep(10 * CC_MSEC);
    cc_queue_shutdown(q, false);
    for (int i = 0; i < BLOCKED; i++)
        assert_int_equal(finish_call(&get[i]), -ESHUTDOWN);
    cc_queue_free(q);
}

/* One round of shutdown racing callers that are blocked or about to block.
 * Every item put is either got or dropped; no call hangs. */
static void race_shutdown_once(const struct shape *sh, bool immediate, long round)
{
    cc_queue *q = new_queue(sh->kind, sh->maxsize);
    int dropped = 0; /* written by the shutdown, in this thread */
    cc_queue_set_destructor(q, count_drop, &dropped);
    struct caller c[6];
    for (int i = 0; i < 3; i++)
        start_call(&c[i], q, OP_PUT, ITEM(i + 1));
    for (int i = 3; i < 6; i++)
        start_call(&c[i], q, OP_GET, NULL);
    if (round % 2)
        cc_sleep(50 * CC_USEC);
    cc_queue_shutdown(q, immediate);
    int put = 0, got = 0;
    for (int i = 0; i < 6; i++) {
        int r = finish_call(&c[i]);
        assert_true(r == 0 || r == -ESHUTDOWN);
        if (r == 0)
            *(i < 3 ? &put : &got) += 1;
    }
    void *item;
    while (cc_queue_get(q, &item, CC_NOWAIT) == 0)
        got++;
    assert_int_equal(put, got + dropped);
    cc_queue_free(q);
}

static void shutdown_races_blocked_callers(void **state)
{
    const struct shape shapes[] = {{CC_QUEUE_FIFO, 1}, {CC_QUEUE_FIFO, 2},
                                   {CC_QUEUE_LIFO, 1}, {CC_QUEUE_FIFO, 0}};
    long rounds = cc_test_n(400);
    for (long r = 0; r < rounds; r++)
        for (size_t s = 0; s < LEN(shapes); s++)
            race_shutdown_once(&shapes[s], r % 3 == 0, r);
}

/* ---- freed as soon as a call returns ------------------------------------ */

/*
 * The completion idiom, as for events and semaphores (test_sync.c): a thread
 * owns a queue, another one finishes it (puts the last item, gets the item
 * that frees the last place, marks the last task done, shuts it down), and
 * the owner frees the queue as soon as its own get (put, join) returns with
 * that result, while the finisher may still be returning from its call.
 * Under TSan or ASan the finisher's late accesses (its wake: the queue's
 * lock and wait queues) show as races with the free, or uses after it.
 */
enum { FREES = 2000 };

enum finish { FIN_PUT, FIN_GET, FIN_TASK_DONE, FIN_SHUTDOWN };

struct finisher {
    _Atomic(cc_queue *) mailbox; /* the next queue to finish, or NULL */
    enum finish how;             /* what the finisher does to it */
    atomic_int failures;         /* its calls that returned wrongly */
};

/* The ring's owner is about to park (white box): it announced itself
 * where the finisher's call looks. The windows are around this moment. */
static bool owner_announced(cc_queue *q, enum finish how)
{
    cc__atomic_u32 *n = how == FIN_PUT   ? &q->ring.get_waiters
                        : how == FIN_GET ? &q->ring.put_waiters
                                         : &q->ring.join_waiters;
    return atomic_load(n) != 0;
}

/* Odd rounds on a ring: wait until the owner announces itself; else let
 * 0 to 15 yields pass, so that the owner is still spinning, about to park
 * or parked (the locked queues' paths). */
static void pick_moment(cc_queue *q, enum finish how, int i)
{
    if (q->ring_mode && how != FIN_SHUTDOWN && i % 2) {
        while (!owner_announced(q, how))
            cc__cpu_relax();
        return;
    }
    for (int k = 0; k < i % 16; k++)
        sched_yield();
}

/* Returns whether the call did what it should (asserts are for the main
 * thread). */
static bool finish_one(cc_queue *q, enum finish how, int i)
{
    void *item;
    if (how == FIN_TASK_DONE && cc_queue_get(q, &item, CC_FOREVER) != 0)
        return false;
    pick_moment(q, how, i);
    switch (how) {
    case FIN_PUT:
        return cc_queue_put(q, ITEM(1), CC_FOREVER) == 0;
    case FIN_GET:
        return cc_queue_get(q, &item, CC_FOREVER) == 0;
    case FIN_TASK_DONE:
        return cc_queue_task_done(q) == 0;
    default:
        cc_queue_shutdown(q, i % 4 < 2);
        return true;
    }
}

static void *finish_each(void *arg)
{
    struct finisher *f = arg;
    for (int i = 0; i < FREES; i++) {
        cc_queue *q;
        while (!(q = atomic_exchange(&f->mailbox, NULL)))
            sched_yield();
        if (!finish_one(q, f->how, i))
            atomic_fetch_add(&f->failures, 1);
    }
    return NULL;
}

/* The owner's side: hand q over, wait for the finisher's effect, free q. */
static void own_one(struct finisher *f, const struct shape *sh)
{
    cc_queue *q = new_queue(sh->kind, sh->maxsize);
    void *item;
    if (f->how == FIN_GET) /* fill it: our put waits for the finisher's get */
        assert_int_equal(cc_queue_put(q, ITEM(1), CC_NOWAIT), 0);
    if (f->how == FIN_TASK_DONE)
        assert_int_equal(cc_queue_put(q, ITEM(1), CC_NOWAIT), 0);
    atomic_store(&f->mailbox, q);
    if (f->how == FIN_PUT)
        assert_int_equal(cc_queue_get(q, &item, CC_FOREVER), 0);
    else if (f->how == FIN_GET)
        assert_int_equal(cc_queue_put(q, ITEM(2), CC_FOREVER), 0);
    else if (f->how == FIN_TASK_DONE)
        assert_int_equal(cc_queue_join(q, CC_FOREVER), 0);
    else
        assert_int_equal(cc_queue_get(q, &item, CC_FOREVER), -ESHUTDOWN);
    cc_queue_free(q);
}

static void free_as_soon_as_finished(enum finish how, const struct shape *sh,
                                     size_t n)
{
    struct finisher f = {.how = how};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, finish_each, &f), 0);
    for (int i = 0; i < FREES; i++)
        own_one(&f, &sh[i % n]);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(atomic_load(&f.failures), 0);
}

/* Capacity 1: a put after one fills it (and the ring at its smallest). */
static const struct shape capacity_1[] = {
    {CC_QUEUE_FIFO, 1}, {CC_QUEUE_LIFO, 1}, {CC_QUEUE_PRIORITY, 1},
};

static void queue_freed_as_soon_as_get_returns(void **state)
{
    free_as_soon_as_finished(FIN_PUT, all_shapes, LEN(all_shapes));
}

static void queue_freed_as_soon_as_put_returns(void **state)
{
    free_as_soon_as_finished(FIN_GET, capacity_1, LEN(capacity_1));
}

static void queue_freed_as_soon_as_join_returns(void **state)
{
    free_as_soon_as_finished(FIN_TASK_DONE, all_shapes, LEN(all_shapes));
}

static void queue_freed_as_soon_as_get_sees_shutdown(void **state)
{
    free_as_soon_as_finished(FIN_SHUTDOWN, all_shapes, LEN(all_shapes));
}

/* ---- a snapshot, then a call that does not wait ---------------------------- */

struct snap {
    cc_queue *q;
    long n;          /* items to pass */
    atomic_long bad; /* NOWAIT calls that failed after the snapshot said go */
};

/* The only getter: each time empty() says there is an item, a get that
 * does not wait must have it (as with Python's Queue and one consumer). */
static void *get_after_not_empty(void *arg)
{
    struct snap *s = arg;
    for (long got = 0; got < s->n;) {
        if (cc_queue_empty(s->q))
            continue;
        void *item;
        if (cc_queue_get(s->q, &item, CC_NOWAIT) == 0)
            got++;
        else
            atomic_fetch_add(&s->bad, 1);
    }
    return NULL;
}

/* The only putter, the same way with full(). */
static void *put_after_not_full(void *arg)
{
    struct snap *s = arg;
    for (long put = 0; put < s->n;) {
        if (cc_queue_full(s->q))
            continue;
        if (cc_queue_put(s->q, (void *)(intptr_t)(put + 1), CC_NOWAIT) == 0)
            put++;
        else
            atomic_fetch_add(&s->bad, 1);
    }
    return NULL;
}

static void nowait_after_a_snapshot_that_said_go(void **state)
{
    (void)state;
    const size_t caps[] = {1, 2, 64}; /* the ring, at every size */
    for (size_t k = 0; k < sizeof caps / sizeof caps[0]; k++) {
        struct snap s = {new_queue(CC_QUEUE_FIFO, caps[k]), cc_test_n(300000), 0};
        pthread_t t[2];
        assert_int_equal(pthread_create(&t[0], NULL, get_after_not_empty, &s), 0);
        assert_int_equal(pthread_create(&t[1], NULL, put_after_not_full, &s), 0);
        pthread_join(t[0], NULL);
        pthread_join(t[1], NULL);
        assert_int_equal(atomic_load(&s.bad), 0);
        cc_queue_free(s.q);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CC_TEST(fifo_gives_first_put_first),
        CC_TEST(fifo_order_survives_wraparound),
        CC_TEST(lifo_gives_last_put_first),
        CC_TEST(priority_gives_lowest_first_fifo_among_equal),
        CC_TEST(priority_heap_sorts_many),
        CC_TEST(put_priority_needs_a_priority_queue),
        CC_TEST(allocation_failures_return_enomem),
        CC_TEST(qsize_empty_full_track_items),
        CC_TEST(nowait_fails_at_once_when_full_or_empty),
        CC_TEST(timed_put_and_get_never_return_early),
        CC_TEST(full_put_blocks_until_a_get),
        CC_TEST(empty_get_blocks_until_a_put),
        CC_TEST(mpmc_capacity_1_delivers_each_once),
        CC_TEST(mpmc_capacity_1024_delivers_each_once),
        CC_TEST(mpmc_unbounded_delivers_each_once),
        CC_TEST(mpmc_other_shapes_deliver_each_once),
        CC_TEST(join_waits_for_every_task_done),
        CC_TEST(shutdown_fails_puts_and_drains_gets),
        CC_TEST(immediate_shutdown_drops_items),
        CC_TEST(immediate_shutdown_after_early_task_done_lets_join_return),
        CC_TEST(free_passes_items_left_to_destructor),
        CC_TEST(immediate_shutdown_wakes_every_blocked_caller),
        CC_TEST(shutdown_wakes_blocked_getters),
        CC_TEST(shutdown_races_blocked_callers),
        CC_TEST(queue_freed_as_soon_as_get_returns),
        CC_TEST(queue_freed_as_soon_as_put_returns),
        CC_TEST(queue_freed_as_soon_as_join_returns),
        CC_TEST(queue_freed_as_soon_as_get_sees_shutdown),
        CC_TEST(nowait_after_a_snapshot_that_said_go),
    };
    return CC_RUN_TESTS(tests);
}
