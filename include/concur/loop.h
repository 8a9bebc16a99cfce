/*
 * concur/loop.h: the event loop and its tasks (green threads), in the asyncio
 * and gevent vocabulary: run, spawn, yield, sleep, fd readiness, calls into a
 * loop from other threads.
 *
 * One event loop per thread. cc_loop_run() turns the calling thread into a
 * loop and runs a main task on it until that task and every task it spawned
 * are done. A task is a stackful coroutine: it runs until it blocks, and then
 * its loop runs the next ready task. Every blocking call of concur (locks,
 * conditions, semaphores, events, barriers, queues, futures, wait on many,
 * thread join, subprocess waits and communicate, cc_sleep) parks only the
 * calling task when it is called from a task, not the thread: the "one way to
 * wait" of DESIGN.md. What still blocks the whole loop thread: a plain
 * read()/write() on a blocking fd (use cc_wait_fd or the socket helpers
 * below), and code outside concur that blocks (use cc_to_thread).
 *
 * Structured concurrency on top (below): cancelling a task (its blocking
 * calls fail with -ECANCELED), shield and deadline scopes, task groups, and
 * cc_to_thread for blocking code.
 *
 * Thread safety: a task runs on its loop's thread only. Functions that act on
 * "the current task / loop" refer to the calling thread's. Wakeups of a task
 * (an event set, a lock released, a future done) may come from any thread.
 */
#ifndef CONCUR_LOOP_H
#define CONCUR_LOOP_H

#include "base.h"
#include "future.h"

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cc_loop cc_loop;

/*
 * cc_loop_run: make the calling thread an event loop, run fn(arg, &result) as
 * its main task, and return when the main task and every task spawned on the
 * loop are done (as Python's asyncio.run, which however cancels the
 * leftovers). When nothing is ready the thread sleeps in the poller until a
 * timer, an fd event or a wakeup from another thread. The poller is io_uring
 * (poll requests) where liburing was found at build time and the kernel
 * allows it, else epoll; the environment variable CONCUR_NO_IO_URING=1
 * forces epoll (read when each loop starts).
 *   result: receives the main task's result (may be NULL).
 * Returns the main task's outcome (0 or its negative errno, see cc_task_fn),
 * -EBUSY if this thread already runs a loop, -ENOMEM, -EMFILE (no fd for
 * the poller), or -EAGAIN (the stall detector is on, cc_loop_set_diag, and
 * its watchdog thread could not be started). Blocks (runs the loop). The
 * loop handle (cc_loop_current) is valid until this returns.
 * A task may fork(): in the child the thread is no task of any loop
 * (cc_loop_current and cc_task_current give NULL, as Python resets the
 * running loop in a fork child) and its waits block the thread; the child
 * must exec or _exit, not return from the task.
 */
int cc_loop_run(cc_task_fn fn, void *arg, void **result);

/* Options of cc_spawn_with. Zero-initialised means defaults. */
typedef struct cc_task_opts {
    const char *name;  /* copied, truncated to 31 bytes; NULL: "task" */
    size_t stack_size; /* usable stack in bytes (at least); 0: 64 KiB
                          (stacks of the default size are cached and
                          reused) */
} cc_task_opts;

/*
 * cc_spawn / cc_spawn_with: start fn(arg, &result) as a new task on the
 * calling thread's loop (as gevent.spawn / asyncio.create_task). It first
 * runs when the loop gets to it, after the tasks ready now (FIFO).
 *   task: receives the task's future, with one reference for the caller
 *         (cc_future_release); NULL if the caller does not want it. The future
 *         is done when fn returns: result, error, error message, callbacks,
 *         cc_futures_wait and as-completed all work on it. Join it with
 *         cc_future_result (a deadline: gevent's join(timeout)), join many
 *         with cc_futures_wait(..., CC_ALL_COMPLETED, ...) (joinall).
 *         Cancelling it (cc_future_cancel, cc_task_cancel) before it
 *         starts means it never runs; a running task is cancelled with
 *         cc_task_cancel.
 * Returns 0, -EPERM (the calling thread runs no loop), -ENOMEM (no memory
 * for the task or its stack). Never blocks. Loop thread only.
 */
int cc_spawn(cc_task_fn fn, void *arg, cc_future **task);
int cc_spawn_with(cc_task_fn fn, void *arg, const cc_task_opts *opts,
                  cc_future **task);

