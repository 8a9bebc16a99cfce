/*
 * procpool_oom.c: did the kernel's OOM killer kill this worker?
 *
 * DESIGN. The kernel counts OOM kills per memory cgroup: "oom_kill N" in
 * memory.oom_control (cgroup v1) or memory.events (v2, where it also counts
 * the cgroups below). When a worker starts, its memory cgroup (from
 * /proc/PID/cgroup) is noted with the sum of the counters of that cgroup
 * and every cgroup below it (a worker may move itself into a child cgroup
 * with a tighter limit). When it dies by SIGKILL the sum is taken again: a
 * rise means the OOM killer, unless the log (below), read, names only other
 * pids' kills since then (and we are in the initial pid namespace, whose
 * pids the log gives). The dead worker's own cgroup cannot be read (a
 * zombie shows the root cgroup), and the counters hold no pids: where the
 * log cannot be read, a process of the same cgroups OOM-killed during the
 * worker's life (a sibling worker) is taken for it.
 * The kernel log, read after every SIGKILL death (the fallback, when no
 * counter can be read or it did not rise: the worker left the subtree):
 * at the start /dev/kmsg is opened
 * (non-blocking) and put after its last record (SEEK_END); the fd stays
 * with the slot. After a SIGKILL death the records since then (few, at
 * most KMSG_MAX) are searched for the kernel's kill record naming the pid
 * ("Killed process PID (comm)", "oom-kill:...,pid=PID,...", "oom_reaper:
 * reaped process PID"); the pid was the worker's all that time. Records
 * overwritten meanwhile (a ring that wrapped) are lost. Where neither can be
 * read (no cgroup; /dev/kmsg refused without CAP_SYSLOG under
 * kernel.dmesg_restrict, or absent), the verdict is "unknown", and the
 * message says so.
 */
#include "procpool_oom.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#define KMSG_MAX 100000 /* records read at most, per death */
#define KMSG_REC 8192   /* a record's longest text (the kernel's
                           CONSOLE_EXT_LOG_MAX) */

const char *cc__pp_oom_kmsg_path = "/dev/kmsg";

/* The memory cgroup directory of pid into buf; false if unknown. */
static bool cgroup_dir(pid_t pid, char *buf, size_t n)
{
    char file[64], line[512];
    snprintf(file, sizeof file, "/proc/%d/cgroup", (int)pid);
    FILE *f = fopen(file, "re");
    if (!f)
        return false;
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char *p = strstr(line, ":memory:");
        if (p) { /* v1 */
            snprintf(buf, n, "/sys/fs/cgroup/memory%.200s", p + 8);
            found = true;
        } else if (!strncmp(line, "0::", 3)) { /* v2 (kept unless v1 follows) */
            snprintf(buf, n, "/sys/fs/cgroup%.200s", line + 3);
            if (access("/sys/fs/cgroup/cgroup.controllers", F_OK) != 0)
                snprintf(buf, n, "/sys/fs/cgroup/unified%.200s", line + 3);
        }
    }
    fclose(f);
    return found || buf[0];
}

/* The oom_kill count of the cgroup directory, or -1. */
static long oom_count(const char *dir)
{
    static const char *const files[] = {"memory.oom_control", "memory.events"};
    char file[320], line[128];
    for (size_t i = 0; i < 2; i++) {
        snprintf(file, sizeof file, "%s/%s", dir, files[i]);
        FILE *f = fopen(file, "re");
        if (!f)
            continue;
        long v = -1;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "oom_kill %ld", &v) == 1)
                break;
        fclose(f);
        if (v >= 0)
            return v;
    }
    return -1;
}

/* The counters of dir and the cgroups below it (depth <= 4), or -1. */
static long oom_total(const char *dir, int depth)
{
    long total = oom_count(dir);
    DIR *d = depth < 4 ? opendir(dir) : NULL;
    struct dirent *e;
    while (d && total >= 0 && (e = readdir(d))) {
        if (e->d_type != DT_DIR || e->d_name[0] == '.')
            continue;
        char sub[512];
        if (snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name) >= (int)sizeof sub)
            continue;
        long c = oom_total(sub, depth + 1);
        total += c > 0 ? c : 0;
    }
    if (d)
        closedir(d);
    return total;
}

/* ---- the kernel log ------------------------------------------------------ */

