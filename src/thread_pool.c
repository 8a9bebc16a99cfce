/*
 * thread_pool.c: the thread pool executor (Python's ThreadPoolExecutor).
 *
 * DESIGN. Submitted futures are the queue's nodes: an intrusive multi-producer
 * queue after Vyukov (a submit is one atomic exchange on the tail, no lock);
 * workers take tasks from the head one at a time under a short consumer mutex.
 * A worker out of work first spins for a few tens of microseconds (waking an
 * idle vCPU costs ~20 us, BENCHMARKS.md), at most one worker at a time, then
 * parks on the pool's wait queue (wait.h) after counting itself idle. A submit
 * wakes a parked worker only when one is idle and none is spinning; a worker
 * that takes a task and sees more behind it wakes the next one, so wakeups
 * ramp up with the load instead of costing a syscall per task. Lost wakeups are
 * ruled out Dekker-style: the submitter publishes its task (a seq_cst
 * exchange) then reads the idle/spinning counts (seq_cst); the sleeper
 * publishes its count, then a seq_cst fence, then re-reads the queue. A submit
 * racing shutdown is handled the same way against the CLOSED flag: it either
 * fails, or its task is seen by a worker, or it cancels it (late_submit).
 *
 * Workers are cc_threads (thread.h) named "<prefix>-<i>", not daemons. The
 * first shutdown(wait) joins them all; later ones wait for it on exit_q.
 * shutdown(wait=false) leaves them to drain the queue and exit; the free
 * joins them. An atexit hook shuts down and joins the pools still open at
 * exit(): their workers finish the queue, then exit (Python joins
 * ThreadPoolExecutor workers at exit). When a worker's task calls exit(),
 * that worker never returns: the hook marks it exiting (thread.c), and the
 * joiner of its pool, the hook itself (which detaches it) or a
 * shutdown(wait) running in another thread, joins every other worker, lets
 * the hook go on (rest_joined), and parks on it until the process ends;
 * other shutdown(wait)s, which wait for that join, then tell thread.c's
 * hook not to wait for them either (cc__thread_stuck_begin).
 * The hook is registered after thread.c's, which waits for every
 * non-daemon thread, so it runs first.
 */
#include "executor_internal.h"
#include "loop_internal.h"

#include "thread_internal.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* How long a worker out of work polls the queue before parking. */
#define SPIN_NS (50 * CC_USEC)

/* Bits of thread_pool.flags. */
enum {
    POOL_CLOSED = 1, /* shut down: submits fail with -ESHUTDOWN */
    POOL_BROKEN = 2, /* an initializer failed: tasks fail with -EPIPE */
    POOL_CANCEL = 4, /* a shutdown cancelled the queue (with CLOSED) */
};

struct worker {
    cc_thread *thread;        /* the thread; freed once joined */
    struct thread_pool *pool; /* its pool */
    bool reaped;              /* joined or detached; the joiner's own */
};

/* The calling thread's record if it is a pool's worker, else NULL. */
static CC__THREAD_LOCAL struct worker *current_worker;

