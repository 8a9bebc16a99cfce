/*
 * test_loop_wait.c: the "one way to wait" between tasks of an event loop and
 * threads (include/concur/loop.h): events, locks, rlocks, conditions,
 * barriers, queues, thread-pool futures and thread joins park the task, not
 * the loop, and wake across threads both ways.
 */
#include "testutil.h"

#include "loop_helpers.h"

#include <stdatomic.h>

/* ---- events and locks between threads and tasks ---------------------------- */

struct event_run {
    cc_event ev;       /* set by a thread */
    cc_lock lock;      /* released by a task, wanted by a thread */
    long waiters;      /* tasks that waited on ev */
    long woken;        /* and were woken */
    long ticks;        /* a ticker's rounds while the others waited */
    bool stop;         /* the ticker stops */
    int thread_lock;   /* the thread's cc_lock_acquire result */
};

static void *set_later(void *arg)
{
    cc_sleep(20 * CC_MSEC);
    cc_event_set(&((struct event_run *)arg)->ev);
    return NULL;
}

static void *take_lock(void *arg)
{
    struct event_run *e = arg;
    e->thread_lock = cc_lock_acquire(&e->lock, cc_deadline_in(60 * CC_SEC));
    cc_lock_release(&e->lock);
    return NULL;
}

static int ev_waiter(void *arg, void **result)
{
    struct event_run *e = arg;
    if (cc_event_wait(&e->ev, cc_deadline_in(60 * CC_SEC)) == 0)
        e->woken++;
    return 0;
}

static int ticker(void *arg, void **result)
{
    struct event_run *e = arg;
    while (!e->stop) {
        e->ticks++;
        cc_sleep(CC_MSEC / 2);
    }
    return 0;
}

static int event_main(void *arg, void **result)
{
    struct event_run *e = arg;
    cc_spawn(ticker, e, NULL);
    for (long i = 0; i < e->waiters; i++)
        cc_spawn(ev_waiter, e, NULL);
    join(start(set_later, e)); /* parks this task: the others run */
    cc_lock_acquire(&e->lock, CC_FOREVER);
    cc_thread *t = start(take_lock, e);
    cc_sleep(10 * CC_MSEC); /* the thread is blocked on the lock by now */
    cc_lock_release(&e->lock);
    join(t);
    e->stop = true;
    return 0;
}

static void test_event_and_lock_across_threads(void **state)
{
    (void)state;
    struct event_run e = {.waiters = 100};
    cc_event_init(&e.ev);
    cc_lock_init(&e.lock);
    assert_int_equal(cc_loop_run(event_main, &e, NULL), 0);
    assert_int_equal(e.woken, e.waiters);
    assert_true(e.ticks > 0); /* the loop ran while its tasks waited */
    assert_int_equal(e.thread_lock, 0);
    cc_lock_destroy(&e.lock);
    cc_event_destroy(&e.ev);
}

/* ---- a queue from threads to tasks ---------------------------------------- */

enum { PRODUCERS = 2, CONSUMERS = 4 };

struct queue_run {
    cc_queue *q;            /* the queue under test */
    long per_producer;      /* items each thread puts */
    atomic_uchar *seen;     /* how often each item was got */
    long got;               /* items got by the tasks */
    int errors;             /* failed puts or gets */
};

struct producer {
    struct queue_run *run; /* shared */
    long first;            /* first item number */
};

static void *produce(void *arg)
{
    struct producer *p = arg;
    for (long i = 0; i < p->run->per_producer; i++)
        if (cc_queue_put(p->run->q, (void *)(intptr_t)(p->first + i + 1),
                         CC_FOREVER) != 0)
            p->run->errors++;
    return NULL;
}

static int consume(void *arg, void **result)
{
    struct queue_run *run = arg;
    for (;;) {
        void *item;
        if (cc_queue_get(run->q, &item, CC_FOREVER) != 0) {
            run->errors++;
            return 0;
        }
        if (item == NULL) /* the stop sign */
            return 0;
        atomic_fetch_add(&run->seen[(intptr_t)item - 1], 1);
        run->got++;
    }
}

