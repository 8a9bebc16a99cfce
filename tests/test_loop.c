/*
 * test_loop.c: the event loop and its tasks (include/concur/loop.h): spawn,
 * yield, join through futures, outcomes and cancellation; timers never early
 * and in order; cross-thread calls and wakeups delivered exactly once; a
 * timed-out wait racing a wake; two loops waking each other's tasks.
 */
#include "testutil.h"

#include "loop_helpers.h"
#include "wait.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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

/* ---- spawn options: name and stack size ----------------------------------- */

struct big_run {
    char name[32];     /* the task's name, as it saw it */
    long touched;      /* bytes of its big stack buffer it wrote and read */
};

static int big_stack(void *arg, void **result)
{
    struct big_run *b = arg;
    snprintf(b->name, sizeof b->name, "%s", cc_task_name());
    volatile char buf[512 * 1024]; /* far beyond the 64 KiB default */
    for (size_t i = 0; i < sizeof buf; i += 4096)
        buf[i] = (char)i;
    for (size_t i = 0; i < sizeof buf; i += 4096)
        b->touched += buf[i] == (char)i ? 4096 : 0;
    return 0;
}

static int options_main(void *arg, void **result)
{
    cc_task_opts opts = {.name = "big-stack", .stack_size = 1024 * 1024};
    cc_future *f;
    int r = cc_spawn_with(big_stack, arg, &opts, &f);
    if (r == 0) {
        r = cc_future_result(f, CC_FOREVER, NULL);
        cc_future_release(f);
    }
    return r;
}

static void test_spawn_options(void **state)
{
    (void)state;
    struct big_run b = {.touched = 0};
    assert_int_equal(cc_loop_run(options_main, &b, NULL), 0);
    assert_string_equal(b.name, "big-stack");
    assert_int_equal(b.touched, 512 * 1024);
}

/* ---- the loop outlives its main task ---------------------------------------- */

struct late_run {
    int late_ran;          /* a task spawned by a call after main returned */
    bool shortest_done;    /* the 10 ms nap was done at the first return */
    int first_n;           /* what cc_futures_wait(FIRST_COMPLETED) said */
};

static int late_task(void *arg, void **result)
{
    cc_sleep(CC_MSEC);
    ((struct late_run *)arg)->late_ran = 1;
    return 0;
}

static void spawn_late(void *arg) { cc_spawn(late_task, arg, NULL); }

static int nap(void *arg, void **result)
{
    cc_sleep((intptr_t)arg * CC_MSEC);
    return 0;
}

static int late_main(void *arg, void **result)
{
    struct late_run *l = arg;
    cc_future *fs[3];
    for (intptr_t i = 0; i < 3; i++)
        cc_spawn(nap, (void *)(30 - 10 * i), &fs[i]); /* 30, 20, 10 ms */
    l->first_n = cc_futures_wait(fs, 3, CC_FIRST_COMPLETED, CC_FOREVER);
    l->shortest_done = cc_future_done(fs[2]); /* timers fire in order */
    for (int i = 0; i < 3; i++)
        cc_future_release(fs[i]);
    /* Runs after we return: the loop keeps going until it is done too. */
    return cc_call_soon_threadsafe(cc_loop_current(), spawn_late, l);
}

static void test_loop_outlives_main(void **state)
{
    (void)state;
    struct late_run l = {0};
    assert_int_equal(cc_loop_run(late_main, &l, NULL), 0);
    assert_true(l.first_n >= 1); /* usually 1; more on a stalled machine */
    assert_true(l.shortest_done);
    assert_int_equal(l.late_ran, 1);
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

/* ---- fork from a task --------------------------------------------------- */

/* A task that forks: the child is no task of any loop (as Python resets the
 * running loop in a fork child). It must not park in the copied loop, whose
 * scheduler would run the parent's other tasks again in the child and share
 * the parent's io_uring. The child's blocking calls block its thread. */
static int fork_child_main(void)
{
    if (cc_loop_current() || cc_task_current() || cc_task_name())
        return 1; /* before any wait: a park here would run copied tasks */
    int64_t t0 = cc_now();
    if (cc_sleep(2 * CC_MSEC) != 0 || cc_now() - t0 < 2 * CC_MSEC)
        return 2;
    cc_event e;
    cc_event_init(&e);
    int r = cc_event_wait(&e, cc_deadline_in(CC_MSEC)) == -ETIMEDOUT ? 0 : 3;
    cc_event_destroy(&e);
    return r;
}

static int forking_task(void *arg, void **result)
{
    int *status = arg;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0)
        _exit(fork_child_main());
    if (pid < 0 || waitpid(pid, status, 0) != pid)
        *status = -1;
    return 0;
}

