/*
 * thread_internal.h: what the thread pool needs of thread.c beyond the
 * public API: the exit() of one of its workers (thread.c's DESIGN).
 */
#ifndef CONCUR_THREAD_INTERNAL_H
#define CONCUR_THREAD_INTERNAL_H

#include "concur/thread.h"

/*
 * cc__thread_mark_exiting: the calling thread runs the exit handlers (it
 * called exit()): its joiners can never succeed. Wakes those parked in
 * cc__thread_join_unless_exiting. Idempotent; does nothing in a thread that
 * concur did not start. Never blocks (a short internal lock).
 */
void cc__thread_mark_exiting(void);

/*
 * cc__thread_join_unless_exiting: cc_thread_join(t, CC_FOREVER, NULL), but
 * -EINPROGRESS, t left joinable, once t runs the exit handlers. Other
 * errors as cc_thread_join's. Blocks.
 */
int cc__thread_join_unless_exiting(cc_thread *t);

/*
 * cc__thread_stuck_begin: the calling thread is about to park until a
 * thread that calls exit() returns, which it never does (a second
 * shutdown(wait) of a pool whose joiner parks on such a worker): if it is
 * a counted non-daemon thread, the exit handler stops waiting for it.
 * Returns whether it counted; pass that to cc__thread_stuck_end once it no
 * longer parks. Never blocks (a short internal lock).
 */
bool cc__thread_stuck_begin(void);
void cc__thread_stuck_end(bool counted);

#endif
