/*
 * test_cli_edge.c: `concur run` ($CONCUR_BIN) at the edges a review found:
 * replacement strings of sources that are not there, a reader of our output
 * that goes away, jobs that close their output early, option values at
 * their limits. Compared with GNU parallel where it can judge (cli_test.h).
 */
#include "cli_test.h"

/* {n} beyond the sources is empty, as GNU parallel's (and nothing is
 * appended: it is a replacement string all the same). */
static void missing_source_is_empty(void **state)
{
    static const dcase cases[] = {
        {0, 0, "-k echo {3} ::: a ::: b", 0},
        {0, 0, "-k echo {1}{3}x ::: a ::: b", 0},
        {0, 0, "-k echo {2} {1} ::: a", 0},
        {0, 0, "-k 'echo {3}; echo {2/}' ::: a ::: b/c", 0},
        {0, 0, "-k --tagstring '{1}{3}' echo ::: a ::: b", 0},
    };
    differ_all(cases, ARRAY_LEN(cases));
    expect("$C run -k echo {2} {1} ::: a", 0, "a\n");
}

/* The reader of our output goes away (| head): as GNU parallel, we stop
 * the jobs and die of SIGPIPE, leaving nothing running behind. */
static void closed_stdout_stops_the_jobs(void **state)
{
    expect("{ $C run -j3 'echo {}; sleep {}' ::: 0 0.5 31.8$$ 2>err; echo $? > st; }"
           " | head -n 1; cat st; pgrep -f \"sleep 31[.]8$$([^0-9]|\\$)\" ||"
           " echo none left; cat err",
           0, "0\n141\nnone left\n");
}

/* A job that closes its stdout and stderr, then runs on: --line-buffer
 * waits for it in epoll, using no CPU meanwhile (`times`: our children's
 * CPU seconds; the job sleeps 2 s of them), and still prints the other
 * stream's last, unended line. */
static void line_buffer_job_closing_output_is_waited_for(void **state)
{
    expect("$C run --lb 'echo a; exec >&- 2>&-; sleep 2' ::: 1; times > t; awk 'NR == 2"
           " { split($1 \" \" $2, t, /[ms ]+/); print t[1] * 60 + t[2] + t[3] * 60"
           " + t[4] < 0.5 }' t",
           0, "a\n1\n");
    expect("$C run --lb 'exec >&-; sleep 0.2; printf d >&2' ::: 1 2>&1", 0, "d");
}

/* -j -M takes a number too: anything else is refused, naming it. */
static void jobs_minus_needs_a_number(void **state)
{
    expect("for j in -abc - -1x; do $C run -j $j echo ::: a 2>err; echo $?;"
           " grep -c \"'$j' is not N\" err; done",
           0, "255\n1\n255\n1\n255\n1\n");
    expect("$C run -j -1 echo ::: a", 0, "a\n");
}

/* A timeout too long to matter is no timeout (1e11 s in ns passes int64). */
static void huge_timeout_never_fires(void **state)
{
    expect("$C run --timeout 1e11 'sleep 0.3; echo {}' ::: a;"
           " $C run --timeout 99999999999 'sleep 0.3; echo {}' ::: b", 0, "a\nb\n");
}

/* --results "$unset" would save under /1/...: refused, naming it. */
static void results_needs_a_directory(void **state)
{
    expect("$C run --results '' echo ::: a 2>err; echo $?; grep -c -- --results err",
           0, "255\n1\n");
}

/* Too few fds for -j: as many jobs as fit run (GNU parallel: 45 of 200). */
static void low_fd_limit_runs_what_fits(void **state)
{
    expect("ulimit -n 200; $C run -j 100 'sleep 0.5; echo {%}' ::: $(seq 100) 2>err |"
           " sort -n | tail -n 1 > max; [ $(cat max) -gt 20 ] && echo ok;"
           " grep -c \"for $(cat max) jobs\" err",
           0, "ok\n1\n");
}

/* Started with SIGCHLD ignored (a daemon's habit, inherited), the kernel
 * would reap our jobs itself: concur takes the default back, as GNU
 * parallel's jobs run normally then. */
static void ignored_sigchld_is_reset(void **state)
{
    expect("timeout -s KILL 20 env --ignore-signal=CHLD $C run -k 'sleep 0.1; echo {}'"
           " ::: a b; echo $?",
           0, "a\nb\n0\n");
}

/* --results saves the output whatever the output mode (as GNU parallel's
 * -u): nothing printed, stdout and stderr files made. */
static void results_with_ungroup_and_line_buffer(void **state)
{
    expect("for m in -u --lb; do rm -rf r; $C run $m --results r 'echo {}; echo e >&2'"
           " ::: a; cat r/1/a/stdout r/1/a/stderr; done",
           0, "a\ne\na\ne\n");
}

/* An empty or blank command ("$CMD" unset) is no command: the input must
 * not become one (GNU parallel runs it; concur(1) promises it never does). */
static void blank_command_is_no_command(void **state)
{
    expect("for c in '' ' '; do $C run \"$c\" ::: date 2>err; echo $?;"
           " grep -c 'no command' err; done",
           0, "255\n1\n255\n1\n");
}

/* Jobs that a signal (or --halt now) stopped did not finish: as in GNU
 * parallel, they are not logged, so that --resume runs them again. */
static void resume_after_ctrl_c_runs_the_stopped_jobs(void **state)
{
    expect("$C run -j2 --joblog log 'sleep {}' ::: 0.1 31.9$$ 31.9$$ & pid=$!;"
           " sleep 0.6; kill -INT $pid; wait $pid; echo $?;"
           " $C run -j2 --joblog log --resume 'echo {#}' ::: 0.1 31.9$$ 31.9$$ | sort;"
           " rm log; $C run -j2 --joblog log --halt now,fail=1 'sleep {}; exit 1'"
           " ::: 0.2 31.9$$; cut -f 1,7 log",
           0, "130\n2\n3\nSeq\tExitval\n1\t1\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(missing_source_is_empty),
        TEST(closed_stdout_stops_the_jobs),
        TEST(line_buffer_job_closing_output_is_waited_for),
        TEST(jobs_minus_needs_a_number),
        TEST(huge_timeout_never_fires),
        TEST(results_needs_a_directory),
        TEST(low_fd_limit_runs_what_fits),
        TEST(ignored_sigchld_is_reset),
        TEST(results_with_ungroup_and_line_buffer),
        TEST(blank_command_is_no_command),
        TEST(resume_after_ctrl_c_runs_the_stopped_jobs),
    };
    return CC_RUN_TESTS(tests);
}
