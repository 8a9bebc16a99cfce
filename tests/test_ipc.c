/*
 * test_ipc.c: cross-process primitives (include/concur/ipc.h) between a
 * parent and forked children sharing a cc_shm segment: the robust lock
 * (a holder that dies is reported, and the lock goes on), the event, the
 * semaphore, the condition, the barrier (a party of a passed round keeps its
 * index when the next round breaks first), and the queue (order,
 * wrap-around, sizes, timeouts, a 10 MiB message, the largest message of a
 * ring, producers in two processes, consumers killed in mid-get).
 */
#include "testutil.h"
#include "atomics.h"
#include "ipc_impl.h"

#include <concur/ipc.h>
#include <concur/shm.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MIB ((size_t)1024 * 1024)
#define SEC_DEADLINE(s) cc_deadline_in((int64_t)(s) * CC_SEC)

/* ---- helpers ------------------------------------------------------------- */

/* What the tests place in shared memory (the queue comes last: it is
 * followed by its ring). */
typedef struct shared {
    cc_ipc_lock lock;       /* the lock under test */
    cc_ipc_event ev[2];     /* events under test */
    cc_ipc_semaphore sem[2]; /* semaphores under test */
    cc_ipc_condition cond;  /* used with lock */
    cc_ipc_barrier barrier; /* initialised by each test */
    int64_t sum;            /* barrier indices, added under lock */
    int64_t counter;        /* protected by lock */
    _Alignas(64) char queue[]; /* a cc_ipc_queue */
} shared;

static cc_shm *segment;

/* A fresh segment with `ring` bytes for the queue; everything initialised. */
static shared *shared_new(size_t ring)
{
    size_t size = sizeof(shared) + cc_ipc_queue_header_size() + ring;
    assert_int_equal(cc_shm_create(&segment, 1, size), 0);
    shared *sh = cc_shm_data(segment);
    assert_int_equal(cc_ipc_lock_init(&sh->lock), 0);
    cc_ipc_condition_init(&sh->cond);
    for (int i = 0; i < 2; i++) {
        cc_ipc_event_init(&sh->ev[i]);
        assert_int_equal(cc_ipc_semaphore_init(&sh->sem[i], 0), 0);
    }
    assert_int_equal(cc_ipc_queue_init((cc_ipc_queue *)sh->queue,
                                       size - sizeof(shared)), 0);
    return sh;
}

static cc_ipc_queue *queue_of(shared *sh) { return (cc_ipc_queue *)sh->queue; }

static void shared_free(void)
{
    cc_shm_close(segment);
    segment = NULL;
}

/* ---- robust lock --------------------------------------------------------- */

static void lock_basics(void **state)
{
    (void)state;
    shared *sh = shared_new(64);
    assert_int_equal(cc_ipc_lock_acquire(&sh->lock, CC_NOWAIT), 0);
#ifndef __SANITIZE_THREAD__ /* TSan reports the misuse itself, and stops */
    assert_int_equal(cc_ipc_lock_acquire(&sh->lock, CC_FOREVER), -EDEADLK);
#endif
    assert_int_equal(cc_ipc_lock_release(&sh->lock), 0);
#ifndef __SANITIZE_THREAD__
    assert_int_equal(cc_ipc_lock_release(&sh->lock), -EPERM);
#endif
    assert_int_equal(cc_ipc_lock_consistent(&sh->lock), -EINVAL);
    shared_free();
}

/* Take the lock, say so on the pipe, hold it a while, die holding it. */
static int child_dies_holding(void *arg)
{
    shared *sh = cc_shm_data(segment);
    int *fds = arg;
    if (cc_ipc_lock_acquire(&sh->lock, CC_FOREVER) != 0)
        return 1;
    sh->counter = -1; /* "half-way through an update" */
    if (write(fds[1], "x", 1) != 1)
        return 2;
    usleep(50 * 1000);
    raise(SIGKILL);
    return 3;
}

static void a_dead_holder_is_reported_to_the_next_owner(void **state)
{
    (void)state;
    shared *sh = shared_new(64);
    int fds[2];
    assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
    pid_t pid = cc_test_fork(child_dies_holding, fds);
    char c;
    assert_int_equal(read(fds[0], &c, 1), 1);
    /* The child holds it: we wait, and its death hands the lock to us. */
    assert_int_equal(cc_ipc_lock_acquire(&sh->lock, SEC_DEADLINE(20)),
                     -EOWNERDEAD);
    assert_int_equal(sh->counter, -1);
    sh->counter = 0; /* repaired */
    assert_int_equal(cc_ipc_lock_consistent(&sh->lock), 0);
    assert_int_equal(cc_ipc_lock_release(&sh->lock), 0);
    assert_int_equal(cc_test_reap(pid), 128 + SIGKILL);
    assert_int_equal(cc_ipc_lock_acquire(&sh->lock, CC_NOWAIT), 0);
    assert_int_equal(cc_ipc_lock_release(&sh->lock), 0);
    close(fds[0]);
    close(fds[1]);
    shared_free();
}

