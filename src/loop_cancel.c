/*
 * loop_cancel.c: cancelling tasks, shield scopes and deadline scopes
 * (include/concur/loop.h).
 *
 * DESIGN. Cancellation is cooperative and explicit: cc_task_cancel only
 * marks the task (struct cc__cancel, loop thread only, so no atomics) and,
 * if it is parked, queues it. Every park of a task goes through
 * cc__loop_park (loop.c), which looks at the mark before each suspension:
 * cancelled and not shielded means the park fails with -ECANCELED, and the
 * blocking call with it (the primitives hand the park's error back). The
 * mark stays: every later blocking call fails too, until the task returns,
 * so that a retry loop cannot swallow it (cleanup that must block opens a
 * shield scope). A deadline scope lowers the deadline every park of the
 * task uses to min(call deadline, earliest open scope); scopes nest as a
 * stack kept in the callers' cc_deadline_scope structs.
 */
#include "future_internal.h"
#include "loop_internal.h"

static struct cc__cancel *current(void)
{
    struct cc__task *t = cc__loop_task();
    return t ? cc__loop_cancel_of(t) : NULL;
}

int cc_task_cancel(cc_future *task)
{
    if (!task)
        return -EINVAL;
    if (!cc_loop_current()) /* before touching a task another loop may free */
        return -EPERM;
    if (cc_future_done(task)) /* cc_future_cancel is true if cancelled */
        return -EALREADY;
    if (cc_future_cancel(task)) /* not started, or a pool kill_on_cancel */
        return 0;
    if (cc_future_done(task))
        return -EALREADY;
    struct cc__task *t = cc__loop_task_of(task);
    if (!t)
        return -EINVAL;
    cc__loop_cancel_of(t)->requested = true;
    cc__loop_interrupt(t);
    return 0;
}

bool cc_task_cancelled(void)
{
    struct cc__cancel *c = current();
    return c && c->requested;
}

void cc_shield_begin(void)
{
    struct cc__cancel *c = current();
    if (c)
        c->shield++;
}

void cc_shield_end(void)
{
    struct cc__cancel *c = current();
    if (!c)
        return;
    if (CC__UNLIKELY(c->shield == 0))
        cc__panic("cc_shield_end without cc_shield_begin", -EINVAL);
    c->shield--;
}

int cc_deadline_scope_begin(cc_deadline_scope *s, cc_deadline deadline)
{
    struct cc__cancel *c = current();
    s->deadline = deadline;
    s->outer = c ? c->scope : CC_FOREVER;
    if (!c)
        return -EPERM;
    if (deadline < c->scope)
        c->scope = deadline;
    return 0;
}

int cc_deadline_scope_end(cc_deadline_scope *s)
{
    struct cc__cancel *c = current();
    if (!c)
        return -EPERM;
    c->scope = s->outer;
    return s->deadline != CC_FOREVER && s->deadline <= cc__now() ? -ETIMEDOUT
                                                                : 0;
}
