/*
 * coro_yield: two tasks of one event loop (include/concur/loop.h) take turns
 * with cc_yield, through the scheduler's run queue: the cost of one yield
 * (a task suspends and the other resumes). Peer: Go's runtime.Gosched.
 * Usage: bench_coro_yield [N yields in all, default 20,000,000]
 */
#include <concur.h>

#include <stdio.h>
#include <stdlib.h>

static long n_yields; /* yields to make, both tasks together */
static long count;    /* yields made */

static int player(void *arg, void **result)
{
    (void)arg;
    (void)result;
    while (count < n_yields) {
        count++;
        cc_yield();
    }
    return 0;
}

static int bench_main(void *arg, void **result)
{
    cc_future *a, *b;
    if (cc_spawn(player, NULL, &a) || cc_spawn(player, NULL, &b))
        return -ENOMEM;
    int64_t t0 = cc_now();
    cc_future_wait(a, CC_FOREVER);
    cc_future_wait(b, CC_FOREVER);
    *(int64_t *)arg = cc_now() - t0;
    cc_future_release(a);
    cc_future_release(b);
    return 0;
}

int main(int argc, char **argv)
{
    n_yields = argc > 1 ? atol(argv[1]) : 20000000;
    int64_t ns = 0;
    if (cc_loop_run(bench_main, &ns, NULL) != 0)
        return 1;
    if (count < n_yields || count > n_yields + 1) {
        fprintf(stderr, "coro_yield: checksum: %ld yields, wanted %ld\n",
                count, n_yields);
        return 1;
    }
    printf("coro_yield: %.2f ns/yield\n", (double)ns / (double)count);
    return 0;
}
