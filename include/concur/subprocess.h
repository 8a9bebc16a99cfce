/*
 * concur/subprocess.h: child processes (Python's subprocess.Popen and run).
 *
 * How children are made. cc_process_spawn uses clone(CLONE_VM|CLONE_VFORK|
 * CLONE_FILES), whose child drops the shared fd table for one holding only
 * its stdio (close_range with CLOSE_RANGE_UNSHARE, Linux 5.9), and falls back
 * to posix_spawn (which glibc also runs as a vfork-style clone) where that is
 * not available: no fork of a threaded parent, no copy of its memory or of
 * its fd table, never a shell. Each child:
 *   - leads a new process group (its pgid is its pid), so that terminate and
 *     kill reach everything it started (a shell's grandchildren included);
 *     hence it is not in the terminal's foreground group: a Ctrl-C at the
 *     terminal reaches the parent only (which must forward it, as GNU
 *     parallel does), and a child reading the terminal is stopped (SIGTTIN)
 *     until the parent hands it the foreground (tcsetpgrp) or kills it (a
 *     wait without a deadline would not return): give such a child its stdin
 *     from a pipe or /dev/null;
 *   - gets only fds 0, 1 and 2: every other fd is closed at exec, whatever its
 *     close-on-exec flag (Python's close_fds=True). Every fd concur opens is
 *     close-on-exec as well, so children spawned from other threads at the
 *     same moment never inherit another child's pipes;
 *   - starts with an empty signal mask, and SIGPIPE and SIGXFSZ at their
 *     default action (as Python's restore_signals=True); other ignored signals
 *     stay ignored (nohup keeps working).
 *
 * Waiting goes through a pidfd (pidfd_open): no SIGCHLD handler is installed,
 * and no pid is ever signalled after it may have been recycled. The
 * application must therefore not reap concur's children itself: no
 * waitpid(-1, ...) or wait(), and SIGCHLD must not be set to SIG_IGN (which
 * reaps automatically); the calls below would then fail with -ECHILD.
 *
 * Thread safety: wait, poll, send_signal, terminate and kill may be called
 * from any thread concurrently on the same process (one of them reaps; all see
 * the same returncode). communicate must not run concurrently with itself on
 * the same process, nor with the caller's own use of the pipe fds.
 * cc_process_free must be the last call on a process.
 */
#ifndef CONCUR_SUBPROCESS_H
#define CONCUR_SUBPROCESS_H

#include "base.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cc_process cc_process;

typedef enum cc_stdio_mode {
    CC_STDIO_INHERIT = 0, /* the parent's own fd (the default) */
    CC_STDIO_PIPE,        /* a new pipe; the parent's end: cc_process_stdin_fd()... */
    CC_STDIO_DEVNULL,     /* /dev/null */
    CC_STDIO_FD,          /* the given fd, dup'ed into place; the caller keeps it */
    CC_STDIO_STDOUT,      /* stderr only: wherever stdout goes (Python's STDOUT) */
} cc_stdio_mode;

typedef struct cc_stdio {
    cc_stdio_mode mode; /* as above */
    int fd;             /* for CC_STDIO_FD */
} cc_stdio;

typedef struct cc_spawn_options {
    const char *cwd;   /* working directory; NULL: the parent's */
    char *const *envp; /* environment, NULL-terminated; NULL: the parent's */
    cc_stdio stdin_io, stdout_io, stderr_io; /* zeroed: all inherited */
} cc_spawn_options;

/*
 * cc_bytes: a growable byte buffer filled by communicate and run; free with
 * cc_bytes_free. Start from a zeroed one ({0}); concur appends to it, growing
 * it geometrically through the allocation hook. The caller owns it.
 */
typedef struct cc_bytes {
    char *data; /* NUL-terminated for convenience (not counted in len) */
    size_t len; /* bytes */
    size_t cap; /* bytes allocated at data (internal; 0 while data is NULL) */
} cc_bytes;