struct thread_pool {
    cc_executor base; /* first: the executor interface */
    cc__atomic_u32 flags; /* POOL_* (seq_cst where a submit races shutdown);
                             read by every submit, written almost never */
    /* Producer side, written by every submit. (The pads keep the three
     * groups on separate cache lines; malloc gives no 64-byte alignment.) */
    char pad0[64];
    _Atomic(cc__task_node *) tail; /* last queued node (xchg,
                                                   acq_rel) */
    /* Consumer side, written by the workers. */
    char pad1[64];
    cc__mutex consumer; /* serialises taking from the head */
    cc__task_node *head;             /* oldest node; under consumer */
    cc__task_node stub;              /* the queue's placeholder node */
    /* Sleep and wake. */
    char pad2[64];
    cc__atomic_u32 idle; /* workers counted idle: parked, or about
                                         to park under m (fenced, see DESIGN) */
    cc__atomic_u32 spinning;          /* workers polling for work */
    cc__mutex m;                      /* guards the fields below */
    cc__waitq idle_q;                 /* parked workers */
    cc__waitq exit_q;                 /* shutdown(wait)s waiting for the
                                         joiner */
    bool closing;                     /* shut down: workers exit when idle */
    bool joining;                     /* a shutdown(wait) joins the workers */
    bool rest_joined;                 /* ... and all but one that calls
                                         exit() (the exit hook waits) */
    bool stranded;                    /* ... one of which never returns
                                         (set with rest_joined) */
    bool joined;                      /* ... and has joined them all */
    size_t live;                      /* workers that have not decided to
                                         exit (they decide under m) */
    char *broken_msg;                 /* why the pool is broken, or NULL */
    /* Fixed at creation. */
    size_t nworkers;                  /* worker threads */
    struct worker *workers;           /* their records */
    size_t started;                   /* threads actually started */
    cc_thread_pool_options opts;      /* as given (prefix copied) */
    /* In open_pools, under its guard. */
    struct thread_pool *prev, *next;  /* neighbours in the list */
    bool listed;                      /* in the list */
    struct thread_pool *held_next;    /* the exit hook's snapshot of it */
    bool held;                        /* the exit hook uses the pool */
    bool free_deferred;               /* ... and frees it when done */
};

#define POOL(ex) ((struct thread_pool *)(ex))

/* ---- the queue ----------------------------------------------------------------- */

static void push(struct thread_pool *p, cc__task_node *n)
{
    cc__store_relaxed(&n->next, NULL);
    /* seq_cst: the submit's side of the handshakes in DESIGN; the node's
     * contents are published by the release store below, which the consumer
     * reads with acquire. */
    cc__task_node *prev = cc__xchg_seq_cst(&p->tail, n);
    cc__store_rel(&prev->next, n);
}

/*
 * Take the oldest node, under p->consumer. NULL with *busy false: empty. NULL
 * with *busy true: a producer is between its exchange and its link; retry.
 */
static cc__task_node *pop_locked(struct thread_pool *p, bool *busy)
{
    cc__task_node *head = p->head, *next = cc__load_acq(&head->next);
    *busy = false;
    if (head == &p->stub) {
        if (!next) {
            *busy = cc__load_acq(&p->tail) != &p->stub;
            return NULL;
        }
        p->head = head = next;
        next = cc__load_acq(&next->next);
    }
    if (!next) {
        if (cc__load_acq(&p->tail) != head) {
            *busy = true;
            return NULL;
        }
        push(p, &p->stub);
        next = cc__load_acq(&head->next);
        if (!next) {
            *busy = true;
            return NULL;
        }
    }
    p->head = next;
    return head;
}

/* More nodes behind the head? (under p->consumer; a hint only) */
static bool more_locked(struct thread_pool *p)
{
    return p->head != &p->stub || cc__load_relaxed(&p->tail) != &p->stub;
}

/* Take the oldest task, or NULL if the queue is empty. */
static cc_future *take(struct thread_pool *p, bool *more)
{
    for (int i = 0;; i++) {
        bool busy;
        cc__mutex_lock(&p->consumer);
        cc__task_node *n = pop_locked(p, &busy);
        *more = n && more_locked(p);
        cc__mutex_unlock(&p->consumer);
        if (n)
            return CC__CONTAINER_OF(n, cc_future, node);
        if (!busy)
            return NULL;
        if (i < 64) /* the producer is a few instructions from done */
            cc__cpu_relax();
        else        /* or preempted: let it run */
            sched_yield();
    }
}

/* ---- sleep and wake -------------------------------------------------------------- */

static void wake_worker(struct thread_pool *p)
{
    cc__mutex_lock(&p->m);
    if (cc__wake_one(&p->idle_q, 0))
        cc__fetch_sub(&p->idle, 1);
    cc__mutex_unlock(&p->m);
}

/*
 * More work is queued: wake a worker unless one is looking. Submits call it
 * right after their seq_cst push (the loads are seq_cst for that handshake);
 * workers call it only to ramp up, where no ordering is needed.
 */
static void maybe_wake(struct thread_pool *p)
{
    if (cc__load_seq_cst(&p->idle) > 0 && cc__load_seq_cst(&p->spinning) == 0)
        wake_worker(p);
}

