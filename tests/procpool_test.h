/*
 * procpool_test.h: what the process pool's test programs share: a worker
 * function that marks its process and sleeps, a look at a process's name,
 * and a pool made for a test. Each program that includes it registers the
 * worker function in itself (the spawned workers are the program).
 */
#ifndef CONCUR_PROCPOOL_TEST_H
#define CONCUR_PROCPOOL_TEST_H

#include "testutil.h"

#include <concur/procpool.h>

#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

/* Name the process "cc-in-task" (the test sees it), then sleep. */
static int pp_sleep_forever(const void *arg, size_t len, cc_bytes *result)
{
    (void)arg, (void)len, (void)result;
    prctl(PR_SET_NAME, "cc-in-task");
    for (;;)
        pause();
    return 0;
}
CC_WORKER_FUNCTION(pp_sleep_forever)

/* Whether process pid is named `want` (/proc/PID/comm). */
static inline bool comm_is(pid_t pid, const char *want)
{
    char path[64], buf[32] = "";
    snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    if (!fgets(buf, sizeof buf, f))
        buf[0] = 0;
    fclose(f);
    buf[strcspn(buf, "\n")] = 0;
    return !strcmp(buf, want);
}

/* A pool of n workers started with m; max_tasks per child (0: no limit). */
static inline cc_executor *new_pool(size_t n, cc_start_method m,
                                    size_t max_tasks)
{
    cc_executor *ex;
    cc_process_pool_options o = {.max_workers = n, .start_method = m,
                                 .max_tasks_per_child = max_tasks};
    assert_int_equal(cc_process_pool_new(&ex, &o), 0);
    return ex;
}

#endif