/*
 * cc_yield: let every other task that is ready now run once, then continue
 * (gevent.sleep(0), asyncio.sleep(0)). Outside a task it yields the thread's
 * CPU (sched_yield). Never fails.
 */
void cc_yield(void);

/* cc_task_current: the running task's future (borrowed: valid while the task
 * runs; retain it to keep it), or NULL outside a task. */
cc_future *cc_task_current(void);

/* cc_task_name: the running task's name (valid while it runs), or NULL
 * outside a task. */
const char *cc_task_name(void);

/* cc_loop_current: the calling thread's running loop, or NULL. */
cc_loop *cc_loop_current(void);

/*
 * cc_call_soon_threadsafe: have the loop call fn(arg) on its own thread, soon
 * (asyncio's loop.call_soon_threadsafe). Calls from one thread run in the
 * order made; each call runs exactly once. fn runs outside any task, between
 * tasks: it must not block (it may spawn tasks, set events, complete
 * futures). May be called from any thread, the loop's included, while the
 * loop runs: the caller must know that cc_loop_run has not returned and will
 * not return before the call runs (for instance because a task waits for
 * what fn does). Returns 0 or -ENOMEM. Never blocks.
 */
int cc_call_soon_threadsafe(cc_loop *loop, void (*fn)(void *arg), void *arg);

/* ---- cancellation, shield and deadline scopes ------------------------------ */

/*
 * cc_task_cancel: cancel a task (asyncio's Task.cancel, gevent's kill), made
 * cooperative and explicit. A task not started yet never runs (its future is
 * cancelled: cc_future_cancelled). A running task is marked cancelled: its
 * current blocking call (parked now) or its next one fails with -ECANCELED,
 * and so does every later one until it returns, except inside a shield
 * scope. Every blocking call that parks a task counts: lock, condition,
 * semaphore, event, barrier, queues, future wait and result, wait on many,
 * thread join, cc_sleep, cc_wait_fd and the socket helpers. The task runs its
 * cleanup as it returns; what it returns (normally -ECANCELED) becomes its
 * future's outcome. A call that does not block (a free lock, a non-empty
 * queue) still succeeds. Cancelling oneself is allowed.
 *   task: a task's future (from cc_spawn), of the calling thread's loop.
 * Returns 0, -EALREADY (the task is done), -EINVAL (NULL, or a running
 * future that is not a task of this loop), -EPERM (the calling thread runs
 * no loop). A future that is not a task is cancelled as cc_future_cancel
 * does, with 0, when that cancels it: one that has not started, or a
 * running process-pool future with kill_on_cancel (its worker is killed).
 * Never blocks. Loop thread only (cancel from elsewhere with
 * cc_call_soon_threadsafe).
 */
int cc_task_cancel(cc_future *task);

/* cc_task_cancelled: whether the running task has been cancelled
 * (cc_task_cancel); false outside a task. Never blocks. */
bool cc_task_cancelled(void);

/*
 * cc_shield_begin / cc_shield_end: a shield scope (asyncio.shield, trio's
 * shielded cancel scope): between them, the running task's blocking calls
 * ignore its cancellation; the first blocking call after the outermost end
 * fails with -ECANCELED if the task was cancelled meanwhile. Use it for
 * cleanup that must block. Scopes nest; each begin needs its end, in the
 * same task (an unmatched end aborts). Deadline scopes still apply inside.
 * No effect outside a task. Never fail, never block.
 */
void cc_shield_begin(void);
void cc_shield_end(void);

/* A deadline scope, on the caller's stack, between begin and end. */
typedef struct cc_deadline_scope {
    cc_deadline deadline; /* this scope's deadline */
    cc_deadline outer;    /* the task's effective scope deadline before */
} cc_deadline_scope;

/*
 * cc_deadline_scope_begin / cc_deadline_scope_end: a deadline scope
 * (asyncio.timeout, gevent's Timeout). Between them, every blocking call of
 * the running task uses min(its own deadline, the deadlines of every open
 * scope) and so fails with -ETIMEDOUT once the scope's deadline has passed
 * (never before); cc_sleep included. Scopes nest: ends must come in the
 * reverse order of the begins, in the same task.
 *   s: the scope, owned by the caller, valid until end.
 *   deadline: absolute (cc_deadline_in); CC_FOREVER makes a no-op scope.
 * begin returns 0 or -EPERM (not in a task: nothing is changed). end returns
 * -ETIMEDOUT if this scope's deadline has passed (asyncio.timeout raising
 * TimeoutError), else 0, or -EPERM outside a task. Never block.
 */
