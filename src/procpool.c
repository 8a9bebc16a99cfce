/*
 * procpool.c: the process pool executor, the parent's side.
 *
 * DESIGN. Each of the max_workers slots has a feeder thread in the parent
 * (procpool_feeder.c), a worker process (started with the pool, replaced
 * at once when it dies, times out or reaches max_tasks_per_child) and four
 * fds shared with whichever worker runs: a control memfd (struct
 * cc__pp_ctl, mapped by both), two data memfds for large arguments and
 * results (one per lane of the block), and an eventfd. Submitted tasks (a
 * registered name and a copy of the argument: inside the task when small,
 * in the pool's arena, shared with the workers, when large) wait in one FIFO under the
 * pool's mutex, from which the feeders take them in batches. This file holds the FIFO's producer side, shutdown,
 * terminate and kill, and the pool's creation; the generic
 * cc_executor_submit is refused (-ENOTSUP: a C pointer means nothing in
 * another process).
 */
#include "procpool_impl.h"
#include "executor_internal.h"
#include "worker_impl.h"

#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "concur/thread.h"

/* In every program that links the pool: spawned workers find the loop. */
__attribute__((constructor)) static void register_worker_loop(void)
{
    cc_worker_register_or_abort(CC__PP_WORKER_FN, cc__pp_worker_main);
}

static const struct cc__executor_ops ops;
static bool cancel_running(cc_future *f, void *ctx);

static struct cc__pp_pool *as_pool(cc_executor *ex)
{
    return ex && ex->ops == &ops ? (struct cc__pp_pool *)ex : NULL;
}

bool cc__pp_is_pool(const cc_executor *ex)
{
    return ex && ex->ops == &ops;
}

/* ---- the executor --------------------------------------------------------- */

static int enqueue(struct cc__pp_pool *p, struct cc__pp_task *t)
{
    cc__mutex_lock(&p->m);
    if (p->shutdown) {
        cc__mutex_unlock(&p->m);
        return -ESHUTDOWN;
    }
    t->next = NULL;
    *p->tail = t;
    p->tail = &t->next;
    p->queued++;
    cc__waiter *w = cc__waitq_pop(&p->feeders);
    cc__mutex_unlock(&p->m);
    if (w)
        cc__waiter_wake(w);
    return 0;
}

/* Where a copy of len bytes goes for t: the pool's arena if large and
 * free (t->in_arena), else a new buffer (t->alloc bytes). */
static void *arg_buffer(struct cc__pp_pool *p, struct cc__pp_task *t,
                        size_t len)
{
    if (len >= CC__PP_ARENA_MIN && len <= CC__PP_ARENA_MAX) {
        cc__mutex_lock(&p->m);
        t->in_arena = !p->arena_busy;
        p->arena_busy = true;
        cc__mutex_unlock(&p->m);
        /* The holder alone maps or grows the parent's mapping. */
        if (t->in_arena && cc__pp_map_reserve(&p->arena, len) == 0)
            return p->arena.base;
        if (t->in_arena)
            cc__pp_arena_release(p, t);
    }
    t->alloc = len;
    return cc__malloc(len);
}

void cc__pp_arena_release(struct cc__pp_pool *p, struct cc__pp_task *t)
{
    cc__mutex_lock(&p->m);
    p->arena_busy = false;
    cc__mutex_unlock(&p->m);
    t->in_arena = false;
}

/* A task for name with a copy of arg, and its future (refs: 2 if out). */
static struct cc__pp_task *new_task(struct cc__pp_pool *p, const char *name,
                                    const void *arg, size_t len, bool out)
{
    size_t nlen = strlen(name);
    struct cc__pp_task *t = cc__malloc(sizeof *t + nlen + 1);
    if (!t)
        return NULL;
    *t = (struct cc__pp_task){.p = p, .len = len, .name_len = (uint32_t)nlen};
    void *copy = len > CC__PP_SMALL ? arg_buffer(p, t, len) : t->small;
    t->arg = copy;
    cc_future *f = copy ? cc__future_alloc() : NULL;
    if (!f) {
        cc__pp_task_free(t);
        return NULL;
    }
    cc__future_init(f);
    t->f = f;
    memcpy(t->name, name, nlen + 1);
    if (len)
        memcpy(copy, arg, len);
    f->arg = t;
    if (p->o.kill_on_cancel) {
        f->cancel_running = cancel_running;
        f->cancel_ctx = &p->ex;
    }
    if (out) /* relaxed: nobody else sees f yet */
        cc__store_relaxed(&f->refs, 2);
    return t;
}