/*
 * cc_bytes_free: free b->data and zero *b (a zeroed buffer is left as it is).
 * Never fails, never blocks. Not thread safe on the same buffer.
 */
void cc_bytes_free(cc_bytes *b);

/*
 * cc_bytes_append: append len bytes at data (may be NULL when len is 0) to
 * b, growing it geometrically; the result stays NUL-terminated. Returns 0 or
 * -ENOMEM (b unchanged). Never blocks. Not thread safe on the same buffer.
 */
int cc_bytes_append(cc_bytes *b, const void *data, size_t len);

/*
 * cc_process_spawn: start argv[0] with arguments argv (NULL-terminated),
 * without a shell (as Python's subprocess.Popen(argv, ...)). argv[0] without
 * a slash is searched in the parent's PATH (as execvp; the PATH of
 * opts->envp is not used); with a slash, a relative argv[0] is taken from
 * opts->cwd when that is set (as Python).
 *
 * opts (NULL: all defaults): cwd; envp (NULL: the parent's environ); and for
 * each of stdin, stdout, stderr: inherited, a new pipe (the parent's end from
 * cc_process_stdin_fd() and friends, close-on-exec, owned by the process),
 * /dev/null, a given fd (dup'ed into place in the child; the caller keeps its
 * fd and may close it as soon as this returns), or, for stderr only,
 * CC_STDIO_STDOUT: the same file as the child's stdout. The child leads its
 * own process group and receives only fds 0, 1, 2 (header comment). Its
 * start costs the same however many fds the parent has open: from the first
 * spawn on, the process keeps four fds of concur's own (close-on-exec, on
 * /dev/null), the slots through which a child gets its stdio without a copy
 * of the parent's fd table (docs/DESIGN.md).
 *
 * On success *out is a new process (free with cc_process_free) and 0 is
 * returned. A program that cannot be started fails this call itself, never as
 * an exit status of 127: -ENOENT (no such program, or cwd missing), -EACCES
 * (not executable, or a directory on the way not searchable), -ENOEXEC (not a
 * format the kernel runs: a script without #!), -ENOTDIR, -ELOOP,
 * -ENAMETOOLONG, -E2BIG (arguments too long), -ETXTBSY, or another errno of
 * execve or chdir. Also: -EINVAL (out, argv or argv[0] NULL, CC_STDIO_STDOUT
 * for stdin or stdout, a negative fd with CC_STDIO_FD, an unknown mode),
 * -EBADF (a CC_STDIO_FD fd that is not open), -EMFILE/-ENFILE (no fd for a
 * pipe or the pidfd), -ENOMEM, -EAGAIN (process limit). On failure nothing is
 * left behind: no fd, no child, *out untouched. Blocks only for the clone and
 * the exec (tens of microseconds). Thread safe (threads take turns for the
 * clone).
 */
int cc_process_spawn(cc_process **out, char *const argv[], const cc_spawn_options *opts);

/*
 * cc_process_pid: the child's pid, also its process group id. Meaningful for
 * signals only until the child is reaped (by wait or poll). Thread safe.
 */
pid_t cc_process_pid(const cc_process *p);

/*
 * cc_process_pidfd: the child's pidfd (close-on-exec, owned by the process; do
 * not close it). It becomes readable (POLLIN) when the child exits: a caller
 * with its own poll loop may watch it, then call cc_process_poll. Thread safe.
 */
int cc_process_pidfd(const cc_process *p);

/*
 * cc_process_stdin_fd / stdout_fd / stderr_fd: the parent's end of the pipe
 * made for CC_STDIO_PIPE (close-on-exec, owned by the process: do not close
 * it); -1 for other modes, and -1 once communicate has closed it (at EOF; stdin
 * once the input is written). The caller may read or write these itself
 * instead of calling communicate (beware of pipe deadlocks: that is what
 * communicate is for); communicate makes them non-blocking. Not thread safe
 * against a concurrent communicate on the same process.
 */
