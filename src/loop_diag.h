/*
 * loop_diag.h: the loop's diagnostics (loop_diag.c) as the loop (loop.c)
 * calls them: a stall detector, a deadlock report, task dumps on SIGQUIT.
 * Every hook is called only when the loop's cc__diag exists, which is only
 * when a diagnostic is on. Not installed.
 */
#ifndef CONCUR_LOOP_DIAG_H
#define CONCUR_LOOP_DIAG_H

#include "concur/loop.h"

struct cc__diag;

/* cc__diag_new: *out = the diagnostics of a new loop l, or NULL when all of
 * them are off (options, environment). 0 or -ENOMEM, -EAGAIN (no thread
 * for the stall watchdog). */
int cc__diag_new(struct cc__diag **out, cc_loop *l);

/* cc__diag_free: stop the watchdog, forget the loop (NULL: nothing). */
void cc__diag_free(struct cc__diag *d);

/* cc__diag_enter / cc__diag_leave: the loop thread starts running the task
 * called `name`; it is back in the scheduler. */
void cc__diag_enter(struct cc__diag *d, const char *name);
void cc__diag_leave(struct cc__diag *d);

/* cc__diag_idle: the loop has nothing ready and would sleep until `until`
 * with `fd_waits` tasks waiting for fds: dump if asked, look for a
 * deadlock, and return until when to sleep. */
cc_deadline cc__diag_idle(struct cc__diag *d, cc_loop *l, cc_deadline until,
                          int fd_waits);

#endif
