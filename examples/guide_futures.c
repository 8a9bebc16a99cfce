/*
 * guide_futures.c: the "concurrent.futures" section of docs/guide.md: a thread
 * pool, submit and result, a task's error and message, as_completed, map,
 * cancel and shutdown. Exits 0 when every check passes.
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

static int parse_port(void *arg, void **result)
{
    const char *s = arg;
    char *end;
    long port = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || port <= 0 || port > 65535) {
        cc_task_set_error_message("bad port '%s'", s);
        return -EINVAL; /* Python: raise ValueError(...) */
    }
    *result = (void *)(intptr_t)port;
    return 0;
}

static int submit_and_result(cc_executor *pool)
{
    char *inputs[3] = {"80", "http", "8080"};
    cc_future *fs[3];
    for (int i = 0; i < 3; i++)
        CHECK(cc_executor_submit(pool, parse_port, inputs[i], &fs[i]) == 0);
    void *port;
    CHECK(cc_future_result(fs[0], cc_deadline_in(5 * CC_SEC), &port) == 0);
    CHECK((intptr_t)port == 80);
    CHECK(cc_future_result(fs[1], cc_deadline_in(5 * CC_SEC), &port) == -EINVAL);
    CHECK(strcmp(cc_future_error_message(fs[1]), "bad port 'http'") == 0);

    cc_as_completed *it;
    CHECK(cc_as_completed_new(&it, fs, 3) == 0);
    cc_future *f; /* borrowed from the iterator */
    int err, n = 0;
    while ((err = cc_as_completed_next(it, cc_deadline_in(5 * CC_SEC), &f)) == 0)
        n += cc_future_error(f) == 0;
    CHECK(err == -ENOENT && n == 2); /* -ENOENT: every future was yielded */
    cc_as_completed_free(it);
    for (int i = 0; i < 3; i++)
        cc_future_release(fs[i]); /* the submitter's reference */
    return 0;
}

static int map(cc_executor *pool)
{
    void *args[4] = {"1", "2", "3", "4"};
    cc_map_array in = {args, 4, 0};
    cc_map *m;
    CHECK(cc_executor_map(&m, pool, parse_port, cc_map_array_next, &in,
                          NULL) == 0);
    intptr_t total = 0;
    void *port;
    int err;
    while ((err = cc_map_next(m, cc_deadline_in(5 * CC_SEC), &port)) == 0)
        total += (intptr_t)port;
    CHECK(err == -ENOENT && total == 10);
    cc_map_free(m);
    return 0;
}

static int wait_gate(void *gate, void **result)
{
    return cc_future_wait(gate, CC_FOREVER);
}

static int cancel_and_shutdown(void)
{
    cc_executor *one;
    cc_thread_pool_options opts = {.max_workers = 1};
    CHECK(cc_thread_pool_new(&one, &opts) == 0);
    cc_future *gate, *busy, *queued;
    CHECK(cc_future_new(&gate) == 0); /* a future completed by hand */
    CHECK(cc_executor_submit(one, wait_gate, gate, &busy) == 0);
    CHECK(cc_executor_submit(one, parse_port, "22", &queued) == 0);
    CHECK(cc_future_result(busy, cc_deadline_in(CC_MSEC), NULL) == -ETIMEDOUT);
    CHECK(cc_future_cancel(queued)); /* not started yet: cancelled */
    CHECK(cc_future_result(queued, CC_NOWAIT, NULL) == -ECANCELED);
    CHECK(cc_future_set_result(gate, NULL) == 0);
    cc_executor_shutdown(one, true, false); /* waits; joins the worker */
    CHECK(cc_future_result(busy, CC_NOWAIT, NULL) == 0);
    CHECK(cc_executor_submit(one, parse_port, "22", NULL) == -ESHUTDOWN);
    cc_future_release(gate);
    cc_future_release(busy);
    cc_future_release(queued);
    cc_executor_free(one);
    return 0;
}

int main(void)
{
    cc_executor *pool;
    cc_thread_pool_options opts = {.max_workers = 4,
                                   .thread_name_prefix = "parse"};
    CHECK(cc_thread_pool_new(&pool, &opts) == 0);
    CHECK(submit_and_result(pool) == 0);
    CHECK(map(pool) == 0);
    cc_executor_free(pool); /* shutdown(wait = true), then free */
    CHECK(cancel_and_shutdown() == 0);
    return 0;
}