static int child_exits_holding(void *arg)
{
    (void)arg;
    shared *sh = cc_shm_data(segment);
    return cc_ipc_lock_acquire(&sh->lock, CC_FOREVER) == 0 ? 0 : 1;
}

static void unrepaired_lock_becomes_unrecoverable(void **state)
{
    (void)state;
    shared *sh = shared_new(64);
    assert_int_equal(cc_test_reap(cc_test_fork(child_exits_holding, NULL)), 0);
    assert_int_equal(cc_ipc_lock_acquire(&sh->lock, CC_NOWAIT), -EOWNERDEAD);
    assert_int_equal(cc_ipc_lock_release(&sh->lock), 0); /* not consistent */
    assert_int_equal(cc_ipc_lock_acquire(&sh->lock, CC_FOREVER),
                     -ENOTRECOVERABLE);
    shared_free();
}

/* Hold the lock until the parent closes the pipe. */
static int child_holds_until_told(void *arg)
{
    shared *sh = cc_shm_data(segment);
    int *fds = arg;
    char c;
    close(fds[3]); /* the parent's end: its close is the signal */
    if (cc_ipc_lock_acquire(&sh->lock, CC_FOREVER) != 0)
        return 1;
    if (write(fds[1], "x", 1) != 1 || read(fds[2], &c, 1) != 0)
        return 2;
    return cc_ipc_lock_release(&sh->lock) == 0 ? 0 : 3;
}

static void lock_acquire_times_out_never_early(void **state)
{
    (void)state;
    shared *sh = shared_new(64);
    int up[2], down[2];
    assert_int_equal(pipe2(up, O_CLOEXEC), 0);
    assert_int_equal(pipe2(down, O_CLOEXEC), 0);
    int fds[4] = {up[0], up[1], down[0], down[1]};
    pid_t pid = cc_test_fork(child_holds_until_told, fds);
    char c;
    assert_int_equal(read(up[0], &c, 1), 1);
    int64_t t0 = cc_now();
    cc_deadline d = cc_deadline_in(50 * CC_MSEC);
    assert_int_equal(cc_ipc_lock_acquire(&sh->lock, d), -ETIMEDOUT);
    assert_true(cc_now() >= d);
    assert_true(cc_now() - t0 >= 50 * CC_MSEC);
    assert_int_equal(cc_ipc_lock_acquire(&sh->lock, CC_NOWAIT), -ETIMEDOUT);
    close(down[1]); /* let it go */
    assert_int_equal(cc_ipc_lock_acquire(&sh->lock, SEC_DEADLINE(20)), 0);
    assert_int_equal(cc_ipc_lock_release(&sh->lock), 0);
    assert_int_equal(cc_test_reap(pid), 0);
    close(up[0]);
    close(up[1]);
    close(down[0]);
    shared_free();
}

/* Two processes add to a counter under the lock. */
static int child_adds(void *arg)
{
    shared *sh = cc_shm_data(segment);
    long n = *(long *)arg;
    for (long i = 0; i < n; i++) {
        if (cc_ipc_lock_acquire(&sh->lock, CC_FOREVER) != 0)
            return 1;
        int64_t v = sh->counter;
        sh->counter = v + 1;
        cc_ipc_lock_release(&sh->lock);
    }
    return 0;
}

static void lock_excludes_between_processes(void **state)
{
    (void)state;
    shared *sh = shared_new(64);
    long n = cc_test_n(20000);
    pid_t a = cc_test_fork(child_adds, &n), b = cc_test_fork(child_adds, &n);
    assert_int_equal(child_adds(&n), 0);
    assert_int_equal(cc_test_reap(a), 0);
    assert_int_equal(cc_test_reap(b), 0);
    assert_int_equal(sh->counter, 3 * n);
    shared_free();
}

/* ---- event and semaphore ------------------------------------------------- */

/* Wait for ev[0], then set ev[1]. */
static int child_event_echo(void *arg)
{
    (void)arg;
    shared *sh = cc_shm_data(segment);
    if (cc_ipc_event_wait(&sh->ev[0], SEC_DEADLINE(20)) != 0)
        return 1;
    cc_ipc_event_set(&sh->ev[1]);
    return 0;
}

