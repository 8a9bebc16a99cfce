/*
 * test_cli_run.c: `concur run`, the built CLI ($CONCUR_BIN), driven through
 * /bin/sh scripts in which $C is the binary: inputs, replacement strings, the
 * shell rule and quoting, grouping, -k, -j, exit status, errors, and a few
 * cases compared with GNU parallel when it is installed.
 */
#include "cli_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Run `script`; expect exit 255 and `what` in its stderr. */
static void expect_error(const char *script, const char *what)
{
    cc_completed_process res = sh(script);
    const char *err = str(&res.err);
    if (res.returncode != 255 || !strstr(err, what))
        fail_msg("script: %s\nstatus %d (want 255)\nstderr: %s\nwant: %s", script,
                 res.returncode, err, what);
    cc_completed_process_free(&res);
}

static bool exists(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", scratch, name);
    struct stat st;
    return lstat(path, &st) == 0;
}



/* ---- replacement strings ---------------------------------------------------- */

static void replacement_strings_as_gnu_parallel(void **state)
{
    expect("$C run -k echo {} {.} {/} {//} {/.} ::: a/b.c/d.e.f x.y /r/s.t plain "
           "./q .bashrc a/b/ / a.tar.gz /x",
           0,
           "a/b.c/d.e.f a/b.c/d.e d.e.f a/b.c d.e\n"
           "x.y x x.y . x\n"
           "/r/s.t /r/s s.t /r s\n"
           "plain plain plain . plain\n"
           "./q ./q q . q\n"
           ".bashrc  .bashrc . \n"
           "a/b/ a/b/  a \n"
           "/ /  / \n"
           "a.tar.gz a.tar a.tar.gz . a.tar\n"
           "/x /x x / x\n");
}

static void sequence_number_counts_from_one(void **state)
{
    expect("$C run -k -j3 echo {#}:{} ::: a b c d", 0, "1:a\n2:b\n3:c\n4:d\n");
}

static void slot_number_stays_within_jobs(void **state)
{
    cc_completed_process res = sh("seq 20 | $C run -j3 echo {%}");
    assert_int_equal(res.returncode, 0);
    int lines = 0;
    for (const char *p = str(&res.out); *p; p = strchr(p, '\n') + 1, lines++) {
        int slot = atoi(p);
        assert_true(slot >= 1 && slot <= 3);
    }
    assert_int_equal(lines, 20);
    cc_completed_process_free(&res);
}

static void replacement_inside_a_word(void **state)
{
    expect("$C run -k printf %s- pre{}post a{.}b ::: 'x y.z'", 0,
           "prex y.zpost-ax yb-");
}

static void inputs_appended_without_replacement(void **state)
{
    expect("$C run -k printf %s- ::: 'a b' c", 0, "a b-c-");
}

/* ---- input sources ----------------------------------------------------------- */

static void stdin_lines_are_inputs(void **state)
{
    cc_completed_process res = sh_in("$C run -k echo '[{}]'", "x\n\ny z\nlast");
    assert_int_equal(res.returncode, 0);
    assert_string_equal(str(&res.out), "[x]\n[]\n[y z]\n[last]\n");
    cc_completed_process_free(&res);
}

static void file_source_and_dash(void **state)
{
    expect("printf 'a\\nb\\n' > f; $C run -k echo :::: f", 0, "a\nb\n");
    cc_completed_process res = sh_in("$C run -k echo :::: -", "s\nt\n");
    assert_string_equal(str(&res.out), "s\nt\n");
    cc_completed_process_free(&res);
    expect("printf 'a\\nb\\n' > f; $C run -k -a f echo", 0, "a\nb\n");
}

static void product_last_source_fastest(void **state)
{
    expect("$C run -k echo ::: a b ::: 1 2", 0, "a 1\na 2\nb 1\nb 2\n");
    expect("$C run -k echo {2}-{1} ::: a b ::: 1 2", 0, "1-a\n2-a\n1-b\n2-b\n");
    expect("printf 'x\\ny\\n' > f; $C run -k echo {1}{2}{3} ::: a :::: f ::: 1 2", 0,
           "ax1\nax2\nay1\nay2\n");
    expect("$C run -k printf %s- X{}Y ::: a ::: b", 0, "Xa-bY-");
}

