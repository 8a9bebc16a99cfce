/*
 * procpool_impl.h: what the process pool's files share (procpool.c: the
 * parent's side; procpool_worker.c: the worker's loop; procpool_map.c: the
 * map). Not installed.
 */
#ifndef CONCUR_PROCPOOL_IMPL_H
#define CONCUR_PROCPOOL_IMPL_H

#include "concur/procpool.h"
#include "atomics.h"
#include "internal.h"

#include <stdbool.h>
#include <stdint.h>

#define CC__PP_WORKER_FN "cc__procpool_worker" /* the worker loop's name */
#define CC__PP_INLINE (60u * 1024)  /* arguments/results up to this size
                                       travel inside the control block */
#define CC__PP_CTL_SIZE (128u * 1024) /* the control memfd's size */
#define CC__PP_NAME_MAX 128          /* longest function name + NUL */
#define CC__PP_BATCH_MAX 64          /* tasks posted to a worker at once */

/* The worker's stage, for the message when it dies. */
enum {
    CC__PP_STARTING = 0, /* not yet in its loop */
    CC__PP_INIT = 1,     /* running the initializer */
    CC__PP_IDLE = 2,     /* waiting for a task */
    CC__PP_TASK = 3,     /* running the task */
    CC__PP_RESULT = 4,   /* delivering the result */
};

/* A task's state in its lane (cc__pp_lane.state). */
enum {
    CC__PP_QUEUED = 0,    /* posted, not started: a cancel may still win */
    CC__PP_RUNNING = 1,   /* claimed by the worker: it runs (or ran) */
    CC__PP_CANCELLED = 2, /* claimed by a cancel: the worker skips it */
};

/* Task flags. */
enum {
    CC__PP_CHUNK = 1, /* the argument is a chunk of a map (packed) */
};

/*
 * The control block, shared by the parent and one worker (a memfd mapped by
 * both). Batches are numbered 1, 2, ... (seq); batch seq goes to lane
 * lane_of[seq % 2], the lane that holds no batch in flight (lane 0 when
 * both are free, so that one batch at a time always finds lane 0's memory
 * warm), so that the parent can post the next batch while the worker runs
 * one (the worker goes on without waiting for the parent). The parent writes a
 * batch into its lane, then bumps req (release) and wakes the futex on it;
 * the worker writes each task's result record and bumps the lane's done
 * (release), and after the last bumps fin and signals the slot's eventfd.
 * If the worker dies, fin and done tell which tasks have their results,
 * and `stage` which one was running.
 *
 * lane.data[0, CC__PP_ARGS): the batch, n x (struct cc__pp_item, the name
 * with its NUL, the argument when inline), each 8-aligned. An argument
 * that does not fit (only the first of a batch) is in the lane's data
 * memfd at 0. lane.data[CC__PP_ARGS, CC__PP_INLINE): the results, n x
 * (struct cc__pp_res, the bytes when inline), 8-aligned; a result that
 * does not fit is in the lane's data memfd at res.fd_off (page aligned,
 * after the earlier ones).
 */
struct cc__pp_lane {
    cc__atomic_u32 done;  /* results written in this batch (release by the
                             worker; acquire by the parent after a death
                             or fin) */
    uint32_t n;           /* tasks in the batch */
    cc__atomic_u32 state[CC__PP_BATCH_MAX]; /* CC__PP_QUEUED/RUNNING/
                             CANCELLED of task i of the batch: moved once
                             from QUEUED by a CAS (acq_rel), by the worker
                             to RUNNING before it runs the task, by a
                             cancel to CANCELLED; whichever wins decides
                             whether the task runs */
    unsigned char data[CC__PP_INLINE]; /* the batch, then the results */
};

#define CC__PP_LANES 2 /* batches a worker may have posted at once */

struct cc__pp_ctl {
    cc__atomic_u32 req;   /* batches posted, bumped by the parent (release:
                             the batch written before it is seen by the
                             worker's acquire load); futex word */
    cc__atomic_u32 fin;   /* batches finished (release by the worker after
                             the last done; acquire by the parent) */
    cc__atomic_u32 stage; /* CC__PP_* stage of the worker (relaxed: read
                             only after the worker died, or as a hint) */
    uint32_t quit;        /* set with the last req: the worker returns */
    cc__atomic_u32 halt;  /* 0, or the cc__pp_task_id of a task whose
                             worker the parent kills for a cancel: if the
                             task ends first, the worker waits here for
                             the kill rather than start the next one
                             (futex word; seq_cst fences on both sides
                             between the store of one of halt and done
                             and the load of the other) */
    uint32_t lane_of[2];  /* batch seq's lane is lane_of[seq % 2] (written
                             before the release of req that posts it) */
    struct cc__pp_lane lane[CC__PP_LANES]; /* the batches: see lane_of */
};

_Static_assert(sizeof(struct cc__pp_ctl) <= CC__PP_CTL_SIZE,
               "the control block fits its memfd");

