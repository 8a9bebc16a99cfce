/*
 * test_wait_any_queue.c: cc_wait_any on queues (include/concur/loop.h), for
 * every queue kind (the lock-free ring and the locked FIFO, LIFO, priority
 * queues): a put from another thread wakes it with the right index beside a
 * second queue and a timer; a non-empty queue is ready at once; a getter
 * blocked on the same queue still gets its item (no stolen wakeup); the
 * deadline; shutdown wakes; from a task, woken by a thread, by a task of
 * another loop and of its own; and a stress of puts, gets and waiters
 * (threads and tasks) that loses nothing, with and without a real getter.
 */
#include "testutil.h"

#include "loop_helpers.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

/* The queue kinds to try: the ring, then each locked kind. */
static const struct qkind {
    cc_queue_kind kind; /* which queue */
    size_t maxsize;     /* its bound (8: the ring) */
} kinds[] = {
    {CC_QUEUE_FIFO, 8},
    {CC_QUEUE_FIFO, 0},
    {CC_QUEUE_LIFO, 0},
    {CC_QUEUE_PRIORITY, 4},
};
enum { NKINDS = sizeof kinds / sizeof kinds[0] };

static cc_queue *new_queue(int k)
{
    cc_queue *q;
    if (cc_queue_new(&q, kinds[k].kind, kinds[k].maxsize) != 0)
        abort();
    return q;
}

/* What a helper thread does after `delay_ns`: put `item`, or shut down. */
struct later {
    cc_queue *q;      /* the queue */
    int64_t delay_ns; /* how long to sleep first */
    void *item;       /* the item to put */
    int shutdown;     /* 0: put; 1: shutdown; 2: immediate shutdown */
};

static void *act_later(void *arg)
{
    struct later *l = arg;
    cc_sleep(l->delay_ns);
    if (l->shutdown)
        cc_queue_shutdown(l->q, l->shutdown == 2);
    else if (cc_queue_put(l->q, l->item, CC_FOREVER) != 0)
        abort();
    return NULL;
}

static void qwait(cc_waitable *w, cc_queue *q)
{
    *w = (cc_waitable){.kind = CC_WAIT_QUEUE, .queue = q};
}

/* ---- from threads ------------------------------------------------------ */

static void test_two_queues_and_timer(void **state)
{
    for (int k = 0; k < NKINDS; k++) {
        cc_queue *a = new_queue(k), *b = new_queue(k);
        cc_waitable w[3];
        qwait(&w[0], a);
        qwait(&w[1], b);
        w[2] = (cc_waitable){.kind = CC_WAIT_TIMER,
                             .at = cc_deadline_in(60 * CC_SEC)};
        struct later l = {.q = b, .delay_ns = 20 * CC_MSEC, .item = &l};
        cc_thread *t = start(act_later, &l);
        assert_int_equal(cc_wait_any(w, 3, cc_deadline_in(60 * CC_SEC)), 1);
        join(t);
        assert_int_equal(w[0].ready, 0);
        assert_true(w[1].ready != 0);
        assert_int_equal(w[2].ready, 0);
        void *got = NULL;
        assert_int_equal(cc_queue_get(b, &got, CC_NOWAIT), 0);
        assert_ptr_equal(got, &l);
        /* Nothing queued now: the timer wins, never early. */
        int64_t t0 = cc_now();
        w[2].at = t0 + 20 * CC_MSEC;
        assert_int_equal(cc_wait_any(w, 3, cc_deadline_in(60 * CC_SEC)), 2);
        assert_true(cc_now() - t0 >= 20 * CC_MSEC);
        assert_int_equal(w[0].ready + w[1].ready, 0);
        cc_queue_free(a);
        cc_queue_free(b);
    }
}

