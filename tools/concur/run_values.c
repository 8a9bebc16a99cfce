/*
 * run_values.c: the values of `concur run`'s options that need more than a
 * number: -j (N, N%, +N, -N, 0), -d (C escapes), --timeout (SECS, N%),
 * --termseq and --halt, each as GNU parallel reads it. Each parser returns 0,
 * or -1 after printing what is wrong.
 */
#include "run.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

/* The most jobs at once that we accept (each costs up to four fds). */
#define RUN_MAX_JOBS 100000
/* -j 0, "as many as possible": this many (fewer if fds run short). */
#define RUN_JOBS_AUTO 256

int run_fail(const char *fmt, const char *arg)
{
    fputs("concur run: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\nTry 'concur run --help'.\n", stderr);
    return -1;
}

long cpu_count(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    return 1;
}

/* A whole number from 0 to INT_MAX that fills all of s: it, or -1 (so that
 * it fits an int, and -j's arithmetic on it a long). */
static long whole(const char *s)
{
    char *end;
    errno = 0;
    long n = strtol(s, &end, 10);
    if (*s < '0' || *s > '9' || *end || errno || n < 0 || n > INT_MAX)
        return -1;
    return n;
}

int parse_jobs(run_opts *o, const char *s)
{
    size_t len = strlen(s);
    long n, cpus = cpu_count();
    if (len > 1 && s[len - 1] == '%') {
        char *num = strndup(s, len - 1);
        n = whole(num);
        free(num);
        n = n < 0 ? -1 : n * cpus / 100;
    } else if (*s == '+' || *s == '-') {
        n = whole(s + 1);
        if (n >= 0)
            n = *s == '+' ? cpus + n : cpus - n < 1 ? 1 : cpus - n;
    } else {
        n = whole(s);
        n = n == 0 ? RUN_JOBS_AUTO : n;
    }
    if (n < 0)
        return run_fail("-j: '%s' is not N, N%%, +N, -N or 0", s);
    if (n > RUN_MAX_JOBS)
        return run_fail("-j: '%s' is too many jobs at once (at most 100000)", s);
    o->jobs = n < 1 ? 1 : n; /* GNU parallel: at least one */
    return 0;
}

/* One C escape after a backslash at *p: the byte, or -1. */
static int unescape(const char **p)
{
    static const char from[] = "abfnrtv\\", to[] = "\a\b\f\n\r\t\v\\";
    const char *c = strchr(from, **p);
    if (**p && c)
        return (*p)++, to[c - from];
    int base = **p == 'x' ? 16 : 8, v = 0, digits = 0;
    if (base == 16)
        (*p)++;
    for (; digits < (base == 16 ? 2 : 3); digits++, (*p)++) {
        const char *d = strchr("0123456789abcdef", **p | 0x20);
        if (!**p || !d || d - "0123456789abcdef" >= base)
            break;
        v = v * base + (int)(d - "0123456789abcdef");
    }
    return digits ? v : -1;
}

int parse_delim(run_opts *o, const char *s)
{
    const char *p = s;
    int c = *p == '\\' ? (p++, unescape(&p)) : (unsigned char)*p++;
    if (c < 0 || *p || !*s)
        return run_fail("-d: '%s' is not one character (or a C escape like \\n,"
                        " \\0, \\x1f)", s);
    o->in.delim = c;
    return 0;
}

/* Seconds with an optional unit (s, m, h, d), as GNU parallel's times. */
static double seconds(const char *s)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || !(v >= 0) || isinf(v))
        return -1;
    double unit = !*end ? 1 : !strcmp(end, "s") ? 1 : !strcmp(end, "m") ? 60
                : !strcmp(end, "h") ? 3600 : !strcmp(end, "d") ? 86400 : -1;
    return unit < 0 ? -1 : v * unit;
}

