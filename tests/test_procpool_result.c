/*
 * test_procpool_result.c: the process pool's results, which the worker's
 * function writes in place into shared memory (procpool_worker.c): grown by
 * many small appends past the first mapping, replaced by the function's own
 * buffer, freed and appended again, several in one batch, beside their
 * arguments in the same memfd, packed by a map, one at a time in the
 * first lane,
 * after a worker died holding a half-written one, across worker
 * replacements; every one checked byte for byte.
 *
 * main() calls cc_worker_main_hook first: a spawned worker is this very
 * program run again, and the functions below are found by name.
 */
#include "procpool_test.h"

#include <concur/procpool.h>

#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the argument and the expected bytes ---------------------------------- */

/* What a worker function below is asked for. */
struct ask {
    uint64_t len;  /* result bytes */
    uint32_t step; /* the largest append (each a different size up to it) */
    uint8_t seed;  /* the pattern's seed */
    char how;      /* 'a' appends; 'r' replaces *result with a buffer of its
                      own; 'f' appends, cc_bytes_free(result), appends;
                      'k' appends half of it, then is killed */
};

static unsigned char pattern(uint8_t seed, uint64_t i)
{
    return (unsigned char)(seed + i * 7 + (i >> 12));
}

/* Append the pattern of a to b in pieces of 1 to a->step bytes. */
static int append_pattern(cc_bytes *b, const struct ask *a, uint64_t len)
{
    unsigned char piece[65536];
    uint64_t i = 0;
    for (uint32_t k = 1; i < len; k = k * 31 % 65521 + 1) {
        size_t n = k % (a->step < sizeof piece ? a->step : sizeof piece) + 1;
        if (n > len - i)
            n = (size_t)(len - i);
        for (size_t j = 0; j < n; j++)
            piece[j] = pattern(a->seed, i + j);
        if (cc_bytes_append(b, piece, n) < 0)
            return -1;
        i += n;
    }
    return 0;
}

/* ---- worker functions ----------------------------------------------------- */

/* The pattern the argument (struct ask) asks for, made as it says. */
static int pp_pattern(const void *arg, size_t len, cc_bytes *result)
{
    struct ask a;
    if (len != sizeof a)
        return 2;
    memcpy(&a, arg, sizeof a);
    if (a.how == 'r') {
        cc_bytes own = {0};
        if (append_pattern(&own, &a, a.len) < 0)
            return 3;
        *result = own; /* the pool's buffer is simply left behind */
        return 0;
    }
    if (a.how == 'f') {
        struct ask junk = {.len = 100000, .step = 5000, .seed = 99};
        if (append_pattern(result, &junk, junk.len) < 0)
            return 3;
        cc_bytes_free(result);
    }
    if (a.how == 'k') {
        if (append_pattern(result, &a, a.len / 2) < 0)
            return 3;
        raise(SIGKILL);
    }
    return append_pattern(result, &a, a.len) < 0 ? 3 : 0;
}
CC_WORKER_FUNCTION(pp_pattern)

/* A 16-byte header, then the argument in pieces of 1000 bytes: a result
 * that starts where the argument starts would overwrite it unread. */
static int pp_framed(const void *arg, size_t len, cc_bytes *result)
{
    if (cc_bytes_append(result, "framed argument:", 16) < 0)
        return 3;
    for (size_t i = 0; i < len; i += 1000)
        if (cc_bytes_append(result, (const char *)arg + i,
                            len - i < 1000 ? len - i : 1000) < 0)
            return 3;
    return 0;
}
CC_WORKER_FUNCTION(pp_framed)

/* ---- helpers -------------------------------------------------------------- */

static struct cc_future *submit(cc_executor *ex, const struct ask *a,
                                cc_bytes *out)
{
    cc_future *f;
    assert_int_equal(cc_process_pool_submit(ex, "pp_pattern", a, sizeof *a,
                                            out, &f), 0);
    return f;
}

/* out holds exactly a's pattern (after `before` bytes of its own). */
static void expect_pattern(const cc_bytes *out, size_t before,
                           const struct ask *a)
{
    assert_int_equal(out->len, before + a->len);
    for (uint64_t i = 0; i < a->len; i++)
        if ((unsigned char)out->data[before + i] != pattern(a->seed, i))
            fail_msg("byte %llu of %llu (%c) is wrong",
                     (unsigned long long)i, (unsigned long long)a->len,
                     a->how);
    assert_int_equal(out->data[out->len], 0);
}

