/*
 * run_args.c: the command line of `concur run` (GNU parallel's syntax):
 *
 *   concur run [OPTIONS] COMMAND [ARG...] [:::[+] VALUE... | ::::[+] FILE...]...
 *
 * Options come first and end at the first word that is not one (or at `--`);
 * then the command words, up to the first separator; then the sources.
 * Every problem is reported on stderr, naming it, and fails the parse.
 */
#include "run.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void run_usage(FILE *f)
{
    fputs("Usage: concur run [OPTIONS] COMMAND [ARG...] [:::[+] VALUE...]"
          " [::::[+] FILE...]...\n"
          "Run COMMAND once per input, in parallel (GNU parallel's syntax).\n"
          "Inputs: the VALUEs after :::, the lines of each FILE after ::::\n"
          "(- is stdin), or the lines of stdin; several sources: every\n"
          "combination (:::+ and ::::+ pair a source with the one before).\n"
          "Replacement strings: {} {.} {/} {//} {/.} {#} {%}, {n} {n.} {n/}\n"
          "{n//} {n/.} for source (or column) n; with none, the inputs are\n"
          "appended.\n\n"
          "Options:\n"
          "  -j, --jobs N       at most N jobs at once; N%, +N, -N: of the CPU\n"
          "                     count; 0: 256 (default: CPU count)\n"
          "  -k, --keep-order   print outputs in input order\n"
          "  -a, --arg-file F   read inputs from the lines of F (as :::: F)\n"
          "  -0, --null         input records end with NUL, not newline\n"
          "  -d, --delimiter D  input records end with D (a C escape: \\t)\n"
          "  -r, --no-run-if-empty  blank inputs make no job\n"
          "  -C, --colsep RE    split inputs into columns {1} {2}... at RE\n"
          "      --header :     the first input of each source names it: {name}\n"
          "  -u, --ungroup      print output as it comes, not job by job\n"
          "      --line-buffer  print output as it comes, whole lines\n"
          "      --tag          prefix output lines with the input and a tab\n"
          "      --tagstring S  prefix output lines with S (expanded) and a tab\n"
          "      --joblog F     log each job to F (+F: append)\n"
          "      --resume       skip the jobs already in the joblog\n"
          "      --resume-failed  skip them unless they failed\n"
          "      --retry-failed   run the failed commands of the joblog again\n"
          "      --timeout T    stop a job after T seconds (N%: of the median)\n"
          "      --termseq SEQ  how to stop it (TERM,200,TERM,100,TERM,50,KILL,25)\n"
          "      --retries N    run a failing job up to N times\n"
          "      --halt H       stop early: now|soon,fail|success|done=N|N%\n"
          "  -N, --max-args N   N inputs per job: {1}..{N}\n"
          "  -X                 as many inputs per job as fit, x{}y repeated\n"
          "  -m                 as many inputs per job as fit, {} for them all\n"
          "  -q, --no-shell     never run a shell; --shell: always\n"
          "      --results DIR  save outputs in DIR/1/VALUE/.../stdout, stderr\n"
          "      --pipe         cut stdin into blocks, one per job, as its stdin\n"
          "      --block SIZE   --pipe: blocks of about SIZE bytes (1M; k, K, M...)\n"
          "      --recend S     --pipe: records end with S (default: newline)\n"
          "      --recstart S   --pipe: records start with S\n"
          "      --bar          a progress bar on stderr (when a terminal)\n"
          "      --eta          the estimated time left on stderr (likewise)\n"
          "      --dry-run      print the commands instead of running them\n"
          "      --will-cite    accepted for GNU parallel compatibility\n"
          "  -h, --help         show this help\n\n"
          "Exit status: 0 if every job succeeded, else the number of failed\n"
          "jobs (101 if more than 100 failed); 255 on an error of our own.\n"
          "See concur(1).\n",
          f);
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

static int set_colsep(run_opts *o, const char *re)
{
    return inputs_set_colsep(&o->in, re) < 0
               ? run_fail("--colsep: '%s' is not a regular expression", re)
               : 0;
}

static int set_header(run_opts *o, const char *v)
{
    if (strcmp(v, ":") != 0)
        return run_fail("--header: only ':' is supported, not '%s'", v);
    o->in.header = true;
    return 0;
}

static int set_tagstring(run_opts *o, const char *v) { return o->tag = v, 0; }

static int set_joblog(run_opts *o, const char *v)
{
    o->joblog_append |= v[0] == '+';
    o->joblog = v + (v[0] == '+');
    return 0;
}

static int set_retries(run_opts *o, const char *v)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (*v < '0' || *v > '9' || *end || n > 1000000)
        return run_fail("--retries: '%s' is not a number", v);
    o->retries = n < 1 ? 1 : n;
    return 0;
}