int cc_deadline_scope_begin(cc_deadline_scope *s, cc_deadline deadline);
int cc_deadline_scope_end(cc_deadline_scope *s);

/* ---- task groups ------------------------------------------------------------ */

/*
 * A task group (asyncio.TaskGroup, gevent's Group and Pool(size)): tasks
 * spawned into it are its members until they return. The first member to
 * fail (return an error other than -ECANCELED) cancels its siblings
 * (cc_task_cancel), and the group then takes no new members. Closing the
 * group cancels its members (or waits for them) and joins them all. A
 * bounded group (Pool(size)) makes spawn wait while it is full. A group
 * belongs to one loop: every function below is for that loop's thread only
 * (its tasks or its calls), and none is thread safe.
 */
typedef struct cc_task_group cc_task_group;

/*
 * cc_task_group_new: a new, empty group.
 *   max_size: most members alive at once (gevent's Pool(size)); 0 for no
 *             bound (asyncio.TaskGroup, gevent's Group); at most 2^32 - 1.
 * Returns 0 (*g owned by the caller: cc_task_group_close it), -EINVAL or
 * -ENOMEM. Never blocks.
 */
int cc_task_group_new(cc_task_group **g, size_t max_size);

/*
 * cc_task_group_spawn: spawn fn(arg, &result) as a member (as
 * TaskGroup.create_task, Group.spawn, Pool.spawn), with cc_spawn_with's
 * opts (NULL for defaults). In a full bounded group it first waits, until
 * a member returns or the deadline (the caller must then be a task).
 *   task: receives the member's future with a reference for the caller
 *         (release it), or NULL if not wanted.
 * Returns 0, -ESHUTDOWN (a member failed, the group was cancelled or is
 * closing with cancel, or it is closing without and no member is left:
 * until then its members may spawn more, as asyncio.TaskGroup's),
 * -ETIMEDOUT / -ECANCELED (waiting for room: the deadline passed, the
 * calling task was cancelled), -EPERM (no loop on this thread), or
 * -ENOMEM. Blocks only in a full bounded group.
 */
int cc_task_group_spawn(cc_task_group *g, cc_task_fn fn, void *arg,
                        const cc_task_opts *opts, cc_future **task,
                        cc_deadline deadline);

/* cc_task_group_size: how many members are alive (spawned, not returned).
 * Never blocks. */
size_t cc_task_group_size(const cc_task_group *g);

/*
 * cc_task_group_cancel: cancel every member (gevent's Group.kill(block=
 * False)); the group takes no new members. Never blocks.
 */
void cc_task_group_cancel(cc_task_group *g);

/*
 * cc_task_group_join: wait until no member is alive (gevent's Group.join,
 * joinall) or the deadline. Returns the first member failure if one came
 * (its negative errno, even if it is not the reason of the return), else 0,
 * -ETIMEDOUT, or -ECANCELED (the calling task was cancelled). Parks the
 * calling task (a thread's loop only has tasks that call it).
 */
int cc_task_group_join(cc_task_group *g, cc_deadline deadline);

/*
 * cc_task_group_close: close the group: with cancel, cancel every member
 * first (gevent's Group.kill); without, let them run (leaving
 * asyncio.TaskGroup's `async with`: members may still spawn members, until
 * none is left). Then wait until every member has
 * returned (and every spawn that waited for room has returned -ESHUTDOWN,
 * every join of another task has returned), and free the group. If the
 * caller is cancelled (or a deadline
 * scope ends) while it waits, the members are cancelled and the wait goes
 * on, ignoring that: no member outlives its group. Returns the first member
 * failure, else 0, else -ECANCELED / -ETIMEDOUT (the caller's wait was
 * interrupted as said). g is freed in every case; NULL does nothing.
 * Blocks (parks the calling task) until the members are done.
 */
int cc_task_group_close(cc_task_group *g, bool cancel);

/* ---- blocking code on threads ----------------------------------------------- */

