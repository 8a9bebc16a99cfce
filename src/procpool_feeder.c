/*
 * procpool_feeder.c: the process pool's feeder threads, one per worker.
 *
 * DESIGN. A feeder starts its worker at once (and a replacement as soon as
 * one dies), takes tasks from the pool's FIFO into a batch: the first one
 * waiting, then more that are already queued, as long as they fit in a
 * lane of the control block and are no more than the queue's length over
 * 4 x the workers (guided scheduling: tiny tasks go by dozens, long ones
 * are spread over the workers). It writes the batch into a lane (a large
 * argument into the lane's data memfd), bumps the shared futex word and
 * wakes the worker. While the worker runs it, the feeder posts the next
 * batch into the other lane when the queue holds at least one task per
 * worker, so that the worker goes on without waiting for the parent (near
 * the end of the queue, tasks go to whichever worker is free first). It
 * polls the eventfd (a batch done) and the worker's pidfd (died) until the
 * deadline. The worker counts each result in the lane's `done`: on a death
 * the finished tasks get their results, the running one fails with the
 * pid, the signal, the stage and the OOM verdict, and the rest are posted
 * again to the replacement. A task with a time limit (its own or the
 * pool's task_timeout_ns) goes alone: the worker is killed at the deadline
 * (renewed while the worker starts or runs its initializer) and the task
 * fails with -ETIMEDOUT. Feeders block in poll (their own
 * threads, never a caller's) and, for tasks, in the pool's wait queue.
 */
#include "procpool_impl.h"
#include "bytes_owner.h"
#include "future_internal.h"

#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- the queue ------------------------------------------------------------ */

#define BATCH_MAX CC__PP_BATCH_MAX
#define WATCH_NS 100000000LL /* an idle feeder looks at its worker this often */

/* Tasks taken by a feeder, to run in order. */
struct batch {
    struct cc__pp_task *t[BATCH_MAX]; /* running futures, oldest first */
    size_t n;                  /* how many */
    size_t used;               /* bytes of the control block's batch area */
    uint32_t seq;              /* its number at the worker; 0: not posted */
    uint32_t lane;             /* the control block's lane, once posted */
};

/* A feeder's batches, in order (at most one per lane). */
struct flight {
    struct batch b[CC__PP_LANES]; /* b[first] is the oldest */
    size_t first;              /* index of the oldest */
    size_t nb;                 /* batches held */
};

static struct batch *nth(struct flight *fl, size_t i)
{
    return &fl->b[(fl->first + i) % CC__PP_LANES];
}

static void pop_first(struct flight *fl)
{
    nth(fl, 0)->n = 0;
    nth(fl, 0)->used = 0;
    nth(fl, 0)->seq = 0;
    fl->first = (fl->first + 1) % CC__PP_LANES;
    fl->nb--;
}

static size_t tasks_in(struct flight *fl)
{
    size_t n = 0;
    for (size_t i = 0; i < fl->nb; i++)
        n += nth(fl, i)->n;
    return n;
}

/* Free t's argument (or give the arena back). */
static void drop_arg(struct cc__pp_task *t)
{
    if (t->in_arena)
        cc__pp_arena_release(t->p, t);
    if (t->alloc)
        cc__free(t->arg, t->alloc);
    t->alloc = 0;
    t->arg = NULL;
}

void cc__pp_task_free(struct cc__pp_task *t)
{
    if (!t)
        return;
    drop_arg(t);
    cc__free(t, sizeof *t + t->name_len + 1);
}

/* The bytes t takes in the batch area with its argument inline. */
static size_t item_size(const struct cc__pp_task *t, bool inline_arg)
{
    return CC__PP_ALIGN8(sizeof(struct cc__pp_item) + t->name_len + 1 +
                         (inline_arg ? t->len : 0));
}

/* Unlink the head (under p->m). */
static struct cc__pp_task *unlink_head(struct cc__pp_pool *p)
{
    struct cc__pp_task *t = p->head;
    p->head = t->next;
    if (!p->head)
        p->tail = &p->head;
    p->queued--;
    return t;
}