static int queue_main(void *arg, void **result)
{
    struct queue_run *run = arg;
    struct producer ps[PRODUCERS];
    cc_thread *ts[PRODUCERS];
    cc_future *cs[CONSUMERS];
    for (int i = 0; i < CONSUMERS; i++)
        cc_spawn(consume, run, &cs[i]);
    for (int i = 0; i < PRODUCERS; i++) {
        ps[i] = (struct producer){run, i * run->per_producer};
        ts[i] = start(produce, &ps[i]);
    }
    for (int i = 0; i < PRODUCERS; i++)
        join(ts[i]);
    for (int i = 0; i < CONSUMERS; i++)
        cc_queue_put(run->q, NULL, CC_FOREVER);
    cc_futures_wait(cs, CONSUMERS, CC_ALL_COMPLETED, CC_FOREVER);
    for (int i = 0; i < CONSUMERS; i++)
        cc_future_release(cs[i]);
    return 0;
}

static void run_queue(size_t maxsize)
{
    struct queue_run run = {.per_producer = cc_test_n(100000)};
    long n = PRODUCERS * run.per_producer;
    run.seen = calloc(n, sizeof *run.seen);
    assert_int_equal(cc_queue_new(&run.q, CC_QUEUE_FIFO, maxsize), 0);
    assert_int_equal(cc_loop_run(queue_main, &run, NULL), 0);
    assert_int_equal(run.errors, 0);
    assert_int_equal(run.got, n);
    for (long i = 0; i < n; i++)
        assert_int_equal(run.seen[i], 1);
    cc_queue_free(run.q);
    free(run.seen);
}

static void test_queue_threads_to_tasks(void **state)
{
    (void)state;
    run_queue(8); /* the lock-free ring, often full and empty */
    run_queue(0); /* the unbounded locked store */
}

/* ---- a thread-pool future awaited from a task -------------------------------- */

struct pool_run {
    long ticks_before;  /* ticker rounds when the wait began */
    long ticks;         /* ticker rounds so far */
    bool stop;          /* the ticker stops */
    intptr_t value;     /* the pool task's result, as the task got it */
};

static int slow_task(void *arg, void **result)
{
    cc_sleep(50 * CC_MSEC); /* a pool thread: blocks that thread */
    *result = (void *)(intptr_t)7;
    return 0;
}

static int pool_ticker(void *arg, void **result)
{
    struct pool_run *p = arg;
    while (!p->stop) {
        p->ticks++;
        cc_yield();
    }
    return 0;
}

static int pool_main(void *arg, void **result)
{
    struct pool_run *p = arg;
    cc_executor *ex;
    if (cc_thread_pool_new(&ex, &(cc_thread_pool_options){.max_workers = 1}))
        return -ENOMEM;
    cc_future *f;
    cc_executor_submit(ex, slow_task, NULL, &f);
    cc_spawn(pool_ticker, p, NULL);
    p->ticks_before = p->ticks;
    void *v = NULL;
    cc_future_result(f, CC_FOREVER, &v);
    p->value = (intptr_t)v;
    p->stop = true;
    cc_future_release(f);
    cc_executor_free(ex);
    return 0;
}

static void test_pool_future_does_not_block_loop(void **state)
{
    (void)state;
    struct pool_run p = {0};
    assert_int_equal(cc_loop_run(pool_main, &p, NULL), 0);
    assert_int_equal(p.value, 7);
    assert_int_equal(p.ticks_before, 0);
    assert_true(p.ticks > 10); /* it ran all along the 50 ms wait */
}

/* ---- rlock, condition, barrier between tasks and threads ------------------ */

struct sync_run {
    cc_rlock rl;          /* held by one task while another tries it */
    int other_try;        /* the second task's NOWAIT acquire */
    int other_wait;       /* its blocking acquire, after the first lets go */
    cc_lock lock;         /* the condition's lock */
    cc_cond cond;         /* a thread notifies a task */
    bool flag;            /* the condition's predicate, under lock */
    int cond_r;           /* the task's cc_cond_wait_for result */
    cc_barrier barrier;   /* two tasks and a thread */
    int barrier_errors;   /* failed barrier waits */
};

