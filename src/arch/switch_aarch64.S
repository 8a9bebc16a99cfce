/*
 * switch_aarch64.S: the coroutine context switch for aarch64, AAPCS64
 * (src/coro.c). Saves what the ABI says a call preserves: x19-x28, the frame
 * pointer x29, the link register x30, d8-d15, the stack pointer, and the
 * floating-point control register FPCR, then loads the same from the other
 * stack. FPCR is written only when it differs: writing it can stall.
 *
 * void *cc__coro_swap(void **save_sp, void *load_sp, void *pass)
 *   Stores the state on the current stack, stores sp in *save_sp, switches to
 *   load_sp, loads the state saved there and returns `pass` (the switcher's
 *   value) in x0 in the resumed context.
 *
 * Frame, from the saved stack pointer up (176 bytes, 16-byte aligned;
 * cc__coro_prepare in coro.c builds the first one of a new coroutine):
 *   [0] x19 x20  [16] x21 x22  [32] x23 x24  [48] x25 x26  [64] x27 x28
 *   [80] x29 x30  [96] d8 d9  [112] d10 d11  [128] d12 d13  [144] d14 d15
 *   [160] FPCR, padding
 */
#if defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT
#define BTI_C hint 34
#else
#define BTI_C
#endif

    .text
    .globl cc__coro_swap
    .hidden cc__coro_swap
    .type cc__coro_swap, %function
    .p2align 4
cc__coro_swap:
    .cfi_startproc
    /* No unwinding through here (see switch_x86_64.S): sp moves and then
     * leaves for the other context's stack, so no CFA rule holds
     * throughout; an undefined return address ends a backtrace here. */
    .cfi_undefined x30
    BTI_C
    sub sp, sp, #176
    stp x19, x20, [sp, #0]
    stp x21, x22, [sp, #16]
    stp x23, x24, [sp, #32]
    stp x25, x26, [sp, #48]
    stp x27, x28, [sp, #64]
    stp x29, x30, [sp, #80]
    stp d8, d9, [sp, #96]
    stp d10, d11, [sp, #112]
    stp d12, d13, [sp, #128]
    stp d14, d15, [sp, #144]
    mrs x9, fpcr
    str x9, [sp, #160]
    mov x10, sp
    str x10, [x0]
    mov sp, x1
    ldp x19, x20, [sp, #0]
    ldp x21, x22, [sp, #16]
    ldp x23, x24, [sp, #32]
    ldp x25, x26, [sp, #48]
    ldp x27, x28, [sp, #64]
    ldp x29, x30, [sp, #80]
    ldp d8, d9, [sp, #96]
    ldp d10, d11, [sp, #112]
    ldp d12, d13, [sp, #128]
    ldp d14, d15, [sp, #144]
    ldr x10, [sp, #160]
    cmp x9, x10
    b.eq 1f
    msr fpcr, x10
1:
    add sp, sp, #176
    mov x0, x2
    ret
    .cfi_endproc
    .size cc__coro_swap, .-cc__coro_swap

/*
 * cc__coro_trampoline: where a new coroutine's first switch returns to, with
 * x19 = the coroutine, x20 = its C entry (cc__coro_main), x0 = the coroutine
 * that switched in. The entry never returns.
 */
    .globl cc__coro_trampoline
    .hidden cc__coro_trampoline
    .type cc__coro_trampoline, %function
    .p2align 4
cc__coro_trampoline:
    .cfi_startproc
    .cfi_undefined x30
    BTI_C
    mov x1, x0
    mov x0, x19
    blr x20
    brk #1
    .cfi_endproc
    .size cc__coro_trampoline, .-cc__coro_trampoline

    .section .note.GNU-stack, "", %progbits