/* Run a on ex and check its result, appended after some bytes of ours. */
static void run_ask(cc_executor *ex, const struct ask *a)
{
    cc_bytes out = {0};
    assert_int_equal(cc_bytes_append(&out, "head", 4), 0);
    cc_future *f = submit(ex, a, &out);
    assert_int_equal(cc_future_result(f, CC_FOREVER, NULL), 0);
    expect_pattern(&out, 4, a);
    cc_future_release(f);
    cc_bytes_free(&out);
}

/* ---- tests ---------------------------------------------------------------- */

/* Several MiB grown by many small appends, past the first mapping (1 MiB)
 * and in one go past every earlier size; then small ones, then large again
 * (the kept mapping). */
static void results_grown_in_small_appends(void **state)
{
    (void)state;
    cc_executor *ex = new_pool(1, CC_START_SPAWN, 0);
    static const struct ask asks[] = {
        {6u << 20, 3000, 1, 'a'}, {10, 3, 2, 'a'},
        {(24u << 20) + 5, 65536, 3, 'a'}, {60 * 1024, 999, 4, 'a'},
        {0, 1, 5, 'a'}, {5u << 20, 100, 6, 'a'}, {(1u << 20) - 1, 4096, 7, 'a'},
    };
    for (size_t i = 0; i < sizeof asks / sizeof *asks; i++)
        run_ask(ex, &asks[i]);
    cc_executor_free(ex);
}

/* The sizes of this process's data memfds of process pools, in size[]
 * (at most max); returns how many there are. */
static size_t data_memfd_sizes(off_t *size, size_t max)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char path[300], link[256];
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t k = readlink(path, link, sizeof link - 1);
        struct stat st;
        if (k <= 0 || (link[k] = 0, !strstr(link, "memfd:concur-pool-data")))
            continue;
        assert_int_equal(stat(path, &st), 0);
        if (n < max)
            size[n] = st.st_size;
        n++;
    }
    closedir(d);
    return n;
}

/* Tasks one at a time all take the first lane, whose memory is then warm:
 * the second lane's memfd never grows (it did when batches alternated). */
static void lone_batches_reuse_the_first_lane(void **state)
{
    (void)state;
    cc_executor *ex = new_pool(1, CC_START_SPAWN, 0);
    for (uint8_t i = 0; i < 4; i++)
        run_ask(ex, &(struct ask){8u << 20, 65536, i, 'a'});
    off_t size[2];
    assert_int_equal(data_memfd_sizes(size, 2), 2);
    off_t big = size[0] > size[1] ? size[0] : size[1];
    off_t small = size[0] > size[1] ? size[1] : size[0];
    assert_true(big >= (off_t)8 << 20);
    assert_true(small < (off_t)1 << 20);
    cc_executor_free(ex);
}

/* A function that replaces *result with its own buffer, and one that frees
 * *result and appends again: their bytes arrive, small or large. */
static void results_replaced_or_freed(void **state)
{
    (void)state;
    cc_executor *ex = new_pool(1, CC_START_SPAWN, 0);
    static const struct ask asks[] = {
        {3u << 20, 5000, 11, 'r'}, {100, 7, 12, 'r'},
        {3u << 20, 5000, 13, 'f'}, {100, 7, 14, 'f'},
        {2u << 20, 4096, 15, 'a'}, {0, 1, 16, 'f'},
    };
    for (size_t i = 0; i < sizeof asks / sizeof *asks; i++)
        run_ask(ex, &asks[i]);
    cc_executor_free(ex);
}

/* Many results of mixed sizes queued at once (so that they go in batches,
 * several large ones in one lane's memfd): none overwrites another. */
static void batched_results_do_not_overlap(void **state)
{
    (void)state;
    cc_executor *ex = new_pool(1, CC_START_SPAWN, 0);
    enum { N = 24 };
    static const uint64_t sizes[] = {8, 70000, 1u << 20, 300, 4096,
                                     (2u << 20) + 3};
    struct ask a[N];
    cc_bytes out[N] = {{0}};
    cc_future *f[N];
    for (int i = 0; i < N; i++) {
        a[i] = (struct ask){sizes[i % 6], 1 + (uint32_t)i * 97, (uint8_t)i,
                            i % 5 == 4 ? 'r' : 'a'};
        f[i] = submit(ex, &a[i], &out[i]);
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(cc_future_result(f[i], CC_FOREVER, NULL), 0);
        expect_pattern(&out[i], 0, &a[i]);
        cc_future_release(f[i]);
        cc_bytes_free(&out[i]);
    }
    cc_executor_free(ex);
}

/* A worker killed while its result grows in shared memory fails that task
 * alone; the replacement's results (in the same memfds) are whole. The
 * same with a new worker for every task (max_tasks_per_child 1). */
