/*
 * process_worker.c: worker processes running a registered function
 * (include/concur/process.h).
 *
 * DESIGN. The parent puts the argument in a memfd and makes a second, empty
 * memfd for the result. Spawn: posix_spawn runs /proc/self/exe with argv
 * "--concur-worker NAME PARENT_PID DAEMON NPASS", the argument memfd on fd
 * 3, the result memfd on fd 4 and the passed fds from 5 (each first lifted
 * above that range, so that one dup2 cannot clobber the source of the next;
 * then closefrom). cc_worker_main_hook in the new program recognises the
 * flag, looks the name up in the table both programs registered, reads the
 * argument and calls the function. Fork: the child calls the function with
 * the argument as it is in its copy of memory. Either way the child writes
 * the result's bytes at offset 16 of the result memfd, then a 16-byte header
 * (magic, length) at offset 0: a header is there only if the function
 * returned. The worker leads its own process group; a cc_process (the
 * subprocess module's object) then does the pidfd waiting, reaping and
 * group signalling, so that both modules follow one set of rules.
 */
#include "worker_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* ---- the table of worker functions --------------------------------------- */

/* One registered function. */
typedef struct entry {
    const char *name; /* the caller's string */
    cc_worker_fn fn;  /* what it names */
} entry;

static cc__mutex table_lock = CC__MUTEX_INIT; /* guards table and ntable */
static entry table[CC_WORKER_MAX_FUNCTIONS];  /* in registration order */
static size_t ntable;                         /* used entries */

static cc_worker_fn lookup_locked(const char *name)
{
    for (size_t i = 0; i < ntable; i++)
        if (!strcmp(table[i].name, name))
            return table[i].fn;
    return NULL;
}

cc_worker_fn cc__worker_lookup(const char *name)
{
    cc__mutex_lock(&table_lock);
    cc_worker_fn fn = lookup_locked(name);
    cc__mutex_unlock(&table_lock);
    return fn;
}

int cc_worker_register(const char *name, cc_worker_fn fn)
{
    if (!name || !*name || !fn)
        return -EINVAL;
    int r = 0;
    cc__mutex_lock(&table_lock);
    if (lookup_locked(name))
        r = -EEXIST;
    else if (ntable == CC_WORKER_MAX_FUNCTIONS)
        r = -ENOSPC;
    else
        table[ntable++] = (entry){name, fn};
    cc__mutex_unlock(&table_lock);
    return r;
}

void cc_worker_register_or_abort(const char *name, cc_worker_fn fn)
{
    CC__CHECK("cc_worker_register", cc_worker_register(name, fn));
}

/* ---- small helpers ------------------------------------------------------- */

int cc__pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
    for (size_t done = 0; done < len;) {
        ssize_t n = pwrite(fd, (const char *)buf + done, len - done,
                           off + (off_t)done);
        if (n < 0 && errno != EINTR)
            return -errno;
        done += n > 0 ? (size_t)n : 0;
    }
    return 0;
}

int cc__pread_all(int fd, void *buf, size_t len, off_t off)
{
    for (size_t done = 0; done < len;) {
        ssize_t n = pread(fd, (char *)buf + done, len - done,
                          off + (off_t)done);
        if (n == 0)
            return -EIO; /* shorter than promised */
        if (n < 0 && errno != EINTR)
            return -errno;
        done += n > 0 ? (size_t)n : 0;
    }
    return 0;
}

