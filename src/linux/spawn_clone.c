/*
 * spawn_clone.c: cc_process_spawn's child started without copying the
 * parent's fd table (subprocess.c falls back to posix_spawn where this way
 * is not available).
 *
 * DESIGN. posix_spawn's child gets a copy of the whole fd table and closes
 * what it inherited (closefrom, or exec's close-on-exec): about 0.15 µs per
 * fd open in the parent, so +1.9 ms per spawn with 10,000 open sockets,
 * +0.3 ms per job at `concur run -j1000` (docs/benchmarks.md). Here the
 * child shares the parent's table (clone CLONE_VM | CLONE_VFORK |
 * CLONE_FILES) and its first act is close_range(keep, ~0U,
 * CLOSE_RANGE_UNSHARE): the kernel gives it a private table holding only
 * fds 0 to keep - 1 and drops its reference to the shared one, without
 * closing anything. So the stdio sources must sit below keep: three slots,
 * the lowest fds above 2 free at the first spawn (close-on-exec, holding
 * /dev/null), into which the parent dup3s the sources under a mutex, and
 * which it points back at /dev/null once the child has exec'd (else a pipe
 * end would stay open in the parent). The program may close them (a
 * closefrom after a fork) and reuse their numbers: each spawn checks that
 * they are still ours and opens new ones if not. If the slots come out
 * high (the process had many fds before its first spawn), or the kernel
 * lacks CLOSE_RANGE_UNSHARE (before 5.9), posix_spawn it is, for good.
 *
 * The child runs on this file's own stack, in the parent's memory, while
 * the parent's thread waits (CLONE_VFORK): it makes raw system calls only,
 * and is not instrumented (no sanitizer may see a second thread of control
 * on memory it thinks is the parent's). As glibc's posix_spawn: all
 * signals blocked across the clone, the child resets every handler to the
 * default before it unblocks (a handler must never run in the child,
 * which shares the parent's memory), SIGPIPE and SIGXFSZ to the default
 * (cc__spawn_attr_init's attributes), its own process group, the stdio
 * dup3s, fds 3 and up closed (posix_spawn's closefrom(3)), chdir, then
 * execve over the PATH candidates (the parent's PATH, searched as execvp:
 * EACCES wins over ENOENT). An error comes back in memory, not as an exit
 * status of 127.
 */
#include "../process.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_UNSHARE
#define CLOSE_RANGE_UNSHARE (1U << 1)
#endif

/* ThreadSanitizer intercepts clone, and its bookkeeping of a CLONE_VM
 * child upsets the parent's (it reported our mutex locked twice at the
 * second spawn). Under TSan, posix_spawn it is. */
#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#ifndef UNDER_TSAN
#define UNDER_TSAN 0
#endif

enum {
    SLOT_LIMIT = 64,         /* slots above this: copying fds 0..slot
                                costs what posix_spawn costs */
    STACK_SIZE = 64 * 1024,  /* the child's stack */
    NO_UNSHARE = -1,         /* child's err: close_range refused */
};

/* The process's slots; under `lock`. state: 0 not tried, 1 ready,
 * -1 this way is not available (posix_spawn). */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int state;
static int slot[3] = {-1, -1, -1}, nullfd = -1;
static char *stack;

/* A fork (the "fork" start method) may copy the mutex held: the child
 * process starts with it free and the slots as they were. */
static void after_fork_in_child(void) { pthread_mutex_init(&lock, NULL); }

/* Our /dev/null is opened with flags no program opens it with: with its
 * device number, the mark by which we know our fds again. */
#define NULL_FLAGS (O_RDWR | O_APPEND | O_NONBLOCK | O_DSYNC)
static dev_t null_rdev;

/* fd is still one of ours: the program has not closed it (closefrom after
 * a fork, a daemon's close-all loop) and reused the number. */
static bool ours(int fd)
{
    struct stat st;
    int fl = fcntl(fd, F_GETFL);
    return fl >= 0 && (fl & (O_ACCMODE | NULL_FLAGS)) == NULL_FLAGS &&
           fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) &&
           st.st_rdev == null_rdev;
}

static bool fds_intact(void)
{
    return ours(nullfd) && ours(slot[0]) && ours(slot[1]) && ours(slot[2]);
}

/* Close those of our fds that are still ours; forget the others' numbers
 * (the program's now: a dup3 onto them would replace its files). */
static void drop_fds(void)
{
    int *fds[4] = {&nullfd, &slot[0], &slot[1], &slot[2]};
    for (int i = 0; i < 4; i++) {
        if (*fds[i] >= 0 && ours(*fds[i]))
            close(*fds[i]);
        *fds[i] = -1;
    }
}

/* /dev/null above 2: fds 0-2 are the program's even while closed (it may
 * close(0) and open() to reopen its stdin, or dup2 onto them). */
static int open_null(void)
{
    struct stat st;
    int fd = open("/dev/null", NULL_FLAGS | O_CLOEXEC);
    if (fd >= 0 && fd < 3) {
        int high = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        close(fd);
        fd = high;
    }
    if (fd >= 0 && fstat(fd, &st) < 0) {
        close(fd);
        fd = -1;
    }
    null_rdev = fd >= 0 ? st.st_rdev : 0;
    return fd;
}

