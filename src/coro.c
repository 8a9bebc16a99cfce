/*
 * coro.c: stackful coroutines (coro.h).
 *
 * DESIGN. A coroutine is a header (struct cc__coro) at the top of its own
 * mmap'd stack: [guard, 64 KiB][stack, growing down][header]. One
 * mapping, no malloc; pages are touched lazily, so a parked coroutine costs
 * only the pages its frames used. The mapping is sized for the stack asked
 * for plus the header, rounded up to pages: the body gets at least what it
 * asked for, and the size reported is what lies below the header. A switch
 * pushes the callee-saved registers and the FP control state on the current
 * stack, saves the stack pointer in the header, loads the other one and pops
 * (src/arch/switch_<arch>.S; or, with CONCUR_CORO_FALLBACK,
 * __builtin_setjmp/__builtin_longjmp plus the <fenv.h> rounding mode and
 * traps, bootstrapped once per coroutine by makecontext: no syscall per
 * switch either way). A new coroutine's first frame returns into a
 * trampoline that calls cc__coro_main, which runs the entry function and,
 * when it returns, switches to the coroutine's resumer for good.
 *
 * Stacks of the default size go back to a bounded per-thread cache on
 * destroy and are reused as they are: no madvise on that path, because a
 * syscall would cost more than the switch-heavy life of a short coroutine, and
 * the bound (CACHE_MAX stacks) caps what the cache holds. cc__coro_cache_trim
 * gives the memory back: MADV_FREE below each cached stack's top page (cheap,
 * and the kernel reclaims only under pressure) or munmap.
 *
 * A stack overflow faults on the guard (bigger than any frame that does not
 * probe each page, so none jumps over it; a guard region that needs no VMA
 * of its own where the kernel has them: see guard_install); the SIGSEGV
 * handler, running on the thread's alternate signal stack, names the
 * coroutine and aborts. Any other fault goes to the previous handler.
 *
 * Sanitizers are told about every switch: ASan's fiber API (a reused stack is
 * unpoisoned first), TSan's fibers, valgrind's stack registration.
 */
#include "coro.h"

#include "atomics.h"
#include "internal.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <fenv.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "coro_san.h"

#ifdef CONCUR_CORO_FALLBACK
#include <ucontext.h>
#endif

/* Most default-size stacks a thread keeps for reuse. */
#define CACHE_MAX 64

struct cc__coro {
    void *sp;            /* saved stack pointer while suspended */
    cc__coro *caller;    /* resumer: where control goes when fn returns */
    cc__coro_fn fn;      /* entry function */
    void *arg;           /* its argument */
    char *map;           /* the mapping, guard first; NULL for main */
    size_t map_size;     /* bytes of the mapping, guard included */
    char *stack_lo;      /* lowest usable stack byte, above the guard */
    size_t stack_size;   /* usable bytes from stack_lo up to this header */
    cc__coro *next_free; /* link in the thread's stack cache */
    bool done;           /* the entry function has returned */
    bool is_main;        /* a thread's main coroutine: the thread's stack */
    char name[CC__CORO_NAME_MAX + 1]; /* for reports; NUL-terminated */
    struct cc__coro_san san; /* sanitizer and valgrind state (coro_san.h) */
#ifdef CONCUR_CORO_FALLBACK
    void *jb[5];  /* __builtin_setjmp buffer while suspended */
    int fp_round; /* fegetround() while suspended */
    int fp_traps; /* fegetexcept() while suspended */
#endif
} __attribute__((aligned(16)));

/* What a thread that uses coroutines owns. Initial-exec TLS: one %fs-relative
 * access, also from the signal handler. */
struct thread_state {
    bool ready;           /* cc__coro_thread_init done */
    cc__coro *current;    /* the coroutine running on this thread */
    cc__coro main;        /* the thread's own stack as a coroutine */
    cc__coro *cache;      /* free default-size stacks, LIFO */
    void *altstack;       /* our alternate signal stack, or NULL */
    size_t altstack_size; /* its bytes */
    cc__coro_stats stats; /* counters (stacks_cached kept up to date) */
};