static void test_ready_at_once(void **state)
{
    for (int k = 0; k < NKINDS; k++) {
        cc_queue *a = new_queue(k), *b = new_queue(k);
        cc_waitable w[2];
        qwait(&w[0], a);
        qwait(&w[1], b);
        assert_int_equal(cc_wait_any(w, 2, CC_NOWAIT), -ETIMEDOUT);
        assert_int_equal(cc_queue_put(b, NULL, CC_NOWAIT), 0);
        assert_int_equal(cc_queue_put(a, NULL, CC_NOWAIT), 0);
        assert_int_equal(cc_wait_any(w, 2, CC_FOREVER), 0);
        assert_true(w[0].ready && w[1].ready); /* both, lowest returned */
        void *got;
        assert_int_equal(cc_queue_get(a, &got, CC_NOWAIT), 0);
        /* The first wait consumed nothing: b is still ready. */
        assert_int_equal(cc_wait_any(w, 2, CC_NOWAIT), 1);
        assert_int_equal(cc_queue_get(b, &got, CC_NOWAIT), 0);
        assert_int_equal(cc_wait_any(w, 2, CC_NOWAIT), -ETIMEDOUT);
        cc_queue_free(a);
        cc_queue_free(b);
    }
}

/* A thread with an fd too sleeps in ppoll(); the put writes its eventfd. */
static void test_queue_and_fd(void **state)
{
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
    for (int k = 0; k < NKINDS; k++) {
        cc_queue *q = new_queue(k);
        cc_waitable w[2] = {{.kind = CC_WAIT_FD, .fd = p[0], .events = POLLIN}};
        qwait(&w[1], q);
        struct later l = {.q = q, .delay_ns = 20 * CC_MSEC};
        cc_thread *t = start(act_later, &l);
        assert_int_equal(cc_wait_any(w, 2, cc_deadline_in(60 * CC_SEC)), 1);
        join(t);
        assert_int_equal(w[0].ready, 0);
        cc_queue_free(q);
    }
    close(p[0]);
    close(p[1]);
}

static void test_deadline(void **state)
{
    for (int k = 0; k < NKINDS; k++) {
        cc_queue *a = new_queue(k), *b = new_queue(k);
        cc_waitable w[2];
        qwait(&w[0], a);
        qwait(&w[1], b);
        int64_t t0 = cc_now();
        assert_int_equal(cc_wait_any(w, 2, t0 + 20 * CC_MSEC), -ETIMEDOUT);
        assert_true(cc_now() - t0 >= 20 * CC_MSEC);
        assert_int_equal(w[0].ready + w[1].ready, 0);
        /* The subscriptions are gone: puts later reach nobody stale. */
        assert_int_equal(cc_queue_put(a, NULL, CC_NOWAIT), 0);
        void *got;
        assert_int_equal(cc_queue_get(a, &got, CC_NOWAIT), 0);
        cc_queue_free(a);
        cc_queue_free(b);
    }
}

static void test_shutdown_wakes(void **state)
{
    for (int k = 0; k < NKINDS; k++) {
        for (int how = 1; how <= 2; how++) {
            cc_queue *a = new_queue(k), *b = new_queue(k);
            cc_waitable w[2];
            qwait(&w[0], a);
            qwait(&w[1], b);
            struct later l = {.q = b, .delay_ns = 20 * CC_MSEC,
                              .shutdown = how};
            cc_thread *t = start(act_later, &l);
            assert_int_equal(cc_wait_any(w, 2, cc_deadline_in(60 * CC_SEC)), 1);
            join(t);
            void *got;
            assert_int_equal(cc_queue_get(b, &got, CC_NOWAIT), -ESHUTDOWN);
            /* A shut queue stays ready. */
            assert_int_equal(cc_wait_any(w, 2, CC_NOWAIT), 1);
            cc_queue_free(a);
            cc_queue_free(b);
        }
    }
}

/* Shut down with items left: ready for them, then for the error. */
static void test_shutdown_with_items(void **state)
{
    for (int k = 0; k < NKINDS; k++) {
        cc_queue *q = new_queue(k);
        cc_waitable w;
        qwait(&w, q);
        assert_int_equal(cc_queue_put(q, &w, CC_NOWAIT), 0);
        cc_queue_shutdown(q, false);
        void *got = NULL;
        assert_int_equal(cc_wait_any(&w, 1, CC_NOWAIT), 0);
        assert_int_equal(cc_queue_get(q, &got, CC_NOWAIT), 0);
        assert_ptr_equal(got, &w);
        assert_int_equal(cc_wait_any(&w, 1, CC_NOWAIT), 0);
        assert_int_equal(cc_queue_get(q, &got, CC_NOWAIT), -ESHUTDOWN);
        cc_queue_free(q);
    }
}