int cc__pp_submit_copy(cc_executor *ex, const char *name, const void *arg,
                       size_t len, uint32_t flags, int64_t timeout_ns,
                       cc_bytes *result, cc_future **out)
{
    struct cc__pp_task *t = new_task(as_pool(ex), name, arg, len, out);
    if (!t)
        return -ENOMEM;
    t->flags = flags;
    t->timeout_ns = timeout_ns;
    t->result = result;
    cc_future *f = t->f;
    int r = enqueue(as_pool(ex), t);
    if (r < 0) {
        cc__free(f, sizeof *f);
        cc__pp_task_free(t);
        return r;
    }
    if (out)
        *out = f;
    return 0;
}

int cc_process_pool_submit(cc_executor *ex, const char *name, const void *arg,
                           size_t arg_len, cc_bytes *result, cc_future **out)
{
    return cc_process_pool_submit_timeout(ex, name, arg, arg_len, 0, result,
                                          out);
}

int cc_process_pool_submit_timeout(cc_executor *ex, const char *name,
                                   const void *arg, size_t arg_len,
                                   int64_t timeout_ns, cc_bytes *result,
                                   cc_future **out)
{
    if (!as_pool(ex) || !name || (!arg && arg_len) || timeout_ns < 0)
        return -EINVAL;
    if (strlen(name) >= CC__PP_NAME_MAX || !cc__worker_lookup(name))
        return -ENOENT;
    return cc__pp_submit_copy(ex, name, arg, arg_len, 0, timeout_ns, result,
                              out);
}

/* The generic path: a pointer and a void * mean nothing in another process. */
static int pool_submit(cc_executor *ex, cc_future *f)
{
    (void)ex;
    (void)f;
    return -ENOTSUP;
}

/* Cancel the tasks of a list unlinked from the queue. */
static void cancel_list(struct cc__pp_task *t)
{
    while (t) {
        struct cc__pp_task *next = t->next;
        cc_future_cancel(t->f);
        cc_future_release(t->f);
        cc__pp_task_free(t);
        t = next;
    }
}

/* Count the feeders as quiet threads for the fork warning from before
 * they exist until they are joined (relaxed: only a count). */
static void quiet_threads(int d)
{
    atomic_fetch_add_explicit(&cc__worker_quiet_threads, (uint32_t)d,
                              memory_order_relaxed);
}

static void join_feeders(struct cc__pp_pool *p)
{
    if (!p->slots)
        return;
    for (size_t i = 0; i < p->n; i++) {
        if (!p->slots[i].thr)
            continue;
        CC__CHECK("procpool: join",
                  cc_thread_join(p->slots[i].thr, CC_FOREVER, NULL));
        quiet_threads(-1);
    }
}

/* Refuse new tasks, wake the feeders; cancel the queued ones if asked (not
 * under the mutex: their done callbacks may submit). */
static void stop_accepting(struct cc__pp_pool *p, bool cancel_futures)
{
    cc__mutex_lock(&p->m);
    p->shutdown = true;
    struct cc__pp_task *queued = NULL;
    if (cancel_futures) {
        queued = p->head;
        p->head = NULL;
        p->tail = &p->head;
        p->queued = 0;
    }
    cc__pp_wake_all(&p->feeders);
    cc__mutex_unlock(&p->m);
    cancel_list(queued);
}

static void pool_shutdown(cc_executor *ex, bool wait, bool cancel_futures)
{
    struct cc__pp_pool *p = (struct cc__pp_pool *)ex;
    stop_accepting(p, cancel_futures);
    cc__mutex_lock(&p->m);
    if (!wait || p->joined) {
        cc__mutex_unlock(&p->m);
        return;
    }
    if (p->joining) {
        while (!p->joined) {
            cc__waiter w;
            cc__waiter_init(&w);
            cc__wait_on(&p->exit_q, &p->m, &w, CC_FOREVER);
        }
        cc__mutex_unlock(&p->m);
        return;
    }
    p->joining = true;
    cc__mutex_unlock(&p->m);
    join_feeders(p);
    cc__mutex_lock(&p->m);
    p->joined = true;
    cc__pp_wake_all(&p->exit_q);
    cc__mutex_unlock(&p->m);
}

static void signal_all(cc_executor *ex, int sig)
{
    struct cc__pp_pool *p = as_pool(ex);
    if (!p)
        return;
    pool_shutdown(ex, false, true);
    cc__mutex_lock(&p->m);
    p->terminated = true;
    for (size_t i = 0; i < p->n; i++)
        if (p->slots[i].w)
            sig == SIGKILL ? cc_worker_kill(p->slots[i].w)
                           : cc_worker_terminate(p->slots[i].w);
    cc__mutex_unlock(&p->m);
}

