/*
 * process_forkserver.c: the forkserver start method (include/concur/
 * process.h, CC_START_FORKSERVER).
 *
 * DESIGN. The server is a fork of the program, made (ideally) before any
 * thread exists, so that it is a single-threaded copy from which fork is
 * safe; function pointers mean the same in it as in the program. The two
 * talk over a SOCK_SEQPACKET pair: START (the function pointer, the daemon
 * flag, and as SCM_RIGHTS the argument memfd, the result memfd and the
 * passed fds) is answered by STARTED (the pid, and the worker's pidfd as
 * SCM_RIGHTS, opened by the server before it could reap the worker, so it
 * can never name a recycled pid); SIGNAL (kill the worker's group, done by
 * the server, which has not reaped the worker while it handles the request)
 * by SIGNALLED. The server is the workers' parent and reaps them: it polls
 * their pidfds and sends EXITED (pid, code) for each. In the program, one
 * lock covers the socket; whoever holds it and reads files EXITED messages
 * into the workers they name. A join waits on the worker's own pidfd, then
 * reads until its EXITED has come (the server sends it at once). Every
 * wait (the pidfd, the socket) is cc__poll_wait: a task on an event loop
 * parks, other tasks run; a thread polls. Stopping
 * shuts our end for writing: the server kills what still runs, reports the
 * exits, and leaves. The server dies with the thread that started it
 * (PR_SET_PDEATHSIG), daemon workers with the server.
 */
#include "loop_internal.h"
#include "worker_impl.h"

#include "concur/sync.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3 /* linux/wait.h; glibc 2.36's sys/wait.h lacks it */
#endif

#define CODE_UNKNOWN INT_MIN /* the server went away before reporting */
#define MAX_FDS (2 + CC__WORKER_MAX_PASS_FDS) /* argument, result, passed */

enum { MSG_START = 1, MSG_SIGNAL, MSG_STARTED, MSG_SIGNALLED, MSG_EXITED };

/* One message, either way. */
typedef struct fs_msg {
    int32_t type;    /* MSG_* */
    int32_t pid;     /* the worker; STARTED: or -errno */
    int32_t value;   /* SIGNAL: the signal; SIGNALLED: 0 or -errno; EXITED:
                        the exit code */
    uint32_t daemon; /* START: a daemon worker */
    uint64_t fn;     /* START: the cc_worker_fn, valid in the server */
} fs_msg;

/* The program's view of its server. */
static struct {
    cc_lock lock;       /* guards all below; held while talking to the server
                           (a blocking lock: that takes a round trip) */
    int sock;           /* our end; -1: no server */
    int pidfd;          /* the server's */
    cc_worker *served;  /* live workers started through it */
    pid_t program;      /* the process that started it (sock is valid
                           there only) */
} fs = {CC_LOCK_INIT, -1, -1, NULL, 0};

/* Under the lock, in a fork of the program: the server and its workers are
 * the parent's. Forget them (close our copies, never shut the socket down,
 * which would end the parent's server); a start here makes our own. */
static void forget_inherited_locked(void)
{
    if (fs.sock < 0 || fs.program == getpid())
        return;
    cc__close_fd(&fs.sock);
    cc__close_fd(&fs.pidfd);
    fs.served = NULL;
}

static void fs_lock(void)
{
    struct cc__protect p; /* held briefly: no cancellation or scope fails it */
    cc__protect_begin(&p);
    CC__CHECK("forkserver lock", cc_lock_acquire(&fs.lock, CC_FOREVER));
    cc__protect_end(&p);
    forget_inherited_locked();
}

static void fs_unlock(void) { cc_lock_release(&fs.lock); }

/* ---- messages with fds --------------------------------------------------- */

static int send_msg(int sock, const fs_msg *m, const int *fds, size_t n)
{
    char ctl[CMSG_SPACE(sizeof(int) * MAX_FDS)];
    struct iovec iov = {(void *)m, sizeof *m};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (n > 0) {
        memset(ctl, 0, sizeof ctl);
        mh.msg_control = ctl;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * n);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
    }
    ssize_t r;
    do
        r = sendmsg(sock, &mh, MSG_NOSIGNAL);
    while (r < 0 && errno == EINTR);
    return r < 0 ? -errno : 0;
}

/* Receive one message and its fds (close-on-exec): 1, 0 at the end of the
 * stream, or -errno. */