/* nullfd and the slots: 1, or -1 if they came out high (or failed). */
static int open_fds(void)
{
    nullfd = open_null();
    if (nullfd < 0)
        return -1;
    int made = 0;
    while (made < 3) {
        slot[made] = fcntl(nullfd, F_DUPFD_CLOEXEC, 3);
        if (slot[made] < 0 || slot[made] >= SLOT_LIMIT)
            break;
        made++;
    }
    if (made < 3) /* the process keeps none */
        drop_fds();
    return made == 3 ? 1 : -1;
}

/* The posix_spawn-only cases, and the fork handler, settled once before
 * the lock is first taken: a fork can then never copy it held without the
 * handler that frees it in the child (the handler was registered under
 * the lock at the first spawn, and not at all with posix_spawn forced,
 * which still took the lock at every spawn). */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static bool disabled; /* posix_spawn always; written once, in at_first */

static void at_first(void)
{
    const char *force = getenv("CONCUR_SPAWN");
    disabled = UNDER_TSAN || (force && strcmp(force, "posix_spawn") == 0) ||
               pthread_atfork(NULL, NULL, after_fork_in_child) != 0;
}

/* The child calls syscall and __errno_location through the PLT: bind both
 * here, so that the dynamic linker's lazy binding never runs in the child
 * (on the parent's memory and thread pointer, while the parent waits). */
static void bind_child_calls(void)
{
    int saved = errno;
    (void)syscall(SYS_getpid);
    errno = saved;
}

static int init_locked(void)
{
    bind_child_calls();
    stack = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) {
        stack = NULL;
        return -1;
    }
    return open_fds();
}

/* The slots ready (1), or -1: posix_spawn. Our fds are checked at every
 * spawn (8 cheap system calls beside the clone and the exec) and opened
 * again if the program closed them. Under lock. */
static int ready_locked(void)
{
    if (state == 0)
        return init_locked();
    if (state > 0 && !fds_intact()) {
        drop_fds();
        return open_fds();
    }
    return state;
}

/* The kernel's struct sigaction (rt_sigaction takes this, not libc's). */
struct ksigaction {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)(void);
    uint64_t mask;
};

/* What the child needs; filled by the parent, err written by the child. */
struct child {
    const int *mode;   /* cc_stdio_mode of fds 0, 1, 2 */
    const int *src;    /* their sources (-1: none), now in slot[i] */
    unsigned keep;     /* fds below this survive the unshare */
    const char *cwd;   /* or NULL */
    char *const *argv, *const *envp;
    char *paths;       /* NUL-separated execve candidates */
    size_t npaths;     /* their count */
    size_t paths_size; /* paths' allocated size */
    int err;           /* the child's failure (errno), or 0 */
};

#define NOSAN __attribute__((no_sanitize("address", "thread", "undefined")))

NOSAN static long sys(long nr, long a, long b, long c, long d)
{
    return syscall(nr, a, b, c, d);
}

NOSAN static __attribute__((noreturn)) void fail(struct child *c, int err)
{
    c->err = err;
    syscall(SYS_exit_group, 127);
    __builtin_unreachable();
}

NOSAN static void reset_signals(void)
{
    for (long sig = 1; sig <= 64; sig++) {
        struct ksigaction old, dfl = {.handler = SIG_DFL};
        if (sig == SIGKILL || sig == SIGSTOP ||
            sys(SYS_rt_sigaction, sig, 0, (long)&old, 8) < 0)
            continue;
        bool to_default = old.handler != SIG_DFL &&
                          (old.handler != SIG_IGN || sig == SIGPIPE ||
                           sig == SIGXFSZ);
        if (to_default)
            sys(SYS_rt_sigaction, sig, (long)&dfl, 0, 8);
    }
}

NOSAN static void set_stdio(struct child *c)
{
    static const int devnull_flags[3] = {O_RDONLY, O_WRONLY, O_WRONLY};
    for (long i = 0; i < 3; i++) {
        long from = -1;
        if (c->mode[i] == CC_STDIO_DEVNULL) { /* as posix_spawn's addopen */
            from = sys(SYS_openat, AT_FDCWD, (long)"/dev/null",
                       devnull_flags[i], 0);
            if (from < 0)
                fail(c, errno);
            if (from == i)
                continue; /* fd i was closed: the open took its place */
        } else if (c->mode[i] == CC_STDIO_STDOUT) {
            from = 1; /* set by now */
        } else if (c->src[i] >= 0) {
            from = slot[i];
        }
        if (from >= 0 && sys(SYS_dup3, from, i, 0, 0) < 0)
            fail(c, errno);
        if (c->mode[i] == CC_STDIO_DEVNULL)
            sys(SYS_close, from, 0, 0, 0);
    }
}

