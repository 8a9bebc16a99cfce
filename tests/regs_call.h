/*
 * regs_call.h: a helper of test_coro.c, in assembly because C cannot name
 * registers: it checks that a coroutine switch keeps every callee-saved one.
 */
#ifndef CONCUR_TEST_REGS_CALL_H
#define CONCUR_TEST_REGS_CALL_H

#include <stdint.h>

/*
 * regs_call(fn, arg, seed): load a pattern made from seed into every
 * callee-saved register (x86-64: rbx, rbp, r12-r15; aarch64: x19-x29,
 * d8-d15), call fn(arg), and return how many registers lost their pattern.
 * fn only switches coroutines, so a mismatch is the switch's fault.
 */
long regs_call(void (*fn)(void *), void *arg, uint64_t seed);

// clang-format off
#if defined(__x86_64__)
/* Count a mismatch of register r against seed ^ k (seed in rdx). */
#define CHK(r, k) "  mov %rdx, %rcx\n  xor $" k ", %rcx\n  cmp %rcx, %" r "\n" \
                  "  setne %cl\n  movzbl %cl, %ecx\n  add %rcx, %rax\n"
__asm__(".text\n"
        ".globl regs_call\n"
        ".type regs_call, @function\n"
        "regs_call:\n"
        "  push %rbp\n  push %rbx\n  push %r12\n"
        "  push %r13\n  push %r14\n  push %r15\n"
        "  sub $8, %rsp\n"
        "  mov %rdx, (%rsp)\n"
        "  mov %rdx, %rbx\n  xor $1, %rbx\n"
        "  mov %rdx, %rbp\n  xor $2, %rbp\n"
        "  mov %rdx, %r12\n  xor $3, %r12\n"
        "  mov %rdx, %r13\n  xor $4, %r13\n"
        "  mov %rdx, %r14\n  xor $5, %r14\n"
        "  mov %rdx, %r15\n  xor $6, %r15\n"
        "  mov %rdi, %rax\n  mov %rsi, %rdi\n  call *%rax\n"
        "  mov (%rsp), %rdx\n  xor %eax, %eax\n"
        CHK("rbx", "1")
        CHK("rbp", "2")
        CHK("r12", "3")
        CHK("r13", "4")
        CHK("r14", "5")
        CHK("r15", "6")
        "  add $8, %rsp\n"
        "  pop %r15\n  pop %r14\n  pop %r13\n"
        "  pop %r12\n  pop %rbx\n  pop %rbp\n"
        "  ret\n"
        ".size regs_call, .-regs_call\n");
#elif defined(__aarch64__)
/* x19..x29 = seed + 1..11, d8..d15 = seed + 12..19 (as integers). */
#define LOADX(r, k) "  add " r ", x2, #" #k "\n"
#define LOADD(r, k) "  add x9, x2, #" #k "\n  fmov " r ", x9\n"
#define CHKX(r, k) "  add x9, x2, #" #k "\n  cmp x9, " r "\n  cinc x0, x0, ne\n"
#define CHKD(r, k) "  add x9, x2, #" #k "\n  fmov x10, " r "\n  cmp x9, x10\n  cinc x0, x0, ne\n"
__asm__(".text\n"
        ".globl regs_call\n"
        ".type regs_call, %function\n"
        "regs_call:\n"
        "  sub sp, sp, #176\n"
        "  stp x19, x20, [sp, #0]\n  stp x21, x22, [sp, #16]\n  stp x23, x24, [sp, #32]\n"
        "  stp x25, x26, [sp, #48]\n  stp x27, x28, [sp, #64]\n  stp x29, x30, [sp, #80]\n"
        "  stp d8, d9, [sp, #96]\n  stp d10, d11, [sp, #112]\n  stp d12, d13, [sp, #128]\n"
        "  stp d14, d15, [sp, #144]\n  str x2, [sp, #160]\n"
        LOADX("x19", 1) LOADX("x20", 2) LOADX("x21", 3) LOADX("x22", 4) LOADX("x23", 5)
        LOADX("x24", 6) LOADX("x25", 7) LOADX("x26", 8) LOADX("x27", 9) LOADX("x28", 10)
        LOADX("x29", 11)
        LOADD("d8", 12) LOADD("d9", 13) LOADD("d10", 14) LOADD("d11", 15)
        LOADD("d12", 16) LOADD("d13", 17) LOADD("d14", 18) LOADD("d15", 19)
        "  mov x9, x0\n  mov x0, x1\n  blr x9\n"
        "  ldr x2, [sp, #160]\n  mov x0, #0\n"
        CHKX("x19", 1) CHKX("x20", 2) CHKX("x21", 3) CHKX("x22", 4) CHKX("x23", 5)
        CHKX("x24", 6) CHKX("x25", 7) CHKX("x26", 8) CHKX("x27", 9) CHKX("x28", 10)
        CHKX("x29", 11)
        CHKD("d8", 12) CHKD("d9", 13) CHKD("d10", 14) CHKD("d11", 15)
        CHKD("d12", 16) CHKD("d13", 17) CHKD("d14", 18) CHKD("d15", 19)
        "  ldp x19, x20, [sp, #0]\n  ldp x21, x22, [sp, #16]\n  ldp x23, x24, [sp, #32]\n"
        "  ldp x25, x26, [sp, #48]\n  ldp x27, x28, [sp, #64]\n  ldp x29, x30, [sp, #80]\n"
        "  ldp d8, d9, [sp, #96]\n  ldp d10, d11, [sp, #112]\n  ldp d12, d13, [sp, #128]\n"
        "  ldp d14, d15, [sp, #144]\n"
        "  add sp, sp, #176\n  ret\n"
        ".size regs_call, .-regs_call\n");
// clang-format on
#else
long regs_call(void (*fn)(void *), void *arg, uint64_t seed)
{
    (void)seed;
    fn(arg);
    return 0; /* no register check on this architecture */
}
#endif

#endif
