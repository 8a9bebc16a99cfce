/*
 * test_shm.c: shared memory segments (include/concur/shm.h): anonymous ones
 * seen across fork and through an inherited fd, named ones opened by name in
 * another process, their cleanup when the last user closes or dies, typed
 * arrays, and the errors.
 */
#include "testutil.h"

#include <concur/shm.h>

#include <errno.h>
#include <stdlib.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------- */

/* A name unique to this process and call. */
static const char *test_name(void)
{
    static char name[64];
    static int n;
    snprintf(name, sizeof name, "concur-test-%d-%d", (int)getpid(), n++);
    return name;
}

static bool name_exists(const char *name)
{
    char path[128];
    struct stat st;
    snprintf(path, sizeof path, "/dev/shm/%s", name);
    return stat(path, &st) == 0;
}

/* ---- anonymous ----------------------------------------------------------- */

static void anonymous_is_zeroed_with_its_shape(void **state)
{
    (void)state;
    cc_shm *s;
    assert_int_equal(cc_shm_create(&s, 8, 1000), 0);
    assert_int_equal(cc_shm_size(s), 8000);
    assert_int_equal(cc_shm_elem_size(s), 8);
    assert_int_equal(cc_shm_count(s), 1000);
    assert_int_equal((uintptr_t)cc_shm_data(s) % 64, 0);
    const char *p = cc_shm_data(s);
    for (size_t i = 0; i < cc_shm_size(s); i++)
        assert_int_equal(p[i], 0);
    assert_true(fcntl(cc_shm_fd(s), F_GETFD) & FD_CLOEXEC);
    cc_shm_close(s);
}

static int child_squares(void *arg)
{
    int64_t *a = CC_SHM_ARRAY((cc_shm *)arg, int64_t);
    for (int i = 0; i < 1000; i++)
        a[i] = (int64_t)i * i;
    return 0;
}

static void anonymous_is_shared_with_a_forked_child(void **state)
{
    (void)state;
    cc_shm *s;
    assert_int_equal(cc_shm_create(&s, sizeof(int64_t), 1000), 0);
    assert_int_equal(cc_test_reap(cc_test_fork(child_squares, s)), 0);
    int64_t *a = CC_SHM_ARRAY(s, int64_t);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(a[i], (int64_t)i * i);
    cc_shm_close(s);
}

/* In the child: attach through the fd (as a spawned worker would) and
 * write through that second mapping. */
static int child_attach_and_write(void *arg)
{
    cc_shm *s;
    if (cc_shm_attach(&s, *(int *)arg) != 0 || cc_shm_count(s) != 4096)
        return 1;
    memset(cc_shm_data(s), 'x', cc_shm_size(s));
    cc_shm_close(s);
    return 0;
}

static void attach_by_fd_maps_the_same_memory(void **state)
{
    (void)state;
    cc_shm *s;
    assert_int_equal(cc_shm_create(&s, 1, 4096), 0);
    int fd = cc_shm_fd(s);
    assert_int_equal(cc_test_reap(cc_test_fork(child_attach_and_write, &fd)), 0);
    assert_int_equal(((char *)cc_shm_data(s))[4095], 'x');
    cc_shm *t;
    assert_int_equal(cc_shm_attach(&t, fd), 0); /* a second mapping here */
    assert_int_equal(((char *)cc_shm_data(t))[0], 'x');
    cc_shm_close(t);
    cc_shm_close(s);
}