static int recv_msg(int sock, fs_msg *m, int *fds, size_t *n)
{
    char ctl[CMSG_SPACE(sizeof(int) * MAX_FDS)];
    struct iovec iov = {m, sizeof *m};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1,
                        .msg_control = ctl, .msg_controllen = sizeof ctl};
    ssize_t r;
    do
        r = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
    while (r < 0 && errno == EINTR);
    *n = 0;
    struct cmsghdr *c = r > 0 ? CMSG_FIRSTHDR(&mh) : NULL;
    if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
        *n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        memcpy(fds, CMSG_DATA(c), sizeof(int) * *n);
    }
    if (r < 0)
        return -errno;
    return r == (ssize_t)sizeof *m ? 1 : 0; /* a short one: treat as the end */
}

static void close_all(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cc__close_fd(&fds[i]);
}

/* ---- the server ---------------------------------------------------------- */

/* One worker the server has not reaped yet. */
typedef struct child {
    pid_t pid; /* also its process group */
    int pidfd; /* polled for its exit */
} child;

/* The server's state (it is single-threaded). */
static child *kids;   /* live workers */
static size_t nkids;  /* entries of kids */

/* In the new worker: drop the server's fds, then run. */
static _Noreturn void worker_main(int sock, const fs_msg *m, int *fds,
                                  size_t n, pid_t server)
{
    close(sock);
    for (size_t i = 0; i < nkids; i++)
        close(kids[i].pidfd);
    cc__worker_child_setup(m->daemon, server, fds + 2, n - 2);
    void *arg = NULL;
    size_t len = 0;
    int r = cc__worker_read_arg(fds[0], &arg, &len);
    if (r < 0)
        cc__worker_fail(126, "reading the argument", cc_strerror(r));
    close(fds[0]);
    cc__worker_run_and_exit((cc_worker_fn)(uintptr_t)m->fn, arg, len, fds[1]);
}

/* Fork a worker; the reply carries its pid and pidfd, or -errno. */
static void serve_start(int sock, const fs_msg *m, int *fds, size_t n)
{
    fs_msg reply = {.type = MSG_STARTED};
    int pidfd = -1;
    pid_t self = getpid();
    child *grown = n >= 2 ? cc__realloc(kids, nkids * sizeof *kids,
                                        (nkids + 1) * sizeof *kids) : NULL;
    pid_t pid = grown ? fork() : -1;
    int err = n < 2 ? -EINVAL : !grown ? -ENOMEM : pid < 0 ? -errno : 0;
    if (grown)
        kids = grown;
    if (pid == 0)
        worker_main(sock, m, fds, n, self);
    if (pid > 0) /* as the worker does: a signal to its group cannot miss */
        setpgid(pid, pid);
    if (pid > 0 && (pidfd = pidfd_open(pid, 0)) < 0) {
        err = -errno;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        pid = -1;
    }
    reply.pid = pid > 0 ? pid : err;
    if (pid > 0)
        kids[nkids++] = (child){pid, pidfd};
    close_all(fds, n);
    send_msg(sock, &reply, &pidfd, pid > 0 ? 1 : 0);
}

/* Signal a worker's group while it is unreaped (hence its pgid ours). */
static void serve_signal(int sock, const fs_msg *m)
{
    fs_msg reply = {.type = MSG_SIGNALLED, .pid = m->pid};
    for (size_t i = 0; i < nkids; i++)
        if (kids[i].pid == m->pid && kill(-m->pid, m->value) < 0 &&
            errno != ESRCH)
            reply.value = -errno;
    send_msg(sock, &reply, NULL, 0);
}

/* Reap kids[i], report it, forget it. */
static void reap_kid(int sock, size_t i)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    while (waitid((idtype_t)P_PIDFD, (id_t)kids[i].pidfd, &si, WEXITED) < 0 &&
           errno == EINTR)
        ;
    fs_msg m = {.type = MSG_EXITED, .pid = kids[i].pid};
    m.value = si.si_code == CLD_EXITED ? si.si_status : -si.si_status;
    close(kids[i].pidfd);
    kids[i] = kids[--nkids];
    send_msg(sock, &m, NULL, 0);
}

/* The program stopped us (or died): kill what runs, report, leave. */
static _Noreturn void serve_end(int sock)
{
    for (size_t i = 0; i < nkids; i++)
        kill(-kids[i].pid, SIGKILL);
    while (nkids > 0)
        reap_kid(sock, nkids - 1);
    _exit(0);
}

