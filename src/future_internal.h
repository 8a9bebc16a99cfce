/*
 * future_internal.h: what executors and wait-on-many see of a future: its layout,
 * the task that completes it, and removable subscriptions. Not installed.
 */
#ifndef CONCUR_FUTURE_INTERNAL_H
#define CONCUR_FUTURE_INTERNAL_H

#include "concur/future.h"
#include "wait.h"

/* Under ASan, memory kept for reuse (cached futures, spare task objects)
 * is poisoned while kept, so that a use after the last release, or a
 * second release, is reported as it would be after free. All but its
 * link pointer, which LeakSanitizer must still see. */
#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/asan_interface.h>
#define CC__REUSE_POISON(p, n, link)                                         \
    do {                                                                     \
        char *b_ = (char *)(p), *l_ = (char *)(link) + sizeof(void *);       \
        ASAN_POISON_MEMORY_REGION(b_, (char *)(link) - b_);                  \
        ASAN_POISON_MEMORY_REGION(l_, b_ + (n) - l_);                        \
    } while (0)
#define CC__REUSE_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define CC__REUSE_POISON(p, n, link) ((void)(p), (void)(n), (void)(link))
#define CC__REUSE_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* Future states (low bits of cc_future.state). */
enum {
    CC__F_PENDING = 0,
    CC__F_RUNNING = 1,
    CC__F_FINISHED = 2,
    CC__F_CANCELLED = 3,
    CC__F_COMPLETING = 4, /* claimed by the one party writing the outcome */
    CC__F_STATE_MASK = 7,
    /* Set (under the mutex) once anyone waits, subscribes or adds a callback:
     * completion must then take the mutex and notify. Never cleared. */
    CC__F_LISTENERS = 8,
};

/* A link in an executor's intrusive task queue. */
typedef struct cc__task_node {
    _Atomic(struct cc__task_node *) next; /* next queued task (release/acquire
                                             between producer and consumer) */
} cc__task_node;

/*
 * A subscription: notify(s, f) runs once when f becomes done, under f's mutex
 * (so it must be short, never block, and never touch f's mutex); by then s is
 * unlinked. Used by wait-on-many and as-completed, whose nodes live in their own
 * memory and can be removed again with cc__future_unsubscribe.
 */
typedef struct cc__future_sub {
    struct cc__future_sub *next;                          /* under f->m */
    struct cc__future_sub *prev;                          /* under f->m */
    bool linked;                                          /* under f->m */
    void (*notify)(struct cc__future_sub *s, cc_future *f); /* the callback */
} cc__future_sub;

struct cc__callback; /* a done callback, heap node (future.c) */

struct cc_future {
    cc__atomic_u32 state;   /* CC__F_* | CC__F_LISTENERS; transitions by CAS
                               (acq_rel: the result fields written before a
                               transition to done are visible to whoever sees
                               the done state with acquire) */
    cc__atomic_u32 refs;    /* references (acq_rel on release: the last one
                               frees and must see every other holder's writes) */
    cc__task_node node;     /* the executor's queue link */
    cc_task_fn fn;          /* the task, set by the executor; NULL for
                               hand-made futures */
    void *arg;              /* the task's argument */
    void *result;           /* the result, once finished with err == 0 */
    int err;                /* 0, the task's negative errno, or -ECANCELED */
    char *msg;              /* error message (cc__malloc'd) or NULL */
    cc__mutex m;            /* guards the lists below */
    cc__waitq waiters;      /* threads in cc_future_wait */
    struct cc__callback *callbacks; /* done callbacks, in order added */
    struct cc__callback **cb_tail;  /* where the next callback is linked */
    cc__future_sub *subs;   /* subscriptions, newest first */
    /* Set by an executor that can stop a running task (the process pool with
     * kill_on_cancel): cc_future_cancel calls it on a running future and
     * returns what it returns (whether the cancellation was made). */
    bool (*cancel_running)(cc_future *f, void *ctx);
    void *cancel_ctx;       /* its argument (the executor); for a task
                               of an event loop, that loop (loop.c) */
};

/* cc__future_alloc: memory for a future (cc__future_init it), from this
 * thread's cache of freed ones when it has one; NULL when out of memory. */
cc_future *cc__future_alloc(void);

/* cc__future_init: a pending future with one reference, in memory from
 * cc__future_alloc (cc_future_release frees it). */
void cc__future_init(cc_future *f);

/*
 * cc__future_subscribe: link s to f, unless f is already done: then returns
 * false and s stays unlinked (the caller handles the done future itself).
 */
bool cc__future_subscribe(cc_future *f, cc__future_sub *s);

/* cc__future_unsubscribe: unlink s if still linked; afterwards notify(s) is not
 * running and never will, so s may be freed. */
void cc__future_unsubscribe(cc_future *f, cc__future_sub *s);

/*
 * cc__future_abandon: cancel f, wait until it is done, then drop the caller's
 * reference. The wait is shielded from task cancellation and deadline scopes,
 * because the caller is about to free memory the task may still be using
 * (a map's chunk). Blocks. To abandon several, cancel them all first
 * (cc_future_cancel): else, while the first is waited for, the ones still
 * queued behind it start.
 */
void cc__future_abandon(cc_future *f);

/*
 * cc__future_run: run f's task (f->fn, f->arg) in the calling thread and complete
 * f with its outcome, unless f was cancelled. Collects the task's error message
 * (cc_task_set_error_message). Returns whether the task ran.
 */
bool cc__future_run(cc_future *f);

/*
 * cc__future_finish: complete a pending or running f with err (0 or < 0),
 * result and msg (taken over: freed here if f is already done). Returns 0, or
 * -EINVAL if f was already done.
 */
int cc__future_finish(cc_future *f, int err, void *result, char *msg);

/*
 * cc__task_call: run fn(arg, &result) as "the current task" of this thread (so
 * that cc_task_set_error_message works) and return its result; *msg gets the
 * message if it failed (caller frees with cc__free), else NULL.
 */
int cc__task_call(cc_task_fn fn, void *arg, void **result, char **msg);

/* The "current task" state of a thread (for cc_task_set_error_message). */
struct cc__task_ctx {
    bool active; /* a task is running */
    char *msg;   /* its message so far (cc__malloc'd), or NULL */
};

/* The current-task state in use on this thread: the running coroutine's
 * own (its event loop points this at it as it resumes it, and back as it
 * leaves), or NULL for the thread's own. A pointer, not a copy: a switch
 * costs one store. */
extern CC__THREAD_LOCAL struct cc__task_ctx *cc__task_ctx_in_use;

#endif