static void test_invalid(void **state)
{
    cc_waitable w = {.kind = CC_WAIT_QUEUE};
    assert_int_equal(cc_wait_any(&w, 1, CC_NOWAIT), -EINVAL);
}

/* ---- a blocked getter keeps its wakeup ---------------------------------- */

struct getter {
    cc_queue *q;  /* the queue */
    void *item;   /* what the get returned */
    int r;        /* its result */
};

static void *get_one(void *arg)
{
    struct getter *g = arg;
    g->r = cc_queue_get(g->q, &g->item, cc_deadline_in(10 * CC_SEC));
    return NULL;
}

struct watcher {
    cc_queue *q; /* the queue watched */
    int r;       /* cc_wait_any's result */
};

static void *watch(void *arg)
{
    struct watcher *wt = arg;
    cc_waitable w;
    qwait(&w, wt->q);
    wt->r = cc_wait_any(&w, 1, cc_deadline_in(60 * CC_SEC));
    return NULL;
}

/* The watcher subscribes first, so a subscription that took a getter's
 * place in the wake order would take this put's wakeup from the getter,
 * which would then time out. The watcher re-checks when woken, finds the
 * queue empty again, and waits on for the second put. */
static void test_getter_not_robbed(void **state)
{
    for (int k = 0; k < NKINDS; k++) {
        cc_queue *q = new_queue(k);
        struct watcher wt = {.q = q, .r = -1};
        cc_thread *tw = start(watch, &wt);
        cc_sleep(20 * CC_MSEC);
        struct getter g = {.q = q};
        cc_thread *tg = start(get_one, &g);
        cc_sleep(20 * CC_MSEC);
        assert_int_equal(cc_queue_put(q, &g, CC_FOREVER), 0);
        join(tg);
        assert_int_equal(g.r, 0);
        assert_ptr_equal(g.item, &g);
        assert_int_equal(cc_queue_put(q, &wt, CC_FOREVER), 0);
        join(tw);
        assert_int_equal(wt.r, 0);
        void *got;
        assert_int_equal(cc_queue_get(q, &got, CC_NOWAIT), 0);
        assert_ptr_equal(got, &wt);
        cc_queue_free(q);
    }
}

/* ---- from tasks ---------------------------------------------------------- */

struct ticker {
    volatile bool stop;  /* set by the task under test (same thread) */
    _Atomic long ticks;  /* 1 ms sleeps done (read by the putter) */
};

static int tick(void *arg, void **result)
{
    struct ticker *t = arg;
    while (!t->stop) {
        cc_sleep(CC_MSEC);
        t->ticks++;
    }
    return 0;
}

/* A task waiting on two queues and a timer, beside a ticker task that can
 * only run while the waiter is parked. The putter waits for a tick first,
 * so the put always finds the waiter parked, however slow the machine. */
struct task_wait {
    cc_queue *a, *b; /* the queues */
    struct ticker t; /* the waiter's ticker */
    int got;         /* cc_wait_any's result */
};

/* Until the waiter has parked (30 s at most); whether it has. */
static bool waiter_parked(struct task_wait *tw)
{
    cc_deadline end = cc_deadline_in(30 * CC_SEC);
    while (tw->t.ticks == 0 && cc_now() < end)
        cc_sleep(CC_MSEC);
    return tw->t.ticks > 0;
}

static int wait_in_task(void *arg, void **result)
{
    struct task_wait *tw = arg;
    cc_future *tf;
    if (cc_spawn(tick, &tw->t, &tf) != 0)
        abort();
    cc_waitable w[3];
    qwait(&w[0], tw->a);
    qwait(&w[1], tw->b);
    w[2] = (cc_waitable){.kind = CC_WAIT_TIMER,
                         .at = cc_deadline_in(60 * CC_SEC)};
    tw->got = cc_wait_any(w, 3, cc_deadline_in(60 * CC_SEC));
    tw->t.stop = true;
    cc_future_wait(tf, CC_FOREVER);
    cc_future_release(tf);
    return 0;
}

