/*
 * guide_threading.c: the "threading" section of docs/guide.md (threads, a lock,
 * a condition, an event, a barrier, a semaphore), with the error codes that
 * stand for Python's exceptions. Exits 0 when every check passes.
 */
#include <concur.h>

#include <stdio.h>

#define CHECK(cond)                                                   \
    do {                                                              \
        if (!(cond)) {                                                \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond); \
            return 1;                                                 \
        }                                                             \
    } while (0)

enum { THREADS = 4, ROUNDS = 100000 };

struct counter {
    cc_lock lock; /* guards n */
    long n;
};

static void *count_up(void *arg)
{
    struct counter *c = arg;
    for (int i = 0; i < ROUNDS; i++) {
        cc_lock_acquire(&c->lock, CC_FOREVER); /* with lock: */
        c->n++;
        cc_lock_release(&c->lock);
    }
    return NULL;
}

static int threads_and_lock(void)
{
    struct counter c = {CC_LOCK_INIT, 0};
    cc_thread *t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        char name[16];
        snprintf(name, sizeof name, "counter-%d", i); /* copied by start */
        cc_thread_options opts = {.name = name};
        CHECK(cc_thread_start(&t[i], count_up, &c, &opts) == 0);
    }
    for (int i = 0; i < THREADS; i++)
        CHECK(cc_thread_join(t[i], cc_deadline_in(10 * CC_SEC), NULL) == 0);
    CHECK(c.n == THREADS * ROUNDS);
    return 0;
}

static bool is_ready(void *arg) { return *(bool *)arg; }

static int condition(void)
{
    cc_lock lock = CC_LOCK_INIT;
    cc_cond cond;
    cc_cond_init(&cond, &lock);
    bool ready = false; /* guarded by lock */
    cc_lock_acquire(&lock, CC_FOREVER);
    int err = cc_cond_wait_for(&cond, is_ready, &ready,
                               cc_deadline_in(10 * CC_MSEC));
    cc_lock_release(&lock);
    CHECK(err == -ETIMEDOUT); /* Python: wait_for() returns False */
    cc_cond_destroy(&cond);
    cc_lock_destroy(&lock);
    return 0;
}

static int errors(void)
{
    cc_lock lock = CC_LOCK_INIT;
    cc_lock_acquire(&lock, CC_FOREVER);
    CHECK(cc_lock_acquire(&lock, CC_NOWAIT) == -ETIMEDOUT); /* False */
    cc_lock_release(&lock);

    cc_rlock rlock = CC_RLOCK_INIT;
    CHECK(cc_rlock_release(&rlock) == -EPERM); /* RuntimeError */

    cc_event ev = CC_EVENT_INIT;
    CHECK(cc_event_wait(&ev, cc_deadline_in(CC_MSEC)) == -ETIMEDOUT);

    cc_barrier b;
    CHECK(cc_barrier_init(&b, 2, NULL, NULL) == 0);
    cc_barrier_abort(&b);
    CHECK(cc_barrier_wait(&b, CC_FOREVER) == -EPIPE); /* BrokenBarrierError */

    cc_semaphore sem;
    cc_bounded_semaphore_init(&sem, 1);
    CHECK(cc_semaphore_release(&sem, 1) == -EOVERFLOW); /* ValueError */

    cc_thread *me = cc_thread_current();                  /* "MainThread" */
    CHECK(cc_thread_join(me, CC_FOREVER, NULL) == -EDEADLK); /* RuntimeError */
    return 0;
}

int main(void)
{
    CHECK(threads_and_lock() == 0);
    CHECK(condition() == 0);
    CHECK(errors() == 0);
    return 0;
}
