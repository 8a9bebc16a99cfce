/*
 * testutil.c: per-test timeout and resource checks (testutil.h).
 */
#include "testutil.h"

#include <dirent.h>
#include <stdatomic.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* What the running test started with. */
static int start_fds, start_threads;

static int count_dir(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

int cc_test_count_fds(void) { return count_dir("/proc/self/fd") - 1; /* the DIR's own */ }

int cc_test_count_threads(void) { return count_dir("/proc/self/task"); }

int cc_test_count_children(void)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    /* WNOWAIT: look without reaping. ECHILD: no child at all. */
    if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
        return 0;
    return 1; /* a zombie (si_pid != 0) or a live child (si_pid == 0) */
}

pid_t cc_test_fork(int (*fn)(void *arg), void *arg)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(fn(arg));
    return pid;
}

int cc_test_reap(pid_t pid)
{
    int st;
    while (waitpid(pid, &st, 0) < 0)
        assert_int_equal(errno, EINTR);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int cc_test_reap_within(pid_t pid, int64_t limit)
{
    cc_deadline end = cc_deadline_in(limit);
    int st;
    pid_t r;
    while ((r = waitpid(pid, &st, WNOHANG)) == 0 && cc_now() < end)
        cc_sleep(10 * CC_MSEC);
    if (r == 0) {
        kill(pid, SIGKILL);
        cc_test_reap(pid);
        return -1;
    }
    assert_int_equal(r, pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

long cc_test_n(long n)
{
    const char *d = getenv("CONCUR_TEST_DIVISOR");
    long div = d ? atol(d) : 1;
    if (div < 1)
        div = 1;
    return n / div > 0 ? n / div : 1;
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "\ntest timed out (a hang is a failure)\n";
    (void)!write(2, msg, sizeof msg - 1);
    abort();
}

static void *nothing(void *arg) { return arg; }

/* Sanitizer runtimes start helper threads of their own at the first
 * pthread_create, and concur keeps the fds of its spawn slots from the
 * first spawn on (src/linux/spawn_clone.c): make both happen before the
 * first baseline is taken. */
static void start_runtime_state(void)
{
    static bool done;
    pthread_t t;
    if (done || pthread_create(&t, NULL, nothing, NULL) != 0)
        return;
    pthread_join(t, NULL);
    cc_process *p;
    char *argv[] = {"true", NULL};
    if (cc_process_spawn(&p, argv, NULL) == 0) {
        cc_process_wait(p, CC_FOREVER, NULL);
        cc_process_free(p);
    }
    usleep(10000);
    done = true;
}

int cc_test_setup(void **state)
{
    (void)state;
    start_runtime_state();
    start_fds = cc_test_count_fds();
    start_threads = cc_test_count_threads();
    signal(SIGALRM, on_alarm);
    const char *d = getenv("CONCUR_TEST_DIVISOR");
    alarm(CC_TEST_TIMEOUT_S * (d && atol(d) > 1 ? 4 : 1));
    return 0;
}

/* Threads that were joined may linger in /proc for a moment; so may children
 * being reaped by a pool: poll for up to two seconds. */
static bool settled(void)
{
    return cc_test_count_fds() == start_fds && cc_test_count_threads() <= start_threads &&
           cc_test_count_children() == 0;
}

int cc_test_teardown(void **state)
{
    (void)state;
    alarm(0);
    for (int i = 0; i < 200 && !settled(); i++)
        usleep(10000);
    int fds = cc_test_count_fds(), threads = cc_test_count_threads();
    int children = cc_test_count_children();
    if (fds != start_fds || threads > start_threads || children)
        fail_msg("leak: fds %d -> %d, threads %d -> %d, children left: %d", start_fds, fds,
                 start_threads, threads, children);
    return 0;
}

/* ---- fault injection ------------------------------------------------------ */

static atomic_long allocs_left;  /* allocations before the failing one(s) */
static atomic_bool fail_once;    /* only one fails (fail_nth) */
static atomic_long alloc_failed; /* allocations refused so far */

static void *failing_alloc(void *ud, void *ptr, size_t old_size, size_t size)
{
    (void)ud, (void)old_size;
    if (size == 0) {
        free(ptr);
        return NULL;
    }
    long left = atomic_fetch_sub(&allocs_left, 1);
    if (left == 0 || (left < 0 && !atomic_load(&fail_once))) {
        atomic_fetch_add(&alloc_failed, 1);
        return NULL;
    }
    return realloc(ptr, size);
}

static void fail_from(long n, bool once)
{
    atomic_store(&fail_once, once);
    atomic_store(&allocs_left, n);
    cc_set_allocator(failing_alloc, NULL);
}

void cc_test_alloc_fail_after(long n) { fail_from(n, false); }

void cc_test_alloc_fail_nth(long n) { fail_from(n, true); }

long cc_test_alloc_failures(void) { return atomic_load(&alloc_failed); }

void cc_test_alloc_normal(void) { cc_set_allocator(NULL, NULL); }
