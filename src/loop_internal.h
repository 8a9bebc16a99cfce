/*
 * loop_internal.h: how the wait layer (wait.c), cc_sleep (base.c) and the fd
 * helpers (loop_fd.c) reach the event loop (loop.c). Not installed.
 *
 * A task parks with cc__loop_park and is made ready with cc__loop_wake; both
 * keep the protocol of wait.h: the waiter's state word says whether it was
 * woken, the task's run state only decides who puts it on its run queue.
 */
#ifndef CONCUR_LOOP_INTERNAL_H
#define CONCUR_LOOP_INTERNAL_H

#include "concur/loop.h"
#include "wait.h"

struct cc__task;
struct pollfd;

/* A task's cancellation state (loop_cancel.c). Loop thread only. */
struct cc__cancel {
    bool requested;     /* cc_task_cancel was called: parks fail */
    unsigned shield;    /* open shield scopes: cancellation waits */
    cc_deadline scope;  /* the earliest open deadline scope, or CC_FOREVER */
};

/* -ECANCELED when c's task is cancelled and not shielded, else 0. */
static inline int cc__cancel_pending(const struct cc__cancel *c)
{
    return c->requested && c->shield == 0 ? -ECANCELED : 0;
}

/* The running task of this thread (its waiters get it as context), or NULL
 * outside a task. Read inline: every blocking call asks. */
extern CC__THREAD_LOCAL struct cc__task *cc__loop_running;

static inline struct cc__task *cc__loop_task(void) { return cc__loop_running; }

/*
 * cc__loop_park: park the task w->context (the running one) until w is woken
 * (0) or the deadline passes (-ETIMEDOUT), running other tasks meanwhile.
 * Called by cc__waiter_park for a coroutine waiter.
 */
int cc__loop_park(cc__waiter *w, cc_deadline deadline);

/*
 * cc__loop_wake: store CC__WOKEN in w (release) and make its task ready on
 * its own loop; from any thread. After the store it touches only the task,
 * which it keeps alive with a reference meanwhile.
 */
void cc__loop_wake(cc__waiter *w);

/* cc__loop_sleep_until: in a task, park it until the deadline and return
 * 0, or -ECANCELED / -ETIMEDOUT (a deadline scope) when that comes first;
 * outside a task return -EPERM at once (the caller sleeps). */
int cc__loop_sleep_until(cc_deadline deadline);

/* The cancellation state of t (a task of this thread's loop). */
struct cc__cancel *cc__loop_cancel_of(struct cc__task *t);

/* cc__loop_interrupt: make t, parked or not, look at its cancellation
 * state: queue it if parked. Loop thread only. */
void cc__loop_interrupt(struct cc__task *t);

/* A protected section: the running task's parks ignore its cancellation
 * and deadline scopes (for waits that must not fail: a condition taking
 * its lock back, a waiter outliving its waker). Nothing outside a task. */
struct cc__protect {
    struct cc__cancel *c; /* the task's state, or NULL outside a task */
    cc_deadline scope;    /* its deadline scope before */
};

static inline void cc__protect_begin(struct cc__protect *p)
{
    struct cc__task *t = cc__loop_task();
    p->c = t ? cc__loop_cancel_of(t) : NULL;
    if (!p->c)
        return;
    p->scope = p->c->scope;
    p->c->scope = CC_FOREVER;
    p->c->shield++;
}

static inline void cc__protect_end(struct cc__protect *p)
{
    if (!p->c)
        return;
    p->c->scope = p->scope;
    p->c->shield--;
}

/* The task whose future f is, when it belongs to this thread's loop and is
 * not done (only then is it alive); else NULL. Loop thread only. */
struct cc__task *cc__loop_task_of(cc_future *f);

/* The poller of the running task's loop (loop_fd.c registers fds there),
 * and the count of tasks waiting for fds (the loop polls more often then). */
struct cc__poller *cc__loop_poller(void);
void cc__loop_fd_waits(int delta);

/* Whether other tasks of this thread's loop are ready to run now (the fd
 * helpers let them go first when a read would likely find nothing). */
bool cc__loop_others_ready(void);

/* loop_fd.c, called by the loop: an fd registered with `data` is ready for
 * `events`; and the loop ends (free this thread's fd table). */
