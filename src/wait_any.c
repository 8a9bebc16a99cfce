/*
 * wait_any.c: cc_wait_any, waiting on futures, queues, fds, child processes
 * and timers together (include/concur/loop.h), as Python's
 * multiprocessing.connection.wait generalised.
 *
 * DESIGN. A scan checks every source without blocking (futures' done state,
 * queues' readiness, timers against the clock, fds and pidfds with one
 * poll(0)); if none is ready, the caller parks once on one cc__wake_once,
 * and scans again when woken. Futures and queues are subscribed
 * (future_internal.h, queue_impl.h): their notify fires the wake_once; a
 * queue's subscription is no getter, so it steals no getter's wakeup.
 * Fds and pidfds: in a task they are registered with the loop's poller for
 * that same waiter (cc__wait_fds_once), so the task parks; a thread sleeps
 * in ppoll() on them plus an eventfd that the subscriptions' notify writes.
 * Timers only shorten the park's deadline. The first source to fire wins
 * (an atomic flag); one that loses to a timeout is consumed before the
 * waiter's frame goes away (as cc__wait_on does).
 */
#include "future_internal.h"
#include "loop_internal.h"
#include "process.h"
#include "queue_impl.h"

#include "concur/subprocess.h"

#include <errno.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* One future or queue subscription of a cc_wait_any call. */
struct any_node {
    union {
        cc__future_sub fsub; /* CC_WAIT_FUTURE: linked in the future */
        cc__queue_sub qsub;  /* CC_WAIT_QUEUE: linked in the queue */
    };
    cc__wake_once *o; /* what its completion (a put) fires */
};

/* The call's state: the fd-like sources as a poll set. */
struct any_call {
    cc_waitable *ws;      /* the caller's array */
    size_t n;             /* its length */
    struct pollfd *pf;    /* fds and pidfds, plus a slot for the eventfd */
    size_t *idx;          /* pf[k] is ws[idx[k]] */
    size_t m;             /* used entries of pf (without the eventfd) */
    struct any_node *nodes; /* one per waitable (futures, queues use
                               theirs) */
};

static int check_one(const cc_waitable *w)
{
    switch (w->kind) {
    case CC_WAIT_FUTURE:
        return w->future ? 0 : -EINVAL;
    case CC_WAIT_PROCESS:
        return w->process ? 0 : -EINVAL;
    case CC_WAIT_QUEUE:
        return w->queue ? 0 : -EINVAL;
    case CC_WAIT_FD:
        if (w->fd < 0)
            return -EBADF;
        return w->events & (POLLIN | POLLOUT | POLLPRI) ? 0 : -EINVAL;
    case CC_WAIT_TIMER:
        return 0;
    }
    return -EINVAL;
}

/* Build the poll set of fds and pidfds (a reaped child stays ready: its
 * pidfd stays open until cc_process_free, and polls readable). */
static void build_pollset(struct any_call *c)
{
    c->m = 0;
    for (size_t i = 0; i < c->n; i++) {
        cc_waitable *w = &c->ws[i];
        if (w->kind != CC_WAIT_FD && w->kind != CC_WAIT_PROCESS)
            continue;
        bool fd = w->kind == CC_WAIT_FD;
        c->pf[c->m] = (struct pollfd){
            .fd = fd ? w->fd : cc_process_pidfd(w->process),
            .events = fd ? w->events : POLLIN};
        c->idx[c->m++] = i;
    }
}

/* Mark what is ready now; return the lowest ready index or -1. */
static long scan(struct any_call *c)
{
    int64_t now = cc__now();
    for (size_t i = 0; i < c->n; i++) {
        cc_waitable *w = &c->ws[i];
        w->ready = w->kind == CC_WAIT_FUTURE  ? cc_future_done(w->future)
                   : w->kind == CC_WAIT_QUEUE ? cc__queue_ready(w->queue)
                   : w->kind == CC_WAIT_TIMER ? w->at <= now
                                              : 0;
    }
    int r = c->m ? poll(c->pf, c->m, 0) : 0;
    for (size_t k = 0; r > 0 && k < c->m; k++) {
        cc_waitable *w = &c->ws[c->idx[k]];
        w->ready = c->pf[k].revents;
    }
    for (size_t k = 0; k < c->m; k++) /* no pidfd (poll ignores it) */
        if (c->pf[k].fd < 0)
            c->ws[c->idx[k]].ready = POLLIN;
    for (size_t i = 0; i < c->n; i++)
        if (c->ws[i].ready)
            return (long)i;
    return -1;
}

static void future_notify(cc__future_sub *s, cc_future *f)
{
    (void)f;
    cc__wake_once_fire(CC__CONTAINER_OF(s, struct any_node, fsub)->o);
}

static void queue_notify(cc__queue_sub *s, cc_queue *q)
{
    (void)q;
    cc__wake_once_fire(CC__CONTAINER_OF(s, struct any_node, qsub)->o);
}