int cc_process_stdin_fd(const cc_process *p);  /* -1 unless CC_STDIO_PIPE */
int cc_process_stdout_fd(const cc_process *p); /* -1 unless CC_STDIO_PIPE */
int cc_process_stderr_fd(const cc_process *p); /* -1 unless CC_STDIO_PIPE */

/*
 * cc_process_wait: block until the child exits or the deadline passes (as
 * Python's Popen.wait(timeout)). Waits on the pidfd, then reaps the child.
 * On 0, *returncode (may be NULL) is as Python's returncode: the exit status
 * (0-255), or -N when signal N ended the child. Once reaped, every later wait
 * or poll returns 0 at once with the same returncode.
 * Returns 0, -ETIMEDOUT (the child still runs; never before the deadline, or
 * a task's deadline scope ended), -ECHILD (the application reaped the child
 * itself: see the header comment), or in a task (loop.h), -ECANCELED when
 * the task is cancelled (the child still runs).
 * Does not touch the pipes: a child that fills a pipe nobody reads never
 * exits (use communicate). Blocks. Thread safe.
 */
int cc_process_wait(cc_process *p, cc_deadline deadline, int *returncode);

/*
 * cc_process_poll: reap the child if it has exited, without blocking (as
 * Python's Popen.poll()). Returns 0 with *returncode (may be NULL) as
 * cc_process_wait once the child has exited; -EAGAIN while it still runs
 * (where Python returns None); -ECHILD as cc_process_wait. Never blocks.
 * Thread safe.
 */
int cc_process_poll(cc_process *p, int *returncode);

/*
 * cc_process_send_signal: send signal sig to the child only (not its group),
 * through its pidfd, as Python's Popen.send_signal. After the child was
 * reaped it does nothing and returns 0 (as Python). Returns 0, -EINVAL (bad
 * signal number) or -EPERM. Never blocks. Thread safe.
 */
int cc_process_send_signal(cc_process *p, int sig);

/*
 * cc_process_terminate / cc_process_kill: send SIGTERM / SIGKILL to the
 * child's WHOLE process group (kill(-pgid)), so that what the child started (a
 * shell's pipeline, its background jobs) goes too, unless a grandchild moved
 * to another group or session. A child that moved to another group itself
 * (setpgid) is still signalled, alone (through its pidfd). Python's terminate
 * and kill signal the child alone; cc_process_send_signal does that. The
 * group is signalled only while the child (its leader) is unreaped, because
 * until then its pgid cannot be recycled; after the child was reaped both do
 * nothing and return 0 (as
 * Python). Returns 0 or -EPERM. Never blocks (the child exits later: wait for
 * it). Thread safe.
 */
int cc_process_terminate(cc_process *p);
int cc_process_kill(cc_process *p);

/*
 * cc_process_communicate: write input (input_len bytes; may be NULL when 0)
 * to the child's stdin, then close it; read stdout and stderr to their end;
 * then wait for the child to exit (as Python's Popen.communicate(input,
 * timeout)). Never deadlocks whatever the sizes: one poll over the three
 * pipes, non-blocking I/O. The data read is APPENDED to *out and *err (zeroed
 * or earlier buffers, which the caller frees with cc_bytes_free, on failure
 * too); out or err may be NULL to read and discard that pipe. A stream that is
 * not a pipe is left alone. If the child stops reading its stdin (exits,
 * closes it), the rest of the input is dropped: EPIPE is not an error and no
 * SIGPIPE is delivered (SIGPIPE is blocked in the calling thread while any
 * communicate of the thread runs, tasks of its loop included, and the ones
 * their writes raised are consumed; a SIGPIPE already pending from elsewhere
 * is kept; the rest of the signal mask is left alone). Pipes reaching their
 * end are closed (their fd getters
 * return -1 afterwards).
 *
 * Returns 0 once the child has exited and was reaped (its returncode from
 * cc_process_poll). -ETIMEDOUT when the deadline passes first: as Python, the
 * child is NOT killed and what was read stays in *out and *err; call
 * communicate again with the same input and the same buffers to go on (the
 * input resumes where it stopped), or kill the child and free it.
 * Other errors: -EINVAL (input_len > 0 but stdin is not a pipe, or input NULL
 * with input_len > 0), -ENOMEM (a buffer could not grow; what was read is
 * kept and the call may be repeated), -ECHILD (as cc_process_wait), -EIO or
 * another read/write errno (that pipe is then closed); in a task, -ECANCELED
 * when the task is cancelled (as -ETIMEDOUT: progress kept). Blocks. Not
 * thread safe on the same process (header comment).
 */
