/*
 * test_procpool_oom.c: the OOM verdict on a dead worker of the process pool
 * (src/procpool_oom.c), in particular its kernel-log fallback: the parser on
 * records of several kernel versions, the scan of a file or pipe, the
 * verdict, and the whole path through a pool whose worker writes a fake
 * record for itself into the file the log hook points at, then dies.
 * (The real OOM kill in a memory cgroup is in test_process_pool.c.)
 *
 * main() calls cc_worker_main_hook first: a spawned worker is this program.
 */
#include "testutil.h"

#include <concur/procpool.h>

#include "procpool_oom.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- fixtures -------------------------------------------------------------- */

static char kmsg_file[64]; /* the fake kernel log of a test */

/* A fresh empty file for the fake log; the hook points at it. */
static void fake_log(void)
{
    snprintf(kmsg_file, sizeof kmsg_file, "/tmp/cc-kmsg-%d-XXXXXX",
             (int)getpid());
    int fd = mkostemp(kmsg_file, O_CLOEXEC);
    assert_true(fd >= 0);
    close(fd);
    cc__pp_oom_kmsg_path = kmsg_file;
}

static void real_log(void)
{
    unlink(kmsg_file);
    cc__pp_oom_kmsg_path = "/dev/kmsg";
}

static void append(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static int64_t now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

/* The task: write the record the kernel would for this worker into the
 * file named by arg (form 'a' the 5.x+ line, 'b' the oom-kill summary,
 * 'n' a record about another pid), then die by SIGKILL. */
static int pp_fake_oom(const void *arg, size_t len, cc_bytes *result)
{
    (void)result;
    char path[128], rec[512];
    if (len < 2 || len - 1 >= sizeof path)
        return 2;
    memcpy(path, (const char *)arg + 1, len - 1);
    path[len - 1] = 0;
    char form = *(const char *)arg;
    int pid = (int)getpid() + (form == 'n');
    if (form == 'b')
        snprintf(rec, sizeof rec, "6,900,%lld,-;oom-kill:constraint="
                 "CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,"
                 "task=x,pid=%d,uid=0\n", (long long)now_us(), pid);
    else
        snprintf(rec, sizeof rec, "3,901,%lld,-;Out of memory: Killed "
                 "process %d (x) total-vm:1kB, anon-rss:1kB\n",
                 (long long)now_us(), pid);
    int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0 || write(fd, rec, strlen(rec)) != (ssize_t)strlen(rec))
        return 3;
    close(fd);
    kill(getpid(), SIGKILL);
    return 4;
}
CC_WORKER_FUNCTION(pp_fake_oom)

/* ---- the parser ------------------------------------------------------------ */

struct record_case {
    const char *rec; /* a record as /dev/kmsg gives it */
    int pid;         /* the worker asked about */
    int want;        /* 1: names pid as OOM-killed */
};

static const struct record_case record_cases[] = {
    /* 5.x and later, global and memcg OOM */
    {"3,5793,9625661896,-;Memory cgroup out of memory: Killed process 3730 "
     "(exe) total-vm:35528kB, anon-rss:32768kB, file-rss:1612kB, "
     "shmem-rss:0kB, UID:0 pgtables:112kB oom_score_adj:0", 3730, 1},
    {"3,5793,9625661896,-;Memory cgroup out of memory: Killed process 3730 "
     "(exe) total-vm:35528kB", 373, 0},
    {"3,5793,9625661896,-;Memory cgroup out of memory: Killed process 3730 "
     "(exe) total-vm:35528kB", 37300, 0},
    {"3,12,5000000,-;Out of memory: Killed process 1234 (python3) "
     "total-vm:9kB, anon-rss:1kB, UID:1000 pgtables:4kB oom_score_adj:0",
     1234, 1},
    {"3,12,5000000,-,caller=T42;Out of memory (oom_kill_allocating_task): "
     "Killed process 1234 (a b)", 1234, 1},
    /* 4.x and older: the choice, then the kill */
    {"3,12,5000000,-;Out of memory: Kill process 1234 (foo) score 867 or "
     "sacrifice child", 1234, 0},
    {"3,13,5000000,-;Killed process 1234 (foo) total-vm:9kB, anon-rss:1kB, "
     "file-rss:0kB", 1234, 1},
    /* 4.19 and later: the summary line */
    {"6,14,5000000,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),"
     "cpuset=/,mems_allowed=0,oom_memcg=/a,task_memcg=/a,task=foo,pid=1234,"
     "uid=0", 1234, 1},
    {"6,14,5000000,-;oom-kill:constraint=CONSTRAINT_NONE,task=foo,pid=1234",
     1234, 1},
    {"6,14,5000000,-;oom-kill:constraint=CONSTRAINT_NONE,task=foo,pid=12345,"
     "uid=0", 1234, 0},
    {"6,15,5000000,-;oom_reaper: reaped process 1234 (foo), now anon-rss:0kB",
     1234, 1},
    /* not an OOM kill, or not a record */
    {"6,16,5000000,-;foo[1234]: segfault at 0 ip 0 sp 0 error 6", 1234, 0},
    {"6,17,5000000,-;pid=1234 Killed process", 1234, 0},
    {"Killed process 1234 (foo)", 1234, 0},
    {"3,13,x,-;Killed process 1234 (foo)", 1234, 0},
    {"", 1234, 0},
};

