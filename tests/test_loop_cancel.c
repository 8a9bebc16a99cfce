/*
 * test_loop_cancel.c: cancelling tasks (cc_task_cancel), shield scopes and
 * deadline scopes (include/concur/loop.h). A table lists every kind of
 * blocking call; each is cancelled while parked and while about to park,
 * and each runs inside an expiring deadline scope.
 */
#include "testutil.h"

#include "loop_helpers.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- the blocking calls ---------------------------------------------------- */

/* Everything a blocking call of the table needs; each call would block. */
struct env {
    cc_lock lock;         /* held by the test's main task */
    cc_lock cond_lock;    /* the condition's lock */
    cc_cond cond;         /* never notified */
    cc_semaphore sem;     /* value 0 */
    cc_event ev;          /* never set */
    cc_barrier bar;       /* two parties, one comes */
    cc_queue *empty;      /* a FIFO with nothing in it */
    cc_queue *full;       /* a ring of one, full */
    cc_queue *unfinished; /* an item never marked done (join waits) */
    cc_future *fut;       /* a hand-made future, never completed */
    cc_thread *thread;    /* waits for stop */
    cc_event stop;        /* ends thread */
    int pipe[2];          /* non-blocking, never written */
    int sock[2];          /* non-blocking socket pair, never written */
    int listener;         /* a listening socket nobody connects to */
    cc_executor *pool;    /* one thread, busy with map's only input */
    cc_map *map;          /* its result waits for stop */
    bool mapped;          /* the map's input was given */
};

static void *thread_body(void *arg)
{
    struct env *e = arg;
    cc_event_wait(&e->stop, CC_FOREVER);
    return NULL;
}

/* The map's function and its one input: the env, done when stop is set. */
static int wait_for_stop(void *arg, void **result)
{
    struct env *e = arg;
    *result = NULL;
    return cc_event_wait(&e->stop, CC_FOREVER);
}

static int one_input(void *state, void **arg)
{
    struct env *e = state;
    if (e->mapped)
        return 0;
    e->mapped = true;
    *arg = e;
    return 1;
}

static int listener(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(fd, 1) != 0)
        abort();
    return fd;
}

static void env_init(struct env *e)
{
    *e = (struct env){0};
    cc_lock_init(&e->lock);
    cc_lock_init(&e->cond_lock);
    cc_cond_init(&e->cond, &e->cond_lock);
    cc_semaphore_init(&e->sem, 0);
    cc_event_init(&e->ev);
    cc_event_init(&e->stop);
    if (cc_barrier_init(&e->bar, 2, NULL, NULL) ||
        cc_queue_new(&e->empty, CC_QUEUE_FIFO, 0) ||
        cc_queue_new(&e->full, CC_QUEUE_FIFO, 1) ||
        cc_queue_put(e->full, e, CC_NOWAIT) ||
        cc_queue_new(&e->unfinished, CC_QUEUE_FIFO, 0) ||
        cc_queue_put(e->unfinished, e, CC_NOWAIT) ||
        cc_future_new(&e->fut) ||
        pipe2(e->pipe, O_CLOEXEC | O_NONBLOCK) ||
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0,
                   e->sock))
        abort();
    e->listener = listener();
    e->thread = start(thread_body, e);
    cc_thread_pool_options po = {.max_workers = 1};
    if (cc_thread_pool_new(&e->pool, &po) ||
        cc_executor_map(&e->map, e->pool, wait_for_stop, one_input, e, NULL))
        abort();
}

static void env_fini(struct env *e)
{
    cc_event_set(&e->stop);
    join(e->thread);
    cc_map_free(e->map);
    cc_executor_free(e->pool);
    close(e->listener);
    for (int i = 0; i < 2; i++) {
        close(e->pipe[i]);
        close(e->sock[i]);
    }
    cc_future_release(e->fut);
    cc_queue_free(e->unfinished);
    cc_queue_free(e->full);
    cc_queue_free(e->empty);
    cc_barrier_destroy(&e->bar);
    cc_event_destroy(&e->stop);
    cc_event_destroy(&e->ev);
    cc_semaphore_destroy(&e->sem);
    cc_cond_destroy(&e->cond);
    cc_lock_destroy(&e->cond_lock);
    cc_lock_destroy(&e->lock);
}