static int set_max_args(run_opts *o, const char *v)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (*v < '0' || *v > '9' || *end || n < 1 || n > 1000000)
        return run_fail("-N: '%s' is not a number from 1", v);
    o->multi = 'N';
    o->in.max_args = n;
    return 0;
}

static int set_results(run_opts *o, const char *v)
{
    if (!*v) /* else DIR/1/VALUE would be /1/VALUE */
        return run_fail("--results: the directory name is empty%s", "");
    o->results = v;
    return 0;
}
static int set_recend(run_opts *o, const char *v) { return o->recend = v, 0; }
static int set_recstart(run_opts *o, const char *v) { return o->recstart = v, 0; }

static int set_flag(run_opts *o, const char *name)
{
    static const char *const names[] = {"-k", "--keep-order", "--dry-run", "-0",
        "--null", "-r", "--no-run-if-empty", "-u", "--ungroup", "--tag",
        "--resume", "--resume-failed", "--will-cite", "--group", "-X", "-m",
        "--shell", "--no-shell", "-q", "--quote", "--line-buffer", "--lb",
        "--retry-failed", "--pipe", "--spreadstdin", "--bar",
        "--eta"};
    size_t i = 0;
    while (i < sizeof names / sizeof names[0] && strcmp(name, names[i]))
        i++;
    switch (i) {
    case 0: case 1: o->keep_order = true; break;
    case 2: o->dry_run = true; break;
    case 3: case 4: o->in.delim = '\0'; break;
    case 5: case 6: o->in.skip_empty = true; break;
    case 7: case 8: o->out = OUT_UNGROUP; break;
    case 9: o->tag = "{}"; break;
    case 10: o->resume = RESUME_ALL; break;
    case 11: o->resume = RESUME_FAILED; break;
    case 12: case 13: break;
    case 14: case 15: o->multi = name[1]; break;
    case 16: o->shell_mode = 1; break;
    case 17: case 18: case 19: o->shell_mode = -1; break;
    case 20: case 21: o->out = OUT_LINEBUF; break;
    case 22: o->resume = RETRY_FAILED; break;
    case 23: case 24: o->pipe = true; break;
    case 25: o->bar = true; break;
    case 26: o->eta = true; break;
    default: return 1;
    }
    return 0;
}

/* An option that takes a value: its forms, what the value is, its parser. */
static const struct valopt {
    const char *shrt, *lng, *what;         /* "-j", "--jobs", "a number of jobs" */
    int (*set)(run_opts *o, const char *v); /* 0, or -1 after a message */
} valopts[] = {
    {"-j", "--jobs", "a number of jobs", parse_jobs},
    {"-a", "--arg-file", "a file", add_file},
    {"-d", "--delimiter", "a delimiter", parse_delim},
    {"-C", "--colsep", "a regular expression", set_colsep},
    {"", "--header", "':'", set_header},
    {"", "--tagstring", "a string", set_tagstring},
    {"", "--joblog", "a file", set_joblog},
    {"", "--timeout", "seconds", parse_timeout},
    {"", "--termseq", "a sequence", parse_termseq},
    {"", "--retries", "a number", set_retries},
    {"", "--halt", "a condition", parse_halt},
    {"", "--halt-on-error", "a condition", parse_halt},
    {"-N", "--max-args", "a number", set_max_args},
    {"", "--results", "a directory", set_results},
    {"", "--block", "a size", parse_block},
    {"", "--block-size", "a size", parse_block},
    {"", "--recend", "a string", set_recend},
    {"", "--recstart", "a string", set_recstart},
};

/* The value of option argv[*i] ("-j N", "-jN", "--jobs=N"), or NULL. */
static const char *opt_value(int argc, char **argv, int *i, const struct valopt *v)
{
    const char *a = argv[*i];
    size_t ls = strlen(v->shrt), ll = strlen(v->lng);
    if ((ls && strcmp(a, v->shrt) == 0) || strcmp(a, v->lng) == 0)
        return *i + 1 < argc ? argv[++*i] : NULL;
    if (ls && strncmp(a, v->shrt, ls) == 0)
        return a + ls;
    return a + ll + 1; /* --long=VALUE */
}

static bool is_opt(const char *a, const struct valopt *v)
{
    size_t ls = strlen(v->shrt), ll = strlen(v->lng);
    return (ls && strncmp(a, v->shrt, ls) == 0) ||
           (strncmp(a, v->lng, ll) == 0 && (a[ll] == '\0' || a[ll] == '='));
}

/* Parse one option at argv[*i]: 0, 1 after --help, -1 on error. */
static int parse_option(run_opts *o, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
        return run_usage(stdout), 1;
    if (set_flag(o, a) == 0)
        return 0;
    for (size_t k = 0; k < sizeof valopts / sizeof valopts[0]; k++) {
        if (!is_opt(a, &valopts[k]))
            continue;
        const char *v = opt_value(argc, argv, i, &valopts[k]);
        if (!v)
            return run_fail("%s needs a value", a);
        return valopts[k].set(o, v);
    }
    return run_fail("unknown option '%s'", a);
}