int cc_process_pool_worker_pids(cc_executor *ex, pid_t *pids, size_t n)
{
    struct cc__pp_pool *p = as_pool(ex);
    if (!p)
        return -EINVAL;
    int count = 0;
    cc__mutex_lock(&p->m);
    for (size_t i = 0; i < p->n; i++) {
        if (!p->slots[i].w)
            continue;
        if ((size_t)count < n)
            pids[count] = cc_worker_pid(p->slots[i].w);
        count++;
    }
    cc__mutex_unlock(&p->m);
    return count;
}

/* Before killing the worker for task i of batch seq (lane l), which runs:
 * ask it to wait for the kill if the task ends first (halt). True if the
 * task had not ended then, false if it had (halt taken back: the worker
 * goes on and must not be killed). Under p->m. */
static bool halt_at(struct cc__pp_slot *s, uint32_t l, uint32_t seq, size_t i)
{
    cc__atomic_u32 *halt = &s->ctl->halt;
    cc__store_relaxed(halt, cc__pp_task_id(seq, (uint32_t)i));
    /* seq_cst: halt before the load of done, against the worker's bump of
     * done before its load of halt (halt_if_asked). */
    cc__fence_seq_cst();
    if (cc__load_relaxed(&s->ctl->lane[l].done) <= i) /* relaxed: fence */
        return true;
    cc__store_relaxed(halt, 0);
    cc__futex_wake(halt, 1, true); /* shared: the memfd both map */
    return false;
}

/* Task i of lane l of slot s was claimed by the worker: kill the worker
 * if it still runs the task. True if killed; false if the task ended or
 * its worker died (its feeder completes it). Under p->m. */
static bool kill_running(struct cc__pp_slot *s, uint32_t l, size_t i)
{
    /* acquire, after the acquire of the state that showed RUNNING: the
     * worker bumped fin for the batch before (lane l's batch starts only
     * then), so fin + 1 is lane l's batch unless it ended (then done is
     * its n: both were stored before fin). */
    uint32_t fin = cc__load_acq(&s->ctl->fin);
    if (cc__load_acq(&s->ctl->lane[l].done) > i || !s->w)
        return false;
    if (!halt_at(s, l, fin + 1, i))
        return false;
    s->cur[l][i]->cancel = true;
    s->cancel_kill = s->cur[l][i];
    cc_worker_kill(s->w);
    return true;
}

/* Cancel f if lane l of slot s has it (under p->m): 1 done, 0 not there,
 * -1 late (it ran). */
static int cancel_in_lane(struct cc__pp_slot *s, uint32_t l, cc_future *f)
{
    for (size_t i = 0; i < s->cur_n[l]; i++) {
        if (s->cur[l][i]->f != f)
            continue;
        uint32_t st = CC__PP_QUEUED;
        /* acq_rel: against the worker's claim (claim in
         * procpool_worker.c); whichever moves the state first wins. */
        if (cc__cas(&s->ctl->lane[l].state[i], &st, CC__PP_CANCELLED) ||
            st == CC__PP_CANCELLED) {
            s->cur[l][i]->cancel = true;
            return 1; /* the worker skips it: it never runs */
        }
        return kill_running(s, l, (uint32_t)i) ? 1 : -1;
    }
    return 0;
}

/* Cancel f if it is the task that slot s's feeder is failing (its dead
 * worker's, or one not posted) (under p->m): 1 done (the feeder fails it
 * with -ECANCELED), 0 not there, -1 late (its outcome is settled). */
static int cancel_ending(struct cc__pp_slot *s, cc_future *f)
{
    if (!s->ending || s->ending->f != f)
        return 0;
    if (s->ending_late)
        return -1;
    s->ending->cancel = true;
    return 1;
}

/* Cancel f if slot s has it (under p->m): 1 done, 0 not there, -1 late. */
static int cancel_in_slot(struct cc__pp_slot *s, cc_future *f)
{
    int r = cancel_ending(s, f);
    for (uint32_t l = 0; l < CC__PP_LANES && r == 0; l++)
        r = cancel_in_lane(s, l, f);
    return r;
}

/* Drop entry i of p->cancels. Under p->m. */
static void forget_cancel(struct cc__pp_pool *p, size_t i)
{
    cc_future_release(p->cancels[i]);
    p->cancels[i] = p->cancels[--p->ncancels];
}

