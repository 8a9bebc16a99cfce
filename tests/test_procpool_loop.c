/*
 * test_procpool_loop.c: the process pool (include/concur/procpool.h) used
 * from tasks of an event loop, in particular a lazy map freed by a task
 * that was cancelled: cc_process_map_free cancels the chunks not started
 * and waits out the running ones under a cancellation shield (the feeder
 * writes their results into the map's memory), so nothing leaks, nothing is
 * used after it is freed (ASan), nothing hangs, and the pool goes on.
 *
 * main() calls cc_worker_main_hook first: a spawned worker is this program.
 */
#include "testutil.h"

#include <concur/procpool.h>

#include "loop_helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define INPUTS 200 /* inputs of each map */

/* An input: "MS:PATH": sleep MS ms, append one byte to PATH (a count of
 * the inputs that ran), and return the input as the result. */
static int pp_nap_and_count(const void *arg, size_t len, cc_bytes *result)
{
    char buf[128];
    if (len >= sizeof buf)
        return 2;
    memcpy(buf, arg, len);
    buf[len] = 0;
    char *path = strchr(buf, ':');
    if (!path)
        return 2;
    long ms = strtol(buf, NULL, 10);
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0)
        ;
    int fd = open(path + 1, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0 || write(fd, "x", 1) != 1)
        return 3;
    close(fd);
    return cc_bytes_append(result, arg, len) == 0 ? 0 : 4;
}
CC_WORKER_FUNCTION(pp_nap_and_count)

/* The generator: INPUTS copies of "MS:path". */
struct inputs {
    char arg[96];  /* the input */
    int given;     /* inputs handed out */
};

static int next_input(void *state, const void **arg, size_t *len)
{
    struct inputs *in = state;
    if (in->given == INPUTS)
        return 0;
    in->given++;
    *arg = in->arg;
    *len = strlen(in->arg);
    return 1;
}

/* ---- a map freed by a cancelled task --------------------------------------- */

struct abandon_run {
    cc_executor *ex;    /* the pool */
    struct inputs in;   /* the map's generator */
    int nap_ms;         /* each input's work */
    size_t chunksize;   /* inputs per chunk (8 chunks in flight) */
    bool self_cancel;   /* the task cancels itself after creating the map,
                           instead of being cancelled in next */
    int first;          /* the first cc_process_map_next */
    int later;          /* the one the cancellation ended (or 0) */
    long taken;         /* results taken */
    bool freed;         /* cc_process_map_free returned */
};

/* Take results until the cancellation ends the wait; free the map. */
static int map_task(void *arg, void **result)
{
    (void)result;
    struct abandon_run *a = arg;
    cc_map_options o = {.chunksize = a->chunksize, .max_chunks = 8};
    cc_process_map *m;
    if (cc_process_pool_map(&m, a->ex, "pp_nap_and_count", next_input,
                            &a->in, &o))
        abort();
    cc_bytes out = {0};
    if (a->self_cancel) {
        cc_task_cancel(cc_task_current());
    } else {
        a->first = cc_process_map_next(m, cc_deadline_in(30 * CC_SEC), &out);
        a->taken += a->first == 0;
        while ((a->later = cc_process_map_next(m, cc_deadline_in(30 * CC_SEC),
                                               &out)) == 0)
            a->taken++;
    }
    cc_bytes_free(&out);
    cc_process_map_free(m); /* cancelled: still waits the chunks out */
    a->freed = true;
    return 0;
}