#define CC__PP_ARGS (28u * 1024) /* where the results start in data */
#define CC__PP_NO_FD UINT64_MAX  /* fd_off of inline bytes */
#define CC__PP_ARENA (UINT64_MAX - 1) /* fd_off of an argument in the
                                         pool's arena memfd, at 0 */

/* A task of a batch, followed by its name and inline argument. */
struct cc__pp_item {
    uint32_t flags;    /* CC__PP_CHUNK or 0 */
    uint32_t name_len; /* bytes of the name, NUL included */
    uint64_t len;      /* argument bytes */
    uint64_t fd_off;   /* CC__PP_NO_FD (inline), CC__PP_ARENA, or 0 (the
                          lane's data memfd) */
};

/* A task's result record, followed by its bytes when inline. */
struct cc__pp_res {
    int32_t ret;     /* the function's return value */
    int32_t err;     /* 0 or the worker's own failure (-ENOMEM, -ENOENT) */
    uint64_t len;    /* result bytes */
    uint64_t fd_off; /* CC__PP_NO_FD (inline) or its offset in the memfd */
};

/* The id of task i of batch seq for `halt` (never 0). */
static inline uint32_t cc__pp_task_id(uint32_t seq, uint32_t i)
{
    uint32_t id = seq << 6 | i; /* i < CC__PP_BATCH_MAX = 64 */
    return id ? id : 1;
}

#define CC__PP_ALIGN8(x) (((x) + 7) & ~(size_t)7)

/* The boot argument of the worker loop: max_tasks (u64), the initializer's
 * name length (u32; 0: none), the name, its argument. */
#define CC__PP_BOOT_HEAD 12

/* A data memfd and this process's mapping of it, kept from task to task
 * (no page faults after the first use) and grown, never shrunk. */
struct cc__pp_map {
    int fd;              /* the memfd */
    unsigned char *base; /* the mapping of its first size bytes, or NULL */
    size_t size;         /* bytes mapped (the file is at least as long) */
};

/* Map at least len bytes of m's memfd, lengthening the file if shorter:
 * 0, or -errno (-ENOMEM). procpool_worker.c; both sides use it. */
int cc__pp_map_reserve(struct cc__pp_map *m, size_t len);
void cc__pp_map_drop(struct cc__pp_map *m); /* unmap (the fd stays) */

#include "executor_internal.h"
#include "wait.h"
#include "worker_impl.h"
#include "concur/thread.h"

/* ---- the parent's side (procpool.c, procpool_feeder.c) ---------------- */

/* The OOM check of a dead worker (procpool_oom.c). Zeroed: nothing noted. */
struct cc__pp_oom {
    char path[256];  /* its memory cgroup directory when it started */
    long base;       /* that cgroup's oom_kill count then, or -1 */
    int kmsg_fd;     /* the kernel log, opened at its start and positioned
                        after the last record then; valid if kmsg_open */
    bool kmsg_open;  /* kmsg_fd is open (closed by the next note, forget) */
};
/* At a worker's start: note its cgroup's counters and the log's end. */
void cc__pp_oom_note(struct cc__pp_oom *o, pid_t pid);
/* The end of the death message of worker pid, which ended with code (-N:
 * signal N): for SIGKILL "; by the kernel's OOM killer", or words saying
 * that it is unknown, or ""; otherwise "". Reads the cgroup counters, then
 * the kernel log since the note: bounded, never blocks. Once per note. */
const char *cc__pp_oom_words(struct cc__pp_oom *o, pid_t pid, int code);
/* Close what the last note opened (when the slot's feeder ends). */
void cc__pp_oom_forget(struct cc__pp_oom *o);

#define CC__PP_SMALL 32 /* arguments up to this size live in the task */
#define CC__PP_ARENA_MIN ((size_t)1 << 20) /* arguments this large are
                                             copied into the arena */
#define CC__PP_ARENA_MAX ((size_t)1 << 30) /* ... up to this size */

struct cc__pp_pool;

/* A queued task; f->arg points to it. Freed by whoever dequeues it. */
struct cc__pp_task {
    struct cc__pp_task *next;  /* FIFO link, under the pool's mutex */
    struct cc__pp_pool *p;     /* its pool */
    cc_future *f;       /* its future (the pool's reference) */
    void *arg;          /* copy of the argument: small, or owned */
    size_t len;         /* its bytes */
    size_t alloc;       /* the size of arg's allocation; 0: arg is small
                           or in the arena */
    bool in_arena;      /* arg is the pool's arena (which it holds) */
    unsigned char small[CC__PP_SMALL]; /* a small argument, no allocation */
    uint32_t name_len;  /* strlen(name) */
    cc_bytes *result;   /* where the result goes, or NULL */
    uint32_t flags;     /* CC__PP_CHUNK or 0 */
    bool cancel;        /* cc_process_pool_cancel asked (under p->m) */
    int64_t timeout_ns; /* its own limit, else the pool's; 0: none */
    char name[];        /* the registered function, NUL-terminated */
};

