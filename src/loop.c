/*
 * loop.c: the event loop, its scheduler and its tasks (include/concur/loop.h).
 *
 * DESIGN. One loop per thread; the thread's own stack runs the scheduler, and
 * each task is a coroutine (coro.h) that the scheduler resumes. A task that
 * waits or yields switches straight to the next ready task of the round (or
 * back to the scheduler when there is none). Ready tasks wait in a FIFO run
 * queue; each round runs those that were ready when it began, then, when
 * nothing is ready, sleeps in the poller (io_uring or epoll) until the
 * earliest timer (loop_timer.h: a min-heap by deadline, then arrival), an
 * fd event, or a wakeup from another thread. Other threads hand ready tasks
 * and calls over through a lock-free stack (Treiber push, exchange-all pop,
 * reversed for FIFO) and write the poller's eventfd only when the loop said
 * it might sleep (Dekker handshake, seq_cst on both sides), so no wakeup is
 * lost or coalesced.
 * Parking (the wait layer's cc__waiter_park for a task) and waking keep wait.h's
 * protocol: the waiter's state word tells whether the task was woken; the
 * task's run state (RUNNING, NOTIFIED, PARKED, DONE) only decides who queues
 * it: the party that moves it PARKED -> RUNNING, exactly one. A wakeup that
 * finds it running leaves NOTIFIED, which makes its next park return at once
 * to look again: a spurious return, never a lost one.
 */
#include "coro.h"
#include "future_internal.h"
#include "loop_diag.h"
#include "loop_internal.h"
#include "loop_timer.h"
#include "poller.h"

#include <pthread.h>
#include <sched.h>
#include <string.h>

/* A task's run state (cc__task.run_state). */
enum {
    T_RUNNING,  /* running, or queued to run: a wakeup only notes itself */
    T_NOTIFIED, /* as RUNNING, and a wakeup came: the next park returns */
    T_PARKED,   /* suspended in park: whoever claims it queues it */
    T_DONE,     /* finished: wakeups are ignored */
};

/* SPARE_MAX: most reaped task objects a loop keeps for its next spawns. */
enum { POLL_BATCH = 64, SPARE_MAX = 256 };

/* Polls of the remote stack before the loop sleeps: a thread often hands a
 * wakeup over within a microsecond or two, far cheaper to spin for than the
 * eventfd write and the ~20 us of waking an idle vCPU (BENCHMARKS.md). */
enum { LOOP_SPINS = 200 };

/* A link in a loop's remote stack: a task made ready, or a call. */
struct remote_node {
    struct remote_node *next; /* written before the push (release) */
    bool is_call;             /* a struct call; else a task's node */
};

/* A cc_call_soon_threadsafe call on its way. */
struct call {
    struct remote_node node; /* first member: the node is the call */
    void (*fn)(void *);      /* what to call */
    void *arg;               /* with what */
};

struct cc__task {
    struct remote_node node;  /* first member: link in the remote stack */
    struct cc__task *next;    /* link in the run queue (loop thread only) */
    bool queued;              /* in the run queue (loop thread only) */
    bool started;             /* resumed once: its resumer is the scheduler,
                                 so tasks may switch to it directly */
    cc__coro *coro;           /* the coroutine; NULL once reaped */
    cc_future *future;        /* the task's future (one reference) */
    cc_loop *loop;            /* its loop, for its whole life */
    cc__atomic_u32 run_state; /* T_*; every change is an acq_rel RMW, so
                                 each party sees the writes of all earlier
                                 ones (a waker's CC__WOKEN store included) */
    cc__atomic_u32 refs;      /* the loop's, plus one per waker at work
                                 (acq_rel on release: the last frees) */
    cc__timer timer;          /* its deadline while parked (loop_timer.h) */
    struct cc__task_ctx ctx;  /* future.c's current-task state */
    struct cc__cancel cancel; /* cancellation and scopes (loop_cancel.c) */
    cc_task_fn fn;            /* what the task runs (its future runs body) */
    void *arg;                /* fn's argument */
    struct cc__task *all_next; /* every live task of the loop, for the */
    struct cc__task *all_prev; /* diagnostics (loop_diag.c; loop thread) */
    const char *wait_what;    /* what its park waits on (diagnostics) */
    long wait_arg;            /* with what detail (an fd), or -1 */
    cc_deadline wait_until;   /* its park's deadline (diagnostics) */
};

