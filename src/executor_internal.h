/*
 * executor_internal.h: the interface every executor backend implements (thread
 * pool now; process pool and event loop later). Not installed.
 */
#ifndef CONCUR_EXECUTOR_INTERNAL_H
#define CONCUR_EXECUTOR_INTERNAL_H

#include "concur/executor.h"
#include "future_internal.h"

struct cc__executor_ops {
    /* Queue f (pending, f->fn and f->arg set, one reference for the executor,
     * dropped when done). Returns 0, -ESHUTDOWN or -EPIPE (f untouched). */
    int (*submit)(cc_executor *ex, cc_future *f);
    void (*shutdown)(cc_executor *ex, bool wait, bool cancel_futures);
    size_t (*max_workers)(const cc_executor *ex);
    /* Shut down (wait), release every resource and the executor itself. */
    void (*free)(cc_executor *ex);
};

/* The first member of every executor backend. */
struct cc_executor {
    const struct cc__executor_ops *ops; /* the backend */
};

#endif