static void results_after_deaths_and_replacements(void **state)
{
    (void)state;
    cc_executor *ex = new_pool(1, CC_START_SPAWN, 0);
    struct ask big = {4u << 20, 4096, 21, 'a'}, die = {8u << 20, 4096, 22, 'k'};
    run_ask(ex, &big);
    cc_bytes out = {0};
    cc_future *f = submit(ex, &die, &out);
    assert_int_equal(cc_future_wait(f, CC_FOREVER), 0);
    assert_int_equal(cc_future_error(f), -ECHILD);
    assert_non_null(strstr(cc_future_error_message(f), "signal 9"));
    cc_future_release(f);
    assert_int_equal(out.len, 0);
    cc_bytes_free(&out);
    big.seed = 23;
    run_ask(ex, &big);
    cc_executor_free(ex);
    ex = new_pool(1, CC_START_SPAWN, 1);
    for (int i = 0; i < 3; i++) {
        struct ask a = {(3u << 20) - (uint64_t)i * 5000, 777, (uint8_t)(30 + i),
                        'a'};
        run_ask(ex, &a);
    }
    cc_executor_free(ex);
}

/* Arguments in the lane's data memfd (28 KiB to 1 MiB, or large while
 * another holds the pool's arena), in the arena, inline: the result
 * written in place never overwrites the argument it reads. */
static void results_beside_their_arguments(void **state)
{
    (void)state;
    cc_executor *ex = new_pool(1, CC_START_SPAWN, 0);
    enum { N = 6 };
    static const size_t sizes[N] = {100000, 900000, 3u << 20, 3u << 20,
                                    5000, (2u << 20) + 1};
    cc_bytes out[N] = {{0}};
    cc_future *f[N];
    unsigned char *arg[N];
    for (int i = 0; i < N; i++) {
        arg[i] = malloc(sizes[i]);
        assert_non_null(arg[i]);
        for (size_t j = 0; j < sizes[i]; j++)
            arg[i][j] = pattern((uint8_t)(50 + i), j);
        assert_int_equal(cc_process_pool_submit(ex, "pp_framed", arg[i],
                                                sizes[i], &out[i], &f[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(cc_future_result(f[i], CC_FOREVER, NULL), 0);
        assert_int_equal(out[i].len, 16 + sizes[i]);
        assert_memory_equal(out[i].data, "framed argument:", 16);
        assert_memory_equal(out[i].data + 16, arg[i], sizes[i]);
        cc_future_release(f[i]);
        cc_bytes_free(&out[i]);
        free(arg[i]);
    }
    cc_executor_free(ex);
}

/* The map's chunks pack their results in place too. */
struct gen {
    struct ask a[12]; /* the inputs */
    int next;         /* the next one to give */
};

static int gen_next(void *state, const void **arg, size_t *len)
{
    struct gen *g = state;
    if (g->next == 12)
        return 0;
    *arg = &g->a[g->next++];
    *len = sizeof(struct ask);
    return 1;
}

static void map_chunks_of_large_results(void **state)
{
    (void)state;
    cc_executor *ex = new_pool(2, CC_START_SPAWN, 0);
    struct gen g = {.next = 0};
    for (int i = 0; i < 12; i++)
        g.a[i] = (struct ask){(uint64_t)(i % 3) * 400000 + 17, 3000,
                              (uint8_t)(40 + i), i % 4 == 3 ? 'r' : 'a'};
    cc_map_options mo = {.chunksize = 4, .max_chunks = 2};
    cc_process_map *m;
    assert_int_equal(cc_process_pool_map(&m, ex, "pp_pattern", gen_next, &g,
                                          &mo), 0);
    for (int i = 0; i < 12; i++) {
        cc_bytes out = {0};
        assert_int_equal(cc_process_map_next(m, CC_FOREVER, &out), 0);
        expect_pattern(&out, 0, &g.a[i]);
        cc_bytes_free(&out);
    }
    cc_bytes out = {0};
    assert_int_equal(cc_process_map_next(m, CC_FOREVER, &out), -ENOENT);
    cc_process_map_free(m);
    cc_executor_free(ex);
}

int main(int argc, char **argv)
{
    cc_worker_main_hook(argc, argv); /* a spawned worker never returns */
    const struct CMUnitTest tests[] = {
        CC_TEST(results_grown_in_small_appends),
        CC_TEST(results_replaced_or_freed),
        CC_TEST(batched_results_do_not_overlap),
        CC_TEST(results_after_deaths_and_replacements),
        CC_TEST(results_beside_their_arguments),
        CC_TEST(map_chunks_of_large_results),
        CC_TEST(lone_batches_reuse_the_first_lane),
    };
    return CC_RUN_TESTS(tests);
}