struct cc_loop {
    struct cc__task *run_head;  /* ready tasks, first to run */
    struct cc__task *run_tail;  /* last queued */
    size_t run_len;             /* how many are queued */
    size_t budget;              /* tasks this round may still run */
    size_t live;                /* tasks spawned and not yet reaped */
    cc__timer_heap timers;      /* parked tasks' deadlines; room kept >=
                                   live, so arming never fails */
    cc__poller *poller;         /* epoll and the wakeup eventfd */
    int fd_waits;               /* tasks waiting for fds (poll while busy) */
    _Atomic(struct remote_node *) remote; /* pushed by any thread (seq_cst:
                                 Dekker with sleeping); taken by the loop */
    cc__atomic_u32 sleeping;    /* 1: the loop may sleep in the poller, so
                                   a pusher must notify (seq_cst, Dekker) */
    cc__atomic_u32 wakers;      /* pushers between push and notify: the
                                   loop is freed only at 0 (acq_rel) */
    struct cc__task *all;       /* every live task (diagnostics) */
    struct cc__diag *diag;      /* stall/deadlock/dump state, or NULL */
    struct cc__task *spare;     /* reaped task objects for reuse, linked by
                                   next (loop thread only) */
    size_t n_spare;             /* how many */
};

static CC__THREAD_LOCAL cc_loop *tls_loop;         /* this thread's running loop */
CC__THREAD_LOCAL struct cc__task *cc__loop_running; /* loop_internal.h */

/* ---- run queue -------------------------------------------------------------- */

static void runq_push(cc_loop *l, struct cc__task *t)
{
    /* Twice would resume a running coroutine: the claim protocol forbids it. */
    if (CC__UNLIKELY(t->queued))
        cc__panic("a task was queued twice", -EINVAL);
    t->queued = true;
    t->next = NULL;
    if (l->run_tail)
        l->run_tail->next = t;
    else
        l->run_head = t;
    l->run_tail = t;
    l->run_len++;
}

static struct cc__task *runq_pop(cc_loop *l)
{
    struct cc__task *t = l->run_head;
    t->queued = false;
    l->run_head = t->next;
    if (!l->run_head)
        l->run_tail = NULL;
    l->run_len--;
    return t;
}

/* ---- timers ---------------------------------------------------------------- */

/* Queue every parked task whose deadline has come (never before it). */
static void fire_timers(cc_loop *l)
{
    if (l->timers.len == 0)
        return;
    cc_deadline now = cc__now();
    cc__timer *tm;
    while ((tm = cc__timer_pop_due(&l->timers, now))) {
        struct cc__task *t = CC__CONTAINER_OF(tm, struct cc__task, timer);
        uint32_t s = T_PARKED;
        /* acq_rel: claim it, as a waker does; a task already claimed or
         * running will look at its deadline itself. */
        if (cc__cas(&t->run_state, &s, T_RUNNING))
            runq_push(l, t);
    }
}

/* ---- wakeups from any thread ------------------------------------------------- */

static void remote_push(cc_loop *l, struct remote_node *n)
{
    /* seq_cst: counted before the push is seen, so the loop, which sees the
     * push, waits for our notify before it frees itself. */
    cc__fetch_add_seq_cst(&l->wakers, 1);
    struct remote_node *head = cc__load_relaxed(&l->remote);
    do {
        n->next = head;
        /* seq_cst: publishes n (release) and orders the push before the
         * sleeping load below (Dekker against wait_events). */
    } while (!cc__cas_weak_seq_cst(&l->remote, &head, n));
    if (cc__load_seq_cst(&l->sleeping) && cc__xchg(&l->sleeping, 0))
        cc__poller_notify(l->poller);
    /* release: our last touch of the loop precedes its teardown. */
    cc__fetch_sub(&l->wakers, 1);
}