/* Poll the queue for SPIN_NS; at most one worker spins at a time. */
static cc_future *spin_for_task(struct thread_pool *p)
{
    if (cc__fetch_add(&p->spinning, 1) > 0) {
        cc__fetch_sub(&p->spinning, 1);
        return NULL;
    }
    cc_future *f = NULL;
    bool more = false;
    int64_t end = cc__now() + SPIN_NS;
    for (int i = 1; !f; i++) {
        if (i % 32 == 0) {
            if (cc__now() > end)
                break;
            /* On a busy machine the thread we wait for may need this CPU. */
            sched_yield();
        }
        for (int k = 0; k < 8; k++)
            cc__cpu_relax();
        f = take(p, &more);
    }
    cc__fetch_sub_seq_cst(&p->spinning, 1);
    /* A submit that saw us spinning woke nobody: if its task came in after
     * `more` was read, nobody else looks for it while we run ours. seq_cst:
     * our decrement before the tail, against its push before its load of
     * `spinning` (DESIGN); with `more` false the stub went back in, so a
     * tail past it is a node queued since. */
    if (f && (more || cc__load_seq_cst(&p->tail) != &p->stub))
        maybe_wake(p);
    return f;
}

/* Park until woken; returns a task, or NULL when the pool shuts down. */
static cc_future *park_for_task(struct thread_pool *p)
{
    for (;;) {
        bool more;
        cc__mutex_lock(&p->m);
        cc__fetch_add(&p->idle, 1);
        cc__fence_seq_cst(); /* the count before the queue: see DESIGN */
        cc_future *f = take(p, &more);
        if (f || p->closing) {
            cc__fetch_sub(&p->idle, 1);
            if (!f)
                p->live--; /* exits: decided under m (late_submit) */
            cc__mutex_unlock(&p->m);
            /* The submits behind f may have seen us spinning and woken
             * nobody: ramp up as next_task does. */
            if (f && more)
                maybe_wake(p);
            return f;
        }
        cc__waiter w;
        cc__waiter_init(&w);
        cc__wait_on(&p->idle_q, &p->m, &w, CC_FOREVER); /* waker did idle-- */
        cc__mutex_unlock(&p->m);
    }
}

static cc_future *next_task(struct thread_pool *p)
{
    bool more;
    cc_future *f = take(p, &more);
    if (f) {
        if (more)
            maybe_wake(p);
        return f;
    }
    f = spin_for_task(p);
    return f ? f : park_for_task(p);
}

/* ---- workers --------------------------------------------------------------------- */

static void fail_broken(struct thread_pool *p, cc_future *f)
{
    if (!cc_future_set_running_or_notify_cancel(f))
        return;
    cc__mutex_lock(&p->m);
    const char *why = p->broken_msg ? p->broken_msg : "";
    size_t n = strlen(why) + 1;
    char *msg = cc__malloc(n);
    if (msg)
        memcpy(msg, why, n);
    cc__mutex_unlock(&p->m);
    cc__future_finish(f, -EPIPE, NULL, msg);
}

/* f was still queued when a shutdown cancelled the queue (a racing
 * submit's: late_submit), or the pool is broken. */
static void skip_task(struct thread_pool *p, cc_future *f, uint32_t flags)
{
    if (flags & POOL_CANCEL)
        cc_future_cancel(f);
    else
        fail_broken(p, f);
}

static void run_task(struct thread_pool *p, cc_future *f)
{
    /* relaxed: a worker held until after shutdown(cancel_futures) returned
     * sees CANCEL through whatever released it */
    uint32_t flags = cc__load_relaxed(&p->flags);
    if (CC__UNLIKELY(flags & (POOL_BROKEN | POOL_CANCEL)))
        skip_task(p, f, flags);
    else
        cc__future_run(f);
    cc_future_release(f); /* the pool's reference */
}

static int call_initializer(void *arg, void **result)
{
    struct thread_pool *p = arg;
    return p->opts.initializer(p->opts.initializer_arg);
}