/* Add t to b, or drop it if it was cancelled. Under p->m. */
static void add(struct batch *b, struct cc__pp_task *t)
{
    if (!cc_future_set_running_or_notify_cancel(t->f)) {
        if (t->in_arena) { /* give it back here: p->m is held */
            t->p->arena_busy = false;
            t->in_arena = false;
        }
        cc_future_release(t->f);
        cc__pp_task_free(t);
        return;
    }
    size_t one = item_size(t, true);
    b->used += b->n == 0 && one > CC__PP_ARGS ? item_size(t, false) : one;
    b->t[b->n++] = t;
}

/* The task's time limit (ns; 0: none). */
static int64_t timeout_of(const struct cc__pp_pool *p,
                          const struct cc__pp_task *t)
{
    return t->timeout_ns ? t->timeout_ns : p->o.task_timeout_ns;
}

/*
 * Take more tasks while they fit, up to limit, and no more than a share of
 * the queue (guided scheduling: remaining / (4 x workers)), so that other
 * workers get some. Under p->m.
 */
static void take_more_locked(struct cc__pp_pool *p, struct batch *b,
                             size_t limit)
{
    if (timeout_of(p, b->t[0])) /* the deadline is per task: alone */
        return;
    size_t share = p->queued / (4 * p->n);
    size_t want = b->n + (share < limit ? share : limit);
    while (p->head && b->n < want && b->n < limit &&
           !timeout_of(p, p->head) &&
           b->used + item_size(p->head, true) <= CC__PP_ARGS &&
           (b->n + 1) * sizeof(struct cc__pp_res) +
                   b->n * 8 < CC__PP_INLINE - CC__PP_ARGS)
        add(b, unlink_head(p));
}

/* Fill b with tasks, waiting for the first until `until`: 1, or 0 once
 * shut down and empty, or -ETIMEDOUT. At most limit tasks. */
static int take(struct cc__pp_pool *p, struct batch *b, size_t limit,
                cc_deadline until)
{
    int r = 0;
    cc__mutex_lock(&p->m);
    while (b->n == 0 && r == 0) {
        while (!p->head && !p->shutdown && r == 0) {
            cc__waiter w;
            cc__waiter_init(&w);
            r = cc__wait_on(&p->feeders, &p->m, &w, until);
        }
        if (!p->head)
            break;
        r = 0;
        add(b, unlink_head(p));
    }
    if (b->n)
        take_more_locked(p, b, limit);
    cc__mutex_unlock(&p->m);
    return b->n ? 1 : r == -ETIMEDOUT ? r : 0;
}

/* The next batch, taken without waiting while the worker runs one: only
 * while the queue holds a task for each worker (the last ones go to
 * whichever worker is free first), and without a time limit. */
static bool take_ahead(struct cc__pp_pool *p, struct batch *b, size_t limit)
{
    cc__mutex_lock(&p->m);
    if (limit > 0 && p->head && p->queued >= p->n && !timeout_of(p, p->head))
        add(b, unlink_head(p));
    if (b->n)
        take_more_locked(p, b, limit);
    cc__mutex_unlock(&p->m);
    return b->n > 0;
}

void cc__pp_wake_all(cc__waitq *q)
{
    cc__waiter *w;
    while ((w = cc__waitq_pop(q)))
        cc__waiter_wake(w);
}

static char *vformat(const char *fmt, va_list ap)
{
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    size_t len = strlen(buf);
    char *msg = cc__malloc(len + 1);
    if (msg)
        memcpy(msg, buf, len + 1);
    return msg;
}

static void vcomplete(struct cc__pp_task *t, int err, const char *fmt,
                      va_list ap)
{
    char *msg = fmt ? vformat(fmt, ap) : NULL;
    drop_arg(t); /* first: the next submit may want the arena */
    cc__future_finish(t->f, err, err ? NULL : t->result, msg);
}

/* Complete t's future; the pool's reference and the task stay (a lane
 * may still show it to a cancel) until drop_task. */
static void complete(struct cc__pp_task *t, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vcomplete(t, err, fmt, ap);
    va_end(ap);
}

/* Drop the pool's reference to t's completed future, and the task. */
static void drop_task(struct cc__pp_task *t)
{
    cc_future_release(t->f);
    cc__pp_task_free(t);
}