static void event_between_processes(void **state)
{
    (void)state;
    shared *sh = shared_new(64);
    cc_deadline d = cc_deadline_in(20 * CC_MSEC);
    assert_int_equal(cc_ipc_event_wait(&sh->ev[1], d), -ETIMEDOUT);
    assert_true(cc_now() >= d);
    pid_t pid = cc_test_fork(child_event_echo, NULL);
    usleep(10 * 1000); /* the child is likely asleep by now */
    assert_false(cc_ipc_event_is_set(&sh->ev[1]));
    cc_ipc_event_set(&sh->ev[0]);
    assert_int_equal(cc_ipc_event_wait(&sh->ev[1], SEC_DEADLINE(20)), 0);
    assert_true(cc_ipc_event_is_set(&sh->ev[1]));
    assert_int_equal(cc_test_reap(pid), 0);
    cc_ipc_event_clear(&sh->ev[1]);
    assert_false(cc_ipc_event_is_set(&sh->ev[1]));
    assert_int_equal(cc_ipc_event_wait(&sh->ev[1], CC_NOWAIT), -ETIMEDOUT);
    shared_free();
}

/* Ping-pong: take a unit of sem[0], give one to sem[1], n times. */
static int child_pong(void *arg)
{
    shared *sh = cc_shm_data(segment);
    long n = *(long *)arg;
    for (long i = 0; i < n; i++) {
        if (cc_ipc_semaphore_acquire(&sh->sem[0], SEC_DEADLINE(20)) != 0)
            return 1;
        cc_ipc_semaphore_release(&sh->sem[1], 1);
    }
    return 0;
}

static void semaphore_between_processes(void **state)
{
    (void)state;
    shared *sh = shared_new(64);
    long n = cc_test_n(5000);
    pid_t pid = cc_test_fork(child_pong, &n);
    for (long i = 0; i < n; i++) {
        assert_int_equal(cc_ipc_semaphore_release(&sh->sem[0], 1), 0);
        assert_int_equal(cc_ipc_semaphore_acquire(&sh->sem[1], SEC_DEADLINE(20)),
                         0);
    }
    assert_int_equal(cc_test_reap(pid), 0);
    assert_int_equal(cc_ipc_semaphore_value(&sh->sem[0]), 0);
    cc_deadline d = cc_deadline_in(20 * CC_MSEC);
    assert_int_equal(cc_ipc_semaphore_acquire(&sh->sem[0], d), -ETIMEDOUT);
    assert_true(cc_now() >= d);
    assert_int_equal(cc_ipc_semaphore_release(&sh->sem[0], 3), 0);
    assert_int_equal(cc_ipc_semaphore_release(&sh->sem[0],
                                              CC_IPC_SEMAPHORE_MAX), -EOVERFLOW);
    assert_int_equal(cc_ipc_semaphore_value(&sh->sem[0]), 3);
    assert_int_equal(cc_ipc_semaphore_init(&sh->sem[1], CC_IPC_SEMAPHORE_MAX + 1u),
                     -EINVAL);
    shared_free();
}

/* ---- condition and barrier ---------------------------------------------- */

/* Take turns with the other process: wait for the counter's parity to be
 * ours, bump it, notify; n times. */
static int take_turns(shared *sh, int parity, long n)
{
    for (long i = 0; i < n; i++) {
        if (cc_ipc_lock_acquire(&sh->lock, CC_FOREVER) != 0)
            return 1;
        while (sh->counter % 2 != parity)
            if (cc_ipc_condition_wait(&sh->cond, &sh->lock, SEC_DEADLINE(20)))
                return 2;
        sh->counter++;
        cc_ipc_condition_notify(&sh->cond, 1);
        cc_ipc_lock_release(&sh->lock);
    }
    return 0;
}

static int child_takes_odd_turns(void *arg)
{
    return take_turns(cc_shm_data(segment), 1, *(long *)arg);
}

static void condition_between_processes(void **state)
{
    (void)state;
    shared *sh = shared_new(64);
    long n = cc_test_n(3000);
    pid_t pid = cc_test_fork(child_takes_odd_turns, &n);
    assert_int_equal(take_turns(sh, 0, n), 0);
    assert_int_equal(cc_test_reap(pid), 0);
    assert_int_equal(sh->counter, 2 * n);
    /* a wait with nothing to wake it times out, never early, lock held */
    assert_int_equal(cc_ipc_lock_acquire(&sh->lock, CC_FOREVER), 0);
    cc_deadline d = cc_deadline_in(20 * CC_MSEC);
    assert_int_equal(cc_ipc_condition_wait(&sh->cond, &sh->lock, d),
                     -ETIMEDOUT);
    assert_true(cc_now() >= d);
    assert_int_equal(cc_ipc_lock_release(&sh->lock), 0);
    shared_free();
}

/* n rounds of the barrier; the indices it returned, added to sh->sum. */
static int child_barrier_rounds(void *arg)
{
    shared *sh = cc_shm_data(segment);
    int64_t sum = 0;
    for (long i = 0; i < *(long *)arg; i++) {
        int r = cc_ipc_barrier_wait(&sh->barrier, SEC_DEADLINE(20));
        if (r < 0)
            return 1;
        sum += r;
    }
    if (cc_ipc_lock_acquire(&sh->lock, CC_FOREVER) != 0)
        return 2;
    sh->sum += sum;
    cc_ipc_lock_release(&sh->lock);
    return 0;
}

