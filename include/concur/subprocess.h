/*
 * concur/subprocess.h: child processes (Python's subprocess.Popen and run).
 *
 * OWNER: the subprocess helper fills in docstrings and may add functions; the
 * signatures below are relied on by the CLI and must stay.
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

/* A growable byte buffer filled by communicate and run; free with cc_bytes_free. */
typedef struct cc_bytes {
    char *data; /* NUL-terminated for convenience (not counted in len) */
    size_t len; /* bytes */
} cc_bytes;

void cc_bytes_free(cc_bytes *b);

int cc_process_spawn(cc_process **out, char *const argv[], const cc_spawn_options *opts);
pid_t cc_process_pid(const cc_process *p);
int cc_process_pidfd(const cc_process *p);
int cc_process_stdin_fd(const cc_process *p);  /* -1 unless CC_STDIO_PIPE */
int cc_process_stdout_fd(const cc_process *p); /* -1 unless CC_STDIO_PIPE */
int cc_process_stderr_fd(const cc_process *p); /* -1 unless CC_STDIO_PIPE */
int cc_process_wait(cc_process *p, cc_deadline deadline, int *returncode);
int cc_process_poll(cc_process *p, int *returncode);
int cc_process_send_signal(cc_process *p, int sig);
int cc_process_terminate(cc_process *p);
int cc_process_kill(cc_process *p);
int cc_process_communicate(cc_process *p, const void *input, size_t input_len,
                           cc_deadline deadline, cc_bytes *out, cc_bytes *err);
void cc_process_free(cc_process *p);

#ifdef __cplusplus
}
#endif
#endif
