/*
 * future.c: futures (Python's concurrent.futures.Future) and the "current task"
 * of a thread.
 *
 * DESIGN. A future's state word moves pending -> running -> completing ->
 * finished, or pending -> cancelled, by compare-and-swap, so that the common
 * case (nobody is waiting yet) completes with no lock at all. Whoever wants to
 * be told about completion (a waiter, a done callback, a subscription of
 * wait-on-many) takes the future's short mutex and sets the LISTENERS bit in the
 * same word; a completer that sees that bit in the value its CAS replaced takes
 * the mutex and notifies. The bit is set under the mutex and never cleared, so a
 * listener either sees the done state (and does not wait) or is linked before
 * the completer takes the mutex to notify. The "completing" state is a claim:
 * only the party that moved the future there writes its outcome, so a racing
 * cancel or second set_result can never tear it. A completer whose claim saw
 * no listener leaves "completing" with a plain release store (no second RMW:
 * a task's whole life has only a few); a listener that comes in meanwhile
 * finds "completing", whose bit that store may erase, and so waits the few
 * instructions until the future is done instead of linking itself.
 */
#include "future_internal.h"
#include "loop_internal.h"

#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* A done callback, in the future's list until it runs. */
struct cc__callback {
    struct cc__callback *next; /* next in the order added */
    cc_future_callback fn;     /* the callback */
    void *arg;                 /* its argument */
};

/* Polls of the state before a waiter takes the mutex and parks: a short task
 * on another worker is often done within a microsecond. */
enum { WAIT_SPINS = 64 };

static uint32_t state_of(uint32_t s) { return s & CC__F_STATE_MASK; }

static bool is_done(uint32_t s)
{
    return state_of(s) == CC__F_FINISHED || state_of(s) == CC__F_CANCELLED;
}

/* acquire: a done state makes the outcome fields written before it visible. */
static uint32_t load_state(const cc_future *f)
{
    return cc__load_acq((cc__atomic_u32 *)&f->state);
}

/* ---- allocation -------------------------------------------------------------- */

/*
 * Freed futures are kept in a small per-thread cache for the next allocation: a
 * submit loop and its releases usually run in one thread, and malloc's own
 * per-thread cache holds only a few blocks of a size. A thread's cache is
 * freed when the thread exits (a pthread key destructor).
 */
enum { CACHE_MAX = 256 };

struct future_cache {
    cc__task_node *head; /* cached futures, linked through their queue node */
    unsigned n;      /* how many */
    bool registered; /* the exit destructor is set for this thread */
};

static CC__THREAD_LOCAL struct future_cache cache;
static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void cache_drain(void *arg)
{
    struct future_cache *c = arg;
    while (c->head) {
        cc_future *f = CC__CONTAINER_OF(c->head, cc_future, node);
        CC__REUSE_UNPOISON(f, sizeof *f);
        c->head = cc__load_relaxed(&f->node.next);
        cc__free(f, sizeof *f);
    }
    c->n = 0;
    c->registered = false; /* a later free in this thread registers again */
}

static void cache_key_create(void)
{
    CC__CHECK("pthread_key_create", -pthread_key_create(&cache_key, cache_drain));
}

static bool cache_register(void)
{
    pthread_once(&cache_once, cache_key_create);
    cache.registered = pthread_setspecific(cache_key, &cache) == 0;
    return cache.registered;
}

cc_future *cc__future_alloc(void)
{
    if (!cache.head)
        return cc__malloc(sizeof(cc_future));
    cc_future *f = CC__CONTAINER_OF(cache.head, cc_future, node);
    CC__REUSE_UNPOISON(f, sizeof *f);
    cache.head = cc__load_relaxed(&f->node.next);
    cache.n--;
    return f;
}

static void future_free(cc_future *f)
{
    if (cache.n < CACHE_MAX && (cache.registered || cache_register())) {
        /* relaxed: the link is private to this thread. */
        cc__store_relaxed(&f->node.next, cache.head);
        cache.head = &f->node;
        cache.n++;
        CC__REUSE_POISON(f, sizeof *f, &f->node.next);
        return;
    }
    cc__free(f, sizeof *f);
}

/* ---- life cycle ------------------------------------------------------------ */