/* Drop the first k tasks of b (completed), keeping the rest in order. */
static void shift(struct batch *b, size_t k)
{
    memmove(b->t, b->t + k, (b->n - k) * sizeof b->t[0]);
    b->n -= k;
    b->used = 0;
    for (size_t i = 0; i < b->n; i++) {
        size_t one = item_size(b->t[i], true);
        b->used += i == 0 && one > CC__PP_ARGS ? item_size(b->t[i], false)
                                              : one;
    }
}

/* ---- the worker ----------------------------------------------------------- */

static int worker_pidfd(cc_worker *w)
{
    return w->proc ? cc_process_pidfd(w->proc) : w->served.pidfd;
}

static void set_worker(struct cc__pp_slot *s, cc_worker *w)
{
    cc__mutex_lock(&s->p->m);
    s->w = w;
    if (w) /* a kill for a cancel aimed at the last one (timed out meanwhile) */
        s->cancel_kill = NULL;
    /* Started while terminate signalled the others (it saw no worker
     * here): its batch must not run on. */
    if (w && s->p->terminated)
        cc_worker_kill(w);
    cc__mutex_unlock(&s->p->m);
}

static void drain_efd(struct cc__pp_slot *s)
{
    uint64_t v;
    while (read(s->efd, &v, sizeof v) < 0 && errno == EINTR)
        ;
}

static int start_worker(struct cc__pp_slot *s)
{
    struct cc__pp_pool *p = s->p;
    int fds[5] = {s->ctl_fd, s->data[0].fd, s->data[1].fd, s->efd,
                  p->arena.fd};
    cc_worker_options wo = {.start_method = p->o.start_method,
                            .daemon = true, .pass_fds = fds, .npass_fds = 5};
    /* relaxed: no worker maps the block now. */
    cc__store_relaxed(&s->ctl->req, 0);
    cc__store_relaxed(&s->ctl->fin, 0);
    cc__store_relaxed(&s->ctl->stage, CC__PP_STARTING);
    cc__store_relaxed(&s->ctl->halt, 0);
    s->ctl->quit = 0;
    s->seq = 0;
    s->ntasks = 0;
    drain_efd(s);
    cc_worker *w;
    int r = cc_worker_start(&w, CC__PP_WORKER_FN, p->boot, p->boot_len, &wo);
    if (r < 0)
        return r;
    cc__pp_oom_note(&s->oom, cc_worker_pid(w));
    set_worker(s, w);
    return 0;
}

/* Whether a new worker is worth starting now: not after a shutdown with
 * nothing queued, nor after terminate. */
static bool worker_wanted(struct cc__pp_pool *p)
{
    cc__mutex_lock(&p->m);
    bool want = !p->terminated && (!p->shutdown || p->head);
    cc__mutex_unlock(&p->m);
    return want;
}

/* Start the slot's worker ahead of its tasks (a failure is left for the
 * next batch to report). */
static void start_eagerly(struct cc__pp_slot *s)
{
    if (!s->w && worker_wanted(s->p))
        (void)start_worker(s);
}

#define CODE_LOST INT_MIN /* the exit status went with the forkserver */

/* Reap and free the current worker (killed first if still running): its
 * exit code, -N for signal N, or CODE_LOST. */
static int retire_worker(struct cc__pp_slot *s, cc_deadline grace)
{
    int code = 0;
    cc_worker *w = s->w;
    int r = cc_worker_join(w, grace, &code);
    if (r == -ETIMEDOUT) {
        cc_worker_kill(w);
        r = cc_worker_join(w, CC_FOREVER, &code);
    }
    if (r == -ECHILD)
        code = CODE_LOST;
    set_worker(s, NULL);
    cc_worker_free(w);
    return code;
}

static const char *stage_name(uint32_t stage)
{
    switch (stage) {
    case CC__PP_INIT: return "running the initializer";
    case CC__PP_TASK: return "running the task";
    case CC__PP_RESULT: return "delivering the result";
    case CC__PP_IDLE: return "waiting for the task";
    default: return "starting";
    }
}

/* ---- a batch -------------------------------------------------------------- */

static void put_item(struct cc__pp_lane *l, size_t *off,
                     struct cc__pp_task *t, bool inl)
{
    unsigned char *d = l->data + *off;
    size_t nlen = t->name_len + 1;
    struct cc__pp_item it = {.flags = t->flags, .name_len = (uint32_t)nlen,
                             .len = t->len,
                             .fd_off = inl ? CC__PP_NO_FD
                                       : t->in_arena ? CC__PP_ARENA : 0};
    memcpy(d, &it, sizeof it);
    memcpy(d + sizeof it, t->name, nlen);
    if (inl && t->len)
        memcpy(d + sizeof it + nlen, t->arg, t->len);
    *off += item_size(t, inl);
}

