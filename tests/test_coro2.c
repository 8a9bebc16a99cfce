/*
 * test_coro2.c: coroutines as the event loop's tasks use them (src/coro.c
 * under src/loop.c): a stack overflow in a task is reported by name, also on
 * a stack reused from the cache and inside a libc call; cc_task_opts' name
 * and stack size as documented (odd, tiny, huge sizes; long and NULL names);
 * the ABI's stack alignment and the FP control state in tasks; a coroutine
 * that finishes on another thread than it started on.
 */
#include "testutil.h"

#include "coro.h"
#include "coro_child.h"

#include <fcntl.h>
#include <fenv.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

/* Join a task and release it; its result. */
static int join(cc_future *f)
{
    int r = cc_future_result(f, CC_FOREVER, NULL);
    cc_future_release(f);
    return r;
}

/* ---- stack overflow in a task (forked children) ----------------------- */

/* Each level formats a number: most of the stack it takes is libc's. */
static int __attribute__((noinline)) recurse_in_libc(int depth)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%d %.3Lf", depth, (long double)depth / 7);
    if (depth < 0)
        return 0;
    return recurse_in_libc(depth + 1) + buf[0];
}

/* How the child's overflowing task runs (set before the fork). */
static size_t task_stack;  /* cc_task_opts.stack_size */
static bool in_libc;       /* recurse through snprintf */
static bool warm_cache;    /* a task of the same size ran and ended first */

static int overflowing(void *arg, void **result)
{
    (void)arg, (void)result;
    return in_libc ? recurse_in_libc(0) : recurse(0);
}

static int quick(void *arg, void **result) { return 0; }

static int overflow_main(void *name, void **result)
{
    cc_task_opts opts = {.name = name, .stack_size = task_stack};
    cc_future *f;
    if (warm_cache && cc_spawn_with(quick, NULL, &opts, &f) == 0) {
        cc_future_result(f, CC_FOREVER, NULL);
        cc_future_release(f);
    }
    if (cc_spawn_with(overflowing, NULL, &opts, &f) == 0)
        cc_future_result(f, CC_FOREVER, NULL);
    return 0;
}

static void overflow_in_child(const char *name)
{
    signal(SIGSEGV, SIG_DFL); /* cmocka's, behind concur's handler */
    cc__coro_install_overflow_handler();
    cc_loop_run(overflow_main, (void *)name, NULL);
}

/* Deep recursion in a task is reported every time, naming the task and its
 * stack size, then the process dies by SIGABRT: default, odd and tiny
 * sizes, on a fresh or a reused stack, in our frames or in libc's. */
static void task_overflow_is_reported_every_time(void **state)
{
    static const size_t sizes[] = {0, 10001, 1, 3 * 4096 + 8};
    cc__coro_thread_init();
    long trials = cc_test_n(100);
    for (long i = 0; i < trials; i++) {
        char name[32], want[160], err[8192];
        snprintf(name, sizeof name, "deep-%ld", i);
        task_stack = sizes[i % 4];
        in_libc = i % 3 == 1;
        warm_cache = i % 2 == 1;
        snprintf(want, sizeof want,
                 "concur: stack overflow in coroutine '%s' (stack %zu bytes)",
                 name, usable_for(task_stack));
        int status = run_child(overflow_in_child, name, err, sizeof err);
        if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT ||
            !strstr(err, want))
            fail_msg("trial %ld (stack %zu, libc %d, warm %d): status %#x, "
                     "stderr: %s",
                     i, task_stack, in_libc, warm_cache, status, err);
    }
}

/* ---- concur's own frames near the end of a task's stack -------------------- */

/* Bytes left below the caller's frame on the running task's stack. */
static size_t __attribute__((noinline)) stack_left(void)
{
    cc__coro *c = cc__coro_current();
    char *lo = (char *)c - cc__coro_stack_size(c);
    return (size_t)((char *)__builtin_frame_address(0) - lo);
}

