/*
 * test_task_group.c: task groups (cc_task_group_*, include/concur/loop.h):
 * the first failure cancels the siblings, closing cancels or waits and
 * joins, a bounded group makes spawn wait, a cancelled closer still joins.
 */
#include "testutil.h"

#include "loop_helpers.h"

enum { MEMBERS = 4 };

struct member_run {
    cc_event go;        /* members wait for it */
    int got[MEMBERS];   /* each member's wait result */
    bool cleanup[MEMBERS]; /* each member's cleanup ran */
    int idx;            /* next member index */
};

static int waiter(void *arg, void **result)
{
    struct member_run *m = arg;
    int i = m->idx++;
    m->got[i] = cc_event_wait(&m->go, cc_deadline_in(30 * CC_SEC));
    m->cleanup[i] = true;
    return m->got[i];
}

static int failer(void *arg, void **result)
{
    cc_sleep(2 * CC_MSEC);
    cc_task_set_error_message("failed on purpose");
    return -EIO;
}

struct fail_run {
    struct member_run m;  /* the siblings */
    int late_spawn;       /* a spawn after the failure */
    int join;             /* cc_task_group_join */
    int close;            /* cc_task_group_close */
};

static int fail_main(void *arg, void **result)
{
    struct fail_run *f = arg;
    cc_task_group *g;
    if (cc_task_group_new(&g, 0) != 0)
        abort();
    for (int i = 0; i < MEMBERS - 1; i++)
        cc_task_group_spawn(g, waiter, &f->m, NULL, NULL, CC_FOREVER);
    cc_task_group_spawn(g, failer, NULL, NULL, NULL, CC_FOREVER);
    f->join = cc_task_group_join(g, cc_deadline_in(30 * CC_SEC));
    f->late_spawn = cc_task_group_spawn(g, waiter, &f->m, NULL, NULL,
                                        CC_FOREVER);
    f->close = cc_task_group_close(g, false);
    return 0;
}

static void test_failure_cancels_siblings(void **state)
{
    (void)state;
    struct fail_run f = {0};
    cc_event_init(&f.m.go);
    assert_int_equal(cc_loop_run(fail_main, &f, NULL), 0);
    for (int i = 0; i < MEMBERS - 1; i++) {
        assert_int_equal(f.m.got[i], -ECANCELED);
        assert_true(f.m.cleanup[i]);
    }
    assert_int_equal(f.join, -EIO);
    assert_int_equal(f.late_spawn, -ESHUTDOWN);
    assert_int_equal(f.close, -EIO);
    cc_event_destroy(&f.m.go);
}

struct close_run {
    struct member_run cancelled; /* closed with cancel */
    struct member_run waited;    /* closed without: they finish */
    int cancel_close, wait_close; /* the two closes */
    int early_join;              /* a join before the members can end */
    size_t size;                 /* members alive before the closes */
};

static int open_event(void *arg, void **result)
{
    cc_sleep(2 * CC_MSEC);
    cc_event_set(arg);
    return 0;
}

static int close_main(void *arg, void **result)
{
    struct close_run *c = arg;
    cc_task_group *a, *b;
    if (cc_task_group_new(&a, 0) || cc_task_group_new(&b, 0))
        abort();
    for (int i = 0; i < MEMBERS; i++) {
        cc_task_group_spawn(a, waiter, &c->cancelled, NULL, NULL, CC_FOREVER);
        cc_task_group_spawn(b, waiter, &c->waited, NULL, NULL, CC_FOREVER);
    }
    c->size = cc_task_group_size(a) + cc_task_group_size(b);
    c->early_join = cc_task_group_join(b, cc_deadline_in(CC_MSEC));
    c->cancel_close = cc_task_group_close(a, true);
    cc_spawn(open_event, &c->waited.go, NULL);
    c->wait_close = cc_task_group_close(b, false);
    return 0;
}