/* Show lane's batch to cc_process_pool_cancel (t NULL: none). */
static void set_current(struct cc__pp_slot *s, uint32_t lane,
                        struct cc__pp_task **t, size_t n)
{
    cc__mutex_lock(&s->p->m);
    s->cur[lane] = t;
    s->cur_n[lane] = n;
    for (size_t i = 0; i < n && s->p->ncancels; i++)
        t[i]->cancel |= cc__pp_cancel_requested(s->p, t[i]->f);
    for (size_t i = 0; i < n; i++) /* relaxed: published by req */
        cc__store_relaxed(&s->ctl->lane[lane].state[i],
                          t[i]->cancel ? CC__PP_CANCELLED : CC__PP_QUEUED);
    cc__mutex_unlock(&s->p->m);
}

static void clear_current(struct cc__pp_slot *s)
{
    for (uint32_t l = 0; l < CC__PP_LANES; l++)
        set_current(s, l, NULL, 0);
}

/* The task whose cancel killed the worker, or NULL; clears it. */
static struct cc__pp_task *take_cancel_kill(struct cc__pp_slot *s)
{
    cc__mutex_lock(&s->p->m);
    struct cc__pp_task *k = s->cancel_kill;
    s->cancel_kill = NULL;
    cc__mutex_unlock(&s->p->m);
    return k;
}

/* Of the first k tasks of b, those before `killed`: the killed task's
 * cancel was reported made, so a result it wrote before the kill landed
 * (it ended between the cancel's look and the kill, then waited at halt)
 * is not taken. */
static size_t before_killed(const struct batch *b, size_t k,
                            const struct cc__pp_task *killed)
{
    for (size_t i = 0; killed && i < k; i++)
        if (b->t[i] == killed)
            return i;
    return k;
}

_Atomic(void (*)(void)) cc__pp_test_before_post;

/* Write b into the free lane (lane 0 if both are: its memory is warm) and
 * wake the worker. */
static int post(struct cc__pp_slot *s, struct batch *b)
{
    /* relaxed: a test's hook, set before the batch is submitted */
    void (*hook)(void) = cc__load_relaxed(&cc__pp_test_before_post);
    if (hook)
        hook();
    uint32_t seq = s->seq + 1, lane = s->cur[0] ? 1 : 0;
    struct cc__pp_lane *l = &s->ctl->lane[lane];
    struct cc__pp_map *m = &s->data[lane];
    size_t off = 0;
    for (size_t i = 0; i < b->n; i++) {
        struct cc__pp_task *t = b->t[i];
        bool inl = !t->in_arena && item_size(t, true) <= CC__PP_ARGS;
        if (!inl && !t->in_arena) {
            int r = cc__pp_map_reserve(m, t->len);
            if (r < 0)
                return r;
            memcpy(m->base, t->arg, t->len);
        }
        put_item(l, &off, t, inl);
    }
    l->n = (uint32_t)b->n;
    /* Before set_current, whose lock shows it to a cancel; the entry of
     * batch seq - 2, which it replaces, was read before that finished. */
    s->ctl->lane_of[seq % 2] = lane;
    set_current(s, lane, b->t, b->n);
    /* relaxed: the worker reads done only after our release of req. */
    cc__store_relaxed(&l->done, 0);
    b->lane = lane;
    b->seq = s->seq = seq;
    /* release: the batch above before the worker's acquire of req. */
    cc__store_rel(&s->ctl->req, seq);
    cc__futex_wake(&s->ctl->req, 1, true);
    return 0;
}

/* Wait for a batch, the death, or the deadline: 0, -ECHILD, -ETIMEDOUT. */
static int await(struct cc__pp_slot *s, cc_deadline deadline)
{
    struct pollfd pf[2] = {{.fd = s->efd, .events = POLLIN},
                           {.fd = worker_pidfd(s->w), .events = POLLIN}};
    int r = cc__poll_until(pf, 2, deadline);
    if (r == -ETIMEDOUT)
        return r;
    if (r < 0)
        cc__panic("procpool: poll", r);
    if (pf[0].revents & POLLIN) {
        drain_efd(s);
        return 0;
    }
    return -ECHILD;
}