/*
 * cc_to_thread: run fn(arg, &result) on the executor (a thread pool:
 * executor.h) and wait for it, parking the calling task, not its loop
 * (asyncio.to_thread, loop.run_in_executor; gevent's threadpool.apply).
 * Outside a task it blocks the calling thread.
 *   result: receives fn's result when it returns 0 (may be NULL).
 * Returns fn's outcome (0 or its negative errno), -ECANCELED (the task was
 * cancelled while waiting, or the future was cancelled: the work is
 * abandoned, its result lost; a fn already running runs to its end on the
 * pool, which is unharmed), -ETIMEDOUT (a deadline scope ended: abandoned
 * likewise), or cc_executor_submit's errors (-ESHUTDOWN, -EPIPE, -ENOMEM).
 * After -ECANCELED or -ETIMEDOUT fn may still be running, as in Python: so
 * arg must stay valid until fn returns, which the caller cannot know (an
 * arg on the calling task's stack is unsafe when it can be cancelled), and
 * a result fn returns then is dropped, with nobody to free it.
 * Thread safe as the executor is.
 */
struct cc_executor;
int cc_to_thread(struct cc_executor *ex, cc_task_fn fn, void *arg,
                 void **result);

/* ---- fd readiness and sockets --------------------------------------------- */

/*
 * cc_wait_fd: wait until fd is ready for `events` (POLLIN, POLLOUT, POLLPRI
 * from <poll.h>) or the deadline passes (as gevent's wait_read/wait_write;
 * at the deadline, or with one already past, a ready fd's events are still
 * returned, as poll(2) with timeout 0 does).
 * In a task it parks the task (epoll, one-shot); several tasks may wait on
 * one fd (a reader and a writer of a socket): each is woken when what it
 * waits for is ready. Elsewhere it blocks the thread in poll().
 * Returns the events that are ready (> 0; POLLERR and POLLHUP may be set
 * whatever was asked), -ETIMEDOUT, -ECANCELED (the task was cancelled),
 * -EBADF (also: cc_close'd meanwhile), -EINVAL (no event asked), -EPERM
 * (in a task: an fd that epoll cannot watch, such as a regular file; a
 * thread's poll() reports such a file ready) or -ENOMEM.
 * Closing fd with close(2) while tasks wait on it leaves them waiting until
 * their deadline: close it with cc_close, which wakes them.
 */
int cc_wait_fd(int fd, short events, cc_deadline deadline);

/*
 * cc_read / cc_write: read(2) / write(2) that, when fd is non-blocking
 * (O_NONBLOCK) and not ready, wait with cc_wait_fd and retry. Return the
 * bytes moved (cc_read: 0 at end of file; cc_write may move fewer than n, as
 * write(2)), -ETIMEDOUT, -ECANCELED (the task was cancelled), or
 * read/write's negative errno. Restart after EINTR. Park the task (block
 * the thread outside tasks). In a task, a read that follows a short read of
 * the same fd (one that emptied it) does not first try a read that would
 * most likely fail with EAGAIN (on a datagram socket, whose reads are all
 * short, that costs a wait per read: use recv(2)). On the io_uring poller
 * a task's read that must wait (after such a short read, or EAGAIN) is
 * handed to the kernel as an io_uring READ into buf, done when data comes;
 * if the deadline passes or the task is cancelled meanwhile, the call
 * cancels it and returns only once the kernel is done with buf: with the
 * bytes, when the read won (data is never lost), else with the error. On
 * epoll the task lets the other ready tasks run, or waits for the fd.
 * As write(2), cc_write to a socket or pipe whose reading end is gone
 * raises SIGPIPE, which ends the process unless SIGPIPE is ignored or
 * blocked: write to sockets with cc_send (-EPIPE, never SIGPIPE).
 */
ssize_t cc_read(int fd, void *buf, size_t n, cc_deadline deadline);
ssize_t cc_write(int fd, const void *buf, size_t n, cc_deadline deadline);

/*
 * cc_recv / cc_send: recv(2) / send(2) with `flags`, waiting as cc_read /
 * cc_write do (cc_recv with flags 0 through an io_uring RECV as cc_read;
 * with other flags through readiness). cc_send adds MSG_NOSIGNAL: a closed
 * peer gives -EPIPE, never SIGPIPE. Same returns as cc_read / cc_write.
 */
ssize_t cc_recv(int fd, void *buf, size_t n, int flags, cc_deadline deadline);
ssize_t cc_send(int fd, const void *buf, size_t n, int flags,
                cc_deadline deadline);

