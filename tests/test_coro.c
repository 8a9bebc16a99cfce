/*
 * test_coro.c: the coroutine core (src/coro.h): switches keep every
 * callee-saved register, the stack alignment and the FP control state; resume
 * and yield; stack overflow reported by name; the stack cache; sanitizers see
 * the switches (a real race between coroutines on two threads is caught).
 *
 * Some tests run this program again as a child (argv[1] = "--child=WHAT") and
 * check how it died and what it printed.
 */
#include "testutil.h"

#include "coro.h"
#include "coro_child.h"
#include "regs_call.h"

#include <fcntl.h>
#include <fenv.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- switching ------------------------------------------------------- */

struct pingpong {
    cc__coro *a, *b; /* the two players */
    cc__coro *main;  /* where the game ends */
    long rounds;     /* switches each player makes */
    long bad_regs;   /* registers that lost their value */
    long bad_locals; /* locals that lost their value */
};

static struct pingpong *game;

static void switch_a_to_b(void *unused) { cc__coro_switch(game->a, game->b); }
static void switch_b_to_a(void *unused) { cc__coro_switch(game->b, game->a); }

/* Player: switch to the other one `rounds` times, with patterned registers
 * and a handful of live locals that must survive each switch. */
static void play(struct pingpong *g, bool is_a)
{
    uint64_t seed = is_a ? 0xa5a5000000000000u : 0x5a5a000000000000u;
    uint64_t x = seed, y = ~seed, z = 1, ez = 1;
    for (long i = 0; i < g->rounds; i++) {
        g->bad_regs += regs_call(is_a ? switch_a_to_b : switch_b_to_a, NULL,
                                 seed + ((uint64_t)i << 8));
        x += 3, y -= 5, z = z * 3 + (x ^ y);
    }
    uint64_t ex = seed + 3 * (uint64_t)g->rounds,
             ey = ~seed - 5 * (uint64_t)g->rounds;
    for (long i = 1; i <= g->rounds; i++) /* z again, without switches */
        ez = ez * 3 + ((seed + 3 * (uint64_t)i) ^ (~seed - 5 * (uint64_t)i));
    if (x != ex || y != ey || z != ez)
        g->bad_locals++;
}

static void player_a(void *arg)
{
    struct pingpong *g = arg;
    play(g, true);
    cc__coro_switch(g->a, g->b); /* let b finish its last round */
}

static void player_b(void *arg)
{
    struct pingpong *g = arg;
    play(g, false);
    cc__coro_switch(g->b, g->main);
}

/* 10^7 switches between two coroutines with every callee-saved register and
 * some locals checked across each one. */
static void switches_keep_callee_saved_registers(void **state)
{
    struct pingpong g = {.rounds = cc_test_n(10000000) / 2};
    game = &g;
    g.main = cc__coro_current();
    assert_int_equal(cc__coro_create(&g.a, player_a, &g, 0, "a"), 0);
    assert_int_equal(cc__coro_create(&g.b, player_b, &g, 0, "b"), 0);
    cc__coro_switch(g.main, g.a);
    assert_int_equal(g.bad_regs, 0);
    assert_int_equal(g.bad_locals, 0);
    assert_ptr_equal(cc__coro_current(), g.main);
    cc__coro_destroy(g.a); /* suspended: abandoned */
    cc__coro_destroy(g.b);
}

static void check_alignment(void *arg)
{
    _Alignas(16) char aligned[16];
    int *bad = arg;
    *bad += ((uintptr_t)__builtin_frame_address(0) & 15) != 0;
    *bad += ((uintptr_t)aligned & 15) != 0;
    aligned[0] = 1;
    __asm__ volatile("" ::"r"(aligned) : "memory");
}

/* Every coroutine starts with the ABI's 16-byte stack alignment, whatever
 * its stack size. */
static void stack_is_aligned_at_entry(void **state)
{
    int bad = 0;
    for (size_t size = 0; size <= 20000; size += 4096 + 8) {
        cc__coro *c;
        assert_int_equal(
            cc__coro_create(&c, check_alignment, &bad, size, "align"), 0);
        cc__coro_resume(c);
        assert_true(cc__coro_done(c));
        cc__coro_destroy(c);
    }
    assert_int_equal(bad, 0);
}

struct fp_game {
    cc__coro *a, *b, *main;
    int seen_by_b;           /* rounding mode b saw on entry */
    int seen_by_a;           /* a's mode after b changed its own */
    int traps_seen_by_b;     /* enabled FP traps b saw on entry */
    int traps_seen_by_a;     /* a's traps after the switch back */
    double a_third;          /* 1/3 computed by a after the switch */
    long double a_third_x87; /* likewise on the x87 unit */
};

