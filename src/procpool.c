/*
 * procpool.c: the process pool executor, the parent's side.
 *
 * DESIGN. Each of the max_workers slots has a feeder thread in the parent,
 * a worker process (started when the first task comes, replaced when it
 * dies, times out or reaches max_tasks_per_child), and three fds shared
 * with whichever worker runs: a control memfd (struct cc__pp_ctl, mapped
 * by both), a data memfd for large arguments and results, and an eventfd.
 * Tasks wait in one FIFO under the pool's mutex; a feeder takes one, writes
 * it into the control block (or the data memfd), bumps the shared futex
 * word and wakes the worker, then polls the eventfd (result ready) and the
 * worker's pidfd (it died) until the task's deadline. So a death is seen
 * at once, fails only that task, with the pid, the signal, the stage and
 * whether the cgroup's oom_kill counter rose (procpool_oom.c), and the
 * next task gets a fresh worker. Feeders block in poll (a thread of their
 * own, never a caller's), and in the pool's wait queue for tasks.
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
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/futex.h>

#include "concur/thread.h"

/* In every program that links the pool: spawned workers find the loop. */
__attribute__((constructor)) static void register_worker_loop(void)
{
    cc_worker_register_or_abort(CC__PP_WORKER_FN, cc__pp_worker_main);
}

/* The OOM check of a dead worker (procpool_oom.c). */
struct cc__pp_oom {
    char path[256];  /* its memory cgroup directory when it started */
    long base;       /* that cgroup's oom_kill count then, or -1 */
};
void cc__pp_oom_note(struct cc__pp_oom *o, pid_t pid);
bool cc__pp_oom_killed(const struct cc__pp_oom *o, pid_t pid);

/* A queued task; f->arg points to it. Freed by whoever dequeues it. */
struct task {
    struct task *next;  /* FIFO link, under the pool's mutex */
    cc_future *f;       /* its future (the pool's reference) */
    char name[CC__PP_NAME_MAX]; /* the registered function */
    void *arg;          /* owned copy of the argument */
    size_t len;         /* its bytes */
    size_t alloc;       /* the size of arg's allocation */
    cc_bytes *result;   /* where the result goes, or NULL */
    uint32_t flags;     /* CC__PP_CHUNK or 0 */
};

struct pool;

struct slot {
    struct pool *p;          /* the pool */
    cc_thread *thr;          /* the feeder */
    cc_worker *w;            /* the worker, or NULL; written by the feeder
                                under p->m (terminate reads it there) */
    struct cc__pp_ctl *ctl;  /* the shared control block */
    int ctl_fd, data_fd, efd; /* the fds passed to each worker */
    uint32_t seq;            /* the last req posted */
    uint64_t ntasks;         /* tasks run by the current worker */
    struct cc__pp_oom oom;   /* the current worker's cgroup at its start */
};

struct pool {
    cc_executor ex;          /* the interface; first member */
    cc__mutex m;             /* guards the fields below */
    struct task *head;       /* queued tasks, oldest first */
    struct task **tail;      /* where the next one is linked */
    cc__waitq feeders;       /* feeders waiting for a task */
    cc__waitq exit_q;        /* shutdown(wait)s waiting for the join */
    bool shutdown;           /* no more submits; feeders exit when empty */
    bool joining;            /* a shutdown(wait) is joining the feeders */
    bool joined;             /* the feeders are joined */
    size_t n;                /* slots */
    struct slot *slots;      /* n of them */
    cc_process_pool_options o; /* options (initargs: boot below) */
    unsigned char *boot;     /* the worker loop's boot argument */
    size_t boot_len;         /* its bytes */
};

static const struct cc__executor_ops ops;

static struct pool *as_pool(cc_executor *ex)
{
    return ex && ex->ops == &ops ? (struct pool *)ex : NULL;
}

bool cc__pp_is_pool(const cc_executor *ex)
{
    return ex && ex->ops == &ops;
}

/* ---- the queue ------------------------------------------------------------ */

static void task_free(struct task *t)
{
    if (!t)
        return;
    cc__free(t->arg, t->alloc);
    cc__free(t, sizeof *t);
}

/* Pop the oldest task, waiting for one; NULL once shut down and empty. */
static struct task *pop(struct pool *p)
{
    cc__mutex_lock(&p->m);
    while (!p->head && !p->shutdown) {
        cc__waiter w;
        cc__waiter_init(&w);
        cc__wait_on(&p->feeders, &p->m, &w, CC_FOREVER);
    }
    struct task *t = p->head;
    if (t) {
        p->head = t->next;
        if (!p->head)
            p->tail = &p->head;
    }
    cc__mutex_unlock(&p->m);
    return t;
}