#if __SIZEOF_POINTER__ == 8
_Static_assert(sizeof(cc_future) == 120,
               "cc__future_init sets every field of cc_future: update it");
#endif

/* Every field one by one: a memset of the whole future is a `rep stos`,
 * which costs a task spawn (loop.c) more than the rest of this. */
void cc__future_init(cc_future *f)
{
    cc__store_relaxed(&f->state, CC__F_PENDING);
    cc__store_relaxed(&f->refs, 1);
    cc__store_relaxed(&f->node.next, NULL);
    f->fn = NULL;
    f->arg = NULL;
    f->result = NULL;
    f->err = 0;
    f->msg = NULL;
    f->m = (cc__mutex)CC__MUTEX_INIT;
    f->waiters = (cc__waitq){NULL, NULL};
    f->callbacks = NULL;
    f->cb_tail = &f->callbacks;
    f->subs = NULL;
    f->cancel_running = NULL;
    f->cancel_ctx = NULL;
}

int cc_future_new(cc_future **out)
{
    cc_future *f = cc__future_alloc();
    if (!f)
        return -ENOMEM;
    cc__future_init(f);
    *out = f;
    return 0;
}

cc_future *cc_future_retain(cc_future *f)
{
    /* relaxed: a new reference is taken from an existing one, which already
     * keeps the future alive. */
    cc__fetch_add_relaxed(&f->refs, 1);
    return f;
}

void cc_future_release(cc_future *f)
{
    /* acquire load: a count of 1 is our own reference, and nobody can take
     * a new one without holding one, so f is ours to free with no RMW;
     * acquire pairs with the release decrements of the earlier holders.
     * Else acq_rel decrement: the last one frees and must see the others'
     * writes. */
    if (!f || (cc__load_acq(&f->refs) != 1 && cc__fetch_sub(&f->refs, 1) != 1))
        return;
    struct cc__callback *cb = f->callbacks;
    while (cb) { /* only left when a future dies before it is done */
        struct cc__callback *next = cb->next;
        cc__free(cb, sizeof *cb);
        cb = next;
    }
    cc__free(f->msg, 0);
    future_free(f);
}

/* ---- state transitions ----------------------------------------------------- */

/*
 * Notify everyone listening, under f->m: wake the waiters, call the
 * subscriptions, and detach the done callbacks, which run after the unlock.
 */
static struct cc__callback *notify_locked(cc_future *f)
{
    cc__wake_all(&f->waiters, 0);
    while (f->subs) {
        cc__future_sub *s = f->subs;
        f->subs = s->next;
        s->linked = false;
        s->notify(s, f);
    }
    struct cc__callback *cbs = f->callbacks;
    f->callbacks = NULL;
    f->cb_tail = &f->callbacks;
    return cbs;
}

static void run_callbacks(cc_future *f, struct cc__callback *cb)
{
    while (cb) {
        struct cc__callback *next = cb->next;
        cb->fn(f, cb->arg);
        cc__free(cb, sizeof *cb);
        cb = next;
    }
}

/*
 * Move f from one of the states in the bit set `from` (1 << CC__F_*) to `to`,
 * keeping the LISTENERS bit. Returns the replaced word, or UINT32_MAX if f was
 * in none of them.
 */
static uint32_t cas_state(cc_future *f, unsigned from, uint32_t to)
{
    uint32_t s = cc__load_relaxed(&f->state);
    do {
        if (!(from & (1u << state_of(s))))
            return UINT32_MAX;
        /* acq_rel (cc__cas_weak): release publishes the outcome fields with a
         * done state; acquire orders the claim before our writes. */
    } while (!cc__cas_weak(&f->state, &s, (s & CC__F_LISTENERS) | to));
    return s;
}

/* Move f to a done state; notify if anyone listens. */
static bool become_done(cc_future *f, unsigned from, uint32_t to)
{
    uint32_t old = cas_state(f, from, to);
    if (old == UINT32_MAX)
        return false;
    if (old & CC__F_LISTENERS) {
        cc__mutex_lock(&f->m);
        struct cc__callback *cbs = notify_locked(f);
        cc__mutex_unlock(&f->m);
        run_callbacks(f, cbs);
    }
    return true;
}

#define BIT(st) (1u << (st))

