/*
 * test_cli_run2.c: `concur run`'s GNU-parallel options ($CONCUR_BIN), mostly
 * compared with GNU parallel itself: each case runs under both, in a scratch
 * directory, and must give the same stdout and exit status (stderr is kept
 * apart and not compared: messages are worded differently). Cases that GNU
 * parallel cannot judge (process groups, -j arithmetic) check results directly.
 * The differential tests skip, saying so, when parallel is not installed.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static char scratch[64];

/* Run `script` under /bin/sh in the scratch directory; $C is the CLI. */
static cc_completed_process sh(const char *script)
{
    size_t n = strlen(script) + 64;
    char *full = malloc(n);
    snprintf(full, n, "C=\"$CONCUR_BIN\"\n%s", script);
    char *argv[] = {"/bin/sh", "-c", full, NULL};
    if (!scratch[0]) {
        strcpy(scratch, "/tmp/concur-test2-XXXXXX");
        assert_non_null(mkdtemp(scratch));
    }
    cc_run_options o = {.spawn.cwd = scratch, .capture_output = true, .input = ""};
    cc_completed_process res;
    assert_int_equal(cc_run(argv, &o, cc_deadline_in(100 * CC_SEC), &res), 0);
    free(full);
    return res;
}

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

static bool have_parallel(void)
{
    if (system("command -v parallel >/dev/null 2>&1") == 0)
        return true;
    print_message("GNU parallel is not installed: differential cases skipped\n");
    return false;
}

static void differ(const dcase *c)
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

static void differ_all(const dcase *cases, size_t n)
{
    if (!have_parallel())
        skip();
    for (size_t i = 0; i < n; i++)
        differ(&cases[i]);
}

/* ---- inputs ------------------------------------------------------------------- */

static void linked_sources_as_gnu_parallel(void **state)
{
    static const dcase cases[] = {
        {0, 0, "-k echo ::: a b c :::+ 1 2", 0},
        {0, 0, "-k echo ::: a b :::+ 1 2 ::: x y", 0},
        {0, 0, "-k echo {2}{1} ::: a b ::: x y :::+ 1 2", 0},
        {"printf 'a\\nb\\n' > f1; printf '1\\n2\\n3\\n' > f2", 0,
         "-k echo :::: f1 ::::+ f2", 0},
        {"printf '1\\n2\\n' > f2", 0, "-k echo ::: a b c ::::+ f2", 0},
    };
    differ_all(cases, ARRAY_LEN(cases));
}

static void delimiters_as_gnu_parallel(void **state)
{
    static const dcase cases[] = {
        {0, "printf 'a\\0b\\n\\0\\0c'", "-0 -k echo '[{}]'", 0},
        {0, "printf 'a\\0b'", "--null -k echo '[{}]'", 0},
        {0, "printf 'a,b,,c,'", "-d , -k echo '[{}]'", 0},
        {0, "printf 'a\\tb\\n'", "-d '\\t' -k echo '[{}]'", 0},
        {"printf 'x:y:' > f", 0, "-d : -k echo :::: f", 0},
    };
    differ_all(cases, ARRAY_LEN(cases));
}

static void no_run_if_empty_as_gnu_parallel(void **state)
{
    static const dcase cases[] = {
        {0, "printf 'a\\n\\n  \\nb\\n'", "-r -k echo '[{}]'", 0},
        {0, "printf 'a\\n\\n  \\nb\\n'", "-k echo '[{}]'", 0},
        {0, "printf '\\n \\n'", "--no-run-if-empty echo x", 0},
        {0, 0, "-r -k echo '[{}]' ::: '' a ' '", 0},
        {0, "true", "echo x", 0},
    };
    differ_all(cases, ARRAY_LEN(cases));
}