struct cc__pp_pool;

struct cc__pp_slot {
    struct cc__pp_pool *p;          /* the pool */
    cc_thread *thr;          /* the feeder */
    cc_worker *w;            /* the worker, or NULL; written by the feeder
                                under p->m (terminate reads it there) */
    struct cc__pp_ctl *ctl;  /* the shared control block */
    int ctl_fd, efd;         /* fds passed to each worker, with the data
                                memfds */
    struct cc__pp_map data[CC__PP_LANES]; /* each lane's data memfd */
    uint32_t seq;            /* the last req posted */
    uint64_t ntasks;         /* tasks run by the current worker */
    struct cc__pp_oom oom;   /* the current worker's cgroup at its start */
    struct cc__pp_task **cur[CC__PP_LANES]; /* each lane's batch posted,
                                 or NULL (under p->m: cancel looks) */
    size_t cur_n[CC__PP_LANES]; /* tasks in it */
    struct cc__pp_task *cancel_kill; /* the task whose cancel killed the
                                worker, or NULL (under p->m) */
    struct cc__pp_task *ending; /* a task the feeder fails (the one a
                                dead worker ran, or one not posted), shown
                                to cancels until its future is done, or
                                NULL (under p->m) */
    bool ending_late;        /* its outcome is settled: cancels are late */
    bool retried;            /* the batch is resent after an idle death */
};

struct cc__pp_pool {
    cc_executor ex;          /* the interface; first member */
    cc__mutex m;             /* guards the fields below */
    struct cc__pp_task *head;       /* queued tasks, oldest first */
    struct cc__pp_task **tail;      /* where the next one is linked */
    size_t queued;           /* tasks in the queue */
    cc__waitq feeders;       /* feeders waiting for a task */
    cc__waitq exit_q;        /* shutdown(wait)s waiting for the join */
    bool shutdown;           /* no more submits; feeders exit when empty */
    bool terminated;         /* terminate/kill: batches are not resumed */
    bool joining;            /* a shutdown(wait) is joining the feeders */
    bool joined;             /* the feeders are joined */
    size_t n;                /* slots */
    struct cc__pp_slot *slots;      /* n of them */
    cc_process_pool_options o; /* options (initargs: boot below) */
    struct cc__pp_map arena; /* shared memory for one large argument at a
                                time, mapped by every worker: the copy
                                made at submit is read in place */
    bool arena_busy;         /* a task holds the arena */
    cc_future **cancels;     /* cancelled while a feeder held them: taken
                                from the queue, not yet in a lane (each
                                retained; the post skips them) */
    size_t ncancels;         /* how many */
    size_t cancels_cap;      /* room */
    unsigned char *boot;     /* the worker loop's boot argument */
    size_t boot_len;         /* its bytes */
};

void cc__pp_task_free(struct cc__pp_task *t);
/* t no longer needs the pool's arena: the next large argument may use it. */
void cc__pp_arena_release(struct cc__pp_pool *p, struct cc__pp_task *t);
void cc__pp_wake_all(cc__waitq *q);
/* The feeder thread of a slot (arg): runs batches until the shutdown. */
void *cc__pp_feeder(void *arg);

/* Queue a task of the pool ex on a copy of the len bytes at arg (name
 * checked by the caller): as cc_process_pool_submit. */
int cc__pp_submit_copy(cc_executor *ex, const char *name, const void *arg,
                       size_t len, uint32_t flags, int64_t timeout_ns,
                       cc_bytes *result, cc_future **out);

/* ex is a process pool. */
bool cc__pp_is_pool(const cc_executor *ex);

/* Whether f was cancelled while a feeder held it (p->cancels): forgets the
 * request and drops those of futures done meanwhile. Under p->m. */
bool cc__pp_cancel_requested(struct cc__pp_pool *p, cc_future *f);

/* Tests only: when set, a feeder calls it (no lock held) before it hands a
 * batch to its worker, so a test can act in between. */
extern _Atomic(void (*)(void)) cc__pp_test_before_post;

/* Tests only: when set, a feeder whose worker died calls it once the
 * worker's lanes are cleared, before it fails the task the worker ran, so
 * that a test can cancel that task in between. */
extern _Atomic(void (*)(void)) cc__pp_test_after_death;

/* Tests only: when set in a worker (by its initializer), the worker calls
 * it when it has taken a task to run, just before the function, so that a
 * test can widen the moment a cancel races with the task's start. */
extern _Atomic(void (*)(void)) cc__pp_test_at_start;

/* The worker loop (procpool_worker.c), registered as CC__PP_WORKER_FN. */
int cc__pp_worker_main(const void *arg, size_t len, cc_bytes *result);

/* Map chunks: the argument is u32 n, then n x (u64 len, bytes); the result
 * is n x (i32 ret, u64 len, bytes). */

#endif