static size_t leave_bytes; /* how much stack the deep call starts with */
static bool deep_in_libc;  /* the deep call is libc's, not concur's */
static bool deep_placed;   /* the deep task got its stack where wanted */

/* The deep call: run a command and capture its output (cc_run:
 * communicate's reads), or parse a long double (glibc's strtold has a 14
 * KiB frame and no stack-clash probes). */
static int deep_call(void)
{
    if (deep_in_libc)
        return strtold("1.25", NULL) == 1.25L ? 0 : -EINVAL;
    char *argv[] = {"/bin/echo", "deep", NULL};
    cc_run_options ro = {.capture_output = true};
    cc_completed_process res;
    int r = cc_run(argv, &ro, cc_deadline_in(10 * CC_SEC), &res);
    if (r == 0)
        cc_completed_process_free(&res);
    return r;
}

/* Go down until about leave_bytes are left, then make the deep call. */
static int __attribute__((noinline)) run_deep(int depth)
{
    volatile char frame[512];
    frame[0] = (char)depth;
    if (stack_left() > leave_bytes + 1024)
        return run_deep(depth + 1) + frame[0];
    return deep_call() + frame[0];
}

/* The bytes of the guard below a coroutine's stack (coro.c). */
static size_t guard_bytes(void)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return page > CC__CORO_GUARD_MIN ? page : CC__CORO_GUARD_MIN;
}

enum { DEEP_TRIES = 100 };
static char *deep_places[DEEP_TRIES]; /* stack places just above a trap */
static int deep_tries;                /* how many so far */

/* The deep task runs only if its stack mapping starts right above one of
 * the PROT_NONE regions the main task made, where a frame that jumps over
 * the guard page faults (not reported as an overflow) instead of writing
 * into whatever lay below. Else it keeps its stack (so that the next try
 * gets another place) until cancelled. */
static int deep_runner(void *arg, void **result)
{
    cc__coro *c = cc__coro_current();
    char *map = (char *)c - cc__coro_stack_size(c) - guard_bytes();
    for (int i = 0; i < deep_tries; i++) {
        if (map == deep_places[i]) {
            deep_placed = true;
            run_deep(0);
            return 0;
        }
    }
    return cc_sleep(CC_FOREVER) == -ECANCELED ? -EAGAIN : -EINVAL;
}

/* Reserve a trap region and the stack's mapping above it, free the latter
 * and spawn the deep task, whose stack (of a size no cached stack has)
 * usually takes that place (the highest hole that fits), or one that an
 * earlier try left (when something else took this one first). */