static double third(void)
{
    volatile double one = 1.0, three = 3.0;
    return one / three;
}

static long double third_x87(void)
{
    volatile long double one = 1.0L, three = 3.0L;
    return one / three;
}

static void fp_a(void *arg)
{
    struct fp_game *g = arg;
    fesetround(FE_UPWARD);
    feenableexcept(FE_DIVBYZERO);
    cc__coro_switch(g->a, g->b);
    g->traps_seen_by_a = fegetexcept();
    fedisableexcept(FE_DIVBYZERO);
    g->seen_by_a = fegetround();
    g->a_third = third();
    g->a_third_x87 = third_x87();
}

static void fp_b(void *arg)
{
    struct fp_game *g = arg;
    g->seen_by_b = fegetround();
    g->traps_seen_by_b = fegetexcept();
    fesetround(FE_DOWNWARD);
    cc__coro_switch(g->b, g->a);
}

/* A rounding mode or FP trap set in one coroutine stays there: MXCSR and
 * the x87 control word (FPCR on aarch64) belong to each context. */
static void fp_control_state_is_per_coroutine(void **state)
{
    struct fp_game g = {.main = cc__coro_current()};
    fesetround(FE_UPWARD);
    double up = third();
    long double up_x87 = third_x87();
    fesetround(FE_TONEAREST);
    assert_int_equal(cc__coro_create(&g.a, fp_a, &g, 0, "fp-a"), 0);
    assert_int_equal(cc__coro_create(&g.b, fp_b, &g, 0, "fp-b"), 0);
    cc__coro_resume(g.a);
    assert_true(cc__coro_done(g.a));
    assert_int_equal(g.seen_by_b, FE_TONEAREST);
    assert_int_equal(g.seen_by_a, FE_UPWARD);
    assert_int_equal(g.traps_seen_by_b, 0);
    assert_int_equal(g.traps_seen_by_a, FE_DIVBYZERO);
    assert_int_equal(fegetexcept(), 0);
    assert_true(g.a_third == up);
    assert_true(g.a_third_x87 == up_x87);
    assert_int_equal(fegetround(), FE_TONEAREST); /* a's mode stayed in a */
    assert_true(third() < up);
    cc__coro_destroy(g.a);
    cc__coro_destroy(g.b);
}

/* ---- resume, yield, done --------------------------------------------- */

static void count_up(void *arg)
{
    long *n = arg;
    for (int i = 0; i < 3; i++) {
        (*n)++;
        cc__coro_yield();
    }
    (*n) += 100;
}

static void resume_and_yield_take_turns(void **state)
{
    long n = 0;
    cc__coro *c;
    assert_int_equal(cc__coro_create(&c, count_up, &n, 0, "counter"), 0);
    assert_string_equal(cc__coro_name(c), "counter");
    assert_false(cc__coro_done(c));
    for (long i = 1; i <= 3; i++) {
        cc__coro_resume(c);
        assert_int_equal(n, i);
        assert_false(cc__coro_done(c));
    }
    cc__coro_resume(c);
    assert_int_equal(n, 103);
    assert_true(cc__coro_done(c));
    assert_true(cc__coro_is_main(cc__coro_current()));
    cc__coro_destroy(c);
}

struct nest {
    cc__coro *outer, *inner;
    char log[16]; /* who ran, in order */
    int len;
};

static void nest_inner(void *arg)
{
    struct nest *t = arg;
    t->log[t->len++] = 'i';
    assert_ptr_equal(cc__coro_current(), t->inner);
    cc__coro_yield(); /* to outer, its resumer */
    t->log[t->len++] = 'j';
}

static void nest_outer(void *arg)
{
    struct nest *t = arg;
    t->log[t->len++] = 'o';
    cc__coro_resume(t->inner);
    t->log[t->len++] = 'p';
    cc__coro_yield(); /* to main: inner's yield did not change our resumer */
    cc__coro_resume(t->inner);
    t->log[t->len++] = 'q';
}

