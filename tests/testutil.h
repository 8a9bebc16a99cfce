/*
 * testutil.h: what every concur test program shares.
 *
 * Register each test with CC_TEST(fn): it then runs with a timeout (a hang is a
 * failure: SIGALRM names the test and aborts) and ends with a check that open
 * fds, threads and child processes are back where they started.
 */
#ifndef CONCUR_TESTUTIL_H
#define CONCUR_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cmocka.h>

#include <concur.h>

/* Seconds a single test may run (normal build; sanitizer builds get 4x). */
#define CC_TEST_TIMEOUT_S 120

int cc_test_setup(void **state);
int cc_test_teardown(void **state);

#define CC_TEST(fn) cmocka_unit_test_setup_teardown(fn, cc_test_setup, cc_test_teardown)

/* Run the group, named after the file; returns the failure count for main(). */
#define CC_RUN_TESTS(tests) cmocka_run_group_tests_name(__FILE__, tests, NULL, NULL)

/* An iteration count: n / CONCUR_TEST_DIVISOR (at least 1): n in the normal and
 * ASan builds, n / 10 in the TSan build, which runs ten times slower. */
long cc_test_n(long n);

/*
 * Fault injection through concur's allocation hook (Lua's test allocator), so
 * that every error branch runs. Thread safe.
 *   cc_test_alloc_fail_after(n): the next n allocations succeed, every later
 *     one fails (until the next call of these);
 *   cc_test_alloc_fail_nth(n): the next n succeed, the one after fails, and
 *     all later ones succeed;
 *   cc_test_alloc_failures(): allocations refused so far, in all;
 *   cc_test_alloc_normal(): back to the default allocator.
 */
void cc_test_alloc_fail_after(long n);
void cc_test_alloc_fail_nth(long n);
long cc_test_alloc_failures(void);
void cc_test_alloc_normal(void);

/* cc_test_fork: fork a child that runs fn(arg) and _exits with its result. */
pid_t cc_test_fork(int (*fn)(void *arg), void *arg);
/* cc_test_reap: wait for the child; its exit status, or 128 + its signal. */
int cc_test_reap(pid_t pid);
/* cc_test_reap_within: the same, but a child still running after `limit` ns
 * (a hang) is killed with SIGKILL and reaped, and -1 returned. */
int cc_test_reap_within(pid_t pid, int64_t limit);

/* Counts of this process's open fds, threads, and unreaped children. */
int cc_test_count_fds(void);
int cc_test_count_threads(void);
int cc_test_count_children(void);

#endif