static int rlock_holder(void *arg, void **result)
{
    struct sync_run *s = arg;
    cc_rlock_acquire(&s->rl, CC_FOREVER);
    cc_rlock_acquire(&s->rl, CC_FOREVER); /* recursive: count 2 */
    cc_sleep(5 * CC_MSEC);
    cc_rlock_release(&s->rl);
    cc_rlock_release(&s->rl);
    return 0;
}

static int rlock_other(void *arg, void **result)
{
    struct sync_run *s = arg;
    s->other_try = cc_rlock_acquire(&s->rl, CC_NOWAIT); /* same thread! */
    s->other_wait = cc_rlock_acquire(&s->rl, cc_deadline_in(60 * CC_SEC));
    if (s->other_wait == 0)
        cc_rlock_release(&s->rl);
    return 0;
}

static bool flag_set(void *arg) { return ((struct sync_run *)arg)->flag; }

static void *notify_later(void *arg)
{
    struct sync_run *s = arg;
    cc_sleep(5 * CC_MSEC);
    cc_lock_acquire(&s->lock, CC_FOREVER);
    s->flag = true;
    cc_cond_notify_all(&s->cond);
    cc_lock_release(&s->lock);
    return NULL;
}

static void *barrier_thread(void *arg)
{
    struct sync_run *s = arg;
    for (int i = 0; i < 50; i++)
        if (cc_barrier_wait(&s->barrier, cc_deadline_in(60 * CC_SEC)) < 0)
            s->barrier_errors++;
    return NULL;
}

static int barrier_task(void *arg, void **result)
{
    struct sync_run *s = arg;
    for (int i = 0; i < 50; i++)
        if (cc_barrier_wait(&s->barrier, cc_deadline_in(60 * CC_SEC)) < 0)
            s->barrier_errors++;
    return 0;
}

static int sync_main(void *arg, void **result)
{
    struct sync_run *s = arg;
    cc_future *fs[4];
    cc_spawn(rlock_holder, s, &fs[0]);
    cc_spawn(rlock_other, s, &fs[1]);
    cc_spawn(barrier_task, s, &fs[2]);
    cc_spawn(barrier_task, s, &fs[3]);
    cc_thread *t1 = start(notify_later, s), *t2 = start(barrier_thread, s);
    cc_lock_acquire(&s->lock, CC_FOREVER);
    s->cond_r = cc_cond_wait_for(&s->cond, flag_set, s,
                                 cc_deadline_in(60 * CC_SEC));
    cc_lock_release(&s->lock);
    cc_futures_wait(fs, 4, CC_ALL_COMPLETED, CC_FOREVER);
    join(t1);
    join(t2);
    for (int i = 0; i < 4; i++)
        cc_future_release(fs[i]);
    return 0;
}

static void test_sync_between_tasks_and_threads(void **state)
{
    (void)state;
    struct sync_run s = {0};
    cc_rlock_init(&s.rl);
    cc_lock_init(&s.lock);
    cc_cond_init(&s.cond, &s.lock);
    assert_int_equal(cc_barrier_init(&s.barrier, 3, NULL, NULL), 0);
    assert_int_equal(cc_loop_run(sync_main, &s, NULL), 0);
    assert_int_equal(s.other_try, -ETIMEDOUT); /* the task, not the thread */
    assert_int_equal(s.other_wait, 0);
    assert_int_equal(s.cond_r, 0);
    assert_int_equal(s.barrier_errors, 0);
    cc_barrier_destroy(&s.barrier);
    cc_cond_destroy(&s.cond);
    cc_lock_destroy(&s.lock);
    cc_rlock_destroy(&s.rl);
}


int main(void)
{
    const struct CMUnitTest tests[] = {
        CC_TEST(test_event_and_lock_across_threads),
        CC_TEST(test_queue_threads_to_tasks),
        CC_TEST(test_pool_future_does_not_block_loop),
        CC_TEST(test_sync_between_tasks_and_threads),
    };
    return CC_RUN_TESTS(tests);
}
