/*
 * coro_switch peer: ucontext (swapcontext, which makes a sigprocmask syscall
 * per switch), ping-pong between the main context and one context.
 * Usage: peer_coro_switch_ucontext [N switches, default 10,000,000]
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <ucontext.h>

static ucontext_t main_uc, player_uc;
static long count, n_switches;

static void player(void)
{
    for (;;) {
        count++;
        swapcontext(&player_uc, &main_uc);
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
    static char stack[64 * 1024];
    n_switches = argc > 1 ? atol(argv[1]) : 10000000;
    getcontext(&player_uc);
    player_uc.uc_stack.ss_sp = stack;
    player_uc.uc_stack.ss_size = sizeof stack;
    player_uc.uc_link = NULL;
    makecontext(&player_uc, player, 0);
    double t0 = now_ns();
    while (count < n_switches) {
        count++;
        swapcontext(&main_uc, &player_uc);
    }
    double t1 = now_ns();
    if (count < n_switches || count > n_switches + 1) {
        fprintf(stderr, "coro_switch: checksum: %ld switches\n", count);
        return 1;
    }
    printf("coro_switch: %.2f ns/switch\n", (t1 - t0) / (double)count);
    return 0;
}