/* A thread puts on b once the waiter parked. */
static void *put_b_when_parked(void *arg)
{
    struct task_wait *tw = arg;
    if (!waiter_parked(tw) || cc_queue_put(tw->b, NULL, CC_FOREVER) != 0)
        abort();
    return NULL;
}

static void test_task_woken_by_thread(void **state)
{
    for (int k = 0; k < NKINDS; k++) {
        struct task_wait tw = {.a = new_queue(k), .b = new_queue(k), .got = -1};
        cc_thread *t = start(put_b_when_parked, &tw);
        assert_int_equal(cc_loop_run(wait_in_task, &tw, NULL), 0);
        join(t);
        assert_int_equal(tw.got, 1);
        cc_queue_free(tw.a);
        cc_queue_free(tw.b);
    }
}

static void *loop_thread(void *arg)
{
    if (cc_loop_run(wait_in_task, arg, NULL) != 0)
        abort();
    return NULL;
}

/* A task puts on a once the waiter (on another loop) parked. */
static int put_a_when_parked(void *arg, void **result)
{
    struct task_wait *tw = arg;
    if (!waiter_parked(tw))
        return -1;
    return cc_queue_put(tw->a, NULL, CC_FOREVER);
}

/* A task of this thread's loop puts; the task waits on another loop. */
static void test_task_woken_by_other_loop(void **state)
{
    for (int k = 0; k < NKINDS; k++) {
        struct task_wait tw = {.a = new_queue(k), .b = new_queue(k), .got = -1};
        cc_thread *t = start(loop_thread, &tw);
        assert_int_equal(cc_loop_run(put_a_when_parked, &tw, NULL), 0);
        join(t);
        assert_int_equal(tw.got, 0);
        cc_queue_free(tw.a);
        cc_queue_free(tw.b);
    }
}

static int wait_beside_putter(void *arg, void **result)
{
    cc_future *putter;
    if (cc_spawn(put_a_when_parked, arg, &putter) != 0)
        abort();
    wait_in_task(arg, result);
    cc_future_wait(putter, CC_FOREVER);
    int r = cc_future_error(putter);
    cc_future_release(putter);
    return r;
}

/* The putter is a task of the waiter's own loop. */
static void test_task_woken_by_same_loop(void **state)
{
    for (int k = 0; k < NKINDS; k++) {
        struct task_wait tw = {.a = new_queue(k), .b = new_queue(k), .got = -1};
        assert_int_equal(cc_loop_run(wait_beside_putter, &tw, NULL), 0);
        assert_int_equal(tw.got, 0);
        cc_queue_free(tw.a);
        cc_queue_free(tw.b);
    }
}

/* ---- stress -------------------------------------------------------------- */

enum { S_PUTTERS = 2, S_GETTERS = 1, S_WATCHERS = 2, S_TASKS = 2 };

struct stress {
    cc_queue *q;         /* the queue under test */
    cc_queue *idle;      /* a second queue the watchers watch, never put */
    long n;              /* items per putter */
    _Atomic long count;  /* items got */
    _Atomic long sum;    /* their sum */
};

static void *stress_put(void *arg)
{
    struct stress *s = arg;
    for (long i = 1; i <= s->n; i++)
        if (cc_queue_put(s->q, (void *)(intptr_t)i, CC_FOREVER) != 0)
            abort();
    return NULL;
}

static void got(struct stress *s, void *item)
{
    s->count++;
    s->sum += (intptr_t)item;
}

static void *stress_get(void *arg)
{
    struct stress *s = arg;
    void *item;
    while (cc_queue_get(s->q, &item, CC_FOREVER) == 0)
        got(s, item);
    return NULL;
}

/* Watch both queues, get with CC_NOWAIT, until the queue is shut down and
 * drained. From a thread or a task. */
