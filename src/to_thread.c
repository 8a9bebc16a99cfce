/*
 * to_thread.c: cc_to_thread (include/concur/loop.h), asyncio.to_thread and
 * loop.run_in_executor.
 *
 * DESIGN. Submit to the executor, then wait on the future: cc_future_result
 * goes through the wait layer, which parks a task (not its loop) and a
 * thread alike. A wait that fails (the task cancelled, a deadline scope)
 * abandons the future: it is cancelled if no worker took it yet, else the
 * worker finishes it and the executor's own reference frees it; the pool
 * is unharmed.
 */
#include "concur/executor.h"
#include "concur/loop.h"

int cc_to_thread(cc_executor *ex, cc_task_fn fn, void *arg, void **result)
{
    if (result)
        *result = NULL;
    cc_future *f;
    int r = cc_executor_submit(ex, fn, arg, &f);
    if (r < 0)
        return r;
    r = cc_future_result(f, CC_FOREVER, result);
    if (r < 0 && !cc_future_done(f))
        cc_future_cancel(f); /* abandoned: not run if not started */
    cc_future_release(f);
    return r;
}