#define HUGE_MIN ((size_t)4 << 20) /* results copied into huge pages */

/* Append len bytes at src to out. A large copy asks first for transparent
 * huge pages where it will write: into pages not yet touched, the page
 * faults, not the copy, cost (64 MiB here: 40 ms into fresh 4 KiB pages,
 * 9 ms into huge ones, 5 ms into resident ones). Advice only: where it is
 * refused (THP off, memory that is not anonymous), nothing changes. */
static int append_result(cc_bytes *out, const void *src, size_t len)
{
    if (len >= HUGE_MIN && cc__bytes_reserve(out, len) == 0) {
        uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE); /* no syscall */
        uintptr_t at = (uintptr_t)out->data + out->len;
        uintptr_t lo = (at + pg - 1) & ~(pg - 1), hi = (at + len) & ~(pg - 1);
        if (hi > lo)
            (void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
    }
    return cc_bytes_append(out, src, len);
}

static int take_bytes(struct cc__pp_slot *s, uint32_t lane,
                      const struct cc__pp_res *r, const unsigned char *inl,
                      cc_bytes *out)
{
    if (!out || r->len == 0)
        return 0;
    if (r->fd_off == CC__PP_NO_FD)
        return cc_bytes_append(out, inl, r->len);
    struct cc__pp_map *m = &s->data[lane];
    int e = cc__pp_map_reserve(m, r->fd_off + r->len);
    return e < 0 ? e : append_result(out, m->base + r->fd_off, r->len);
}

/* Complete t from the result record at *roff of lane. */
static void collect(struct cc__pp_slot *s, uint32_t lane,
                    struct cc__pp_task *t, size_t *roff)
{
    struct cc__pp_res r;
    const unsigned char *d = s->ctl->lane[lane].data + *roff;
    memcpy(&r, d, sizeof r);
    *roff += CC__PP_ALIGN8(sizeof r + (r.fd_off == CC__PP_NO_FD ? r.len : 0));
    int err = r.err;
    if (!err && r.ret != 0)
        err = r.ret > 0 ? -r.ret : r.ret;
    if (!err)
        err = take_bytes(s, lane, &r, d + sizeof r, t->result);
    if (r.err == -ENOENT)
        complete(t, err, "no worker function named %s", t->name);
    else if (r.err == -ECANCELED)
        complete(t, err, "cancelled before it ran");
    else if (err)
        complete(t, err, "task %s failed: %d", t->name, err);
    else
        complete(t, 0, NULL);
}

/* Complete the first k tasks of b (posted) from their results; they stay
 * in b, and in its lane, for drop_done. */
static void complete_done(struct cc__pp_slot *s, struct batch *b, size_t k)
{
    size_t roff = CC__PP_ARGS;
    for (size_t i = 0; i < k; i++)
        collect(s, b->lane, b->t[i], &roff);
}

/* Drop the first k tasks of b, completed, once its lane no longer shows
 * them, and shift them out. */
static void drop_done(struct cc__pp_slot *s, struct batch *b, size_t k)
{
    for (size_t i = 0; i < k; i++)
        drop_task(b->t[i]);
    s->ntasks += k;
    shift(b, k);
}

/* Complete the batches the worker finished; true if there were any. Each
 * future is done before its lane stops showing the task: a cancel in
 * between finds it ran (late), never a task that no lane has and that is
 * not done (which it would take for one not posted yet, and report a
 * cancel made). */
static bool collect_finished(struct cc__pp_slot *s, struct flight *fl)
{
    /* acquire: every result of the batches counted in fin. */
    uint32_t fin = cc__load_acq(&s->ctl->fin);
    bool any = false;
    while (fl->nb && nth(fl, 0)->seq && nth(fl, 0)->seq <= fin) {
        struct batch *b = nth(fl, 0);
        complete_done(s, b, b->n);
        set_current(s, b->lane, NULL, 0);
        drop_done(s, b, b->n);
        pop_first(fl);
        any = true;
    }
    return any;
}

/* Show t (a task about to be failed: the one a dead worker ran, or one
 * not posted; or NULL) to cancels in place of its lane: a cancel marks it
 * cancelled until settle_ending. A cancel made while no lane showed it
 * (a request for its post) counts too. */