/* A coroutine can resume another; yields and returns go to the resumer. */
static void nested_resume_returns_to_resumer(void **state)
{
    struct nest t = {0};
    assert_int_equal(cc__coro_create(&t.outer, nest_outer, &t, 0, "outer"), 0);
    assert_int_equal(cc__coro_create(&t.inner, nest_inner, &t, 0, "inner"), 0);
    cc__coro_resume(t.outer);
    assert_string_equal(t.log, "oip");
    cc__coro_resume(t.outer);
    assert_string_equal(t.log, "oipjq");
    assert_true(cc__coro_done(t.outer) && cc__coro_done(t.inner));
    cc__coro_destroy(t.outer);
    cc__coro_destroy(t.inner);
}

static void note_and_return(void *arg) { *(int *)arg = 1; }

/* A coroutine only ever switched into returns to its first switcher. */
static void switched_coroutine_returns_to_switcher(void **state)
{
    int ran = 0;
    cc__coro *c;
    assert_int_equal(cc__coro_create(&c, note_and_return, &ran, 0, NULL), 0);
    assert_string_equal(cc__coro_name(c), "coro");
    cc__coro_switch(cc__coro_current(), c);
    assert_int_equal(ran, 1);
    assert_true(cc__coro_done(c));
    cc__coro_destroy(c);
}

static void deep_use(char *p, size_t n)
{
    memset(p, 0x5a, n);
    __asm__ volatile("" ::"r"(p) : "memory");
}

static void use_192k(void *arg)
{
    char big[192 * 1024];
    deep_use(big, sizeof big);
    *(int *)arg = big[1000];
}

/* Stacks get at least the size asked for, less than a page more; a big
 * stack really has room. */
static void stack_size_is_configurable(void **state)
{
    long page = sysconf(_SC_PAGESIZE);
    cc__coro *c;
    assert_in_range(usable_for(10000), 10000, 10000 + page);
    assert_in_range(usable_for(0), CC__CORO_STACK_DEFAULT,
                    CC__CORO_STACK_DEFAULT + page);
    int got = 0;
    assert_int_equal(cc__coro_create(&c, use_192k, &got, 256 * 1024, "big"), 0);
    cc__coro_resume(c);
    assert_int_equal(got, 0x5a);
    cc__coro_destroy(c);
    assert_int_equal(
        cc__coro_create(&c, note_and_return, NULL, (size_t)1 << 62, "huge"),
        -ENOMEM);
}

/* Can the byte at p be read? A write(2) from a guard page fails (EFAULT)
 * where an access would fault. */
static bool readable(const char *p)
{
    int fds[2];
    assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
    ssize_t n = write(fds[1], p, 1);
    assert_true(n == 1 || errno == EFAULT);
    close(fds[0]);
    close(fds[1]);
    return n == 1;
}

/* Fills all but `margin` bytes of the size in arg (the frames above and
 * below it), then notes it got there. */
static void use_nearly(void *arg)
{
    size_t *size = arg, margin = 4096;
    char *p = __builtin_alloca(*size - margin);
    deep_use(p, *size - margin);
    *size = 0;
}

/* The size reported is the coroutine's usable stack, from the guard page up
 * to its header (the handle, at the top of the mapping), at least the size
 * asked for; and the body can use it. */
static void stack_size_is_what_the_body_gets(void **state)
{
    size_t asked[] = {10000, 16384, 0, 256 * 1024};
    for (size_t i = 0; i < sizeof asked / sizeof asked[0]; i++) {
        cc__coro *c;
        assert_int_equal(
            cc__coro_create(&c, use_nearly, NULL, asked[i], "sized"), 0);
        size_t size = cc__coro_stack_size(c);
        assert_true(size >= (asked[i] ? asked[i] : CC__CORO_STACK_DEFAULT));
        char *lo = (char *)c - size;
        assert_true(readable(lo));
        assert_false(readable(lo - 1)); /* the guard page */
        cc__coro_destroy(c);
        size_t left = size;
        assert_int_equal(
            cc__coro_create(&c, use_nearly, &left, asked[i], "sized"), 0);
        cc__coro_resume(c);
        assert_true(cc__coro_done(c));
        assert_int_equal(left, 0);
        cc__coro_destroy(c);
    }
}

/* A size so big that rounding it up to pages wraps around (a -1 passed as a
 * size) is too large, not a tiny stack. */
static void stack_size_too_large_to_round_fails(void **state)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t sizes[] = {SIZE_MAX, SIZE_MAX - (size_t)page + 2};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        cc__coro *c = NULL;
        int r = cc__coro_create(&c, note_and_return, NULL, sizes[i], "wrap");
        if (r == 0)
            cc__coro_destroy(c);
        assert_int_equal(r, -ENOMEM);
    }
}

/* ---- the stack cache ------------------------------------------------- */