static void barrier_between_processes(void **state)
{
    (void)state;
    shared *sh = shared_new(64);
    long n = cc_test_n(1000);
    assert_int_equal(cc_ipc_barrier_init(&sh->barrier, 3), 0);
    pid_t a = cc_test_fork(child_barrier_rounds, &n);
    pid_t b = cc_test_fork(child_barrier_rounds, &n);
    assert_int_equal(child_barrier_rounds(&n), 0);
    assert_int_equal(cc_test_reap(a), 0);
    assert_int_equal(cc_test_reap(b), 0);
    assert_int_equal(sh->sum, n * (0 + 1 + 2)); /* each index once a round */
    assert_int_equal(cc_ipc_barrier_init(&sh->barrier, 0), -EINVAL);
    shared_free();
}

static int child_barrier_once(void *arg)
{
    (void)arg;
    shared *sh = cc_shm_data(segment);
    return cc_ipc_barrier_wait(&sh->barrier, SEC_DEADLINE(20)) == -EPIPE ? 0 : 1;
}

static void barrier_timeout_and_abort_break_it(void **state)
{
    (void)state;
    shared *sh = shared_new(64);
    assert_int_equal(cc_ipc_barrier_init(&sh->barrier, 2), 0);
    cc_deadline d = cc_deadline_in(20 * CC_MSEC);
    assert_int_equal(cc_ipc_barrier_wait(&sh->barrier, d), -ETIMEDOUT);
    assert_true(cc_now() >= d);
    assert_int_equal(cc_ipc_barrier_wait(&sh->barrier, CC_FOREVER), -EPIPE);
    cc_ipc_barrier_reset(&sh->barrier);
    pid_t pid = cc_test_fork(child_barrier_once, NULL); /* gets -EPIPE */
    usleep(20 * 1000);
    cc_ipc_barrier_abort(&sh->barrier);
    assert_int_equal(cc_test_reap(pid), 0);
    cc_ipc_barrier_reset(&sh->barrier);
    pid = cc_test_fork(child_barrier_rounds, &(long){1});
    assert_true(cc_ipc_barrier_wait(&sh->barrier, SEC_DEADLINE(20)) >= 0);
    assert_int_equal(cc_test_reap(pid), 0);
    shared_free();
}

/* One wait; exits 0 if it passed as the first arrival, 2 on -EPIPE. */
static int child_barrier_first(void *arg)
{
    (void)arg;
    shared *sh = cc_shm_data(segment);
    int r = cc_ipc_barrier_wait(&sh->barrier, SEC_DEADLINE(20));
    return r == 0 ? 0 : r == -EPIPE ? 2 : 3;
}

/* Stop the child once it waits in the barrier with the barrier's lock
 * free (it may be caught holding it: then let it go on and retry). */
static void stop_while_waiting(shared *sh, pid_t pid)
{
    while (__atomic_load_n(&sh->barrier.count, __ATOMIC_ACQUIRE) != 1)
        usleep(1000);
    for (;;) {
        int st;
        assert_int_equal(kill(pid, SIGSTOP), 0);
        assert_int_equal(waitpid(pid, &st, WUNTRACED), pid);
        if (cc_ipc_lock_acquire(&sh->barrier.lock, CC_NOWAIT) == 0) {
            cc_ipc_lock_release(&sh->barrier.lock);
            return;
        }
        assert_int_equal(kill(pid, SIGCONT), 0);
        usleep(1000);
    }
}

/* A party whose round passed keeps its index even if, before it woke, the
 * next round broke (as Python, whose next round waits for the last one to
 * drain). */
static void barrier_round_passed_stays_passed(void **state)
{
    (void)state;
    shared *sh = shared_new(64);
    assert_int_equal(cc_ipc_barrier_init(&sh->barrier, 2), 0);
    pid_t pid = cc_test_fork(child_barrier_first, NULL);
    stop_while_waiting(sh, pid);
    assert_int_equal(cc_ipc_barrier_wait(&sh->barrier, CC_FOREVER), 1);
    assert_int_equal(cc_ipc_barrier_wait(&sh->barrier, CC_NOWAIT), -ETIMEDOUT);
    assert_int_equal(kill(pid, SIGCONT), 0);
    assert_int_equal(cc_test_reap(pid), 0); /* index 0, not -EPIPE */
    shared_free();
}

/* ---- queue --------------------------------------------------------------- */

/* Message `seed` of len bytes: a pattern that a lost or torn copy breaks. */
static void fill(unsigned char *buf, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (unsigned char)(seed * 31 + i * 7 + (i >> 12));
}