static void test_close_cancels_or_waits(void **state)
{
    (void)state;
    struct close_run c = {0};
    cc_event_init(&c.cancelled.go);
    cc_event_init(&c.waited.go);
    assert_int_equal(cc_loop_run(close_main, &c, NULL), 0);
    assert_int_equal(c.size, 2 * MEMBERS);
    assert_int_equal(c.early_join, -ETIMEDOUT);
    assert_int_equal(c.cancel_close, 0); /* cancelled members: no failure */
    assert_int_equal(c.wait_close, 0);
    for (int i = 0; i < MEMBERS; i++) {
        assert_int_equal(c.cancelled.got[i], -ECANCELED);
        assert_true(c.cancelled.cleanup[i]);
        assert_int_equal(c.waited.got[i], 0);
    }
    cc_event_destroy(&c.waited.go);
    cc_event_destroy(&c.cancelled.go);
}

/* ---- members spawning while the group closes ------------------------------ */

enum { CRAWL_DEPTH = 4 };

/* A crawler: members that spawn more members into their own group, as
 * asyncio.TaskGroup's tasks may while its owner leaves `async with`. */
struct crawl_run {
    cc_task_group *g; /* the group */
    int ran;          /* crawlers that ran */
    int refused;      /* spawns that failed */
};

struct crawl_arg {
    struct crawl_run *c; /* the run */
    int depth;           /* children of this one still to come */
};

static struct crawl_arg crawl_args[CRAWL_DEPTH + 1];

static int crawl(void *arg, void **result)
{
    struct crawl_arg *a = arg;
    a->c->ran++;
    cc_sleep(CC_MSEC); /* the owner is in its close by now */
    for (int i = 0; a->depth > 0 && i < 2; i++)
        a->c->refused += cc_task_group_spawn(a->c->g, crawl, a - 1, NULL,
                                             NULL, CC_FOREVER) != 0;
    return 0;
}

static int crawl_main(void *arg, void **result)
{
    struct crawl_run *c = arg;
    for (int d = 0; d <= CRAWL_DEPTH; d++)
        crawl_args[d] = (struct crawl_arg){c, d};
    if (cc_task_group_new(&c->g, 0) != 0 ||
        cc_task_group_spawn(c->g, crawl, &crawl_args[CRAWL_DEPTH], NULL,
                            NULL, CC_FOREVER) != 0)
        abort();
    return cc_task_group_close(c->g, false);
}

/* Closing without cancel is leaving TaskGroup's `async with` (loop.h): the
 * members still alive may spawn into the group until none is left. */
static void test_members_spawn_while_closing(void **state)
{
    (void)state;
    struct crawl_run c = {0};
    assert_int_equal(cc_loop_run(crawl_main, &c, NULL), 0);
    assert_int_equal(c.refused, 0);
    assert_int_equal(c.ran, (1 << (CRAWL_DEPTH + 1)) - 1);
}

/* ---- allocation failures ------------------------------------------------------ */

struct nomem_run {
    int ran;      /* members that ran */
    int spawned;  /* spawns that returned 0 */
    int odd;      /* outcomes other than 0 and -ENOMEM, or a lost place */
};

static int count_run(void *arg, void **result)
{
    ((struct nomem_run *)arg)->ran++;
    return 0;
}

/* Spawn into a group of one place, join, spawn again without waiting: a
 * place lost to a failed spawn shows as -ETIMEDOUT. */
static int nomem_main(void *arg, void **result)
{
    struct nomem_run *n = arg;
    cc_task_group *g;
    int r = cc_task_group_new(&g, 1);
    if (r < 0)
        return r;
    for (int i = 0; i < 4; i++) {
        cc_future *f = NULL;
        r = cc_task_group_spawn(g, count_run, n, NULL, &f,
                                i % 2 ? CC_NOWAIT : CC_FOREVER);
        n->spawned += r == 0;
        n->odd += r != 0 && r != -ENOMEM;
        cc_future_release(f);
        if (cc_task_group_join(g, CC_FOREVER) != 0)
            n->odd++;
    }
    r = cc_task_group_close(g, false);
    n->odd += r != 0;
    return 0;
}

