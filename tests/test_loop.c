/*
 * test_loop.c: the event loop and its tasks (include/concur/loop.h): spawn,
 * yield, join through futures; timers never early and in order; the "one way
 * to wait" between threads and tasks (events, locks, queues, futures, thread
 * join); cross-thread calls and wakeups delivered exactly once; fd waits with
 * deadlines; a timed-out wait racing a wake.
 *
 * Tasks record what they see; the assertions run after cc_loop_run returns
 * (a failed cmocka assertion longjmps, which must not leave a coroutine).
 */
#include "testutil.h"

#include "wait.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- helpers -------------------------------------------------------------- */

static cc_thread *start(cc_thread_fn fn, void *arg)
{
    cc_thread *t;
    assert_int_equal(cc_thread_start(&t, fn, arg, NULL), 0);
    return t;
}

/* Join from a task or a thread; returns the thread's result. */
static void *join(cc_thread *t)
{
    void *r = NULL;
    if (cc_thread_join(t, cc_deadline_in(60 * CC_SEC), &r) != 0)
        abort();
    return r;
}

/* A small xorshift generator per caller. */
static uint32_t rnd(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* ---- spawn, yield, join ------------------------------------------------ */

struct spawn_run {
    long n;          /* tasks to spawn */
    long sum;        /* of their results, as joined */
    long named;      /* tasks that saw their name and future */
    long failures;   /* spawns or joins that failed */
};

static int yielder(void *arg, void **result)
{
    struct spawn_run *run = arg;
    if (cc_task_current() && strcmp(cc_task_name(), "worker") == 0)
        run->named++;
    intptr_t v = 0;
    for (int i = 0; i < 3; i++) {
        cc_yield();
        v++;
    }
    *result = (void *)(v + 1); /* 4 */
    return 0;
}

static int spawn_main(void *arg, void **result)
{
    struct spawn_run *run = arg;
    enum { WAVE = 1000 }; /* alive at once (one stack mapping each) */
    cc_future **fs = malloc(WAVE * sizeof *fs);
    cc_task_opts opts = {.name = "worker"};
    for (long done = 0; done < run->n;) {
        long k = run->n - done < WAVE ? run->n - done : WAVE;
        for (long i = 0; i < k; i++)
            if (cc_spawn_with(yielder, run, &opts, &fs[i]) != 0)
                run->failures++;
        for (long i = 0; i < k; i++) {
            void *r;
            if (cc_future_result(fs[i], CC_FOREVER, &r) != 0)
                run->failures++;
            run->sum += (intptr_t)r;
            cc_future_release(fs[i]);
        }
        done += k;
    }
    free(fs);
    *result = (void *)(intptr_t)42;
    return 0;
}

static void test_spawn_yield_join(void **state)
{
    (void)state;
    struct spawn_run run = {.n = cc_test_n(100000)};
    void *res;
    assert_int_equal(cc_loop_run(spawn_main, &run, &res), 0);
    assert_int_equal((intptr_t)res, 42);
    assert_int_equal(run.failures, 0);
    assert_int_equal(run.sum, 4 * run.n);
    assert_int_equal(run.named, run.n);
    assert_null(cc_loop_current());
}

/* ---- outcomes, errors, cancellation, misuse ------------------------------ */

static int failing(void *arg, void **result)
{
    cc_task_set_error_message("task %d failed", (int)(intptr_t)arg);
    cc_yield(); /* the other task sets its own message meanwhile */
    cc_yield();
    return -EIO;
}

static int never_runs(void *arg, void **result)
{
    *(int *)arg = 1;
    return 0;
}

struct outcome_run {
    char msg[2][64];   /* the failing tasks' messages */
    int err[2];        /* and errors */
    int ran;           /* never_runs ran */
    bool cancelled;    /* its future says cancelled */
    int nested;        /* cc_loop_run inside a task */
};

static int outcome_main(void *arg, void **result)
{
    struct outcome_run *o = arg;
    cc_future *f[2], *c;
    for (int i = 0; i < 2; i++)
        cc_spawn(failing, (void *)(intptr_t)i, &f[i]);
    cc_spawn(never_runs, &o->ran, &c);
    cc_future_cancel(c);
    for (int i = 0; i < 2; i++) {
        o->err[i] = cc_future_result(f[i], CC_FOREVER, NULL);
        const char *m = cc_future_error_message(f[i]);
        snprintf(o->msg[i], sizeof o->msg[i], "%s", m ? m : "(none)");
        cc_future_release(f[i]);
    }
    o->cancelled = cc_future_wait(c, CC_FOREVER) == 0 && cc_future_cancelled(c);
    cc_future_release(c);
    o->nested = cc_loop_run(never_runs, &o->ran, NULL);
    return -ENOENT;
}

static void test_outcomes(void **state)
{
    (void)state;
    struct outcome_run o = {0};
    assert_int_equal(cc_spawn(never_runs, &o.ran, NULL), -EPERM);
    assert_int_equal(cc_loop_run(outcome_main, &o, NULL), -ENOENT);
    for (int i = 0; i < 2; i++) {
        char want[64];
        snprintf(want, sizeof want, "task %d failed", i);
        assert_string_equal(o.msg[i], want);
        assert_int_equal(o.err[i], -EIO);
    }
    assert_int_equal(o.ran, 0);
    assert_true(o.cancelled);
    assert_int_equal(o.nested, -EBUSY);
    assert_null(cc_task_current());
    assert_null(cc_task_name());
}

/* ---- timers ------------------------------------------------------------ */

struct timer_run {
    long n;              /* sleepers */
    cc_deadline *when;   /* each one's deadline */
    long *order;         /* sleepers in the order they woke */
    bool *late;          /* each one began its sleep after the deadline */
    long woke;           /* how many woke */
    long early;          /* woke before their deadline */
};

struct sleeper {
    struct timer_run *run; /* shared */
    long i;                /* which one */
};

static int sleeper_fn(void *arg, void **result)
{
    struct sleeper *s = arg;
    struct timer_run *run = s->run;
    run->late[s->i] = cc_now() >= run->when[s->i];
    cc_sleep_until(run->when[s->i]);
    if (cc_now() < run->when[s->i])
        run->early++;
    run->order[run->woke++] = s->i;
    return 0;
}

static int timer_main(void *arg, void **result)
{
    struct timer_run *run = arg;
    struct sleeper *ss = calloc(run->n, sizeof *ss);
    for (long i = 0; i < run->n; i++) {
        ss[i] = (struct sleeper){run, i};
        cc_spawn(sleeper_fn, &ss[i], NULL);
    }
    /* They first run once we sleep; one that starts its sleep after its
     * deadline (a slow sanitizer build) returns at once, out of order. */
    uint32_t seed = 12345;
    cc_deadline base = cc_now() + 50 * CC_MSEC;
    for (long i = 0; i < run->n; i++) /* 0..50 ms apart, many per ms */
        run->when[i] = base + (int64_t)(rnd(&seed) % 50000) * CC_USEC;
    /* Ours ends while they sleep: the loop still waits for them. */
    cc_sleep(CC_MSEC);
    *result = ss;
    return 0;
}

static void test_timers_never_early_in_order(void **state)
{
    (void)state;
    struct timer_run run = {.n = cc_test_n(10000)};
    run.when = calloc(run.n, sizeof *run.when);
    run.order = calloc(run.n, sizeof *run.order);
    run.late = calloc(run.n, sizeof *run.late);
    void *ss;
    assert_int_equal(cc_loop_run(timer_main, &run, &ss), 0);
    free(ss);
    assert_int_equal(run.woke, run.n);
    assert_int_equal(run.early, 0);
    /* Those asleep in time woke by deadline (ties by arrival). */
    cc_deadline last = 0;
    long in_time = 0;
    for (long i = 0; i < run.n; i++) {
        if (run.late[run.order[i]])
            continue;
        assert_true(last <= run.when[run.order[i]]);
        last = run.when[run.order[i]];
        in_time++;
    }
    assert_true(in_time > 0);
    free(run.late);
    free(run.when);
    free(run.order);
}

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

/* ---- cross-thread calls, each delivered once --------------------------------- */

enum { CALLERS = 2 };

struct call_run {
    cc_loop *loop;        /* where the calls go */
    long per_thread;      /* calls each thread makes */
    unsigned char *hits;  /* runs of each call (loop thread only) */
    long total;           /* calls run so far (loop thread only) */
    long out_of_order;    /* a thread's calls that ran out of its order */
    long last[CALLERS];   /* each thread's last call run */
    cc_event all_done;    /* set by the last call */
};

struct caller {
    struct call_run *run; /* shared */
    int id;               /* which thread */
};

static struct call_run *the_calls; /* the calls' shared state */

static void on_call(void *arg)
{
    struct call_run *run = the_calls;
    long i = (long)(intptr_t)arg;
    int who = (int)(i / run->per_thread);
    if (i <= run->last[who])
        run->out_of_order++;
    run->last[who] = i;
    run->hits[i]++;
    if (++run->total == CALLERS * run->per_thread)
        cc_event_set(&run->all_done);
}

static void *caller_fn(void *arg)
{
    struct caller *c = arg;
    struct call_run *run = c->run;
    for (long k = 0; k < run->per_thread; k++) {
        long i = c->id * run->per_thread + k;
        if (cc_call_soon_threadsafe(run->loop, on_call, (void *)(intptr_t)i))
            abort();
    }
    return NULL;
}

static int call_main(void *arg, void **result)
{
    struct call_run *run = arg;
    run->loop = cc_loop_current();
    struct caller cs[CALLERS];
    cc_thread *ts[CALLERS];
    for (int i = 0; i < CALLERS; i++) {
        cs[i] = (struct caller){run, i};
        ts[i] = start(caller_fn, &cs[i]);
    }
    int r = cc_event_wait(&run->all_done, cc_deadline_in(100 * CC_SEC));
    for (int i = 0; i < CALLERS; i++)
        join(ts[i]);
    return r;
}

static void test_call_soon_threadsafe_exactly_once(void **state)
{
    (void)state;
    struct call_run run = {.per_thread = cc_test_n(1000000) / CALLERS};
    for (int i = 0; i < CALLERS; i++)
        run.last[i] = -1;
    run.hits = calloc(CALLERS * run.per_thread, 1);
    cc_event_init(&run.all_done);
    the_calls = &run;
    assert_int_equal(cc_loop_run(call_main, &run, NULL), 0);
    assert_int_equal(run.total, CALLERS * run.per_thread);
    for (long i = 0; i < CALLERS * run.per_thread; i++)
        assert_int_equal(run.hits[i], 1);
    assert_int_equal(run.out_of_order, 0);
    cc_event_destroy(&run.all_done);
    free(run.hits);
}

/* ---- cross-thread wakeups: a ping-pong between a thread and a task ----------- */

struct pingpong {
    cc_semaphore ping;  /* thread -> task */
    cc_semaphore pong;  /* task -> thread */
    long rounds;        /* exchanges */
    long task_rounds;   /* exchanges the task completed */
    long ticks;         /* a second task's rounds meanwhile */
    bool stop;          /* it stops */
};

static void *pinger(void *arg)
{
    struct pingpong *p = arg;
    for (long i = 0; i < p->rounds; i++) {
        cc_semaphore_release(&p->ping, 1);
        if (cc_semaphore_acquire(&p->pong, cc_deadline_in(60 * CC_SEC)))
            abort();
    }
    return NULL;
}

static int pp_ticker(void *arg, void **result)
{
    struct pingpong *p = arg;
    while (!p->stop) {
        p->ticks++;
        cc_sleep(100 * CC_USEC);
    }
    return 0;
}

static int pingpong_main(void *arg, void **result)
{
    struct pingpong *p = arg;
    cc_spawn(pp_ticker, p, NULL);
    cc_thread *t = start(pinger, p);
    for (long i = 0; i < p->rounds; i++) {
        if (cc_semaphore_acquire(&p->ping, cc_deadline_in(60 * CC_SEC)))
            break;
        p->task_rounds++;
        cc_semaphore_release(&p->pong, 1);
    }
    join(t);
    p->stop = true;
    return 0;
}

static void test_cross_thread_wakeups(void **state)
{
    (void)state;
    struct pingpong p = {.rounds = cc_test_n(50000)};
    cc_semaphore_init(&p.ping, 0);
    cc_semaphore_init(&p.pong, 0);
    assert_int_equal(cc_loop_run(pingpong_main, &p, NULL), 0);
    assert_int_equal(p.task_rounds, p.rounds);
    cc_semaphore_destroy(&p.ping);
    cc_semaphore_destroy(&p.pong);
}

/* ---- a timed-out wait racing a wake ----------------------------------------- */

struct race_run {
    cc__mutex m;            /* guards q */
    cc__waitq q;            /* where the tasks wait */
    long rounds;            /* waits per task */
    long received;          /* waits that returned 0 (a wakeup) */
    long timeouts;          /* waits that returned -ETIMEDOUT */
    atomic_long delivered;  /* wakeups the thread handed to a waiter */
    atomic_bool stop;       /* the waker stops */
};

static void *race_waker(void *arg)
{
    struct race_run *r = arg;
    uint32_t seed = 99;
    while (!atomic_load(&r->stop)) {
        cc__mutex_lock(&r->m);
        long n = cc__wake_one(&r->q, 1);
        cc__mutex_unlock(&r->m);
        atomic_fetch_add(&r->delivered, n);
        for (uint32_t i = rnd(&seed) % 2000; i > 0; i--)
            cc__cpu_relax();
    }
    return NULL;
}

static int race_waiter(void *arg, void **result)
{
    struct race_run *r = arg;
    uint32_t seed = (uint32_t)(uintptr_t)cc_task_current() | 1;
    for (long i = 0; i < r->rounds; i++) {
        cc__waiter w;
        cc__waiter_init(&w);
        cc__mutex_lock(&r->m);
        int64_t ns = rnd(&seed) % 20000;
        int x = cc__wait_on(&r->q, &r->m, &w, cc_deadline_in(ns));
        cc__mutex_unlock(&r->m);
        if (x == 0 && w.token == 1)
            r->received++;
        else if (x == -ETIMEDOUT)
            r->timeouts++;
    }
    return 0;
}

static int race_main(void *arg, void **result)
{
    struct race_run *r = arg;
    cc_thread *t = start(race_waker, r);
    cc_future *fs[3];
    for (int i = 0; i < 3; i++)
        cc_spawn(race_waiter, r, &fs[i]);
    cc_futures_wait(fs, 3, CC_ALL_COMPLETED, CC_FOREVER);
    atomic_store(&r->stop, true);
    join(t);
    for (int i = 0; i < 3; i++)
        cc_future_release(fs[i]);
    return 0;
}

static void test_timeout_races_wake(void **state)
{
    (void)state;
    struct race_run r = {.rounds = cc_test_n(20000)};
    assert_int_equal(cc_loop_run(race_main, &r, NULL), 0);
    assert_int_equal(r.received + r.timeouts, 3 * r.rounds);
    assert_int_equal(r.received, atomic_load(&r.delivered));
    assert_true(cc__waitq_empty(&r.q));
}

/* ---- fds --------------------------------------------------------------- */

struct fd_run {
    int p[2];           /* a non-blocking pipe */
    int timed_out;      /* cc_wait_fd on the empty pipe */
    int64_t waited;     /* how long that took, ns */
    int ready;          /* cc_wait_fd once a thread wrote */
    long echoed;        /* bytes a reader task got from a writer task */
    int second;         /* a second waiter on the same fd */
    int duplex_r;       /* a reader and a writer task on one socket: */
    int duplex_w;       /* what each one's cc_wait_fd returned */
};

static void *write_later(void *arg)
{
    cc_sleep(10 * CC_MSEC);
    if (write(((struct fd_run *)arg)->p[1], "x", 1) != 1)
        abort();
    return NULL;
}

static int second_waiter(void *arg, void **result)
{
    struct fd_run *f = arg;
    f->second = cc_wait_fd(f->p[0], POLLIN, cc_deadline_in(60 * CC_SEC));
    return 0;
}

static int duplex_reader(void *arg, void **result)
{
    void **a = arg; /* the fd_run and the socket pair */
    struct fd_run *f = a[0];
    int *s = a[1];
    f->duplex_r = cc_wait_fd(s[0], POLLIN, cc_deadline_in(60 * CC_SEC));
    return 0;
}

/* A reader waits on s[0]; a writer waits on s[0] too (ready at once), and
 * only then makes s[0] readable: the fd's re-arming must keep the reader. */
static int duplex(struct fd_run *f)
{
    int s[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, s))
        return -errno;
    cc_future *r;
    void *a[2] = {f, s};
    cc_spawn(duplex_reader, a, &r);
    cc_yield(); /* the reader parks */
    f->duplex_w = cc_wait_fd(s[0], POLLOUT, cc_deadline_in(60 * CC_SEC));
    cc_yield();
    int err = write(s[1], "z", 1) == 1 ? cc_future_wait(r, CC_FOREVER) : -EIO;
    cc_future_release(r);
    close(s[0]);
    close(s[1]);
    return err;
}

