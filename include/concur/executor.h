/*
 * concur/executor.h: executors (Python's concurrent.futures.Executor) and the
 * thread pool executor (ThreadPoolExecutor).
 *
 * An executor runs tasks (cc_task_fn, future.h) and gives a future for each. One
 * interface, several backends: the thread pool here; process pools and event
 * loops later. There is no hidden global pool: pools are explicit objects.
 *
 * Thread safety: every function may be called from any thread, concurrently,
 * except cc_executor_free and the map iterator (cc_map_*), whose docstrings say.
 */
#ifndef CONCUR_EXECUTOR_H
#define CONCUR_EXECUTOR_H

#include "base.h"
#include "future.h"

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cc_executor cc_executor;

/* ---- the thread pool ------------------------------------------------------ */

typedef struct cc_thread_pool_options {
    size_t max_workers;            /* worker threads; 0: the number of CPUs */
    int (*initializer)(void *arg); /* run once in each worker before any task:
                                      0, or a negative errno (the pool is then
                                      broken); NULL: none */
    void *initializer_arg;         /* its argument */
    const char *thread_name_prefix; /* workers are named "<prefix>-<i>" (15
                                       bytes shown by the OS); NULL: "concur" */
} cc_thread_pool_options;

/*
 * cc_thread_pool_new: start a pool of worker threads (all started now, unlike
 * Python, which starts them as work arrives), as Python's ThreadPoolExecutor.
 * opts may be NULL (defaults). Tasks run in submission order (FIFO), each once.
 *
 * The workers are cc_threads (thread.h): cc_thread_current() in a task gives
 * the worker, named "<prefix>-<i>" in full. They are not daemon threads; the
 * pool joins them (the first cc_executor_shutdown with wait, or
 * cc_executor_free). A pool still open when the process exits through exit()
 * or a return from main() is shut down (wait = true, queued tasks kept: its
 * workers are joined), as Python joins ThreadPoolExecutor workers at
 * interpreter exit: the queue runs to its end, and a task that never returns
 * keeps the process from exiting (_exit() waits for nobody); a running task
 * may still make and free pools meanwhile (one made then and left open is
 * not shut down: its idle workers hold up the exit). A task that
 * calls exit() ends the process (C's exit(); Python's sys.exit in a task
 * only fails its future): its pool is shut down and joined as above but for
 * that worker, which is not waited for (with no other worker, the queued
 * tasks never run). A cc_executor_shutdown(wait) or cc_executor_free of its
 * pool running in another thread then joins the other workers and never
 * returns (that task is never done), without holding up the exit.
 *
 * A failing initializer breaks the pool (Python's BrokenThreadPool): from then
 * on every queued task fails with -EPIPE and the message "thread pool is broken:
 * initializer failed: <its error>", and cc_executor_submit returns -EPIPE.
 *
 * Returns 0 with *out owned by the caller (cc_executor_free), -ENOMEM, or
 * -EAGAIN if a thread cannot be started (cc_thread_start).
 * Never blocks.
 */
int cc_thread_pool_new(cc_executor **out, const cc_thread_pool_options *opts);

/* ---- any executor ---------------------------------------------------------- */

/*
 * cc_executor_submit: schedule fn(arg) and give its future (as Python's
 * Executor.submit). *out receives one reference (cc_future_release it); out may
 * be NULL when the outcome is not wanted. The executor keeps its own reference
 * until the task is done, so releasing yours early is safe. A task that fails
 * only fails its future; the executor is unharmed. A task that waits for
 * another task of its own pool deadlocks once every worker waits so (with
 * one worker: whenever the other is still queued), as in Python: no worker
 * is added for it.
 * Returns 0; -ESHUTDOWN after cc_executor_shutdown; -EPIPE if the pool is broken;
 * -ENOMEM. A submit racing cc_executor_shutdown either fails so or returns
 * 0: its task is then treated as one queued before the shutdown, except that
 * it is cancelled if every worker has already exited. Never blocks (the
 * queue is unbounded, as Python's).
 */
int cc_executor_submit(cc_executor *ex, cc_task_fn fn, void *arg,
                       cc_future **out);