/*
 * cc_sendall: send all n bytes of buf on a stream socket, calling cc_send
 * (flags, MSG_NOSIGNAL added) until every byte is sent or one call fails,
 * as Python's socket.sendall and asyncio's loop.sock_sendall. Returns 0
 * (n == 0 included), or the failing cc_send's negative errno: -ETIMEDOUT
 * (the deadline bounds the whole call), -ECANCELED, -EPIPE, -EBADF, ...
 * After an error an unknown prefix of buf may have been sent (as Python:
 * there is no way to know how much), so the stream's framing is lost:
 * close the connection. Parks the task (blocks the thread outside tasks)
 * while the socket's buffer is full; the caller keeps buf. Two tasks or
 * threads sending on one socket at once may interleave their bytes.
 */
int cc_sendall(int fd, const void *buf, size_t n, int flags,
               cc_deadline deadline);

/*
 * cc_recvfrom / cc_sendto: recvfrom(2) / sendto(2), for datagram sockets
 * (UDP, Unix datagrams), waiting for readiness as cc_wait_fd does when the
 * non-blocking socket is not ready, as asyncio's loop.sock_recvfrom and
 * loop.sock_sendto. addr and *addrlen as in recvfrom(2) (NULL, NULL: the
 * sender is not wanted; *addrlen is a socklen_t) and sendto(2) (NULL, 0:
 * the connected peer). cc_sendto adds MSG_NOSIGNAL (-EPIPE, never
 * SIGPIPE). Returns the bytes received (a datagram longer than n is cut to
 * n unless flags has MSG_TRUNC) or sent, -ETIMEDOUT, -ECANCELED (the task
 * was cancelled), -EBADF (cc_close from another task), or the system
 * call's negative errno. Restart after EINTR. Park the task (block the
 * thread outside tasks); thread safe as the system calls.
 */
struct sockaddr;
ssize_t cc_recvfrom(int fd, void *buf, size_t n, int flags,
                    struct sockaddr *addr, unsigned *addrlen,
                    cc_deadline deadline);
ssize_t cc_sendto(int fd, const void *buf, size_t n, int flags,
                  const struct sockaddr *addr, unsigned addrlen,
                  cc_deadline deadline);

/*
 * cc_accept: accept a connection on a non-blocking listening socket,
 * waiting while none is pending. The new socket is non-blocking and
 * close-on-exec; the caller owns it. Returns it (>= 0), -ETIMEDOUT,
 * -ECANCELED (the task was cancelled), or accept4's negative errno.
 */
int cc_accept(int fd, cc_deadline deadline);

/*
 * cc_close: close fd, first waking every task of the calling thread's loop
 * that waits on it, as gevent's socket.close() (cancel_wait): their
 * cc_wait_fd, cc_read, cc_recv, cc_recvfrom, cc_write, cc_send,
 * cc_sendall, cc_sendto, cc_accept and cc_connect return -EBADF (a
 * cc_read or cc_recv whose bytes had already come returns them), and
 * cc_wait_any reports fd ready with POLLNVAL. On the io_uring poller
 * their polls and reads in flight are ended before the close, so that, as
 * with close(2), the peer sees the close and a listener's port is free
 * when cc_close returns. Tasks of other threads' loops,
 * and threads blocked on fd, are not woken: close an fd from the loop
 * whose tasks use it, or cancel them first. Outside a task
 * it is close(2). Returns 0, -EBADF (fd < 0, or not open) or close's
 * other negative errno (-EIO); the fd is closed in every case but -EBADF
 * (an interrupted close is 0: Linux frees the number). Never blocks (but
 * for what close(2) itself may wait). Thread safe as close(2).
 */
int cc_close(int fd);

/*
 * cc_connect: connect a non-blocking socket, waiting for the handshake.
 * Returns 0, -ETIMEDOUT (the attempt goes on: close the socket),
 * -ECANCELED (the task was cancelled; likewise), or the connection's
 * negative errno (-ECONNREFUSED, ...). A Unix-domain socket whose
 * listener's backlog is full gives -EAGAIN at once, whatever the deadline
 * (connect(2) starts no attempt, and nothing can be waited on for room:
 * retry later, as with Go's net.Dial).
 */
int cc_connect(int fd, const struct sockaddr *addr, unsigned addrlen,
               cc_deadline deadline);

/* ---- signals -------------------------------------------------------------- */