static void colsep_and_header_as_gnu_parallel(void **state)
{
    static const dcase cases[] = {
        {0, "printf 'a b\\tc\\n1 2\\n'", "-k --colsep ' ' echo '[{1}][{2}][{3}]'", 0},
        {0, "printf 'a b c\\n'", "--colsep ' ' printf '%s-' {}", 0},
        {0, "printf 'a b c\\n'", "--colsep ' ' printf '%s-'", 0},
        {0, "printf 'a;b,c\\n'", "--colsep '[,;]' -k echo {3} {1} {2.}", 0},
        {0, "printf 'a,b,,\\n'", "--colsep , echo '[{1}][{2}][{3}][{4}]'", 0},
        {0, "printf 'x y\\n1 2.5\\n3 4\\n'", "-k --header : --colsep ' ' echo {x}-{y.}",
         0},
        {0, 0, "-k --header : echo {a} {b} ::: a 1 2 ::: b 3 4", 0},
        {0, 0, "-k --header : echo {} ::: a 1 2", 0},
    };
    differ_all(cases, ARRAY_LEN(cases));
}

/* ---- -j ---------------------------------------------------------------------- */

/* --dry-run's {%} goes round the slots, so the biggest one is -j. */
#define MAX_SLOT(j) "$C run -j " j " --dry-run echo {%} ::: $(seq 300) | cut -d ' ' -f 2 | sort -n | tail -1"

static void jobs_relative_to_cpus(void **state)
{
    expect("[ $(" MAX_SLOT("+2") ") = $(($(nproc) + 2)) ] && echo ok", 0, "ok\n");
    expect("n=$(($(nproc) - 1)); [ $n -lt 1 ] && n=1;"
           " [ $(" MAX_SLOT("-1") ") = $n ] && echo ok", 0, "ok\n");
    expect("[ $(" MAX_SLOT("200%") ") = $(($(nproc) * 2)) ] && echo ok", 0, "ok\n");
    expect(MAX_SLOT("-1000"), 0, "1\n");
    expect(MAX_SLOT("1%"), 0, "1\n");
    expect(MAX_SLOT("0"), 0, "256\n");
    expect("$C run -j0 -k echo ::: a b c", 0, "a\nb\nc\n");
}

/* ---- output ------------------------------------------------------------------- */

static void output_options_as_gnu_parallel(void **state)
{
    static const dcase cases[] = {
        {0, 0, "-u -j1 'echo x; echo y >&2' ::: a b 2>&1", 0},
        {0, 0, "--ungroup -j1 echo ::: a b", 0},
        {0, 0, "-k --tag echo ::: a b ::: 1", 0},
        {0, 0, "-k --tag 'echo x; printf y; echo z >&2' ::: a 2>&1", 0},
        {0, 0, "-k --tagstring '<{}>{#}' 'echo x; printf y' ::: a b", 0},
        {0, 0, "-k --tagstring '{2}/{1.}' echo ::: a.b ::: c", 0},
        {0, "printf 'a b\\n'", "--colsep ' ' --tagstring {2} echo {1}", 0},
    };
    differ_all(cases, ARRAY_LEN(cases));
}

/* The joblog without its times (Starttime, JobRuntime). */
#define LOG "cut -f 1,2,5- log"

/* Lines as they come (0.5 s apart), whole, tagged or not. */
static void line_buffer_as_gnu_parallel(void **state)
{
    static const dcase cases[] = {
        {0, 0, "--line-buffer -j2 'sleep {}; echo a{}; sleep 1; echo b{}' ::: 0 0.5", 0},
        {0, 0, "--lb --tag -j2 'sleep {}; echo a{}; sleep 1; printf b{}' ::: 0 0.5", 0},
        {"rm -f log", 0, "--lb -j1 --joblog log 'echo {}; exit 2' ::: abc", LOG},
        {0, 0, "--lb -k -j2 'sleep {}; echo a{}' ::: 0.5 0", 0},
    };
    differ_all(cases, ARRAY_LEN(cases));
}

/* A partial line waits for its end, while other jobs' lines go by. */
static void line_buffer_keeps_lines_whole(void **state)
{
    expect("$C run --line-buffer -j2 'if [ {} = 1 ]; then printf x; sleep 0.5; echo y;"
           " else for i in 1 2 3; do echo z; sleep 0.1; done; fi' ::: 1 2",
           0, "z\nz\nz\nxy\n");
    expect("$C run --line-buffer head -c {} /dev/zero ::: 3000000 | wc -c", 0,
           "3000000\n");
}