/*
 * cc_executor_shutdown: stop accepting tasks (as Python's Executor.shutdown).
 * cancel_futures: cancel every task not yet started (their futures become
 * cancelled). wait: block until every started or queued task is done and the
 * workers have exited, joining them (there is no deadline, as in Python);
 * otherwise return at once and let the workers finish the queue and exit
 * (cc_executor_free joins them). Calling it again is harmless; concurrent
 * calls with wait all return once the workers are joined. A task or done
 * callback of the pool must not call it with wait (it would wait for itself:
 * a deadlock, or a panic from the join).
 */
void cc_executor_shutdown(cc_executor *ex, bool wait, bool cancel_futures);

/* cc_executor_max_workers: the number of workers (threads, processes...). */
size_t cc_executor_max_workers(const cc_executor *ex);

/*
 * cc_executor_free: shut down (wait = true, keeping queued tasks; the workers
 * are joined), then free. Blocks until the tasks are done. NULL is ignored.
 * No other call on ex may run or follow; a task or done callback of the pool
 * must not call it (as cc_executor_shutdown with wait). Futures given out
 * stay valid until released.
 */
void cc_executor_free(cc_executor *ex);

/* ---- map: lazy, in order, with bounded work in flight ------------------------ */

/*
 * cc_map_next_arg_fn: the input generator of a map: store the next argument in
 * *arg and return 1, return 0 when there are no more, or a negative errno (the
 * map then ends with that error). Called only from the thread calling
 * cc_executor_map / cc_map_next, never concurrently.
 */
typedef int (*cc_map_next_arg_fn)(void *state, void **arg);

typedef struct cc_map_options {
    size_t chunksize;  /* inputs per task (one task runs fn on each in turn);
                          0: 1 */
    size_t max_chunks; /* chunks submitted and not yet consumed, at most;
                          0: 4 x the executor's workers */
} cc_map_options;

typedef struct cc_map cc_map;

/*
 * cc_executor_map: run fn over every argument the generator gives, as Python's
 * Executor.map, but lazy: the generator is called only while fewer than
 * max_chunks chunks are in flight, so inputs of any length (10^7 and more) run in
 * memory bounded by max_chunks x chunksize. Results come back in input order
 * through cc_map_next. opts may be NULL (defaults).
 * The first chunks are submitted before it returns (errors of the generator or
 * of cc_executor_submit come out of cc_map_next). Returns 0 with *out owned by
 * the caller (cc_map_free), or -ENOMEM. Never blocks (beyond the generator).
 */
int cc_executor_map(cc_map **out, cc_executor *ex, cc_task_fn fn,
                    cc_map_next_arg_fn next_arg, void *state,
                    const cc_map_options *opts);

/*
 * cc_map_next: the outcome of the next input, in input order: 0 with *result
 * set; the task's negative errno (unlike Python, which stops at the first
 * exception, the iteration goes on with the next input); -ENOENT when every
 * input was yielded; -ETIMEDOUT if the deadline passed (call again for the same
 * input; so does -ECANCELED when the calling task was cancelled while it
 * waited); -ECANCELED if the executor cancelled the chunk, -EPIPE if the pool
 * is broken (every input of that chunk); or, once, after the
 * results of every input given before it, an error of the generator or of
 * cc_executor_submit (-ESHUTDOWN, ...), which ends the input (after a submit
 * error, the inputs taken for that chunk, up to chunksize, get no result:
 * they are dropped, as cc_map_free drops them). Error messages of the tasks
 * are not kept. Blocks. Not thread safe: one consumer.
 */
int cc_map_next(cc_map *m, cc_deadline deadline, void **result);

/*
 * cc_map_free: cancel the chunks not started, wait for the running ones (they
 * use the map's memory), and free. The results not yet taken, and the
 * inputs of the chunks cancelled, are dropped: free what they own through
 * your own records. NULL is ignored. Blocks. Not thread safe.
 */
void cc_map_free(cc_map *m);

/* An array input for cc_executor_map: next_arg = cc_map_array_next, state =
 * &(cc_map_array){args, n}. The array must outlive the map. */
typedef struct cc_map_array {
    void *const *args; /* the arguments */
    size_t n;          /* how many */
    size_t next;       /* index of the next one to give; start at 0 */
} cc_map_array;

int cc_map_array_next(void *state, void **arg);

#ifdef __cplusplus
}
#endif
#endif
