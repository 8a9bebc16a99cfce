/*
 * coro.h: stackful coroutines, the core that the event loop (issue 4) is built
 * on. Internal: not installed, not part of the public API yet.
 *
 * A coroutine is a function running on its own mmap'd stack, which can switch
 * to another coroutine and be switched back into later, with every callee-saved
 * register and the floating-point control state (MXCSR and x87 control word on
 * x86-64; FPCR on aarch64) preserved; the portable fallback
 * (CONCUR_CORO_FALLBACK) keeps what <fenv.h> sees, the rounding mode and the
 * enabled traps, so flush-to-zero and x87 precision follow the thread there,
 * not the coroutine. Each OS thread that uses coroutines also
 * has a "main" coroutine that stands for the thread's own stack.
 *
 * Thread safety: a coroutine runs on one thread at a time, and only the thread
 * that runs it may switch out of it. Everything here is per-thread state except
 * the process-wide stack-overflow handler; no call blocks. Moving a suspended
 * coroutine to another thread is allowed (resume it there), but code inside it
 * must not keep pointers to thread-local variables across a switch.
 */
#ifndef CONCUR_CORO_H
#define CONCUR_CORO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cc__coro cc__coro;

/* The entry function of a coroutine; `arg` as given to cc__coro_create. */
typedef void (*cc__coro_fn)(void *arg);

/* The stack size a coroutine gets when it asks for 0 bytes (64 KiB). Only
 * stacks of this size are cached for reuse. */
#define CC__CORO_STACK_DEFAULT ((size_t)64 * 1024)

/* Bytes of the guard below each stack (a page where pages are bigger):
 * more than the biggest frame that does not probe its pages (glibc's
 * vfwprintf: 33 KiB; -fstack-clash-protection makes concur's probe), so
 * that none jumps over it. Address space only: no memory, no VMA. */
#define CC__CORO_GUARD_MIN ((size_t)64 * 1024)

/* Longest coroutine name kept, in bytes (longer names are truncated). */
#define CC__CORO_NAME_MAX 31

/*
 * cc__coro_create: make a coroutine that will run fn(arg) on a stack of its
 * own, suspended until it is first switched into.
 *   out:        receives the coroutine.
 *   fn, arg:    the entry function and its argument. When fn returns, the
 *               coroutine is done and control goes to its resumer: the
 *               coroutine that last resumed it (cc__coro_resume), or, if it
 *               was never resumed, the one that first switched into it.
 *   stack_size: usable stack bytes: the body gets at least this many (the
 *               mapping, which also holds the coroutine's header, is rounded
 *               up to whole pages; cc__coro_stack_size gives the exact
 *               count); 0 means CC__CORO_STACK_DEFAULT. A 64 KiB guard
 *               below it (no memory, address space only) turns an overflow
 *               into an abort naming the coroutine and its usable stack
 *               size. A single frame bigger than that can jump over the
 *               guard (libc's are smaller): build code with bigger locals
 *               with -fstack-clash-protection, which makes the compiler
 *               touch every page it allocates.
 *   name:       copied (truncated to CC__CORO_NAME_MAX bytes); NULL: "coro".
 * The coroutine starts with the caller's FP control state (as a new thread
 * starts with its creator's), and keeps its own from then on.
 * Returns 0, or -ENOMEM (no memory for the stack mapping, or stack_size too
 * large). Default-size stacks come from a per-thread cache when one is free.
 * Installs, on first use, the process's SIGSEGV handler and this thread's
 * alternate signal stack (cc__coro_thread_init). Does not block.
 * Ownership: the caller owns the coroutine and frees it with cc__coro_destroy.
 */
int cc__coro_create(cc__coro **out, cc__coro_fn fn, void *arg,
                    size_t stack_size, const char *name);

