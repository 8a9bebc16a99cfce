/*
 * main.c: the `concur` command: dispatches to its subcommands (one file each).
 */
#include "run.h"

#include <concur.h>

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

/* A subcommand: its name, what it does, and its entry point. */
static const struct subcommand {
    const char *name;                /* as typed: `concur NAME ...` */
    const char *summary;             /* one line, for --help */
    int (*main)(int argc, char **argv); /* argv[0] is NAME; returns the status */
} subcommands[] = {
    {"run", "run a command once per input, in parallel (GNU parallel's syntax)",
     cmd_run},
};

static void usage(FILE *f)
{
    fputs("Usage: concur [--version | --help] SUBCOMMAND [ARG...]\n\n"
          "Subcommands:\n",
          f);
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
        fprintf(f, "  %-6s %s\n", subcommands[i].name, subcommands[i].summary);
    fputs("\n`concur SUBCOMMAND --help` describes each; see concur(1).\n", f);
}

/* With fd 0, 1 or 2 closed, our first open would take its place and jobs'
 * output would go into an epoll fd: put /dev/null there first. */
static void open_std_fds(void)
{
    for (int fd = 0; fd < 3; fd++)
        if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", fd ? O_WRONLY : O_RDONLY) < 0)
            _exit(RUN_EXIT_ERROR);
}

int main(int argc, char **argv)
{
    open_std_fds();
    if (argc < 2) {
        usage(stderr);
        return RUN_EXIT_ERROR;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
        printf("concur %s\n", CONCUR_VERSION_STRING);
        return 0;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
        if (strcmp(cmd, subcommands[i].name) == 0)
            return subcommands[i].main(argc - 1, argv + 1);
    fprintf(stderr, "concur: unknown %s '%s'\nTry 'concur --help'.\n",
            cmd[0] == '-' ? "option" : "subcommand", cmd);
    return RUN_EXIT_ERROR;
}
