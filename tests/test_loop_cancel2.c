/*
 * test_loop_cancel2.c: more of cancellation, shield and deadline scopes
 * (include/concur/loop.h), for cases test_loop_cancel.c does not cover:
 * a loop that gets to a task late, and the order of the errors.
 */
#include "testutil.h"

#include "loop_helpers.h"

/* Run for `ns` without yielding: the loop gets to every other task late. */
static int hog(void *arg, void **result)
{
    int64_t ns = *(int64_t *)arg;
    int64_t t0 = cc_now();
    while (cc_now() - t0 < ns)
        ;
    return 0;
}

/* ---- a sleep whose scope ends first, resumed late ------------------------ */

struct late_run {
    int64_t hog_ns;    /* how long the hog holds the loop */
    int sleep;         /* the sleep in a scope that ends before it */
    int end;           /* the scope's end */
};

static int late_main(void *arg, void **result)
{
    struct late_run *l = arg;
    cc_spawn(hog, &l->hog_ns, NULL); /* runs once we park */
    cc_deadline_scope sc;
    cc_deadline_scope_begin(&sc, cc_deadline_in(5 * CC_MSEC));
    l->sleep = cc_sleep(10 * CC_MSEC);
    l->end = cc_deadline_scope_end(&sc);
    return 0;
}

/* The scope's deadline comes before the sleep's: -ETIMEDOUT (cc_sleep's
 * docstring, asyncio.timeout), even when the loop resumes the task only
 * after both have passed. */
static void test_sleep_in_scope_resumed_late(void **state)
{
    (void)state;
    struct late_run l = {.hog_ns = 30 * CC_MSEC};
    assert_int_equal(cc_loop_run(late_main, &l, NULL), 0);
    assert_int_equal(l.sleep, -ETIMEDOUT);
    assert_int_equal(l.end, -ETIMEDOUT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CC_TEST(test_sleep_in_scope_resumed_late),
    };
    return CC_RUN_TESTS(tests);
}