/* ---- --joblog, --resume ---------------------------------------------------------- */


static void joblog_as_gnu_parallel(void **state)
{
    static const dcase cases[] = {
        {"rm -f log", 0, "-j1 --joblog log 'echo {}; exit {}' ::: 0 1 'a b'", LOG},
        {"rm -f log", 0, "-j1 --joblog log 'kill -9 $$' ::: 1", LOG},
        {0, 0, "--dry-run -k 'echo {}' ::: \"it's\" \"'\" \"''\" \"a'b'c\" 'a\"b'", 0},
        {"rm -f log", 0, "-j1 --joblog log echo {} ::: \"it's\" 'a b' plain", LOG},
        {"rm -f log; printf '\\n' > log", 0, "-j1 --joblog +log echo ::: a", LOG},
        {"rm -f log", 0, "-j1 --timeout 0.3 --joblog log 'sleep {}' ::: 5", LOG},
        {"rm -f log; parallel --will-cite -j1 --joblog log 'exit {}' ::: 0 1 0", 0,
         "-j1 --joblog log --resume 'echo {}; exit {}' ::: 0 1 0 2 0", LOG},
        {"rm -f log; parallel --will-cite -j1 --joblog log 'exit {}' ::: 0 1 0", 0,
         "-j1 -k --joblog log --resume-failed 'echo {}; exit {}' ::: 0 1 0 2", LOG},
        {"rm -f log; parallel --will-cite -j1 --joblog log 'echo {}; exit {}' ::: 0 1 2 0 3 >/dev/null",
         0, "-j1 -k --retry-failed --joblog log", LOG},
        {"rm -f log; parallel --will-cite -j1 --joblog log 'exit {}' ::: 0 1", 0,
         "-j1 -k --retry-failed --joblog log echo ::: ignored", LOG},
    };
    differ_all(cases, ARRAY_LEN(cases));
}

static void joblog_times_are_sane(void **state)
{
    expect("before=$(date +%s); $C run --joblog log 'sleep 0.3' ::: 1;"
           " awk -F '\\t' -v b=$before 'NR == 2 { print ($3 >= b && $3 < b + 5),"
           " ($4 >= 0.3 && $4 < 5) }' log",
           0, "1 1\n");
}

/* A run killed midway, then resumed: every job ran exactly once. */
static void resume_after_kill_runs_each_job_once(void **state)
{
    expect("$C run -j2 --joblog log 'echo {} >> ran; sleep 0.1' ::: $(seq 40) &"
           " pid=$!; sleep 0.6; kill -9 $pid; wait $pid; sleep 0.3;"
           " $C run -j2 --joblog log --resume 'echo {} >> ran' ::: $(seq 40);"
           " sort -n ran | uniq | wc -l; [ $(wc -l < ran) -le 42 ] && echo ok",
           0, "40\nok\n");
}

/* ---- --timeout, --termseq, --retries ---------------------------------------------- */

static void timeout_as_gnu_parallel(void **state)
{
    static const dcase cases[] = {
        {0, 0, "-k --timeout 0.5 'sleep {}; echo {}' ::: 0.1 3 0.2", 0},
        {0, 0, "-k -j1 --timeout 300% 'sleep {}; echo {}' ::: 0.1 0.1 0.1 2", 0},
        {0, 0, "--timeout 0.3 'trap \"\" TERM; sleep 2; echo no' ::: 1", 0},
        {0, 0, "--timeout 0.3 --termseq INT,100,KILL,25 'sleep 2' ::: 1", 0},
        {"rm -f cnt", 0,
         "--retries 3 'echo {} >> cnt; n=$(wc -l < cnt); echo out$n; test $n -ge 2' ::: a",
         "cat cnt"},
        {"rm -f cnt", 0, "--retries 2 'echo {} >> cnt; echo out; exit 3' ::: a",
         "cat cnt"},
    };
    differ_all(cases, ARRAY_LEN(cases));
}

