/*
 * subprocess.c: spawning, waiting for and signalling child processes
 * (include/concur/subprocess.h). communicate and run are in communicate.c.
 *
 * DESIGN. A child is started by cc__spawn_clone (src/linux/spawn_clone.c: a
 * clone that does not copy our fd table), or where that is not available
 * with posix_spawnp, which glibc implements with clone(CLONE_VM|CLONE_VFORK).
 * Either way the parent is suspended until the child has exec'd or failed,
 * and an exec failure comes back as the spawn's own error, never as an exit
 * status of 127. The posix_spawn attributes and file actions below say what
 * both children do. The stdio plan (pipes, /dev/null, given fds)
 * becomes file actions: dup2 onto 0, 1, 2 (dup2 clears close-on-exec on the
 * target), then closefrom(3), so the child holds nothing else whatever other
 * threads have open. Sources that sit on 0-2 themselves are first lifted
 * above 2 so that one dup2 cannot clobber the source of the next. Right
 * after the spawn we pidfd_open the child: nobody else reaps it (concur
 * installs no SIGCHLD handler), so the pid is still ours. Waiting polls the
 * pidfd and reaps with waitid(P_PIDFD); the reap and every kill(-pgid) happen
 * under p->lock, which is what guarantees that a process group is only
 * signalled while its leader is unreaped, hence while its id cannot have been
 * recycled. Inside an event-loop task, waits (cc__poll_wait) park the task
 * on the loop instead (cc__wait_fds), so cancellation and deadline scopes
 * apply; cleanup waits that must reap (free, run's abandon) are protected.
 */
#include "loop_internal.h"
#include "process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3 /* linux/wait.h; glibc 2.36's sys/wait.h lacks it */
#endif

extern char **environ;

/* ---- small helpers ------------------------------------------------------- */

void cc__close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd); /* Linux frees the fd even when close reports EINTR/EIO */
    *fd = -1;
}

static int64_t remaining_ns(cc_deadline deadline)
{
    int64_t now = cc__now();
    /* compare first: INT64_MIN - now would overflow */
    return deadline > now ? deadline - now : 0;
}

int cc__poll_until(struct pollfd *fds, nfds_t n, cc_deadline deadline)
{
    for (;;) {
        int64_t left = remaining_ns(deadline);
        struct timespec ts = {left / CC_SEC, left % CC_SEC};
        int r = ppoll(fds, n, deadline == CC_FOREVER ? NULL : &ts, NULL);
        if (r > 0)
            return r;
        if (r < 0 && errno != EINTR)
            return -errno; /* ENOMEM; EFAULT/EINVAL cannot happen here */
        if (r == 0 && cc__now() >= deadline)
            return -ETIMEDOUT;
    }
}

int cc__poll_wait(struct pollfd *fds, nfds_t n, cc_deadline deadline)
{
    /* A task's park with a deadline already past ends before the poller
     * can report a ready fd: one ppoll looks now instead, as a thread's. */
    if (cc__loop_task() && cc__now() < deadline)
        return cc__wait_fds(fds, n, deadline);
    return cc__poll_until(fds, n, deadline);
}

/* ---- the stdio plan ------------------------------------------------------ */

/* What the child's fds 0, 1, 2 become, and the parent's temporaries. */
typedef struct stdio_plan {
    int src[3];  /* fd to dup2 onto 0, 1, 2; -1: leave as inherited */
    int mode[3]; /* cc_stdio_mode of each */
    int temp[6]; /* child pipe ends and lifted copies: closed after spawn */
    int ntemp;   /* used entries of temp */
} stdio_plan;

static const cc_stdio *stdio_of(const cc_spawn_options *o, int i)
{
    return i == 0 ? &o->stdin_io : i == 1 ? &o->stdout_io : &o->stderr_io;
}

static int check_stdio(const cc_spawn_options *o)
{
    for (int i = 0; i < 3; i++) {
        const cc_stdio *s = stdio_of(o, i);
        if (s->mode < CC_STDIO_INHERIT || s->mode > CC_STDIO_STDOUT)
            return -EINVAL;
        if (s->mode == CC_STDIO_STDOUT && i != 2)
            return -EINVAL;
        if (s->mode == CC_STDIO_FD && s->fd < 0)
            return -EINVAL;
    }
    return 0;
}

/* A pipe for child fd i: the child's end goes to plan->src[i] (temporary),
 * the parent's end to p->fds[i]. Both close-on-exec. */
static int make_pipe(cc_process *p, stdio_plan *plan, int i)
{
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0)
        return -errno;
    int child = i == 0 ? pfd[0] : pfd[1];
    p->fds[i] = i == 0 ? pfd[1] : pfd[0];
    plan->src[i] = plan->temp[plan->ntemp++] = child;
    return 0;
}

/* A source on 0-2 other than its own target could be overwritten by an
 * earlier dup2: copy it above 2 first. */