/* The calls are given this deadline: far later than any test waits. */
#define LATE() cc_deadline_in(30 * CC_SEC)

static int c_lock(struct env *e) { return cc_lock_acquire(&e->lock, LATE()); }

static int c_cond(struct env *e)
{
    if (cc_lock_acquire(&e->cond_lock, CC_NOWAIT) != 0)
        abort();
    int r = cc_cond_wait(&e->cond, LATE());
    if (!cc_lock_held(&e->cond_lock)) /* a condition gives the lock back */
        r = -EDEADLK;
    cc_lock_release(&e->cond_lock);
    return r;
}

static int c_sem(struct env *e) { return cc_semaphore_acquire(&e->sem, LATE()); }
static int c_event(struct env *e) { return cc_event_wait(&e->ev, LATE()); }
static int c_barrier(struct env *e) { return cc_barrier_wait(&e->bar, LATE()); }

static int c_get(struct env *e)
{
    void *item;
    return cc_queue_get(e->empty, &item, LATE());
}

static int c_put(struct env *e) { return cc_queue_put(e->full, e, LATE()); }
static int c_join(struct env *e) { return cc_queue_join(e->unfinished, LATE()); }
static int c_fwait(struct env *e) { return cc_future_wait(e->fut, LATE()); }

static int c_fresult(struct env *e)
{
    return cc_future_result(e->fut, LATE(), NULL);
}

static int c_fmany(struct env *e)
{
    return cc_futures_wait(&e->fut, 1, CC_FIRST_COMPLETED, LATE());
}

static int c_thread(struct env *e)
{
    return cc_thread_join(e->thread, LATE(), NULL);
}

static int c_sleep(struct env *e)
{
    (void)e;
    return cc_sleep(10 * CC_SEC);
}

static int c_wait_fd(struct env *e)
{
    return cc_wait_fd(e->pipe[0], POLLIN, LATE());
}

static int c_read(struct env *e)
{
    char c;
    return (int)cc_read(e->pipe[0], &c, 1, LATE());
}

static int c_recv(struct env *e)
{
    char c;
    return (int)cc_recv(e->sock[0], &c, 1, 0, LATE());
}

static int c_accept(struct env *e) { return cc_accept(e->listener, LATE()); }

static int c_map_next(struct env *e)
{
    void *r;
    return cc_map_next(e->map, LATE(), &r);
}

static int c_wait_any(struct env *e)
{
    cc_waitable w[2] = {{.kind = CC_WAIT_QUEUE, .queue = e->empty},
                        {.kind = CC_WAIT_FUTURE, .future = e->fut}};
    return cc_wait_any(w, 2, LATE());
}

struct row {
    const char *name;            /* for failure messages */
    int (*call)(struct env *e); /* blocks until cancelled or timed out */
    int timed_out;               /* what it returns at a deadline, if not
                                    -ETIMEDOUT (0: none done) */
};

static const struct row rows[] = {
    {"lock", c_lock, 0},       {"cond", c_cond, 0},
    {"semaphore", c_sem, 0},   {"event", c_event, 0},
    {"barrier", c_barrier, 0}, {"queue get", c_get, 0},
    {"queue put", c_put, 0},   {"queue join", c_join, 0},
    {"future wait", c_fwait, 0}, {"future result", c_fresult, 0},
    {"futures wait", c_fmany, 1}, {"thread join", c_thread, 0},
    {"sleep", c_sleep, 0},     {"wait_fd", c_wait_fd, 0},
    {"read", c_read, 0},       {"recv", c_recv, 0},
    {"accept", c_accept, 0},   {"map next", c_map_next, 0},
    {"wait any", c_wait_any, 0},
};
enum { NROWS = sizeof rows / sizeof rows[0] };

/* ---- cancellation at every blocking call ------------------------------------ */