static void empty_source_runs_nothing(void **state)
{
    expect("$C run echo :::", 0, "");
    expect("$C run echo ::: a ::: ", 0, "");
}

/* The next line is read only when a job can start: the producer writes its
 * second line only after the first job ran, which would hang an eager reader. */
static void reads_input_lazily(void **state)
{
    expect("(echo a; while [ ! -e started ]; do sleep 0.02; done; echo b) |"
           " timeout 30 $C run -j1 'touch started; echo {}'",
           0, "a\nb\n");
}

/* 100 MiB on stdout and on stderr at once: nothing blocks, nothing is lost. */
static void big_output_passes_whole(void **state)
{
    expect("$C run 'head -c {} /dev/zero; head -c {} /dev/zero >&2' ::: 104857600"
           " 2>err | wc -c; wc -c <err",
           0, "104857600\n104857600\n");
}

/* ---- order, grouping, concurrency ------------------------------------------- */

static void keep_order_holds_early_finishers(void **state)
{
    expect("$C run -k -j3 'sleep {}; echo {}' ::: 0.6 0.0 0.3", 0, "0.6\n0.0\n0.3\n");
}

/* More held outputs than -k keeps at once: new jobs wait, order stays. */
static void keep_order_with_many_held_outputs(void **state)
{
    expect("$C run -k -j4 'if [ {} = 1 ]; then sleep 1; fi; echo {}' ::: $(seq 400)"
           " > out; seq 400 | cmp - out",
           0, "");
}

static void without_k_completion_order(void **state)
{
    expect("$C run -j2 'sleep {}; echo {}' ::: 1 0", 0, "0\n1\n");
}

/* Each job's lines come out together, though both jobs print at once. */
static void output_of_a_job_is_contiguous(void **state)
{
    cc_completed_process res = sh(
        "$C run -j2 'for i in 1 2 3 4 5 6 7 8; do echo {}$i; echo e{}$i >&2;"
        " sleep 0.02; done' ::: a b");
    assert_int_equal(res.returncode, 0);
    const char *o = str(&res.out), *e = str(&res.err);
    assert_true(strstr(o, "a1\na2\na3\na4\na5\na6\na7\na8\n") != NULL);
    assert_true(strstr(o, "b1\nb2\nb3\nb4\nb5\nb6\nb7\nb8\n") != NULL);
    assert_true(strstr(e, "ea1\nea2\nea3\nea4\nea5\nea6\nea7\nea8\n") != NULL);
    assert_true(strstr(e, "eb1\neb2\neb3\neb4\neb5\neb6\neb7\neb8\n") != NULL);
    cc_completed_process_free(&res);
}

/* Jobs log their start and end; the log never shows more than -j running. */
static void jobs_limit_concurrency(void **state)
{
    cc_completed_process res = sh(
        "$C run -j2 'echo + >> log; sleep 0.2; echo - >> log' ::: 1 2 3 4 5 6"
        " && cat log");
    assert_int_equal(res.returncode, 0);
    int now = 0, most = 0, starts = 0;
    for (const char *p = str(&res.out); *p; p++) {
        now += *p == '+' ? 1 : *p == '-' ? -1 : 0;
        starts += *p == '+';
        most = now > most ? now : most;
    }
    assert_int_equal(starts, 6);
    assert_true(most <= 2);
    assert_true(most > 1); /* loosely: 0.2 s jobs do overlap */
    cc_completed_process_free(&res);
}

/* ---- exit status -------------------------------------------------------------- */

static void exit_status_counts_failed_jobs(void **state)
{
    expect("$C run true ::: 1 2 3", 0, "");
    expect("$C run 'exit {}' ::: 0 1 0 2 3", 3, "");
    expect("seq 150 | $C run -j4 false", 101, "");
    expect("seq 100 | $C run -j4 false", 100, "");
    expect("$C run 'kill -9 $$' ::: 1 2", 2, ""); /* killed counts */
}