/* Run the calls and queue the tasks that other threads handed over, in the
 * order they were pushed. */
static void take_remote(cc_loop *l)
{
    if (!cc__load_relaxed(&l->remote))
        return;
    /* acquire: the pushed nodes' contents are visible. */
    struct remote_node *n = cc__xchg_acq(&l->remote, NULL), *fifo = NULL;
    while (n) {
        struct remote_node *next = n->next;
        n->next = fifo;
        fifo = n;
        n = next;
    }
    while (fifo) {
        struct remote_node *next = fifo->next;
        if (fifo->is_call) {
            struct call *c = (struct call *)fifo;
            c->fn(c->arg);
            cc__free(c, sizeof *c);
        } else {
            runq_push(l, (struct cc__task *)fifo);
        }
        fifo = next;
    }
}

static void task_release(struct cc__task *t)
{
    if (cc__fetch_sub(&t->refs, 1) == 1)
        cc__free(t, sizeof *t);
}

/* Whether this wakeup claims t, which must then be queued: it was parked.
 * Else note the wakeup so that t's next park returns at once. */
static bool claim_for_wakeup(struct cc__task *t)
{
    uint32_t s = cc__load_relaxed(&t->run_state);
    for (;;) {
        uint32_t to = s == T_PARKED ? T_RUNNING
                      : s == T_DONE ? T_DONE : T_NOTIFIED;
        /* acq_rel: see struct cc__task. Even a NOTIFIED -> NOTIFIED change
         * is a write, so that the task's consuming CAS sees our CC__WOKEN. */
        if (cc__cas_weak(&t->run_state, &s, to))
            return s == T_PARKED;
    }
}

void cc__loop_wake(cc__waiter *w)
{
    struct cc__task *t = w->context;
    if (t->loop == tls_loop) {
        /* On t's loop thread: t cannot run, let alone end, before we
         * return, so it needs no reference (two atomics saved). */
        cc__store_rel(&w->state, CC__WOKEN);
        if (claim_for_wakeup(t))
            runq_push(t->loop, t);
        return;
    }
    /* relaxed: the waiter cannot return before our store below, so t
     * lives; our reference keeps it alive after that store. */
    cc__fetch_add_relaxed(&t->refs, 1);
    cc__store_rel(&w->state, CC__WOKEN);
    if (claim_for_wakeup(t))
        remote_push(t->loop, &t->node);
    task_release(t);
}

int cc_call_soon_threadsafe(cc_loop *loop, void (*fn)(void *arg), void *arg)
{
    struct call *c = cc__malloc(sizeof *c);
    if (!c)
        return -ENOMEM;
    *c = (struct call){{NULL, true}, fn, arg};
    remote_push(loop, &c->node);
    return 0;
}

/* ---- switching ------------------------------------------------------------- */

/*
 * Leave the running task t (queued again or parked): switch straight to the
 * next ready task of this round when it has started before, else go back to
 * the scheduler (a task's first resume comes from the scheduler, which makes
 * it the task's resumer: a finished task always returns there). The
 * scheduler finds the task that came back in cc__loop_running.
 */
static void switch_out(struct cc__task *t)
{
    cc_loop *l = t->loop;
    struct cc__task *next = l->run_head;
    /* budget <= run_len: a task queued alone (next == t) has none left. */
    if (!next || !next->started || l->budget == 0) {
        cc__coro_yield();
        return;
    }
    runq_pop(l);
    l->budget--;
    cc__task_ctx_in_use = &next->ctx;
    cc__loop_running = next;
    if (CC__UNLIKELY(l->diag))
        cc__diag_enter(l->diag, cc__coro_name(next->coro));
    cc__coro_switch(t->coro, next->coro);
}

/* ---- parking -------------------------------------------------------------- */

/* Suspend the running task until a wakeup or its deadline; may return
 * spuriously (a wakeup meant for an earlier wait). */