static void touch_and_yield(void *arg)
{
    char buf[2048];
    deep_use(buf, sizeof buf);
    cc__coro_yield();
}

static void scribble(void *arg)
{
    char big[48 * 1024];
    deep_use(big, sizeof big);
}

/* Default-size stacks come back from the cache; others do not. */
static void stacks_are_cached_and_reused(void **state)
{
    cc__coro_cache_trim(true);
    cc__coro_stats s0 = cc__coro_get_stats();
    assert_int_equal(s0.stacks_cached, 0);
    long n = cc_test_n(10000);
    for (long i = 0; i < n; i++) {
        cc__coro *c[4];
        for (int k = 0; k < 4; k++) {
            assert_int_equal(
                cc__coro_create(&c[k], touch_and_yield, NULL, 0, "reuse"), 0);
            cc__coro_resume(c[k]);
        }
        for (int k = 0; k < 4; k++)
            cc__coro_destroy(c[k]); /* suspended ones too */
    }
    cc__coro_stats s1 = cc__coro_get_stats();
    assert_int_equal(s1.stacks_mapped - s0.stacks_mapped, 4);
    assert_int_equal(s1.stacks_reused - s0.stacks_reused, 4 * n - 4);
    assert_int_equal(s1.stacks_cached, 4);
    cc__coro *odd;
    assert_int_equal(
        cc__coro_create(&odd, note_and_return, NULL, 128 * 1024, "odd"), 0);
    cc__coro_destroy(odd);
    cc__coro_stats s2 = cc__coro_get_stats();
    assert_int_equal(s2.stacks_mapped - s1.stacks_mapped, 1);
    assert_int_equal(s2.stacks_unmapped - s1.stacks_unmapped, 1);
    assert_int_equal(s2.stacks_cached, 4);
    cc__coro_cache_trim(false); /* MADV_FREE: still cached, still usable */
    assert_int_equal(cc__coro_get_stats().stacks_cached, 4);
    assert_int_equal(cc__coro_create(&odd, scribble, NULL, 0, "after-trim"), 0);
    cc__coro_resume(odd);
    assert_true(cc__coro_done(odd));
    cc__coro_destroy(odd);
    cc__coro_cache_trim(true);
    assert_int_equal(cc__coro_get_stats().stacks_cached, 0);
}

/* The cache is bounded: beyond CACHE_MAX, stacks go back to the kernel. */
static void stack_cache_is_bounded(void **state)
{
    enum { MANY = 200 };
    static cc__coro *c[MANY];
    cc__coro_cache_trim(true);
    for (int i = 0; i < MANY; i++)
        assert_int_equal(
            cc__coro_create(&c[i], note_and_return, NULL, 0, "many"), 0);
    for (int i = 0; i < MANY; i++)
        cc__coro_destroy(c[i]);
    cc__coro_stats s = cc__coro_get_stats();
    assert_true(s.stacks_cached > 0 && s.stacks_cached < MANY);
    cc__coro_cache_trim(true);
}

static long rss_pages(void)
{
    long size = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "re");
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return rss;
}

static void park(void *arg) { cc__coro_yield(); }

/* Stack pages are touched lazily: a coroutine parked in a shallow call costs
 * at most 8 KiB of RSS (the goal for coro_memory), not its 64 KiB stack. */
static void parked_coroutine_costs_little_memory(void **state)
{
    enum { N = 2000 };
    static cc__coro *c[N];
    cc__coro_cache_trim(true);
    long before = rss_pages();
    for (int i = 0; i < N; i++) {
        assert_int_equal(cc__coro_create(&c[i], park, NULL, 0, "parked"), 0);
        cc__coro_resume(c[i]);
    }
    long per = (rss_pages() - before) * sysconf(_SC_PAGESIZE) / N;
    for (int i = 0; i < N; i++)
        cc__coro_destroy(c[i]);
    cc__coro_cache_trim(true);
    print_message("RSS per parked coroutine: %ld bytes\n", per);
#if !defined(TEST_TSAN) && !defined(__SANITIZE_ADDRESS__)
    assert_true(per <= 8192);
#endif
}

static long count_mappings(void)
{
    long n = 0;
    char line[512];
    FILE *f = fopen("/proc/self/maps", "re");
    while (f && fgets(line, sizeof line, f))
        n++;
    if (f)
        fclose(f);
    return n;
}

/* Where the kernel has guard regions (MADV_GUARD_INSTALL, Linux 6.13),
 * guarded stacks do not cost a VMA each: 100,000 coroutines fit under
 * vm.max_map_count. Older kernels: two VMAs per stack (skipped). */
