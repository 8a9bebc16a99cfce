/*
 * test_loop_fd2.c: more of the event loop's fd I/O (include/concur/loop.h,
 * src/loop_fd.c, src/loop_io.c), on whichever poller the loop picks
 * (CONCUR_NO_IO_URING=1: epoll): fd numbers beyond the fd table.
 */
#include "testutil.h"

#include "loop_helpers.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- an fd number far beyond any open one ------------------------------ */

struct huge {
    int wait;   /* cc_wait_fd(INT_MAX) in a task */
    int wait2;  /* cc_wait_fd(1 << 30) */
};

static int huge_task(void *arg, void **result)
{
    struct huge *h = arg;
    h->wait = cc_wait_fd(INT_MAX, POLLIN, cc_deadline_in(5 * CC_SEC));
    h->wait2 = cc_wait_fd(1 << 30, POLLOUT, cc_deadline_in(5 * CC_SEC));
    return 0;
}

/* A number no file can have: -EBADF, as poll(2) says outside a task; not
 * a fd table grown (its size overflowing an int) to hold it. */
static void test_wait_fd_huge_number(void **state)
{
    (void)state;
    struct huge h = {0};
    assert_int_equal(cc_loop_run(huge_task, &h, NULL), 0);
    assert_int_equal(h.wait, -EBADF);
    assert_int_equal(h.wait2, -EBADF);
    assert_int_equal(cc_wait_fd(INT_MAX, POLLIN, cc_deadline_in(CC_SEC)),
                     -EBADF);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CC_TEST(test_wait_fd_huge_number),
    };
    return CC_RUN_TESTS(tests);
}