static void task_park(struct cc__task *t, cc_deadline deadline)
{
    cc__timer_arm(&t->loop->timers, &t->timer, deadline);
    uint32_t s = T_RUNNING;
    for (;;) {
        /* acq_rel: parking publishes nothing, but consuming a NOTIFIED
         * acquires the waker's CC__WOKEN store (struct cc__task). */
        if (s == T_RUNNING && cc__cas(&t->run_state, &s, T_PARKED)) {
            switch_out(t);
            break;
        }
        if (s == T_NOTIFIED && cc__cas(&t->run_state, &s, T_RUNNING))
            break;
    }
    cc__timer_disarm(&t->loop->timers, &t->timer);
}

int cc__loop_park(cc__waiter *w, cc_deadline deadline)
{
    struct cc__task *t = w->context;
    if (CC__UNLIKELY(t != cc__loop_running))
        cc__panic("a waiter parks outside the task that made it", -EINVAL);
    if (t->cancel.scope < deadline) /* a deadline scope ends first */
        deadline = t->cancel.scope;
    /* acquire: pairs with the waker's release store of CC__WOKEN. */
    t->wait_until = deadline;
    int r = 0;
    while (cc__load_acq(&w->state) == CC__WAITING) {
        int stop = cc__cancel_pending(&t->cancel);
        if (stop == 0 && deadline != CC_FOREVER && deadline <= cc__now())
            stop = -ETIMEDOUT;
        if (stop < 0) {
            r = cc__load_acq(&w->state) == CC__WAITING ? stop : 0;
            break;
        }
        task_park(t, deadline);
    }
    t->wait_what = NULL;
    return r;
}

int cc__loop_sleep_until(cc_deadline deadline)
{
    struct cc__task *t = cc__loop_running;
    if (!t)
        return -EPERM;
    cc__waiter w;
    cc__waiter_init(&w);
    cc__loop_note_wait("sleep", -1);
    int r = cc__loop_park(&w, deadline); /* nobody wakes w: only a time */
    /* Its own deadline passing is a sleep done; a scope's is a timeout:
     * which came first, not the clock at our (maybe late) resume. */
    return r == -ETIMEDOUT && deadline <= t->cancel.scope ? 0 : r;
}

struct cc__cancel *cc__loop_cancel_of(struct cc__task *t)
{
    return &t->cancel;
}

void cc__loop_interrupt(struct cc__task *t)
{
    if (claim_for_wakeup(t)) /* else running: its next park looks again */
        runq_push(t->loop, t);
}

static int task_body(void *arg, void **result)
{
    struct cc__task *t = arg;
    return t->fn(t->arg, result);
}

struct cc__task *cc__loop_task_of(cc_future *f)
{
    /* Not t->loop: a task of another loop may end, and be freed, at any
     * moment. The future's fields are set before it is shared; a task not
     * done keeps its loop alive, so the loop's address is not yet reused. */
    if (f->fn != task_body || f->cancel_ctx != tls_loop || cc_future_done(f))
        return NULL;
    return f->arg;
}

void cc_yield(void)
{
    struct cc__task *t = cc__loop_running;
    if (!t) {
        sched_yield();
        return;
    }
    runq_push(t->loop, t);
    switch_out(t);
}

cc_future *cc_task_current(void)
{
    struct cc__task *t = cc__loop_task();
    return t ? t->future : NULL;
}

const char *cc_task_name(void)
{
    struct cc__task *t = cc__loop_task();
    return t ? cc__coro_name(t->coro) : NULL;
}

cc_loop *cc_loop_current(void) { return tls_loop; }

struct cc__poller *cc__loop_poller(void) { return tls_loop->poller; }

void cc__loop_fd_waits(int delta) { tls_loop->fd_waits += delta; }

bool cc__loop_others_ready(void) { return tls_loop->run_head != NULL; }

/* ---- for the diagnostics (loop_diag.c) --------------------------------------- */

void cc__loop_note_wait(const char *what, long arg)
{
    if (cc__loop_running) {
        cc__loop_running->wait_what = what;
        cc__loop_running->wait_arg = arg;
    }
}