/* Fail the k-th allocation, k = 0, 1, ...: every spawn gives 0 or -ENOMEM,
 * gives its place back, and every member that was spawned runs (ASan: and
 * nothing leaks). */
static void test_spawn_allocation_failures(void **state)
{
    (void)state;
    for (int k = 0;; k++) {
        assert_true(k < 1000);
        long before = cc_test_alloc_failures();
        struct nomem_run n = {0};
        cc_test_alloc_fail_nth(k);
        int r = cc_loop_run(nomem_main, &n, NULL);
        cc_test_alloc_normal();
        if (r != 0 && r != -ENOMEM)
            fail_msg("k %d: loop %d", k, r);
        if (n.odd != 0 || n.ran != n.spawned)
            fail_msg("k %d: odd %d, ran %d of %d", k, n.odd, n.ran,
                     n.spawned);
        if (cc_test_alloc_failures() == before) {
            print_message("%d allocations failed in turn\n", k);
            break;
        }
    }
}

enum { POOL = 3 };

struct pool_run {
    int running, most;   /* members running now, and at most */
    int done;            /* members that finished */
    int full_try;        /* a CC_NOWAIT spawn into the full pool */
    int spawns;          /* spawns that returned 0 */
    int close;           /* the close */
    int total;           /* spawns tried that may wait */
};

static int worker(void *arg, void **result)
{
    struct pool_run *p = arg;
    if (++p->running > p->most)
        p->most = p->running;
    cc_sleep(CC_MSEC);
    p->running--;
    p->done++;
    return 0;
}

static int pool_main(void *arg, void **result)
{
    struct pool_run *p = arg;
    cc_task_group *g;
    if (cc_task_group_new(&g, POOL) != 0)
        abort();
    for (int i = 0; i < POOL; i++)
        p->spawns += cc_task_group_spawn(g, worker, p, NULL, NULL,
                                         CC_FOREVER) == 0;
    p->full_try = cc_task_group_spawn(g, worker, p, NULL, NULL, CC_NOWAIT);
    int n = (int)cc_test_n(100);
    for (int i = 0; i < n; i++)
        p->spawns += cc_task_group_spawn(g, worker, p, NULL, NULL,
                                         cc_deadline_in(30 * CC_SEC)) == 0;
    p->close = cc_task_group_close(g, false);
    p->total = n + POOL;
    return 0;
}

static void test_bounded_group_makes_spawn_wait(void **state)
{
    (void)state;
    struct pool_run p = {0};
    assert_int_equal(cc_loop_run(pool_main, &p, NULL), 0);
    int r = p.total;
    assert_true(r > POOL);
    assert_int_equal(p.spawns, r);
    assert_int_equal(p.done, r);
    assert_int_equal(p.most, POOL);
    assert_int_equal(p.full_try, -ETIMEDOUT);
    assert_int_equal(p.close, 0);
}

struct closer_run {
    struct member_run m;  /* the group's members */
    cc_task_group *g;     /* the group */
    int close;            /* the cancelled closer's close */
};

static int closer(void *arg, void **result)
{
    struct closer_run *c = arg;
    c->close = cc_task_group_close(c->g, false);
    return c->close;
}

static int closer_main(void *arg, void **result)
{
    struct closer_run *c = arg;
    if (cc_task_group_new(&c->g, 0) != 0)
        abort();
    for (int i = 0; i < MEMBERS; i++)
        cc_task_group_spawn(c->g, waiter, &c->m, NULL, NULL, CC_FOREVER);
    cc_future *f;
    cc_spawn(closer, c, &f);
    cc_sleep(CC_MSEC); /* all park: the members and the closer */
    cc_task_cancel(f);
    cc_future_wait(f, CC_FOREVER);
    cc_future_release(f);
    return 0;
}

