/*
 * concur/thread.h: OS threads with names, deadlines on join, daemon semantics and
 * thread-local values (Python's threading.Thread, current_thread, local).
 *
 * OWNER: the sync helper fills in docstrings and may add functions; the signatures
 * below are relied on by other modules and must stay.
 */
#ifndef CONCUR_THREAD_H
#define CONCUR_THREAD_H

#include "base.h"

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cc_thread cc_thread;

/* The body of a thread: its return value is handed to cc_thread_join(). */
typedef void *(*cc_thread_fn)(void *arg);

typedef struct cc_thread_options {
    const char *name;  /* shown by the OS (first 15 bytes); NULL: "concur-N" */
    bool daemon;       /* true: not waited for at process exit (Python's daemon) */
    size_t stack_size; /* bytes; 0: the system default */
} cc_thread_options;

int cc_thread_start(cc_thread **out, cc_thread_fn fn, void *arg,
                    const cc_thread_options *opts);
int cc_thread_join(cc_thread *t, cc_deadline deadline, void **result);
int cc_thread_detach(cc_thread *t);
cc_thread *cc_thread_current(void);
const char *cc_thread_name(const cc_thread *t);

#ifdef __cplusplus
}
#endif
#endif