/*
 * cc_signal_wait: wait until one of the signals in `set` is delivered, and
 * take it (as sigwaitinfo(2) with a deadline, or asyncio's
 * loop.add_signal_handler turned into a wait). In a task it parks only the
 * task (a signalfd on the loop's poller); elsewhere it blocks the thread.
 * It blocks the signals of `set` in the calling thread (pthread_sigmask) and
 * leaves them blocked. PROCESS-WIDE REQUIREMENT, as with signalfd: every
 * thread of the process must block these signals (block them in main before
 * starting any thread: threads inherit the mask), else the kernel may
 * deliver one to a thread that does not block it, where its action runs
 * (for SIGUSR1, SIGTERM...: the process ends) and no waiter sees it.
 * A signal that arrived while blocked, before the call, is taken at once.
 * Several waiters for one signal: one of them takes each delivery.
 *   set: the signals (not SIGKILL or SIGSTOP, which are silently ignored).
 * Returns the signal number (> 0), -ETIMEDOUT (also when a task's deadline
 * scope ends), -ECANCELED (in a task: the task was cancelled; no signal is
 * taken), -EINVAL (empty or NULL set, a bad signal number), -EMFILE (no fd
 * for the signalfd), -ENOMEM.
 * Thread safety: any thread; blocks (parks the task).
 */
int cc_signal_wait(const sigset_t *set, cc_deadline deadline);

/* cc_signal_wait_one: cc_signal_wait for the one signal `signo`. Same
 * returns (-EINVAL for an invalid signo). */
int cc_signal_wait_one(int signo, cc_deadline deadline);

/* ---- diagnostics ------------------------------------------------------------ */

/* Options of cc_loop_set_diag. Zero-initialised means all off. */
typedef struct cc_loop_diag_opts {
    int stall_ms;          /* > 0: report on stderr, with its name and a
                              backtrace, a task that runs this many ms
                              without yielding (a watchdog thread per
                              loop) */
    bool deadlock;         /* report deadlocks (see cc_loop_set_diag) */
    int deadlock_quiet_ms; /* quiet time before a "possible deadlock";
                              0: 1000 ms */
} cc_loop_diag_opts;

/*
 * cc_loop_set_diag: set the diagnostics of the loops started from now on,
 * process-wide (as Go's GODEBUG, or asyncio's debug mode with
 * slow_callback_duration). opts NULL: back to the environment, read when
 * each loop starts: CONCUR_STALL_MS=N (the stall detector), CONCUR_DEADLOCK=1
 * and CONCUR_DEADLOCK_MS=N (quiet time). All off by default.
 * Stall: a task that runs stall_ms without a switch is reported once on
 * stderr ("concur: stall: task "NAME" of loop ... has run N ms without
 * yielding"), followed by a backtrace of the loop thread taken then (one
 * frame per line, innermost first, as glibc's backtrace_symbols prints
 * them; function names need the program linked with -rdynamic, else
 * "file(+offset)"; a task that switched meanwhile is said so). The
 * backtrace is asked for with SIGURG (as Go's preemption): the detector
 * installs a handler that passes any SIGURG it did not ask for to the
 * handler found before it; a loop thread that blocks SIGURG, or a
 * sanitizer that holds signals back, gets "(no backtrace ...)" instead,
 * and so does a task blocked in a system call (sleeping, in /proc's
 * terms), which is not signalled: nanosleep, poll and the like would fail
 * with EINTR. One that enters such a call just as the signal comes may
 * still see EINTR (as under Go's preemption signal).
 * Deadlock: the loop checks when it would sleep with no task ready, no task
 * with a deadline (no timer) and no task waiting for an fd (cc_wait_fd,
 * sockets, cc_signal_wait). Then only another thread (or a signal handler)
 * could wake a task. If the process has no other thread (the loop's own
 * stall watchdog does not count: it wakes no task), the loop KNOWS it
 * is a deadlock: it prints "concur: deadlock: ..." with every task, its
 * state and what it waits on (a wait queue, or an fd, or a sleep), and
 * aborts (as Go's "all goroutines are asleep"). With other threads, after
 * deadlock_quiet_ms with no task run it prints "concur: possible deadlock:
 * ..." with the same list, once per quiet period, and goes on waiting.
 * Returns 0 or -EINVAL (a negative time). Any thread; never blocks.
 */
int cc_loop_set_diag(const cc_loop_diag_opts *opts);

/*
 * cc_loop_dump: write every task of `loop` to `out` (NULL: stderr), one per
 * line: name, state (running, ready, new, parked, woken) and, for a parked
 * task, what it waits on and its deadline (as Go's goroutine dump). Returns
 * 0, or -EPERM unless called on the loop's own thread (from a task or a
 * cc_call_soon_threadsafe call). Never blocks.
 */