static int deep_main(void *arg, void **result)
{
    enum { STACK = 128 * 1024, TRAP = 256 * 1024 };
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t map = guard_bytes() + (usable_for(STACK) + page - 1) / page * page;
    cc_future *f[DEEP_TRIES];
    int r = -EAGAIN;
    while (deep_tries < DEEP_TRIES && r == -EAGAIN) {
        char *trap = mmap(NULL, TRAP + map, PROT_NONE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (trap == MAP_FAILED || munmap(trap + TRAP, map) < 0)
            return -ENOMEM;
        deep_places[deep_tries] = trap + TRAP;
        cc_task_opts opts = {"deep", STACK};
        r = cc_spawn_with(deep_runner, NULL, &opts, &f[deep_tries++]);
        if (r < 0)
            break;
        cc_yield(); /* it runs until it parks */
        r = deep_placed ? join(f[--deep_tries]) : -EAGAIN;
    }
    for (int i = 0; i < deep_tries; i++) {
        cc_task_cancel(f[i]);
        join(f[i]);
    }
    return r;
}

/* arg: the bytes to leave, then "libc" for libc's deep call. */
static void deep_run_in_child(const char *arg)
{
    signal(SIGSEGV, SIG_DFL);
    cc__coro_install_overflow_handler();
    char *end;
    leave_bytes = (size_t)strtoul(arg, &end, 10);
    deep_in_libc = !strcmp(end, "libc");
    /* A size no stack in the cache has: a new mapping, the lowest one. */
    int r = cc_loop_run(deep_main, NULL, NULL);
    fprintf(stderr, "loop returned %d\n", r);
    _exit(0);
}

/* Run the deep call in a child with 2 to 40 KiB of stack left: either it
 * fits and succeeds, or the overflow is reported. */
static void deep_calls_are_reported(const char *what)
{
    cc__coro_thread_init();
    for (size_t left = 2048; left <= 40960; left += 2048) {
        char arg[32], err[8192];
        snprintf(arg, sizeof arg, "%zu%s", left, what);
        int status = run_child(deep_run_in_child, arg, err, sizeof err);
        bool reported = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT &&
                        strstr(err, "stack overflow in coroutine 'deep'");
        bool fine = WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
                    strstr(err, "loop returned 0");
        if (!reported && !fine)
            fail_msg("left %zu: status %#x, stderr: %s", left, status, err);
    }
}

/* Whatever stack is left when a task calls into concur (here cc_run, which
 * reads pipes through a buffer on the stack), running out of it is reported
 * as an overflow of the task: no frame of concur's jumps over the guard. */
static void library_frames_do_not_skip_the_guard(void **state)
{
    deep_calls_are_reported("");
}

/* The same for libc's frames, which probe no pages: glibc has frames of up
 * to 33 KiB (vfwprintf; strtold's is 14 KiB), which a one-page guard let
 * jump over it. */
static void libc_frames_do_not_skip_the_guard(void **state)
{
    deep_calls_are_reported("libc");
}

/* ---- cc_task_opts: name and stack size ----------------------------------- */

struct opts_run {
    char names[4][64];  /* what each named task saw as its name */
    int spawn_err[4];   /* cc_spawn_with's answers for odd sizes */
    int misaligned;     /* tasks whose entry frame was not 16-byte aligned */
    int ran;            /* tasks that ran */
};

static int note_name(void *arg, void **result)
{
    char *out = arg;
    snprintf(out, 64, "%s", cc_task_name());
    return 0;
}

static int check_alignment(void *arg, void **result)
{
    struct opts_run *o = arg;
    _Alignas(16) char aligned[16];
    o->misaligned += ((uintptr_t)__builtin_frame_address(0) & 15) != 0;
    o->misaligned += ((uintptr_t)aligned & 15) != 0;
    aligned[0] = 1;
    __asm__ volatile("" ::"r"(aligned) : "memory");
    o->ran++;
    return 0;
}

static int opts_main(void *arg, void **result)
{
    struct opts_run *o = arg;
    char name[64] = "a-name-longer-than-thirty-one-bytes-0123456789";
    cc_task_opts named[] = {{name, 0}, {NULL, 0}, {"", 0}, {"x", 0}};
    cc_future *f[4];
    for (int i = 0; i < 4; i++)
        if (cc_spawn_with(note_name, o->names[i], &named[i], &f[i]) != 0)
            return -1;
    memset(name, 'z', sizeof name - 1); /* copied: the task must not see it */
    for (int i = 0; i < 4; i++)
        join(f[i]);
    cc_future *g;
    if (cc_spawn_with(note_name, o->names[3], NULL, &g) == 0)
        join(g);
    const size_t odd[] = {SIZE_MAX, SIZE_MAX - 4095, (size_t)1 << 41, 1};
    for (int i = 0; i < 4; i++) {
        cc_task_opts so = {"odd", odd[i]};
        o->spawn_err[i] = cc_spawn_with(check_alignment, o, &so, &g);
        if (o->spawn_err[i] == 0)
            join(g);
    }
    for (size_t size = 0; size < 40000; size += 4096 + 8) {
        cc_task_opts so = {"align", size};
        if (cc_spawn_with(check_alignment, o, &so, &g) == 0)
            join(g);
    }
    return 0;
}

/* The name is copied and truncated to 31 bytes, NULL or no options give
 * "task"; a stack size too big fails with -ENOMEM and the loop goes on; a
 * tiny one gets a small working stack; every task starts 16-byte aligned. */
static void task_opts_are_honoured(void **state)
{
    struct opts_run o = {0};
    assert_int_equal(cc_loop_run(opts_main, &o, NULL), 0);
    assert_string_equal(o.names[0], "a-name-longer-than-thirty-one-b");
    assert_string_equal(o.names[1], "task");
    assert_string_equal(o.names[2], "");
    assert_string_equal(o.names[3], "task");
    assert_int_equal(o.spawn_err[0], -ENOMEM);
    assert_int_equal(o.spawn_err[1], -ENOMEM);
    assert_int_equal(o.spawn_err[2], -ENOMEM);
    assert_int_equal(o.spawn_err[3], 0);
    assert_int_equal(o.misaligned, 0);
    assert_int_equal(o.ran, 1 + 10);
}

/* ---- the FP control state of tasks ---------------------------------------- */

struct fp_run {
    int seen[3];   /* the rounding mode each task saw on entry */
    int after[2];  /* a task's own mode after the others ran */
    int spawned;   /* what a task spawned in FE_UPWARD saw on entry */
};

static int fp_child(void *arg, void **result)
{
    ((struct fp_run *)arg)->spawned = fegetround();
    return 0;
}

static int fp_setter(void *arg, void **result)
{
    struct fp_run *r = arg;
    r->seen[0] = fegetround();
    fesetround(FE_UPWARD);
    cc_spawn(fp_child, r, NULL); /* starts with its creator's mode */
    cc_yield();
    r->after[0] = fegetround();
    return 0;
}

static int fp_reader(void *arg, void **result)
{
    struct fp_run *r = arg;
    r->seen[1] = fegetround();
    fesetround(FE_TOWARDZERO);
    cc_yield();
    r->after[1] = fegetround();
    return 0;
}

static int fp_main(void *arg, void **result)
{
    cc_future *f[2];
    cc_spawn(fp_setter, arg, &f[0]);
    cc_spawn(fp_reader, arg, &f[1]);
    join(f[0]);
    join(f[1]);
    ((struct fp_run *)arg)->seen[2] = fegetround();
    fesetround(FE_DOWNWARD); /* the loop's caller must not see it */
    return 0;
}

/* A task's rounding mode is its own: the others, the main task, and the
 * thread that ran the loop keep theirs; a task it spawns starts with it
 * (as a new thread starts with its creator's). */
static void task_rounding_mode_stays_in_the_task(void **state)
{
    struct fp_run r = {{-1, -1, -1}, {-1, -1}, -1};
    fesetround(FE_TONEAREST);
    assert_int_equal(cc_loop_run(fp_main, &r, NULL), 0);
    assert_int_equal(fegetround(), FE_TONEAREST);
    assert_int_equal(r.seen[0], FE_TONEAREST);
    assert_int_equal(r.seen[1], FE_TONEAREST);
    assert_int_equal(r.seen[2], FE_TONEAREST);
    assert_int_equal(r.after[0], FE_UPWARD);
    assert_int_equal(r.after[1], FE_TOWARDZERO);
    assert_int_equal(r.spawned, FE_UPWARD);
}

/* ---- coroutines that move between threads --------------------------------- */

struct mover {
    cc__coro *c;        /* the coroutine that moves */
    cc__coro *main_b;   /* thread B's main coroutine */
    cc__coro *after_b;  /* B's current coroutine once c finished there */
    bool done;          /* c finished */
};

static void yield_once(void *arg) { cc__coro_yield(); }

static void *finish_on_b(void *arg)
{
    struct mover *m = arg;
    m->main_b = cc__coro_current();
    while (!cc__coro_done(m->c))
        cc__coro_resume(m->c);
    m->done = true;
    m->after_b = cc__coro_current();
    return NULL;
}

/* A coroutine made on thread A that finishes on thread B (after starting on
 * A, or started there) leaves each thread's own coroutine current: its
 * last switch names B's resumer on B, not on the thread it started on
 * (aarch64 kept the thread pointer read at its start in a register). */
static void coroutine_finishes_on_another_thread(void **state)
{
    cc__coro *main_a = cc__coro_current();
    for (int i = 0; i < 2 * cc_test_n(50); i++) {
        struct mover m = {NULL};
        assert_int_equal(cc__coro_create(&m.c, yield_once, NULL, 0, "mover"),
                         0);
        if (i % 2 == 0)
            cc__coro_resume(m.c); /* started on A */
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, finish_on_b, &m), 0);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_true(m.done);
        assert_ptr_equal(m.after_b, m.main_b);
        assert_ptr_equal(cc__coro_current(), main_a);
        cc__coro_destroy(m.c);
    }
}

