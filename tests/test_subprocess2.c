/*
 * test_subprocess2.c: more child-process tests (include/concur/subprocess.h),
 * beside tests/test_subprocess.c (which is long): spawns under a lowered fd
 * limit.
 */
#include "subprocess_test.h"

#include <fcntl.h>
#include <sys/resource.h>

/* Fds 3 .. 29 taken, one spawn (concur's slots then land above them), the
 * fds freed again and RLIMIT_NOFILE lowered below the slots: a spawn with
 * three pipes still has all the fds it needs, so it must succeed (as
 * posix_spawn does). In a forked child; 0 if all well. */
static int spawn_under_low_limit(void *arg)
{
    enum { TOP = 30, LIMIT = 20 };
    (void)arg;
    close_range(3, ~0U, 0);
    for (int fd = 3; fd < TOP; fd++)
        if (open("/dev/null", O_RDONLY | O_CLOEXEC) != fd)
            return 30;
    cc_process *p;
    if (cc_process_spawn(&p, ARGV("true"), NULL) != 0)
        return 31;
    cc_process_free(p);
    close_range(3, TOP - 1, 0);
    struct rlimit rl = {LIMIT, LIMIT};
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 32;
    cc_spawn_options o = {.stdin_io = pipe_io, .stdout_io = pipe_io,
                          .stderr_io = pipe_io};
    int r = cc_process_spawn(&p, ARGV("true"), &o);
    if (r != 0)
        return 40 + (-r & 15); /* -EBADF: 49 */
    int rc = -1;
    r = cc_process_wait(p, cc_deadline_in(30 * CC_SEC), &rc);
    cc_process_free(p);
    return r == 0 && rc == 0 ? 0 : 33;
}

static void spawn_works_with_the_fd_limit_below_concurs_fds(void **state)
{
    assert_int_equal(cc_test_reap(cc_test_fork(spawn_under_low_limit, NULL)),
                     0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CC_TEST(spawn_works_with_the_fd_limit_below_concurs_fds),
    };
    return CC_RUN_TESTS(tests);
}