static void show_ending(struct cc__pp_slot *s, struct cc__pp_task *t)
{
    cc__mutex_lock(&s->p->m);
    s->ending = t;
    s->ending_late = false;
    if (t && s->p->ncancels)
        t->cancel |= cc__pp_cancel_requested(s->p, t->f);
    cc__mutex_unlock(&s->p->m);
}

/* Whether a cancel was made for the ending task (it fails with -ECANCELED);
 * from now on cancels find it late, until show_ending(NULL) once its
 * future is done. */
static bool settle_ending(struct cc__pp_slot *s)
{
    cc__mutex_lock(&s->p->m);
    s->ending_late = true;
    bool cancelled = s->ending && s->ending->cancel;
    cc__mutex_unlock(&s->p->m);
    return cancelled;
}

/* After the worker's death (reaped: s->w is NULL): complete what it
 * finished and stop showing the lanes to cancels, in that order (as
 * collect_finished). Returns the first batch still posted, its finished
 * tasks shifted out (the task killed for a cancel and those after it
 * stay), or NULL. Its first task, the one the worker ran, stays shown to
 * cancels (show_ending): otherwise a cancel would find it in no lane and
 * not done, take it for one not yet posted, and report a cancel made that
 * the task's failure (-ECHILD, -ETIMEDOUT) then ignored. */
static struct batch *collect_dead(struct cc__pp_slot *s, struct flight *fl,
                                  const struct cc__pp_task *killed,
                                  size_t *kp)
{
    collect_finished(s, fl);
    struct batch *b = fl->nb && nth(fl, 0)->seq ? nth(fl, 0) : NULL;
    size_t k = 0;
    if (b) {
        /* acquire: the results counted were written before done was
         * bumped. */
        k = cc__load_acq(&s->ctl->lane[b->lane].done);
        k = before_killed(b, k < b->n ? k : b->n, killed);
        complete_done(s, b, k);
    }
    show_ending(s, b && k < b->n ? b->t[k] : NULL);
    clear_current(s);
    if (b)
        drop_done(s, b, k);
    *kp = k;
    return b;
}

/* The batches go to the next worker from its first lane on. */
static void unpost(struct flight *fl)
{
    for (size_t i = 0; i < fl->nb; i++)
        nth(fl, i)->seq = 0;
    if (fl->nb && nth(fl, 0)->n == 0)
        pop_first(fl);
}

_Atomic(void (*)(void)) cc__pp_test_after_death;

static void after_death(void)
{
    /* relaxed: a test's hook, set before the task is submitted */
    void (*hook)(void) = cc__load_relaxed(&cc__pp_test_after_death);
    if (hook)
        hook();
}

/* The worker died: complete what it finished, fail the task it was running;
 * the rest stay for the next worker. */
static void fail_dead(struct cc__pp_slot *s, struct flight *fl)
{
    pid_t pid = cc_worker_pid(s->w);
    uint32_t stage = cc__load_relaxed(&s->ctl->stage);
    int code = retire_worker(s, CC_FOREVER);
    struct cc__pp_task *killed = take_cancel_kill(s);
    size_t k;
    struct batch *b = collect_dead(s, fl, killed, &k);
    after_death();
    if (!b)
        return;
    /* Died idle (killed between batches): the batch never started; it goes
     * to a new worker, once (a worker that cannot even wait fails it). */
    bool idle = stage == CC__PP_IDLE && k == 0 && !s->retried;
    s->retried = idle;
    /* Killed for a cancel of another task than the one first here (the
     * killed one ended first and waited for the kill at halt): this one
     * never started. */
    bool spared = killed && b->n && b->t[0] != killed;
    if (b->n == 0 || idle || spared) {
        show_ending(s, NULL); /* a cancel made is kept: t->cancel */
        unpost(fl);
        return;
    }
    struct cc__pp_task *t = b->t[0];
    shift(b, 1);
    unpost(fl);
    bool cancelled = settle_ending(s);
    if (killed == t)
        complete(t, -ECANCELED, "cancelled while running: worker %d killed",
                 (int)pid);
    else if (cancelled)
        complete(t, -ECANCELED, "cancelled as its worker %d died", (int)pid);
    else if (code == CODE_LOST)
        complete(t, -ECHILD, "worker %d ended while %s, how is unknown (its "
                 "forkserver went away)", (int)pid, stage_name(stage));
    else if (code < 0)
        complete(t, -ECHILD, "worker %d was killed by signal %d (%s) while "
                 "%s%s", (int)pid, -code, strsignal(-code), stage_name(stage),
                 cc__pp_oom_words(&s->oom, pid, code));
    else
        complete(t, -ECHILD, "worker %d exited with code %d while %s",
                 (int)pid, code, stage_name(stage));
    show_ending(s, NULL); /* done: a cancel now finds it so */
    drop_task(t);
}

