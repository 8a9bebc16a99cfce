/*
 * queue_bench.h: the shape shared by queue_1p1c and queue_2p2c (BENCHMARKS.md):
 * P producer threads put N items in all into one bounded FIFO of capacity
 * 1024, C consumer threads get them; items/s over the whole transfer, and a
 * checksum so that nothing is lost or optimised away. Peers in bench/peers/
 * (queue_naive.c, queue_chan.go, queue_py.py) have the same shape.
 */
#ifndef CONCUR_QUEUE_BENCH_H
#define CONCUR_QUEUE_BENCH_H

#include <concur.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { QB_CAPACITY = 1024, QB_MAX_THREADS = 16 };

struct qb_thread {
    struct qb *b; /* the run */
    long id;      /* index among the producers or among the consumers */
};

struct qb {
    cc_queue *q;           /* the queue under test */
    long n;                /* items in all */
    int producers;         /* producer threads */
    int consumers;         /* consumer threads */
    atomic_int started;    /* threads ready to go */
    atomic_bool go;        /* released together once all are started */
    atomic_ulong checksum; /* sum of the items got */
};

static void qb_wait_go(struct qb *b)
{
    atomic_fetch_add(&b->started, 1);
    while (!atomic_load_explicit(&b->go, memory_order_acquire))
        ;
}

static void *qb_produce(void *arg)
{
    struct qb *b = ((struct qb_thread *)arg)->b;
    long id = ((struct qb_thread *)arg)->id;
    qb_wait_go(b);
    for (long i = id; i < b->n; i += b->producers)
        if (cc_queue_put(b->q, (void *)(uintptr_t)(i + 1), CC_FOREVER) != 0)
            abort();
    return NULL;
}

static void *qb_consume(void *arg)
{
    struct qb *b = ((struct qb_thread *)arg)->b;
    long id = ((struct qb_thread *)arg)->id;
    long count = b->n / b->consumers + (id < b->n % b->consumers);
    unsigned long sum = 0;
    qb_wait_go(b);
    for (long i = 0; i < count; i++) {
        void *item;
        if (cc_queue_get(b->q, &item, CC_FOREVER) != 0)
            abort();
        sum += (uintptr_t)item;
    }
    atomic_fetch_add(&b->checksum, sum);
    return NULL;
}

static double qb_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Run the transfer and print `figure: items/s`; returns main's exit status. */
static int qb_run(const char *figure, int producers, int consumers, int argc,
                  char **argv)
{
    struct qb b = {.n = argc > 1 ? atol(argv[1]) : 20000000,
                   .producers = producers, .consumers = consumers};
    if (b.n <= 0 || cc_queue_new(&b.q, CC_QUEUE_FIFO, QB_CAPACITY) != 0)
        return 2;
    pthread_t t[QB_MAX_THREADS];
    struct qb_thread arg[QB_MAX_THREADS];
    int nt = producers + consumers;
    if (nt > QB_MAX_THREADS)
        return 2;
    for (int i = 0; i < nt; i++) {
        bool prod = i < producers;
        arg[i] = (struct qb_thread){&b, prod ? i : i - producers};
        if (pthread_create(&t[i], NULL, prod ? qb_produce : qb_consume, &arg[i]))
            return 2;
    }
    while (atomic_load(&b.started) < nt)
        ;
    double t0 = qb_now();
    atomic_store_explicit(&b.go, true, memory_order_release);
    for (int i = 0; i < nt; i++)
        pthread_join(t[i], NULL);
    double secs = qb_now() - t0;
    unsigned long n = b.n, expect = n * (n + 1) / 2;
    if (atomic_load(&b.checksum) != expect) {
        fprintf(stderr, "%s: checksum mismatch\n", figure);
        return 1;
    }
    cc_queue_free(b.q);
    printf("%s: %.0f items/s\n", figure, b.n / secs);
    return 0;
}

#endif
