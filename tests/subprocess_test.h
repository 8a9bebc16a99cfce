/*
 * subprocess_test.h: what tests/test_subprocess.c and tests/test_communicate.c
 * share: an argv literal, a piped stdio, and a check that a pid is gone.
 */
#ifndef CONCUR_TESTS_SUBPROCESS_TEST_H
#define CONCUR_TESTS_SUBPROCESS_TEST_H

#include "testutil.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define MIB ((size_t)1024 * 1024)

#define ARGV(...) ((char *const[]){__VA_ARGS__, NULL})

static const cc_stdio pipe_io = {.mode = CC_STDIO_PIPE};

/* A pid is gone: no /proc entry, or a zombie waiting for init (or a recycled
 * pid that is no longer `sleep`). Polls for up to five seconds. */
static inline bool pid_gone(pid_t pid)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    for (int i = 0; i < 500; i++) {
        FILE *f = fopen(path, "re");
        if (!f)
            return true;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        char *rp = strrchr(buf, ')');
        if (!strstr(buf, "(sleep)") || (rp && rp[2] == 'Z'))
            return true;
        usleep(10000);
    }
    return false;
}

#endif