/* 1: ":::", 2: "::::", plus 2 for the linked forms; 0 otherwise. */
static int sep_kind(const char *a)
{
    static const char *const seps[] = {":::", "::::", ":::+", "::::+"};
    for (int k = 0; k < 4; k++)
        if (strcmp(a, seps[k]) == 0)
            return k + 1;
    return 0;
}

/* The sources after the command: argv[i] is a separator. */
static int parse_sources(run_opts *o, int argc, char **argv, int i)
{
    while (i < argc) {
        int kind = sep_kind(argv[i]);
        bool files = kind % 2 == 0, linked = kind > 2;
        if (linked && o->in.nsrc == 0)
            return run_fail("%s: no source before it to link to", argv[i]);
        source *s = files ? NULL : inputs_add(&o->in);
        if (s)
            s->linked = linked;
        for (i++; i < argc && !sep_kind(argv[i]); i++) {
            if (files && add_file(o, argv[i]) < 0)
                return -1;
            if (files)
                o->in.src[o->in.nsrc - 1].linked = linked;
            else
                source_push(s, argv[i]);
        }
    }
    return 0;
}

/* --header: the command words with {name} rewritten as {n}. */
static void rewrite_names(run_opts *o)
{
    o->own_cmd = xmalloc((size_t)o->ncmd * sizeof *o->own_cmd);
    for (int i = 0; i < o->ncmd; i++)
        o->own_cmd[i] = header_rewrite(&o->in, o->cmd[i]);
    o->cmd = o->own_cmd;
}

/* -X, -m: as many inputs per job as fit (about 120 kB: a shell script is
 * one argument, of at most 128 KiB), shared evenly between -j jobs. */
static void fit_args(run_opts *o)
{
    o->in.max_chars = 120000;
    o->in.max_args = LONG_MAX;
    if (o->jobs > 1) {
        long total = inputs_total(&o->in);
        o->in.max_args = total < 1 ? 1 : (total + o->jobs - 1) / o->jobs;
    }
}

/* --retry-failed: each job is `/bin/sh -c` the command in the joblog. */
static char *retry_words[] = {"/bin/sh", "-c", "{}"};

static int prepare_retry(run_opts *o)
{
    if (retry_failed_load(o) < 0)
        return -1;
    o->cmd = retry_words;
    o->ncmd = 3;
    o->shell_mode = -1;
    o->multi = 0;
    return inputs_prepare(&o->in) < 0 ? -1 : 0;
}

static int prepare(run_opts *o)
{
    if (o->resume == RETRY_FAILED)
        return prepare_retry(o);
    if (o->pipe && o->in.nsrc > 0)
        return run_fail("--pipe: inputs come from stdin, not from %s", ":::");
    if (o->pipe && (o->multi || o->in.header)) /* GNU's records per block */
        return run_fail("--pipe: %s is not supported with it",
                        o->multi ? "-N, -X or -m" : "--header");
    if (!o->pipe && o->in.nsrc == 0 && add_file(o, "-") < 0)
        return -1;
    bool fit = o->multi == 'X' || o->multi == 'm';
    o->in.slurp_all |= o->halt_pct > 0 || (fit && o->jobs > 1) || o->bar || o->eta;
    if (o->multi == 'N')
        o->in.max_chars = SIZE_MAX;
    int r = inputs_prepare(&o->in);
    if (r < 0) {
        fprintf(stderr, "concur run: cannot read input: %s\n", strerror(-r));
        return -1;
    }
    if (fit)
        fit_args(o);
    if (o->in.header)
        rewrite_names(o);
    return 0;
}

/* Whether the command words are none, or only blanks ("$CMD" unset): the
 * shell would make the first input the command, which it never is. */
static bool blank_words(char **words, int n)
{
    for (int i = 0; i < n; i++)
        if (words[i][strspn(words[i], " \t\n")])
            return false;
    return true;
}

int run_parse_args(run_opts *o, int argc, char **argv)
{
    *o = (run_opts){.jobs = cpu_count(), .retries = 1, .block = 1 << 20,
                    .termseq = {15, 200, 15, 100, 15, 50, 9, 25}, .nterm = 4};
    o->in.delim = '\n';
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
    while (i < argc && !sep_kind(argv[i]))
        i++;
    o->ncmd = (int)(argv + i - o->cmd);
    if (blank_words(o->cmd, o->ncmd) && o->resume != RETRY_FAILED)
        return run_fail("no command given%s", "");
    if (parse_sources(o, argc, argv, i) < 0)
        return -1;
    return prepare(o);
}

void run_opts_free(run_opts *o)
{
    inputs_free(&o->in);
    for (int i = 0; o->own_cmd && i < o->ncmd; i++)
        free(o->own_cmd[i]);
    free(o->own_cmd);
    free(o->retry_seqs);
}