static void test_cancelled_closer_still_joins(void **state)
{
    (void)state;
    struct closer_run c = {0};
    cc_event_init(&c.m.go);
    assert_int_equal(cc_loop_run(closer_main, &c, NULL), 0);
    assert_int_equal(c.close, -ECANCELED);
    for (int i = 0; i < MEMBERS; i++) {
        assert_int_equal(c.m.got[i], -ECANCELED);
        assert_true(c.m.cleanup[i]);
    }
    cc_event_destroy(&c.m.go);
}

/* A task that is not a member waits to spawn into a full group while
 * another closes it: it gets -ESHUTDOWN, and the close does not free the
 * group under it (its wait ends in the group's semaphore). */
struct late_run {
    struct member_run m; /* the one member, cancelled by the close */
    cc_task_group *g;    /* bounded: one member */
    int spawn;           /* the waiting spawn's outcome */
    int close;           /* the close */
};

static int late_spawner(void *arg, void **result)
{
    struct late_run *l = arg;
    l->spawn = cc_task_group_spawn(l->g, waiter, &l->m, NULL, NULL,
                                   cc_deadline_in(30 * CC_SEC));
    return 0;
}

static int late_main(void *arg, void **result)
{
    struct late_run *l = arg;
    if (cc_task_group_new(&l->g, 1) != 0)
        abort();
    cc_task_group_spawn(l->g, waiter, &l->m, NULL, NULL, CC_FOREVER);
    cc_future *s;
    cc_spawn(late_spawner, l, &s);
    cc_yield(); /* the member parks, the spawner waits for room */
    l->close = cc_task_group_close(l->g, true);
    cc_future_wait(s, CC_FOREVER);
    cc_future_release(s);
    return 0;
}

static void test_close_with_a_spawn_waiting(void **state)
{
    (void)state;
    struct late_run l = {0};
    l.spawn = 1;
    cc_event_init(&l.m.go);
    assert_int_equal(cc_loop_run(late_main, &l, NULL), 0);
    assert_int_equal(l.close, 0);
    assert_int_equal(l.spawn, -ESHUTDOWN);
    assert_int_equal(l.m.got[0], -ECANCELED);
    assert_int_equal(l.m.idx, 1); /* nothing was spawned after the close */
    cc_event_destroy(&l.m.go);
}

/* A task joins a group while another closes it, and the closer waited
 * first (so the member's end wakes it first): the join returns 0, and the
 * close does not free the group under it (its wait ends in the group's
 * event). */
struct join_close_run {
    struct member_run m; /* the one member, let go by main */
    cc_task_group *g;
    int join;            /* the joiner's outcome */
    int close;           /* the closer's */
};

static int joiner(void *arg, void **result)
{
    struct join_close_run *j = arg;
    j->join = cc_task_group_join(j->g, cc_deadline_in(30 * CC_SEC));
    return 0;
}

static int group_closer(void *arg, void **result)
{
    struct join_close_run *j = arg;
    j->close = cc_task_group_close(j->g, false);
    return 0;
}

static int join_close_main(void *arg, void **result)
{
    struct join_close_run *j = arg;
    if (cc_task_group_new(&j->g, 0) != 0)
        abort();
    cc_task_group_spawn(j->g, waiter, &j->m, NULL, NULL, CC_FOREVER);
    cc_future *c, *f;
    cc_spawn(group_closer, j, &c);
    cc_yield(); /* the member parks, then the closer */
    cc_spawn(joiner, j, &f);
    cc_yield(); /* the joiner parks after the closer */
    cc_event_set(&j->m.go);
    cc_future_wait(c, CC_FOREVER);
    cc_future_wait(f, CC_FOREVER);
    cc_future_release(c);
    cc_future_release(f);
    return 0;
}