static int pipe_writer(void *arg, void **result)
{
    int fd = *(int *)arg;
    char buf[4096];
    memset(buf, 'y', sizeof buf);
    for (int i = 0; i < 64; i++) /* 256 KiB: fills the pipe many times */
        for (size_t off = 0; off < sizeof buf;) {
            ssize_t n = cc_write(fd, buf + off, sizeof buf - off, CC_FOREVER);
            if (n < 0)
                return (int)n;
            off += (size_t)n;
        }
    close(fd);
    return 0;
}

static int fd_main(void *arg, void **result)
{
    struct fd_run *f = arg;
    int64_t t0 = cc_now();
    f->timed_out = cc_wait_fd(f->p[0], POLLIN, cc_deadline_in(20 * CC_MSEC));
    f->waited = cc_now() - t0;
    cc_thread *t = start(write_later, f);
    cc_spawn(second_waiter, f, NULL);
    f->ready = cc_wait_fd(f->p[0], POLLIN, cc_deadline_in(60 * CC_SEC));
    join(t);
    char c;
    if (read(f->p[0], &c, 1) != 1)
        return -EIO;
    cc_future *w;
    cc_spawn(pipe_writer, &f->p[1], &w);
    char buf[1000];
    ssize_t n;
    while ((n = cc_read(f->p[0], buf, sizeof buf, CC_FOREVER)) > 0)
        f->echoed += n;
    int r = cc_future_result(w, CC_FOREVER, NULL);
    cc_future_release(w);
    if (n < 0 || r < 0)
        return n < 0 ? (int)n : r;
    return duplex(f);
}