static void attach_rejects_what_is_not_a_segment(void **state)
{
    (void)state;
    cc_shm *s;
    int fd = memfd_create("not-a-segment", MFD_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(cc_shm_attach(&s, fd), -EINVAL); /* empty */
    assert_int_equal(cc_shm_attach(NULL, fd), -EINVAL);
    assert_int_equal(ftruncate(fd, 4096), 0);
    assert_int_equal(cc_shm_attach(&s, fd), -EINVAL); /* no header */
    close(fd);
    assert_int_equal(cc_shm_attach(&s, 1000), -EBADF);
    assert_int_equal(cc_shm_create(&s, 0, 10), -EINVAL);
    assert_int_equal(cc_shm_create(&s, SIZE_MAX / 2, 4), -EINVAL);
}

/* ---- named --------------------------------------------------------------- */

static int child_open_and_add(void *arg)
{
    cc_shm *s;
    if (cc_shm_open(&s, arg, 0, 0, 0) != 0)
        return 1;
    CC_SHM_ARRAY(s, int)[0] += 1;
    cc_shm_close(s);
    return 0;
}

static void named_is_opened_by_name_elsewhere(void **state)
{
    (void)state;
    const char *name = test_name();
    cc_shm *s;
    assert_int_equal(cc_shm_open(&s, name, sizeof(int), 16,
                                 CC_SHM_CREATE | CC_SHM_EXCL), 0);
    CC_SHM_ARRAY(s, int)[0] = 41;
    assert_int_equal(cc_test_reap(cc_test_fork(child_open_and_add, (void *)name)), 0);
    assert_int_equal(CC_SHM_ARRAY(s, int)[0], 42);
    assert_true(name_exists(name)); /* we still use it */
    cc_shm_close(s);
    assert_false(name_exists(name)); /* the last user closed it */
}

static void named_errors(void **state)
{
    (void)state;
    const char *name = test_name();
    cc_shm *s, *t;
    assert_int_equal(cc_shm_open(&s, name, 0, 0, 0), -ENOENT);
    assert_int_equal(cc_shm_open(&s, name, 4, 4, CC_SHM_CREATE), 0);
    assert_int_equal(cc_shm_open(&t, name, 4, 4, CC_SHM_CREATE | CC_SHM_EXCL),
                     -EEXIST);
    assert_int_equal(cc_shm_open(&t, name, 4, 5, 0), -EINVAL); /* shape */
    assert_int_equal(cc_shm_open(&t, name, 4, 5, CC_SHM_CREATE), -EINVAL);
    assert_int_equal(cc_shm_open(&t, name, 4, 4, CC_SHM_CREATE), 0); /* opens */
    assert_true(cc_shm_fd(t) != cc_shm_fd(s)); /* its own open file */
    cc_shm_close(t);
    assert_true(name_exists(name));
    cc_shm_close(s);
    assert_false(name_exists(name));
    assert_int_equal(cc_shm_open(&s, "a/b", 1, 1, CC_SHM_CREATE), -EINVAL);
    assert_int_equal(cc_shm_open(&s, "", 1, 1, CC_SHM_CREATE), -EINVAL);
    assert_int_equal(cc_shm_open(&s, "..", 1, 1, CC_SHM_CREATE), -EINVAL);
    assert_int_equal(cc_shm_open(&s, NULL, 1, 1, CC_SHM_CREATE), -EINVAL);
    assert_int_equal(cc_shm_open(&s, name, 1, 1, CC_SHM_EXCL), -EINVAL);
    assert_int_equal(cc_shm_open(&s, name, 0, 1, CC_SHM_CREATE), -EINVAL);
    char longname[CC_SHM_NAME_MAX + 2];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    assert_int_equal(cc_shm_open(&s, longname, 1, 1, CC_SHM_CREATE),
                     -ENAMETOOLONG);
}

static void unlink_removes_the_name_not_the_memory(void **state)
{
    (void)state;
    const char *name = test_name();
    cc_shm *s;
    assert_int_equal(cc_shm_open(&s, name, 1, 64, CC_SHM_CREATE), 0);
    assert_int_equal(cc_shm_unlink(name), 0);
    assert_false(name_exists(name));
    assert_int_equal(cc_shm_unlink(name), -ENOENT);
    ((char *)cc_shm_data(s))[63] = 1; /* still mapped */
    cc_shm_close(s);
}

/* A user that opens the segment and then dies without closing. */
static int child_open_and_die(void *arg)
{
    cc_shm *s;
    if (cc_shm_open(&s, arg, 0, 0, 0) != 0)
        return 1;
    raise(SIGKILL);
    return 2;
}

/* Two pipes and a name, for a child that waits for its parent's word. */
typedef struct handshake {
    int up[2], down[2]; /* child to parent, parent to child */
    char name[64];      /* the segment */
} handshake;

static int child_open_wait_close(void *arg)
{
    handshake *h = arg;
    cc_shm *s;
    char c;
    if (cc_shm_open(&s, h->name, 0, 0, 0) != 0)
        return 1;
    if (write(h->up[1], "o", 1) != 1 || read(h->down[0], &c, 1) != 1)
        return 2; /* attached; now wait for the parent to have closed */
    CC_SHM_ARRAY(s, char)[0] = c;
    cc_shm_close(s);
    return 0;
}

static void a_dead_user_does_not_keep_the_name(void **state)
{
    (void)state;
    const char *name = test_name();
    cc_shm *s;
    assert_int_equal(cc_shm_open(&s, name, 1, 64, CC_SHM_CREATE), 0);
    assert_int_equal(cc_test_reap(cc_test_fork(child_open_and_die, (void *)name)),
                     128 + SIGKILL);
    cc_shm_close(s);
    assert_false(name_exists(name));
}

static void the_last_closer_unlinks_whoever_it_is(void **state)
{
    (void)state;
    handshake h;
    snprintf(h.name, sizeof h.name, "%s", test_name());
    assert_int_equal(pipe2(h.up, O_CLOEXEC), 0);
    assert_int_equal(pipe2(h.down, O_CLOEXEC), 0);
    cc_shm *s;
    assert_int_equal(cc_shm_open(&s, h.name, 1, 64, CC_SHM_CREATE), 0);
    pid_t pid = cc_test_fork(child_open_wait_close, &h);
    char c;
    assert_int_equal(read(h.up[0], &c, 1), 1);
    cc_shm_close(s); /* the child still has it open: the name stays */
    assert_true(name_exists(h.name));
    assert_int_equal(write(h.down[1], "c", 1), 1);
    assert_int_equal(cc_test_reap(pid), 0);
    assert_false(name_exists(h.name));
    for (int i = 0; i < 2; i++) {
        close(h.up[i]);
        close(h.down[i]);
    }
}

/* ---- no /dev/shm --------------------------------------------------------- */

/* In a mount namespace of its own where /dev is an empty tmpfs (no
 * /dev/shm, as in some containers): 0 when creating a named segment
 * fails with -ENOENT, 77 when the namespace cannot be made. The alarm
 * turns a hang into a death by SIGALRM. */
static int child_open_without_dev_shm(void *name)
{
    if (unshare(CLONE_NEWNS) < 0 &&
        unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
        return 77;
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
        mount("none", "/dev", "tmpfs", 0, NULL) < 0)
        return 77;
    alarm(5);
    cc_shm *s;
    int r = cc_shm_open(&s, name, 1, 64, CC_SHM_CREATE);
    return r == -ENOENT ? 0 : 3;
}

static void missing_dev_shm_is_an_error(void **state)
{
    (void)state;
    int st = cc_test_reap(cc_test_fork(child_open_without_dev_shm,
                                       (void *)test_name()));
    if (st == 77)
        skip(); /* no mount namespace here */
    assert_int_equal(st, 0);
}

/* ---- allocation failures ------------------------------------------------- */

static void allocation_failures_leave_nothing_behind(void **state)
{
    (void)state;
    const char *name = test_name();
    cc_shm *s = NULL, *t = NULL;
    cc_test_alloc_fail_after(0);
    assert_int_equal(cc_shm_create(&s, 1, 4096), -ENOMEM);
    assert_int_equal(cc_shm_open(&s, name, 1, 64, CC_SHM_CREATE), -ENOMEM);
    assert_false(name_exists(name)); /* never named: made unnamed first */
    cc_test_alloc_fail_after(1);
    assert_int_equal(cc_shm_open(&s, name, 1, 64, CC_SHM_CREATE), 0);
    assert_int_equal(cc_shm_open(&t, name, 0, 0, 0), -ENOMEM);
    cc_shm_close(s);
    assert_false(name_exists(name));
    cc_test_alloc_normal();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CC_TEST(anonymous_is_zeroed_with_its_shape),
        CC_TEST(anonymous_is_shared_with_a_forked_child),
        CC_TEST(attach_by_fd_maps_the_same_memory),
        CC_TEST(attach_rejects_what_is_not_a_segment),
        CC_TEST(named_is_opened_by_name_elsewhere),
        CC_TEST(named_errors),
        CC_TEST(unlink_removes_the_name_not_the_memory),
        CC_TEST(a_dead_user_does_not_keep_the_name),
        CC_TEST(the_last_closer_unlinks_whoever_it_is),
        CC_TEST(missing_dev_shm_is_an_error),
        CC_TEST(allocation_failures_leave_nothing_behind),
    };
    return CC_RUN_TESTS(tests);
}
