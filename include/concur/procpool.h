/*
 * concur/procpool.h: the process pool executor (Python's ProcessPoolExecutor
 * and multiprocessing.Pool), a backend of the executor interface
 * (executor.h): cc_executor_shutdown, cc_executor_max_workers and
 * cc_executor_free work on it unchanged.
 *
 * A task is a worker function registered by name (process.h:
 * CC_WORKER_FUNCTION; call cc_worker_main_hook first in main()) plus an
 * argument as bytes; its result comes back as bytes. Arguments and results
 * travel through shared memory (a memfd per worker, small ones inline in a
 * shared control block, woken through a shared futex), never through a pipe.
 *
 * cc_executor_submit and cc_executor_map, whose tasks are a C function
 * pointer with a void * argument and a void * result, cannot work across
 * processes: the pointers mean nothing in another address space (even under
 * fork, where the argument would have to exist before the worker was
 * forked). On a process pool they fail with -ENOTSUP (cc_map_next gives it);
 * use cc_process_pool_submit and cc_process_pool_map.
 *
 * Failures: a worker that dies (a signal, the OOM killer, exit, a crash in
 * the initializer, the task or while delivering the result) fails only the
 * task it was running, with -ECHILD and a message such as "worker 1234 was
 * killed by signal 9 (Killed) while running the task; by the kernel's OOM
 * killer" (cc_future_error_message); the pool starts a replacement at
 * once (not when the next task comes). A task running longer than
 * task_timeout_ns fails with -ETIMEDOUT: its worker is killed (SIGKILL to
 * its group) and replaced. A worker killed while idle costs no task; it is
 * replaced within 100 ms (an idle pool looks at its workers that often),
 * or when the next task is handed to it if that comes first (one that
 * failed in its initializer is replaced only then, so that a broken
 * initializer is not restarted in a loop). Unlike Python's
 * ProcessPoolExecutor, the pool is never broken by a death; unlike
 * multiprocessing.Pool, nothing hangs. The OOM verdict, for a worker killed
 * by SIGKILL, compares the oom_kill counters (cgroup v1 memory.oom_control,
 * v2 memory.events) of the worker's memory cgroup and those below it before
 * and after (a counter holds no pids: another process of those cgroups,
 * such as a sibling worker, OOM-killed during the worker's life could be
 * taken for it, unless the kernel log, read, names only other pids, in the
 * initial pid namespace, whose pids the log gives). The
 * kernel log (/dev/kmsg, read without blocking) is searched for
 * the kernel's kill record naming the worker's pid since its start (the
 * pool holds /dev/kmsg open, one fd per live worker, positioned at the
 * worker's start: records lost when the log's ring wraps meanwhile). Where
 * neither can be read (/dev/kmsg needs CAP_SYSLOG when
 * kernel.dmesg_restrict is set), the message ends "; the OOM verdict is
 * unknown (...)" instead.
 *
 * Batching: a worker is sent several small queued tasks at once (at most
 * 64, and no more than the queue's length over 4 x the workers), which it
 * runs in order; from then on they count as running: plain cc_future_cancel
 * no longer cancels them (as ProcessPoolExecutor's call queue), but
 * cc_process_pool_cancel (or kill_on_cancel) does. A worker death fails
 * only the task it was running; the tasks after it in its batch go to the
 * replacement worker. Tasks with a time limit go one by one. While a
 * worker runs a batch, the next one is already handed to it (while the
 * queue holds at least one task per worker), so that it goes on
 * without waiting for the parent; near the end of the queue, tasks go to
 * whichever worker is free first.
 *
 * Transport: each worker has a shared control block (small arguments and
 * results inline) and two data memfds, mapped once on both sides and kept
 * (grown, never shrunk: a pool whose batch once moved N bytes, arguments
 * plus results, keeps up to 2 x N per worker, and N when its worker never
 * had two batches at once: a lone batch always takes the first memfd,
 * whose pages are then warm), and the pool an arena
 * shared with every worker. A large argument (1 MiB to 1 GiB) is copied
 * once, at submit, into the arena when no other task holds it (else into
 * a buffer of its own, and from there into shared memory when it is
 * handed to a worker); the worker reads it in place. The function's result
 * buffer is in shared memory already: its cc_bytes points into the lane's
 * data memfd while it runs (appends grow it there, the memfd lengthened
 * and remapped; cc_bytes_free only detaches it; do not realloc or free its
 * data yourself), so a large result is copied once, into the caller's
 * cc_bytes (from 4 MiB on into transparent huge pages where the system
 * allows them: madvise(MADV_HUGEPAGE) on the part being written). A
 * function that replaces *result with a buffer of its own has it copied
 * into shared memory first (and freed). The worker keeps no result buffer
 * of its own: a result's pages stay in its lane's memfd, which holds at
 * most the argument (when it is there) plus the results of one batch, so
 * the 2 x N above is the whole promise.
 *
 * Workers are daemon workers: they are killed (PR_SET_PDEATHSIG) when the
 * pool's process dies.
 */