bool cc_future_cancel(cc_future *f)
{
    if (become_done(f, BIT(CC__F_PENDING), CC__F_CANCELLED))
        return true;
    uint32_t st = state_of(load_state(f));
    if (st == CC__F_RUNNING && f->cancel_running)
        return f->cancel_running(f, f->cancel_ctx);
    return st == CC__F_CANCELLED;
}

bool cc_future_set_running_or_notify_cancel(cc_future *f)
{
    return cas_state(f, BIT(CC__F_PENDING), CC__F_RUNNING) != UINT32_MAX;
}

int cc__future_finish(cc_future *f, int err, void *result, char *msg)
{
    unsigned from = BIT(CC__F_PENDING) | BIT(CC__F_RUNNING);
    uint32_t old = cas_state(f, from, CC__F_COMPLETING);
    if (old == UINT32_MAX) {
        cc__free(msg, 0);
        return -EINVAL;
    }
    f->err = err;
    f->result = err ? NULL : result;
    f->msg = err ? msg : NULL;
    if (!err)
        cc__free(msg, 0);
    if (old & CC__F_LISTENERS) {
        become_done(f, BIT(CC__F_COMPLETING), CC__F_FINISHED);
        return 0;
    }
    /* release: publishes the outcome. No listener was linked when we
     * claimed; one that set its bit since saw "completing" and waits for
     * this store (listen_locked), so the bit may go. */
    cc__store_rel(&f->state, CC__F_FINISHED);
    return 0;
}

int cc_future_set_result(cc_future *f, void *result)
{
    return cc__future_finish(f, 0, result, NULL);
}

static char *copy_string(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *copy = cc__malloc(n);
    if (copy)
        memcpy(copy, s, n);
    return copy;
}

int cc_future_set_error(cc_future *f, int err, const char *msg)
{
    if (err >= 0)
        return -EINVAL;
    return cc__future_finish(f, err, NULL, copy_string(msg));
}

/* ---- queries ---------------------------------------------------------------- */

bool cc_future_cancelled(const cc_future *f)
{
    return state_of(load_state(f)) == CC__F_CANCELLED;
}

bool cc_future_running(const cc_future *f)
{
    uint32_t st = state_of(load_state(f));
    return st == CC__F_RUNNING || st == CC__F_COMPLETING;
}

bool cc_future_done(const cc_future *f) { return is_done(load_state(f)); }

int cc_future_error(const cc_future *f)
{
    uint32_t st = state_of(load_state(f));
    if (st == CC__F_CANCELLED)
        return -ECANCELED;
    return st == CC__F_FINISHED ? f->err : -EAGAIN;
}

const char *cc_future_error_message(const cc_future *f)
{
    return state_of(load_state(f)) == CC__F_FINISHED ? f->msg : NULL;
}

/* ---- listening ---------------------------------------------------------------- */

/* Under f->m: announce a listener. Returns false if f is already done (then
 * nobody will notify: the caller must not link anything). */
static bool listen_locked(cc_future *f)
{
    /* acq_rel: if done, acquire makes the outcome visible. */
    uint32_t s = cc__fetch_or(&f->state, CC__F_LISTENERS);
    if (state_of(s) != CC__F_COMPLETING)
        return !is_done(s);
    /* Its completer may not see our bit (cc__future_finish): wait for the
     * done state, a few instructions away unless the completer's thread
     * was preempted; a completing task never switches meanwhile. */
    for (int i = 0; !is_done(load_state(f)); i++) {
        if (i < WAIT_SPINS)
            cc__cpu_relax();
        else
            sched_yield();
    }
    return false;
}

int cc_future_wait(cc_future *f, cc_deadline deadline)
{
    /* A task does not spin: that would stall its whole loop, and parking a
     * task costs no more than a switch. */
    int spins = deadline == CC_NOWAIT || cc__loop_task() ? 0 : WAIT_SPINS;
    for (int i = 0; i < spins; i++) {
        if (cc_future_done(f))
            return 0;
        cc__cpu_relax();
    }
    if (cc_future_done(f))
        return 0;
    int r = 0;
    cc__mutex_lock(&f->m);
    if (listen_locked(f)) {
        while (r == 0 && !cc_future_done(f)) {
            cc__waiter w;
            cc__waiter_init(&w);
            r = cc__wait_on(&f->waiters, &f->m, &w, deadline);
        }
    }
    cc__mutex_unlock(&f->m);
    return cc_future_done(f) ? 0 : r < 0 ? r : -ETIMEDOUT;
}