/* Run the initializer; on failure, mark the pool broken (first one wins). */
static void initialize(struct thread_pool *p)
{
    void *unused;
    char *msg;
    int r = cc__task_call(call_initializer, p, &unused, &msg);
    if (r == 0)
        return;
    char buf[256];
    snprintf(buf, sizeof buf, "thread pool is broken: initializer failed: %s",
             msg ? msg : cc_strerror(r));
    cc__free(msg, 0);
    size_t n = strlen(buf) + 1;
    cc__mutex_lock(&p->m);
    if (!p->broken_msg && (p->broken_msg = cc__malloc(n)))
        memcpy(p->broken_msg, buf, n);
    cc__fetch_or(&p->flags, POOL_BROKEN);
    cc__mutex_unlock(&p->m);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct thread_pool *p = w->pool;
    current_worker = w;
    if (p->opts.initializer)
        initialize(p);
    cc_future *f;
    while ((f = next_task(p)))
        run_task(p, f);
    return NULL;
}

/* ---- the executor interface ------------------------------------------------------ */

static void cancel_queued(struct thread_pool *p)
{
    bool more;
    cc_future *f;
    while ((f = take(p, &more))) {
        cc_future_cancel(f);
        cc_future_release(f);
    }
}

/*
 * A submit saw the pool closed after its push: shutdown may have missed its
 * task. If a worker has not yet decided to exit, it will see the task (it
 * decides under m, after a fence); else nobody will ever run it: cancel it.
 * It counts as queued before the shutdown: cancel it (and whatever else is
 * still queued) if that shutdown cancelled the queue, which it may have
 * drained before the push.
 */
static void late_submit(struct thread_pool *p, bool cancel)
{
    cc__mutex_lock(&p->m);
    bool orphaned = p->live == 0;
    cc__fetch_sub(&p->idle, cc__wake_all(&p->idle_q, 0));
    cc__mutex_unlock(&p->m);
    if (orphaned || cancel)
        cancel_queued(p);
}

static int pool_submit(cc_executor *ex, cc_future *f)
{
    struct thread_pool *p = POOL(ex);
    uint32_t flags = cc__load_relaxed(&p->flags);
    if (CC__UNLIKELY(flags))
        return flags & POOL_CLOSED ? -ESHUTDOWN : -EPIPE;
    push(p, &f->node);
    maybe_wake(p);
    /* seq_cst: after the push, against shutdown's store and fence. */
    flags = cc__load_seq_cst(&p->flags);
    if (CC__UNLIKELY(flags & POOL_CLOSED))
        late_submit(p, flags & POOL_CANCEL);
    return 0;
}

/* Join (self: detach) every started worker not yet reaped; with give_up,
 * skip one that runs the exit hooks (it never returns). Returns whether
 * every one is reaped. */
static bool reap_workers(struct thread_pool *p, cc_thread *self, bool give_up)
{
    bool all = true;
    for (size_t i = 0; i < p->started; i++) {
        struct worker *w = &p->workers[i];
        if (w->reaped)
            continue;
        int r = w->thread == self ? cc_thread_detach(self)
                : give_up ? cc__thread_join_unless_exiting(w->thread)
                          : cc_thread_join(w->thread, CC_FOREVER, NULL);
        w->reaped = r == 0;
        all &= w->reaped;
        /* -EDEADLK: a task of this pool called shutdown(wait) (executor.h) */
        if (r < 0 && r != -EINPROGRESS)
            cc__panic("cc_thread_join", r);
    }
    return all;
}

static void set_and_wake(struct thread_pool *p, bool *flag)
{
    cc__mutex_lock(&p->m);
    *flag = true;
    cc__wake_all(&p->exit_q, 0);
    cc__mutex_unlock(&p->m);
}

/* Join every started worker, then let other shutdown(wait)s return. `self`:
 * the exit hook's worker, which can only be detached (see DESIGN). */
static void join_workers(struct thread_pool *p, cc_thread *self)
{
    bool all = reap_workers(p, self, true);
    cc__mutex_lock(&p->m);
    p->stranded = !all; /* before rest_joined: its waiters read both */
    cc__mutex_unlock(&p->m);
    set_and_wake(p, &p->rest_joined);
    reap_workers(p, self, false); /* parks for ever on an exiting worker */
    set_and_wake(p, &p->joined);
}

