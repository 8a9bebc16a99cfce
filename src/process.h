/*
 * process.h: the cc_process object, shared by subprocess.c (spawn, wait,
 * signals) and communicate.c (communicate, run). Not installed.
 */
#ifndef CONCUR_PROCESS_H
#define CONCUR_PROCESS_H

#include "concur/subprocess.h"
#include "internal.h"
#include "wait.h"

#include <poll.h>
#include <spawn.h>

struct cc_process {
    cc__mutex lock;   /* guards reaped and returncode; held across the
                           reaping waitid and every kill(-pgid), so that no
                           group is signalled after its leader was reaped */
    bool reaped;      /* the exit status was collected; the pid is dead */
    int returncode;   /* exit status or -signal, once reaped */
    pid_t pid;        /* the child; also its process group id */
    int pidfd;        /* from pidfd_open: readable at exit, signals safely */
    int fds[3];       /* parent ends of the stdin/stdout/stderr pipes, or -1 */
    bool stdin_piped; /* stdin was made a pipe (communicate accepts input) */
    bool communicating; /* communicate has started: input_off is meaningful */
    size_t input_off;   /* bytes of communicate's input already written */
};

/* cc__close_fd: close *fd if open and set it to -1. */
void cc__close_fd(int *fd);

/*
 * cc__poll_until: ppoll until an fd is ready or the deadline passes; restarts
 * after signals. Returns the number of ready fds (> 0), or -ETIMEDOUT (never
 * before the deadline), or -ENOMEM.
 */
int cc__poll_until(struct pollfd *fds, nfds_t n, cc_deadline deadline);

/* cc__poll_wait: as cc__poll_until, but inside an event-loop task it parks
 * the task (cc__wait_fds) and may also fail with -ECANCELED (or -ETIMEDOUT
 * from a deadline scope); with a deadline already past it only looks, in a
 * task too (never blocks). */
int cc__poll_wait(struct pollfd *fds, nfds_t n, cc_deadline deadline);

/*
 * cc__spawn_attr_init: the attributes of every child concur spawns: its own
 * process group, an empty signal mask, SIGPIPE and SIGXFSZ back to their
 * default (as Python's restore_signals; other ignored signals stay ignored).
 * Returns 0 or a negative errno; destroy with posix_spawnattr_destroy.
 */
int cc__spawn_attr_init(posix_spawnattr_t *attr);

/*
 * cc__spawn_clone: start argv (envp; in cwd unless NULL) with fds 0-2 set
 * as mode[i] says (cc_stdio_mode; src[i] the source of PIPE and FD, else
 * -1), with cc__spawn_attr_init's attributes, and without copying the fd
 * table (src/linux/spawn_clone.c). Returns 0 with *pid, -ENOSYS when this
 * way is not available (use posix_spawn), or the exec's negative errno.
 */
int cc__spawn_clone(pid_t *pid, char *const argv[], char *const envp[],
                    const char *cwd, const int src[3], const int mode[3]);

#endif