static void test_close_with_a_join_waiting(void **state)
{
    (void)state;
    struct join_close_run j = {0};
    j.join = 1;
    j.close = 1;
    cc_event_init(&j.m.go);
    assert_int_equal(cc_loop_run(join_close_main, &j, NULL), 0);
    assert_int_equal(j.close, 0);
    assert_int_equal(j.join, 0);
    assert_int_equal(j.m.got[0], 0);
    cc_event_destroy(&j.m.go);
}

/* ---- to_thread ------------------------------------------------------------------ */

struct thread_run {
    cc_executor *pool;   /* two workers */
    cc_event release;    /* the blocked worker waits for it (a thread) */
    long ticks;          /* a ticker's rounds during the to_thread */
    bool stop;           /* the ticker stops */
    int got;             /* cc_to_thread's outcome */
    void *result;        /* and result */
    int cancelled;       /* a cancelled task's cc_to_thread */
    int after;           /* a cc_to_thread after that one was abandoned */
};

static int slow_square(void *arg, void **result)
{
    cc_sleep(20 * CC_MSEC); /* a thread: blocks the worker, not the loop */
    intptr_t x = (intptr_t)arg;
    *result = (void *)(x * x);
    return 0;
}

static int blocked(void *arg, void **result)
{
    struct thread_run *t = arg;
    return cc_event_wait(&t->release, cc_deadline_in(30 * CC_SEC));
}

static int tick(void *arg, void **result)
{
    struct thread_run *t = arg;
    while (!t->stop) {
        t->ticks++;
        cc_sleep(CC_MSEC / 4);
    }
    return 0;
}

static int abandoner(void *arg, void **result)
{
    struct thread_run *t = arg;
    t->cancelled = cc_to_thread(t->pool, blocked, t, NULL);
    return t->cancelled;
}

static int thread_main(void *arg, void **result)
{
    struct thread_run *t = arg;
    cc_future *ticker, *a;
    cc_spawn(tick, t, &ticker);
    t->got = cc_to_thread(t->pool, slow_square, (void *)(intptr_t)7,
                          &t->result);
    t->stop = true;
    cc_future_wait(ticker, CC_FOREVER);
    cc_future_release(ticker);
    cc_spawn(abandoner, t, &a);
    cc_sleep(2 * CC_MSEC); /* it waits for the worker */
    cc_task_cancel(a);
    cc_future_wait(a, CC_FOREVER); /* the worker is still blocked */
    cc_future_release(a);
    cc_event_set(&t->release);
    void *r;
    t->after = cc_to_thread(t->pool, slow_square, (void *)(intptr_t)3, &r);
    if (r != (void *)9)
        t->after = -EINVAL;
    return 0;
}

static void test_to_thread_parks_the_task(void **state)
{
    (void)state;
    struct thread_run t = {0};
    cc_event_init(&t.release);
    cc_thread_pool_options o = {.max_workers = 2};
    assert_int_equal(cc_thread_pool_new(&t.pool, &o), 0);
    assert_int_equal(cc_loop_run(thread_main, &t, NULL), 0);
    assert_int_equal(t.got, 0);
    assert_ptr_equal(t.result, (void *)49);
    /* The ticker first runs when the main task parks in cc_to_thread. */
    assert_true(t.ticks >= 1);
    assert_int_equal(t.cancelled, -ECANCELED);
    assert_int_equal(t.after, 0);
    cc_executor_free(t.pool);
    cc_event_destroy(&t.release);
}

struct shut_run {
    cc_executor *pool; /* shut down by a cancelled task */
    int to_thread;     /* its cc_to_thread after the cancel */
    bool shut;         /* the shutdown returned */
};

static int cancelled_shutdown(void *arg, void **result)
{
    struct shut_run *s = arg;
    cc_task_cancel(cc_task_current());
    s->to_thread = cc_to_thread(s->pool, slow_square, (void *)2, NULL);
    cc_executor_shutdown(s->pool, true, false); /* cannot fail: waits */
    s->shut = true;
    return 0;
}