/* self: the exit hook's thread, a worker of p (see DESIGN), else NULL. */
static void shutdown_pool(struct thread_pool *p, bool wait,
                          bool cancel_futures, cc_thread *self)
{
    /* one store: a submit that sees CLOSED sees CANCEL with it */
    cc__fetch_or(&p->flags, POOL_CLOSED | (cancel_futures ? POOL_CANCEL : 0));
    cc__fence_seq_cst(); /* a submit in flight sees CLOSED or we see its task */
    if (cancel_futures)
        cancel_queued(p);
    cc__mutex_lock(&p->m);
    p->closing = true;
    cc__fetch_sub(&p->idle, cc__wake_all(&p->idle_q, 0));
    bool joiner = wait && !p->joining; /* the first shutdown(wait) joins */
    p->joining |= joiner;
    while (wait && !joiner && !(self ? p->rest_joined : p->joined)) {
        cc__waiter w;
        cc__waiter_init(&w);
        /* The joiner parks for good on a worker calling exit(), and so do
         * we: the exit hook must not wait for us (thread.c). */
        bool stuck = p->rest_joined && p->stranded && cc__thread_stuck_begin();
        cc__wait_on(&p->exit_q, &p->m, &w, CC_FOREVER);
        cc__thread_stuck_end(stuck);
    }
    cc__mutex_unlock(&p->m);
    if (joiner)
        join_workers(p, self);
}

static void pool_shutdown(cc_executor *ex, bool wait, bool cancel_futures)
{
    struct cc__protect p; /* it cannot fail: a cancelled task waits too */
    cc__protect_begin(&p);
    shutdown_pool(POOL(ex), wait, cancel_futures, NULL);
    cc__protect_end(&p);
}

/* ---- pools still open at exit ----------------------------------------------------- */

static struct {
    cc__mutex guard;          /* guards the list and each pool's links */
    struct thread_pool *head; /* pools created and not yet freed */
} open_pools;

static pthread_once_t exit_hook_once = PTHREAD_ONCE_INIT;

static void free_pool(struct thread_pool *p);

/* Take a snapshot of the open pools, each held: a concurrent free leaves
 * its memory to us (release_held). */
static struct thread_pool *hold_open_pools(void)
{
    cc__mutex_lock(&open_pools.guard);
    for (struct thread_pool *p = open_pools.head; p; p = p->next) {
        p->held = true;
        p->held_next = p->next;
    }
    struct thread_pool *first = open_pools.head;
    cc__mutex_unlock(&open_pools.guard);
    return first;
}

static void release_held(struct thread_pool *p)
{
    cc__mutex_lock(&open_pools.guard);
    p->held = false;
    bool deferred = p->free_deferred;
    cc__mutex_unlock(&open_pools.guard);
    if (deferred)
        free_pool(p);
}

/* atexit: close every open pool, so that they drain side by side, then join
 * their workers. A worker whose task called exit() joins the rest of its
 * pool, open or being freed (a free waits for it), without itself (see
 * DESIGN). The guard is not held while we join: a running task may still
 * make or free a pool (one it makes now is not closed here). */
static void close_open_pools(void)
{
    struct thread_pool *mine = current_worker ? current_worker->pool : NULL;
    cc__thread_mark_exiting();
    struct thread_pool *first = hold_open_pools(), *next;
    for (struct thread_pool *p = first; p; p = p->held_next)
        shutdown_pool(p, false, false, NULL);
    if (mine)
        shutdown_pool(mine, true, false, cc_thread_current());
    for (struct thread_pool *p = first; p; p = next) {
        if (p != mine)
            shutdown_pool(p, true, false, NULL);
        next = p->held_next; /* p may be freed once released */
        release_held(p);
    }
}

/* In a fork child the pools have no workers, and the guard may be held. */
static void forget_pools_in_child(void)
{
    memset(&open_pools, 0, sizeof open_pools);
}

/* Registered after a worker started, so after thread.c's exit hook: atexit
 * runs it before that one. */
static void install_exit_hook(void)
{
    if (atexit(close_open_pools) != 0)
        cc__panic("atexit", -ENOMEM);
    CC__CHECK("pthread_atfork",
              -pthread_atfork(NULL, NULL, forget_pools_in_child));
}