static const char *state_name(cc_loop *l, struct cc__task *t)
{
    if (t == cc__loop_running)
        return "running";
    switch (cc__load_relaxed(&t->run_state)) {
    case T_PARKED:
        return "parked";
    case T_NOTIFIED:
        return "woken";
    case T_DONE:
        return "done";
    default:
        return t->started ? "ready" : "new";
    }
}

void cc__loop_each_task(cc_loop *l, void (*fn)(void *, const cc__task_info *),
                        void *ctx)
{
    for (struct cc__task *t = l->all; t; t = t->all_next) {
        cc__task_info info = {
            .name = cc__coro_name(t->coro),
            .state = state_name(l, t),
            .what = t->wait_what,
            .arg = t->wait_arg,
            .until = t->wait_until,
        };
        fn(ctx, &info);
    }
}

size_t cc__loop_ntasks(cc_loop *l) { return l->live; }

/* seq_cst: read after the diagnostics saw no other thread, so a push made
 * by a thread before it exited is seen. */
bool cc__loop_remote_pending(cc_loop *l)
{
    return cc__load_seq_cst(&l->remote) != NULL;
}

struct cc__poller *cc__loop_poller_of(cc_loop *l) { return l->poller; }

struct cc__diag **cc__loop_diag_slot(cc_loop *l) { return &l->diag; }

/* ---- tasks ------------------------------------------------------------------ */

static void task_main(void *arg)
{
    struct cc__task *t = arg;
    cc__future_run(t->future); /* runs fn unless cancelled before it began */
}

/* Memory for a task object (task_init it): a spare one of l's, or new. */
static struct cc__task *task_alloc(cc_loop *l)
{
    struct cc__task *t = l->spare;
    if (!t)
        return cc__malloc(sizeof *t);
    CC__REUSE_UNPOISON(t, sizeof *t);
    l->spare = t->next;
    l->n_spare--;
    return t;
}

#if __SIZEOF_POINTER__ == 8
_Static_assert(sizeof(struct cc__task) == 176,
               "task_init sets every field of struct cc__task: update it");
#endif

/* Every field one by one: a memset (or a compound literal) of the whole
 * object is a `rep stos`, dearer than the rest of a spawn's bookkeeping. */
static void task_init(struct cc__task *t, cc_loop *l, cc__coro *coro,
                      cc_future *f, cc_task_fn fn, void *arg)
{
    t->node = (struct remote_node){NULL, false};
    t->next = NULL;
    t->queued = false;
    t->started = false;
    t->coro = coro;
    t->future = f;
    t->loop = l;
    cc__store_relaxed(&t->run_state, T_RUNNING);
    cc__store_relaxed(&t->refs, 1);
    cc__timer_init(&t->timer);
    t->ctx = (struct cc__task_ctx){false, NULL};
    t->cancel = (struct cc__cancel){false, 0, CC_FOREVER};
    t->fn = fn;
    t->arg = arg;
    t->all_next = t->all_prev = NULL;
    t->wait_what = NULL;
    t->wait_arg = -1;
    t->wait_until = CC_FOREVER;
}

/* Keep a task object nobody else can reach for l's next spawn. */
static void task_recycle(cc_loop *l, struct cc__task *t)
{
    if (l->n_spare >= SPARE_MAX) {
        cc__free(t, sizeof *t);
        return;
    }
    t->next = l->spare;
    l->spare = t;
    l->n_spare++;
    CC__REUSE_POISON(t, sizeof *t, &t->next);
}