int parse_timeout(run_opts *o, const char *s)
{
    size_t len = strlen(s);
    if (len > 1 && s[len - 1] == '%') {
        char *num = strndup(s, len - 1);
        double pct = seconds(num);
        free(num);
        if (pct <= 0)
            return run_fail("--timeout: '%s' is not a percentage", s);
        o->timeout_pct = pct / 100;
        return 0;
    }
    double t = seconds(s);
    if (t <= 0)
        return run_fail("--timeout: '%s' is not a number of seconds", s);
    o->timeout = t;
    return 0;
}

static const struct { const char *name; int sig; } signals[] = {
    {"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"KILL", SIGKILL},
    {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"PIPE", SIGPIPE}, {"ALRM", SIGALRM},
    {"TERM", SIGTERM}, {"CONT", SIGCONT}, {"STOP", SIGSTOP}, {"TSTP", SIGTSTP},
};

static int signal_number(const char *s)
{
    if (strncmp(s, "SIG", 3) == 0)
        s += 3;
    for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++)
        if (strcmp(s, signals[i].name) == 0)
            return signals[i].sig;
    long n = whole(s);
    return n > 0 && n < NSIG ? (int)n : -1;
}

int parse_termseq(run_opts *o, const char *s)
{
    char *copy = xstrdup(s), *save = NULL;
    int n = 0;
    for (char *w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
        long v = n % 2 ? whole(w) : signal_number(w);
        if (v < 0 || n == 2 * TERMSEQ_MAX) {
            free(copy);
            return run_fail("--termseq: '%s' is not SIGNAL,MS,SIGNAL,MS...", s);
        }
        o->termseq[n++] = (int)v;
    }
    free(copy);
    if (n == 0)
        return run_fail("--termseq: '%s' is empty", s);
    if (n % 2)
        o->termseq[n++] = 25; /* a last signal without a wait */
    o->nterm = n / 2;
    return 0;
}

/* --halt WHY=VALUE: VALUE is N or N%. */
static int halt_value(run_opts *o, const char *v)
{
    size_t len = strlen(v);
    bool pct = len > 1 && v[len - 1] == '%';
    char *num = strndup(v, pct ? len - 1 : len);
    long n = whole(num);
    free(num);
    if (n < 0 || (pct && (n == 0 || n > 100)))
        return -1;
    o->halt_count = pct ? 0 : n;
    o->halt_pct = pct ? n / 100.0 : 0;
    return 0;
}

static const struct { const char *old, *now; } halt_short[] = {
    {"0", "never"},           {"1", "soon,fail=1"},    {"2", "now,fail=1"},
    {"-1", "soon,success=1"}, {"-2", "now,success=1"},
};

/* GNU parallel's short forms of --halt, in the long form. */
static const char *halt_long_form(const char *s, char *buf, size_t n)
{
    for (size_t i = 0; i < sizeof halt_short / sizeof halt_short[0]; i++)
        if (strcmp(s, halt_short[i].old) == 0)
            return halt_short[i].now;
    if (*s >= '0' && *s <= '9' && s[strlen(s) - 1] == '%') {
        snprintf(buf, n, "soon,fail=%s", s); /* P%: soon,fail=P% */
        return buf;
    }
    return s;
}

/* The index of the prefix of *v among words (advancing *v past it), or -1. */
static int prefix_of(const char **v, const char *const *words, int n)
{
    for (int k = 0; k < n; k++)
        if (strncmp(*v, words[k], strlen(words[k])) == 0)
            return *v += strlen(words[k]), k;
    return -1;
}

int parse_halt(run_opts *o, const char *s)
{
    static const char *const whens[] = {"soon,", "now,"};
    static const char *const whys[] = {"fail=", "success=", "done="}; /* halt_why */
    char buf[64];
    const char *v = halt_long_form(s, buf, sizeof buf);
    if (strcmp(v, "never") == 0)
        return o->halt_when = HALT_NEVER, 0;
    int when = prefix_of(&v, whens, 2);
    int why = when < 0 ? -1 : prefix_of(&v, whys, 3);
    if (why < 0 || halt_value(o, v) < 0)
        return run_fail("--halt: '%s' is not now|soon,fail|success|done=N|N%%", s);
    o->halt_when = when ? HALT_NOW : HALT_SOON;
    o->halt_why = (enum halt_why)why;
    return 0;
}