static int abandon_main(void *arg, void **result)
{
    (void)result;
    struct abandon_run *a = arg;
    cc_future *t;
    if (cc_spawn(map_task, a, &t))
        abort();
    if (!a->self_cancel) {
        int64_t end = cc_now() + 30 * CC_SEC;
        while (a->taken == 0 && cc_now() < end) /* the workers are up */
            cc_sleep(CC_MSEC);
        cc_sleep(a->nap_ms * CC_MSEC); /* it waits in next, chunks run */
        cc_task_cancel(t);
    }
    if (cc_future_wait(t, cc_deadline_in(60 * CC_SEC)))
        abort();
    cc_future_release(t);
    return 0;
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* Run the scenario on a fresh pool; the count of the inputs that ran. */
static long run_abandon(struct abandon_run *a, size_t workers,
                        bool kill_on_cancel)
{
    char path[] = "/tmp/cc-pp-loop-XXXXXX";
    int fd = mkostemp(path, O_CLOEXEC);
    assert_true(fd >= 0);
    close(fd);
    snprintf(a->in.arg, sizeof a->in.arg, "%d:%s", a->nap_ms, path);
    cc_process_pool_options po = {.max_workers = workers,
                                  .kill_on_cancel = kill_on_cancel};
    assert_int_equal(cc_process_pool_new(&a->ex, &po), 0);
    assert_int_equal(cc_loop_run(abandon_main, a, NULL), 0);
    assert_true(a->freed);
    /* The pool goes on. */
    cc_bytes out = {0};
    cc_future *f;
    char one[96];
    snprintf(one, sizeof one, "0:%s", path);
    assert_int_equal(cc_process_pool_submit(a->ex, "pp_nap_and_count", one,
                                            strlen(one), &out, &f), 0);
    assert_int_equal(cc_future_result(f, cc_deadline_in(30 * CC_SEC), NULL), 0);
    assert_int_equal(out.len, strlen(one));
    cc_future_release(f);
    cc_bytes_free(&out);
    cc_executor_free(a->ex);
    long ran = file_size(path) - 1; /* less the check's own input */
    unlink(path);
    print_message("%ld results taken, %ld inputs ran, %d generated\n",
                  a->taken, ran, a->in.given);
    assert_true(ran >= a->taken);
    assert_true(a->in.given < INPUTS); /* lazy: far from every input */
    return ran;
}

/* Cancelled while it waits for a result, with chunks running on 2
 * workers: the wait ends, the free waits the running chunks out. */
static void check_cancel_in_next(bool kill_on_cancel)
{
    struct abandon_run a = {.nap_ms = 20, .chunksize = 2, .first = 1,
                            .later = 1};
    run_abandon(&a, 2, kill_on_cancel);
    assert_int_equal(a.first, 0);
    assert_int_equal(a.later, -ECANCELED); /* not a timeout: it was not */
}

/* Cancelled before it frees a fresh map: 8 chunks of one input in flight
 * on one slow worker. Only what the worker was handed before the free
 * runs (its first batch: at most 2 of 8 queued); the free cancels every
 * queued chunk before it waits for any, or each wait would let the next
 * start (all 8 would run). */
static void check_cancel_before_free(bool kill_on_cancel)
{
    struct abandon_run a = {.nap_ms = 200, .chunksize = 1,
                            .self_cancel = true};
    long ran = run_abandon(&a, 1, kill_on_cancel);
    assert_true(ran <= 3);
}

static void map_freed_by_a_task_cancelled_in_next(void **state)
{
    (void)state;
    check_cancel_in_next(false);
}

static void map_freed_by_a_task_already_cancelled(void **state)
{
    (void)state;
    check_cancel_before_free(false);
}

/* kill_on_cancel: the running chunks' workers are killed, and replaced. */
static void map_freed_by_a_cancelled_task_with_kill_on_cancel(void **state)
{
    (void)state;
    check_cancel_in_next(true);
    check_cancel_before_free(true);
}

int main(int argc, char **argv)
{
    cc_worker_main_hook(argc, argv); /* a spawned worker never returns */
    const struct CMUnitTest tests[] = {
        CC_TEST(map_freed_by_a_task_cancelled_in_next),
        CC_TEST(map_freed_by_a_task_already_cancelled),
        CC_TEST(map_freed_by_a_cancelled_task_with_kill_on_cancel),
    };
    return CC_RUN_TESTS(tests);
}