int cc_spawn_with(cc_task_fn fn, void *arg, const cc_task_opts *opts,
                  cc_future **out)
{
    cc_loop *l = tls_loop;
    if (!l)
        return -EPERM;
    if (cc__timer_reserve(&l->timers, l->live + 1) < 0)
        return -ENOMEM;
    struct cc__task *t = task_alloc(l);
    cc_future *f = t ? cc__future_alloc() : NULL;
    if (f)
        cc__future_init(f);
    const char *name = opts && opts->name ? opts->name : "task";
    cc__coro *coro;
    if (!f || cc__coro_create(&coro, task_main, t,
                              opts ? opts->stack_size : 0, name) < 0) {
        if (f)
            cc_future_release(f);
        if (t)
            task_recycle(l, t);
        return -ENOMEM;
    }
    task_init(t, l, coro, f, fn, arg);
    f->fn = task_body;
    f->arg = t;
    f->cancel_ctx = l; /* cc__loop_task_of */
    l->live++;
    t->all_next = l->all;
    if (l->all)
        l->all->all_prev = t;
    l->all = t;
    runq_push(l, t);
    if (out) { /* relaxed: f is still ours alone; the caller's reference */
        cc__store_relaxed(&f->refs, 2);
        *out = f;
    }
    return 0;
}

int cc_spawn(cc_task_fn fn, void *arg, cc_future **task)
{
    return cc_spawn_with(fn, arg, NULL, task);
}

/*
 * Free a finished task. A waker takes its reference on t before the CC__WOKEN
 * store that lets t's park return, so every waker that will ever touch t
 * holds one by now: refs == 1 means none is at work and none can come, and
 * t is ours to reuse with no atomic RMW. Else those wakers must see DONE and
 * the last reference frees t.
 */
static void reap(cc_loop *l, struct cc__task *t)
{
    cc__coro_destroy(t->coro);
    t->coro = NULL;
    cc_future_release(t->future);
    l->live--;
    *(t->all_prev ? &t->all_prev->all_next : &l->all) = t->all_next;
    if (t->all_next)
        t->all_next->all_prev = t->all_prev;
    /* acquire: pairs with the wakers' release of their references. */
    if (cc__load_acq(&t->refs) == 1) {
        task_recycle(l, t);
        return;
    }
    /* acq_rel RMW: later looks by wakers see DONE and leave t alone. */
    cc__xchg(&t->run_state, T_DONE);
    task_release(t);
}

/* Resume t; tasks may switch among themselves before one comes back. */
static void run_task(cc_loop *l, struct cc__task *t)
{
    struct cc__task_ctx *outer = cc__task_ctx_in_use; /* the scheduler's */
    cc__loop_running = t;
    t->started = true;
    cc__task_ctx_in_use = &t->ctx;
    if (CC__UNLIKELY(l->diag))
        cc__diag_enter(l->diag, cc__coro_name(t->coro));
    cc__coro_resume(t->coro);
    if (CC__UNLIKELY(l->diag))
        cc__diag_leave(l->diag);
    t = cc__loop_running; /* the one back: finished, parked or queued */
    cc__task_ctx_in_use = outer;
    cc__loop_running = NULL;
    if (cc__coro_done(t->coro))
        reap(l, t);
}

/* ---- the scheduler ---------------------------------------------------------- */

static void dispatch(cc__poll_event *evs, int n)
{
    for (int i = 0; i < n; i++) /* loop_fd.c and loop_io.c made them */
        if (evs[i].events & CC__POLL_IO)
            cc__loop_io_done(evs[i].data, evs[i].res);
        else
            cc__loop_fd_ready(evs[i].data, evs[i].events);
}

/* Poll the fds, sleeping until `until` when nothing else is to be done. */
static void wait_events(cc_loop *l, cc_deadline until)
{
    cc__poll_event evs[POLL_BATCH];
    if (until != CC_NOWAIT) {
        /* seq_cst: announce the sleep, then look for pushes (Dekker). */
        cc__xchg_seq_cst(&l->sleeping, 1);
        if (cc__load_seq_cst(&l->remote))
            until = CC_NOWAIT;
    }
    int n = cc__poller_wait(l->poller, until, evs, POLL_BATCH);
    /* relaxed: a pusher that still sees 1 only writes the eventfd once more. */
    cc__store_relaxed(&l->sleeping, 0);
    dispatch(evs, n);
}

/* Whether a wakeup from another thread came within a short spin. Not
 * tried when every task waits for an fd (a server's connections): only
 * the poller can wake them, and the spin would burn CPU at every sleep. */