static void serve_request(int sock)
{
    fs_msg m;
    int fds[MAX_FDS];
    size_t n;
    if (recv_msg(sock, &m, fds, &n) <= 0)
        serve_end(sock);
    if (m.type == MSG_START)
        serve_start(sock, &m, fds, n);
    else if (m.type == MSG_SIGNAL)
        serve_signal(sock, &m);
    else
        close_all(fds, n);
}

/* Wait for a request or an exit; handle every one that is ready. */
static void serve_once(int sock)
{
    struct pollfd p[1 + 1024];
    size_t n = nkids < 1024 ? nkids : 1024;
    p[0] = (struct pollfd){.fd = sock, .events = POLLIN};
    for (size_t i = 0; i < n; i++)
        p[1 + i] = (struct pollfd){.fd = kids[i].pidfd, .events = POLLIN};
    if (poll(p, 1 + n, -1) <= 0)
        return; /* EINTR */
    for (size_t i = n; i-- > 0;) /* from the end: reap_kid moves the last */
        if (p[1 + i].revents)
            reap_kid(sock, i);
    if (p[0].revents)
        serve_request(sock);
}

static _Noreturn void server_main(int sock, pid_t program)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != program)
        _exit(0);
    /* Our copy of the program's state: its lock was held by our starter. */
    fs.sock = fs.pidfd = -1;
    fs.served = NULL;
    cc_lock_init(&fs.lock);
    if (sock > 3)
        close_range(3, (unsigned)sock - 1, 0);
    close_range((unsigned)sock + 1, ~0U, 0);
    for (;;)
        serve_once(sock);
}

/* ---- the program's side -------------------------------------------------- */

static int start_locked(void)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    pid_t program = getpid();
    cc__worker_warn_if_threaded("the forkserver is");
    fflush(NULL); /* or the server's children would write our buffers */
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        server_main(sv[1], program);
    }
    int err = pid < 0 ? -errno : 0;
    close(sv[1]);
    if (pid > 0 && (fs.pidfd = pidfd_open(pid, 0)) < 0) {
        err = -errno;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    if (err < 0) {
        close(sv[0]);
        return err;
    }
    fs.sock = sv[0];
    fs.program = program;
    return 0;
}

int cc_forkserver_start(void)
{
    fs_lock();
    int r = fs.sock >= 0 ? 0 : start_locked();
    fs_unlock();
    return r;
}

/* Under the lock: an EXITED message reaches its worker. */
static void file_exit_locked(pid_t pid, int code)
{
    for (cc_worker *w = fs.served; w; w = w->served.next)
        if (w->served.pid == pid && !w->served.exited) {
            w->served.exited = true;
            w->served.code = code;
        }
}

/* Under the lock: the server has closed its end (stopped, or killed):
 * nobody will report the exits still unknown; reap it. */
static void server_gone_locked(void)
{
    for (cc_worker *w = fs.served; w; w = w->served.next)
        file_exit_locked(w->served.pid, CODE_UNKNOWN);
    cc__close_fd(&fs.sock);
    siginfo_t si;
    while (waitid((idtype_t)P_PIDFD, (id_t)fs.pidfd, &si, WEXITED) < 0 &&
           errno == EINTR)
        ;
    cc__close_fd(&fs.pidfd);
}

/* Under the lock: wait until the server's next message (or its end) is
 * there. A task parks, protected: an exchange half done cannot be dropped
 * for a cancellation, and the server answers at once. Should the loop fail
 * to take the fd (-ENOMEM), the recv that follows blocks the thread. */
static void await_message_locked(void)
{
    struct pollfd p = {.fd = fs.sock, .events = POLLIN};
    struct cc__protect pr;
    cc__protect_begin(&pr);
    (void)cc__poll_wait(&p, 1, CC_FOREVER);
    cc__protect_end(&pr);
}

/* Under the lock: read one message, filing an EXITED; 1, or 0 at the end
 * (the server is then marked gone). fds receives what came with it. */
static int read_locked(fs_msg *m, int *fds, size_t *n)
{
    await_message_locked();
    int r = recv_msg(fs.sock, m, fds, n);
    if (r <= 0) {
        server_gone_locked();
        return 0;
    }
    if (m->type == MSG_EXITED)
        file_exit_locked(m->pid, m->value);
    return 1;
}