#ifndef CONCUR_PROCPOOL_H
#define CONCUR_PROCPOOL_H

#include "executor.h"
#include "process.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cc_process_pool_options {
    size_t max_workers;          /* worker processes; 0: the number of CPUs */
    cc_start_method start_method; /* CC_START_SPAWN (the default), fork,
                                     forkserver (process.h: the pool's
                                     creation starts the server if none
                                     runs, in the calling thread, with
                                     whose exit it dies) */
    const char *initializer;     /* registered function run once in each
                                    worker before its first task (its result
                                    is dropped; a non-zero return ends the
                                    worker, failing its task); NULL: none */
    const void *initargs;        /* its argument (copied at pool creation) */
    size_t initargs_len;         /* bytes at initargs */
    size_t max_tasks_per_child;  /* a worker exits after this many tasks and
                                    is replaced; 0: no limit */
    int64_t task_timeout_ns;     /* a task running longer is killed with its
                                    worker (-ETIMEDOUT); 0: no limit */
    bool kill_on_cancel;         /* cc_future_cancel on a running task does
                                    what cc_process_pool_cancel does (kills
                                    its worker); false: as Python, a running
                                    task cannot be cancelled */
} cc_process_pool_options;

/*
 * cc_process_pool_new: make a pool of max_workers worker processes (as
 * ProcessPoolExecutor(max_workers, mp_context, initializer, initargs,
 * max_tasks_per_child)). The workers start at once, in the background (a
 * parent thread per worker starts and feeds it; as multiprocessing.Pool,
 * unlike ProcessPoolExecutor, which starts them on demand); a worker that
 * dies, times out or reaches max_tasks_per_child is replaced at once
 * unless the pool is shut down. A worker that cannot start fails the tasks
 * handed to it (the next start is tried with the next batch). With
 * CC_START_FORK, the warning about threads (process.h) counts only the
 * program's threads, not the pool's feeders. opts may be NULL (defaults).
 * Returns 0 with *out owned by the caller (cc_executor_free); -EINVAL (out
 * NULL, a bad start method, initargs NULL with a length, task_timeout_ns <
 * 0); -ENOENT (initializer not registered); -ENOMEM; -EMFILE/-ENFILE;
 * -EAGAIN (no thread). Blocks only to start its threads (and the
 * forkserver). Thread safe.
 */
int cc_process_pool_new(cc_executor **out, const cc_process_pool_options *opts);

/*
 * cc_process_pool_submit: run the function registered as name on a copy of
 * the arg_len bytes at arg in a worker (as Executor.submit). The result bytes
 * are appended to *result (zeroed or earlier buffer, owned by the caller; it
 * must stay valid until the future is done; NULL drops the result); the
 * future's result pointer is then `result`. *out (may be NULL) receives one
 * reference (cc_future_release). The future fails with the function's
 * return value negated (a return of 3 gives -3: exit codes are >= 0) when it
 * returns non-zero, -ECHILD (the worker died; see the header comment),
 * -ETIMEDOUT (task_timeout_ns), -ENOMEM (the result did not fit), or is
 * cancelled (cc_future_cancel while pending, or shutdown with
 * cancel_futures). Returns 0; -EINVAL (ex not a process pool, name NULL,
 * arg NULL with arg_len > 0); -ENOENT (name not registered); -ESHUTDOWN
 * (after shutdown); -ENOMEM. Copies the argument; never blocks otherwise.
 * Thread safe.
 */
int cc_process_pool_submit(cc_executor *ex, const char *name, const void *arg,
                           size_t arg_len, cc_bytes *result, cc_future **out);

/*
 * cc_process_pool_submit_timeout: cc_process_pool_submit with a time limit
 * for this task (ns of running, from when its worker is handed it, or,
 * for a worker still starting or in its initializer then, from a moment
 * after it is done, never before; 0: the pool's task_timeout_ns): past it
 * the worker is killed (SIGKILL to its
 * group) and replaced, and the future fails with -ETIMEDOUT. Also -EINVAL
 * for timeout_ns < 0. Such tasks are sent one at a time.
 */
