/*
 * queue_pipeline: a producer feeds numbers through a bounded queue to worker
 * threads, which square them into a results queue; the producer waits with
 * join() until every job is done, then shuts the job queue down so that the
 * workers' get() fails and they exit (Python 3.13's Queue.shutdown).
 * Exits 0 when every result arrived exactly once.
 */
#include <concur.h>

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

enum { JOBS = 10000, WORKERS = 3 };

static cc_queue *jobs, *results;

static void *worker(void *arg)
{
    void *item;
    /* get() returns -ESHUTDOWN once the queue is shut down and empty. */
    while (cc_queue_get(jobs, &item, CC_FOREVER) == 0) {
        uintptr_t n = (uintptr_t)item;
        if (cc_queue_put(results, (void *)(n * n), CC_FOREVER) != 0)
            return arg;
        cc_queue_task_done(jobs);
    }
    return NULL;
}

int main(void)
{
    if (cc_queue_new(&jobs, CC_QUEUE_FIFO, 16) != 0 ||
        cc_queue_new(&results, CC_QUEUE_FIFO, 0) != 0)
        return 1;
    pthread_t t[WORKERS];
    for (int i = 0; i < WORKERS; i++)
        pthread_create(&t[i], NULL, worker, NULL);
    for (uintptr_t n = 1; n <= JOBS; n++) /* blocks while 16 jobs wait */
        cc_queue_put(jobs, (void *)n, CC_FOREVER);
    cc_queue_join(jobs, CC_FOREVER); /* every job got and marked done */
    cc_queue_shutdown(jobs, false);
    for (int i = 0; i < WORKERS; i++)
        pthread_join(t[i], NULL);

    uint64_t sum = 0, count = 0;
    void *item;
    while (cc_queue_get(results, &item, CC_NOWAIT) == 0) {
        sum += (uintptr_t)item;
        count++;
    }
    uint64_t n = JOBS, expect = n * (n + 1) * (2 * n + 1) / 6;
    printf("%llu results, sum of squares %llu (expected %llu)\n",
           (unsigned long long)count, (unsigned long long)sum,
           (unsigned long long)expect);
    cc_queue_free(jobs);
    cc_queue_free(results);
    return count == JOBS && sum == expect ? 0 : 1;
}