static void missing_command_fails_its_jobs(void **state)
{
    cc_completed_process res = sh("$C run no-such-command-xyz ::: a b");
    assert_int_equal(res.returncode, 2);
    assert_non_null(strstr(str(&res.err), "not found"));
    cc_completed_process_free(&res);
    res = sh("$C run {} ::: ./no-such-file-xyz");
    assert_int_equal(res.returncode, 1);
    assert_non_null(strstr(str(&res.err), "no-such-file-xyz"));
    cc_completed_process_free(&res);
}

static void script_without_shebang_runs_with_sh(void **state)
{
    expect("printf 'echo \"script $1\"\\n' > s; chmod +x s; $C run -k ./s ::: a b", 0,
           "script a\nscript b\n");
}

/* SIGTERM reaches the jobs (in their own process groups), then kills us.
 * ($$ in the sleeps: other checkouts may run this test at the same time.) */
static void sigterm_is_passed_to_jobs(void **state)
{
    expect("$C run -j2 'sleep {}; echo' ::: 31.$$ 31.$$ & pid=$!; sleep 0.5;"
           " kill -TERM $pid; wait $pid; echo $?; sleep 0.2;"
           " pgrep -f \"sleep 31[.]$$([^0-9]|\\$)\" || echo none left",
           0, "143\nnone left\n");
}

/* ---- errors of our own ------------------------------------------------------- */

static void errors_exit_255_with_a_message(void **state)
{
    expect_error("$C run --frobnicate echo ::: a", "unknown option '--frobnicate'");
    expect_error("$C run ::: a b", "no command");
    expect_error("$C run", "no command");
    expect_error("$C run echo :::: /nonexistent", "cannot open input file '/nonexistent'");
    expect_error("$C run -j abc echo ::: a", "'abc' is not N, N%, +N, -N or 0");
    expect_error("$C run -j 1x% echo ::: a", "is not N, N%");
    expect_error("$C run -j", "needs a value");
    expect_error("$C frobnicate", "unknown subcommand 'frobnicate'");
    expect_error("$C", "Usage");
}

static void version_and_help(void **state)
{
    expect("$C --version", 0, "concur " CONCUR_VERSION_STRING "\n");
    expect("$C --help | grep -c '^  run '", 0, "1\n");
    expect("$C run --help | grep -c -- '--keep-order'", 0, "1\n");
}

static void jobs_long_forms(void **state)
{
    expect("$C run --jobs 2 -k echo ::: a b", 0, "a\nb\n");
    expect("$C run --jobs=2 --keep-order echo ::: a b", 0, "a\nb\n");
    expect("$C run -j2 -k echo ::: a b", 0, "a\nb\n");
    expect("$C run --will-cite -k -- echo -k ::: a", 0, "-k a\n");
}

/* ---- no injection -------------------------------------------------------------- */

#define NASTY                                                                      \
    "'a;touch p1' '$(touch p2)' '`touch p3`' \"it's\" 'a\"b' 'x&&touch p4' "        \
    "'|touch p5' '>p6' '*' '$HOME' ' lead' 'a\\b'"
#define NASTY_OUT                                                                  \
    "a;touch p1\n$(touch p2)\n`touch p3`\nit's\na\"b\nx&&touch p4\n|touch p5\n>p6\n*\n" \
    "$HOME\n lead\na\\b\n"

static void assert_no_files_made(void)
{
    const char *names[] = {"p1", "p2", "p3", "p4", "p5", "p6", "PWNED"};
    for (size_t i = 0; i < ARRAY_LEN(names); i++)
        if (exists(names[i]))
            fail_msg("input injected a command: %s exists", names[i]);
}

static void values_are_literal_without_shell(void **state)
{
    expect("$C run -k echo ::: " NASTY, 0, NASTY_OUT);
    expect("$C run -k echo {} ::: " NASTY, 0, NASTY_OUT);
    assert_no_files_made();
}