static bool spin_for_remote(cc_loop *l)
{
    for (int i = 0; i < LOOP_SPINS; i++) {
        if (cc__load_relaxed(&l->remote))
            return true;
        cc__cpu_relax();
    }
    return false;
}

/* Run the tasks that are ready now, once each, in order. */
static void run_round(cc_loop *l)
{
    l->budget = l->run_len;
    while (l->budget > 0 && l->run_head) {
        l->budget--;
        run_task(l, runq_pop(l));
    }
}

/* Until when the loop may sleep: its next timer, or what the diagnostics
 * say (a deadlock check, a dump asked for). */
static cc_deadline idle_until(cc_loop *l)
{
    cc_deadline until = cc__timer_next(&l->timers);
    if (CC__UNLIKELY(l->diag))
        until = cc__diag_idle(l->diag, l, until, l->fd_waits);
    return until;
}

static void run_loop(cc_loop *l)
{
    while (l->live > 0) {
        take_remote(l);
        fire_timers(l);
        run_round(l);
        if (l->live == 0)
            break;
        if (l->run_head == NULL &&
            ((size_t)l->fd_waits >= l->live || !spin_for_remote(l)))
            wait_events(l, idle_until(l));
        else if (l->fd_waits > 0)
            wait_events(l, CC_NOWAIT);
    }
}

/* ---- the loop --------------------------------------------------------------- */

/* In a fork child the forking thread is no task of any loop (as Python
 * resets the running loop there): its waits block the thread instead of
 * parking in the copied loop, whose scheduler would run the parent's other
 * tasks again and share the parent's io_uring. */
static void forget_loop_in_child(void)
{
    tls_loop = NULL;
    cc__loop_running = NULL;
    cc__task_ctx_in_use = NULL;
}

static void install_fork_hook(void)
{
    CC__CHECK("pthread_atfork",
              -pthread_atfork(NULL, NULL, forget_loop_in_child));
}

static int loop_new(cc_loop **out)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, install_fork_hook);
    cc_loop *l = cc__calloc(1, sizeof *l);
    if (!l)
        return -ENOMEM;
    int r = cc__poller_new(&l->poller);
    if (r == 0)
        r = cc__diag_new(&l->diag, l);
    if (r < 0) {
        if (l->poller)
            cc__poller_free(l->poller);
        cc__free(l, sizeof *l);
        return r;
    }
    *out = l;
    return 0;
}

/* Run what calls arrived after the last task (they may spawn more), until
 * no pusher is at work: only then may the loop's memory go. */
static void loop_drain(cc_loop *l)
{
    for (;;) {
        take_remote(l);
        if (l->live > 0) {
            run_loop(l);
            continue;
        }
        /* acquire: pairs with the pushers' release decrement. */
        if (cc__load_acq(&l->wakers) == 0 && !cc__load_acq(&l->remote))
            return;
        sched_yield();
    }
}

static void loop_free(cc_loop *l)
{
    while (l->spare) {
        struct cc__task *t = l->spare;
        CC__REUSE_UNPOISON(t, sizeof *t);
        l->spare = t->next;
        cc__free(t, sizeof *t);
    }
    cc__diag_free(l->diag);
    cc__loop_fd_close();
    cc__poller_free(l->poller);
    cc__timer_heap_free(&l->timers);
    cc__free(l, sizeof *l);
}

int cc_loop_run(cc_task_fn fn, void *arg, void **result)
{
    if (result)
        *result = NULL;
    if (tls_loop)
        return -EBUSY;
    cc_loop *l;
    int r = loop_new(&l);
    if (r < 0)
        return r;
    tls_loop = l;
    cc_future *main_task;
    r = cc_spawn_with(fn, arg, &(cc_task_opts){"main", 0}, &main_task);
    if (r == 0) {
        run_loop(l);
        loop_drain(l);
        r = cc_future_result(main_task, CC_NOWAIT, result);
        cc_future_release(main_task);
    }
    loop_free(l);
    tls_loop = NULL;
    return r;
}
