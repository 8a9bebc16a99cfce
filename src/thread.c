/*
 * thread.c: OS threads with names, joins with deadlines, daemon semantics,
 * thread-local values (include/concur/thread.h).
 *
 * DESIGN. A cc_thread wraps a pthread and a wait queue. The new thread sets its
 * OS name and records its TID, then marks itself started and wakes the starter
 * (Python's Thread.start() waits for the same). When its body returns it stores
 * the result, marks itself done and wakes its joiners through the wait queue;
 * a joiner that sees done calls pthread_join, which then only waits for the last
 * instructions of the exiting thread, and frees the handle. Joining therefore
 * parks like every other concur wait (and will suit coroutines).
 * Non-daemon threads are counted in one registry; an atexit handler parks until
 * the count falls to zero (Python's threading._shutdown), or to one when the
 * thread calling exit() is itself counted: it never returns. Its joiners can
 * never succeed either: the handler marks it exiting and wakes them, and a
 * counted joiner that finds it exiting counts itself stuck while it parks,
 * so that the handler does not wait for it (the thread pool's joiner first
 * joins the other workers: cc__thread_join_unless_exiting). Foreign threads
 * (not started by concur) get a handle in their own TLS the first time they
 * ask.
 */
#include "thread_internal.h"

#include "loop_internal.h"
#include "wait.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Bytes of a name the kernel keeps, with the terminating NUL. */
enum { OS_NAME_LEN = 16 };

struct cc_thread {
    pthread_t pthread;       /* the OS thread */
    cc_thread_fn fn;         /* the body; NULL for a foreign thread */
    void *arg;               /* fn's argument */
    void *result;            /* fn's return value, once done */
    cc__mutex guard;         /* guards the fields below it and joiners */
    cc__waitq joiners;       /* the starter until started, then joiners */
    bool started;            /* the thread runs: tid and OS name are set */
    bool done;               /* the body returned; result is set */
    bool detached;           /* the thread frees this handle itself */
    bool daemon;             /* not waited for at exit; set before start */
    bool foreign;            /* not started by concur; lives in its TLS */
    bool exiting;            /* it called exit(): joins of it never end */
    int tid;                 /* kernel thread id; set before started */
    size_t size;             /* bytes allocated for this handle and its name */
    const char *name;        /* the whole name (tail of the block or os_name) */
    char os_name[OS_NAME_LEN]; /* the name as the kernel shows it */
};

/* The calling thread's handle, NULL until started or asked for. */
static CC__THREAD_LOCAL cc_thread *self;
/* Storage for the handle of a thread that concur did not start. */
static CC__THREAD_LOCAL cc_thread foreign_self;

/* Numbers for default names ("concur-N", "Dummy-N"); relaxed: only uniqueness
 * matters, not ordering. */
static cc__atomic_u32 name_counter;

/* ---- the registry of running non-daemon threads -------------------------- */

static struct {
    cc__mutex guard;   /* guards live and waiters */
    cc__waitq waiters; /* the exiting thread, parked in wait_for_nondaemon */
    int live;          /* non-daemon concur threads whose body has not returned */
    int stuck;         /* of those, joiners parked on a thread calling exit() */
} nondaemon;

static pthread_once_t exit_hooks_once = PTHREAD_ONCE_INIT;

/* Is t counted in nondaemon.live? (t's own thread asks) */
static bool counted(const cc_thread *t)
{
    return t && !t->foreign && !t->daemon && !t->done;
}

/* me called exit(): its joiners wait for ever; wake them to count as stuck. */
static void release_joiners(cc_thread *me)
{
    cc__mutex_lock(&me->guard);
    me->exiting = true;
    cc__wake_all(&me->joiners, 0);
    cc__mutex_unlock(&me->guard);
}

void cc__thread_mark_exiting(void)
{
    if (self && !self->foreign)
        release_joiners(self);
}

/* atexit: park until every other non-daemon thread's body has returned, but
 * for those parked joining this (exiting) thread. */
static void wait_for_nondaemon(void)
{
    int mine = counted(self);
    cc__thread_mark_exiting();
    cc__mutex_lock(&nondaemon.guard);
    while (nondaemon.live - nondaemon.stuck > mine) {
        cc__waiter w;
        cc__waiter_init(&w);
        cc__wait_on(&nondaemon.waiters, &nondaemon.guard, &w, CC_FOREVER);
    }
    cc__mutex_unlock(&nondaemon.guard);
}

/* In a fork child only the forking thread exists: nobody else to wait for. */
static void reset_registry_in_child(void)
{
    memset(&nondaemon, 0, sizeof nondaemon);
}