struct victim {
    const struct row *row; /* what it calls */
    struct env *env;       /* with what */
    bool self;             /* cancels itself before the call */
    bool called;           /* it got to the call */
    int got;               /* the call's result (1: not returned) */
    bool cleanup;          /* its cleanup ran */
};

static int victim_main(void *arg, void **result)
{
    struct victim *v = arg;
    if (v->self && cc_task_cancel(cc_task_current()) != 0)
        abort();
    v->called = true;
    v->got = v->row->call(v->env);
    v->cleanup = true; /* the cleanup of a task that returns on its error */
    return v->got;
}

struct table_run {
    bool self;            /* victims cancel themselves */
    int got[NROWS];       /* each call's result */
    int outcome[NROWS];   /* each victim's future */
    bool parked[NROWS];   /* the victim was in its call when cancelled */
    bool cleanup[NROWS];  /* its cleanup ran */
};

static int cancel_one(struct table_run *t, size_t i)
{
    struct env e;
    env_init(&e);
    cc_lock_acquire(&e.lock, CC_NOWAIT);
    struct victim v = {&rows[i], &e, t->self, false, 1, false};
    cc_future *f;
    if (cc_spawn(victim_main, &v, &f) != 0)
        abort();
    for (int k = 0; k < 5; k++)
        cc_yield(); /* it starts and parks in its call */
    t->parked[i] = v.called && v.got == 1;
    if (!t->self && cc_task_cancel(f) != 0)
        abort();
    t->outcome[i] = cc_future_result(f, cc_deadline_in(10 * CC_SEC), NULL);
    cc_future_release(f);
    t->got[i] = v.got;
    t->cleanup[i] = v.cleanup;
    cc_lock_release(&e.lock);
    env_fini(&e);
    return 0;
}

static int table_main(void *arg, void **result)
{
    for (size_t i = 0; i < NROWS; i++)
        cancel_one(arg, i);
    return 0;
}

static void check_table(bool self)
{
    struct table_run t = {.self = self};
    assert_int_equal(cc_loop_run(table_main, &t, NULL), 0);
    for (size_t i = 0; i < NROWS; i++) {
        if (t.got[i] != -ECANCELED || t.outcome[i] != -ECANCELED ||
            !t.cleanup[i] || (!self && !t.parked[i]))
            fail_msg("%s: got %d, future %d, cleanup %d, parked %d",
                     rows[i].name, t.got[i], t.outcome[i], t.cleanup[i],
                     t.parked[i]);
    }
}

static void test_cancel_parked_call(void **state)
{
    (void)state;
    check_table(false);
}

static void test_cancel_before_call(void **state)
{
    (void)state;
    check_table(true);
}

/* ---- before start, after the end, shields ----------------------------------- */

static int set_flag(void *arg, void **result)
{
    *(bool *)arg = true;
    return 0;
}

struct misc_run {
    bool ran;               /* the task cancelled before its start ran */
    int unstarted_cancel;   /* cc_task_cancel on it */
    bool unstarted_cancelled; /* its future is cancelled */
    int again_cancel;       /* cc_task_cancel on it a second time */
    int done_cancel;        /* cc_task_cancel on a finished task */
    int shielded_sleep;     /* a sleep in a shield, cancelled meanwhile */
    bool saw_cancelled;     /* cc_task_cancelled inside the shield */
    int nested_sleep;       /* a sleep after the inner of two shields */
    int after_shield;       /* the first sleep after the shield */
    bool shield_cleanup;    /* cleanup after the shield ran */
    int running_future;     /* cc_task_cancel on a running non-task future */
    int pending_future;     /* and on a pending one */
};

static int shielded(void *arg, void **result)
{
    struct misc_run *m = arg;
    cc_shield_begin();
    m->shielded_sleep = cc_sleep(30 * CC_MSEC); /* cancelled at once */
    m->saw_cancelled = cc_task_cancelled();
    cc_shield_begin();
    cc_shield_end();
    m->nested_sleep = cc_sleep(CC_MSEC);
    cc_shield_end();
    m->after_shield = cc_sleep(10 * CC_SEC);
    m->shield_cleanup = true;
    return m->after_shield;
}