/* Fail t, not posted, with err, unless a cancel was made for it (a request
 * for its post, or one while show_ending shows it): then -ECANCELED. */
static void fail_task(struct cc__pp_slot *s, struct cc__pp_task *t, int err,
                      const char *what)
{
    show_ending(s, t);
    if (settle_ending(s))
        complete(t, -ECANCELED, "cancelled before it ran");
    else
        complete(t, err, "%s: %s", what, cc_strerror(err));
    show_ending(s, NULL);
    drop_task(t);
}

static void fail_all(struct cc__pp_slot *s, struct batch *b, int err,
                     const char *what)
{
    for (size_t i = 0; i < b->n; i++)
        fail_task(s, b->t[i], err, what);
    b->n = 0;
    b->used = 0;
}

/* Fail every batch not posted (all of them if none is). */
static void fail_unposted(struct cc__pp_slot *s, struct flight *fl, int err,
                          const char *what)
{
    while (fl->nb && nth(fl, fl->nb - 1)->seq == 0) {
        fail_all(s, nth(fl, fl->nb - 1), err, what);
        fl->nb--;
    }
}

/* The time limit of the only task in flight (a timed task goes alone). */
static int64_t flight_timeout(struct cc__pp_slot *s, struct flight *fl)
{
    if (fl->nb != 1 || nth(fl, 0)->n != 1)
        return 0;
    return timeout_of(s->p, nth(fl, 0)->t[0]);
}

static void timed_out(struct cc__pp_slot *s, struct flight *fl)
{
    pid_t pid = cc_worker_pid(s->w);
    int64_t to = flight_timeout(s, fl);
    retire_worker(s, CC_NOWAIT); /* kills it */
    struct cc__pp_task *killed = take_cancel_kill(s); /* as in fail_dead */
    size_t k;
    struct batch *b = collect_dead(s, fl, killed, &k);
    if (!b)
        return;
    if (b->n == 0) {
        show_ending(s, NULL);
        unpost(fl);
        return;
    }
    struct cc__pp_task *t = b->t[0];
    shift(b, 1);
    unpost(fl);
    if (settle_ending(s) || killed == t) /* as in fail_dead */
        complete(t, -ECANCELED, "cancelled while running: worker %d killed",
                 (int)pid);
    else
        complete(t, -ETIMEDOUT, "task %s timed out after %lld ms; worker %d "
                 "killed", t->name, (long long)(to / 1000000), (int)pid);
    show_ending(s, NULL);
    drop_task(t);
}

/* The worker has not reached its first task yet (it starts, or runs the
 * initializer): a task's time limit counts from then on, so the next
 * await gives it a new one (the worker signals the eventfd when its
 * initializer is done: the limit starts again then, never early). */
static bool still_starting(struct cc__pp_slot *s)
{
    /* relaxed: a hint; a worker past it is timed out at the next limit */
    uint32_t stage = cc__load_relaxed(&s->ctl->stage);
    return stage == CC__PP_STARTING || stage == CC__PP_INIT;
}

/* The most tasks the next batch may hold. */
static size_t batch_limit(struct cc__pp_slot *s, struct flight *fl)
{
    const cc_process_pool_options *o = &s->p->o;
    size_t busy = tasks_in(fl) + (s->w ? s->ntasks : 0);
    if (!o->max_tasks_per_child)
        return BATCH_MAX;
    return busy < o->max_tasks_per_child ? o->max_tasks_per_child - busy : 0;
}

/* Post the batches not posted yet, in order; one that cannot be is failed
 * with those after it. */