static CC__THREAD_LOCAL struct thread_state tls;

/* Process-wide, set once under `once`. */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_key_t thread_key;       /* its destructor frees thread_state */
static struct sigaction previous_segv; /* the SIGSEGV handler before ours */
static size_t page_size;               /* sysconf(_SC_PAGESIZE) */
static size_t guard_size; /* CC__CORO_GUARD_MIN, or a page if bigger */
/* Guard pages by madvise: 1 works, 0 not tried yet, -1 not supported (then
 * mprotect). Relaxed: every thread that tries finds the same answer. */
static _Atomic int light_guards;

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102 /* Linux 6.13; not in older headers */
#endif

/*
 * tls.current = c on the thread that runs now, for code that may run on
 * another thread than its function began on (after a coroutine's body, after
 * a fallback switch lands): the compiler may keep the thread pointer in a
 * register across a call (aarch64 reads tpidr_el0 once per function), and
 * would write the state of the thread the coroutine left. A call reads it
 * afresh.
 */
static __attribute__((noinline)) void set_current(cc__coro *c)
{
    tls.current = c;
}

/* ---- architecture: the first frame and the switch -------------------- */

void cc__coro_main(cc__coro *c, cc__coro *prev) __attribute__((noreturn));

#ifndef CONCUR_CORO_FALLBACK

void *cc__coro_swap(void **save_sp, void *load_sp, void *pass);
void cc__coro_trampoline(void);

/* Build the frame that cc__coro_swap pops on the first switch into c. */
static void arch_prepare(cc__coro *c)
{
    uint64_t *sp = (uint64_t *)c; /* the header is 16-byte aligned */
#if defined(__x86_64__)
    *--sp = (uint64_t)(uintptr_t)cc__coro_trampoline; /* return rip */
    *--sp = 0;                                        /* rbp: ends backtraces */
    *--sp = 0;                                        /* rbx */
    *--sp = (uint64_t)(uintptr_t)c;                   /* r12 */
    *--sp = (uint64_t)(uintptr_t)cc__coro_main;       /* r13 */
    *--sp = 0;                                        /* r14 */
    *--sp = 0;                                        /* r15 */
    --sp;                                             /* FP control: */
    /* stored straight into the frame: reading back what stmxcsr stored
     * is not store-forwarded, and stalled every spawn. */
    __asm__ volatile("stmxcsr %0" : "=m"(*(uint32_t *)sp));
    __asm__ volatile("fnstcw %0" : "=m"(*((uint16_t *)sp + 2)));
#elif defined(__aarch64__)
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    sp -= 22;
    memset(sp, 0, 22 * sizeof *sp);
    sp[0] = (uint64_t)(uintptr_t)c;                    /* x19 */
    sp[1] = (uint64_t)(uintptr_t)cc__coro_main;        /* x20 */
    sp[11] = (uint64_t)(uintptr_t)cc__coro_trampoline; /* x30; x29 = 0 */
    sp[20] = fpcr;
#else
// clang-format off
#error "no assembly switch here: build with -DCONCUR_CORO_FALLBACK=ON"
// clang-format on
#endif
    c->sp = sp;
}

/* Inlined at every level of optimisation: the stack that the switch uses
 * below cc__coro_switch's own frame must be what arch_name_current probes. */
__attribute__((always_inline)) static inline cc__coro *
arch_swap(cc__coro *from, cc__coro *to)
{
    return cc__coro_swap(&from->sp, to->sp, from);
}

