/*
 * queue_naive: the peer of queue_1p1c / queue_2p2c (BENCHMARKS.md): the
 * bounded queue a C programmer writes first, a ring of 1024 pointers under one
 * pthread mutex with two condition variables (not full, not empty). Same shape
 * as bench/queue_bench.h. Usage: peer_queue_naive PRODUCERS CONSUMERS [N]
 * Prints `queue_<P>p<C>c: <items/s> items/s`.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { CAPACITY = 1024, MAX_THREADS = 16 };

struct ring {
    pthread_mutex_t lock;     /* guards everything below */
    pthread_cond_t not_full;  /* signalled by get */
    pthread_cond_t not_empty; /* signalled by put */
    void *items[CAPACITY];    /* the ring */
    size_t head, count;       /* oldest item, items held */
};

static struct ring ring = {.lock = PTHREAD_MUTEX_INITIALIZER,
                           .not_full = PTHREAD_COND_INITIALIZER,
                           .not_empty = PTHREAD_COND_INITIALIZER};
static long n_items;
static int producers, consumers;
static atomic_int started; /* threads ready to go */
static atomic_bool go;
static atomic_ulong checksum;

static void put(void *item)
{
    pthread_mutex_lock(&ring.lock);
    while (ring.count == CAPACITY)
        pthread_cond_wait(&ring.not_full, &ring.lock);
    ring.items[(ring.head + ring.count++) % CAPACITY] = item;
    pthread_cond_signal(&ring.not_empty);
    pthread_mutex_unlock(&ring.lock);
}

static void *get(void)
{
    pthread_mutex_lock(&ring.lock);
    while (ring.count == 0)
        pthread_cond_wait(&ring.not_empty, &ring.lock);
    void *item = ring.items[ring.head];
    ring.head = (ring.head + 1) % CAPACITY;
    ring.count--;
    pthread_cond_signal(&ring.not_full);
    pthread_mutex_unlock(&ring.lock);
    return item;
}

static void wait_go(void)
{
    atomic_fetch_add(&started, 1);
    while (!atomic_load(&go))
        ;
}

static void *produce(void *arg)
{
    long id = (intptr_t)arg;
    wait_go();
    for (long i = id; i < n_items; i += producers)
        put((void *)(uintptr_t)(i + 1));
    return NULL;
}

static void *consume(void *arg)
{
    long id = (intptr_t)arg;
    long count = n_items / consumers + (id < n_items % consumers);
    unsigned long sum = 0;
    wait_go();
    for (long i = 0; i < count; i++)
        sum += (uintptr_t)get();
    atomic_fetch_add(&checksum, sum);
    return NULL;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    producers = argc > 1 ? atoi(argv[1]) : 1;
    consumers = argc > 2 ? atoi(argv[2]) : 1;
    n_items = argc > 3 ? atol(argv[3]) : 10000000;
    int nt = producers + consumers;
    if (producers < 1 || consumers < 1 || nt > MAX_THREADS || n_items < 1)
        return 2;
    pthread_t t[MAX_THREADS];
    for (int i = 0; i < nt; i++)
        if (pthread_create(&t[i], NULL, i < producers ? produce : consume,
                           (void *)(intptr_t)(i < producers ? i : i - producers)))
            return 2;
    while (atomic_load(&started) < nt)
        ;
    double t0 = now();
    atomic_store(&go, true);
    for (int i = 0; i < nt; i++)
        pthread_join(t[i], NULL);
    double secs = now() - t0;
    unsigned long n = n_items;
    if (atomic_load(&checksum) != n * (n + 1) / 2) {
        fprintf(stderr, "queue_naive: checksum mismatch\n");
        return 1;
    }
    printf("queue_%dp%dc: %.0f items/s\n", producers, consumers, n_items / secs);
    return 0;
}
