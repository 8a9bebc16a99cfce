/*
 * test_sync2.c: more of include/concur/sync.h (test_sync.c is full): races
 * between wakeups and timeouts or cancellation, threads and tasks on the
 * same objects, and rounds of a barrier.
 */
#include "testutil.h"

#include "loop_helpers.h"
#include "sync_impl.h"

#include <stdatomic.h>
#include <stdlib.h>

/* ---- barrier ------------------------------------------------------------------ */

static void *wait_barrier(void *arg)
{
    return (void *)(intptr_t)cc_barrier_wait(arg, cc_deadline_in(60 * CC_SEC));
}

struct gated_action {
    cc_event running; /* set once the action runs */
    cc_event go;      /* the action returns once this is set */
};

static int gated_round(void *arg)
{
    struct gated_action *g = arg;
    cc_event_set(&g->running);
    return cc_event_wait(&g->go, cc_deadline_in(60 * CC_SEC));
}

/*
 * A thread that arrives while the action runs belongs to the next round; its
 * timeout breaks the barrier for that round, not for the round whose parties
 * have all arrived (Python's wait holds the lock through the action, so the
 * late thread can only time out after the round is released).
 */
static void barrier_early_arrival_timeout_spares_full_round(void **state)
{
    struct gated_action g;
    cc_event_init(&g.running);
    cc_event_init(&g.go);
    cc_barrier b;
    assert_int_equal(cc_barrier_init(&b, 2, gated_round, &g), 0);
    cc_thread *t[2] = {start(wait_barrier, &b), start(wait_barrier, &b)};
    assert_int_equal(cc_event_wait(&g.running, cc_deadline_in(60 * CC_SEC)), 0);
    cc_deadline d = cc_deadline_in(5 * CC_MSEC);
    assert_int_equal(cc_barrier_wait(&b, d), -ETIMEDOUT);
    assert_true(cc_now() >= d);
    cc_event_set(&g.go);
    intptr_t r0 = (intptr_t)join(t[0]), r1 = (intptr_t)join(t[1]);
    assert_true(r0 >= 0 && r1 >= 0);
    assert_int_equal(r0 + r1, 0 + 1);
    assert_true(cc_barrier_broken(&b)); /* for the next round */
    assert_int_equal(cc_barrier_wait(&b, CC_FOREVER), -EPIPE);
    cc_barrier_reset(&b);
    assert_false(cc_barrier_broken(&b));
    cc_barrier_destroy(&b);
    cc_event_destroy(&g.go);
    cc_event_destroy(&g.running);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CC_TEST(barrier_early_arrival_timeout_spares_full_round),
    };
    return CC_RUN_TESTS(tests);
}