int cc_future_result(cc_future *f, cc_deadline deadline, void **out)
{
    int r = cc_future_wait(f, deadline);
    if (r == 0)
        r = cc_future_error(f);
    if (out)
        *out = r == 0 ? f->result : NULL;
    return r;
}

int cc_future_add_done_callback(cc_future *f, cc_future_callback fn, void *arg)
{
    if (cc_future_done(f)) {
        fn(f, arg);
        return 0;
    }
    struct cc__callback *cb = cc__malloc(sizeof *cb);
    if (!cb)
        return -ENOMEM;
    *cb = (struct cc__callback){NULL, fn, arg};
    cc__mutex_lock(&f->m);
    bool linked = listen_locked(f);
    if (linked) {
        *f->cb_tail = cb;
        f->cb_tail = &cb->next;
    }
    cc__mutex_unlock(&f->m);
    if (!linked) {
        cc__free(cb, sizeof *cb);
        fn(f, arg);
    }
    return 0;
}

bool cc__future_subscribe(cc_future *f, cc__future_sub *s)
{
    cc__mutex_lock(&f->m);
    bool linked = listen_locked(f);
    s->linked = linked;
    if (linked) {
        s->prev = NULL;
        s->next = f->subs;
        if (f->subs)
            f->subs->prev = s;
        f->subs = s;
    }
    cc__mutex_unlock(&f->m);
    return linked;
}

void cc__future_unsubscribe(cc_future *f, cc__future_sub *s)
{
    cc__mutex_lock(&f->m);
    if (s->linked) {
        if (s->prev)
            s->prev->next = s->next;
        else
            f->subs = s->next;
        if (s->next)
            s->next->prev = s->prev;
        s->linked = false;
    }
    cc__mutex_unlock(&f->m);
}

/* ---- the current task ------------------------------------------------------- */

/* The thread's own current-task state, in use outside coroutines. */
static CC__THREAD_LOCAL struct cc__task_ctx thread_ctx;
CC__THREAD_LOCAL struct cc__task_ctx *cc__task_ctx_in_use;

/* The task running in this thread, for cc_task_set_error_message. */
static struct cc__task_ctx *current(void)
{
    return cc__task_ctx_in_use ? cc__task_ctx_in_use : &thread_ctx;
}

void cc_task_set_error_message(const char *fmt, ...)
{
    struct cc__task_ctx *cur = current();
    if (!cur->active)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *msg = n >= 0 ? cc__malloc((size_t)n + 1) : NULL;
    if (msg) {
        va_start(ap, fmt);
        vsnprintf(msg, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    cc__free(cur->msg, 0);
    cur->msg = msg;
}

int cc__task_call(cc_task_fn fn, void *arg, void **result, char **msg)
{
    /* Its coroutine may park in fn: cur stays its own state meanwhile. */
    struct cc__task_ctx *cur = current();
    struct cc__task_ctx outer = *cur; /* tasks may run tasks inline */
    *cur = (struct cc__task_ctx){true, NULL};
    *result = NULL;
    int r = fn(arg, result);
    if (r > 0) {
        r = -EINVAL;
        cc_task_set_error_message("task returned a positive value");
    }
    *msg = r < 0 ? cur->msg : NULL;
    if (r == 0)
        cc__free(cur->msg, 0);
    *cur = outer;
    return r;
}

bool cc__future_run(cc_future *f)
{
    if (!cc_future_set_running_or_notify_cancel(f))
        return false;
    void *result;
    char *msg;
    int r = cc__task_call(f->fn, f->arg, &result, &msg);
    cc__future_finish(f, r, result, msg);
    return true;
}

void cc__future_abandon(cc_future *f)
{
    cc_future_cancel(f);
    struct cc__protect p; /* the task may still use memory freed after this */
    cc__protect_begin(&p);
    cc_future_wait(f, CC_FOREVER);
    cc__protect_end(&p);
    cc_future_release(f);
}
