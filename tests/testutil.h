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

#include <cmocka.h>

#include <concur.h>

/* Seconds a single test may run (normal build; sanitizer builds get 4x). */
#define CC_TEST_TIMEOUT_S 120

int cc_test_setup(void **state);
int cc_test_teardown(void **state);

#define CC_TEST(fn) cmocka_unit_test_setup_teardown(fn, cc_test_setup, cc_test_teardown)

/* Run the group, named after the file; returns the failure count for main(). */
#define CC_RUN_TESTS(tests) cmocka_run_group_tests_name(__FILE__, tests, NULL, NULL)

/* An iteration count: n in a normal build, n / CONCUR_TEST_DIVISOR (at least 1) in
 * sanitizer builds, which run ten times slower. */
long cc_test_n(long n);

/* Counts of this process's open fds, threads, and unreaped children. */
int cc_test_count_fds(void);
int cc_test_count_threads(void);
int cc_test_count_children(void);

#endif