static void post_all(struct cc__pp_slot *s, struct flight *fl)
{
    for (size_t i = 0; i < fl->nb; i++) {
        if (nth(fl, i)->seq)
            continue;
        int r = post(s, nth(fl, i));
        if (r < 0) {
            fail_unposted(s, fl, r, "cannot pass the argument");
            return;
        }
    }
}

/* Post the next batch while the worker runs the first, if worth it. */
static void post_ahead(struct cc__pp_slot *s, struct flight *fl)
{
    if (fl->nb != 1 || flight_timeout(s, fl))
        return;
    struct batch *b = nth(fl, 1);
    if (!take_ahead(s->p, b, batch_limit(s, fl)))
        return;
    fl->nb = 2;
    post_all(s, fl);
}

/* Run the flight's batches on the slot's worker (started if need be) until
 * at least one is done or the worker died; tasks not run stay. */
static void run_flight(struct cc__pp_slot *s, struct flight *fl, bool more)
{
    int r = s->w ? 0 : start_worker(s);
    if (r < 0) {
        fail_unposted(s, fl, r, "cannot start a worker");
        return;
    }
    if (more) {
        post_all(s, fl);
        post_ahead(s, fl);
    }
    if (fl->nb == 0)
        return;
    int64_t to = flight_timeout(s, fl);
    r = await(s, to ? cc_deadline_in(to) : CC_FOREVER);
    if (r == 0 && collect_finished(s, fl))
        s->retried = false;
    else if (r == -ECHILD)
        fail_dead(s, fl);
    else if (r == -ETIMEDOUT && !still_starting(s))
        timed_out(s, fl);
    size_t max = s->p->o.max_tasks_per_child;
    if (s->w && max && s->ntasks >= max)
        retire_worker(s, cc_deadline_in(5000000000LL));
    start_eagerly(s);
}

static void stop_worker(struct cc__pp_slot *s)
{
    s->ctl->quit = 1;
    cc__store_rel(&s->ctl->req, ++s->seq); /* release: quit before it */
    cc__futex_wake(&s->ctl->req, 1, true);
    retire_worker(s, cc_deadline_in(2000000000LL));
}

static bool is_terminated(struct cc__pp_pool *p)
{
    cc__mutex_lock(&p->m);
    bool t = p->terminated;
    cc__mutex_unlock(&p->m);
    return t;
}

/* While no task comes: a worker that died idle, or was killed while
 * starting, is reaped and replaced now rather than by the next task. One
 * that failed in its initializer is only reaped: the next task starts
 * another and reports it, so that it is not restarted in a loop. */
static void watch_idle_worker(struct cc__pp_slot *s)
{
    if (!s->w)
        return;
    struct pollfd pf = {.fd = worker_pidfd(s->w), .events = POLLIN};
    if (poll(&pf, 1, 0) != 1)
        return;
    /* relaxed: the worker is dead; nothing else writes it now. */
    uint32_t stage = cc__load_relaxed(&s->ctl->stage);
    int code = retire_worker(s, CC_FOREVER);
    if (stage == CC__PP_IDLE || (stage == CC__PP_STARTING && code < 0))
        start_eagerly(s);
}

/* Fail every batch held (terminate). */
static void fail_flight(struct cc__pp_slot *s, struct flight *fl, int err,
                        const char *what)
{
    while (fl->nb) {
        fail_all(s, nth(fl, 0), err, what);
        pop_first(fl);
    }
}

void *cc__pp_feeder(void *arg)
{
    struct cc__pp_slot *s = arg;
    struct flight fl = {.nb = 0};
    start_eagerly(s);
    for (;;) {
        if (fl.nb == 0) {
            int r = take(s->p, nth(&fl, 0), batch_limit(s, &fl),
                         cc_deadline_in(WATCH_NS));
            if (r == 0)
                break;
            if (r < 0) {
                watch_idle_worker(s);
                continue;
            }
            fl.nb = 1;
        }
        /* After terminate, a batch the worker has is waited for (its
         * running task fails with the worker's death); no more go. */
        bool more = !is_terminated(s->p);
        if (!more && !(s->w && nth(&fl, 0)->seq))
            fail_flight(s, &fl, -ECANCELED, "the pool was terminated");
        else
            run_flight(s, &fl, more);
    }
    if (s->w)
        stop_worker(s);
    cc__pp_oom_forget(&s->oom);
    return NULL;
}