static void values_are_quoted_in_shell_mode(void **state)
{
    expect("$C run -k 'printf \"%s\\n\" {} | cat' ::: " NASTY, 0, NASTY_OUT);
    expect("$C run -k 'printf \"%s\\n\"' ::: " NASTY, 0, NASTY_OUT);
    expect("$C run 'echo {} | cat' ::: '$(touch PWNED)'", 0, "$(touch PWNED)\n");
    assert_no_files_made();
}

static void newline_inside_a_value(void **state)
{
    expect("$C run printf %s- ::: 'a\nb'", 0, "a\nb-");
    expect("$C run 'printf \"%s-\" {}' ::: 'a\nb'", 0, "a\nb-");
}

/* The words themselves are shell syntax when they look like it. */
static void shell_syntax_in_command_runs_a_shell(void **state)
{
    expect("$C run -k 'echo {} > {}.out; cat {}.out' ::: a b", 0, "a\nb\n");
    expect("$C run -k echo {} '&&' echo x{} ::: a", 0, "a\nxa\n");
    expect("$C run -k 'X={}; echo $X$X' ::: ab", 0, "abab\n");
    expect("$C run -k cd ::: / ", 0, "");
}

static void dry_run_prints_commands(void **state)
{
    expect("$C run --dry-run -k echo {} ::: 'a b' c", 0, "echo 'a b'\necho c\n");
    expect("$C run --dry-run 'echo {} | cat' ::: \"it's\"", 0,
           "echo 'it'\"'\"'s' | cat\n");
}

/* ---- GNU parallel, side by side ---------------------------------------------- */

static void same_as_gnu_parallel(void **state)
{
    if (system("command -v parallel >/dev/null 2>&1") != 0)
        skip();
    static const char *const args[] = {
        "-k echo {} {.} {/} {//} {/.} {#} ::: a/b.c x.y.z /r/s. ''",
        "-k echo ::: a b ::: 1 2 3",
        "-k 'echo {} | tr a-z A-Z' ::: 'a b' \"c'd\" '$(x)'",
        "-k printf %s- X{}Y ::: a ::: b",
        "-k echo {2} {1} ::: a b ::: c d",
        "-k 'echo $(({#} * 2))' ::: a b c",
    };
    for (size_t i = 0; i < ARRAY_LEN(args); i++) {
        char script[512];
        snprintf(script, sizeof script,
                 "parallel --will-cite %s > gnu.out 2>&1; $C run %s > ours.out 2>&1;"
                 " cmp gnu.out ours.out || { cat gnu.out ours.out; exit 1; }",
                 args[i], args[i]);
        expect(script, 0, "");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(replacement_strings_as_gnu_parallel),
        TEST(sequence_number_counts_from_one),
        TEST(slot_number_stays_within_jobs),
        TEST(replacement_inside_a_word),
        TEST(inputs_appended_without_replacement),
        TEST(stdin_lines_are_inputs),
        TEST(file_source_and_dash),
        TEST(product_last_source_fastest),
        TEST(empty_source_runs_nothing),
        TEST(reads_input_lazily),
        TEST(big_output_passes_whole),
        TEST(keep_order_holds_early_finishers),
        TEST(keep_order_with_many_held_outputs),
        TEST(without_k_completion_order),
        TEST(output_of_a_job_is_contiguous),
        TEST(jobs_limit_concurrency),
        TEST(exit_status_counts_failed_jobs),
        TEST(missing_command_fails_its_jobs),
        TEST(script_without_shebang_runs_with_sh),
        TEST(sigterm_is_passed_to_jobs),
        TEST(errors_exit_255_with_a_message),
        TEST(version_and_help),
        TEST(jobs_long_forms),
        TEST(values_are_literal_without_shell),
        TEST(values_are_quoted_in_shell_mode),
        TEST(newline_inside_a_value),
        TEST(shell_syntax_in_command_runs_a_shell),
        TEST(dry_run_prints_commands),
        TEST(same_as_gnu_parallel),
    };
    return CC_RUN_TESTS(tests);
}
