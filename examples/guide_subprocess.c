/*
 * guide_subprocess.c: the "subprocess" section of docs/guide.md: run with
 * captured output, check and timeout; Popen-style spawn, communicate, poll,
 * terminate. Exits 0 when every check passes.
 */
#include <concur.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>

#define CHECK(cond)                                                   \
    do {                                                              \
        if (!(cond)) {                                                \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond); \
            return 1;                                                 \
        }                                                             \
    } while (0)

static int run(void)
{
    char *argv[] = {"tr", "a-z", "A-Z", NULL};
    cc_run_options opts = {.capture_output = true, .check = true,
                           .input = "hello\n", .input_len = 6};
    cc_completed_process done; /* always initialised: free it */
    int err = cc_run(argv, &opts, cc_deadline_in(5 * CC_SEC), &done);
    CHECK(err == 0 && done.returncode == 0);
    CHECK(strcmp(done.out.data, "HELLO\n") == 0); /* NUL-terminated */
    cc_completed_process_free(&done);
    return 0;
}

static int run_errors(void)
{
    cc_completed_process done;
    char *fails[] = {"sh", "-c", "echo oops >&2; exit 3", NULL};
    cc_run_options checked = {.capture_output = true, .check = true};
    int err = cc_run(fails, &checked, cc_deadline_in(5 * CC_SEC), &done);
    CHECK(err == -ECHILD && done.returncode == 3); /* CalledProcessError */
    CHECK(strcmp(done.err.data, "oops\n") == 0);
    cc_completed_process_free(&done);

    char *slow[] = {"sleep", "10", NULL};
    err = cc_run(slow, NULL, cc_deadline_in(50 * CC_MSEC), &done);
    CHECK(err == -ETIMEDOUT && done.returncode == -SIGKILL); /* killed */
    cc_completed_process_free(&done);

    char *missing[] = {"no-such-program-guide", NULL};
    err = cc_run(missing, NULL, CC_FOREVER, &done);
    CHECK(err == -ENOENT && !done.started); /* FileNotFoundError */
    cc_completed_process_free(&done);
    return 0;
}

static int spawn_and_communicate(void)
{
    char *argv[] = {"cat", NULL};
    cc_spawn_options opts = {.stdin_io = {CC_STDIO_PIPE},
                             .stdout_io = {CC_STDIO_PIPE}};
    cc_process *p;
    CHECK(cc_process_spawn(&p, argv, &opts) == 0);
    int rc;
    CHECK(cc_process_poll(p, &rc) == -EAGAIN); /* Python: None */
    cc_bytes out = {0};
    CHECK(cc_process_communicate(p, "ping", 4, cc_deadline_in(5 * CC_SEC),
                                 &out, NULL) == 0);
    CHECK(cc_process_poll(p, &rc) == 0 && rc == 0);
    CHECK(out.len == 4 && memcmp(out.data, "ping", 4) == 0);
    cc_bytes_free(&out);
    cc_process_free(p);
    return 0;
}

static int terminate(void)
{
    char *argv[] = {"sleep", "10", NULL};
    cc_process *p;
    CHECK(cc_process_spawn(&p, argv, NULL) == 0);
    int rc;
    CHECK(cc_process_wait(p, cc_deadline_in(10 * CC_MSEC), &rc) == -ETIMEDOUT);
    CHECK(cc_process_terminate(p) == 0); /* SIGTERM to its process group */
    CHECK(cc_process_wait(p, cc_deadline_in(5 * CC_SEC), &rc) == 0);
    CHECK(rc == -SIGTERM); /* as Python's returncode */
    cc_process_free(p);
    return 0;
}

int main(void)
{
    CHECK(run() == 0);
    CHECK(run_errors() == 0);
    CHECK(spawn_and_communicate() == 0);
    CHECK(terminate() == 0);
    return 0;
}