/* ---- ASan: the fake stack of a coroutine destroyed while suspended ------- */

#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif

#ifdef TEST_ASAN
extern int __asan_option_detect_stack_use_after_return;

static void __attribute__((noinline)) keep(char *p)
{
    __asm__ volatile("" ::"r"(p) : "memory");
}

/* A frame on ASan's fake stack (detect_stack_use_after_return), then park. */
static void fake_frame_and_park(void *arg)
{
    char buf[100];
    keep(buf);
    cc__coro_yield();
}

/* The process's mapped bytes. */
static long vm_bytes(void)
{
    long size = 0;
    FILE *f = fopen("/proc/self/statm", "re");
    if (f && fscanf(f, "%ld", &size) != 1)
        size = 0;
    if (f)
        fclose(f);
    return size * sysconf(_SC_PAGESIZE);
}

static void park_and_destroy(long n)
{
    for (long i = 0; i < n; i++) {
        cc__coro *c;
        assert_int_equal(
            cc__coro_create(&c, fake_frame_and_park, NULL, 0, "fake"), 0);
        cc__coro_resume(c);
        cc__coro_destroy(c);
    }
}
#endif

/* ASan with detect_stack_use_after_return: destroying a suspended coroutine
 * frees its fake stack (1.4 MiB of mappings each when it leaked: 40,000 of
 * them left no room for a fork). */