static int misc_main(void *arg, void **result)
{
    struct misc_run *m = arg;
    cc_future *f;
    cc_spawn(set_flag, &m->ran, &f);
    m->unstarted_cancel = cc_task_cancel(f);
    cc_future_wait(f, CC_FOREVER);
    m->unstarted_cancelled = cc_future_cancelled(f);
    m->again_cancel = cc_task_cancel(f);
    cc_future_release(f);
    bool flag = false;
    cc_spawn(set_flag, &flag, &f);
    cc_future_wait(f, CC_FOREVER);
    m->done_cancel = cc_task_cancel(f);
    cc_future_release(f);
    cc_spawn(shielded, m, &f);
    cc_yield();
    cc_task_cancel(f);
    cc_future_wait(f, CC_FOREVER);
    cc_future_release(f);
    /* Futures that are not tasks (cc_future_new). */
    cc_future *plain;
    if (cc_future_new(&plain) != 0)
        abort();
    m->pending_future = cc_task_cancel(plain) == 0 && cc_future_cancelled(plain);
    cc_future_release(plain);
    if (cc_future_new(&plain) != 0 ||
        !cc_future_set_running_or_notify_cancel(plain))
        abort();
    m->running_future = cc_task_cancel(plain);
    cc_future_set_result(plain, NULL);
    cc_future_release(plain);
    return 0;
}

static void test_cancel_unstarted_done_and_shield(void **state)
{
    (void)state;
    struct misc_run m = {0};
    assert_int_equal(cc_loop_run(misc_main, &m, NULL), 0);
    assert_false(m.ran);
    assert_int_equal(m.unstarted_cancel, 0);
    assert_true(m.unstarted_cancelled);
    assert_int_equal(m.again_cancel, -EALREADY); /* done: as asyncio */
    assert_int_equal(m.done_cancel, -EALREADY);
    assert_int_equal(m.shielded_sleep, 0);
    assert_true(m.saw_cancelled);
    assert_int_equal(m.nested_sleep, 0); /* the outer shield still holds */
    assert_int_equal(m.after_shield, -ECANCELED);
    assert_true(m.shield_cleanup);
    assert_true(m.pending_future);
    assert_int_equal(m.running_future, -EINVAL);
    assert_int_equal(cc_task_cancel(NULL), -EINVAL);
    /* Outside a loop. */
    cc_future *f;
    assert_int_equal(cc_future_new(&f), 0);
    assert_int_equal(cc_task_cancel(f), -EPERM);
    assert_false(cc_future_cancelled(f));
    cc_future_release(f);
}

/* ---- deadline scopes ----------------------------------------------------------- */

struct scope_run {
    int got[NROWS];        /* each call inside an expiring scope */
    int end[NROWS];        /* cc_deadline_scope_end after it */
    int64_t took[NROWS];   /* how long the call blocked */
};

static int scope_main(void *arg, void **result)
{
    struct scope_run *s = arg;
    for (size_t i = 0; i < NROWS; i++) {
        struct env e;
        env_init(&e);
        cc_lock_acquire(&e.lock, CC_NOWAIT);
        cc_deadline_scope sc;
        int64_t t0 = cc_now();
        cc_deadline_scope_begin(&sc, cc_deadline_in(5 * CC_MSEC));
        s->got[i] = rows[i].call(&e);
        s->took[i] = cc_now() - t0;
        s->end[i] = cc_deadline_scope_end(&sc);
        cc_lock_release(&e.lock);
        env_fini(&e);
    }
    return 0;
}

static void test_deadline_scope_every_call(void **state)
{
    (void)state;
    struct scope_run s = {0};
    assert_int_equal(cc_loop_run(scope_main, &s, NULL), 0);
    for (size_t i = 0; i < NROWS; i++)
        if (s.got[i] != (rows[i].timed_out ? 0 : -ETIMEDOUT) ||
            s.end[i] != -ETIMEDOUT ||
            s.took[i] < 5 * CC_MSEC)
            fail_msg("%s: got %d, end %d, took %lld ns", rows[i].name,
                     s.got[i], s.end[i], (long long)s.took[i]);
}