static void watch_and_get(struct stress *s)
{
    cc_waitable w[2];
    qwait(&w[0], s->idle);
    qwait(&w[1], s->q);
    for (;;) {
        if (cc_wait_any(w, 2, cc_deadline_in(60 * CC_SEC)) != 1)
            abort();
        void *item;
        int r = cc_queue_get(s->q, &item, CC_NOWAIT);
        if (r == -ESHUTDOWN)
            return;
        if (r == 0)
            got(s, item);
        else if (r != -ETIMEDOUT) /* another getter won: a hint */
            abort();
    }
}

static void *stress_watch(void *arg)
{
    watch_and_get(arg);
    return NULL;
}

static int stress_task(void *arg, void **result)
{
    watch_and_get(arg);
    return 0;
}

static int stress_loop_main(void *arg, void **result)
{
    cc_future *f[S_TASKS];
    for (int i = 0; i < S_TASKS; i++)
        if (cc_spawn(stress_task, arg, &f[i]) != 0)
            abort();
    for (int i = 0; i < S_TASKS; i++) {
        cc_future_wait(f[i], CC_FOREVER);
        cc_future_release(f[i]);
    }
    return 0;
}

static void *stress_loop(void *arg)
{
    if (cc_loop_run(stress_loop_main, arg, NULL) != 0)
        abort();
    return NULL;
}

/* Wait (up to 30 s) until the consumers have got `total` items: with only
 * cc_wait_any consumers, a lost notification leaves items queued. */
static long wait_count(struct stress *s, long total)
{
    cc_deadline end = cc_deadline_in(30 * CC_SEC);
    while (s->count < total && cc_now() < end)
        cc_sleep(CC_MSEC);
    return s->count;
}

/* `getters` real getters beside the watching threads and tasks. */
static void stress_one(int k, int getters)
{
    struct stress s = {.q = new_queue(k), .idle = new_queue(k),
                       .n = cc_test_n(20000)};
    cc_thread *t[S_PUTTERS + S_GETTERS + S_WATCHERS + 1];
    int nt = 0;
    for (int i = 0; i < getters; i++)
        t[nt++] = start(stress_get, &s);
    for (int i = 0; i < S_WATCHERS; i++)
        t[nt++] = start(stress_watch, &s);
    t[nt++] = start(stress_loop, &s);
    for (int i = 0; i < S_PUTTERS; i++)
        t[nt++] = start(stress_put, &s);
    for (int i = nt - S_PUTTERS; i < nt; i++)
        join(t[i]);
    long total = S_PUTTERS * s.n;
    long count = wait_count(&s, total);
    cc_queue_shutdown(s.q, false); /* the consumers stop */
    for (int i = 0; i < nt - S_PUTTERS; i++)
        join(t[i]);
    assert_int_equal(count, total);
    assert_int_equal(s.count, total);
    assert_int_equal(s.sum, S_PUTTERS * s.n * (s.n + 1) / 2);
    cc_queue_free(s.q);
    cc_queue_free(s.idle);
}

/* Only cc_wait_any consumers: every item must reach one of them. */
static void test_stress_watchers(void **state)
{
    for (int k = 0; k < NKINDS; k++)
        stress_one(k, 0);
}

/* With a getter blocked in cc_queue_get too. */
static void test_stress_with_getter(void **state)
{
    for (int k = 0; k < NKINDS; k++)
        stress_one(k, S_GETTERS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CC_TEST(test_two_queues_and_timer),
        CC_TEST(test_ready_at_once),
        CC_TEST(test_queue_and_fd),
        CC_TEST(test_deadline),
        CC_TEST(test_shutdown_wakes),
        CC_TEST(test_shutdown_with_items),
        CC_TEST(test_invalid),
        CC_TEST(test_getter_not_robbed),
        CC_TEST(test_task_woken_by_thread),
        CC_TEST(test_task_woken_by_other_loop),
        CC_TEST(test_task_woken_by_same_loop),
        CC_TEST(test_stress_watchers),
        CC_TEST(test_stress_with_getter),
    };
    return CC_RUN_TESTS(tests);
}