/*
 * cc__coro_destroy: free a coroutine that is not running: done, never started,
 * or suspended. A suspended coroutine's frames are abandoned without
 * unwinding (nothing on its stack is cleaned up; under ASan with
 * detect_stack_use_after_return its fake stack is freed). Its stack goes
 * back to this thread's cache when it has the default size and the cache
 * has room, else is unmapped. NULL is ignored. Must not be called on the
 * running coroutine or on a thread's main coroutine.
 */
void cc__coro_destroy(cc__coro *c);

/*
 * cc__coro_switch: suspend `from`, which must be the coroutine running on this
 * thread (cc__coro_current()), and run `to` (suspended or never started, not
 * done) until something switches back into `from`. Does not change `to`'s
 * resumer (see cc__coro_create), except that a coroutine started this way
 * takes `from` as its resumer. No syscall: a few instructions, plus
 * bookkeeping in sanitizer builds.
 */
void cc__coro_switch(cc__coro *from, cc__coro *to);

/*
 * cc__coro_resume: make the running coroutine c's resumer and switch into c,
 * as cc__coro_switch(cc__coro_current(), c). Returns when c yields or
 * finishes (or something else switches back).
 */
void cc__coro_resume(cc__coro *c);

/*
 * cc__coro_yield: switch from the running coroutine back to the one that last
 * switched into it (its resumer). Must be called from a coroutine, not from a
 * thread's main coroutine.
 */
void cc__coro_yield(void);

/* cc__coro_done: true once c's entry function has returned. */
bool cc__coro_done(const cc__coro *c);

/*
 * cc__coro_current: the coroutine running on this thread; the thread's main
 * coroutine when none was switched into (set up on first call).
 */
cc__coro *cc__coro_current(void);

/* cc__coro_is_main: true for a thread's main coroutine (the thread's stack). */
bool cc__coro_is_main(const cc__coro *c);

/* cc__coro_name: the coroutine's name (valid while it lives). */
const char *cc__coro_name(const cc__coro *c);

/* cc__coro_stack_size: usable stack bytes of c, from its guard up to
 * its header: at least the size asked for (0 for a main coroutine). The
 * overflow report gives the same number. */
size_t cc__coro_stack_size(const cc__coro *c);

/*
 * cc__coro_thread_init: set up this thread for coroutines: its main coroutine,
 * an alternate signal stack (unless the thread has one) so that a stack
 * overflow can be reported, and, once per process, the SIGSEGV handler that
 * reports overflows and passes every other fault on to the previous handler.
 * Called by cc__coro_create and cc__coro_current; idempotent. Returns 0 or
 * -ENOMEM (no memory for the signal stack). The thread's state is freed when
 * it exits.
 */
int cc__coro_thread_init(void);

/*
 * cc__coro_install_overflow_handler: (re)install the SIGSEGV handler that
 * reports coroutine stack overflows, if it is not the current one, chaining
 * to the handler found there. cc__coro_thread_init does it once per process;
 * call it again after something else replaced the SIGSEGV handler (a test
 * framework, a crash reporter) to keep overflow reports. A previous handler
 * that chains back to ours (it found ours when it was installed) gets the
 * fault once: ours then takes the default action. Not thread-safe
 * against concurrent sigaction calls on SIGSEGV.
 */
void cc__coro_install_overflow_handler(void);

/* Per-thread counters of the stack cache, for tests and diagnostics. */
typedef struct cc__coro_stats {
    uint64_t stacks_mapped;   /* stacks this thread got from mmap */
    uint64_t stacks_reused;   /* stacks this thread took from its cache */
    uint64_t stacks_unmapped; /* stacks this thread gave back to the kernel */
    size_t stacks_cached;     /* stacks in this thread's cache now */
} cc__coro_stats;

/* cc__coro_stats: this thread's stack-cache counters. */
cc__coro_stats cc__coro_get_stats(void);

/*
 * cc__coro_cache_trim: release memory held by this thread's cached stacks:
 * unmap them all when `unmap`, else keep them mapped but MADV_FREE all of each
 * but its top page, so the kernel may reclaim what deep calls touched. For an
 * idle event loop (later) and for tests.
 */
void cc__coro_cache_trim(bool unmap);

#endif
