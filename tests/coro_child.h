/*
 * coro_child.h: what the coroutine tests (test_coro*.c) share to watch a
 * forked child die (its wait status and what it wrote to stderr), and to
 * make it overflow a stack.
 */
#ifndef CONCUR_TEST_CORO_CHILD_H
#define CONCUR_TEST_CORO_CHILD_H

#include "testutil.h"

#include "coro.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

/* TEST_TSAN: a ThreadSanitizer build. */
#if defined(__SANITIZE_THREAD__)
#define TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TEST_TSAN 1
#endif
#endif

/* Run fn(arg) in a forked child with stderr captured into err (n bytes,
 * NUL-terminated); returns the wait status. */
static inline int run_child(void (*fn)(const char *), const char *arg,
                            char *err, size_t n)
{
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(p[1], 2);
        fn(arg);
        _exit(3);
    }
    close(p[1]);
    size_t len = 0;
    ssize_t r;
    while (len + 1 < n && (r = read(p[0], err + len, n - 1 - len)) > 0)
        len += (size_t)r;
    err[len] = '\0';
    char sink[4096];
    while (read(p[0], sink, sizeof sink) > 0) {
    }
    close(p[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

/* The usable stack of a coroutine asking for `size` bytes. */
static inline size_t usable_for(size_t size)
{
    cc__coro *c;
    assert_int_equal(cc__coro_create(&c, NULL, NULL, size, "u"), 0);
    size_t usable = cc__coro_stack_size(c);
    cc__coro_destroy(c);
    return usable;
}

/* Recursion without end: a stack overflow. */
static int __attribute__((noinline, unused)) recurse(int depth)
{
    volatile char frame[256];
    frame[0] = (char)depth;
    if (depth < 0) /* never: keeps the compiler from calling this infinite */
        return 0;
    return recurse(depth + 1) + frame[0];
}

#endif