/*
 * Name `to` the current coroutine, right before the switch into it (no
 * call in between). The swap then pushes its frame on from's stack: first
 * touch that frame's lowest byte (x86-64: the 56 bytes it pushes, and a
 * return address where the compiler calls it instead of jumping to it: 64;
 * aarch64: 176), so that a stack overflow there faults while from is
 * current, and is reported in its name. Naming the target before the swap
 * (not on the resumed side, after) lets the compiler make the call a jump:
 * the swap resumes the other side straight in its caller, with no return
 * the predictor would miss (that cost 8 ns per switch).
 */
__attribute__((always_inline)) static inline void
arch_name_current(cc__coro *to)
{
#if defined(__x86_64__)
    __asm__ volatile("testb $0, -64(%%rsp)" ::: "cc");
#elif defined(__aarch64__)
    uint32_t byte;
    __asm__ volatile("ldurb %w0, [sp, #-176]" : "=r"(byte));
#endif
    tls.current = to;
}

#else /* CONCUR_CORO_FALLBACK */

/*
 * The FP control state that <fenv.h> can see: rounding mode and enabled
 * traps. Set only when it differs (rarely): fesetround is slow, and
 * fegetenv/fesetenv made a switch cost 290 ns on x86-64.
 */
static void fp_save(cc__coro *c)
{
    c->fp_round = fegetround();
    c->fp_traps = fegetexcept();
}

static void fp_restore(const cc__coro *c)
{
    if (CC__UNLIKELY(fegetround() != c->fp_round))
        fesetround(c->fp_round);
    int traps = fegetexcept();
    if (CC__UNLIKELY(traps != c->fp_traps)) {
        fedisableexcept(traps & ~c->fp_traps);
        feenableexcept(c->fp_traps & ~traps);
    }
}

/* The coroutine being bootstrapped, and where its bootstrap returns to (a
 * context on arch_prepare's stack). */
static CC__THREAD_LOCAL cc__coro *boot_coro;
static CC__THREAD_LOCAL ucontext_t *boot_return;
/* The switcher, handed to the resumed side (the assembly passes it in rax). */
static CC__THREAD_LOCAL cc__coro *fallback_prev;

/* Where a jump lands (maybe on another thread than the one that set the
 * jump): name self current, and get the switcher, on this thread
 * (set_current). */
static __attribute__((noinline)) cc__coro *fallback_landed(cc__coro *self)
{
    tls.current = self;
    return fallback_prev;
}

/* Runs once on the new stack (makecontext): plants the jump buffer that the
 * first switch lands on, then goes back to cc__coro_create. */
CC__CORO_NO_TSAN static void fallback_boot(void)
{
    cc__coro *c = boot_coro;
    void *lo;
    size_t size;
    cc__san_after_boot(&lo, &size);
    if (__builtin_setjmp(c->jb) == 0) {
        cc__san_before_boot_return(&c->san, &tls.current->san, lo, size);
        setcontext(boot_return);
        cc__panic("setcontext", -errno);
    }
    fp_restore(c); /* the creator's, saved by arch_prepare */
    cc__coro_main(c, fallback_landed(c));
}

static void arch_prepare(cc__coro *c)
{
    ucontext_t uc, back;
    if (getcontext(&uc) < 0)
        cc__panic("getcontext", -errno);
    uc.uc_stack.ss_sp = c->stack_lo;
    uc.uc_stack.ss_size = c->stack_size;
    uc.uc_link = NULL;
    makecontext(&uc, fallback_boot, 0);
    boot_coro = c;
    boot_return = &back;
    void *fake = NULL;
    cc__san_before_boot(&c->san, &fake);
    if (swapcontext(&back, &uc) < 0)
        cc__panic("swapcontext", -errno);
    cc__san_after_boot_return(fake);
    fp_save(c);
}

CC__CORO_NO_TSAN __attribute__((noinline, noreturn)) static void
fallback_jump(cc__coro *to)
{
    __builtin_longjmp(to->jb, 1);
}

