/*
 * guide_loop.c: the "asyncio and gevent" section of docs/guide.md: an event
 * loop, tasks in a task group, a deadline scope, cancellation, a thread that
 * wakes a task, blocking code on a thread pool, and two tasks talking over
 * a socket. Exits 0 when every check passes.
 */
#include <concur.h>

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHECK(cond)                                                   \
    do {                                                              \
        if (!(cond)) {                                                \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond); \
            return 1;                                                 \
        }                                                             \
    } while (0)

static int square_later(void *arg, void **result)
{
    intptr_t i = (intptr_t)arg;
    int r = cc_sleep(i * CC_MSEC); /* parks this task; the others run */
    if (r != 0)
        return r;
    *result = (void *)(i * i);
    return 0;
}

static int gather(void)
{
    cc_task_group *tg;
    cc_future *ts[10];
    CHECK(cc_task_group_new(&tg, 0) == 0);
    for (intptr_t i = 0; i < 10; i++)
        CHECK(cc_task_group_spawn(tg, square_later, (void *)i, NULL, &ts[i],
                                  CC_FOREVER) == 0);
    CHECK(cc_task_group_close(tg, false) == 0); /* joins every member */
    intptr_t sum = 0;
    for (int i = 0; i < 10; i++) {
        void *v;
        CHECK(cc_future_result(ts[i], CC_NOWAIT, &v) == 0);
        sum += (intptr_t)v;
        cc_future_release(ts[i]);
    }
    CHECK(sum == 285);
    return 0;
}

static int timeout_scope(void)
{
    cc_deadline_scope scope;
    CHECK(cc_deadline_scope_begin(&scope, cc_deadline_in(50 * CC_MSEC)) == 0);
    int r = cc_sleep(10 * CC_SEC); /* any blocking call in the scope */
    CHECK(cc_deadline_scope_end(&scope) == -ETIMEDOUT);
    CHECK(r == -ETIMEDOUT);
    return 0;
}

static int wait_forever(void *arg, void **result)
{
    cc_event *never = arg;
    int r = cc_event_wait(never, CC_FOREVER); /* -ECANCELED when cancelled */
    /* ... cleanup that must not be interrupted goes in a shield ... */
    return r;
}

static int cancel_a_task(void)
{
    cc_event never = CC_EVENT_INIT;
    cc_future *t;
    CHECK(cc_spawn(wait_forever, &never, &t) == 0);
    cc_yield(); /* let it start and park */
    CHECK(cc_task_cancel(t) == 0);
    CHECK(cc_future_result(t, CC_FOREVER, NULL) == -ECANCELED);
    cc_future_release(t);
    cc_event_destroy(&never);
    return 0;
}

static void *set_later(void *event)
{
    cc_sleep(20 * CC_MSEC);
    cc_event_set(event); /* from a plain thread */
    return NULL;
}

static int thread_wakes_task(void)
{
    cc_event ev = CC_EVENT_INIT;
    cc_thread *th;
    CHECK(cc_thread_start(&th, set_later, &ev, NULL) == 0);
    CHECK(cc_event_wait(&ev, cc_deadline_in(10 * CC_SEC)) == 0);
    CHECK(cc_thread_join(th, CC_FOREVER, NULL) == 0);
    cc_event_destroy(&ev);
    return 0;
}

static int blocking_call(void *arg, void **result)
{
    usleep(20000); /* a library call that blocks its thread */
    *result = (void *)(intptr_t)42;
    return 0;
}

static int to_thread(void)
{
    cc_executor *pool;
    CHECK(cc_thread_pool_new(&pool, NULL) == 0);
    void *v;
    CHECK(cc_to_thread(pool, blocking_call, NULL, &v) == 0);
    CHECK((intptr_t)v == 42);
    cc_executor_free(pool);
    return 0;
}

static int echo_server(void *arg, void **result)
{
    int fd = (int)(intptr_t)arg;
    char buf[64];
    ssize_t n;
    while ((n = cc_recv(fd, buf, sizeof buf, 0, CC_FOREVER)) > 0)
        if (cc_sendall(fd, buf, (size_t)n, 0, CC_FOREVER) != 0)
            return -EIO;
    return (int)n; /* 0 at end of stream */
}

static int sockets(void)
{
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
                     sv) == 0);
    cc_future *server;
    CHECK(cc_spawn(echo_server, (void *)(intptr_t)sv[1], &server) == 0);
    char buf[8] = {0};
    cc_deadline d = cc_deadline_in(10 * CC_SEC);
    CHECK(cc_sendall(sv[0], "ping", 4, 0, d) == 0);
    CHECK(cc_recv(sv[0], buf, sizeof buf, 0, d) == 4);
    CHECK(memcmp(buf, "ping", 4) == 0);
    shutdown(sv[0], SHUT_WR); /* the server sees the end and returns */
    CHECK(cc_future_result(server, d, NULL) == 0);
    cc_future_release(server);
    close(sv[0]);
    close(sv[1]);
    return 0;
}

static int main_task(void *arg, void **result)
{
    int failed = gather() || timeout_scope() || cancel_a_task() ||
                 thread_wakes_task() || to_thread() || sockets();
    *result = (void *)(intptr_t)!failed;
    return 0;
}

int main(void)
{
    void *ok = NULL;
    CHECK(cc_loop_run(main_task, NULL, &ok) == 0);
    CHECK(ok != NULL);
    printf("guide_loop: all checks passed\n");
    return 0;
}
