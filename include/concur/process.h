/*
 * concur/process.h: worker processes running a function of this program
 * (Python's multiprocessing.Process).
 *
 * A worker runs a cc_worker_fn: it gets an argument as bytes and appends its
 * result as bytes; its return value becomes the worker's exit code.
 *
 * Start methods (Python's names):
 *   - CC_START_SPAWN, the default: the program itself is executed again
 *     (/proc/self/exe) in worker mode, as Python's spawn re-imports __main__.
 *     The function is found by NAME in a table that the parent and the child
 *     fill identically: register every worker function before main() runs,
 *     with CC_WORKER_FUNCTION at file scope (a constructor), or with
 *     cc_worker_register calls placed before cc_worker_main_hook. And call
 *     cc_worker_main_hook(argc, argv) first thing in main(): in a normal run
 *     it returns at once; in a worker it runs the function and exits, never
 *     returning. Nothing of the parent's memory is inherited; the argument
 *     travels in a memfd, the result comes back in another.
 *   - CC_START_FORK, opt-in: fork() and call the function directly (a
 *     function pointer works, cc_worker_start_fn). Only the calling thread
 *     is copied: locks that other threads hold stay locked in the child
 *     forever. A warning goes to stderr, once per process, when a worker
 *     is forked while the process has threads besides the forking one
 *     (concur's process-pool feeders, which run no user code, do not
 *     count), as Python 3.12's DeprecationWarning.
 *   - CC_START_FORKSERVER: a helper process, forked from the program early
 *     (cc_forkserver_start, ideally before any thread exists), forks each
 *     worker, which then calls the function (a function pointer works too,
 *     since the helper is a copy of the program). The worker's parent is
 *     the helper, which reaps it and reports its exit code; pid, pidfd-based
 *     waiting and group signals work as for the other methods.
 *
 * Every worker leads its own process group (terminate and kill reach what it
 * started; a Ctrl-C at the terminal reaches the parent only, which must
 * forward it or use daemon workers), starts with an empty signal mask and
 * with stdin on /dev/null (as Python's workers; stdout and stderr are
 * shared), and under spawn inherits only fds 1, 2 and the fds passed in
 * cc_worker_options.pass_fds (which it finds with cc_worker_passed_fd).
 * Waiting and reaping go through a pidfd as
 * in concur/subprocess.h, whose rules apply (do not reap concur's children
 * yourself; SIGCHLD not SIG_IGN).
 *
 * Thread safety: all calls may be made from any thread concurrently on the
 * same worker, except cc_worker_free (the last call).
 */
#ifndef CONCUR_WORKER_PROCESS_H
#define CONCUR_WORKER_PROCESS_H

#include "base.h"
#include "subprocess.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cc_worker cc_worker;

/*
 * A worker function: arg is arg_len bytes (read-only; NULL when 0); append
 * the result to *result (empty on entry: len 0) with cc_bytes_append, or
 * replace *result with a cc_bytes of your own. In a process pool's worker
 * the empty buffer already lies in shared memory (procpool.h), so never
 * realloc or free its data yourself: cc_bytes_free and cc_bytes_append
 * know it. Return the exit code: 0 for success; values outside 0-255
 * become 1 (Python's exit code for an exception). The result is delivered
 * whatever the return value; it is lost if the function does not return
 * (exit, a signal).
 */
typedef int (*cc_worker_fn)(const void *arg, size_t arg_len, cc_bytes *result);

/* The most worker functions a program may register. */
#define CC_WORKER_MAX_FUNCTIONS 256

/*
 * cc_worker_register: add fn under `name` (kept by pointer: a string
 * literal, or memory that lives as long as the program) to this program's
 * table of worker functions. Must happen identically in parent and child,
 * before cc_worker_main_hook (see the header comment). Returns 0, -EEXIST
 * (name taken), -EINVAL (name or fn NULL, or name empty), -ENOSPC (more
 * than CC_WORKER_MAX_FUNCTIONS). Never blocks. Thread safe.
 */
int cc_worker_register(const char *name, cc_worker_fn fn);

/*
 * CC_WORKER_FUNCTION: at file scope, register fn under its own name before
 * main() runs (a constructor calling cc_worker_register_or_abort).
 */