CC__CORO_NO_TSAN __attribute__((noinline)) static cc__coro *
arch_swap(cc__coro *from, cc__coro *to)
{
    fp_save(from);
    fallback_prev = from;
    if (__builtin_setjmp(from->jb) == 0)
        fallback_jump(to);
    /* before fp_restore goes deeper: cc__coro_switch */
    cc__coro *prev = fallback_landed(from);
    fp_restore(from);
    return prev;
}

/* The fallback's switch goes deeper into from's stack (fp_save, setjmp, the
 * jump), and only then leaves it: the resumed side names itself current,
 * in arch_swap (and a new coroutine in cc__coro_main). */
static inline void arch_name_current(cc__coro *to) { (void)to; }

#endif /* CONCUR_CORO_FALLBACK */

/* ---- switching ------------------------------------------------------- */

void cc__coro_switch(cc__coro *from, cc__coro *to)
{
    assert(from == tls.current && to != from && !to->done);
    cc__san_before_switch(&from->san, false, &to->san);
    /* Until the swap has left from's stack, an overflow is from's: the
     * SIGSEGV handler must look at from's guard page (arch_name_current). */
    arch_name_current(to);
    cc__coro *prev = arch_swap(from, to);
    cc__san_after_switch(&from->san, &prev->san);
}

void cc__coro_resume(cc__coro *c)
{
    cc__coro *self = cc__coro_current();
    c->caller = self;
    cc__coro_switch(self, c);
}

void cc__coro_yield(void)
{
    cc__coro *self = tls.current;
    assert(self && !self->is_main);
    cc__coro_switch(self, self->caller);
}

/* The C entry of every coroutine, on its own stack, from the trampoline (or
 * fallback_boot); prev is the coroutine that switched in. */
void cc__coro_main(cc__coro *c, cc__coro *prev)
{
    tls.current = c; /* the fallback's switch in leaves that to us */
    cc__san_after_switch(&c->san, &prev->san);
    if (!c->caller)
        c->caller = prev; /* started by cc__coro_switch, not resume */
    c->fn(c->arg);
    c->done = true;
    cc__coro *to = c->caller;
    set_current(to); /* it resumes in cc__coro_switch, past its naming */
    cc__san_before_switch(&c->san, true, &to->san); /* c's fake stack dies */
    arch_swap(c, to);
    cc__panic("a finished coroutine was switched into", -EINVAL);
}

bool cc__coro_done(const cc__coro *c) { return c->done; }

bool cc__coro_is_main(const cc__coro *c) { return c->is_main; }

const char *cc__coro_name(const cc__coro *c) { return c->name; }

size_t cc__coro_stack_size(const cc__coro *c)
{
    return c->is_main ? 0 : c->stack_size;
}

cc__coro *cc__coro_current(void)
{
    if (CC__UNLIKELY(!tls.ready) && cc__coro_thread_init() < 0)
        cc__panic("cc__coro_thread_init", -ENOMEM);
    return tls.current;
}

/* ---- stacks ---------------------------------------------------------- */

static size_t round_to_pages(size_t n)
{
    return (n + page_size - 1) & ~(page_size - 1);
}

/*
 * Does the guard region on `page` really fault? Emulators (qemu-user) accept
 * MADV_GUARD_INSTALL and do nothing. Probe without a signal: write(2) from
 * a guarded page fails with EFAULT. Once per process.
 */
static bool guard_region_works(char *page)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return false;
    bool faults = write(p[1], page, 1) < 0 && errno == EFAULT;
    close(p[0]);
    close(p[1]);
    return faults;
}

/*
 * Make the lowest guard_size bytes of a stack mapping its guard. Linux
 * 6.13's guard regions (MADV_GUARD_INSTALL) do it without splitting the
 * mapping, so that neighbouring stacks merge into one VMA; mprotect costs
 * two VMAs per stack, and vm.max_map_count (65530 by default) then caps a
 * process at about 32,000 coroutines. Older kernels answer EINVAL: use
 * mprotect from then on.
 * CONCUR_NO_GUARD_REGIONS=1 in the environment forces mprotect (for tests).
 */
