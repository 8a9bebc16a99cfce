/*
 * test_cli_pipe.c: `concur run --pipe` ($CONCUR_BIN): stdin cut into blocks
 * (--block, --recend, --recstart), compared with GNU parallel byte for byte
 * where it can judge (cli_test.h), and the invariants of the cutting checked
 * directly: the blocks put together are the input, each ends at a record end,
 * each but the last is near --block. Also --bar and --eta, under a terminal
 * (script(1)) and not.
 */
#include "cli_test.h"

static void pipe_as_gnu_parallel(void **state)
{
    static const dcase cases[] = {
        {0, "seq 100000", "--pipe --block 10k -k wc -l", 0},
        {0, "seq 300000", "--pipe -j3 -k wc -c", 0}, /* the default 1M */
        {0, "seq 5000", "--pipe --block 1k -k 'echo {#}; wc -c'", 0},
        {0, "seq 20000", "--block-size 2K --spreadstdin -k wc -c", 0},
        {0, "seq 1000", "--pipe --block 100 --recend 5 -k wc -c", 0},
        {0, "seq 5000", "--pipe --block 300 --recstart 1 -k md5sum", 0},
        {0, "seq 5000", "--pipe --block 333 --recstart 1 --recend 0 -k md5sum", 0},
        {0, "seq 30", "--pipe --block 2 -j1 -k wc -c", 0},
        {0, "seq 1000", "--pipe --block 100 --recend '' -k md5sum", 0},
        {0, "head -c 3000 /dev/zero", "--pipe --block 1000 -k wc -c", 0},
        {0, "printf ''", "--pipe 'echo x'", 0},
        {0, "seq 100000", "--pipe --block 100k -k --dry-run 'echo {#}'", 0},
        {0, "printf 'a\\nb'", "--pipe -k cat", 0},
        {0, "yes abcdefghijabcdefghijabcdefghij | head -30",
         "--pipe --block 10 -k wc -c", 0}, /* records longer than a block */
        {0, "seq 3000", "--pipe --block 1k -k 'wc -l; exit 1'", 0},
        {"rm -f cnt", "seq 3000", "--pipe --block 10k -j1 -k --retries 2"
         " 'echo x >> cnt; [ $(wc -l < cnt) -ge 2 ] && wc -l'", "cat cnt"},
    };
    differ_all(cases, ARRAY_LEN(cases));
}

/* The blocks, put together, are the input; -k keeps their order. */
static void pipe_blocks_make_the_input(void **state)
{
    expect("seq 200000 > in; $C run --pipe --block 20k -j4 -k cat < in | cmp - in"
           " && echo same; $C run --pipe --block 7k -j3 cat < in | sort -n | cmp - in"
           " && echo same", 0, "same\nsame\n");
}

/* Each block ends at a record end; each but the last is within a record of
 * --block. */
static void pipe_blocks_end_at_records_near_block(void **state)
{
    expect("seq 100000 | $C run --pipe --block 10k -k 'tail -c 1 | od -An -tx1'"
           " | sort -u | tr -d ' '", 0, "0a\n");
    expect("seq 100000 | $C run --pipe --block 10k -k wc -c | sed '$d' |"
           " awk '$1 > 10000 || $1 < 10000 - 7 { bad++ } END { print (NR > 50), bad + 0 }'",
           0, "1 0\n");
}

/* A job that writes much before it reads its block: nothing waits. */
static void pipe_job_writing_first_does_not_block(void **state)
{
    expect("seq 100000 | $C run --pipe --block 100k -j2 -k"
           " 'head -c 3000000 /dev/zero | wc -c; wc -l' |"
           " awk '$1 == 3000000 { z++; next } { s += $1 } END { print z, s }'",
           0, "6 100000\n");
}

static void pipe_option_errors(void **state)
{
    static const char *const bad[] = {
        "--pipe --block x", "--pipe --block 0", "--pipe --block 1Q",
        "--pipe --block", "--pipe echo ::: a", "--pipe -N2 wc -l",
        "--pipe --header : cat", "--pipe -X echo",
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        char script[128];
        snprintf(script, sizeof script, "$C run %s; echo $?", bad[i]);
        cc_completed_process res = sh(script);
        if (strcmp(str(&res.out), "255\n") != 0 || !strstr(str(&res.err), "concur run:"))
            fail_msg("%s: %s / %s", bad[i], str(&res.out), str(&res.err));
        cc_completed_process_free(&res);
    }
}

/* Under a terminal the bar ends full, at 100%; --eta ends with nothing left. */
static void bar_and_eta_on_a_terminal(void **state)
{
    if (system("command -v script >/dev/null 2>&1") != 0) {
        print_message("script(1) is not installed: skipped\n");
        skip();
    }
    expect("script -qc \"seq 20 | $C run -j2 --bar true\" /dev/null </dev/null"
           " | tr '\\r' '\\n' | grep -c '^100% \\[#\\{30\\}\\] 20/20 ETA 0s'",
           0, "1\n");
    expect("script -qc \"seq 20 | $C run -j2 --eta true\" /dev/null </dev/null"
           " | tr '\\r' '\\n' | grep -c '^ETA: 0s Left: 0 AVG: [0-9.]*s"
           "  local:0/20/100%/'", 0, "1\n");
    expect("script -qc \"seq 30000 | $C run --pipe --block 10k --bar wc -l\""
           " /dev/null </dev/null | tr '\\r' '\\n' | grep -c '^100% .* 17/17 '",
           0, "1\n");
}

/* Not a terminal: nothing on stderr (GNU parallel prints it anyway). */
static void bar_and_eta_quiet_without_a_terminal(void **state)
{
    expect("$C run --bar --eta echo ::: a b 2>err | sort; wc -c < err", 0,
           "a\nb\n0\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(pipe_as_gnu_parallel),
        TEST(pipe_blocks_make_the_input),
        TEST(pipe_blocks_end_at_records_near_block),
        TEST(pipe_job_writing_first_does_not_block),
        TEST(pipe_option_errors),
        TEST(bar_and_eta_on_a_terminal),
        TEST(bar_and_eta_quiet_without_a_terminal),
    };
    return CC_RUN_TESTS(tests);
}