int cc_process_pool_submit_timeout(cc_executor *ex, const char *name,
                                   const void *arg, size_t arg_len,
                                   int64_t timeout_ns, cc_bytes *result,
                                   cc_future **out);

/*
 * cc_process_pool_terminate / cc_process_pool_kill: shut down without
 * waiting, cancel the pending tasks, and send SIGTERM / SIGKILL to every
 * worker (as multiprocessing.Pool.terminate and Process.kill): the running
 * tasks fail with -ECHILD, the tasks already sent in the same batch after
 * them with -ECANCELED. cc_executor_free still joins and frees. Waits for
 * no worker (under the forkserver start method each signal is a request to
 * the server and its answer, a local socket round trip). Thread safe.
 */
void cc_process_pool_terminate(cc_executor *ex);
void cc_process_pool_kill(cc_executor *ex);

/*
 * cc_process_pool_cancel: cancel f, a future of this pool, even when its
 * task runs (Python cannot): a pending one as cc_future_cancel; one taken
 * by its worker's feeder or sent to the worker, and not started, is skipped
 * (it never runs; the future fails with -ECANCELED, "cancelled before it
 * ran"); a running one has its worker killed (SIGKILL) and replaced, and
 * the future fails with -ECANCELED ("cancelled while running: worker PID
 * killed"; the task may have done part of its work, or all of it if it
 * ended as the kill came: its result is dropped). The tasks sent after it
 * go on in the new worker. Whether the worker starts the task or the
 * cancel skips it is settled by one atomic step in shared memory. Returns
 * true if the cancellation was made (pending, skipped or killed: the
 * future fails with -ECANCELED, never with the task's result), false if
 * f is done, its task ended (its outcome stands), not of this pool, or
 * NULL. Never waits for the task; under the forkserver start method the
 * kill is a request to the server and its answer (a local socket round
 * trip). Thread safe.
 * With the option kill_on_cancel, cc_future_cancel(f) does the same (do
 * not call it concurrently with cc_executor_free of the pool).
 */
bool cc_process_pool_cancel(cc_executor *ex, cc_future *f);

/*
 * cc_process_pool_worker_pids: store the pids of the workers running now
 * (at most n) in pids; returns how many there are (may exceed n), or
 * -EINVAL (ex not a process pool). A pid may be gone by the time it is
 * used. Never blocks. Thread safe.
 */
int cc_process_pool_worker_pids(cc_executor *ex, pid_t *pids, size_t n);

/* ---- map: lazy, bounded, in order, with chunks ----------------------------- */

typedef struct cc_process_map cc_process_map;

/*
 * cc_process_map_next_arg_fn: the input generator: set *arg and *len (the
 * bytes are copied before the next call) and return 1; 0 at the end; or a
 * negative errno (the map then ends with it). Called only from the thread
 * calling cc_process_pool_map / cc_process_map_next.
 */
typedef int (*cc_process_map_next_arg_fn)(void *state, const void **arg,
                                          size_t *len);

/*
 * cc_process_pool_map: run the function registered as name over every input
 * of the generator (as multiprocessing.Pool.imap(fn, it, chunksize)): lazy
 * and bounded as cc_executor_map (opts: chunksize inputs per task, at most
 * max_chunks chunks in flight; NULL: 1 and 4 x workers). A chunk travels as
 * one message and its results come back as one. Returns 0 with *out
 * (cc_process_map_free), -EINVAL (ex not a process pool), -ENOENT (name not
 * registered), -ENOMEM. Never blocks beyond the generator.
 */
int cc_process_pool_map(cc_process_map **out, cc_executor *ex,
                        const char *name, cc_process_map_next_arg_fn next_arg,
                        void *state, const cc_map_options *opts);

/*
 * cc_process_map_next: the next result in input order: 0 with the result
 * bytes appended to *result (caller's buffer); the function's return value
 * negated when non-zero; for every input of a chunk whose worker died or
 * timed out, -ECHILD or -ETIMEDOUT; -ENOENT once every input was yielded;
 * -ETIMEDOUT if the deadline passed, -ECANCELED if the calling task was
 * cancelled while it waited (call again: nothing was consumed); once, after
 * the results before it, the generator's or submit's error. Blocks (parks a
 * task). Not thread safe.
 */
int cc_process_map_next(cc_process_map *m, cc_deadline deadline,
                        cc_bytes *result);

/* cc_process_map_free: cancel what has not started, wait for the rest, free.
 * NULL is ignored. Blocks. Not thread safe. */
void cc_process_map_free(cc_process_map *m);

#ifdef __cplusplus
}
#endif
#endif