static int guard_install(char *map)
{
    int state = cc__load_relaxed(&light_guards);
    if (state >= 0 && madvise(map, guard_size, MADV_GUARD_INSTALL) == 0) {
        if (state == 1 || guard_region_works(map)) {
            cc__store_relaxed(&light_guards, 1);
            return 0;
        }
    } else if (state >= 0 && errno != EINVAL) {
        return -ENOMEM;
    }
    cc__store_relaxed(&light_guards, -1);
    return mprotect(map, guard_size, PROT_NONE) < 0 ? -ENOMEM : 0;
}

/* Bytes above the guard for a stack of `size` usable bytes and its
 * header; size below 2^40, so that rounding cannot wrap. */
static size_t stack_bytes(size_t size)
{
    size_t bytes = round_to_pages(size + sizeof(cc__coro));
    /* room for the header and a few frames, whatever was asked */
    return bytes < 2 * page_size ? 2 * page_size : bytes;
}

/* Map guard + `bytes` and put the header at the top. */
static int stack_map(cc__coro **out, size_t bytes)
{
    size_t map_size = guard_size + bytes;
    char *map =
        mmap(NULL, map_size, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (map == MAP_FAILED)
        return -ENOMEM;
    if (guard_install(map) < 0) {
        munmap(map, map_size);
        return -ENOMEM;
    }
    cc__coro *c = (cc__coro *)(map + map_size - sizeof(cc__coro));
    c->map = map;
    c->map_size = map_size;
    c->stack_lo = map + guard_size;
    c->stack_size = (size_t)((char *)c - c->stack_lo);
    cc__san_stack_mapped(&c->san, c->stack_lo, c->stack_size);
    tls.stats.stacks_mapped++;
    *out = c;
    return 0;
}

static void stack_unmap(cc__coro *c)
{
    char *map = c->map;
    size_t map_size = c->map_size;
    cc__san_stack_unmapped(&c->san, map, map_size);
    tls.stats.stacks_unmapped++;
    if (munmap(map, map_size) < 0)
        cc__panic("munmap", -errno);
}

static int stack_get(cc__coro **out, size_t size)
{
    if (size > ((size_t)1 << 40)) /* before rounding, which would wrap */
        return -ENOMEM;
    size_t bytes = stack_bytes(size ? size : CC__CORO_STACK_DEFAULT);
    if (bytes != stack_bytes(CC__CORO_STACK_DEFAULT) || !tls.cache)
        return stack_map(out, bytes);
    cc__coro *c = tls.cache;
    tls.cache = c->next_free;
    tls.stats.stacks_cached--;
    tls.stats.stacks_reused++;
    cc__san_stack_reused(&c->san, c->stack_lo, c->stack_size);
    *out = c;
    return 0;
}

static void stack_put(cc__coro *c)
{
    if (c->map_size != guard_size + stack_bytes(CC__CORO_STACK_DEFAULT) ||
        tls.stats.stacks_cached >= CACHE_MAX || !tls.ready) {
        stack_unmap(c);
        return;
    }
    c->next_free = tls.cache;
    tls.cache = c;
    tls.stats.stacks_cached++;
}

void cc__coro_cache_trim(bool unmap)
{
    cc__coro **link = &tls.cache;
    while (*link) {
        cc__coro *c = *link;
        if (unmap) {
            *link = c->next_free;
            tls.stats.stacks_cached--;
            stack_unmap(c);
            continue;
        }
        /* Everything below the page holding the header and the top frames. */
        size_t len = c->map_size - guard_size - page_size;
        if (len && madvise(c->stack_lo, len, MADV_FREE) < 0)
            cc__panic("madvise", -errno);
        link = &c->next_free;
    }
}

cc__coro_stats cc__coro_get_stats(void) { return tls.stats; }

/* ---- create and destroy ---------------------------------------------- */

static void set_name(cc__coro *c, const char *name)
{
    size_t n = strnlen(name ? name : "coro", CC__CORO_NAME_MAX);
    memcpy(c->name, name ? name : "coro", n);
    c->name[n] = '\0';
}

int cc__coro_create(cc__coro **out, cc__coro_fn fn, void *arg,
                    size_t stack_size, const char *name)
{
    int r = cc__coro_thread_init();
    cc__coro *c;
    if (r < 0 || (r = stack_get(&c, stack_size)) < 0)
        return r;
    c->caller = NULL;
    c->fn = fn;
    c->arg = arg;
    c->next_free = NULL;
    c->done = false;
    c->is_main = false;
    set_name(c, name);
    cc__san_coro_created(&c->san, c->stack_lo, c->stack_size, c->name);
    arch_prepare(c);
    *out = c;
    return 0;
}

void cc__coro_destroy(cc__coro *c)
{
    if (!c)
        return;
    assert(!c->is_main && c != tls.current);
    if (!c->done) /* a done one's fake stack went as it finished */
        cc__san_coro_abandoned(&c->san);
    cc__san_coro_destroyed(&c->san);
    stack_put(c);
}

/* ---- stack overflow: the guard and the SIGSEGV handler ---------------- */

/* Write n in decimal into buf (at least 21 bytes); returns the length. */
static size_t format_u64(char *buf, uint64_t n)
{
    char tmp[21];
    size_t len = 0;
    do
        tmp[len++] = (char)('0' + n % 10);
    while ((n /= 10));
    for (size_t i = 0; i < len; i++)
        buf[i] = tmp[len - 1 - i];
    return len;
}

/* Async-signal-safe: write(2) only. */
static _Noreturn void report_overflow(const cc__coro *c)
{
    char msg[160];
    size_t n = 0;
    const char *parts[] = {"concur: stack overflow in coroutine '", c->name,
                           "' (stack "};
    for (size_t i = 0; i < CC__ARRAY_LEN(parts); i++) {
        size_t len = strlen(parts[i]);
        memcpy(msg + n, parts[i], len);
        n += len;
    }
    n += format_u64(msg + n, c->stack_size);
    memcpy(msg + n, " bytes)\n", 8);
    n += 8;
    (void)!write(STDERR_FILENO, msg, n);
    abort();
}

static void segv_default(int sig)
{
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
}

/* The default action, for a fault that comes back to us (on_segv). */
static const struct sigaction default_segv = {.sa_handler = SIG_DFL};

/* The fault this thread is handing to the previous handler: its siginfo and
 * our frame then. A previous handler that calls ours back with it (it found
 * ours when it was installed, and cc__coro_install_overflow_handler put
 * ours on top again) gets the default action, not another round. One that
 * leaves by longjmp leaves them set: a later fault is told apart by its
 * frame, which is not deeper than ours was. */
static CC__THREAD_LOCAL const siginfo_t *passing_si;
static CC__THREAD_LOCAL const char *passing_frame;

/* Hand a fault that is not ours to p, whoever handled SIGSEGV before us. */
static void pass_on(const struct sigaction *p, int sig, siginfo_t *si,
                    void *uctx)
{
    /* SIG_DFL and SIG_IGN are no functions, even with SA_SIGINFO set (the
     * handler fields share their storage). */
    bool function = p->sa_handler != SIG_DFL && p->sa_handler != SIG_IGN;
    /* A one-shot handler (a crash reporter that returns to let the fault
     * kill) gets the disposition the kernel would have left behind it, else
     * the fault executed again would call it forever. */
    if (function && (p->sa_flags & SA_RESETHAND))
        segv_default(sig);
    if (function && (p->sa_flags & SA_SIGINFO)) {
        p->sa_sigaction(sig, si, uctx);
    } else if (function) {
        p->sa_handler(sig);
    } else if (si->si_code > 0) {
        /* Default action: returning re-executes the fault, which now kills
         * (an ignored fault kills too: the kernel forces it). */
        segv_default(sig);
    } else if (p->sa_handler == SIG_DFL) {
        /* Sent (kill, raise), not a fault: nothing happens again, so send
         * it again under the default action. An ignored one stays so. */
        segv_default(sig);
        raise(sig);
    }
}

static void on_segv(int sig, siginfo_t *si, void *uctx)
{
    const cc__coro *c = tls.current;
    const char *addr = si->si_addr;
    if (c && !c->is_main && addr >= c->map && addr < c->stack_lo)
        report_overflow(c);
    const char *frame = __builtin_frame_address(0);
    if (si == passing_si && frame < passing_frame) {
        pass_on(&default_segv, sig, si, uctx); /* called back */
        return;
    }
    const siginfo_t *outer_si = passing_si; /* a fault in a handler */
    const char *outer_frame = passing_frame;
    passing_si = si;
    passing_frame = frame;
    pass_on(&previous_segv, sig, si, uctx);
    passing_si = outer_si;
    passing_frame = outer_frame;
}

/* ---- per-thread and per-process set-up -------------------------------- */

static void thread_exit(void *unused)
{
    (void)unused;
    cc__coro_cache_trim(true);
    if (tls.altstack) {
        stack_t off = {.ss_flags = SS_DISABLE};
        sigaltstack(&off, NULL);
        munmap(tls.altstack, tls.altstack_size);
        tls.altstack = NULL;
    }
    tls.ready = false;
}

static void process_init(void)
{
    page_size = (size_t)sysconf(_SC_PAGESIZE);
    guard_size =
        page_size > CC__CORO_GUARD_MIN ? page_size : CC__CORO_GUARD_MIN;
    const char *no_regions = getenv("CONCUR_NO_GUARD_REGIONS");
    if (no_regions && *no_regions && strcmp(no_regions, "0") != 0)
        cc__store_relaxed(&light_guards, -1); /* tests of the mprotect path */
    if (pthread_key_create(&thread_key, thread_exit) != 0)
        cc__panic("pthread_key_create", -EAGAIN);
    cc__coro_install_overflow_handler();
}

void cc__coro_install_overflow_handler(void)
{
    struct sigaction now;
    if (sigaction(SIGSEGV, NULL, &now) < 0)
        cc__panic("sigaction", -errno);
    if ((now.sa_flags & SA_SIGINFO) && now.sa_sigaction == on_segv)
        return;
    previous_segv = now;
    struct sigaction sa = {.sa_sigaction = on_segv,
                           .sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER};
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, NULL) < 0)
        cc__panic("sigaction", -errno);
}