int cc_process_communicate(cc_process *p, const void *input, size_t input_len,
                           cc_deadline deadline, cc_bytes *out, cc_bytes *err);

/*
 * cc_process_free: close the process's fds and free it. A child that was not
 * reaped yet is NOT left running (Python would leave it and warn): its whole
 * process group is sent SIGKILL and the child is reaped (blocking until it
 * has died, normally microseconds), so that no zombie remains. Wait for the
 * child first to let it finish. NULL is a no-op. Not thread safe: the last
 * call on p.
 */
void cc_process_free(cc_process *p);

/* ---- run: spawn, communicate and wait in one call ------------------------ */

typedef struct cc_run_options {
    cc_spawn_options spawn; /* cwd, envp and stdio modes, as for spawn */
    bool capture_output;    /* stdout and stderr to pipes (Python's) */
    const void *input;      /* for stdin, which becomes a pipe; NULL: none */
    size_t input_len;       /* bytes at input */
    bool check;             /* a non-zero returncode fails with -ECHILD */
} cc_run_options;

typedef struct cc_completed_process {
    int returncode; /* exit status, or -signal; 0 if the child never started */
    bool started;   /* the child was spawned (returncode is its own) */
    cc_bytes out;   /* its stdout, if it was a pipe (Python's .stdout) */
    cc_bytes err;   /* its stderr, if it was a pipe (Python's .stderr) */
} cc_completed_process;

/*
 * cc_run: run argv to completion and collect its output (as Python's
 * subprocess.run(argv, input=, capture_output=, timeout=, check=)). opts may
 * be NULL (inherit everything). stdout/stderr are captured when
 * capture_output is set or their mode is CC_STDIO_PIPE; with input set, stdin
 * is a pipe fed with it (a stdin pipe without input is closed at once: EOF).
 *
 * When the deadline passes, the child's whole process group is killed
 * (SIGKILL), the child is reaped, what its pipes already hold is kept, and the
 * pipes are closed without waiting for an EOF, so that a grandchild in
 * another group still holding them cannot hang the call (Python's run would
 * wait for it); then -ETIMEDOUT is returned with the partial output and the
 * returncode in *result: -9, or the child's own exit status if it had
 * exited already and only what it left behind held the pipes open.
 *
 * *result is always initialised (even on failure) and must then be freed with
 * cc_completed_process_free. Returns 0; -ECHILD with check set and a non-zero
 * returncode (Python's CalledProcessError; *result is complete); -ETIMEDOUT
 * as above; an error of cc_process_spawn (result->started is false); -ENOMEM
 * or a pipe error of communicate, or in a task -ECANCELED when the task is
 * cancelled (the group is then killed and the child reaped). Blocks. Thread
 * safe (calls share nothing).
 */
int cc_run(char *const argv[], const cc_run_options *opts,
           cc_deadline deadline, cc_completed_process *result);

/*
 * cc_completed_process_free: free the outputs of a result of cc_run and zero
 * it. Never fails, never blocks.
 */
void cc_completed_process_free(cc_completed_process *result);

#ifdef __cplusplus
}
#endif
#endif