/* Drop the requests of futures done meanwhile (they ended unposted, or
 * their feeder completed them). Under p->m. */
static void prune_cancels(struct cc__pp_pool *p)
{
    for (size_t i = 0; i < p->ncancels;) {
        if (cc_future_done(p->cancels[i]))
            forget_cancel(p, i);
        else
            i++;
    }
}

bool cc__pp_cancel_requested(struct cc__pp_pool *p, cc_future *f)
{
    prune_cancels(p);
    for (size_t i = 0; i < p->ncancels; i++) {
        if (p->cancels[i] == f) {
            forget_cancel(p, i);
            return true;
        }
    }
    return false;
}

/* f runs and no lane has it: a feeder took it and has not posted it yet
 * (a task that ended is done before its lane stops showing it:
 * collect_finished). Ask its post to skip it. Under p->m: 1, or 0 (no
 * memory: not cancelled). */
static int cancel_when_posted(struct cc__pp_pool *p, cc_future *f)
{
    prune_cancels(p);
    if (p->ncancels == p->cancels_cap) {
        size_t cap = p->cancels_cap ? 2 * p->cancels_cap : 8;
        void *c = cc__realloc(p->cancels, p->cancels_cap * sizeof *p->cancels,
                              cap * sizeof *p->cancels);
        if (!c)
            return 0;
        p->cancels = c;
        p->cancels_cap = cap;
    }
    p->cancels[p->ncancels++] = cc_future_retain(f);
    return 1;
}

/* Cancel the running f wherever it is (under p->m): 1 done, 0 not. */
static int cancel_running_locked(struct cc__pp_pool *p, cc_future *f)
{
    int r = 0;
    for (size_t i = 0; i < p->n && r == 0; i++)
        r = cancel_in_slot(&p->slots[i], f);
    if (r == 0 && !cc_future_done(f))
        r = cancel_when_posted(p, f);
    return r;
}

/* The futures' cancel_running hook (kill_on_cancel). */
static bool cancel_running(cc_future *f, void *ctx)
{
    struct cc__pp_pool *p = ctx;
    cc__mutex_lock(&p->m);
    int r = cancel_running_locked(p, f);
    cc__mutex_unlock(&p->m);
    return r > 0;
}

bool cc_process_pool_cancel(cc_executor *ex, cc_future *f)
{
    struct cc__pp_pool *p = as_pool(ex);
    if (!p || !f)
        return false;
    if (cc_future_cancel(f))
        return true;
    if (p->o.kill_on_cancel)
        return false; /* cc_future_cancel tried already */
    cc__mutex_lock(&p->m);
    int r = cancel_running_locked(p, f);
    cc__mutex_unlock(&p->m);
    return r > 0;
}

void cc_process_pool_terminate(cc_executor *ex) { signal_all(ex, SIGTERM); }
void cc_process_pool_kill(cc_executor *ex) { signal_all(ex, SIGKILL); }

static size_t pool_max_workers(const cc_executor *ex)
{
    return ((const struct cc__pp_pool *)ex)->n;
}

static void free_slots(struct cc__pp_pool *p)
{
    if (!p->slots)
        return;
    for (size_t i = 0; i < p->n; i++) {
        struct cc__pp_slot *s = &p->slots[i];
        if (s->ctl)
            munmap(s->ctl, CC__PP_CTL_SIZE);
        cc__close_fd(&s->ctl_fd);
        for (int l = 0; l < CC__PP_LANES; l++) {
            cc__pp_map_drop(&s->data[l]);
            cc__close_fd(&s->data[l].fd);
        }
        cc__close_fd(&s->efd);
    }
    cc__free(p->slots, p->n * sizeof *p->slots);
}

static void pool_free(cc_executor *ex)
{
    struct cc__pp_pool *p = (struct cc__pp_pool *)ex;
    pool_shutdown(ex, true, false);
    free_slots(p);
    while (p->ncancels) /* requests of tasks that ended unposted */
        forget_cancel(p, 0);
    cc__free(p->cancels, p->cancels_cap * sizeof *p->cancels);
    cc__pp_map_drop(&p->arena);
    cc__close_fd(&p->arena.fd);
    cc__free(p->boot, p->boot_len);
    cc__free(p, sizeof *p);
}

static const struct cc__executor_ops ops = {
    .submit = pool_submit,
    .shutdown = pool_shutdown,
    .max_workers = pool_max_workers,
    .free = pool_free,
};