#define CC_WORKER_FUNCTION(fn)                                                 \
    __attribute__((constructor)) static void cc__register_##fn(void)          \
    {                                                                          \
        cc_worker_register_or_abort(#fn, fn);                                  \
    }

/*
 * cc_worker_register_or_abort: cc_worker_register, and on failure a message
 * on stderr and abort() (a program whose table differs between parent and
 * child must not run). For CC_WORKER_FUNCTION.
 */
void cc_worker_register_or_abort(const char *name, cc_worker_fn fn);

/*
 * cc_worker_main_hook: call first thing in main() with main's arguments.
 * Returns at once in a normal run. In a worker started with the spawn
 * method (recognised by argv[1] == "--concur-worker") it never returns: it
 * runs the registered function and exits with its code (127 if the name is
 * not registered in this program, 126 if the worker's set-up failed; both
 * with a message on stderr).
 */
void cc_worker_main_hook(int argc, char **argv);

typedef enum cc_start_method {
    CC_START_SPAWN = 0,  /* re-execute this program (the default) */
    CC_START_FORK,       /* fork and call the function (opt-in) */
    CC_START_FORKSERVER, /* fork from the forkserver, a single-threaded copy */
} cc_start_method;

typedef struct cc_worker_options {
    cc_start_method start_method; /* CC_START_SPAWN unless set */
    bool daemon;          /* killed (SIGKILL) when the parent goes */
    const int *pass_fds;  /* fds the worker inherits (spawn); the caller
                             keeps them and may close them after start */
    size_t npass_fds;     /* entries of pass_fds, at most 64 */
} cc_worker_options;

/*
 * cc_worker_start: start a worker running the function registered as name
 * with a copy of the arg_len bytes at arg (as Process(target, args).start()).
 * opts may be NULL (spawn, not daemon, no fds).
 *
 * daemon: the worker is killed with SIGKILL when its parent goes: through
 * PR_SET_PDEATHSIG, set in the child and then checked against the parent's
 * pid, so that a parent that died during the start is noticed too. Note
 * that Linux sends it when the THREAD that started the worker exits, not
 * the process: start daemon workers from a thread that lives as long as
 * they should. Unlike Python, a non-daemon worker is not joined when the
 * parent exits: it goes on running on its own.
 *
 * Returns 0 with *out set (free with cc_worker_free); -ENOENT (name not
 * registered); -EINVAL (out or name NULL, arg NULL with arg_len > 0, a bad
 * start method, npass_fds > 64 or pass_fds NULL with npass_fds > 0);
 * -EBADF (a pass_fds entry not open); -ENOMEM; -EMFILE/-ENFILE; -EAGAIN
 * (process limit); an errno of execve for spawn (-ENOENT, -EACCES when
 * /proc/self/exe cannot be executed); -EPIPE (the forkserver died twice in
 * a row; after one death a new one is started). On failure nothing is left behind.
 * Blocks only to copy the argument and start the child. Thread safe.
 */
int cc_worker_start(cc_worker **out, const char *name, const void *arg,
                    size_t arg_len, const cc_worker_options *opts);

/*
 * cc_worker_start_fn: as cc_worker_start, with a function pointer instead of
 * a name: only with CC_START_FORK or CC_START_FORKSERVER (-EINVAL with
 * spawn, or with fn NULL). Under the forkserver, fn must exist in the
 * helper: code of the program, not of a library loaded after the helper.
 */
int cc_worker_start_fn(cc_worker **out, cc_worker_fn fn, const void *arg,
                       size_t arg_len, const cc_worker_options *opts);

/*
 * cc_forkserver_start: start the forkserver now (as Python's forkserver; the
 * first CC_START_FORKSERVER start does it otherwise). Call it early in
 * main(), before any thread exists: the helper is a fork of the process
 * and must be single-threaded to fork safely (a warning on stderr
 * otherwise). It holds a copy of the program's memory as it is now, and is
 * killed (PR_SET_PDEATHSIG) when the thread that started it exits; daemon
 * workers go with it. It is a child of this process: stop it before
 * counting children. A fork of the process does not use (or stop) its
 * parent's server: there the first start makes one of its own. Returns 0
 * (also if already running), -ENOMEM, -EMFILE/-ENFILE, -EAGAIN. Thread
 * safe.
 */
int cc_forkserver_start(void);

/*
 * cc_forkserver_stop: stop the forkserver: the workers it started that
 * still run are killed (SIGKILL; their joins then give -9), and the helper
 * exits and is reaped. cc_worker objects stay valid (join, result, free).
 * A later CC_START_FORKSERVER start makes a new helper. No-op without one.
 * Blocks until the helper is gone (milliseconds). Thread safe.
 */
void cc_forkserver_stop(void);

/*
 * cc_worker_passed_fd: in a worker, the fd that opts.pass_fds[i] became
 * (under spawn they are renumbered from 5; under fork they keep their
 * numbers); -1 when i is out of range or outside a worker. Never blocks.
 */
int cc_worker_passed_fd(size_t i);

/* cc_worker_pid: the worker's pid (and process group id). Thread safe. */
pid_t cc_worker_pid(const cc_worker *w);

/*
 * cc_worker_join: wait until the worker exits, or until the deadline (as
 * Process.join(timeout)). On 0, *exitcode (may be NULL) is as Python's
 * Process.exitcode: the function's return value (0-255), an exit status if
 * it called exit, or -N when signal N ended it. Returns 0, -ETIMEDOUT (still
 * running; never before the deadline, or a task's deadline scope),
 * -ECHILD (reaped by someone else: see the header comment), and in a task
 * -ECANCELED (cancelled) or -ENOMEM. Blocks: a task on an event loop parks
 * on the worker's pidfd (every start method), a thread polls it. Thread
 * safe.
 */
int cc_worker_join(cc_worker *w, cc_deadline deadline, int *exitcode);

/* cc_worker_is_alive: the worker has not exited yet (reaps it if it has).
 * Never blocks. Thread safe. */
bool cc_worker_is_alive(cc_worker *w);

/*
 * cc_worker_result: after the worker exited (join returned 0), append the
 * function's result to *out (zeroed or earlier buffer; the caller frees it).
 * Returns 0; -EAGAIN (still running, or not joined yet); -ENODATA (the
 * function never returned: killed, crashed or exited); -ENOMEM; -EIO.
 * Never blocks. Thread safe.
 */
int cc_worker_result(cc_worker *w, cc_bytes *out);

/*
 * cc_worker_terminate / cc_worker_kill: send SIGTERM / SIGKILL to the
 * worker's process group (as Process.terminate() and kill(), which signal
 * the process alone). Nothing happens once the worker was reaped. Returns 0
 * or -EPERM. Never blocks. Thread safe.
 */
int cc_worker_terminate(cc_worker *w);
int cc_worker_kill(cc_worker *w);

/*
 * cc_worker_free: release the worker (as Process.close(), but a worker still
 * running is killed and reaped first, so that nothing is left behind).
 * NULL is a no-op. Not thread safe: the last call on w.
 */
void cc_worker_free(cc_worker *w);

#ifdef __cplusplus
}
#endif
#endif
