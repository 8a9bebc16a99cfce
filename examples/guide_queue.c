/*
 * guide_queue.c: the "queue" section of docs/guide.md: a producer and a
 * consumer thread on a bounded FIFO, task_done/join, shutdown, a priority
 * queue, and the error codes for queue.Full, Empty and ShutDown.
 * Exits 0 when every check passes.
 */
#include <concur.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                   \
    do {                                                              \
        if (!(cond)) {                                                \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond); \
            return 1;                                                 \
        }                                                             \
    } while (0)

static void *consume(void *arg)
{
    cc_queue *q = arg;
    intptr_t total = 0;
    void *item;
    while (cc_queue_get(q, &item, CC_FOREVER) == 0) { /* -ESHUTDOWN: done */
        total += (intptr_t)item;
        cc_queue_task_done(q);
    }
    return (void *)total;
}

static int producer_consumer(void)
{
    cc_queue *q;
    CHECK(cc_queue_new(&q, CC_QUEUE_FIFO, 8) == 0);
    cc_thread *consumer;
    CHECK(cc_thread_start(&consumer, consume, q, NULL) == 0);
    for (intptr_t i = 1; i <= 100; i++)
        CHECK(cc_queue_put(q, (void *)i, cc_deadline_in(5 * CC_SEC)) == 0);
    CHECK(cc_queue_join(q, cc_deadline_in(5 * CC_SEC)) == 0);
    cc_queue_shutdown(q, false); /* the consumer's get fails once empty */
    void *total;
    CHECK(cc_thread_join(consumer, cc_deadline_in(5 * CC_SEC), &total) == 0);
    CHECK((intptr_t)total == 5050);
    CHECK(cc_queue_put(q, NULL, CC_NOWAIT) == -ESHUTDOWN); /* ShutDown */
    cc_queue_free(q);
    return 0;
}

static int errors(void)
{
    cc_queue *q;
    CHECK(cc_queue_new(&q, CC_QUEUE_LIFO, 1) == 0);
    void *item;
    CHECK(cc_queue_get(q, &item, CC_NOWAIT) == -ETIMEDOUT);          /* Empty */
    CHECK(cc_queue_put(q, "a", CC_NOWAIT) == 0);
    CHECK(cc_queue_put(q, "b", cc_deadline_in(CC_MSEC)) == -ETIMEDOUT); /* Full */
    CHECK(cc_queue_task_done(q) == 0);
    CHECK(cc_queue_task_done(q) == -EINVAL); /* ValueError */
    cc_queue_free(q);
    return 0;
}

static int priorities(void)
{
    cc_queue *q;
    CHECK(cc_queue_new(&q, CC_QUEUE_PRIORITY, 0) == 0); /* unbounded */
    CHECK(cc_queue_put_priority(q, "later", 10, CC_NOWAIT) == 0);
    CHECK(cc_queue_put_priority(q, "urgent", 1, CC_NOWAIT) == 0);
    void *item;
    CHECK(cc_queue_get(q, &item, CC_NOWAIT) == 0);
    CHECK(strcmp(item, "urgent") == 0); /* lowest value first */
    cc_queue_free(q);
    return 0;
}

static void free_item(void *item, void *arg) { free(item); }

static int owned_items(void)
{
    cc_queue *q;
    CHECK(cc_queue_new(&q, CC_QUEUE_FIFO, 0) == 0);
    cc_queue_set_destructor(q, free_item, NULL); /* for dropped items */
    for (int i = 0; i < 3; i++)
        CHECK(cc_queue_put(q, strdup("job"), CC_NOWAIT) == 0);
    void *item;
    CHECK(cc_queue_get(q, &item, CC_NOWAIT) == 0);
    free(item);                 /* a got item is the getter's */
    cc_queue_shutdown(q, true); /* immediate: the other two are freed */
    CHECK(cc_queue_get(q, &item, CC_NOWAIT) == -ESHUTDOWN);
    cc_queue_free(q);
    return 0;
}

int main(void)
{
    CHECK(producer_consumer() == 0);
    CHECK(errors() == 0);
    CHECK(priorities() == 0);
    CHECK(owned_items() == 0);
    return 0;
}