static void wake_all(cc__waitq *q)
{
    cc__waiter *w;
    while ((w = cc__waitq_pop(q)))
        cc__waiter_wake(w);
}

/* Complete t's future and drop the pool's reference and the task. */
static void finish(struct task *t, int err, const char *fmt, ...)
{
    char *msg = NULL;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        char buf[512];
        int n = vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        size_t len = n < 0 ? 0 : strlen(buf);
        msg = cc__malloc(len + 1);
        if (msg)
            memcpy(msg, buf, len + 1);
    }
    cc__future_finish(t->f, err, err ? NULL : t->result, msg);
    cc_future_release(t->f);
    task_free(t);
}

/* ---- the worker ----------------------------------------------------------- */

static int worker_pidfd(cc_worker *w)
{
    return w->proc ? cc_process_pidfd(w->proc) : w->served.pidfd;
}

static void set_worker(struct slot *s, cc_worker *w)
{
    cc__mutex_lock(&s->p->m);
    s->w = w;
    cc__mutex_unlock(&s->p->m);
}

static void drain_efd(struct slot *s)
{
    uint64_t v;
    while (read(s->efd, &v, sizeof v) < 0 && errno == EINTR)
        ;
}

static int start_worker(struct slot *s)
{
    struct pool *p = s->p;
    int fds[3] = {s->ctl_fd, s->data_fd, s->efd};
    cc_worker_options wo = {.start_method = p->o.start_method,
                            .daemon = true, .pass_fds = fds, .npass_fds = 3};
    /* relaxed: no worker maps the block now. */
    cc__store_relaxed(&s->ctl->req, 0);
    cc__store_relaxed(&s->ctl->stage, CC__PP_STARTING);
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

/* Reap and free the current worker (killed first if still running). */
static int retire_worker(struct slot *s, cc_deadline grace)
{
    int code = 0;
    cc_worker *w = s->w;
    if (cc_worker_join(w, grace, &code) == -ETIMEDOUT) {
        cc_worker_kill(w);
        cc_worker_join(w, CC_FOREVER, &code);
    }
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

/* The worker died with t running: fail t, describing how. */
static void fail_dead(struct slot *s, struct task *t)
{
    pid_t pid = cc_worker_pid(s->w);
    bool oom = cc__pp_oom_killed(&s->oom, pid);
    uint32_t stage = cc__load_relaxed(&s->ctl->stage);
    int code = retire_worker(s, CC_FOREVER);
    if (code < 0)
        finish(t, -ECHILD, "worker %d was killed by signal %d (%s) while %s%s",
               (int)pid, -code, strsignal(-code), stage_name(stage),
               oom && code == -9 ? "; by the kernel's OOM killer" : "");
    else
        finish(t, -ECHILD, "worker %d exited with code %d while %s", (int)pid,
               code, stage_name(stage));
}

/* ---- one task ------------------------------------------------------------- */

static int post(struct slot *s, struct task *t)
{
    struct cc__pp_ctl *c = s->ctl;
    snprintf(c->name, sizeof c->name, "%s", t->name);
    c->flags = t->flags;
    c->arg_len = t->len;
    c->res_len = 0;
    if (t->len <= CC__PP_INLINE) {
        if (t->len)
            memcpy(c->data, t->arg, t->len);
    } else {
        int r = cc__pwrite_all(s->data_fd, t->arg, t->len, 0);
        if (r < 0)
            return r;
    }
    /* release: the task fields above before the worker's acquire of req. */
    cc__store_rel(&c->req, ++s->seq);
    syscall(SYS_futex, &c->req, FUTEX_WAKE, 1, NULL, NULL, 0);
    return 0;
}

/* Wait for the result, the death, or the deadline: 0, -ECHILD, -ETIMEDOUT. */
static int await(struct slot *s, cc_deadline deadline)
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

static int take_result(struct slot *s, struct task *t)
{
    struct cc__pp_ctl *c = s->ctl;
    size_t len = c->res_len;
    if (!t->result || len == 0)
        return 0;
    if (len <= CC__PP_INLINE)
        return cc_bytes_append(t->result, c->data, len);
    void *m = mmap(NULL, len, PROT_READ, MAP_SHARED, s->data_fd, 0);
    if (m == MAP_FAILED)
        return -errno;
    int r = cc_bytes_append(t->result, m, len);
    munmap(m, len);
    return r;
}

static void collect(struct slot *s, struct task *t)
{
    struct cc__pp_ctl *c = s->ctl;
    s->ntasks++;
    int err = c->err;
    if (!err && c->ret != 0)
        err = c->ret > 0 ? -c->ret : c->ret;
    if (!err)
        err = take_result(s, t);
    if (err == -ENOENT && c->err)
        finish(t, err, "no worker function named %s", t->name);
    else
        finish(t, err, err ? "task %s failed: %d" : NULL, t->name, err);
    if (s->p->o.max_tasks_per_child &&
        s->ntasks >= s->p->o.max_tasks_per_child)
        retire_worker(s, cc_deadline_in(5000000000LL));
}

static void run_one(struct slot *s, struct task *t)
{
    if (!cc_future_set_running_or_notify_cancel(t->f)) {
        cc_future_release(t->f);
        task_free(t);
        return;
    }
    int r = s->w ? 0 : start_worker(s);
    if (r < 0) {
        finish(t, r, "cannot start a worker: %s", cc_strerror(r));
        return;
    }
    r = post(s, t);
    if (r < 0) {
        finish(t, r, "cannot pass the argument: %s", cc_strerror(r));
        return;
    }
    int64_t to = s->p->o.task_timeout_ns;
    r = await(s, to ? cc_deadline_in(to) : CC_FOREVER);
    if (r == 0) {
        collect(s, t);
        return;
    }
    if (r == -ECHILD) {
        fail_dead(s, t);
        return;
    }
    pid_t pid = cc_worker_pid(s->w);
    retire_worker(s, CC_NOWAIT); /* kills it */
    finish(t, -ETIMEDOUT, "task %s timed out after %lld ms; worker %d killed",
           t->name, (long long)(to / 1000000), (int)pid);
}

static void stop_worker(struct slot *s)
{
    s->ctl->flags = CC__PP_QUIT;
    cc__store_rel(&s->ctl->req, ++s->seq);
    syscall(SYS_futex, &s->ctl->req, FUTEX_WAKE, 1, NULL, NULL, 0);
    retire_worker(s, cc_deadline_in(2000000000LL));
}

static void *feeder(void *arg)
{
    struct slot *s = arg;
    struct task *t;
    while ((t = pop(s->p)))
        run_one(s, t);
    if (s->w)
        stop_worker(s);
    return NULL;
}

/* ---- the executor --------------------------------------------------------- */

static int enqueue(struct pool *p, struct task *t)
{
    cc__mutex_lock(&p->m);
    if (p->shutdown) {
        cc__mutex_unlock(&p->m);
        return -ESHUTDOWN;
    }
    t->next = NULL;
    *p->tail = t;
    p->tail = &t->next;
    cc__waiter *w = cc__waitq_pop(&p->feeders);
    cc__mutex_unlock(&p->m);
    if (w)
        cc__waiter_wake(w);
    return 0;
}

/* Queue a task taking over arg (len bytes, cc__malloc'd). */
int cc__pp_submit_owned(cc_executor *ex, const char *name, void *arg,
                        size_t len, size_t alloc, uint32_t flags,
                        cc_bytes *result, cc_future **out)
{
    struct task *t = cc__calloc(1, sizeof *t);
    cc_future *f = t ? cc__future_alloc() : NULL;
    if (!f) {
        cc__free(t, sizeof *t);
        return -ENOMEM;
    }
    cc__future_init(f);
    *t = (struct task){.f = f, .arg = arg, .len = len, .alloc = alloc,
                       .result = result, .flags = flags};
    snprintf(t->name, sizeof t->name, "%s", name);
    f->arg = t;
    if (out) /* relaxed: nobody else sees f yet */
        cc__store_relaxed(&f->refs, 2);
    int r = enqueue(as_pool(ex), t);
    if (r < 0) {
        cc__free(f, sizeof *f);
        cc__free(t, sizeof *t);
        return r;
    }
    if (out)
        *out = f;
    return 0;
}

int cc_process_pool_submit(cc_executor *ex, const char *name, const void *arg,
                           size_t arg_len, cc_bytes *result, cc_future **out)
{
    if (!as_pool(ex) || !name || (!arg && arg_len))
        return -EINVAL;
    if (strlen(name) >= CC__PP_NAME_MAX || !cc__worker_lookup(name))
        return -ENOENT;
    void *copy = NULL;
    if (arg_len) {
        copy = cc__malloc(arg_len);
        if (!copy)
            return -ENOMEM;
        memcpy(copy, arg, arg_len);
    }
    int r = cc__pp_submit_owned(ex, name, copy, arg_len, arg_len, 0, result,
                                out);
    if (r < 0)
        cc__free(copy, arg_len);
    return r;
}

/* The generic path: a pointer and a void * mean nothing in another process. */
static int pool_submit(cc_executor *ex, cc_future *f)
{
    (void)ex;
    (void)f;
    return -ENOTSUP;
}

/* Cancel every queued task (under p->m: cancel never blocks). */
static void cancel_queued_locked(struct pool *p)
{
    struct task *t;
    while ((t = p->head)) {
        p->head = t->next;
        cc_future_cancel(t->f);
        cc_future_release(t->f);
        task_free(t);
    }
    p->tail = &p->head;
}

static void join_feeders(struct pool *p)
{
    if (!p->slots)
        return;
    for (size_t i = 0; i < p->n; i++)
        if (p->slots[i].thr)
            CC__CHECK("procpool: join",
                      cc_thread_join(p->slots[i].thr, CC_FOREVER, NULL));
}

static void pool_shutdown(cc_executor *ex, bool wait, bool cancel_futures)
{
    struct pool *p = (struct pool *)ex;
    cc__mutex_lock(&p->m);
    p->shutdown = true;
    if (cancel_futures)
        cancel_queued_locked(p);
    wake_all(&p->feeders);
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
    wake_all(&p->exit_q);
    cc__mutex_unlock(&p->m);
}

static void signal_all(cc_executor *ex, int sig)
{
    struct pool *p = as_pool(ex);
    if (!p)
        return;
    pool_shutdown(ex, false, true);
    cc__mutex_lock(&p->m);
    for (size_t i = 0; i < p->n; i++)
        if (p->slots[i].w)
            sig == SIGKILL ? cc_worker_kill(p->slots[i].w)
                           : cc_worker_terminate(p->slots[i].w);
    cc__mutex_unlock(&p->m);
}

int cc_process_pool_worker_pids(cc_executor *ex, pid_t *pids, size_t n)
{
    struct pool *p = as_pool(ex);
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

void cc_process_pool_terminate(cc_executor *ex) { signal_all(ex, SIGTERM); }
void cc_process_pool_kill(cc_executor *ex) { signal_all(ex, SIGKILL); }

static size_t pool_max_workers(const cc_executor *ex)
{
    return ((const struct pool *)ex)->n;
}

static void free_slots(struct pool *p)
{
    if (!p->slots)
        return;
    for (size_t i = 0; i < p->n; i++) {
        struct slot *s = &p->slots[i];
        if (s->ctl)
            munmap(s->ctl, CC__PP_CTL_SIZE);
        cc__close_fd(&s->ctl_fd);
        cc__close_fd(&s->data_fd);
        cc__close_fd(&s->efd);
    }
    cc__free(p->slots, p->n * sizeof *p->slots);
}

static void pool_free(cc_executor *ex)
{
    struct pool *p = (struct pool *)ex;
    pool_shutdown(ex, true, false);
    free_slots(p);
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

static int slot_init(struct pool *p, struct slot *s)
{
    s->p = p;
    s->ctl_fd = s->data_fd = s->efd = -1;
    s->ctl_fd = memfd_create("concur-pool-ctl", MFD_CLOEXEC);
    s->data_fd = memfd_create("concur-pool-data", MFD_CLOEXEC);
    s->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->ctl_fd < 0 || s->data_fd < 0 || s->efd < 0)
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

static int make_boot(struct pool *p, const cc_process_pool_options *o)
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

static int start_feeders(struct pool *p)
{
    for (size_t i = 0; i < p->n; i++) {
        char name[32];
        snprintf(name, sizeof name, "concur-pp-%zu", i);
        cc_thread_options to = {.name = name, .daemon = true};
        int r = cc_thread_start(&p->slots[i].thr, feeder, &p->slots[i], &to);
        if (r < 0)
            return r;
    }
    return 0;
}

static int pool_init(struct pool *p, const cc_process_pool_options *o)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    p->o = *o;
    p->o.initargs = NULL;
    p->n = o->max_workers ? o->max_workers : (cpus > 0 ? (size_t)cpus : 1);
    p->tail = &p->head;
    p->slots = cc__calloc(p->n, sizeof *p->slots);
    if (!p->slots)
        return -ENOMEM;
    for (size_t i = 0; i < p->n; i++)
        p->slots[i].ctl_fd = p->slots[i].data_fd = p->slots[i].efd = -1;
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
    struct pool *p = cc__calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->ex.ops = &ops;
    r = pool_init(p, o);
    if (r == 0)
        r = start_feeders(p);
    if (r < 0) {
        pool_free(&p->ex); /* feeders started exit at the shutdown */
        return r;
    }
    *out = &p->ex;
    return 0;
}
