/*
 * switch_x86_64.S: the coroutine context switch for x86-64, System V ABI
 * (src/coro.c). Saves what the ABI says a call preserves: rbx, rbp, r12-r15,
 * the stack pointer, and the floating-point control state (MXCSR control bits
 * and the x87 control word), then loads the same from the other stack.
 *
 * void *cc__coro_swap(void **save_sp, void *load_sp, void *pass)
 *   Pushes the state on the current stack, stores the stack pointer in
 *   *save_sp, switches to load_sp, pops the state saved there and returns
 *   `pass` (the switcher's value) in the resumed context.
 *
 * Frame, from the saved stack pointer up (64 bytes; cc__coro_prepare in
 * coro.c builds the first one of a new coroutine):
 *   [0] MXCSR (4 bytes), [4] x87 control word (2 bytes), padding
 *   [8] r15  [16] r14  [24] r13  [32] r12  [40] rbx  [48] rbp  [56] return rip
 *
 * ldmxcsr is the dearest part of the switch, but skipping it when the two
 * contexts' MXCSR agree was slower (AMD Zen): comparing means reading back
 * what stmxcsr just stored, and that load is not store-forwarded.
 */
#if defined(__CET__) && (__CET__ & 1)
#define ENDBR endbr64
#else
#define ENDBR
#endif

    .text
    .globl cc__coro_swap
    .hidden cc__coro_swap
    .type cc__coro_swap, @function
    .p2align 4
cc__coro_swap:
    .cfi_startproc
    /* No unwinding through here: the stack pointer leaves for the other
     * context's stack halfway, so no CFA rule holds throughout, and an
     * unwinder that believed the default one (return address at the
     * stack pointer) read saved registers or MXCSR as a return address
     * and crashed (backtrace() in a signal handler: the stall detector's,
     * loop_diag.c). An undefined return address ends a backtrace here. */
    .cfi_undefined rip
    ENDBR
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    /* The resume address first, so the jump's target is known early; then
     * plain loads (as Boost's jump_fcontext), not a chain of pops. */
    movq 56(%rsp), %rcx
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    movq 8(%rsp), %r15
    movq 16(%rsp), %r14
    movq 24(%rsp), %r13
    movq 32(%rsp), %r12
    movq 40(%rsp), %rbx
    movq 48(%rsp), %rbp
    leaq 64(%rsp), %rsp
    movq %rdx, %rax
    /* Not ret: the return-stack predictor holds the other context's return
     * address and would mispredict every switch; an indirect jump is
     * predicted from its own history. */
    jmpq *%rcx
    .cfi_endproc
    .size cc__coro_swap, .-cc__coro_swap

/*
 * cc__coro_trampoline: where a new coroutine's first switch returns to, with
 * rsp 16-byte aligned, r12 = the coroutine, r13 = its C entry
 * (cc__coro_main), rax = the coroutine that switched in. The entry never
 * returns.
 */
    .globl cc__coro_trampoline
    .hidden cc__coro_trampoline
    .type cc__coro_trampoline, @function
    .p2align 4
cc__coro_trampoline:
    .cfi_startproc
    .cfi_undefined rip
    ENDBR
    movq %r12, %rdi
    movq %rax, %rsi
    callq *%r13
    ud2
    .cfi_endproc
    .size cc__coro_trampoline, .-cc__coro_trampoline

    .section .note.GNU-stack, "", @progbits