static bool intact(const unsigned char *buf, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        if (buf[i] != (unsigned char)(seed * 31 + i * 7 + (i >> 12)))
            return false;
    return true;
}

static void queue_keeps_order_and_wraps(void **state)
{
    (void)state;
    shared *sh = shared_new(1000); /* small: records wrap often */
    cc_ipc_queue *q = queue_of(sh);
    unsigned char in[300], out[300];
    size_t len;
    for (unsigned i = 0; i < 500; i++) {
        size_t n = (i * 37) % 300;
        fill(in, n, i);
        assert_int_equal(cc_ipc_queue_put(q, in, n, CC_NOWAIT), 0);
        if (i % 2 == 0)
            assert_int_equal(cc_ipc_queue_put(q, NULL, 0, CC_NOWAIT), 0);
        assert_int_equal(cc_ipc_queue_get(q, out, sizeof out, &len, CC_NOWAIT), 0);
        assert_int_equal(len, n);
        assert_true(intact(out, n, i));
        if (i % 2 == 0) {
            assert_int_equal(cc_ipc_queue_get(q, NULL, 0, &len, CC_NOWAIT), 0);
            assert_int_equal(len, 0);
        }
    }
    assert_int_equal(cc_ipc_queue_count(q), 0);
    shared_free();
}

static void queue_sizes_and_timeouts(void **state)
{
    (void)state;
    shared *sh = shared_new(1024);
    cc_ipc_queue *q = queue_of(sh);
    static unsigned char big[2048], out[2048];
    size_t len = 0;
    assert_int_equal(cc_ipc_queue_put(q, big, 1017, CC_FOREVER), -EMSGSIZE);
    cc_deadline d = cc_deadline_in(20 * CC_MSEC);
    assert_int_equal(cc_ipc_queue_get(q, out, sizeof out, &len, d), -ETIMEDOUT);
    assert_true(cc_now() >= d);
    fill(big, 1016, 7);
    assert_int_equal(cc_ipc_queue_put(q, big, 1016, CC_NOWAIT), 0); /* fills it */
    d = cc_deadline_in(20 * CC_MSEC);
    assert_int_equal(cc_ipc_queue_put(q, big, 1, d), -ETIMEDOUT);
    assert_true(cc_now() >= d);
    assert_int_equal(cc_ipc_queue_count(q), 1);
    assert_int_equal(cc_ipc_queue_get(q, out, 100, &len, CC_NOWAIT), -EMSGSIZE);
    assert_int_equal(len, 1016); /* and the message stays */
    assert_int_equal(cc_ipc_queue_get(q, NULL, 1, &len, CC_NOWAIT), -EINVAL);
    assert_int_equal(cc_ipc_queue_get(q, out, 1016, &len, CC_NOWAIT), 0);
    assert_true(intact(out, 1016, 7));
    assert_int_equal(cc_ipc_queue_init(q, 10), -EINVAL);
    shared_free();
}

/* The largest message fits a ring whose memory is not a multiple of 8. */
static void queue_largest_message_of_an_odd_size(void **state)
{
    (void)state;
    static _Alignas(64) unsigned char mem[4096];
    static unsigned char msg[200], out[200];
    cc_ipc_queue *q = (cc_ipc_queue *)mem;
    size_t len = 0, size = cc_ipc_queue_header_size() + 100; /* ring: 96 */
    assert_true(size <= sizeof mem);
    assert_int_equal(cc_ipc_queue_init(q, size), 0);
    assert_int_equal(cc_ipc_queue_put(q, msg, 89, CC_NOWAIT), -EMSGSIZE);
    fill(msg, 88, 3);
    assert_int_equal(cc_ipc_queue_put(q, msg, 88, CC_NOWAIT), 0);
    assert_int_equal(cc_ipc_queue_get(q, out, sizeof out, &len, CC_NOWAIT), 0);
    assert_int_equal(len, 88);
    assert_true(intact(out, 88, 3));
}

/* Put a 10 MiB message, then wait for the parent to have checked it. */
static int child_puts_10mib(void *arg)
{
    (void)arg;
    cc_ipc_queue *q = queue_of(cc_shm_data(segment));
    shared *sh = cc_shm_data(segment);
    unsigned char *buf = malloc(10 * MIB);
    fill(buf, 10 * MIB, 10);
    int r = cc_ipc_queue_put(q, buf, 10 * MIB, SEC_DEADLINE(60));
    free(buf);
    if (r != 0)
        return 1;
    return cc_ipc_event_wait(&sh->ev[0], SEC_DEADLINE(60)) == 0 ? 0 : 2;
}