/* The whole process group goes, and quickly: TERM, not the last KILL. */
static void timeout_kills_the_process_group(void **state)
{
    expect("start=$(date +%s); $C run --timeout 0.3 'sleep 31.7{} & sleep 31.7{}; echo'"
           " ::: 5; echo $?; sleep 0.2; pgrep -f 'sleep 31[.]75' || echo none left;"
           " [ $(($(date +%s) - start)) -lt 10 ] && echo fast",
           0, "1\nnone left\nfast\n");
    expect("$C run --timeout 0.2 --termseq KILL sleep ::: 31.5; echo $?", 0, "1\n");
}

/* ---- --halt ------------------------------------------------------------------ */

static void halt_as_gnu_parallel(void **state)
{
    static const char *const halts[] = {
        "now,fail=1", "soon,fail=1", "now,success=1", "soon,done=2", "now,fail=50%",
        "soon,fail=2", "now,done=50%", "soon,success=30%", "2", "1", "-1", "0", "34%",
        "never",
    };
    if (!have_parallel())
        skip();
    for (size_t i = 0; i < ARRAY_LEN(halts); i++) {
        char args[256];
        snprintf(args, sizeof args, "-j1 -k --halt %s 'echo {}; exit {}' ::: 0 3 0 4 5 0",
                 halts[i]);
        differ(&(dcase){0, 0, args, 0});
    }
    differ(&(dcase){0, 0, "-j1 --halt now,fail=1 'kill -9 $$' ::: 1", 0});
    differ(&(dcase){0, 0, "-j2 --halt now,fail=1 'sleep {}; exit 2' ::: 0.2 5", 0});
}

static void halt_now_stops_running_jobs(void **state)
{
    expect("$C run -j2 --halt now,fail=1 'if [ {} = 1 ]; then exit 1; fi; sleep 31.5{}'"
           " ::: 2 1 3; echo $?; sleep 0.2; pgrep -f 'sleep 31[.]5[23]' || echo none left",
           0, "1\nnone left\n");
}

/* ---- several inputs per job, quoting, the shell ------------------------------ */

static void multiple_args_as_gnu_parallel(void **state)
{
    static const dcase cases[] = {
        {0, "seq 10", "-j3 -k -X echo", 0},
        {0, "seq 10", "-j3 -k -m echo x{}y", 0},
        {0, "seq 5", "-j1 -k -X echo x{}y {#}", 0},
        {0, "seq 5", "-j1 -k -m printf '%s|' x{}y", 0},
        {0, 0, "-k -N2 echo {1}-{2} '[{}]' ::: a b c", 0},
        {0, 0, "-k -N2 echo ::: a b c", 0},
        {0, 0, "-k -N2 echo {#} ::: a b c d e", 0},
        {0, 0, "-k --max-args 3 'echo {3}; echo {}' ::: a b c d", 0},
        {0, 0, "-j2 -k -m echo ::: a b c ::: 1 2", 0},
        {0, "seq 3", "-k -N2 --colsep , echo {1}-{2}-{3}", 0},
        {0, "seq 2000", "-j1 -k -X echo | wc -l", 0},
    };
    differ_all(cases, ARRAY_LEN(cases));
}

static void quote_as_gnu_parallel(void **state)
{
    static const dcase cases[] = {
        {0, 0, "-q --dry-run echo 'a b' ::: c", 0},
        {0, 0, "-q -k printf '%s|%s\\n' 'a b' ::: c", 0},
        {0, 0, "-k -q sh -c 'echo \"$0\"' {} ::: 'x y' '$HOME'", 0},
    };
    differ_all(cases, ARRAY_LEN(cases));
}

static void shell_and_no_shell(void **state)
{
    expect("$C run --no-shell -k echo 'a|b' '$HOME' ::: 1", 0, "a|b $HOME 1\n");
    expect("$C run --no-shell 'echo x' ::: 1; echo $?", 0, "1\n");
    expect("$C run --shell -k echo ::: '$x' ; $C run --shell -k 'X=1; echo $X' ::: a", 0,
           "$x\n1 a\n");
    expect("$C run --shell --dry-run echo ::: 'a b'", 0, "echo 'a b'\n");
}

