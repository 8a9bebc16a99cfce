/*
 * process_worker_child.c: the worker's side of worker processes
 * (include/concur/process.h): cc_worker_main_hook for spawned workers, the
 * set-up of forked ones, running the function and delivering its result.
 *
 * DESIGN. However the worker was made, it ends in cc__worker_run_and_exit:
 * call the function, write the result's bytes at offset 16 of the result
 * memfd, then a 16-byte header (magic, length) at offset 0, so that a header
 * is there only if the function returned; flush stdio; _exit with the
 * function's code (no atexit handlers: they belong to the parent's program).
 * A spawned worker is recognised by its argv (CC__WORKER_FLAG), finds its
 * argument memfd, result memfd and passed fds at fixed numbers (3, 4, 5...)
 * and its function by name in the table the program registered.
 */
#include "worker_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

/* The fds a worker was passed: where they are in this process. */
static int passed_fds[CC__WORKER_MAX_PASS_FDS]; /* set before the function */
static size_t npassed;                          /* entries of passed_fds */

int cc_worker_passed_fd(size_t i) { return i < npassed ? passed_fds[i] : -1; }

/* Die with the parent: the kernel's parent-death signal, then a look at
 * whether the parent was already gone before it was armed. */
static void follow_parent(pid_t parent)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
        raise(SIGKILL);
}

static void set_passed(const int *fds, size_t n)
{
    for (npassed = 0; npassed < n; npassed++)
        passed_fds[npassed] = fds[npassed];
}

void cc__worker_child_setup(bool daemon, pid_t parent, const int *fds,
                            size_t n)
{
    sigset_t none;
    sigemptyset(&none);
    setpgid(0, 0);
    int null = open("/dev/null", O_RDONLY); /* stdin, as under spawn */
    if (null > 0) {
        dup2(null, 0);
        close(null);
    }
    pthread_sigmask(SIG_SETMASK, &none, NULL);
    if (daemon)
        follow_parent(parent);
    set_passed(fds, n);
}

static int write_result(int fd, const cc_bytes *result)
{
    uint64_t header[2] = {CC__RESULT_MAGIC, result->len};
    int r = cc__pwrite_all(fd, result->data, result->len, CC__RESULT_HEADER);
    return r < 0 ? r : cc__pwrite_all(fd, header, sizeof header, 0);
}

_Noreturn void cc__worker_run_and_exit(cc_worker_fn fn, const void *arg,
                                       size_t len, int result_fd)
{
    cc_bytes result = {0};
    int code = fn(arg, len, &result);
    int r = write_result(result_fd, &result);
    if (r < 0) {
        fprintf(stderr, "concur: worker: writing the result: %s\n",
                cc_strerror(r));
        code = 126;
    }
    fflush(NULL);
    _exit(code >= 0 && code <= 255 ? code : 1);
}

_Noreturn void cc__worker_fail(int code, const char *what, const char *why)
{
    fprintf(stderr, "concur: worker: %s: %s\n", what, why);
    fflush(NULL);
    _exit(code);
}

int cc__worker_read_arg(int fd, void **arg, size_t *len)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    *len = (size_t)st.st_size;
    *arg = cc__malloc(*len ? *len : 1); /* lives until _exit */
    if (!*arg)
        return -ENOMEM;
    return cc__pread_all(fd, *arg, *len, 0);
}

/* argv: prog CC__WORKER_FLAG name parent_pid daemon npass. */
static _Noreturn void spawned_worker_main(char **argv)
{
    int fds[CC__WORKER_MAX_PASS_FDS];
    size_t n = strtoul(argv[5], NULL, 10);
    if (n > CC__WORKER_MAX_PASS_FDS)
        cc__worker_fail(126, "bad arguments", argv[5]);
    if (argv[4][0] == '1')
        follow_parent((pid_t)atol(argv[3]));
    for (size_t i = 0; i < n; i++)
        fds[i] = CC__WORKER_PASS_FD_BASE + (int)i;
    set_passed(fds, n);
    cc_worker_fn fn = cc__worker_lookup(argv[2]);
    if (!fn)
        cc__worker_fail(127, argv[2], "no worker function of that name");
    void *arg = NULL;
    size_t len = 0;
    int r = cc__worker_read_arg(CC__WORKER_ARG_FD, &arg, &len);
    if (r < 0)
        cc__worker_fail(126, "reading the argument", cc_strerror(r));
    close(CC__WORKER_ARG_FD);
    cc__worker_run_and_exit(fn, arg, len, CC__WORKER_RESULT_FD);
}

void cc_worker_main_hook(int argc, char **argv)
{
    if (argc == 6 && argv && argv[1] && !strcmp(argv[1], CC__WORKER_FLAG))
        spawned_worker_main(argv);
}