static void test_wait_fd_pipe(void **state)
{
    (void)state;
    struct fd_run f = {0};
    assert_int_equal(pipe2(f.p, O_CLOEXEC | O_NONBLOCK), 0);
    assert_int_equal(cc_loop_run(fd_main, &f, NULL), 0);
    assert_int_equal(f.timed_out, -ETIMEDOUT);
    assert_true(f.waited >= 20 * CC_MSEC);
    assert_true(f.ready & POLLIN);
    assert_true(f.second & POLLIN);
    assert_int_equal(f.duplex_w, POLLOUT);
    assert_int_equal(f.duplex_r, POLLIN);
    assert_int_equal(f.echoed, 64 * 4096);
    close(f.p[0]);
    /* Outside a loop it polls: a deadline still holds. */
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    assert_int_equal(cc_wait_fd(p[0], POLLIN, cc_deadline_in(CC_MSEC)),
                     -ETIMEDOUT);
    assert_int_equal(cc_wait_fd(p[1], POLLOUT, CC_NOWAIT), POLLOUT);
    close(p[0]);
    close(p[1]);
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

/* ---- two loops: tasks wake tasks on another loop -------------------------- */

struct two_loops {
    cc_semaphore ping;     /* loop A's task -> loop B's task */
    cc_semaphore pong;     /* and back */
    long rounds;           /* exchanges */
    long b_rounds;         /* exchanges B completed */
    cc_loop *b;            /* loop B, once running */
    cc_event b_ready;      /* b is set */
    cc_event called;       /* set by a call A made into B */
    bool on_b;             /* that call ran on B's thread */
};

static void on_b(void *arg)
{
    struct two_loops *x = arg;
    x->on_b = cc_loop_current() == x->b;
    cc_event_set(&x->called);
}

static int loop_b_main(void *arg, void **result)
{
    struct two_loops *x = arg;
    x->b = cc_loop_current();
    cc_event_set(&x->b_ready);
    for (long i = 0; i < x->rounds; i++) {
        if (cc_semaphore_acquire(&x->ping, cc_deadline_in(60 * CC_SEC)))
            return -ETIMEDOUT;
        x->b_rounds++;
        cc_semaphore_release(&x->pong, 1);
    }
    return cc_event_wait(&x->called, cc_deadline_in(60 * CC_SEC));
}

static void *loop_b_thread(void *arg)
{
    return (void *)(intptr_t)cc_loop_run(loop_b_main, arg, NULL);
}

static int loop_a_main(void *arg, void **result)
{
    struct two_loops *x = arg;
    cc_thread *t = start(loop_b_thread, x);
    cc_event_wait(&x->b_ready, CC_FOREVER);
    for (long i = 0; i < x->rounds; i++) {
        cc_semaphore_release(&x->ping, 1);
        if (cc_semaphore_acquire(&x->pong, cc_deadline_in(60 * CC_SEC)))
            break;
    }
    cc_call_soon_threadsafe(x->b, on_b, x);
    *result = join(t);
    return 0;
}

static void test_two_loops(void **state)
{
    (void)state;
    struct two_loops x = {.rounds = cc_test_n(20000)};
    cc_semaphore_init(&x.ping, 0);
    cc_semaphore_init(&x.pong, 0);
    cc_event_init(&x.b_ready);
    cc_event_init(&x.called);
    void *b_result = (void *)1;
    assert_int_equal(cc_loop_run(loop_a_main, &x, &b_result), 0);
    assert_int_equal((intptr_t)b_result, 0);
    assert_int_equal(x.b_rounds, x.rounds);
    assert_true(x.on_b);
    cc_event_destroy(&x.called);
    cc_event_destroy(&x.b_ready);
    cc_semaphore_destroy(&x.ping);
    cc_semaphore_destroy(&x.pong);
}

/* ---- sockets: an echo server, one task per connection --------------------- */

enum { CLIENTS = 50, MSG = 20000 };

struct echo_run {
    int listener;            /* non-blocking, on 127.0.0.1 */
    struct sockaddr_in addr; /* where it listens */
    long ok;                 /* clients that got their bytes back intact */
    int errors;              /* failed calls */
};

static int echo_conn(void *arg, void **result)
{
    int fd = (int)(intptr_t)arg;
    char buf[4096];
    ssize_t n;
    while ((n = cc_read(fd, buf, sizeof buf, cc_deadline_in(60 * CC_SEC))) > 0)
        for (ssize_t off = 0; off < n;) {
            ssize_t w = cc_write(fd, buf + off, n - off, CC_FOREVER);
            if (w < 0) {
                close(fd);
                return (int)w;
            }
            off += w;
        }
    close(fd);
    return (int)n;
}

static int echo_server(void *arg, void **result)
{
    struct echo_run *e = arg;
    for (int i = 0; i < CLIENTS; i++) {
        int fd = cc_accept(e->listener, cc_deadline_in(60 * CC_SEC));
        if (fd < 0 || cc_spawn(echo_conn, (void *)(intptr_t)fd, NULL) < 0) {
            e->errors++;
            return fd;
        }
    }
    return 0;
}

static int client_io(int fd, int id)
{
    static __thread char out[MSG], in[MSG];
    memset(out, 'a' + id % 26, sizeof out);
    size_t sent = 0, got = 0;
    while (got < MSG) { /* interleave, or both sides' buffers fill up */
        if (sent < MSG) {
            ssize_t w = cc_write(fd, out + sent, MSG - sent > 1000 ? 1000
                                 : MSG - sent, CC_FOREVER);
            if (w < 0)
                return (int)w;
            sent += (size_t)w;
        }
        ssize_t r = cc_read(fd, in + got, MSG - got, cc_deadline_in(60 * CC_SEC));
        if (r <= 0)
            return r < 0 ? (int)r : -EPIPE;
        got += (size_t)r;
    }
    return memcmp(in, out, MSG) == 0 ? 0 : -EIO;
}

static int echo_client(void *arg, void **result)
{
    struct echo_run *e = arg;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int r = cc_connect(fd, (struct sockaddr *)&e->addr, sizeof e->addr,
                       cc_deadline_in(60 * CC_SEC));
    if (r == 0)
        r = client_io(fd, (int)(intptr_t)cc_task_current() & 0xff);
    close(fd);
    if (r == 0)
        e->ok++;
    else
        e->errors++;
    return r;
}

static int echo_main(void *arg, void **result)
{
    struct echo_run *e = arg;
    cc_spawn(echo_server, e, NULL);
    for (int i = 0; i < CLIENTS; i++)
        cc_spawn(echo_client, e, NULL);
    return 0;
}

static void test_socket_echo(void **state)
{
    (void)state;
    struct echo_run e = {0};
    e.listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(e.listener >= 0);
    e.addr.sin_family = AF_INET;
    e.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof e.addr;
    assert_int_equal(bind(e.listener, (struct sockaddr *)&e.addr, len), 0);
    assert_int_equal(getsockname(e.listener, (struct sockaddr *)&e.addr, &len), 0);
    assert_int_equal(listen(e.listener, CLIENTS), 0);
    assert_int_equal(cc_loop_run(echo_main, &e, NULL), 0);
    assert_int_equal(e.errors, 0);
    assert_int_equal(e.ok, CLIENTS);
    close(e.listener);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CC_TEST(test_spawn_yield_join),
        CC_TEST(test_outcomes),
        CC_TEST(test_timers_never_early_in_order),
        CC_TEST(test_event_and_lock_across_threads),
        CC_TEST(test_queue_threads_to_tasks),
        CC_TEST(test_pool_future_does_not_block_loop),
        CC_TEST(test_call_soon_threadsafe_exactly_once),
        CC_TEST(test_cross_thread_wakeups),
        CC_TEST(test_timeout_races_wake),
        CC_TEST(test_wait_fd_pipe),
        CC_TEST(test_sync_between_tasks_and_threads),
        CC_TEST(test_two_loops),
        CC_TEST(test_socket_echo),
    };
    return CC_RUN_TESTS(tests);
}
