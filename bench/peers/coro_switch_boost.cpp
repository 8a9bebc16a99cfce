// coro_switch peer: Boost.Context's fcontext (jump_fcontext), ping-pong between
// the main context and one fcontext, cost of one switch.
// Usage: peer_coro_switch_boost [N switches, default 200,000,000]
#include <boost/context/detail/fcontext.hpp>

#include <cstdio>
#include <cstdlib>
#include <sys/mman.h>
#include <time.h>

namespace ctx = boost::context::detail;

static long count, n_switches;

static void player(ctx::transfer_t t)
{
    ctx::fcontext_t back = t.fctx;
    for (;;) {
        count++;
        back = ctx::jump_fcontext(back, nullptr).fctx;
    }
}

static double now_ns()
{
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    n_switches = argc > 1 ? atol(argv[1]) : 200000000;
    const size_t size = 64 * 1024;
    char *stack = (char *)mmap(nullptr, size, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (stack == MAP_FAILED)
        return 1;
    ctx::fcontext_t c = ctx::make_fcontext(stack + size, size, player);
    double t0 = now_ns();
    while (count < n_switches) {
        count++;
        c = ctx::jump_fcontext(c, nullptr).fctx;
    }
    double t1 = now_ns();
    if (count < n_switches || count > n_switches + 1) {
        fprintf(stderr, "coro_switch: checksum: %ld switches\n", count);
        return 1;
    }
    printf("coro_switch: %.2f ns/switch\n", (t1 - t0) / (double)count);
    return 0;
}
