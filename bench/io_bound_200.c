/*
 * io_bound_200: the classic I/O-bound example: 200 HTTP GETs, one task each,
 * against a local server (tasks of the same loop, one per connection) that
 * waits 10 ms before each answer; wall time per round of 200, all answers
 * checked. The floor is 10 ms. Peer: bench/peers/io_bound_200.py (asyncio,
 * the same shape).
 * Usage: bench_io_bound_200 [rounds, default 50]
 */
#include "../tests/http_mini.h"

#include <stdlib.h>

enum { GETS = 200 };

static long correct;             /* answers with the right body */
static struct sockaddr_in where; /* the server's address */

static int get_one(void *arg, void **result)
{
    char path[32], body[64];
    snprintf(path, sizeof path, "/item/%d", (int)(intptr_t)arg);
    if (http_get(&where, path, body, sizeof body) == 0 &&
        strcmp(body, path) == 0)
        correct++;
    return 0;
}

static int round_main(struct http_server *s)
{
    cc_future *server, *fs[GETS];
    s->connections = GETS;
    if (cc_spawn(http_serve, s, &server))
        return -ENOMEM;
    for (int i = 0; i < GETS; i++)
        if (cc_spawn(get_one, (void *)(intptr_t)i, &fs[i]))
            return -ENOMEM;
    cc_futures_wait(fs, GETS, CC_ALL_COMPLETED, CC_FOREVER);
    for (int i = 0; i < GETS; i++)
        cc_future_release(fs[i]);
    int r = cc_future_result(server, CC_FOREVER, NULL);
    cc_future_release(server);
    return r;
}

static int bench_main(void *arg, void **result)
{
    long rounds = *(long *)arg;
    struct http_server s = {.delay_ns = 10 * CC_MSEC};
    int r = http_listen(&s);
    where = s.addr;
    int64_t t0 = cc_now();
    for (long i = 0; r == 0 && i < rounds; i++)
        r = round_main(&s);
    *(long *)arg = (long)(cc_now() - t0);
    close(s.listener);
    return r;
}

int main(int argc, char **argv)
{
    long rounds = argc > 1 ? atol(argv[1]) : 50, arg = rounds;
    int r = cc_loop_run(bench_main, &arg, NULL);
    if (r != 0 || correct != rounds * GETS) {
        fprintf(stderr, "io_bound_200: %s; %ld of %ld answers right\n",
                cc_strerror(r), correct, rounds * GETS);
        return 1;
    }
    printf("io_bound_200: %.2f ms\n", (double)arg / 1e6 / (double)rounds);
    return 0;
}
