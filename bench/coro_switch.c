/*
 * coro_switch: ping-pong between two coroutines (src/coro.h), cost of one
 * switch. Peers: bench/peers/coro_switch_boost.cpp (Boost.Context fcontext),
 * bench/peers/coro_switch_ucontext.c (swapcontext).
 * Usage: bench_coro_switch [N switches, default 200,000,000]
 */
#include "../src/coro.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static cc__coro *main_coro, *a, *b;
static long count, n_switches;

static void player_a(void *arg)
{
    while (count < n_switches) {
        count++;
        cc__coro_switch(a, b);
    }
    cc__coro_switch(a, main_coro);
}

static void player_b(void *arg)
{
    for (;;) {
        count++;
        cc__coro_switch(b, a);
    }
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    n_switches = argc > 1 ? atol(argv[1]) : 200000000;
    main_coro = cc__coro_current();
    if (cc__coro_create(&a, player_a, NULL, 0, "a") < 0 ||
        cc__coro_create(&b, player_b, NULL, 0, "b") < 0)
        return 1;
    double t0 = now_ns();
    cc__coro_switch(main_coro, a);
    double t1 = now_ns();
    /* a and b each count the switch they are about to make. */
    if (count < n_switches || count > n_switches + 1) {
        fprintf(stderr, "coro_switch: checksum: %ld switches, wanted %ld\n",
                count, n_switches);
        return 1;
    }
    printf("coro_switch: %.2f ns/switch\n", (t1 - t0) / (double)(count + 2));
    cc__coro_destroy(a);
    cc__coro_destroy(b);
    return 0;
}