static void install_exit_hooks(void)
{
    if (atexit(wait_for_nondaemon) != 0)
        cc__panic("atexit", -ENOMEM);
    CC__CHECK("pthread_atfork", -pthread_atfork(NULL, NULL, reset_registry_in_child));
}

/* Add n to the live (or stuck) count; a change that can end the exit
 * handler's wait wakes it (it may not wait for zero: see DESIGN). */
static void registry_add(int *count, int n)
{
    cc__mutex_lock(&nondaemon.guard);
    *count += n;
    if (count == &nondaemon.live ? n < 0 : n > 0)
        cc__wake_all(&nondaemon.waiters, 0);
    cc__mutex_unlock(&nondaemon.guard);
}

/* ---- the new thread ------------------------------------------------------ */

static void mark_started(cc_thread *t)
{
    t->tid = gettid();
    /* Only the length can make this fail, and os_name fits. */
    pthread_setname_np(pthread_self(), t->os_name);
    cc__mutex_lock(&t->guard);
    t->started = true;
    cc__wake_all(&t->joiners, 0);
    cc__mutex_unlock(&t->guard);
}

/* The body returned: publish the result, wake joiners, maybe free ourselves. */
static void mark_done(cc_thread *t, void *result)
{
    bool daemon = t->daemon;
    cc__mutex_lock(&t->guard);
    t->result = result;
    t->done = true;
    cc__wake_all(&t->joiners, 0);
    bool detached = t->detached;
    cc__mutex_unlock(&t->guard);
    if (detached) {
        self = NULL;
        cc__free(t, t->size);
    }
    if (!daemon)
        registry_add(&nondaemon.live, -1);
}

static void *trampoline(void *arg)
{
    cc_thread *t = arg;
    self = t;
    mark_started(t);
    void *result = t->fn(t->arg);
    mark_done(t, result);
    return result;
}

/* ---- start ---------------------------------------------------------------- */

static cc_thread *thread_new(cc_thread_fn fn, void *arg, const char *name,
                             bool daemon)
{
    char fallback[OS_NAME_LEN];
    if (!name) {
        unsigned n = atomic_fetch_add_explicit(&name_counter, 1,
                                               memory_order_relaxed);
        snprintf(fallback, sizeof fallback, "concur-%u", n + 1);
        name = fallback;
    }
    size_t len = strlen(name);
    size_t size = sizeof(cc_thread) + len + 1;
    cc_thread *t = cc__calloc(1, size);
    if (!t)
        return NULL;
    t->fn = fn;
    t->arg = arg;
    t->daemon = daemon;
    t->size = size;
    t->name = memcpy((char *)(t + 1), name, len + 1);
    snprintf(t->os_name, sizeof t->os_name, "%s", name);
    return t;
}

static int attr_init(pthread_attr_t *attr, size_t stack_size)
{
    CC__CHECK("pthread_attr_init", -pthread_attr_init(attr));
    if (stack_size && pthread_attr_setstacksize(attr, stack_size) != 0) {
        pthread_attr_destroy(attr);
        return -EINVAL;
    }
    return 0;
}

static void wait_started(cc_thread *t)
{
    struct cc__protect p; /* a short wait that must not fail */
    cc__protect_begin(&p);
    cc__mutex_lock(&t->guard);
    while (!t->started) {
        cc__waiter w;
        cc__waiter_init(&w);
        cc__wait_on(&t->joiners, &t->guard, &w, CC_FOREVER);
    }
    cc__mutex_unlock(&t->guard);
    cc__protect_end(&p);
}

int cc_thread_start(cc_thread **out, cc_thread_fn fn, void *arg,
                    const cc_thread_options *opts)
{
    static const cc_thread_options defaults;
    if (!opts)
        opts = &defaults;
    pthread_attr_t attr;
    int r = attr_init(&attr, opts->stack_size);
    if (r < 0)
        return r;
    cc_thread *t = thread_new(fn, arg, opts->name, opts->daemon);
    if (!t) {
        pthread_attr_destroy(&attr);
        return -ENOMEM;
    }
    if (!t->daemon) {
        pthread_once(&exit_hooks_once, install_exit_hooks);
        /* before the thread can finish and subtract */
        registry_add(&nondaemon.live, 1);
    }
    r = -pthread_create(&t->pthread, &attr, trampoline, t);
    pthread_attr_destroy(&attr);
    if (r < 0) {
        if (!t->daemon)
            registry_add(&nondaemon.live, -1);
        cc__free(t, t->size);
        return r == -EPERM ? -EAGAIN : r;
    }
    wait_started(t);
    *out = t;
    return 0;
}

/* ---- join and detach ----------------------------------------------------- */

/* Park until t is done or the deadline; t->guard held on entry and exit.
 * While t runs the exit handlers, a counted caller counts itself stuck, or,
 * if give_up, returns -EINPROGRESS. */