/* A memfd holding the len bytes at data. */
int cc__memfd_of(const char *what, const void *data, size_t len)
{
    int fd = memfd_create(what, MFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    int r = cc__pwrite_all(fd, data, len, 0);
    if (r < 0) {
        close(fd);
        return r;
    }
    return fd;
}

/* ---- the parent's side: the process -------------------------------------- */

/* A cc_process for the child pid (which leads its own group). Without a
 * pidfd the child cannot be managed: it is killed and reaped. */
static int adopt(cc_process *p, pid_t pid)
{
    p->pid = pid;
    p->pidfd = pidfd_open(pid, 0); /* close-on-exec by definition */
    for (int i = 0; i < 3; i++)
        p->fds[i] = -1;
    if (p->pidfd >= 0)
        return 0;
    int err = -errno;
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    return err;
}

/* The child's fds: fds[i] onto 3 + i from copies lifted above 3 + n, then
 * everything else closed. lifted[] receives the copies (n entries). */
static int make_actions(posix_spawn_file_actions_t *fa, const int *fds,
                        size_t n, int *lifted)
{
    int r = posix_spawn_file_actions_init(fa);
    if (r != 0)
        return -r;
    for (size_t i = 0; i < n && r == 0; i++) {
        lifted[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3 + (int)n);
        if (lifted[i] < 0)
            r = errno;
        else
            r = posix_spawn_file_actions_adddup2(fa, lifted[i], 3 + (int)i);
    }
    if (r == 0)
        r = posix_spawn_file_actions_addclosefrom_np(fa, 3 + (int)n);
    if (r == 0) /* as Python's workers: no reading the terminal */
        r = posix_spawn_file_actions_addopen(fa, 0, "/dev/null", O_RDONLY, 0);
    if (r != 0)
        posix_spawn_file_actions_destroy(fa);
    return -r;
}

static int exec_worker(pid_t *pid, const char *name, const int *fds, size_t n,
                       bool daemon)
{
    int lifted[CC__WORKER_MAX_PASS_FDS + 2];
    memset(lifted, -1, sizeof lifted);
    char parent[24], npass[24];
    snprintf(parent, sizeof parent, "%ld", (long)getpid());
    snprintf(npass, sizeof npass, "%zu", n - 2);
    char *argv[] = {program_invocation_name, CC__WORKER_FLAG, (char *)name,
                    parent, daemon ? "1" : "0", npass, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    int r = make_actions(&fa, fds, n, lifted);
    if (r == 0) {
        r = cc__spawn_attr_init(&attr);
        if (r == 0) {
            r = -posix_spawn(pid, "/proc/self/exe", &fa, &attr, argv, environ);
            posix_spawnattr_destroy(&attr);
        }
        posix_spawn_file_actions_destroy(&fa);
    }
    for (size_t i = 0; i < n; i++)
        cc__close_fd(&lifted[i]);
    return r;
}

/* Spawn: the argument in a memfd on fd 3, the result memfd on 4, passed fds
 * from 5. */
static int start_spawn(pid_t *pid, const cc_worker *w, const char *name,
                       const void *arg, size_t len, const cc_worker_options *o)
{
    int fds[CC__WORKER_MAX_PASS_FDS + 2];
    int argfd = cc__memfd_of("concur-worker-arg", arg, len);
    if (argfd < 0)
        return argfd;
    fds[0] = argfd;
    fds[1] = w->result_fd;
    for (size_t i = 0; i < o->npass_fds; i++)
        fds[2 + i] = o->pass_fds[i];
    int r = exec_worker(pid, name, fds, 2 + o->npass_fds, o->daemon);
    close(argfd);
    return r;
}

static int count_threads(void)
{
    int n = 0;
    char buf[512];
    FILE *f = fopen("/proc/self/status", "re");
    while (f && fgets(buf, sizeof buf, f))
        if (sscanf(buf, "Threads: %d", &n) == 1)
            break;
    if (f)
        fclose(f);
    return n;
}

cc__atomic_u32 cc__worker_quiet_threads;

void cc__worker_warn_if_threaded(const char *what)
{
    static cc__atomic_u32 warned; /* 1 once the warning is out */
    /* relaxed: a count and a flag, nothing published with them. */
    int n = count_threads() - (int)cc__load_relaxed(&cc__worker_quiet_threads);
    if (n > 1 && cc__load_relaxed(&warned) == 0 &&
        atomic_exchange_explicit(&warned, 1, memory_order_relaxed) == 0)
        fprintf(stderr, "concur: warning: %s forked from a process with %d "
                        "other threads; locks they hold stay locked in the "
                        "child (use the spawn start method; this warning is "
                        "given once)\n", what, n - 1);
}

static int start_fork(pid_t *pid, const cc_worker *w, cc_worker_fn fn,
                      const void *arg, size_t len, const cc_worker_options *o)
{
    pid_t parent = getpid();
    cc__worker_warn_if_threaded("a worker is");
    fflush(NULL); /* or the child would write the parent's buffers again */
    /* The table's lock is held across the fork, so that the child does not
     * inherit it locked by another thread (its lookups would hang). */
    cc__mutex_lock(&table_lock);
    *pid = fork();
    int e = errno;
    cc__mutex_unlock(&table_lock);
    if (*pid < 0)
        return -e;
    if (*pid == 0) {
        cc__worker_child_setup(o->daemon, parent, o->pass_fds, o->npass_fds);
        cc__worker_run_and_exit(fn, arg, len, w->result_fd);
    }
    setpgid(*pid, *pid); /* as the child does: whoever is first wins */
    return 0;
}

/* ---- the parent's side: start and the rest ------------------------------- */

static int check_options(const void *arg, size_t len,
                         const cc_worker_options *o)
{
    if ((!arg && len > 0) || o->npass_fds > CC__WORKER_MAX_PASS_FDS ||
        (!o->pass_fds && o->npass_fds > 0) ||
        (o->start_method != CC_START_SPAWN && o->start_method != CC_START_FORK &&
         o->start_method != CC_START_FORKSERVER))
        return -EINVAL;
    for (size_t i = 0; i < o->npass_fds; i++)
        if (fcntl(o->pass_fds[i], F_GETFD) < 0)
            return -EBADF;
    return 0;
}

/* Start the child of a spawn or fork worker, and adopt it. */
static int start_child(cc_worker *w, const char *name, cc_worker_fn fn,
                       const void *arg, size_t len, const cc_worker_options *o)
{
    cc_process *p = cc__calloc(1, sizeof *p);
    pid_t pid;
    if (!p)
        return -ENOMEM;
    int r = o->start_method == CC_START_FORK
                ? start_fork(&pid, w, fn, arg, len, o)
                : start_spawn(&pid, w, name, arg, len, o);
    if (r == 0)
        r = adopt(p, pid);
    if (r < 0) {
        cc__free(p, sizeof *p);
        return r;
    }
    w->proc = p;
    return 0;
}

static int worker_start(cc_worker **out, const char *name, cc_worker_fn fn,
                        const void *arg, size_t len,
                        const cc_worker_options *o)
{
    cc_worker *w = cc__calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    int r = 0;
    w->served.pidfd = -1;
    w->result_fd = memfd_create("concur-worker-result", MFD_CLOEXEC);
    if (w->result_fd < 0)
        r = -errno;
    else if (o->start_method == CC_START_FORKSERVER)
        r = cc__served_start(w, fn, arg, len, o);
    else
        r = start_child(w, name, fn, arg, len, o);
    if (r < 0) {
        cc__close_fd(&w->result_fd);
        cc__free(w, sizeof *w);
        return r;
    }
    *out = w;
    return 0;
}

int cc_worker_start(cc_worker **out, const char *name, const void *arg,
                    size_t arg_len, const cc_worker_options *opts)
{
    static const cc_worker_options defaults;
    const cc_worker_options *o = opts ? opts : &defaults;
    if (!out || !name)
        return -EINVAL;
    int r = check_options(arg, arg_len, o);
    cc_worker_fn fn = cc__worker_lookup(name);
    if (r < 0)
        return r;
    if (!fn)
        return -ENOENT;
    return worker_start(out, name, fn, arg, arg_len, o);
}

int cc_worker_start_fn(cc_worker **out, cc_worker_fn fn, const void *arg,
                       size_t arg_len, const cc_worker_options *opts)
{
    if (!out || !fn || !opts || opts->start_method == CC_START_SPAWN)
        return -EINVAL;
    int r = check_options(arg, arg_len, opts);
    return r < 0 ? r : worker_start(out, NULL, fn, arg, arg_len, opts);
}

/* ---- the rest: a cc_process, or the forkserver for a served worker ----- */

pid_t cc_worker_pid(const cc_worker *w)
{
    return w->proc ? cc_process_pid(w->proc) : w->served.pid;
}

int cc_worker_join(cc_worker *w, cc_deadline deadline, int *exitcode)
{
    if (!w->proc)
        return cc__served_join(w, deadline, exitcode);
    return cc_process_wait(w->proc, deadline, exitcode);
}

bool cc_worker_is_alive(cc_worker *w)
{
    return cc_worker_join(w, CC_NOWAIT, NULL) == -ETIMEDOUT;
}

static int signal_worker(cc_worker *w, int sig)
{
    if (!w->proc)
        return cc__served_signal(w, sig);
    return sig == SIGKILL ? cc_process_kill(w->proc)
                          : cc_process_terminate(w->proc);
}

int cc_worker_terminate(cc_worker *w) { return signal_worker(w, SIGTERM); }
int cc_worker_kill(cc_worker *w) { return signal_worker(w, SIGKILL); }

int cc_worker_result(cc_worker *w, cc_bytes *out)
{
    int r = cc_worker_join(w, CC_NOWAIT, NULL);
    if (r < 0)
        return r == -ETIMEDOUT ? -EAGAIN : r;
    uint64_t header[2] = {0, 0};
    struct stat st;
    if (fstat(w->result_fd, &st) < 0)
        return -errno;
    if ((size_t)st.st_size < CC__RESULT_HEADER ||
        cc__pread_all(w->result_fd, header, sizeof header, 0) < 0 ||
        header[0] != CC__RESULT_MAGIC)
        return -ENODATA;
    if (header[1] > (uint64_t)st.st_size - CC__RESULT_HEADER)
        return -EIO;
    if (header[1] == 0)
        return cc_bytes_append(out, NULL, 0);
    void *map = mmap(NULL, CC__RESULT_HEADER + header[1], PROT_READ, MAP_SHARED,
                     w->result_fd, 0);
    if (map == MAP_FAILED)
        return -errno;
    r = cc_bytes_append(out, (char *)map + CC__RESULT_HEADER, header[1]);
    munmap(map, CC__RESULT_HEADER + header[1]);
    return r;
}

void cc_worker_free(cc_worker *w)
{
    if (!w)
        return;
    if (w->proc)
        cc_process_free(w->proc);
    else
        cc__served_free(w);
    cc__close_fd(&w->result_fd);
    cc__free(w, sizeof *w);
}