int cc_loop_dump(cc_loop *loop, FILE *out);

/*
 * cc_loop_dump_on_sigquit: from now on, SIGQUIT makes the calling thread's
 * loop dump its tasks on stderr (cc_loop_dump) when it next switches tasks
 * or goes idle (as the JVM's thread dump on SIGQUIT). Installs a SIGQUIT
 * handler process-wide (replacing the default core dump); every loop that
 * opted in dumps. Returns 0, -EPERM (no loop on this thread), -ENOMEM,
 * -EBUSY (64 loops opted in already). Loop thread; never blocks.
 */
int cc_loop_dump_on_sigquit(void);

/* ---- waiting on several kinds of things --------------------------------- */

struct cc_process;
struct cc_queue;

/* What a cc_waitable watches. */
typedef enum cc_wait_kind {
    CC_WAIT_FUTURE,  /* ready when the future is done */
    CC_WAIT_FD,      /* ready when fd is ready for `events` */
    CC_WAIT_PROCESS, /* ready when the child has exited (or been reaped) */
    CC_WAIT_TIMER,   /* ready once the clock reaches `at` */
    CC_WAIT_QUEUE,   /* ready when a cc_queue_get would not block: an item
                        is queued, or the queue is shut down (a hint: see
                        cc_wait_any) */
} cc_wait_kind;

/* One thing for cc_wait_any to watch; set the fields of its kind. */
typedef struct cc_waitable {
    cc_wait_kind kind;          /* which of the fields below count */
    cc_future *future;          /* CC_WAIT_FUTURE (borrowed) */
    struct cc_process *process; /* CC_WAIT_PROCESS (borrowed) */
    struct cc_queue *queue;     /* CC_WAIT_QUEUE (borrowed), any kind */
    int fd;                     /* CC_WAIT_FD */
    short events;               /* CC_WAIT_FD: POLLIN, POLLOUT, POLLPRI */
    cc_deadline at;             /* CC_WAIT_TIMER: absolute monotonic ns */
    short ready;                /* out: 0, or non-zero if ready (an fd's or
                                   pidfd's revents; 1 for the others) */
} cc_waitable;

/*
 * cc_wait_any: wait until at least one of ws[0..n) is ready or the deadline
 * passes (Python's multiprocessing.connection.wait, generalised to futures,
 * queues, fds, child processes and timers). Sets every ws[i].ready to what
 * is ready at return and returns the lowest ready index (>= 0). It consumes
 * nothing: get the future's result, read the fd, reap the child
 * (cc_process_poll), get from the queue afterwards. In a task it parks the
 * task (fds and pidfds through the loop's poller; cancellation and deadline
 * scopes apply); in a thread it sleeps in the wait layer, or in ppoll() when
 * fds or processes are among ws. Puts, completions and shutdowns from any
 * thread or task wake it, on whatever loop or thread it waits.
 * Queues (every kind: FIFO, LIFO, priority, the lock-free ring) are ready
 * when a get would not block: an item is queued, or the queue is shut down
 * (then a get returns the items left, then -ESHUTDOWN), as a receive on a Go
 * channel in a select, or poll() on a pipe. Readiness is a hint, as poll's:
 * another getter may take the item first, so get with CC_NOWAIT (or a
 * deadline) afterwards and expect -ETIMEDOUT now and then; on the ring a put
 * may also still be publishing the item it claimed (for a few instructions).
 * Waiting on a queue takes no item and no wakeup from a getter blocked in
 * cc_queue_get: a put wakes that getter and every cc_wait_any watching.
 * Returns the index, or -ETIMEDOUT (nothing ready by the deadline, never
 * before it), -ECANCELED (the task was cancelled), -EINVAL (ws NULL with
 * n > 0, an unknown kind, a NULL future, process or queue, no event asked),
 * -EBADF (a negative fd), -EPERM (in a task: an fd epoll cannot watch),
 * -ENOMEM, -EMFILE/-ENFILE (a thread waiting on fds or processes needs an
 * eventfd). A closed fd is ready with POLLNVAL.
 * Thread safe (several callers may watch the same things); the things
 * watched must outlive the call (a queue may not be freed meanwhile).
 * n == 0 sleeps until the deadline.
 */
int cc_wait_any(cc_waitable *ws, size_t n, cc_deadline deadline);

#ifdef __cplusplus
}
#endif
#endif