static void guarded_stacks_share_mappings(void **state)
{
    enum { N = 1000 };
    static cc__coro *c[N];
    cc__coro_cache_trim(true);
    long before = count_mappings();
    for (int i = 0; i < N; i++)
        assert_int_equal(cc__coro_create(&c[i], park, NULL, 0, "vma"), 0);
    long added = count_mappings() - before;
    for (int i = 0; i < N; i++)
        cc__coro_destroy(c[i]);
    cc__coro_cache_trim(true);
    print_message("mappings added by %d coroutines: %ld\n", N, added);
#ifdef TEST_TSAN
    skip(); /* TSan maps memory for each fiber */
#endif
    if (added >= 2 * N)
        skip(); /* mprotect guards: a kernel before 6.13 */
    assert_true(added < N / 10);
}

/* ASan: a stack abandoned mid-call (poisoned redzones left behind) is
 * reused by a coroutine that writes all over it: no false report. */
static void poison_and_park(void *arg)
{
    char a[1000], b[3000];
    deep_use(a, sizeof a);
    deep_use(b, sizeof b);
    cc__coro_yield();
}

static void reused_stack_is_clean_for_asan(void **state)
{
    for (long i = 0; i < cc_test_n(1000); i++) {
        cc__coro *c;
        assert_int_equal(cc__coro_create(&c, poison_and_park, NULL, 0, "park"),
                         0);
        cc__coro_resume(c);
        cc__coro_destroy(c);
        assert_int_equal(cc__coro_create(&c, scribble, NULL, 0, "scribble"), 0);
        cc__coro_resume(c);
        assert_true(cc__coro_done(c));
        cc__coro_destroy(c);
    }
}

/* ---- threads ------------------------------------------------------- */

static void *thread_pingpong(void *arg)
{
    long *bad = arg;
    long n = 0;
    cc__coro *c;
    if (cc__coro_create(&c, count_up, &n, 0, "thread") < 0)
        return NULL;
    for (int i = 0; i < 4; i++)
        cc__coro_resume(c);
    *bad += n != 103 || !cc__coro_done(c);
    cc__coro_destroy(c);
    return NULL;
}

/* Threads use coroutines independently; a thread's state (cache, signal
 * stack) is freed when it exits. */
static void threads_run_coroutines_independently(void **state)
{
    pthread_t t[4];
    long bad[4] = {0};
    for (int r = 0; r < cc_test_n(50); r++) {
        for (int i = 0; i < 4; i++)
            assert_int_equal(
                pthread_create(&t[i], NULL, thread_pingpong, &bad[i]), 0);
        for (int i = 0; i < 4; i++)
            pthread_join(t[i], NULL);
    }
    for (int i = 0; i < 4; i++)
        assert_int_equal(bad[i], 0);
}

static void *resume_elsewhere(void *arg)
{
    cc__coro_resume(arg);
    return NULL;
}

/* A suspended coroutine may be resumed on another thread. */
static void coroutine_moves_between_threads(void **state)
{
    long n = 0;
    cc__coro *c;
    assert_int_equal(cc__coro_create(&c, count_up, &n, 0, "mover"), 0);
    cc__coro_resume(c);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, resume_elsewhere, c), 0);
    pthread_join(t, NULL);
    assert_int_equal(n, 2);
    cc__coro_resume(c);
    cc__coro_resume(c);
    assert_int_equal(n, 103);
    assert_true(cc__coro_done(c));
    cc__coro_destroy(c);
}

/* ---- children: stack overflow, other faults, the TSan race ------------- */

static void overflow(void *arg) { recurse(0); }

/* Write to a PROT_NONE page that is no coroutine's guard page (not NULL:
 * UBSan would stop at a null store before the fault). */
static void bad_write(void *unused)
{
    volatile int *p =
        mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED)
        *p = 1;
}

static void on_previous_segv(int sig)
{
    static const char msg[] = "previous handler ran\n";
    (void)!write(2, msg, sizeof msg - 1);
    _exit(42);
}

/* A crash reporter's way: one shot (SA_RESETHAND), report, return, and let
 * the fault, executed again, kill the process by the default action. */
static void on_previous_segv_once(int sig)
{
    static const char msg[] = "one-shot handler ran\n";
    (void)!write(2, msg, sizeof msg - 1);
}

static long race_target;

static void race_writer(void *arg)
{
    for (int i = 0; i < 1000; i++)
        race_target++;
}

