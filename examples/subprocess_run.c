/*
 * subprocess_run.c: run a command and capture its output, as Python's
 *
 *     r = subprocess.run(["tr", "a-z", "A-Z"], input=b"hello, concur\n",
 *                        capture_output=True, timeout=10, check=True)
 *
 * Exits 0 when the child's stdout is the upper-cased input.
 */
#include <concur.h>

#include <stdio.h>
#include <string.h>

int main(void)
{
    static const char input[] = "hello, concur\n";
    char *argv[] = {"tr", "a-z", "A-Z", NULL};
    cc_run_options opts = {
        .input = input,
        .input_len = strlen(input),
        .capture_output = true,
        .check = true,
    };
    cc_completed_process r;
    int err = cc_run(argv, &opts, cc_deadline_in(10 * CC_SEC), &r);
    if (err < 0) {
        fprintf(stderr, "run: %s (returncode %d)\n", cc_strerror(err),
                r.returncode);
        cc_completed_process_free(&r);
        return 1;
    }
    int ok = r.returncode == 0 && strcmp(r.out.data, "HELLO, CONCUR\n") == 0;
    printf("%s", r.out.data);
    cc_completed_process_free(&r);
    return ok ? 0 : 1;
}