static void queue_carries_10mib_between_processes(void **state)
{
    (void)state;
    shared *sh = shared_new(10 * MIB + 64);
    cc_ipc_queue *q = queue_of(sh);
    pid_t pid = cc_test_fork(child_puts_10mib, NULL);
    unsigned char *buf = malloc(10 * MIB);
    size_t len = 0;
    assert_int_equal(cc_ipc_queue_get(q, buf, 10 * MIB, &len, SEC_DEADLINE(60)), 0);
    assert_int_equal(len, 10 * MIB);
    assert_true(intact(buf, len, 10));
    free(buf);
    assert_int_equal(cc_ipc_queue_count(q), 0);
    cc_ipc_event_set(&sh->ev[0]);
    assert_int_equal(cc_test_reap(pid), 0);
    shared_free();
}

/* Producer `id` puts n numbered messages of varying sizes. */
static int child_produces(void *arg)
{
    long *p = arg; /* {id, n} */
    cc_ipc_queue *q = queue_of(cc_shm_data(segment));
    unsigned char buf[512];
    for (long i = 0; i < p[1]; i++) {
        size_t n = 8 + (size_t)(i % 300);
        fill(buf, n, (unsigned)i);
        memcpy(buf, &(uint32_t){(uint32_t)p[0]}, 4);
        memcpy(buf + 4, &(uint32_t){(uint32_t)i}, 4);
        if (cc_ipc_queue_put(q, buf, n, SEC_DEADLINE(60)) != 0)
            return 1;
    }
    return 0;
}

static void queue_orders_each_producer_across_processes(void **state)
{
    (void)state;
    shared *sh = shared_new(2048); /* small: producers block on a full ring */
    cc_ipc_queue *q = queue_of(sh);
    long n = cc_test_n(20000);
    long a[2] = {0, n}, b[2] = {1, n};
    pid_t pa = cc_test_fork(child_produces, a), pb = cc_test_fork(child_produces, b);
    uint32_t next[2] = {0, 0};
    unsigned char buf[512];
    for (long k = 0; k < 2 * n; k++) {
        size_t len;
        uint32_t id, i;
        assert_int_equal(cc_ipc_queue_get(q, buf, sizeof buf, &len,
                                          SEC_DEADLINE(60)), 0);
        memcpy(&id, buf, 4);
        memcpy(&i, buf + 4, 4);
        assert_true(id < 2);
        assert_int_equal(i, next[id]++);
        assert_int_equal(len, 8 + i % 300);
        unsigned char want[512];
        fill(want, len, i);
        assert_memory_equal(buf + 8, want + 8, len - 8);
    }
    assert_int_equal(cc_test_reap(pa), 0);
    assert_int_equal(cc_test_reap(pb), 0);
    assert_int_equal(cc_ipc_queue_count(q), 0);
    shared_free();
}

/* Block in get on an empty queue (until killed). */
static int child_gets(void *arg)
{
    (void)arg;
    cc_ipc_queue *q = queue_of(cc_shm_data(segment));
    char buf[16];
    size_t len;
    cc_ipc_queue_get(q, buf, sizeof buf, &len, CC_FOREVER);
    return 1;
}

static void queue_survives_a_consumer_killed_while_waiting(void **state)
{
    (void)state;
    shared *sh = shared_new(4096);
    cc_ipc_queue *q = queue_of(sh);
    for (long i = 0; i < cc_test_n(20); i++) {
        pid_t pid = cc_test_fork(child_gets, NULL);
        usleep((useconds_t)(1000 + (i % 5) * 1000));
        kill(pid, SIGKILL);
        assert_int_equal(cc_test_reap(pid), 128 + SIGKILL);
        char buf[16];
        size_t len;
        assert_int_equal(cc_ipc_queue_put(q, "after", 5, SEC_DEADLINE(20)), 0);
        assert_int_equal(cc_ipc_queue_get(q, buf, sizeof buf, &len,
                                          SEC_DEADLINE(20)), 0);
        assert_int_equal(len, 5);
        assert_memory_equal(buf, "after", 5);
    }
    shared_free();
}

/* Get the big message and put it back, forever: killed mostly mid-copy. */
static int child_cycles_a_big_message(void *arg)
{
    cc_ipc_queue *q = queue_of(cc_shm_data(segment));
    size_t size = *(size_t *)arg, len;
    unsigned char *buf = malloc(size);
    for (;;) {
        if (cc_ipc_queue_get(q, buf, size, &len, SEC_DEADLINE(60)) != 0 ||
            cc_ipc_queue_put(q, buf, len, SEC_DEADLINE(60)) != 0)
            return 1;
    }
}