/* Both racers' coroutines stay alive until both have written: TSan reuses
 * a destroyed fiber's context, and a second racer that got the first one's
 * context would look like the same thread (no race: a flaky test). The
 * barrier orders nothing between the two writes, which both precede it. */
static pthread_barrier_t race_done;

static void *race_thread(void *arg)
{
    cc__coro *c;
    if (cc__coro_create(&c, race_writer, NULL, 0, "racer") == 0) {
        cc__coro_resume(c);
        pthread_barrier_wait(&race_done);
        cc__coro_destroy(c);
    }
    return NULL;
}

/* cmocka catches SIGSEGV during tests: give the child the default action
 * behind concur's handler. */
static void child_signals(void)
{
    signal(SIGSEGV, SIG_DFL);
    cc__coro_install_overflow_handler();
}

/* How the next overflow child runs (set before the fork). */
static size_t overflow_stack_size; /* 0: the default */
static bool overflow_on_thread;    /* on a second thread, not the main one */

static void *overflow_coroutine(void *name)
{
    cc__coro *c;
    if (cc__coro_create(&c, overflow, NULL, overflow_stack_size, name) == 0)
        cc__coro_resume(c);
    return NULL;
}

static void overflow_in_child(const char *name)
{
    child_signals();
    pthread_t t;
    if (!overflow_on_thread)
        overflow_coroutine((void *)name);
    else if (pthread_create(&t, NULL, overflow_coroutine, (void *)name) == 0)
        pthread_join(t, NULL);
}

static void exec_self(const char *what)
{
    char arg[64];
    snprintf(arg, sizeof arg, "--child=%s", what);
    setenv("TSAN_OPTIONS", "halt_on_error=0:exitcode=66:report_bugs=1", 1);
    execl("/proc/self/exe", "test_coro", arg, (char *)NULL);
}

/* Deep recursion in a coroutine hits the guard page: the report names the
 * coroutine and its stack size, and the process dies by SIGABRT. Every
 * time: default and small stacks, on the main thread and on another. */
static void stack_overflow_is_reported_every_time(void **state)
{
    cc__coro_thread_init();
    long trials = cc_test_n(100);
    for (long i = 0; i < trials; i++) {
        char name[32], want[128], err[8192];
        snprintf(name, sizeof name, "worker-%ld", i);
        overflow_stack_size = i % 4 == 1 ? 16384 : 0;
        overflow_on_thread = i % 4 == 2; /* its own signal stack */
        snprintf(want, sizeof want,
                 "concur: stack overflow in coroutine '%s' (stack %zu bytes)",
                 name, usable_for(overflow_stack_size));
        int status = run_child(overflow_in_child, name, err, sizeof err);
        assert_true(WIFSIGNALED(status));
        assert_int_equal(WTERMSIG(status), SIGABRT);
        if (!strstr(err, want))
            fail_msg("trial %ld: stderr was: %s", i, err);
    }
}

static void exec_self_without_guard_regions(const char *what)
{
    setenv("CONCUR_NO_GUARD_REGIONS", "1", 1);
    exec_self(what);
}

/* The same with mprotect guard pages, as kernels before 6.13 give. */
static void stack_overflow_is_reported_with_mprotect_guards(void **state)
{
    for (long i = 0; i < cc_test_n(20); i++) {
        char err[8192];
        int status = run_child(exec_self_without_guard_regions,
                               "overflow:old-kernel", err, sizeof err);
        assert_true(WIFSIGNALED(status));
        assert_int_equal(WTERMSIG(status), SIGABRT);
        char want[128];
        snprintf(want, sizeof want, "concur: stack overflow in coroutine "
                 "'old-kernel' (stack %zu bytes)", usable_for(0));
        if (!strstr(err, want))
            fail_msg("trial %ld: stderr was: %s", i, err);
    }
}

/* Recursion that yields at every level: the stack runs out at some point of
 * a level's frame or of its switch out, wherever the starting offset puts
 * the guard page. */
static void __attribute__((noinline)) recurse_yielding(int depth)
{
    volatile char frame[256];
    frame[0] = (char)depth;
    cc__coro_yield();
    if (depth >= 0) /* always: keeps the compiler from seeing it infinite */
        recurse_yielding(depth + 1);
    frame[1] = frame[0];
}

static void overflow_yielding(void *offset)
{
    volatile char *shift = __builtin_alloca((size_t)offset + 1);
    shift[0] = 0;
    recurse_yielding(0);
}