static int lift_low_sources(stdio_plan *plan)
{
    for (int i = 0; i < 3; i++) {
        if (plan->src[i] < 0 || plan->src[i] > 2 || plan->src[i] == i)
            continue;
        int fd = fcntl(plan->src[i], F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
            return -errno;
        plan->src[i] = plan->temp[plan->ntemp++] = fd;
    }
    return 0;
}

static int make_plan(cc_process *p, const cc_spawn_options *o, stdio_plan *plan)
{
    for (int i = 0; i < 3; i++) {
        const cc_stdio *s = stdio_of(o, i);
        plan->mode[i] = s->mode;
        plan->src[i] = -1;
        if (s->mode == CC_STDIO_FD)
            plan->src[i] = s->fd;
        if (s->mode == CC_STDIO_PIPE) {
            int r = make_pipe(p, plan, i);
            if (r < 0)
                return r;
        }
    }
    p->stdin_piped = plan->mode[0] == CC_STDIO_PIPE;
    return lift_low_sources(plan);
}

static void close_plan(stdio_plan *plan)
{
    for (int i = 0; i < plan->ntemp; i++)
        cc__close_fd(&plan->temp[i]);
    plan->ntemp = 0;
}

/* ---- posix_spawn attributes and file actions ----------------------------- */

static int add_stdio_actions(posix_spawn_file_actions_t *fa,
                             const stdio_plan *plan)
{
    static const int devnull_flags[3] = {O_RDONLY, O_WRONLY, O_WRONLY};
    int r = 0;
    for (int i = 0; i < 3 && r == 0; i++) {
        if (plan->mode[i] == CC_STDIO_DEVNULL)
            r = posix_spawn_file_actions_addopen(fa, i, "/dev/null",
                                                 devnull_flags[i], 0);
        else if (plan->mode[i] == CC_STDIO_STDOUT) /* fd 1 is set by now */
            r = posix_spawn_file_actions_adddup2(fa, 1, 2);
        else if (plan->src[i] >= 0)
            r = posix_spawn_file_actions_adddup2(fa, plan->src[i], i);
    }
    return r;
}

static int make_actions(posix_spawn_file_actions_t *fa, const stdio_plan *plan,
                        const char *cwd)
{
    int r = posix_spawn_file_actions_init(fa);
    if (r != 0)
        return -r;
    r = add_stdio_actions(fa, plan);
    if (r == 0)
        r = posix_spawn_file_actions_addclosefrom_np(fa, 3);
    if (r == 0 && cwd)
        r = posix_spawn_file_actions_addchdir_np(fa, cwd);
    if (r != 0)
        posix_spawn_file_actions_destroy(fa);
    return -r;
}

int cc__spawn_attr_init(posix_spawnattr_t *attr)
{
    sigset_t none, dfl;
    sigemptyset(&none);
    sigemptyset(&dfl);
    sigaddset(&dfl, SIGPIPE);
    sigaddset(&dfl, SIGXFSZ);
    int r = posix_spawnattr_init(attr);
    if (r != 0)
        return -r;
    posix_spawnattr_setflags(attr, POSIX_SPAWN_SETPGROUP |
                                       POSIX_SPAWN_SETSIGMASK |
                                       POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setpgroup(attr, 0);
    posix_spawnattr_setsigmask(attr, &none);
    posix_spawnattr_setsigdefault(attr, &dfl);
    return 0;
}

/* ---- spawn --------------------------------------------------------------- */

static int start_child(cc_process *p, char *const argv[],
                       const cc_spawn_options *o, const stdio_plan *plan)
{
    char *const *envp = o->envp ? o->envp : environ;
    int r = cc__spawn_clone(&p->pid, argv, envp, o->cwd, plan->src,
                            plan->mode);
    if (r != -ENOSYS)
        return r;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    r = make_actions(&fa, plan, o->cwd);
    if (r < 0)
        return r;
    r = cc__spawn_attr_init(&attr);
    if (r == 0) {
        r = -posix_spawnp(&p->pid, argv[0], &fa, &attr, argv, envp);
        posix_spawnattr_destroy(&attr);
    }
    posix_spawn_file_actions_destroy(&fa);
    return r;
}

/* Without a pidfd the child cannot be managed: kill and reap it. */
static int open_pidfd(cc_process *p)
{
    p->pidfd = pidfd_open(p->pid, 0); /* close-on-exec by definition */
    if (p->pidfd >= 0)
        return 0;
    int err = -errno;
    kill(-p->pid, SIGKILL); /* unreaped, so the group is still the child's */
    while (waitpid(p->pid, NULL, 0) < 0 && errno == EINTR)
        ;
    return err;
}

static cc_process *process_new(void)
{
    cc_process *p = cc__calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->pid = -1;
    p->pidfd = -1;
    for (int i = 0; i < 3; i++)
        p->fds[i] = -1;
    return p;
}

static void close_fds(cc_process *p)
{
    for (int i = 0; i < 3; i++)
        cc__close_fd(&p->fds[i]);
    cc__close_fd(&p->pidfd);
}

int cc_process_spawn(cc_process **out, char *const argv[],
                     const cc_spawn_options *opts)
{
    static const cc_spawn_options defaults;
    if (!opts)
        opts = &defaults;
    if (!out || !argv || !argv[0] || check_stdio(opts) < 0)
        return -EINVAL;
    cc_process *p = process_new();
    if (!p)
        return -ENOMEM;
    stdio_plan plan = {.ntemp = 0};
    int r = make_plan(p, opts, &plan);
    if (r == 0)
        r = start_child(p, argv, opts, &plan);
    close_plan(&plan);
    if (r == 0)
        r = open_pidfd(p);
    if (r < 0) {
        close_fds(p);
        cc__free(p, sizeof *p);
        return r;
    }
    *out = p;
    return 0;
}

/* ---- accessors ----------------------------------------------------------- */

pid_t cc_process_pid(const cc_process *p) { return p->pid; }
int cc_process_pidfd(const cc_process *p) { return p->pidfd; }
int cc_process_stdin_fd(const cc_process *p) { return p->fds[0]; }
int cc_process_stdout_fd(const cc_process *p) { return p->fds[1]; }
int cc_process_stderr_fd(const cc_process *p) { return p->fds[2]; }

/* ---- reaping ------------------------------------------------------------- */

static int returncode_of(const siginfo_t *si)
{
    if (si->si_code == CLD_EXITED)
        return si->si_status;
    return -si->si_status; /* CLD_KILLED, CLD_DUMPED */
}

/* Reap the child if it has exited. Under p->lock. 0, -EAGAIN or -ECHILD. */
static int try_reap_locked(cc_process *p)
{
    if (p->reaped)
        return 0;
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int r;
    do
        r = waitid((idtype_t)P_PIDFD, (id_t)p->pidfd, &si, WEXITED | WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return -errno; /* ECHILD: the application reaped it */
    if (si.si_pid == 0)
        return -EAGAIN;
    p->reaped = true;
    p->returncode = returncode_of(&si);
    return 0;
}

int cc_process_poll(cc_process *p, int *returncode)
{
    cc__mutex_lock(&p->lock);
    int r = try_reap_locked(p);
    if (r == 0 && returncode)
        *returncode = p->returncode;
    cc__mutex_unlock(&p->lock);
    return r;
}

int cc_process_wait(cc_process *p, cc_deadline deadline, int *returncode)
{
    for (;;) {
        int r = cc_process_poll(p, returncode);
        if (r != -EAGAIN)
            return r;
        struct pollfd pfd = {.fd = p->pidfd, .events = POLLIN};
        r = cc__poll_wait(&pfd, 1, deadline);
        if (r < 0)
            return r;
    }
}

/* ---- signals ------------------------------------------------------------- */

int cc_process_send_signal(cc_process *p, int sig)
{
    cc__mutex_lock(&p->lock);
    int r = 0;
    if (!p->reaped && pidfd_send_signal(p->pidfd, sig, NULL, 0) < 0)
        r = errno == ESRCH ? 0 : -errno;
    cc__mutex_unlock(&p->lock);
    return r;
}

/* The child itself, if it left its group (setpgid into another group of
 * the session): kill(-pgid) missed it. Under p->lock, unreaped, so that its
 * pid is still its own. */
static int signal_if_left(cc_process *p, int sig)
{
    if (getpgid(p->pid) == p->pid)
        return 0;
    if (pidfd_send_signal(p->pidfd, sig, NULL, 0) < 0 && errno != ESRCH)
        return -errno;
    return 0;
}

/* Signal the whole group, and the child even if it left the group (as
 * Python's, whose terminate and kill signal the child); the lock keeps the
 * leader unreaped meanwhile. */
static int signal_group(cc_process *p, int sig)
{
    cc__mutex_lock(&p->lock);
    int r = 0;
    if (!p->reaped && kill(-p->pid, sig) < 0 && errno != ESRCH)
        r = -errno;
    if (!p->reaped && r == 0)
        r = signal_if_left(p, sig);
    cc__mutex_unlock(&p->lock);
    return r;
}

int cc_process_terminate(cc_process *p) { return signal_group(p, SIGTERM); }
int cc_process_kill(cc_process *p) { return signal_group(p, SIGKILL); }

/* ---- free ---------------------------------------------------------------- */

void cc_process_free(cc_process *p)
{
    if (!p)
        return;
    if (cc_process_poll(p, NULL) == -EAGAIN) {
        signal_group(p, SIGKILL);
        struct cc__protect pr; /* a cancelled task must still reap */
        cc__protect_begin(&pr);
        int r = cc_process_wait(p, CC_FOREVER, NULL);
        cc__protect_end(&pr);
        if (r < 0 && r != -ECHILD)
            cc__panic("cc_process_free: waiting for the killed child", r);
    }
    close_fds(p);
    cc__free(p, sizeof *p);
}