static void queue_survives_a_consumer_killed_mid_get(void **state)
{
    (void)state;
    size_t size = 2 * MIB;
    shared *sh = shared_new(2 * size + 64);
    cc_ipc_queue *q = queue_of(sh);
    unsigned char *buf = malloc(size);
    size_t len;
    for (long i = 0; i < cc_test_n(30); i++) {
        fill(buf, size, (unsigned)i);
        assert_int_equal(cc_ipc_queue_put(q, buf, size, SEC_DEADLINE(20)), 0);
        pid_t pid = cc_test_fork(child_cycles_a_big_message, &size);
        usleep((useconds_t)(500 + (i % 7) * 700));
        kill(pid, SIGKILL);
        assert_int_equal(cc_test_reap(pid), 128 + SIGKILL);
        /* The message is whole, or was taken by a get that committed before
         * the kill and never put back: never torn, never two. */
        size_t n = cc_ipc_queue_count(q);
        assert_true(n <= 1);
        if (n == 1) {
            memset(buf, 0, size);
            assert_int_equal(cc_ipc_queue_get(q, buf, size, &len, CC_NOWAIT), 0);
            assert_int_equal(len, size);
            assert_true(intact(buf, size, (unsigned)i));
        }
        assert_int_equal(cc_ipc_queue_put(q, "ok", 2, CC_NOWAIT), 0);
        assert_int_equal(cc_ipc_queue_get(q, buf, size, &len, CC_NOWAIT), 0);
        assert_int_equal(len, 2);
        assert_int_equal(cc_ipc_queue_count(q), 0);
    }
    free(buf);
    shared_free();
}

/* ---- a death right after a commit ---------------------------------------- */

/* The commit at which a child of child_dies_after_commit must die. */
static enum cc__ipc_commit dying_at;

/* The test hook (cc__ipc_test_after_commit) of such a child. */
static void die_after_commit(enum cc__ipc_commit where)
{
    if (where == dying_at)
        raise(SIGKILL);
}

/* Make the commit *arg (a queue put or get of one message, an event set,
 * a semaphore release of one unit, the last arrival at a barrier of 2)
 * and die right after it. */
static int child_dies_after_commit(void *arg)
{
    shared *sh = cc_shm_data(segment);
    cc_ipc_queue *q = queue_of(sh);
    dying_at = *(enum cc__ipc_commit *)arg;
    cc__store_relaxed(&cc__ipc_test_after_commit, die_after_commit);
    char buf[16];
    size_t len;
    switch (dying_at) {
    case CC__IPC_QUEUE_PUT:
        cc_ipc_queue_put(q, "item", 4, SEC_DEADLINE(20));
        break;
    case CC__IPC_QUEUE_GET:
        cc_ipc_queue_get(q, buf, sizeof buf, &len, SEC_DEADLINE(20));
        break;
    case CC__IPC_EVENT_SET:
        cc_ipc_event_set(&sh->ev[0]);
        break;
    case CC__IPC_SEM_RELEASE:
        cc_ipc_semaphore_release(&sh->sem[0], 1);
        break;
    case CC__IPC_BARRIER_END:
        cc_ipc_barrier_wait(&sh->barrier, SEC_DEADLINE(20));
        break;
    }
    return 1; /* not reached */
}

/* Wait, as long as it takes, for what the commit *arg gives: get "item",
 * put one more message into the room a get makes, the event, a unit, the
 * end of the barrier's round (as its first arrival): 0 when done. */
static int child_waits_forever(void *arg)
{
    shared *sh = cc_shm_data(segment);
    cc_ipc_queue *q = queue_of(sh);
    char buf[16];
    size_t len = 0;
    switch (*(enum cc__ipc_commit *)arg) {
    case CC__IPC_QUEUE_PUT:
        return cc_ipc_queue_get(q, buf, sizeof buf, &len, CC_FOREVER) == 0 &&
                       len == 4 && !memcmp(buf, "item", 4) ? 0 : 3;
    case CC__IPC_QUEUE_GET:
        return cc_ipc_queue_put(q, "more", 4, CC_FOREVER) == 0 ? 0 : 3;
    case CC__IPC_EVENT_SET:
        return cc_ipc_event_wait(&sh->ev[0], CC_FOREVER) == 0 ? 0 : 3;
    case CC__IPC_SEM_RELEASE:
        return cc_ipc_semaphore_acquire(&sh->sem[0], CC_FOREVER) == 0 ? 0 : 3;
    case CC__IPC_BARRIER_END:
        return cc_ipc_barrier_wait(&sh->barrier, CC_FOREVER) == 0 ? 0 : 3;
    }
    return 4;
}

/* cc_test_reap, but a child still running after 10 s is killed: -1. */
static int reap_within_10s(pid_t pid)
{
    int st;
    for (int64_t end = cc_now() + 10 * CC_SEC; cc_now() < end; usleep(1000)) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        assert_true(r >= 0 || errno == EINTR);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    kill(pid, SIGKILL);
    cc_test_reap(pid);
    return -1;
}

/* Wait (10 s at most) until process pid sleeps (state S), then 20 ms. */
static void wait_asleep(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    for (int64_t end = cc_now() + 10 * CC_SEC; cc_now() < end;) {
        char buf[256] = "";
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        const char *st = n > 0 ? strrchr(buf, ')') : NULL;
        if (st && st[1] == ' ' && st[2] == 'S')
            break;
        usleep(1000);
    }
    usleep(20000);
}