void cc__loop_fd_ready(void *data, uint32_t events);
void cc__loop_fd_close(void);

/* loop_io.c, called by the loop: the I/O request submitted with `data`
 * completed with `res` (poller.h's CC__POLL_IO). */
void cc__loop_io_done(void *data, int32_t res);

/* A task's read in flight on the loop's io_uring (loop_io.c), linked in its
 * fd's slot (loop_fd.c) so that cc_close can cancel it. */
struct cc__io_read {
    struct cc__io_read *next; /* the next read in flight on the same fd */
    uint64_t id;              /* the request (cc__poller_cancel) */
    bool closed;              /* cc_close cancelled it: the read gives
                                 -EBADF unless its bytes won the race */
};

/* Link r (its id set) in fd's slot, or unlink it. Linking fails only for
 * want of memory (false): then cc_close cannot cancel it. */
bool cc__loop_fd_track(int fd, struct cc__io_read *r);
void cc__loop_fd_untrack(int fd, struct cc__io_read *r);

/*
 * cc__loop_io_read: in a task, read up to n bytes of fd into buf through
 * the loop's io_uring (op: CC__IO_RECV or CC__IO_READ of poller.h), parking
 * until the kernel has done it. Returns 1 with the call's result in *out
 * (bytes, 0 at end of file, or a negative errno: -ETIMEDOUT, -ECANCELED,
 * -EBADF when cc_close ended it, the read's own), never before the kernel
 * is done with buf; or 0 when it did not read (epoll backend, no memory,
 * the deadline has passed, the file cannot be waited on this way): the
 * caller waits for readiness instead.
 */
int cc__loop_io_read(int op, int fd, void *buf, size_t n,
                     cc_deadline deadline, ssize_t *out);

/* One parked party woken by the first of several sources (fds of the loop,
 * futures, ...): each source calls cc__wake_once_fire, only the first wakes
 * w, or, for a thread sleeping in poll(), writes the eventfd efd. */
typedef struct cc__wake_once {
    cc__waiter w;         /* the parked task or thread */
    cc__atomic_u32 fired; /* 0, then 1 once a source won (xchg acq_rel) */
    int efd;              /* an eventfd to write instead of waking w, or -1 */
} cc__wake_once;

void cc__wake_once_fire(cc__wake_once *o);

/* cc__wait_fds_once: as cc__wait_fds, parking on o->w (o initialised by the
 * caller, efd -1), which other sources may fire too: then 0 fds may be
 * ready (returns 0). In a task only. */
int cc__wait_fds_once(cc__wake_once *o, struct pollfd *fds, unsigned long n,
                      cc_deadline deadline);

/* cc__wait_fds: in a task, park it until one of fds is ready, as poll():
 * fills revents, returns the count of ready fds (> 0); or -ETIMEDOUT,
 * -ECANCELED, -ENOMEM, or the poller's error (-EPERM: a regular file).
 * Outside a task -EPERM at once (the caller polls). */
int cc__wait_fds(struct pollfd *fds, unsigned long n, cc_deadline deadline);

/* What the diagnostics (loop_diag.c) see of a task. */
typedef struct cc__task_info {
    const char *name;  /* its name */
    const char *state; /* "running", "ready", "new", "parked", "woken" */
    const char *what;  /* what its park waits on ("fd", "sleep"), or NULL:
                          a wait queue (lock, event, queue, future...) */
    long arg;          /* detail of `what` (the fd), or -1 */
    cc_deadline until; /* its park's deadline, if parked */
} cc__task_info;

/* cc__loop_note_wait: tell the diagnostics what the running task's next
 * park waits on (static string); reset when the park ends. */
void cc__loop_note_wait(const char *what, long arg);

/* Loop thread only: call fn for every live task of l; the live count;
 * whether another thread handed something over not yet taken; the poller;
 * the diagnostics' state. */
void cc__loop_each_task(cc_loop *l, void (*fn)(void *, const cc__task_info *),
                        void *ctx);
size_t cc__loop_ntasks(cc_loop *l);
bool cc__loop_remote_pending(cc_loop *l);
struct cc__poller *cc__loop_poller_of(cc_loop *l);
struct cc__diag **cc__loop_diag_slot(cc_loop *l);

#endif