/* Subscribe ws[i] if it is a future or a queue; false if it is ready. */
static bool subscribe_one(struct any_call *c, size_t i, cc__wake_once *o)
{
    struct any_node *node = &c->nodes[i];
    *node = (struct any_node){.o = o};
    if (c->ws[i].kind == CC_WAIT_FUTURE) {
        node->fsub.notify = future_notify;
        return cc__future_subscribe(c->ws[i].future, &node->fsub);
    }
    if (c->ws[i].kind == CC_WAIT_QUEUE) {
        node->qsub.notify = queue_notify;
        return cc__queue_subscribe(c->ws[i].queue, &node->qsub);
    }
    return true;
}

/* Subscribe every future and queue; false if one is ready already (no park
 * then). Unsubscribe all of them afterwards, either way. */
static bool subscribe_all(struct any_call *c, cc__wake_once *o)
{
    bool all = true;
    for (size_t i = 0; i < c->n; i++)
        all &= subscribe_one(c, i, o);
    return all;
}

static void unsubscribe_all(struct any_call *c)
{
    for (size_t i = 0; i < c->n; i++) {
        if (c->ws[i].kind == CC_WAIT_FUTURE)
            cc__future_unsubscribe(c->ws[i].future, &c->nodes[i].fsub);
        else if (c->ws[i].kind == CC_WAIT_QUEUE)
            cc__queue_unsubscribe(c->ws[i].queue, &c->nodes[i].qsub);
    }
}

/* A thread with fds: ppoll on them and an eventfd the futures and queues
 * write. */
static int park_thread_fds(struct any_call *c, cc__wake_once *o,
                           cc_deadline until)
{
    o->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (o->efd < 0)
        return -errno;
    c->pf[c->m] = (struct pollfd){.fd = o->efd, .events = POLLIN};
    int r = subscribe_all(c, o) ? cc__poll_until(c->pf, c->m + 1, until) : 0;
    unsubscribe_all(c); /* afterwards nobody writes efd */
    close(o->efd);
    return r < 0 ? r : 0;
}

/* Park o->w (a task with or without fds, or a thread without). */
static int park_waiter(struct any_call *c, cc__wake_once *o,
                       cc_deadline until)
{
    int r = 0;
    if (subscribe_all(c, o))
        r = c->m ? cc__wait_fds_once(o, c->pf, c->m, until)
                 : cc__waiter_park(&o->w, until);
    unsubscribe_all(c);
    if (r < 0 && cc__xchg(&o->fired, 1)) {
        /* A source won meanwhile; its wake has been stored (unsubscribe
         * waited for the notify), consume it so no stale wake remains. */
        struct cc__protect p;
        cc__protect_begin(&p);
        cc__waiter_park(&o->w, CC_FOREVER);
        cc__protect_end(&p);
        r = 0;
    }
    return r < 0 ? r : 0;
}

/* Park until something may be ready or `until`; 0 or a negative errno. */
static int park_once(struct any_call *c, cc_deadline until)
{
    cc__wake_once o = {.efd = -1};
    cc__waiter_init(&o.w);
    if (c->m && !cc__loop_task())
        return park_thread_fds(c, &o, until);
    return park_waiter(c, &o, until);
}

static cc_deadline earliest(const struct any_call *c, cc_deadline deadline)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->ws[i].kind == CC_WAIT_TIMER && c->ws[i].at < deadline)
            deadline = c->ws[i].at;
    return deadline;
}

/* The first source whose fd the park found closed (POLLNVAL: cc_closed
 * while a task waited), or -1. A poll(0) after the park would look at
 * whatever file has taken the number since. */
static long closed_in_park(const struct any_call *c)
{
    long first = -1;
    for (size_t k = 0; k < c->m; k++)
        if (c->pf[k].revents & POLLNVAL &&
            (first < 0 || c->idx[k] < (size_t)first))
            first = (long)c->idx[k];
    return first;
}

static int wait_loop(struct any_call *c, cc_deadline deadline)
{
    long closed = -1; /* a source the last park found closed */
    for (;;) {
        build_pollset(c);
        long i = scan(c);
        if (closed >= 0 && (i < 0 || closed <= i)) {
            c->ws[closed].ready = POLLNVAL;
            return (int)closed;
        }
        if (i >= 0)
            return (int)i;
        if (deadline != CC_FOREVER && cc__now() >= deadline)
            return -ETIMEDOUT;
        cc_deadline until = earliest(c, deadline);
        int r = park_once(c, until);
        closed = r == 0 ? closed_in_park(c) : -1;
        if (r == -ETIMEDOUT && cc__now() < until)
            return r; /* a task's deadline scope */
        if (r < 0 && r != -ETIMEDOUT)
            return r;
    }
}

int cc_wait_any(cc_waitable *ws, size_t n, cc_deadline deadline)
{
    if (n && !ws)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        int r = check_one(&ws[i]);
        if (r < 0)
            return r;
    }
    struct any_call c = {.ws = ws, .n = n};
    c.pf = cc__calloc(n + 1, sizeof *c.pf);
    c.idx = cc__calloc(n + 1, sizeof *c.idx);
    c.nodes = cc__calloc(n + 1, sizeof *c.nodes);
    int r = c.pf && c.idx && c.nodes ? wait_loop(&c, deadline) : -ENOMEM;
    cc__free(c.pf, (n + 1) * sizeof *c.pf);
    cc__free(c.idx, (n + 1) * sizeof *c.idx);
    cc__free(c.nodes, (n + 1) * sizeof *c.nodes);
    return r;
}