static void records_of_each_kernel_format(void **state)
{
    (void)state;
    size_t n = sizeof record_cases / sizeof record_cases[0];
    for (size_t i = 0; i < n; i++) {
        const struct record_case *c = &record_cases[i];
        int got = cc__pp_oom_record(c->rec, c->pid);
        if (got != c->want)
            print_message("case %zu: %s (pid %d): %d\n", i, c->rec, c->pid,
                          got);
        assert_int_equal(got, c->want);
    }
}

/* ---- the scan -------------------------------------------------------------- */

/* n filler records (about 100 bytes each), then last (may be NULL). */
static void fill(int fd, int n, const char *last)
{
    char rec[160];
    for (int i = 0; i < n; i++) {
        int len = snprintf(rec, sizeof rec, "6,%d,%d,-;eth0: link is up, "
                           "100 Mbps full duplex, flow control rx/tx, "
                           "pid 99 irrelevant\n", i, 1000 + i);
        assert_int_equal(write(fd, rec, (size_t)len), len);
    }
    if (last)
        assert_int_equal(write(fd, last, strlen(last)), (ssize_t)strlen(last));
}

static int scan_file(int n, const char *last, pid_t pid)
{
    char path[] = "/tmp/cc-kmsg-scan-XXXXXX";
    int fd = mkostemp(path, O_CLOEXEC);
    assert_true(fd >= 0);
    unlink(path);
    fill(fd, n, last);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    int r = cc__pp_oom_scan(fd, pid);
    close(fd);
    return r;
}

/* Lines cut by the reads (records far past the 8 KiB buffer), the last
 * line without its newline, and nothing found. */
static void scan_reads_a_file_through(void **state)
{
    (void)state;
    const char *kill = "3,7,9000,-;Killed process 4321 (w) total-vm:1kB\n";
    assert_int_equal(scan_file(2000, kill, 4321), 1);
    assert_int_equal(scan_file(2000, kill, 4322), 0);
    assert_int_equal(scan_file(0, "6,7,9000,-;oom-kill:task=w,pid=4321", 4321),
                     1);
    assert_int_equal(scan_file(0, NULL, 4321), 0);
}

/* A non-blocking pipe whose writer stays: EAGAIN ends the scan. */
static void scan_stops_at_eagain(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
    fill(p[1], 50, "3,7,9000,-;Killed process 777 (w)\n");
    assert_int_equal(cc__pp_oom_scan(p[0], 777), 1);
    fill(p[1], 50, NULL);
    assert_int_equal(cc__pp_oom_scan(p[0], 777), 0);
    assert_int_equal(cc__pp_oom_scan(p[0], 777), 0); /* empty: EAGAIN */
    close(p[0]);
    close(p[1]);
}

static void scan_of_an_unreadable_fd_fails(void **state)
{
    (void)state;
    int fd = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(cc__pp_oom_scan(fd, 1), -EISDIR);
    close(fd);
}

/* The real log, where it can be read: a pid no process has is not found,
 * and the scan ends (non-blocking) however long the log is. */
static void real_kernel_log_scan_ends(void **state)
{
    (void)state;
    int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        print_message("skipped: /dev/kmsg: %s\n", strerror(errno));
        return;
    }
    int64_t t0 = cc_now();
    assert_int_equal(cc__pp_oom_scan(fd, 0x3ffffff0), 0);
    print_message("whole kernel log scanned in %.1f ms\n",
                  (double)(cc_now() - t0) / 1e6);
    close(fd);
}

/* ---- the verdict ----------------------------------------------------------- */