static void overflow_yielding_in_child(const char *offset)
{
    child_signals();
    cc__coro *c;
    if (cc__coro_create(&c, overflow_yielding,
                        (void *)(uintptr_t)atoi(offset), 16384, "yielder") < 0)
        return;
    while (!cc__coro_done(c))
        cc__coro_resume(c);
}

/* An overflow is reported by name wherever it faults, in the coroutine's
 * switch out included (where the running coroutine is already the other). */
static void stack_overflow_in_a_switch_is_reported(void **state)
{
    cc__coro_thread_init();
    for (int offset = 0; offset < 512; offset += 8) {
        char arg[16], err[8192];
        snprintf(arg, sizeof arg, "%d", offset);
        int status = run_child(overflow_yielding_in_child, arg, err, sizeof err);
        if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT ||
            !strstr(err, "stack overflow in coroutine 'yielder'"))
            fail_msg("offset %d: status %#x, stderr: %s", offset, status, err);
    }
}

static void deref_in_child(const char *unused)
{
    cc__coro *c;
    child_signals();
    if (cc__coro_create(&c, bad_write, NULL, 0, "deref") == 0)
        cc__coro_resume(c);
}

/* A fault that is not on a guard page is not called an overflow: it gets
 * the previous handler, or the default action (death by SIGSEGV). */
static void other_faults_are_passed_on(void **state)
{
    char err[8192];
    int status = run_child(deref_in_child, NULL, err, sizeof err);
    /* In sanitizer builds the runtime's own handler may report and abort. */
    assert_true(WIFSIGNALED(status) || WIFEXITED(status));
    assert_null(strstr(err, "stack overflow in coroutine"));
#if !defined(TEST_TSAN) && !defined(__SANITIZE_ADDRESS__)
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV);
#endif
    status = run_child(exec_self, "chain", err, sizeof err);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 42);
    assert_non_null(strstr(err, "previous handler ran"));
}

/* A previous handler installed with SA_RESETHAND runs once, as it would
 * without concur: the fault then kills the process instead of calling the
 * handler again forever. */
static void one_shot_previous_handler_runs_once(void **state)
{
    char err[8192];
    int status = run_child(exec_self, "one-shot", err, sizeof err);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGSEGV);
    const char *first = strstr(err, "one-shot handler ran");
    assert_non_null(first);
    if (strstr(first + 1, "one-shot handler ran"))
        fail_msg("the one-shot handler ran more than once");
}

/* Raise SIGSEGV under concur's handler, with before it the default action
 * (how NULL) or, with how "ignored", SIG_IGN set with SA_SIGINFO (the
 * handler union then holds SIG_IGN, not a function to call). */
static void raise_segv_in_child(const char *how)
{
    if (how) {
        struct sigaction ign = {.sa_handler = SIG_IGN,
                                .sa_flags = SA_SIGINFO};
        sigemptyset(&ign.sa_mask);
        sigaction(SIGSEGV, &ign, NULL);
        cc__coro_install_overflow_handler();
    } else {
        child_signals();
    }
    cc__coro_thread_init();
    raise(SIGSEGV);
    _exit(0);
}

/* How a child that raised SIGSEGV ended (sanitizers: their runtime's own
 * handler may see the signal first, so the caller skips). */
static int sent_segv_status(const char *how)
{
    char err[4096];
    return run_child(raise_segv_in_child, how, err, sizeof err);
}

/* SIGSEGV sent by a process (kill -SEGV, raise) with no handler before
 * concur's takes the default action: the process dies. */
static void sent_segv_kills(void **state)
{
#if defined(TEST_TSAN) || defined(__SANITIZE_ADDRESS__)
    skip();
#endif
    int status = sent_segv_status(NULL);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGSEGV);
}

/* One that the program ignored before concur's handler, with the
 * SA_SIGINFO flag, stays ignored: the process goes on. */
