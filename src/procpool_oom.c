/*
 * procpool_oom.c: did the kernel's OOM killer kill this worker?
 *
 * DESIGN. The kernel counts OOM kills per memory cgroup: "oom_kill N" in
 * memory.oom_control (cgroup v1) or memory.events (v2, where it also counts
 * the cgroups below). When a worker starts, its memory cgroup (from
 * /proc/PID/cgroup) is noted with the sum of the counters of that cgroup
 * and every cgroup below it (a worker may move itself into a child cgroup
 * with a tighter limit). When it dies by SIGKILL the sum is taken again: a
 * rise means the OOM killer. The cgroup of the dead worker itself cannot be
 * read (a zombie shows the root cgroup), and the counters hold no pids: a
 * process of the same cgroups OOM-killed at the same moment could be taken
 * for it; a worker that moved outside its cgroup's subtree is not seen. The
 * kernel log would tell, but is not readable without privileges: it is not
 * consulted.
 */
#include "internal.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

struct cc__pp_oom {
    char path[256]; /* the memory cgroup directory, "" if unknown */
    long base;      /* its oom_kill count at the start, or -1 */
};

void cc__pp_oom_note(struct cc__pp_oom *o, pid_t pid);
bool cc__pp_oom_killed(const struct cc__pp_oom *o, pid_t pid);

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

void cc__pp_oom_note(struct cc__pp_oom *o, pid_t pid)
{
    o->path[0] = 0;
    o->base = cgroup_dir(pid, o->path, sizeof o->path) ? oom_total(o->path, 0)
                                                        : -1;
}

bool cc__pp_oom_killed(const struct cc__pp_oom *o, pid_t pid)
{
    (void)pid;
    if (o->base < 0)
        return false;
    return oom_total(o->path, 0) > o->base;
}