/* A note for a worker without a cgroup (as where none can be read). */
static void note_without_cgroup(struct cc__pp_oom *o)
{
    cc__pp_oom_note(o, getpid());
    o->base = -1;
}

static void kill_record(char *rec, size_t n, int pid)
{
    snprintf(rec, n, "3,1,%lld,-;Killed process %d (w)\n",
             (long long)now_us(), pid);
}

/* Only the records written after the note count. */
static void verdict_without_counters_uses_the_log(void **state)
{
    (void)state;
    struct cc__pp_oom o = {0};
    char rec[128];
    fake_log();
    kill_record(rec, sizeof rec, 4242);
    append(kmsg_file, rec); /* before the worker's start: not its record */
    note_without_cgroup(&o);
    assert_int_equal(cc__pp_oom_verdict(&o, 4242), CC__PP_OOM_NO);
    append(kmsg_file, rec);
    assert_int_equal(cc__pp_oom_verdict(&o, 4243), CC__PP_OOM_NO);
    note_without_cgroup(&o);
    append(kmsg_file, rec);
    assert_int_equal(cc__pp_oom_verdict(&o, 4242), CC__PP_OOM_YES);
    note_without_cgroup(&o);
    append(kmsg_file, rec);
    assert_non_null(strstr(cc__pp_oom_words(&o, 4242, -SIGKILL),
                           "by the kernel's OOM killer"));
    assert_string_equal(cc__pp_oom_words(&o, 4242, -SIGTERM), "");
    assert_string_equal(cc__pp_oom_words(&o, 4242, 1), "");
    cc__pp_oom_forget(&o);
    cc__pp_oom_forget(&o); /* twice: nothing more */
    real_log();
}

static void verdict_is_unknown_when_nothing_can_be_read(void **state)
{
    (void)state;
    struct cc__pp_oom o = {0};
    cc__pp_oom_kmsg_path = "/nonexistent/kmsg";
    note_without_cgroup(&o);
    assert_false(o.kmsg_open);
    assert_int_equal(cc__pp_oom_verdict(&o, 4242), CC__PP_OOM_UNKNOWN);
    const char *w = cc__pp_oom_words(&o, 4242, -SIGKILL);
    assert_non_null(strstr(w, "unknown"));
    assert_null(strstr(w, "OOM killer")); /* never reads as a yes */
    assert_string_equal(cc__pp_oom_words(&o, 4242, -SIGSEGV), "");
    /* A counter that cannot be read any more is no answer either. */
    snprintf(o.path, sizeof o.path, "/nonexistent");
    o.base = 0;
    assert_int_equal(cc__pp_oom_verdict(&o, 4242), CC__PP_OOM_UNKNOWN);
    cc__pp_oom_forget(&o);
    cc__pp_oom_kmsg_path = "/dev/kmsg";
}