static int wait_done(cc_thread *t, cc_deadline deadline, bool give_up)
{
    while (!t->done) {
        if (t->exiting && give_up)
            return -EINPROGRESS;
        cc__waiter w;
        cc__waiter_init(&w);
        bool stuck = t->exiting && counted(self);
        if (stuck)
            registry_add(&nondaemon.stuck, 1);
        int r = cc__wait_on(&t->joiners, &t->guard, &w, deadline);
        if (stuck)
            registry_add(&nondaemon.stuck, -1);
        if (r < 0)
            return t->done ? 0 : r;
    }
    return 0;
}

/* t is done: wait out its last instructions, take its result, free it. */
static void reap(cc_thread *t, void **result)
{
    CC__CHECK("pthread_join", -pthread_join(t->pthread, NULL));
    if (result)
        *result = t->result;
    cc__free(t, t->size);
}

static int join(cc_thread *t, cc_deadline deadline, void **result,
                bool give_up)
{
    if (t == self)
        return -EDEADLK;
    if (t->foreign)
        return -EINVAL;
    cc__mutex_lock(&t->guard);
    int r = t->detached ? -EINVAL : wait_done(t, deadline, give_up);
    cc__mutex_unlock(&t->guard);
    if (r == 0)
        reap(t, result);
    return r;
}

int cc_thread_join(cc_thread *t, cc_deadline deadline, void **result)
{
    return join(t, deadline, result, false);
}

int cc__thread_join_unless_exiting(cc_thread *t)
{
    return join(t, CC_FOREVER, NULL, true);
}

bool cc__thread_stuck_begin(void)
{
    if (!counted(self))
        return false;
    registry_add(&nondaemon.stuck, 1);
    return true;
}

void cc__thread_stuck_end(bool was)
{
    if (was)
        registry_add(&nondaemon.stuck, -1);
}

int cc_thread_detach(cc_thread *t)
{
    if (t->foreign)
        return -EINVAL;
    cc__mutex_lock(&t->guard);
    bool was_detached = t->detached, done = t->done;
    if (!was_detached && !done) {
        t->detached = true; /* the thread frees t itself in mark_done */
        CC__CHECK("pthread_detach", -pthread_detach(t->pthread));
    }
    cc__mutex_unlock(&t->guard);
    if (was_detached)
        return -EINVAL;
    if (done)
        reap(t, NULL);
    return 0;
}

/* ---- current thread and accessors ---------------------------------------- */

static cc_thread *adopt_foreign(void)
{
    cc_thread *t = &foreign_self;
    t->pthread = pthread_self();
    t->foreign = t->started = true;
    t->tid = gettid();
    t->daemon = t->tid != getpid(); /* MainThread is not a daemon (Python) */
    if (t->daemon) {
        unsigned n = atomic_fetch_add_explicit(&name_counter, 1,
                                               memory_order_relaxed);
        snprintf(t->os_name, sizeof t->os_name, "Dummy-%u", n + 1);
    } else {
        snprintf(t->os_name, sizeof t->os_name, "MainThread");
    }
    t->name = t->os_name;
    return self = t;
}

cc_thread *cc_thread_current(void)
{
    return CC__LIKELY(self != NULL) ? self : adopt_foreign();
}

const char *cc_thread_name(const cc_thread *t) { return t->name; }

int cc_thread_native_id(const cc_thread *t) { return t->tid; }

bool cc_thread_is_daemon(const cc_thread *t) { return t->daemon; }

bool cc_thread_is_alive(cc_thread *t)
{
    if (t->foreign)
        return true;
    cc__mutex_lock(&t->guard);
    bool alive = !t->done;
    cc__mutex_unlock(&t->guard);
    return alive;
}

/* ---- thread-local values -------------------------------------------------- */

struct cc_thread_local {
    pthread_key_t key; /* the pthread key underneath */
};

int cc_thread_local_new(cc_thread_local **out, void (*destructor)(void *value))
{
    cc_thread_local *local = cc__malloc(sizeof *local);
    if (!local)
        return -ENOMEM;
    int r = pthread_key_create(&local->key, destructor);
    if (r != 0) {
        cc__free(local, sizeof *local);
        return -r;
    }
    *out = local;
    return 0;
}

void *cc_thread_local_get(const cc_thread_local *local)
{
    return pthread_getspecific(local->key);
}

int cc_thread_local_set(cc_thread_local *local, void *value)
{
    return -pthread_setspecific(local->key, value);
}

void cc_thread_local_free(cc_thread_local *local)
{
    CC__CHECK("pthread_key_delete", -pthread_key_delete(local->key));
    cc__free(local, sizeof *local);
}
