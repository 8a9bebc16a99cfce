/*
 * procpool_oom.h: the parts of procpool_oom.c that its tests reach (the
 * kernel-log fallback). Not installed; nothing else calls them.
 */
#ifndef CONCUR_PROCPOOL_OOM_H
#define CONCUR_PROCPOOL_OOM_H

#include "procpool_impl.h"

#include <stdint.h>
#include <sys/types.h>

/* What is known of a worker's death by SIGKILL. */
enum {
    CC__PP_OOM_NO = 0,      /* not the OOM killer (as far as seen) */
    CC__PP_OOM_YES = 1,     /* the OOM killer */
    CC__PP_OOM_UNKNOWN = 2, /* neither a cgroup counter nor the log read */
};

/* The kernel log the fallback reads: "/dev/kmsg". A test hook: tests point
 * it at a file of fake records (read from its end at the note, as the log),
 * before any pool starts (the feeder threads read it unsynchronised). */
extern const char *cc__pp_oom_kmsg_path;

/* A record of the kernel log ("prio,seq,usec,flags;text", as /dev/kmsg
 * gives it) says the OOM killer killed pid: 1, else 0. */
int cc__pp_oom_record(const char *rec, pid_t pid);

/* Read the records of fd (non-blocking: EAGAIN or the end stops it; at
 * most a bounded number) for one as cc__pp_oom_record: 1 found, 0 not,
 * or -errno when a read fails before any record came. */
int cc__pp_oom_scan(int fd, pid_t pid);

/* The verdict on worker pid, noted in o, dead by SIGKILL: CC__PP_OOM_*.
 * Reads the log since the note, or since the last verdict. */
int cc__pp_oom_verdict(struct cc__pp_oom *o, pid_t pid);

#endif
