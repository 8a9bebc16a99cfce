/*
 * threads_event.c: two threads hand a counter back and forth with two events
 * (Python: threading.Thread and threading.Event). Exits 0 when every round
 * arrived in order.
 */
#include <concur.h>

#include <stdio.h>

enum { ROUNDS = 1000 };

struct table {
    cc_event ping;   /* set by main: the ball is on the worker's side */
    cc_event pong;   /* set by the worker: the ball is back */
    long ball;       /* the counter handed over */
};

static void *worker(void *arg)
{
    struct table *t = arg;
    for (int i = 0; i < ROUNDS; i++) {
        if (cc_event_wait(&t->ping, cc_deadline_in(10 * CC_SEC)) != 0)
            return "timed out";
        cc_event_clear(&t->ping);
        t->ball++; /* ordered by the events: set() publishes, wait() sees */
        cc_event_set(&t->pong);
    }
    return NULL;
}

int main(void)
{
    struct table t = {CC_EVENT_INIT, CC_EVENT_INIT, 0};
    cc_thread *th;
    cc_thread_options opts = {.name = "worker"};
    int err = cc_thread_start(&th, worker, &t, &opts);
    if (err < 0) {
        fprintf(stderr, "start: %s\n", cc_strerror(err));
        return 1;
    }
    for (int i = 0; i < ROUNDS; i++) {
        t.ball++;
        cc_event_set(&t.ping);
        if (cc_event_wait(&t.pong, cc_deadline_in(10 * CC_SEC)) != 0)
            break;
        cc_event_clear(&t.pong);
    }
    void *failure;
    err = cc_thread_join(th, cc_deadline_in(10 * CC_SEC), &failure);
    if (err < 0 || failure || t.ball != 2 * ROUNDS) {
        fprintf(stderr, "ball %ld, expected %d\n", t.ball, 2 * ROUNDS);
        return 1;
    }
    printf("%d rounds between %s and %s\n", ROUNDS,
           cc_thread_name(cc_thread_current()), "worker");
    return 0;
}