static void abandoned_fake_stacks_are_freed(void **state)
{
#ifdef TEST_ASAN
    int was = __asan_option_detect_stack_use_after_return;
    __asan_option_detect_stack_use_after_return = 1;
    park_and_destroy(10); /* the cached stack, ASan's own first mappings */
    long before = vm_bytes();
    park_and_destroy(1000);
    long grown = vm_bytes() - before;
    __asan_option_detect_stack_use_after_return = was;
    print_message("mappings grew by %ld bytes per coroutine\n", grown / 1000);
    assert_true(grown < 1000 * 64 * 1024);
#else
    skip();
#endif
}

/* ---- a previous SIGSEGV handler that chains back -------------------------- */

static struct sigaction reporter_previous; /* what the reporter found */

/* A crash reporter's way: note the fault, then call the handler it found
 * when it was installed (concur's, here). */
static void chaining_reporter(int sig, siginfo_t *si, void *uc)
{
    static const char msg[] = "reporter ran\n";
    (void)!write(2, msg, sizeof msg - 1);
    if (reporter_previous.sa_flags & SA_SIGINFO)
        reporter_previous.sa_sigaction(sig, si, uc);
}

static void bad_write(void *unused)
{
    volatile int *p =
        mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED)
        *p = 1;
}

/* concur's handler, a reporter on top that chains to it, then concur's
 * again on top (as cc__coro_install_overflow_handler says to do after a
 * crash reporter replaced it); then a fault that is no overflow. */
static void fault_under_chaining_reporter(const char *unused)
{
    signal(SIGSEGV, SIG_DFL); /* cmocka's */
    cc__coro_install_overflow_handler();
    struct sigaction sa = {.sa_sigaction = chaining_reporter,
                           .sa_flags = SA_SIGINFO | SA_ONSTACK};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &reporter_previous);
    cc__coro_install_overflow_handler();
    alarm(10);
    cc__coro *c;
    if (cc__coro_create(&c, bad_write, NULL, 0, "chained") == 0)
        cc__coro_resume(c);
}