/* The log, after its last record; -errno if it cannot be read. */
static int kmsg_open_at_end(void)
{
    int fd = open(cc__pp_oom_kmsg_path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return -errno; /* EPERM, EACCES without CAP_SYSLOG; ENOENT */
    if (lseek(fd, 0, SEEK_END) < 0 && errno != ESPIPE) { /* a fifo: as is */
        int e = -errno;
        close(fd);
        return e;
    }
    return fd;
}

/* The pid after prefix in text, followed by one of ends or the end, or -1. */
static long pid_after(const char *text, const char *prefix, const char *ends)
{
    const char *p = strstr(text, prefix);
    if (!p)
        return -1;
    char *end;
    long v = strtol(p + strlen(prefix), &end, 10);
    bool ok = end != p + strlen(prefix) && (!*end || strchr(ends, *end));
    return ok ? v : -1;
}

/* The pid that an OOM-kill message names, or -1. Formats: "Out of memory:
 * Killed process P (c) ...", "Memory cgroup out of memory: Killed process P
 * (c)", older kernels' separate "Killed process P (c) total-vm..." (the
 * "Kill process P ... or sacrifice child" before it only chose); "oom-kill:
 * constraint=...,task=c,pid=P,uid=U" (4.19+); "oom_reaper: reaped process
 * P (c), ...". */
static long killed_pid(const char *text)
{
    long pid = pid_after(text, "Killed process ", " ");
    if (pid < 0 && !strncmp(text, "oom-kill:", 9))
        pid = pid_after(text, ",pid=", ", ");
    if (pid < 0)
        pid = pid_after(text, "oom_reaper: reaped process ", " ");
    return pid;
}

/* The pid that the OOM-kill record rec (as /dev/kmsg gives it) names, or
 * -1. */
static long record_pid(const char *rec)
{
    int text = 0;
    sscanf(rec, "%*d,%*[0-9],%*[0-9],%*[^;];%n", &text);
    return text > 0 ? killed_pid(rec + text) : -1;
}

int cc__pp_oom_record(const char *rec, pid_t pid)
{
    return record_pid(rec) == pid;
}

/* Whether rec names pid (1); else notes in *other one naming another. */
static int match(const char *rec, pid_t pid, bool *other)
{
    long k = record_pid(rec);
    *other |= k >= 0 && k != pid;
    return k == pid;
}

/* Each whole line of buf[0, *have) goes to match; the rest moves to the
 * front. 1 when one matched. */
static int scan_lines(char *buf, size_t *have, pid_t pid, bool *other)
{
    char *line = buf, *end = buf + *have, *nl;
    while ((nl = memchr(line, '\n', (size_t)(end - line)))) {
        *nl = 0;
        if (match(line, pid, other))
            return 1;
        line = nl + 1;
    }
    *have = (size_t)(end - line);
    memmove(buf, line, *have);
    if (*have == KMSG_REC) /* a line longer than any record: dropped */
        *have = 0;
    return 0;
}

/* /dev/kmsg gives one record per read (EPIPE: records were overwritten
 * meanwhile, go on); a file several lines, or part of one. *other: a kill
 * record of another pid was read. */
static int scan(int fd, pid_t pid, bool *other)
{
    char buf[KMSG_REC + 1];
    size_t have = 0;
    for (long i = 0; i < KMSG_MAX; i++) {
        ssize_t n = read(fd, buf + have, KMSG_REC - have);
        if (n < 0 && (errno == EINTR || errno == EPIPE))
            continue;
        if (n < 0 && i == 0 && errno != EAGAIN)
            return -errno;
        if (n <= 0)
            break; /* EAGAIN: the end of the log; 0: of a file */
        have += (size_t)n;
        if (scan_lines(buf, &have, pid, other))
            return 1;
    }
    buf[have] = 0; /* a file's last line without its newline */
    return have ? match(buf, pid, other) : 0;
}

int cc__pp_oom_scan(int fd, pid_t pid)
{
    bool other = false;
    return scan(fd, pid, &other);
}

/* ---- the verdict --------------------------------------------------------- */

void cc__pp_oom_forget(struct cc__pp_oom *o)
{
    if (o->kmsg_open)
        close(o->kmsg_fd);
    o->kmsg_open = false;
}

void cc__pp_oom_note(struct cc__pp_oom *o, pid_t pid)
{
    cc__pp_oom_forget(o);
    o->path[0] = 0;
    o->base = cgroup_dir(pid, o->path, sizeof o->path) ? oom_total(o->path, 0)
                                                        : -1;
    o->kmsg_fd = kmsg_open_at_end();
    o->kmsg_open = o->kmsg_fd >= 0;
}

/* Whether our pids are the kernel log's: we are in the initial pid
 * namespace (its inode is the kernel's PROC_PID_INIT_INO). */
static bool log_pids_are_ours(void)
{
    char ns[64];
    ssize_t n = readlink("/proc/self/ns/pid", ns, sizeof ns - 1);
    ns[n > 0 ? n : 0] = 0;
    return !strcmp(ns, "pid:[4026531836]");
}

/* A rise of the counter counts unless the log, read, gives every kill
 * since the note to other pids (a sibling worker, OOM-killed while this
 * one lived: the counter holds no pids), where its pids are ours. */
int cc__pp_oom_verdict(struct cc__pp_oom *o, pid_t pid)
{
    long now = o->base >= 0 ? oom_total(o->path, 0) : -1;
    bool rose = now > o->base && o->base >= 0, other = false;
    int r = o->kmsg_open ? scan(o->kmsg_fd, pid, &other) : -1;
    if (r > 0 || (rose && !(r == 0 && other && log_pids_are_ours())))
        return CC__PP_OOM_YES;
    return r == 0 || now >= 0 ? CC__PP_OOM_NO : CC__PP_OOM_UNKNOWN;
}

const char *cc__pp_oom_words(struct cc__pp_oom *o, pid_t pid, int code)
{
    if (code != -SIGKILL)
        return "";
    switch (cc__pp_oom_verdict(o, pid)) {
    case CC__PP_OOM_YES:
        return "; by the kernel's OOM killer";
    case CC__PP_OOM_UNKNOWN:
        return "; the OOM verdict is unknown (neither a cgroup counter nor "
               "the kernel log could be read)";
    default:
        return "";
    }
}
