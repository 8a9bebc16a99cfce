/*
 * tour.c: the README's tour of libconcur, compiled and run by the test build.
 * A thread pool squares numbers; a queue carries them to a consumer thread; an
 * event says the consumer is done; a child process counts what we send it.
 */
#include <concur.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int square(void *arg, void **result)
{
    intptr_t x = (intptr_t)arg;
    *result = (void *)(x * x);
    return 0;
}

struct pipeline {
    cc_queue *queue; /* squares, from main to the consumer */
    cc_event done;   /* set by the consumer after the last item */
    intptr_t sum;    /* written by the consumer before it sets done */
};

static void *consume(void *arg)
{
    struct pipeline *p = arg;
    void *item;
    while (cc_queue_get(p->queue, &item, CC_FOREVER) == 0)
        p->sum += (intptr_t)item; /* get fails once shut down and drained */
    cc_event_set(&p->done);
    return NULL;
}

int main(void)
{
    /* Futures from an explicit pool (concurrent.futures.ThreadPoolExecutor). */
    cc_executor *pool;
    cc_thread_pool_options opts = {.max_workers = 4};
    if (cc_thread_pool_new(&pool, &opts) < 0)
        return 1;
    cc_future *fs[10];
    for (intptr_t i = 0; i < 10; i++)
        if (cc_executor_submit(pool, square, (void *)i, &fs[i]) < 0)
            return 1;
    cc_futures_wait(fs, 10, CC_ALL_COMPLETED, cc_deadline_in(5 * CC_SEC));

    /* A bounded queue to a consumer thread (queue.Queue, threading.Event). */
    struct pipeline p = {0};
    cc_event_init(&p.done);
    cc_thread *consumer;
    if (cc_queue_new(&p.queue, CC_QUEUE_FIFO, 4) < 0 ||
        cc_thread_start(&consumer, consume, &p, &(cc_thread_options){.name = "consumer"}) < 0)
        return 1;
    for (int i = 0; i < 10; i++) {
        void *square_of_i;
        if (cc_future_result(fs[i], CC_FOREVER, &square_of_i) < 0)
            return 1;
        cc_queue_put(p.queue, square_of_i, CC_FOREVER);
        cc_future_release(fs[i]);
    }
    cc_queue_shutdown(p.queue, false);
    if (cc_event_wait(&p.done, cc_deadline_in(5 * CC_SEC)) < 0)
        return 1;
    cc_thread_join(consumer, CC_FOREVER, NULL);

    /* A child process, its output captured (subprocess.run). */
    char *argv[] = {"wc", "-c", NULL};
    char input[64];
    int len = snprintf(input, sizeof input, "%ld", (long)p.sum);
    cc_completed_process done;
    cc_run_options run = {.capture_output = true, .input = input, .input_len = len};
    int err = cc_run(argv, &run, cc_deadline_in(5 * CC_SEC), &done);
    printf("sum of squares 0..9 = %ld; `wc -c` counted %s", (long)p.sum, done.out.data);
    int ok = err == 0 && p.sum == 285 && atoi(done.out.data) == len;
    cc_completed_process_free(&done);
    cc_queue_free(p.queue);
    cc_event_destroy(&p.done);
    cc_executor_shutdown(pool, true, false);
    cc_executor_free(pool);
    return ok ? 0 : 1;
}
