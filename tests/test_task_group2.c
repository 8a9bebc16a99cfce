/*
 * test_task_group2.c: more of task groups (loop.h): spawns waiting for room
 * in a bounded group that time out or are cancelled while members end.
 */
#include "testutil.h"

#include "loop_helpers.h"

enum { SLOTS = 2 };

struct room_run {
    cc_task_group *g;  /* bounded: SLOTS members */
    uint32_t seed;     /* random choices of main */
    int live, most;    /* members running now, and at most */
    int spawned;       /* spawns that returned 0 */
    int ran;           /* members that ran */
    int timed_out;     /* spawns that gave -ETIMEDOUT */
    int cancelled;     /* spawns that gave -ECANCELED */
    int odd;           /* any other outcome */
    long finished;     /* spawners that returned */
    int room;          /* CC_NOWAIT spawns that fit at the end */
    int over;          /* the one after them */
};

static int member(void *arg, void **result)
{
    struct room_run *r = arg;
    r->ran++;
    if (++r->live > r->most)
        r->most = r->live;
    cc_sleep(rnd(&r->seed) % 100 * CC_USEC);
    r->live--;
    return 0;
}

static int blocker(void *arg, void **result)
{
    (void)arg;
    return cc_sleep(60 * CC_SEC); /* until the close cancels it */
}

/* One spawn into the group, waiting for room a random while. */
static int spawner(void *arg, void **result)
{
    struct room_run *r = arg;
    int64_t wait = rnd(&r->seed) % 200 * CC_USEC;
    int s = cc_task_group_spawn(r->g, member, r, NULL, NULL,
                                cc_deadline_in(wait));
    r->spawned += s == 0;
    r->timed_out += s == -ETIMEDOUT;
    r->cancelled += s == -ECANCELED;
    r->odd += s != 0 && s != -ETIMEDOUT && s != -ECANCELED;
    r->finished++;
    return 0;
}

static int room_main(void *arg, void **result)
{
    struct room_run *r = arg;
    if (cc_task_group_new(&r->g, SLOTS) != 0)
        abort();
    long rounds = cc_test_n(20000);
    for (long i = 0; i < rounds; i++) {
        cc_future *f;
        if (cc_spawn(spawner, r, &f) != 0)
            abort();
        for (uint32_t y = rnd(&r->seed) % 3; y > 0; y--)
            cc_yield();
        if (rnd(&r->seed) % 2)
            cc_task_cancel(f);
        r->finished += cc_future_cancelled(f); /* cancelled unstarted */
        cc_future_release(f);
        if (i % 64 == 0)
            cc_sleep(50 * CC_USEC); /* members end meanwhile */
    }
    while (r->finished < rounds) /* a spawner may still wait for room */
        cc_sleep(100 * CC_USEC);
    cc_task_group_join(r->g, CC_FOREVER);
    while (cc_task_group_spawn(r->g, blocker, NULL, NULL, NULL,
                               CC_NOWAIT) == 0)
        r->room++;
    r->over = cc_task_group_spawn(r->g, blocker, NULL, NULL, NULL,
                                  cc_deadline_in(CC_MSEC));
    return cc_task_group_close(r->g, true);
}

/* No place is lost or doubled when a spawn's wait for room ends by its
 * deadline or its cancellation as a member ends and hands its place on:
 * at most SLOTS members ever run, and once all is quiet exactly SLOTS fit
 * (gevent's Pool(size)). */
static void test_waiting_spawns_keep_the_places(void **state)
{
    (void)state;
    struct room_run r = {.seed = 2463534242u};
    assert_int_equal(cc_loop_run(room_main, &r, NULL), 0);
    print_message("spawned %d, timed out %d, cancelled %d\n", r.spawned,
                  r.timed_out, r.cancelled);
    assert_int_equal(r.odd, 0);
    assert_int_equal(r.ran, r.spawned);
    assert_true(r.most <= SLOTS);
    assert_int_equal(r.room, SLOTS);
    assert_int_equal(r.over, -ETIMEDOUT);
    assert_true(r.timed_out > 0 && r.cancelled > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CC_TEST(test_waiting_spawns_keep_the_places),
    };
    return CC_RUN_TESTS(tests);
}
