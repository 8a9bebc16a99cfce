/*
 * cli_test.h: what the differential tests of `concur run` share (included by
 * every test_cli_*.c): a scratch directory, running /bin/sh
 * scripts in it with $C as the CLI ($CONCUR_BIN), and running one case under
 * GNU parallel and under `concur run` to compare their stdout and exit status
 * (stderr is kept apart and not compared: messages are worded differently).
 * The differential tests skip, saying so, when parallel is not installed.
 */
#ifndef CONCUR_TESTS_CLI_TEST_H
#define CONCUR_TESTS_CLI_TEST_H

#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static char scratch[64];

/* Run `script` under /bin/sh in the scratch directory, with stdin `input`
 * (NULL: empty); $C is the CLI. The result is the caller's to free. */
static cc_completed_process sh_in(const char *script, const char *input)
{
    size_t n = strlen(script) + 64;
    char *full = malloc(n);
    snprintf(full, n, "C=\"$CONCUR_BIN\"\n%s", script);
    char *argv[] = {"/bin/sh", "-c", full, NULL};
    if (!scratch[0]) {
        strcpy(scratch, "/tmp/concur-test-XXXXXX");
        assert_non_null(mkdtemp(scratch));
    }
    cc_run_options o = {.spawn.cwd = scratch, .capture_output = true,
                        .input = input ? input : "",
                        .input_len = input ? strlen(input) : 0};
    cc_completed_process res;
    assert_int_equal(cc_run(argv, &o, cc_deadline_in(100 * CC_SEC), &res), 0);
    free(full);
    return res;
}

static cc_completed_process sh(const char *script) { return sh_in(script, NULL); }

static const char *str(const cc_bytes *b) { return b->len ? b->data : ""; }

/* Run `script`; expect this exit status and stdout. */
static void expect(const char *script, int status, const char *out)
{
    cc_completed_process res = sh(script);
    if (res.returncode != status || strcmp(str(&res.out), out) != 0)
        fail_msg("script: %s\nstatus %d (want %d)\nstdout:\n%s\nwant:\n%s\nstderr:\n%s",
                 script, res.returncode, status, str(&res.out), out, str(&res.err));
    cc_completed_process_free(&res);
}

static int clean_scratch(void **state)
{
    if (scratch[0]) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", scratch);
        assert_int_equal(system(cmd), 0);
        scratch[0] = '\0';
    }
    return cc_test_teardown(state);
}

#define TEST(fn) cmocka_unit_test_setup_teardown(fn, cc_test_setup, clean_scratch)

/* One case for both: `pre` runs first (setup), `in` is piped into the
 * runner (a command, or ""), `args` follow `parallel` / `concur run`, `post`
 * runs after each (its output is compared too). */
typedef struct dcase {
    const char *pre, *in, *args, *post;
} dcase;

static inline bool have_parallel(void)
{
    if (system("command -v parallel >/dev/null 2>&1") == 0)
        return true;
    print_message("GNU parallel is not installed: differential cases skipped\n");
    return false;
}

static inline void differ(const dcase *c)
{
    char script[2048];
    snprintf(script, sizeof script,
             "for who in gnu ours; do %s\n"
             " if [ $who = gnu ]; then R='parallel --will-cite'; else R=\"$C run\"; fi\n"
             " { %s%s $R %s; echo \"exit $?\"; %s; } > $who.out 2> $who.err\n"
             "done; cmp -s gnu.out ours.out || { echo GNU:; cat gnu.out; echo OURS:;"
             " cat ours.out; echo OUR STDERR:; cat ours.err; }",
             c->pre ? c->pre : ":", c->in ? c->in : "", c->in ? " |" : "", c->args,
             c->post ? c->post : ":");
    expect(script, 0, "");
}

static inline void differ_all(const dcase *cases, size_t n)
{
    if (!have_parallel())
        skip();
    for (size_t i = 0; i < n; i++)
        differ(&cases[i]);
}

/* The joblog without its times (Starttime, JobRuntime). */
#define LOG "cut -f 1,2,5- log"

#endif