/* A fake cgroup directory: its memory.events says "oom_kill n". */
static void set_counter(const char *dir, int n)
{
    char path[300], text[32];
    snprintf(path, sizeof path, "%s/memory.events", dir);
    snprintf(text, sizeof text, "oom 1\noom_kill %d\n", n);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

/* A fake cgroup directory into dir (n bytes). */
static void fake_cgroup(char *dir, size_t n)
{
    snprintf(dir, n, "/tmp/cc-cg-%d-XXXXXX", (int)getpid());
    assert_non_null(mkdtemp(dir));
}

static void drop_cgroup(const char *dir)
{
    char path[320];
    snprintf(path, sizeof path, "%s/memory.events", dir);
    unlink(path);
    rmdir(dir);
}

/* The counter decides when it rose; when it did not, it is a "no" even
 * where the log cannot be read, and the log may still say yes. */
static void verdict_from_the_cgroup_counter(void **state)
{
    (void)state;
    struct cc__pp_oom o = {0};
    char dir[64], rec[128];
    fake_cgroup(dir, sizeof dir);
    set_counter(dir, 3);
    cc__pp_oom_kmsg_path = "/nonexistent/kmsg";
    cc__pp_oom_note(&o, getpid());
    snprintf(o.path, sizeof o.path, "%s", dir); /* as if it were ours */
    o.base = 3;
    assert_int_equal(cc__pp_oom_verdict(&o, 4242), CC__PP_OOM_NO);
    assert_string_equal(cc__pp_oom_words(&o, 4242, -SIGKILL), "");
    set_counter(dir, 4);
    assert_int_equal(cc__pp_oom_verdict(&o, 4242), CC__PP_OOM_YES);
    set_counter(dir, 3);
    fake_log();
    cc__pp_oom_note(&o, getpid());
    snprintf(o.path, sizeof o.path, "%s", dir);
    o.base = 3;
    kill_record(rec, sizeof rec, 4242);
    append(kmsg_file, rec);
    assert_int_equal(cc__pp_oom_verdict(&o, 4242), CC__PP_OOM_YES);
    cc__pp_oom_forget(&o);
    real_log();
    drop_cgroup(dir);
}

/* The counter covers the worker's whole life and its cgroup's other
 * processes (the pool's other workers among them): a rise that the log
 * gives to another pid only is not this worker's (it was taken for an OOM
 * kill of this one, killed by a plain SIGKILL); one the log says nothing
 * about still counts. */
static bool init_pid_namespace(void)
{
    char ns[64] = {0};
    return readlink("/proc/self/ns/pid", ns, sizeof ns - 1) > 0 &&
           !strcmp(ns, "pid:[4026531836]");
}

static void counter_rise_for_another_pid_is_not_ours(void **state)
{
    (void)state;
    struct cc__pp_oom o = {0};
    char dir[64], rec[128];
    fake_cgroup(dir, sizeof dir);
    fake_log();
    for (int other = 1; other >= 0; other--) {
        set_counter(dir, 3);
        cc__pp_oom_note(&o, getpid());
        snprintf(o.path, sizeof o.path, "%s", dir); /* as if it were ours */
        o.base = 3;
        if (other) { /* a sibling worker, OOM-killed during our life */
            kill_record(rec, sizeof rec, 4243);
            append(kmsg_file, rec);
        }
        set_counter(dir, 4);
        /* (in a pid namespace of its own, the log's pids are not ours) */
        assert_int_equal(cc__pp_oom_verdict(&o, 4242),
                         other && init_pid_namespace() ? CC__PP_OOM_NO
                                                       : CC__PP_OOM_YES);
    }
    cc__pp_oom_forget(&o);
    real_log();
    drop_cgroup(dir);
}

/* ---- the whole path ------------------------------------------------------- */

/* Run pp_fake_oom(form) on a fresh one-worker pool: the failure message. */
static void fake_oom_death(char form, char *msg, size_t n)
{
    cc_executor *ex;
    cc_process_pool_options o = {.max_workers = 1};
    assert_int_equal(cc_process_pool_new(&ex, &o), 0);
    char arg[80];
    int len = snprintf(arg, sizeof arg, "%c%s", form, kmsg_file);
    cc_future *f;
    assert_int_equal(cc_process_pool_submit(ex, "pp_fake_oom", arg,
                                            (size_t)len, NULL, &f), 0);
    assert_int_equal(cc_future_wait(f, CC_FOREVER), 0);
    assert_int_equal(cc_future_error(f), -ECHILD);
    const char *m = cc_future_error_message(f);
    snprintf(msg, n, "%s", m ? m : "");
    print_message("%s\n", msg);
    cc_future_release(f);
    cc_executor_free(ex);
}

static void pool_reports_an_oom_kill_found_in_the_log(void **state)
{
    (void)state;
    char msg[256];
    fake_log();
    fake_oom_death('a', msg, sizeof msg);
    assert_non_null(strstr(msg, "signal 9"));
    assert_non_null(strstr(msg, "by the kernel's OOM killer"));
    fake_oom_death('b', msg, sizeof msg);
    assert_non_null(strstr(msg, "by the kernel's OOM killer"));
    /* A record about another pid is not this worker's. */
    fake_oom_death('n', msg, sizeof msg);
    assert_non_null(strstr(msg, "signal 9"));
    assert_null(strstr(msg, "OOM killer"));
    real_log();
}

int main(int argc, char **argv)
{
    cc_worker_main_hook(argc, argv); /* a spawned worker never returns */
    const struct CMUnitTest tests[] = {
        CC_TEST(records_of_each_kernel_format),
        CC_TEST(scan_reads_a_file_through),
        CC_TEST(scan_stops_at_eagain),
        CC_TEST(scan_of_an_unreadable_fd_fails),
        CC_TEST(real_kernel_log_scan_ends),
        CC_TEST(verdict_without_counters_uses_the_log),
        CC_TEST(verdict_is_unknown_when_nothing_can_be_read),
        CC_TEST(verdict_from_the_cgroup_counter),
        CC_TEST(counter_rise_for_another_pid_is_not_ours),
        CC_TEST(pool_reports_an_oom_kill_found_in_the_log),
    };
    return CC_RUN_TESTS(tests);
}