static void test_cancelled_task_shuts_pool_down(void **state)
{
    (void)state;
    struct shut_run s = {0};
    cc_thread_pool_options o = {.max_workers = 1};
    assert_int_equal(cc_thread_pool_new(&s.pool, &o), 0);
    assert_int_equal(cc_loop_run(cancelled_shutdown, &s, NULL), 0);
    assert_int_equal(s.to_thread, -ECANCELED);
    assert_true(s.shut);
    cc_executor_free(s.pool);
}

/* A bound the group's semaphore cannot count is refused, and nothing is
 * made (the fixture's teardown counts leaks). */
static void test_size_too_large(void **state)
{
    (void)state;
    cc_task_group *g = NULL;
    assert_int_equal(cc_task_group_new(&g, (size_t)UINT32_MAX + 1), -EINVAL);
    assert_null(g);
    assert_int_equal(cc_task_group_new(&g, UINT32_MAX), 0);
    assert_int_equal(cc_task_group_close(g, false), 0);
}

/* ---- a done callback that ends another member during a cancel --------- */

enum { CHAIN = 4 };

struct chain_run {
    cc_future *task[CHAIN]; /* the members, oldest first */
    bool via_cancel;        /* cc_task_group_cancel, else close(cancel) */
    int close;              /* cc_task_group_close */
    size_t size_after;      /* members alive after the cancel */
};

static int never_runs(void *arg, void **result) { return 0; }

static void cancel_other(cc_future *f, void *arg)
{
    (void)f;
    cc_task_cancel(arg);
}

static int chain_main(void *arg, void **result)
{
    struct chain_run *c = arg;
    cc_task_group *g;
    if (cc_task_group_new(&g, 0) != 0)
        abort();
    for (int i = 0; i < CHAIN; i++)
        if (cc_task_group_spawn(g, never_runs, NULL, NULL, &c->task[i],
                                CC_FOREVER) != 0)
            abort();
    /* The group visits the newest first: when it ends, the user's callback
     * ends the next one the group would visit (not started either, so
     * cancelling it runs its callbacks, the group's too, at once). */
    for (int i = CHAIN - 1; i > 0; i--)
        if (cc_future_add_done_callback(c->task[i], cancel_other,
                                        c->task[i - 1]) != 0)
            abort();
    if (c->via_cancel) {
        cc_task_group_cancel(g);
        c->size_after = cc_task_group_size(g);
    }
    c->close = cc_task_group_close(g, true);
    return 0;
}

static void check_chain(bool via_cancel)
{
    struct chain_run c = {.via_cancel = via_cancel};
    assert_int_equal(cc_loop_run(chain_main, &c, NULL), 0);
    assert_int_equal(c.close, 0);
    assert_int_equal(c.size_after, 0);
    for (int i = 0; i < CHAIN; i++) {
        assert_true(cc_future_cancelled(c.task[i]));
        cc_future_release(c.task[i]);
    }
}

/* A user's done callback on a member that cancels another, unstarted member
 * while the group cancels them all: the member the group would visit next
 * leaves the list (and its node is freed) under the group's walk. */
static void test_callback_cancels_next_member_during_cancel(void **state)
{
    (void)state;
    check_chain(true);
    check_chain(false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CC_TEST(test_failure_cancels_siblings),
        CC_TEST(test_close_cancels_or_waits),
        CC_TEST(test_members_spawn_while_closing),
        CC_TEST(test_bounded_group_makes_spawn_wait),
        CC_TEST(test_cancelled_closer_still_joins),
        CC_TEST(test_close_with_a_spawn_waiting),
        CC_TEST(test_close_with_a_join_waiting),
        CC_TEST(test_to_thread_parks_the_task),
        CC_TEST(test_cancelled_task_shuts_pool_down),
        CC_TEST(test_size_too_large),
        CC_TEST(test_spawn_allocation_failures),
        CC_TEST(test_callback_cancels_next_member_during_cancel),
    };
    return CC_RUN_TESTS(tests);
}