static void test_fork_child_is_no_task(void **state)
{
    (void)state;
    int status = -1;
    assert_int_equal(cc_loop_run(forking_task, &status, NULL), 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
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


/* ---- stress: tasks of two loops hand permits to each other ------------------ */

enum { STRESS_LOOPS = 2, STRESS_TASKS = 20 };

struct stress_run {
    cc_semaphore sem[STRESS_LOOPS * STRESS_TASKS]; /* one per task */
    long rounds;                  /* per task */
    atomic_long released;         /* permits given, all tasks */
    atomic_long acquired;         /* permits taken by waits, all tasks */
};

struct stress_task {
    struct stress_run *run; /* shared */
    int id;                 /* which semaphore is its own */
};

static int stress_fn(void *arg, void **result)
{
    struct stress_task *st = arg;
    struct stress_run *run = st->run;
    uint32_t seed = (uint32_t)st->id * 7919u + 1;
    for (long r = 0; r < run->rounds; r++) {
        int k = (int)(rnd(&seed) % (STRESS_LOOPS * STRESS_TASKS));
        cc_semaphore_release(&run->sem[k], 1);
        atomic_fetch_add(&run->released, 1);
        int64_t ns = rnd(&seed) % 30000;
        if (cc_semaphore_acquire(&run->sem[st->id], cc_deadline_in(ns)) == 0)
            atomic_fetch_add(&run->acquired, 1);
        if (r % 7 == 0)
            cc_yield();
    }
    return 0;
}

static int stress_loop_main(void *arg, void **result)
{
    struct stress_task *ts = arg; /* this loop's STRESS_TASKS tasks */
    cc_future *fs[STRESS_TASKS];
    for (int i = 0; i < STRESS_TASKS; i++)
        cc_spawn(stress_fn, &ts[i], &fs[i]);
    cc_futures_wait(fs, STRESS_TASKS, CC_ALL_COMPLETED, CC_FOREVER);
    for (int i = 0; i < STRESS_TASKS; i++)
        cc_future_release(fs[i]);
    return 0;
}

static void *stress_thread(void *arg)
{
    return (void *)(intptr_t)cc_loop_run(stress_loop_main, arg, NULL);
}

static void test_stress_two_loops(void **state)
{
    (void)state;
    static struct stress_run run;
    struct stress_task ts[STRESS_LOOPS * STRESS_TASKS];
    run.rounds = cc_test_n(5000);
    atomic_store(&run.released, 0);
    atomic_store(&run.acquired, 0);
    for (int i = 0; i < STRESS_LOOPS * STRESS_TASKS; i++) {
        cc_semaphore_init(&run.sem[i], 0);
        ts[i] = (struct stress_task){&run, i};
    }
    cc_thread *th[STRESS_LOOPS];
    for (int l = 0; l < STRESS_LOOPS; l++)
        th[l] = start(stress_thread, &ts[l * STRESS_TASKS]);
    for (int l = 0; l < STRESS_LOOPS; l++)
        assert_null(join(th[l]));
    long drained = 0;
    for (int i = 0; i < STRESS_LOOPS * STRESS_TASKS; i++) {
        while (cc_semaphore_acquire(&run.sem[i], CC_NOWAIT) == 0)
            drained++;
        cc_semaphore_destroy(&run.sem[i]);
    }
    assert_int_equal(atomic_load(&run.released),
                     run.rounds * STRESS_LOOPS * STRESS_TASKS);
    /* Every permit given was taken exactly once: by a wait or by the drain. */
    assert_int_equal(atomic_load(&run.acquired) + drained,
                     atomic_load(&run.released));
    assert_true(atomic_load(&run.acquired) > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CC_TEST(test_spawn_yield_join),
        CC_TEST(test_outcomes),
        CC_TEST(test_spawn_options),
        CC_TEST(test_loop_outlives_main),
        CC_TEST(test_timers_never_early_in_order),
        CC_TEST(test_call_soon_threadsafe_exactly_once),
        CC_TEST(test_cross_thread_wakeups),
        CC_TEST(test_timeout_races_wake),
        CC_TEST(test_fork_child_is_no_task),
        CC_TEST(test_two_loops),
        CC_TEST(test_stress_two_loops),
    };
    return CC_RUN_TESTS(tests);
}