/* A child asleep in child_waits_forever(where) (no deadline); another
 * that dies right after the commit `where`, before the wake that follows
 * it unless both are one: the sleeper must still finish, within 10 s. */
static void wakes_despite_a_death_after(enum cc__ipc_commit where)
{
    pid_t waiter = cc_test_fork(child_waits_forever, &where);
    wait_asleep(waiter);
    pid_t dier = cc_test_fork(child_dies_after_commit, &where);
    assert_int_equal(cc_test_reap(dier), 128 + SIGKILL);
    assert_int_equal(reap_within_10s(waiter), 0); /* -1: stranded */
}

/* A putter (get: a getter) that dies after its commit, before it wakes
 * the other side: a getter (putter) asleep before the commit, with no
 * deadline, is woken and takes the message (puts into the room made). */
static void queue_wakes_despite_a_death_after_commit(void **state)
{
    (void)state;
    for (int put = 1; put >= 0; put--) {
        shared *sh = shared_new(64); /* a ring of 64 bytes */
        cc_ipc_queue *q = queue_of(sh);
        if (!put) { /* full (16 + 48 bytes): the putter must wait */
            char fill[40] = "fill";
            assert_int_equal(cc_ipc_queue_put(q, "item", 4, CC_NOWAIT), 0);
            assert_int_equal(cc_ipc_queue_put(q, fill, sizeof fill,
                                              CC_NOWAIT), 0);
            assert_int_equal(cc_ipc_queue_put(q, "more", 4, CC_NOWAIT),
                             -ETIMEDOUT);
        }
        wakes_despite_a_death_after(put ? CC__IPC_QUEUE_PUT
                                        : CC__IPC_QUEUE_GET);
        /* The queue goes on: the dead one's lock was repaired. */
        assert_int_equal(cc_ipc_queue_count(q), put ? 0 : 2);
        shared_free();
    }
}

/* A setter that dies right after it set the flag: a waiter asleep before
 * the set, with no deadline, returns. */
static void event_wakes_despite_a_death_after_set(void **state)
{
    (void)state;
    shared *sh = shared_new(64);
    wakes_despite_a_death_after(CC__IPC_EVENT_SET);
    assert_true(cc_ipc_event_is_set(&sh->ev[0]));
    shared_free();
}

/* A releaser that dies right after it added its unit: an acquirer asleep
 * before the release, with no deadline, takes the unit. */
static void semaphore_wakes_despite_a_death_after_release(void **state)
{
    (void)state;
    shared *sh = shared_new(64);
    wakes_despite_a_death_after(CC__IPC_SEM_RELEASE);
    assert_int_equal(cc_ipc_semaphore_value(&sh->sem[0]), 0);
    shared_free();
}

/* The last party, dying right after it ended the round (in the barrier's
 * lock): the first, asleep with no deadline, passes with its index 0, and
 * the death breaks the barrier (as documented). */
static void barrier_wakes_despite_a_death_after_the_round(void **state)
{
    (void)state;
    shared *sh = shared_new(64);
    assert_int_equal(cc_ipc_barrier_init(&sh->barrier, 2), 0);
    wakes_despite_a_death_after(CC__IPC_BARRIER_END);
    assert_int_equal(cc_ipc_barrier_wait(&sh->barrier, CC_NOWAIT), -EPIPE);
    shared_free();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CC_TEST(lock_basics),
        CC_TEST(a_dead_holder_is_reported_to_the_next_owner),
        CC_TEST(unrepaired_lock_becomes_unrecoverable),
        CC_TEST(lock_acquire_times_out_never_early),
        CC_TEST(lock_excludes_between_processes),
        CC_TEST(event_between_processes),
        CC_TEST(semaphore_between_processes),
        CC_TEST(condition_between_processes),
        CC_TEST(barrier_between_processes),
        CC_TEST(barrier_timeout_and_abort_break_it),
        CC_TEST(barrier_round_passed_stays_passed),
        CC_TEST(queue_keeps_order_and_wraps),
        CC_TEST(queue_sizes_and_timeouts),
        CC_TEST(queue_largest_message_of_an_odd_size),
        CC_TEST(queue_carries_10mib_between_processes),
        CC_TEST(queue_orders_each_producer_across_processes),
        CC_TEST(queue_survives_a_consumer_killed_while_waiting),
        CC_TEST(queue_survives_a_consumer_killed_mid_get),
        CC_TEST(queue_wakes_despite_a_death_after_commit),
        CC_TEST(event_wakes_despite_a_death_after_set),
        CC_TEST(semaphore_wakes_despite_a_death_after_release),
        CC_TEST(barrier_wakes_despite_a_death_after_the_round),
    };
    return CC_RUN_TESTS(tests);
}