struct nest_run {
    cc_event ev;           /* never set in the nested scopes */
    cc_event later;        /* set by a helper task after a few ms */
    int inner, inner_end;  /* a wait in the inner (earlier) scope, its end */
    int outer, outer_end;  /* a wait after it, in the outer scope, its end */
    int64_t t_inner, t_outer; /* when each failed, from the start */
    int late_inner_end;    /* the end of an inner scope later than its outer */
    int wins, wins_end;    /* a wait that succeeds in a scope, its end */
};

static int set_later(void *arg, void **result)
{
    cc_sleep(5 * CC_MSEC);
    cc_event_set(arg);
    return 0;
}

static int nest_main(void *arg, void **result)
{
    struct nest_run *n = arg;
    cc_deadline_scope outer, inner;
    int64_t t0 = cc_now();
    cc_deadline_scope_begin(&outer, cc_deadline_in(40 * CC_MSEC));
    cc_deadline_scope_begin(&inner, cc_deadline_in(10 * CC_MSEC));
    n->inner = cc_event_wait(&n->ev, CC_FOREVER);
    n->t_inner = cc_now() - t0;
    n->inner_end = cc_deadline_scope_end(&inner);
    n->outer = cc_event_wait(&n->ev, CC_FOREVER);
    n->t_outer = cc_now() - t0;
    n->outer_end = cc_deadline_scope_end(&outer);
    cc_deadline_scope_begin(&outer, cc_deadline_in(5 * CC_MSEC));
    cc_deadline_scope_begin(&inner, cc_deadline_in(10 * CC_SEC));
    cc_event_wait(&n->ev, CC_FOREVER); /* the outer scope ends it */
    n->late_inner_end = cc_deadline_scope_end(&inner);
    cc_deadline_scope_end(&outer);
    cc_deadline_scope_begin(&outer, cc_deadline_in(10 * CC_SEC));
    cc_spawn(set_later, &n->later, NULL);
    n->wins = cc_event_wait(&n->later, CC_FOREVER);
    n->wins_end = cc_deadline_scope_end(&outer);
    return 0;
}

static void test_deadline_scopes_nest(void **state)
{
    (void)state;
    struct nest_run n = {0};
    cc_event_init(&n.ev);
    cc_event_init(&n.later);
    assert_int_equal(cc_loop_run(nest_main, &n, NULL), 0);
    assert_int_equal(n.inner, -ETIMEDOUT);
    assert_true(n.t_inner >= 10 * CC_MSEC);
    assert_int_equal(n.inner_end, -ETIMEDOUT);
    assert_int_equal(n.outer, -ETIMEDOUT);
    assert_true(n.t_outer >= 40 * CC_MSEC);
    assert_int_equal(n.outer_end, -ETIMEDOUT);
    assert_int_equal(n.late_inner_end, 0);
    assert_int_equal(n.wins, 0);
    assert_int_equal(n.wins_end, 0);
    cc_deadline_scope sc;
    assert_int_equal(cc_deadline_scope_begin(&sc, CC_FOREVER), -EPERM);
    assert_int_equal(cc_deadline_scope_end(&sc), -EPERM);
    cc_event_destroy(&n.later);
    cc_event_destroy(&n.ev);
}

/* ---- cancelling from another thread, through the loop ------------------------ */

struct remote_run {
    cc_loop *loop;        /* the loop the victim runs on */
    cc_future *victim;    /* its future (the main task's reference) */
    cc_event never;       /* the victim waits on it */
    int got;              /* the victim's wait */
    int cancel;           /* cc_task_cancel in the loop's call */
};

static void cancel_call(void *arg)
{
    struct remote_run *r = arg;
    r->cancel = cc_task_cancel(r->victim);
}

static void *remote_canceller(void *arg)
{
    struct remote_run *r = arg;
    cc_sleep(2 * CC_MSEC);
    if (cc_call_soon_threadsafe(r->loop, cancel_call, r) != 0)
        abort();
    return NULL;
}

