/*
 * test_cli_run3.c: `concur run`'s --joblog, --resume, --resume-failed,
 * --retry-failed, --timeout, --termseq, --retries, --halt, signals and
 * option errors ($CONCUR_BIN), compared with GNU parallel where it can judge
 * (cli_test.h); process groups, kills and resumes are checked directly.
 */
#include "cli_test.h"

/* ---- --joblog, --resume ---------------------------------------------------------- */

static void joblog_as_gnu_parallel(void **state)
{
    static const dcase cases[] = {
        {"rm -f log", 0, "-j1 --joblog log 'echo {}; exit {}' ::: 0 1 'a b'", LOG},
        {"rm -f log", 0, "-j1 --joblog log 'kill -9 $$' ::: 1", LOG},
        {"rm -f log", 0, "-j1 --joblog log {} ::: no-such-command-xyz", LOG},
        {0, 0, "--dry-run -k 'echo {}' ::: \"it's\" \"'\" \"''\" \"a'b'c\" 'a\"b'", 0},
        {"rm -f log", 0, "-j1 --joblog log echo {} ::: \"it's\" 'a b' plain", LOG},
        {"rm -f log; printf '\\n' > log", 0, "-j1 --joblog +log echo ::: a", LOG},
        {"rm -f log", 0, "-j1 --timeout 0.3 --joblog log 'sleep {}' ::: 5", LOG},
        {"rm -f log; parallel --will-cite -j1 --joblog log 'exit {}' ::: 0 1 0", 0,
         "-j1 --joblog log --resume 'echo {}; exit {}' ::: 0 1 0 2 0", LOG},
        {"rm -f log; parallel --will-cite -j1 --joblog log 'exit {}' ::: 0 1 0", 0,
         "-j1 -k --joblog log --resume-failed 'echo {}; exit {}' ::: 0 1 0 2", LOG},
        {"rm -f log; parallel --will-cite -j1 --joblog log 'echo {}; exit {}'"
         " ::: 0 1 2 0 3 >/dev/null", 0, "-j1 -k --retry-failed --joblog log", LOG},
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
    expect("$C run --joblog log {} ::: no-such-command-xyz 2>/dev/null;"
           " awk -F '\\t' 'NR == 2 { print ($4 >= 0 && $4 < 5), $7 }' log",
           0, "1 127\n");
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

/* (The long sleeps below carry $$: other checkouts may run these tests at the
 * same time, and pgrep sees their processes too.) */

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
        {"rm -f cnt log", 0,
         "--retries 3 --timeout 0.3 --joblog log 'echo x >> cnt; n=$(wc -l < cnt);"
         " [ $n -ge 2 ] || sleep 2; echo ok$n' ::: a", LOG},
    };
    differ_all(cases, ARRAY_LEN(cases));
}

/* The whole process group goes, and quickly: TERM, not the last KILL. */
static void timeout_kills_the_process_group(void **state)
{
    expect("start=$(date +%s); $C run --timeout 0.3 'sleep 31.7{} & sleep 31.7{}; echo'"
           " ::: $$; echo $?; sleep 0.2;"
           " pgrep -f \"sleep 31[.]7$$([^0-9]|\\$)\" || echo none left;"
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
    differ(&(dcase){0, 0, "-k -j2 --halt now,success=1 'sleep {}; echo {}' ::: 1 0.1", 0});
}

static void halt_now_stops_running_jobs(void **state)
{
    expect("$C run -j2 --halt now,fail=1 'if [ {} = 1 ]; then exit 1; fi; sleep 31.5{}'$$"
           " ::: 2 1 3; echo $?; sleep 0.2;"
           " pgrep -f \"sleep 31[.]5[23]$$([^0-9]|\\$)\" ||"
           " echo none left",
           0, "1\nnone left\n");
}

/* ---- signals ------------------------------------------------------------------- */

/* SIGTERM: no new job, the running ones get it and are logged; we die of it. */
/* Only the job that ended by itself is logged: those stopped did not
 * finish (as GNU parallel; --resume runs them again). */
static void signal_stops_jobs_and_logs_the_finished(void **state)
{
    expect("$C run -j3 --joblog log 'sleep {}' ::: 0.1 31.$$ 31.$$ 4 5 & pid=$!;"
           " sleep 0.6; kill -TERM $pid; wait $pid; echo $?;"
           " cut -f 1,7,8 log | sort;"
           " pgrep -f \"sleep 31[.]$$([^0-9]|\\$)\" || echo none left",
           0, "143\n1\t0\t0\nSeq\tExitval\tSignal\nnone left\n");
}

/* Jobs that ignore it are killed after a grace time, or at a second signal. */
static void signal_then_kill(void **state)
{
    expect("$C run -j2 'trap \"\" TERM; sleep {}' ::: 31.$$ 31.$$ & pid=$!;"
           " sleep 0.4; kill -TERM $pid; wait $pid; echo $?;"
           " pgrep -f \"sleep 31[.]$$([^0-9]|\\$)\" || echo none left",
           0, "143\nnone left\n");
    expect("$C run -j2 'trap \"\" INT; sleep {}' ::: 31.4 31.4 & pid=$!; sleep 0.4;"
           " start=$(date +%s%N); kill -INT $pid; sleep 0.2; kill -INT $pid; wait $pid;"
           " echo $?; [ $(( ($(date +%s%N) - start) / 1000000 )) -lt 1800 ] && echo fast",
           0, "130\nfast\n");
}

/* Ctrl-C (SIGINT) as the issue says: the running jobs get SIGTERM, their
 * groups too, and are logged; nothing is left behind; we die of SIGINT. */
static void ctrl_c_terminates_jobs(void **state)
{
    expect("$C run -j2 --joblog log 'sleep {}' ::: 31.6$$ 31.6$$ 0.1 & pid=$!;"
           " sleep 0.5; kill -INT $pid; wait $pid; echo $?;"
           " cut -f 7,8 log | sort;"
           " pgrep -f \"sleep 31[.]6$$([^0-9]|\\$)\" || echo none left",
           0, "130\nExitval\tSignal\nnone left\n");
}

/* A signal that comes while we wait for input still ends the run: the input
 * that comes after it starts no job, and we die of it, even when no job ran
 * at the time (not exit 0). */
static void signal_while_reading_input(void **state)
{
    expect("{ echo a; sleep 1.5; } | $C run -j1 echo >/dev/null & pid=$!;"
           " sleep 0.5; kill -TERM $pid; wait $pid; echo $?",
           0, "143\n");
    expect("{ echo a; sleep 2; echo b; } | $C run -j1 --joblog log echo >/dev/null &"
           " pid=$!; sleep 0.5; kill -INT $pid; wait $pid; echo $?; cut -f 1,9 log",
           0, "130\nSeq\tCommand\n1\techo a\n");
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
        TEST(joblog_as_gnu_parallel),
        TEST(joblog_times_are_sane),
        TEST(resume_after_kill_runs_each_job_once),
        TEST(timeout_as_gnu_parallel),
        TEST(timeout_kills_the_process_group),
        TEST(halt_as_gnu_parallel),
        TEST(halt_now_stops_running_jobs),
        TEST(signal_stops_jobs_and_logs_the_finished),
        TEST(signal_then_kill),
        TEST(ctrl_c_terminates_jobs),
        TEST(signal_while_reading_input),
        TEST(option_errors),
    };
    return CC_RUN_TESTS(tests);
}