static void list_open(struct thread_pool *p)
{
    pthread_once(&exit_hook_once, install_exit_hook);
    cc__mutex_lock(&open_pools.guard);
    p->next = open_pools.head;
    if (p->next)
        p->next->prev = p;
    open_pools.head = p;
    p->listed = true;
    cc__mutex_unlock(&open_pools.guard);
}

static void unlist_open(struct thread_pool *p)
{
    cc__mutex_lock(&open_pools.guard);
    if (p->listed) {
        *(p->prev ? &p->prev->next : &open_pools.head) = p->next;
        if (p->next)
            p->next->prev = p->prev;
    }
    cc__mutex_unlock(&open_pools.guard);
}

/* Is the exit hook using p? Then it frees p when done (release_held). */
static bool defer_free(struct thread_pool *p)
{
    cc__mutex_lock(&open_pools.guard);
    bool held = p->held;
    p->free_deferred = held;
    cc__mutex_unlock(&open_pools.guard);
    return held;
}

static size_t pool_max_workers(const cc_executor *ex)
{
    return POOL(ex)->nworkers;
}

static void pool_free(cc_executor *ex)
{
    struct thread_pool *p = POOL(ex);
    unlist_open(p);
    pool_shutdown(ex, true, false); /* joins the workers, if not yet done */
    if (!defer_free(p))
        free_pool(p);
}

static void free_pool(struct thread_pool *p)
{
    cc__free(p->broken_msg, 0);
    cc__free((char *)p->opts.thread_name_prefix, 0);
    cc__free(p->workers, p->nworkers * sizeof *p->workers);
    cc__free(p, sizeof *p);
}

static const struct cc__executor_ops pool_ops = {
    .submit = pool_submit,
    .shutdown = pool_shutdown,
    .max_workers = pool_max_workers,
    .free = pool_free,
};

/* ---- creation ---------------------------------------------------------------------- */

static int copy_options(struct thread_pool *p, const cc_thread_pool_options *opts)
{
    if (opts)
        p->opts = *opts;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    p->nworkers = p->opts.max_workers ? p->opts.max_workers : (cpus > 0 ? cpus : 1);
    const char *prefix = p->opts.thread_name_prefix;
    p->opts.thread_name_prefix = NULL;
    if (prefix) {
        char *copy = cc__malloc(strlen(prefix) + 1);
        if (!copy)
            return -ENOMEM;
        p->opts.thread_name_prefix = strcpy(copy, prefix);
    }
    p->workers = cc__calloc(p->nworkers, sizeof *p->workers);
    return p->workers ? 0 : -ENOMEM;
}

static int start_workers(struct thread_pool *p)
{
    const char *prefix = p->opts.thread_name_prefix;
    prefix = prefix ? prefix : "concur";
    size_t size = strlen(prefix) + 24;
    char *name = cc__malloc(size);
    if (!name)
        return -ENOMEM;
    p->live = p->nworkers;
    int r = 0;
    for (size_t i = 0; i < p->nworkers && r == 0; i++) {
        struct worker *w = &p->workers[i];
        w->pool = p;
        snprintf(name, size, "%s-%zu", prefix, i);
        cc_thread_options topts = {.name = name}; /* copied by the thread */
        r = cc_thread_start(&w->thread, worker_main, w, &topts);
        if (r < 0) {
            cc__mutex_lock(&p->m); /* those never started never exit */
            p->live -= p->nworkers - i;
            cc__mutex_unlock(&p->m);
        } else {
            p->started++;
        }
    }
    cc__free(name, size);
    return r;
}

int cc_thread_pool_new(cc_executor **out, const cc_thread_pool_options *opts)
{
    struct thread_pool *p = cc__calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->base.ops = &pool_ops;
    p->head = &p->stub;
    cc__store_relaxed(&p->tail, &p->stub);
    int r = copy_options(p, opts);
    if (r == 0)
        r = start_workers(p);
    if (r == 0)
        list_open(p);
    if (r < 0) {
        pool_free(&p->base);
        return r;
    }
    *out = &p->base;
    return 0;
}