/* An alternate signal stack for the overflow report, unless one is set. */
static int altstack_init(void)
{
    stack_t old;
    if (sigaltstack(NULL, &old) < 0)
        cc__panic("sigaltstack", -errno);
    if (!(old.ss_flags & SS_DISABLE))
        return 0;
    long min = sysconf(_SC_MINSIGSTKSZ);
    size_t size = round_to_pages(min > 16384 ? 4 * (size_t)min : 65536);
    void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED)
        return -ENOMEM;
    stack_t ss = {.ss_sp = mem, .ss_size = size};
    if (sigaltstack(&ss, NULL) < 0)
        cc__panic("sigaltstack", -errno);
    tls.altstack = mem;
    tls.altstack_size = size;
    return 0;
}

int cc__coro_thread_init(void)
{
    if (CC__LIKELY(tls.ready))
        return 0;
    pthread_once(&once, process_init);
    int r = altstack_init();
    if (r < 0)
        return r;
    cc__coro *m = &tls.main;
    memset(m, 0, sizeof *m);
    m->is_main = true;
    set_name(m, "main");
    cc__san_main_init(&m->san);
    tls.current = m;
    if (pthread_setspecific(thread_key, &tls) != 0)
        cc__panic("pthread_setspecific", -ENOMEM);
    tls.ready = true;
    return 0;
}
