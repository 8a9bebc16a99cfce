/*
 * test_cli_run2.c: `concur run`'s GNU-parallel options ($CONCUR_BIN), mostly
 * compared with GNU parallel itself (cli_test.h): inputs (:::+, -0, -d, -r,
 * --colsep, --header), -j forms, output (-u, --line-buffer, --tag), several
 * inputs per job (-X, -m, -N), -q, --shell, --results, and no injection.
 * test_cli_run3.c has the joblog, timeouts, --halt, signals and errors.
 */
#include "cli_test.h"

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
        {0, "printf 'a\\tb c  d\\n1x2\\n'", "-k --colsep '\\t' echo {2}", 0},
        {0, "printf 'a\\tb c  d\\n'", "--colsep '\\s+' echo {3}", 0},
        {0, "printf 'a1b22c\\n'", "--colsep '\\d+' echo {2}{3}", 0},
        {0, "printf 'a1b22c\\n'", "--colsep '[\\d]+' echo {2}{3}", 0},
        {0, "printf 'a.b\\n'", "--colsep '\\.' echo {2}", 0},
    };
    differ_all(cases, ARRAY_LEN(cases));
}

/* ---- -j ---------------------------------------------------------------------- */

/* --dry-run's {%} goes round the slots, so the biggest one is -j. */
#define MAX_SLOT(j)                                                         \
    "$C run -j " j " --dry-run echo {%} ::: $(seq 300) | cut -d ' ' -f 2 |" \
    " sort -n | tail -1"

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
        {0, 0, "-k -N2 echo {1/.} {2//} ::: a/b.c d/e.f x", 0},
        {0, 0, "-k -N2 'echo {1/.} {2//}' ::: a/b.c d/e.f x", 0},
        {0, 0, "-k --tag --dry-run echo ::: a b", 0},
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
        {"rm -rf res", "printf 'x,y\\n1,,2\\n3\\t4\\n'", "--results res --colsep , true",
         "find res -type f | sort"},
        {"rm -rf res", 0, "--results res -N2 true ::: a b c", "find res -type f | sort"},
        {"rm -rf res", 0, "--results res --header : true ::: h v1 ::: b 2 ::: a 3",
         "find res -type f | sort"},
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

/* Every option in --help is in the man page. */
static void help_options_are_documented(void **state)
{
    expect("$C run --help | grep -o -- '--[a-z-]*' | sort -u | while read o; do"
           " m=$(printf '%s' \"$o\" | sed 's/-/\\\\-/g');"
           " grep -qF -- \"$m\" \"$CONCUR_SRC/docs/concur.1\" || echo missing $o; done;"
           " $C run --help | grep -c -- --line-buffer",
           0, "1\n");
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
        TEST(multiple_args_as_gnu_parallel),
        TEST(quote_as_gnu_parallel),
        TEST(shell_and_no_shell),
        TEST(results_as_gnu_parallel),
        TEST(no_injection_through_new_options),
        TEST(help_options_are_documented),
    };
    return CC_RUN_TESTS(tests);
}
