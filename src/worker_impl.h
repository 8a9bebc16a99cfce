/*
 * worker_impl.h: what the worker-process files share (process_worker.c: the
 * table, start, join; process_worker_child.c: the child's side;
 * process_forkserver.c: the forkserver). Not installed.
 */
#ifndef CONCUR_WORKER_IMPL_H
#define CONCUR_WORKER_IMPL_H

#include "concur/process.h"
#include "process.h"

#define CC__WORKER_FLAG "--concur-worker"
#define CC__WORKER_ARG_FD 3       /* the argument memfd in a spawned worker */
#define CC__WORKER_RESULT_FD 4    /* the result memfd in a spawned worker */
#define CC__WORKER_PASS_FD_BASE 5 /* the first passed fd in a spawned worker */
#define CC__WORKER_MAX_PASS_FDS 64 /* documented limit of npass_fds */
#define CC__RESULT_MAGIC 0x636f6e6375727265ull /* "concurre": a result */
#define CC__RESULT_HEADER 16 /* magic and length, before the result */

/* A worker started through the forkserver: the server is its parent and
 * reaps it; its exit code comes from the server. */
typedef struct cc__served {
    pid_t pid;             /* the worker, also its process group */
    int pidfd;             /* readable once it has exited */
    bool exited;           /* code is known (under the forkserver's lock) */
    int code;              /* exit status or -signal, once exited */
    struct cc_worker *next; /* the forkserver's list of live workers */
} cc__served;

struct cc_worker {
    cc_process *proc;  /* spawn, fork: the child; NULL for a served one */
    int result_fd;     /* memfd the child writes its result to */
    cc__served served; /* forkserver workers only */
};

/* ---- the child's side (process_worker_child.c) ---------------------------- */

/* Own process group, empty signal mask, stdin on /dev/null; for a daemon,
 * death with `parent`; remember the n passed fds (cc_worker_passed_fd). */
void cc__worker_child_setup(bool daemon, pid_t parent, const int *fds,
                            size_t n);

/* Read the whole memfd fd into a new buffer (*len bytes). */
int cc__worker_read_arg(int fd, void **arg, size_t *len);

/* Run fn, deliver its result into result_fd, exit with its code. */
_Noreturn void cc__worker_run_and_exit(cc_worker_fn fn, const void *arg,
                                       size_t len, int result_fd);

/* Print the failure and exit with code. */
_Noreturn void cc__worker_fail(int code, const char *what, const char *why);

/* ---- the parent's side (process_worker.c) -------------------------------- */

/* The function registered under name, or NULL. */
cc_worker_fn cc__worker_lookup(const char *name);

/* A warning on stderr, once per process, when the process has threads
 * other than the caller and concur's quiet ones. */
void cc__worker_warn_if_threaded(const char *what);

/* Threads of concur's own that run no user code and whose locks a forked
 * worker never takes (the process pools' feeders): not counted by the
 * warning above (relaxed: only a count). */
extern cc__atomic_u32 cc__worker_quiet_threads;

/* pwrite / pread all of buf at off, restarting; 0 or -errno (-EIO: the
 * file ended first). */
int cc__pwrite_all(int fd, const void *buf, size_t len, off_t off);
int cc__pread_all(int fd, void *buf, size_t len, off_t off);

/* A close-on-exec memfd holding the len bytes at data, or -errno. */
int cc__memfd_of(const char *what, const void *data, size_t len);

/* ---- the forkserver (process_forkserver.c) ------------------------------- */

/* Start a worker through the forkserver (started now if need be): w's
 * result_fd is set; w->served is filled in and w registered. */
int cc__served_start(cc_worker *w, cc_worker_fn fn, const void *arg,
                     size_t len, const cc_worker_options *o);
int cc__served_join(cc_worker *w, cc_deadline deadline, int *code);
int cc__served_signal(cc_worker *w, int sig);
void cc__served_free(cc_worker *w); /* kills, waits and unregisters */

#endif