/* The previous handler runs once, and the fault then kills the process as
 * it would without concur: no endless round of the two handlers calling
 * each other. */
static void chained_handlers_do_not_loop(void **state)
{
    char err[65536];
    int status = run_child(fault_under_chaining_reporter, NULL, err,
                           sizeof err);
    const char *first = strstr(err, "reporter ran");
    assert_non_null(first);
    if (strstr(first + 1, "reporter ran"))
        fail_msg("the reporter ran more than once: %.200s", err);
#if !defined(TEST_TSAN) && !defined(TEST_ASAN)
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGSEGV);
#endif
    (void)status;
}

/* ---- TSan: a race between tasks of two loops ----------------------------- */

#ifdef TEST_TSAN
static long race_target;
static atomic_int race_phase; /* relaxed only: no order TSan could see */

static int race_write(void *arg, void **result)
{
    for (int i = 0; i < 100; i++)
        race_target++;
    return 0;
}

/* Loop A: the racer, then many short tasks, whose fibers die after its. */
static int race_a(void *arg, void **result)
{
    cc_future *f;
    if (cc_spawn_with(race_write, NULL, &(cc_task_opts){"racer-a", 0}, &f))
        return -1;
    join(f);
    for (int i = 0; i < 64; i++)
        if (cc_spawn(quick, NULL, &f) == 0)
            join(f);
    return 0;
}

static void *race_thread_a(void *arg)
{
    cc_loop_run(race_a, NULL, NULL);
    atomic_store_explicit(&race_phase, 1, memory_order_relaxed);
    while (atomic_load_explicit(&race_phase, memory_order_relaxed) != 2)
        usleep(1000);
    return NULL;
}

/* Loop B: once A is done, its main task writes the same variable. */
static void *race_thread_b(void *arg)
{
    while (atomic_load_explicit(&race_phase, memory_order_relaxed) != 1)
        usleep(1000);
    cc_loop_run(race_write, NULL, NULL);
    atomic_store_explicit(&race_phase, 2, memory_order_relaxed);
    return NULL;
}

static void race_in_child(const char *unused)
{
    setenv("TSAN_OPTIONS", "halt_on_error=0:exitcode=66:report_bugs=1", 1);
    execl("/proc/self/exe", "test_coro2", "--child=race", (char *)NULL);
}

static int race_child(void)
{
    pthread_t a, b;
    pthread_create(&a, NULL, race_thread_a, NULL);
    pthread_create(&b, NULL, race_thread_b, NULL);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    return 0;
}

#endif

/* TSan builds: tasks on two loops write one variable with nothing between
 * them (the order comes from relaxed atomics and sleeps): TSan reports it,
 * even after the first writer's fiber is gone and many more after it. */
static void race_between_loops_is_caught(void **state)
{
#ifdef TEST_TSAN
    char err[65536];
    int status = run_child(race_in_child, NULL, err, sizeof err);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) != 66 ||
        !strstr(err, "WARNING: ThreadSanitizer: data race"))
        fail_msg("status %#x, no race reported: %s", status, err);
#else
    skip();
#endif
}

int main(int argc, char **argv)
{
#ifdef TEST_TSAN
    if (argc > 1 && !strcmp(argv[1], "--child=race"))
        return race_child();
#endif
    const struct CMUnitTest tests[] = {
        CC_TEST(task_overflow_is_reported_every_time),
        CC_TEST(task_opts_are_honoured),
        CC_TEST(task_rounding_mode_stays_in_the_task),
        CC_TEST(coroutine_finishes_on_another_thread),
        CC_TEST(abandoned_fake_stacks_are_freed),
        CC_TEST(chained_handlers_do_not_loop),
        CC_TEST(race_between_loops_is_caught),
        CC_TEST(library_frames_do_not_skip_the_guard),
        CC_TEST(libc_frames_do_not_skip_the_guard),
    };
    return CC_RUN_TESTS(tests);
}