static void results_as_gnu_parallel(void **state)
{
    static const dcase cases[] = {
        {"rm -rf res", 0,
         "--results res -k 'printf \"%s\\n\" {1}; echo e{2} >&2' ::: '' 'a\\b' 'a/b'"
         " 'x y' ::: 1 2",
         "find res -type f | sort | while read f; do echo \"$f\"; cat \"$f\"; done"},
    };
    differ_all(cases, ARRAY_LEN(cases));
}

/* Values full of shell syntax stay values through the new options too. */
static void no_injection_through_new_options(void **state)
{
#define BAD "'a;touch p1' '$(touch p2)' '`touch p3`' \"x'y\" 'a b'"
    static const char *const runs[] = {
        "-k -X -j1 'printf \"%s|\" {} | cat' ::: " BAD,
        "-k -N2 'printf \"%s|\" {1} {2} | cat' ::: " BAD,
        "-k --tag 'printf \"%s|\" {} | cat' ::: " BAD,
        "-k --shell printf '%s-' ::: " BAD,
        "-k --colsep , 'printf \"%s|\" {2} | cat' ::: ," BAD,
        "-k --results res 'printf \"%s|\" {} | cat' ::: " BAD,
        "-k --header : 'printf \"%s|\" {h} | cat' ::: h " BAD,
    };
    for (size_t i = 0; i < ARRAY_LEN(runs); i++) {
        char script[512];
        snprintf(script, sizeof script,
                 "$C run %s > /dev/null; echo $?; ls p1 p2 p3 2>/dev/null; true",
                 runs[i]);
        expect(script, 0, "0\n");
    }
    expect("$C run -k --tag 'printf \"%s|\" {} | cat' ::: " BAD, 0,
           "a;touch p1\ta;touch p1|$(touch p2)\t$(touch p2)|`touch p3`\t`touch p3`|"
           "x'y\tx'y|a b\ta b|");
#undef BAD
}

/* ---- errors ------------------------------------------------------------------- */

static void option_errors(void **state)
{
    static const char *const bad[] = {
        "--halt sometime,fail=1", "--halt now,fail=x", "--halt now,fail=0%",
        "--timeout abc", "--termseq TERM,x", "--termseq BOGUS,1", "-d ab",
        "--colsep '('", "--header x", "--resume", "--retries x", "-j x%", "-N 0",
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        char script[128];
        snprintf(script, sizeof script, "$C run %s echo ::: a; echo $?", bad[i]);
        cc_completed_process res = sh(script);
        if (strcmp(str(&res.out), "255\n") != 0 || !strstr(str(&res.err), "concur run:"))
            fail_msg("%s: %s / %s", bad[i], str(&res.out), str(&res.err));
        cc_completed_process_free(&res);
    }
    expect("$C run echo :::+ a; echo $?", 0, "255\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(linked_sources_as_gnu_parallel),
        TEST(delimiters_as_gnu_parallel),
        TEST(no_run_if_empty_as_gnu_parallel),
        TEST(colsep_and_header_as_gnu_parallel),
        TEST(jobs_relative_to_cpus),
        TEST(output_options_as_gnu_parallel),
        TEST(line_buffer_as_gnu_parallel),
        TEST(line_buffer_keeps_lines_whole),
        TEST(joblog_as_gnu_parallel),
        TEST(joblog_times_are_sane),
        TEST(resume_after_kill_runs_each_job_once),
        TEST(timeout_as_gnu_parallel),
        TEST(timeout_kills_the_process_group),
        TEST(halt_as_gnu_parallel),
        TEST(halt_now_stops_running_jobs),
        TEST(multiple_args_as_gnu_parallel),
        TEST(quote_as_gnu_parallel),
        TEST(shell_and_no_shell),
        TEST(results_as_gnu_parallel),
        TEST(no_injection_through_new_options),
        TEST(option_errors),
    };
    return CC_RUN_TESTS(tests);
}
