/*
 * run_args.c: the command line of `concur run` (GNU parallel's syntax):
 *
 *   concur run [OPTIONS] COMMAND [ARG...] [::: VALUE... | :::: FILE...]...
 *
 * Options come first and end at the first word that is not one (or at `--`);
 * then the command words, up to the first `:::` or `::::`; then the sources.
 * Every problem is reported on stderr, naming it, and fails the parse.
 */
#include "run.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

/* The most jobs at once that we accept (each costs three fds). */
#define RUN_MAX_JOBS 100000

void run_usage(FILE *f)
{
    fputs("Usage: concur run [OPTIONS] COMMAND [ARG...] [::: VALUE...]"
          " [:::: FILE...]...\n"
          "Run COMMAND once per input, in parallel (GNU parallel's syntax).\n"
          "Inputs: the VALUEs after :::, the lines of each FILE after ::::\n"
          "(- is stdin), or the lines of stdin; several sources: every\n"
          "combination. Replacement strings: {} {.} {/} {//} {/.} {#} {%},\n"
          "{n} {n.} {n/} {n//} {n/.} for source n; with none, the inputs are\n"
          "appended.\n\n"
          "Options:\n"
          "  -j, --jobs N       run at most N jobs at once (default: CPU count)\n"
          "  -k, --keep-order   print outputs in input order\n"
          "  -a, --arg-file F   read inputs from the lines of F (as :::: F)\n"
          "      --dry-run      print the commands instead of running them\n"
          "      --will-cite    accepted for GNU parallel compatibility\n"
          "  -h, --help         show this help\n\n"
          "Exit status: 0 if every job succeeded, else the number of failed\n"
          "jobs (101 if more than 100 failed); 255 on an error of our own.\n"
          "See concur(1).\n",
          f);
}

static int fail(const char *fmt, const char *arg)
{
    fputs("concur run: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\nTry 'concur run --help'.\n", stderr);
    return -1;
}

static long cpu_count(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    return 1;
}

static int parse_jobs(run_opts *o, const char *s)
{
    char *end;
    errno = 0;
    long n = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno || n < 0)
        return fail("-j: '%s' is not a positive integer", s);
    if (n == 0)
        return fail("-j: '%s': -j 0 (as many as possible) is not supported yet;"
                    " give a positive number", s);
    if (n > RUN_MAX_JOBS)
        return fail("-j: '%s' is too many jobs at once (at most 100000)", s);
    o->jobs = n;
    return 0;
}

static int add_file(run_opts *o, const char *path)
{
    int r = inputs_add_file(&o->in, path);
    if (r < 0) {
        fprintf(stderr, "concur run: cannot open input file '%s': %s\n", path,
                strerror(-r));
        return -1;
    }
    return 0;
}

/* The value of option argv[*i] ("-j N", "-jN", "--jobs=N"), or NULL. */
static const char *opt_value(int argc, char **argv, int *i, const char *shrt,
                             const char *lng)
{
    const char *a = argv[*i];
    size_t ls = strlen(shrt), ll = strlen(lng);
    if (strcmp(a, shrt) == 0 || strcmp(a, lng) == 0)
        return *i + 1 < argc ? argv[++*i] : NULL;
    if (strncmp(a, shrt, ls) == 0 && shrt[1] != '-')
        return a + ls;
    if (strncmp(a, lng, ll) == 0 && a[ll] == '=')
        return a + ll + 1;
    return NULL;
}

static bool is_opt(const char *a, const char *shrt, const char *lng)
{
    size_t ls = strlen(shrt), ll = strlen(lng);
    return strncmp(a, shrt, ls) == 0 ||
           (strncmp(a, lng, ll) == 0 && (a[ll] == '\0' || a[ll] == '='));
}

/* Parse one option at argv[*i]: 0, 1 after --help, -1 on error. */
static int parse_option(run_opts *o, int argc, char **argv, int *i)
{
    const char *a = argv[*i], *v;
    if (strcmp(a, "-k") == 0 || strcmp(a, "--keep-order") == 0)
        o->keep_order = true;
    else if (strcmp(a, "--dry-run") == 0)
        o->dry_run = true;
    else if (strcmp(a, "--will-cite") == 0)
        ;
    else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
        return run_usage(stdout), 1;
    else if (is_opt(a, "-j", "--jobs"))
        return (v = opt_value(argc, argv, i, "-j", "--jobs"))
                   ? parse_jobs(o, v)
                   : fail("%s needs a value (a number of jobs)", a);
    else if (is_opt(a, "-a", "--arg-file"))
        return (v = opt_value(argc, argv, i, "-a", "--arg-file"))
                   ? add_file(o, v)
                   : fail("%s needs a value (a file)", a);
    else
        return fail("unknown option '%s'", a);
    return 0;
}

static bool is_sep(const char *a) { return !strcmp(a, ":::") || !strcmp(a, "::::"); }

/* The sources after the command: argv[i] is ":::" or "::::". */
static int parse_sources(run_opts *o, int argc, char **argv, int i)
{
    while (i < argc) {
        bool files = strcmp(argv[i], "::::") == 0;
        source *s = files ? NULL : inputs_add(&o->in);
        for (i++; i < argc && !is_sep(argv[i]); i++) {
            if (files && add_file(o, argv[i]) < 0)
                return -1;
            if (!files)
                source_push(s, argv[i]);
        }
    }
    return 0;
}

int run_parse_args(run_opts *o, int argc, char **argv)
{
    *o = (run_opts){.jobs = cpu_count()};
    int i = 1;
    for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        }
        int r = parse_option(o, argc, argv, &i);
        if (r)
            return r;
    }
    o->cmd = argv + i;
    while (i < argc && !is_sep(argv[i]))
        i++;
    o->ncmd = (int)(argv + i - o->cmd);
    if (o->ncmd == 0)
        return fail("no command given%s", "");
    if (parse_sources(o, argc, argv, i) < 0)
        return -1;
    if (o->in.nsrc == 0 && add_file(o, "-") < 0)
        return -1;
    int r = inputs_prepare(&o->in);
    if (r < 0) {
        fprintf(stderr, "concur run: cannot read input: %s\n", strerror(-r));
        return -1;
    }
    return 0;
}

void run_opts_free(run_opts *o) { inputs_free(&o->in); }
