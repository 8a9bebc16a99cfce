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
#define CC__PP_CTL_SIZE (64u * 1024) /* the control memfd's size */
#define CC__PP_NAME_MAX 128          /* longest function name + NUL */

/* The worker's stage, for the message when it dies. */
enum {
    CC__PP_STARTING = 0, /* not yet in its loop */
    CC__PP_INIT = 1,     /* running the initializer */
    CC__PP_IDLE = 2,     /* waiting for a task */
    CC__PP_TASK = 3,     /* running the task */
    CC__PP_RESULT = 4,   /* delivering the result */
};

/* Task flags. */
enum {
    CC__PP_CHUNK = 1, /* the argument is a chunk of a map (packed) */
    CC__PP_QUIT = 2,  /* no task: the worker returns */
};

/*
 * The control block, shared by the parent and one worker (a memfd mapped by
 * both). The parent writes the task, then bumps req (release) and wakes the
 * futex on it; the worker writes the result, then signals the slot's
 * eventfd. Only one task is in flight per worker.
 */
struct cc__pp_ctl {
    cc__atomic_u32 req;   /* task sequence number, bumped by the parent
                             (release: the task fields before it are seen
                             by the worker's acquire load); futex word */
    cc__atomic_u32 stage; /* CC__PP_* stage of the worker (relaxed: read
                             only after the worker died or signalled) */
    uint32_t flags;       /* CC__PP_CHUNK, CC__PP_QUIT */
    int32_t ret;          /* the function's return value */
    int32_t err;          /* 0, or the worker's own failure (-ENOMEM...) */
    uint32_t pad;         /* alignment */
    uint64_t arg_len;     /* argument bytes: inline or in the data memfd */
    uint64_t res_len;     /* result bytes: inline or in the data memfd */
    char name[CC__PP_NAME_MAX]; /* the function's registered name */
    unsigned char data[CC__PP_INLINE]; /* small argument, then result */
};

/* The boot argument of the worker loop: max_tasks (u64), the initializer's
 * name length (u32; 0: none), the name, its argument. */
#define CC__PP_BOOT_HEAD 12

/* Queue a task of the pool ex, taking over arg (len bytes in an allocation
 * of alloc bytes, cc__malloc'd): as cc_process_pool_submit. */
int cc__pp_submit_owned(cc_executor *ex, const char *name, void *arg,
                        size_t len, size_t alloc, uint32_t flags,
                        cc_bytes *result, cc_future **out);

/* ex is a process pool. */
bool cc__pp_is_pool(const cc_executor *ex);

/* The worker loop (procpool_worker.c), registered as CC__PP_WORKER_FN. */
int cc__pp_worker_main(const void *arg, size_t len, cc_bytes *result);

/* Map chunks: the argument is u32 n, then n x (u64 len, bytes); the result
 * is n x (i32 ret, u64 len, bytes). */

#endif