static void sent_segv_ignored_with_siginfo(void **state)
{
#if defined(TEST_TSAN) || defined(__SANITIZE_ADDRESS__)
    skip();
#endif
    int status = sent_segv_status("ignored");
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void create_without_memory(const char *unused)
{
    /* Room for a few small stacks, not for a 256 MiB one. */
    long size = 0;
    FILE *f = fopen("/proc/self/statm", "re");
    if (!f || fscanf(f, "%ld", &size) != 1)
        _exit(2);
    fclose(f);
    rlim_t limit = (rlim_t)size * sysconf(_SC_PAGESIZE) + (16 << 20);
    struct rlimit rl = {limit, limit};
    if (setrlimit(RLIMIT_AS, &rl) < 0)
        _exit(3);
    cc__coro *c;
    if (cc__coro_create(&c, note_and_return, NULL, 256 << 20, "big") != -ENOMEM)
        _exit(4);
    int ran = 0;
    if (cc__coro_create(&c, note_and_return, &ran, 16384, "small") < 0)
        _exit(5);
    cc__coro_resume(c);
    cc__coro_destroy(c);
    _exit(ran == 1 ? 0 : 6);
}

/* When the stack cannot be mapped, create fails with -ENOMEM and nothing
 * is left half made (sanitizers reserve too much address space to run it). */
static void create_fails_cleanly_without_memory(void **state)
{
#if defined(TEST_TSAN) || defined(__SANITIZE_ADDRESS__)
    skip();
#endif
    char err[4096];
    int status = run_child(create_without_memory, NULL, err, sizeof err);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* TSan builds: two threads, each running a coroutine that writes the same
 * variable without synchronisation: TSan must report the race (the fiber
 * annotations must not hide it). */
static void race_between_coroutines_is_caught(void **state)
{
#ifdef TEST_TSAN
    char err[65536];
    int status = run_child(exec_self, "race", err, sizeof err);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 66);
    if (!strstr(err, "WARNING: ThreadSanitizer: data race"))
        fail_msg("no race reported: %s", err);
#else
    skip();
#endif
}

/* The child's side: do WHAT and die the way the parent expects. */
static int child_main(const char *what)
{
    cc__coro *c;
    if (!strcmp(what, "chain")) {
        signal(SIGSEGV, on_previous_segv); /* before concur's handler */
        if (cc__coro_create(&c, bad_write, NULL, 0, "chain") == 0)
            cc__coro_resume(c);
        return 1;
    }
    if (!strcmp(what, "one-shot")) {
        struct sigaction sa = {.sa_handler = on_previous_segv_once,
                               .sa_flags = SA_RESETHAND};
        sigemptyset(&sa.sa_mask);
        sigaction(SIGSEGV, &sa, NULL); /* before concur's handler */
        alarm(10); /* a handler called forever ends here, by SIGALRM */
        if (cc__coro_create(&c, bad_write, NULL, 0, "one-shot") == 0)
            cc__coro_resume(c);
        return 1;
    }
    if (!strncmp(what, "overflow:", 9)) { /* as overflow_in_child */
        child_signals();
        overflow_coroutine((void *)(what + 9));
        return 1;
    }
    if (!strcmp(what, "race")) {
        pthread_t t[2];
        pthread_barrier_init(&race_done, NULL, 2);
        for (int i = 0; i < 2; i++)
            pthread_create(&t[i], NULL, race_thread, NULL);
        for (int i = 0; i < 2; i++)
            pthread_join(t[i], NULL);
        return 0;
    }
    return 2;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strncmp(argv[1], "--child=", 8))
        return child_main(argv[1] + 8);
    const struct CMUnitTest tests[] = {
        CC_TEST(switches_keep_callee_saved_registers),
        CC_TEST(stack_is_aligned_at_entry),
        CC_TEST(fp_control_state_is_per_coroutine),
        CC_TEST(resume_and_yield_take_turns),
        CC_TEST(nested_resume_returns_to_resumer),
        CC_TEST(switched_coroutine_returns_to_switcher),
        CC_TEST(stack_size_is_configurable),
        CC_TEST(stack_size_is_what_the_body_gets),
        CC_TEST(stack_size_too_large_to_round_fails),
        CC_TEST(stacks_are_cached_and_reused),
        CC_TEST(stack_cache_is_bounded),
        CC_TEST(parked_coroutine_costs_little_memory),
        CC_TEST(guarded_stacks_share_mappings),
        CC_TEST(reused_stack_is_clean_for_asan),
        CC_TEST(threads_run_coroutines_independently),
        CC_TEST(coroutine_moves_between_threads),
        CC_TEST(stack_overflow_is_reported_every_time),
        CC_TEST(stack_overflow_is_reported_with_mprotect_guards),
        CC_TEST(stack_overflow_in_a_switch_is_reported),
        CC_TEST(other_faults_are_passed_on),
        CC_TEST(one_shot_previous_handler_runs_once),
        CC_TEST(sent_segv_kills),
        CC_TEST(sent_segv_ignored_with_siginfo),
        CC_TEST(create_fails_cleanly_without_memory),
        CC_TEST(race_between_coroutines_is_caught),
    };
    return CC_RUN_TESTS(tests);
}