NOSAN static int child_main(void *arg)
{
    struct child *c = arg;
    if (sys(SYS_close_range, c->keep, ~0U, CLOSE_RANGE_UNSHARE, 0) < 0)
        fail(c, NO_UNSHARE); /* the parent falls back to posix_spawn */
    reset_signals();
    if (sys(SYS_setpgid, 0, 0, 0, 0) < 0)
        fail(c, errno);
    set_stdio(c);
    /* As posix_spawn's closefrom(3): the slots, and whatever else sat
     * below keep, inheritable or not. Cheap: the table is small now. */
    sys(SYS_close_range, 3, ~0U, 0, 0);
    if (c->cwd && sys(SYS_chdir, (long)c->cwd, 0, 0, 0) < 0)
        fail(c, errno);
    uint64_t none = 0;
    sys(SYS_rt_sigprocmask, SIG_SETMASK, (long)&none, 0, 8);
    int err = ENOENT;
    bool eacces = false;
    const char *p = c->paths;
    for (size_t i = 0; i < c->npaths; i++) {
        sys(SYS_execve, (long)p, (long)c->argv, (long)c->envp, 0);
        err = errno;
        if (err == EACCES)
            eacces = true;
        else if (err != ENOENT && err != ESTALE && err != ENOTDIR &&
                 err != ENODEV && err != ETIMEDOUT)
            fail(c, err); /* as execvp: a file found but not runnable */
        while (*p++)
            ;
    }
    fail(c, eacces ? EACCES : err);
}

/* The execve candidates for file, as execvp (a name with a slash as it is,
 * else each directory of the parent's PATH): NUL-separated in c->paths
 * (cc__free it, c->paths_size), their count in c->npaths. 0 or -ENOMEM. */
static int candidates(const char *file, struct child *c)
{
    const char *path = strchr(file, '/') ? "" : getenv("PATH");
    if (!path)
        path = "/bin:/usr/bin";
    size_t flen = strlen(file), dirs = 1;
    for (const char *s = path; *s; s++)
        dirs += *s == ':';
    c->paths_size = strlen(path) + dirs * (flen + 3) + 1;
    char *w = c->paths = cc__malloc(c->paths_size);
    if (!w)
        return -ENOMEM;
    c->npaths = dirs;
    if (!*path) { /* a name with a slash */
        memcpy(w, file, flen + 1);
        return 0;
    }
    for (const char *s = path;; s++) {
        const char *e = strchrnul(s, ':');
        if (e == s)
            *w++ = '.'; /* an empty entry: the current directory */
        memcpy(w, s, (size_t)(e - s));
        w += e - s;
        *w++ = '/';
        memcpy(w, file, flen + 1);
        w += flen + 1;
        s = e;
        if (!*e)
            break;
    }
    return 0;
}

static int max3(int a, int b, int c)
{
    int m = a > b ? a : b;
    return m > c ? m : c;
}

/* Point each slot used at its source, or back at /dev/null. */
static int fill_slots(const int src[3], bool reset)
{
    for (int i = 0; i < 3; i++)
        if (src[i] >= 0 &&
            dup3(reset ? nullfd : src[i], slot[i], O_CLOEXEC) < 0)
            return -errno;
    return 0;
}

int cc__spawn_clone(pid_t *pid, char *const argv[], char *const envp[],
                    const char *cwd, const int src[3], const int mode[3])
{
    struct child c = {.mode = mode, .src = src, .cwd = cwd, .argv = argv,
                      .envp = envp};
    if (!*argv[0])
        return -ENOENT; /* as execvp */
    pthread_once(&once, at_first);
    if (disabled)
        return -ENOSYS; /* and tests of the fallback */
    int r = candidates(argv[0], &c);
    if (r < 0)
        return r;
    pthread_mutex_lock(&lock);
    state = ready_locked();
    r = state > 0 ? fill_slots(src, false) : -ENOSYS;
    if (r < 0 && state > 0) {
        /* EBADF: a source not open, which posix_spawn reports as well, or
         * a slot at or above an RLIMIT_NOFILE lowered since the slots were
         * made, which posix_spawn does not care about: let it do this one. */
        fill_slots(src, true); /* drop what the others hold */
        r = -ENOSYS;
    }
    pid_t child = -1;
    if (r == 0) {
        c.keep = (unsigned)max3(slot[0], slot[1], slot[2]) + 1;
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        child = clone(child_main, stack + STACK_SIZE,
                      CLONE_VM | CLONE_VFORK | CLONE_FILES | SIGCHLD, &c);
        r = child < 0 ? -errno : 0;
        if (r == -EINVAL || r == -ENOSYS || r == -EPERM) {
            state = -1; /* refused (seccomp?): posix_spawn from now on */
            r = -ENOSYS;
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        fill_slots(src, true);
    }
    if (r == 0 && c.err == NO_UNSHARE)
        state = -1; /* before Linux 5.9: posix_spawn from now on */
    pthread_mutex_unlock(&lock);
    cc__free(c.paths, c.paths_size);
    if (r < 0)
        return r;
    if (c.err) { /* it never exec'd: reap it */
        while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
            ;
        return c.err == NO_UNSHARE ? -ENOSYS : -c.err;
    }
    *pid = child;
    return 0;
}