static int remote_victim(void *arg, void **result)
{
    struct remote_run *r = arg;
    r->got = cc_event_wait(&r->never, cc_deadline_in(30 * CC_SEC));
    return r->got;
}

static int remote_main(void *arg, void **result)
{
    struct remote_run *r = arg;
    r->loop = cc_loop_current();
    cc_spawn(remote_victim, r, &r->victim);
    cc_yield(); /* the victim starts and parks */
    cc_thread *t = start(remote_canceller, r);
    int err = cc_future_wait(r->victim, CC_FOREVER);
    join(t);
    cc_future_release(r->victim);
    return err;
}

static void test_cancel_from_another_thread(void **state)
{
    (void)state;
    struct remote_run r = {0};
    cc_event_init(&r.never);
    r.cancel = 1;
    r.got = 1;
    assert_int_equal(cc_loop_run(remote_main, &r, NULL), 0);
    assert_int_equal(r.cancel, 0);
    assert_int_equal(r.got, -ECANCELED);
    cc_event_destroy(&r.never);
}

/* ---- cancellation racing with wakeups from a thread ---------------------------- */

struct race_run {
    cc_semaphore sem;     /* units released by a thread */
    long units;           /* how many it releases */
    long taken;           /* units the victims got */
    long cancelled;       /* victims whose acquire was cancelled */
    long odd;             /* any other outcome */
    long left;            /* units still in the semaphore at the end */
};

static void *releaser(void *arg)
{
    struct race_run *r = arg;
    uint32_t seed = 2463534242u;
    for (long i = 0; i < r->units; i++) {
        if (rnd(&seed) % 4 == 0)
            cc_sleep(10 * CC_USEC); /* victims park meanwhile */
        cc_semaphore_release(&r->sem, 1);
    }
    return NULL;
}

static int race_victim(void *arg, void **result)
{
    struct race_run *r = arg;
    int got = cc_semaphore_acquire(&r->sem, cc_deadline_in(30 * CC_SEC));
    if (got == 0)
        r->taken++;
    else if (got == -ECANCELED)
        r->cancelled++;
    else
        r->odd++;
    return 0;
}

/* Spawn a victim, let it run `yields` rounds, cancel it, wait for it. */
static void race_once(struct race_run *r, uint32_t yields)
{
    cc_future *f;
    cc_spawn(race_victim, r, &f);
    while (yields-- > 0)
        cc_yield();
    cc_task_cancel(f);
    cc_future_wait(f, CC_FOREVER);
    cc_future_release(f);
}

static int race_main(void *arg, void **result)
{
    struct race_run *r = arg;
    uint32_t seed = 88172645u;
    race_once(r, 1); /* parked, no unit yet: cancelled for sure */
    cc_thread *t = start(releaser, r);
    while (r->taken + r->cancelled < r->units && r->odd == 0)
        race_once(r, rnd(&seed) % 3);
    join(t);
    while (cc_semaphore_acquire(&r->sem, CC_NOWAIT) == 0)
        r->left++;
    return 0;
}

static void test_cancel_races_with_wakeups(void **state)
{
    (void)state;
    struct race_run r = {.units = cc_test_n(5000)};
    cc_semaphore_init(&r.sem, 0);
    assert_int_equal(cc_loop_run(race_main, &r, NULL), 0);
    assert_int_equal(r.odd, 0);
    print_message("taken %ld, cancelled %ld, left %ld\n", r.taken,
                  r.cancelled, r.left);
    assert_int_equal(r.taken + r.left, r.units); /* no unit lost */
    assert_true(r.cancelled > 0);
    cc_semaphore_destroy(&r.sem);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CC_TEST(test_cancel_parked_call),
        CC_TEST(test_cancel_before_call),
        CC_TEST(test_cancel_unstarted_done_and_shield),
        CC_TEST(test_deadline_scope_every_call),
        CC_TEST(test_deadline_scopes_nest),
        CC_TEST(test_cancel_from_another_thread),
        CC_TEST(test_cancel_races_with_wakeups),
    };
    return CC_RUN_TESTS(tests);
}