/* Under the lock: send a request and read until its reply. */
static int call_locked(const fs_msg *req, const int *fds, size_t n,
                       fs_msg *reply, int *reply_fd)
{
    int got[MAX_FDS];
    size_t ngot;
    int r = send_msg(fs.sock, req, fds, n);
    if (r == -EPIPE || r == -ECONNRESET) {
        server_gone_locked(); /* killed: the next start makes a new one */
        return -EPIPE;
    }
    if (r < 0)
        return r;
    for (;;) {
        if (!read_locked(reply, got, &ngot))
            return -EPIPE;
        if (reply->type == req->type + 2) /* STARTED, SIGNALLED */
            break;
        close_all(got, ngot);
    }
    if (reply_fd && ngot > 0)
        *reply_fd = got[0];
    else
        close_all(got, ngot);
    return 0;
}

static int start_worker_locked(cc_worker *w, cc_worker_fn fn, int argfd,
                               const cc_worker_options *o)
{
    int fds[MAX_FDS] = {argfd, w->result_fd};
    for (size_t i = 0; i < o->npass_fds; i++)
        fds[2 + i] = o->pass_fds[i];
    fs_msg req = {.type = MSG_START, .daemon = o->daemon,
                  .fn = (uint64_t)(uintptr_t)fn}, reply;
    int pidfd = -1, r = 0;
    for (int tries = 0; tries < 2; tries++) { /* a killed server: a new one */
        r = fs.sock >= 0 ? 0 : start_locked();
        if (r == 0)
            r = call_locked(&req, fds, 2 + o->npass_fds, &reply, &pidfd);
        if (r != -EPIPE)
            break;
    }
    if (r == 0 && reply.pid < 0)
        r = reply.pid;
    if (r < 0)
        return r;
    w->served = (cc__served){reply.pid, pidfd, false, 0, fs.served};
    fs.served = w;
    return 0;
}

int cc__served_start(cc_worker *w, cc_worker_fn fn, const void *arg,
                     size_t len, const cc_worker_options *o)
{
    int argfd = cc__memfd_of("concur-worker-arg", arg, len);
    if (argfd < 0)
        return argfd;
    fs_lock();
    int r = start_worker_locked(w, fn, argfd, o);
    fs_unlock();
    close(argfd);
    return r;
}

/* Under the lock: read until w's exit is known. */
static void await_exit_locked(cc_worker *w)
{
    fs_msg m;
    int fds[MAX_FDS];
    size_t n;
    while (!w->served.exited && fs.sock >= 0 && read_locked(&m, fds, &n))
        close_all(fds, n);
    if (!w->served.exited)
        file_exit_locked(w->served.pid, CODE_UNKNOWN);
}

int cc__served_join(cc_worker *w, cc_deadline deadline, int *code)
{
    struct pollfd p = {.fd = w->served.pidfd, .events = POLLIN};
    int r = cc__poll_wait(&p, 1, deadline); /* until the worker has exited */
    if (r < 0)
        return r;
    fs_lock();
    await_exit_locked(w);
    int c = w->served.code;
    fs_unlock();
    if (c == CODE_UNKNOWN)
        return -ECHILD;
    if (code)
        *code = c;
    return 0;
}

int cc__served_signal(cc_worker *w, int sig)
{
    fs_msg req = {.type = MSG_SIGNAL, .pid = w->served.pid, .value = sig};
    fs_msg reply = {.value = 0};
    int r = 0;
    fs_lock();
    if (!w->served.exited && fs.sock >= 0)
        r = call_locked(&req, NULL, 0, &reply, NULL);
    fs_unlock();
    return r == -EPIPE ? 0 : r < 0 ? r : reply.value;
}

void cc__served_free(cc_worker *w)
{
    struct cc__protect pr; /* a cancelled task still waits the kill out */
    cc__protect_begin(&pr);
    if (cc__served_join(w, CC_NOWAIT, NULL) == -ETIMEDOUT) {
        cc__served_signal(w, SIGKILL);
        cc__served_join(w, CC_FOREVER, NULL);
    }
    cc__protect_end(&pr);
    fs_lock();
    cc_worker **p = &fs.served;
    while (*p && *p != w)
        p = &(*p)->served.next;
    if (*p)
        *p = w->served.next;
    fs_unlock();
    cc__close_fd(&w->served.pidfd);
}

void cc_forkserver_stop(void)
{
    fs_msg m;
    int fds[MAX_FDS];
    size_t n;
    fs_lock();
    if (fs.sock >= 0)
        shutdown(fs.sock, SHUT_WR); /* the server kills, reports, leaves */
    while (fs.sock >= 0 && read_locked(&m, fds, &n))
        close_all(fds, n);
    fs_unlock();
}