/* ---- creation ------------------------------------------------------------- */

static int slot_init(struct cc__pp_pool *p, struct cc__pp_slot *s)
{
    s->p = p;
    s->ctl_fd = memfd_create("concur-pool-ctl", MFD_CLOEXEC);
    if (s->ctl_fd < 0)
        return -errno;
    for (int l = 0; l < CC__PP_LANES; l++) {
        s->data[l].fd = memfd_create("concur-pool-data", MFD_CLOEXEC);
        if (s->data[l].fd < 0)
            return -errno;
    }
    s->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->efd < 0)
        return -errno;
    if (ftruncate(s->ctl_fd, CC__PP_CTL_SIZE) < 0)
        return -errno;
    void *m = mmap(NULL, CC__PP_CTL_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
                   s->ctl_fd, 0);
    if (m == MAP_FAILED)
        return -errno;
    s->ctl = m;
    return 0;
}

static int make_boot(struct cc__pp_pool *p, const cc_process_pool_options *o)
{
    uint32_t nlen = o->initializer ? (uint32_t)strlen(o->initializer) : 0;
    uint64_t max = o->max_tasks_per_child;
    p->boot_len = CC__PP_BOOT_HEAD + nlen + (nlen ? o->initargs_len : 0);
    p->boot = cc__malloc(p->boot_len);
    if (!p->boot)
        return -ENOMEM;
    memcpy(p->boot, &max, sizeof max);
    memcpy(p->boot + 8, &nlen, sizeof nlen);
    if (nlen)
        memcpy(p->boot + CC__PP_BOOT_HEAD, o->initializer, nlen);
    if (nlen && o->initargs_len)
        memcpy(p->boot + CC__PP_BOOT_HEAD + nlen, o->initargs,
               o->initargs_len);
    return 0;
}

static int check_options(const cc_process_pool_options *o)
{
    if (o->start_method > CC_START_FORKSERVER || o->task_timeout_ns < 0 ||
        (!o->initargs && o->initargs_len))
        return -EINVAL;
    if (o->initializer && (strlen(o->initializer) >= CC__PP_NAME_MAX ||
                           !cc__worker_lookup(o->initializer)))
        return -ENOENT;
    return 0;
}

static int start_feeders(struct cc__pp_pool *p)
{
    for (size_t i = 0; i < p->n; i++) {
        char name[32];
        snprintf(name, sizeof name, "concur-pp-%zu", i);
        cc_thread_options to = {.name = name, .daemon = true};
        quiet_threads(1);
        int r = cc_thread_start(&p->slots[i].thr, cc__pp_feeder, &p->slots[i], &to);
        if (r < 0) {
            quiet_threads(-1);
            return r;
        }
    }
    return 0;
}

static int pool_init(struct cc__pp_pool *p, const cc_process_pool_options *o)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    p->arena.fd = -1;
    p->o = *o;
    p->o.initargs = NULL;
    p->n = o->max_workers ? o->max_workers : (cpus > 0 ? (size_t)cpus : 1);
    p->tail = &p->head;
    p->arena.fd = memfd_create("concur-pool-arena", MFD_CLOEXEC);
    if (p->arena.fd < 0)
        return -errno;
    p->slots = cc__calloc(p->n, sizeof *p->slots);
    if (!p->slots)
        return -ENOMEM;
    for (size_t i = 0; i < p->n; i++) {
        struct cc__pp_slot *s = &p->slots[i];
        s->ctl_fd = s->efd = s->data[0].fd = s->data[1].fd = -1;
    }
    int r = make_boot(p, o);
    for (size_t i = 0; i < p->n && r == 0; i++)
        r = slot_init(p, &p->slots[i]);
    return r;
}

int cc_process_pool_new(cc_executor **out, const cc_process_pool_options *opts)
{
    cc_process_pool_options def = {0};
    const cc_process_pool_options *o = opts ? opts : &def;
    if (!out)
        return -EINVAL;
    int r = check_options(o);
    if (r < 0)
        return r;
    struct cc__pp_pool *p = cc__calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->ex.ops = &ops;
    r = pool_init(p, o);
    /* Here, not in a feeder: the server dies with the thread that starts
     * it, and a feeder's ends when its pool is freed. */
    if (r == 0 && o->start_method == CC_START_FORKSERVER)
        r = cc_forkserver_start();
    if (r == 0)
        r = start_feeders(p);
    if (r < 0) {
        pool_free(&p->ex); /* feeders started exit at the shutdown */
        return r;
    }
    *out = &p->ex;
    return 0;
}
