/*
 * joblog.c: --joblog, --resume and --resume-failed of `concur run`.
 *
 * DESIGN. The joblog is GNU parallel's: a header line, then one line per
 * ended job, tab-separated: Seq, Host (":", this machine), Starttime (Unix
 * seconds, 3 decimals), JobRuntime (seconds, "%10.3f"), Send (0), Receive
 * (bytes of stdout), Exitval (-1 after --timeout), Signal, Command (as
 * --dry-run prints it). Lines are written whole as jobs end (line-buffered),
 * so a run killed midway leaves a log of what ended. --resume reads the log
 * of an earlier run first and skips every job whose sequence number is in
 * it; --resume-failed skips only those that succeeded. Both append.
 */
#include "runner.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char header[] =
    "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n";

int joblog_open(runner *r)
{
    const run_opts *o = r->o;
    bool append = o->joblog_append || o->resume != RESUME_NONE; /* retry too */
    r->joblog = fopen(o->joblog, append ? "ae" : "we");
    if (!r->joblog) {
        fprintf(stderr, "concur run: cannot open the joblog '%s': %s\n", o->joblog,
                strerror(errno));
        return -1;
    }
    setvbuf(r->joblog, NULL, _IOLBF, 0);
    struct stat st;
    if (fstat(fileno(r->joblog), &st) == 0 && st.st_size == 0)
        fputs(header, r->joblog);
    return 0;
}

void joblog_write(runner *r, const job *j, int exitval, int sig, off_t received)
{
    double runtime = (double)(cc_now() - j->start) / CC_SEC;
    long seq = r->o->retry_seqs ? r->o->retry_seqs[j->seq - 1] : j->seq;
    fprintf(r->joblog, "%ld\t:\t%.3f\t%10.3f\t0\t%lld\t%d\t%d\t%s\n", seq,
            j->start_real, runtime, (long long)received, exitval, sig, j->cmdline);
}

static void mark(runner *r, long seq)
{
    if (seq >= r->nskip) {
        long n = r->nskip ? r->nskip : 1024;
        while (n <= seq)
            n *= 2;
        r->skip = xrealloc(r->skip, (size_t)n / 8);
        memset(r->skip + r->nskip / 8, 0, (size_t)(n - r->nskip) / 8);
        r->nskip = n;
    }
    r->skip[seq / 8] |= (uint8_t)(1u << (seq % 8));
}

bool resume_skips(const runner *r, long seq)
{
    return seq < r->nskip && (r->skip[seq / 8] >> (seq % 8) & 1);
}

/* One line of an earlier joblog: mark its job if it is to be skipped. */
static void resume_line(runner *r, const char *line)
{
    long seq;
    int exitval, sig;
    if (sscanf(line, "%ld\t%*[^\t]\t%*s\t%*s\t%*s\t%*s\t%d\t%d", &seq, &exitval,
               &sig) != 3 || seq < 1)
        return; /* the header, or not ours */
    if (r->o->resume == RESUME_ALL || (exitval == 0 && sig == 0))
        mark(r, seq);
}

int resume_load(runner *r)
{
    if (!r->o->joblog) {
        fputs("concur run: --resume and --resume-failed need --joblog\n", stderr);
        return -1;
    }
    FILE *f = fopen(r->o->joblog, "re");
    if (!f)
        return errno == ENOENT ? 0 : -1; /* no log yet: nothing ran */
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0)
        resume_line(r, line);
    free(line);
    fclose(f);
    mark(r, 0); /* allocate, so that r->skip says "resuming" */
    return 0;
}

/* --retry-failed: the last line of each job in the joblog. */
typedef struct logged {
    char *cmd;   /* its command (allocated), or NULL when none was logged */
    bool failed; /* it failed */
} logged;

/* Parse a joblog line into *seq and l: 0, or -1 for the header or junk. */
static int parse_logged(char *line, long *seq, logged *l)
{
    int exitval, sig, cmd_at = 0;
    if (sscanf(line, "%ld\t%*[^\t]\t%*s\t%*s\t%*s\t%*s\t%d\t%d\t%n", seq, &exitval, &sig,
               &cmd_at) != 3 || *seq < 1 || !cmd_at)
        return -1;
    line[strcspn(line, "\n")] = '\0';
    l->cmd = xstrdup(line + cmd_at);
    l->failed = exitval != 0 || sig != 0;
    return 0;
}

static logged *read_log(FILE *f, long *n)
{
    logged *log = NULL;
    char *line = NULL;
    size_t cap = 0;
    *n = 0;
    while (getline(&line, &cap, f) > 0) {
        long seq;
        logged l;
        if (parse_logged(line, &seq, &l) < 0)
            continue;
        if (seq > *n) {
            log = xrealloc(log, (size_t)seq * sizeof *log);
            memset(log + *n, 0, (size_t)(seq - *n) * sizeof *log);
            *n = seq;
        }
        free(log[seq - 1].cmd);
        log[seq - 1] = l;
    }
    free(line);
    return log;
}

int retry_failed_load(run_opts *o)
{
    FILE *f = o->joblog ? fopen(o->joblog, "re") : NULL;
    if (!f) {
        fprintf(stderr, "concur run: --retry-failed needs a readable --joblog: %s\n",
                o->joblog ? strerror(errno) : "none given");
        return -1;
    }
    long n;
    logged *log = read_log(f, &n);
    fclose(f);
    inputs_free(&o->in); /* the command line's inputs are ignored */
    o->in.delim = '\n';
    source *s = inputs_add(&o->in);
    s->name = o->joblog; /* its values are allocated */
    for (long k = 0; k < n; k++) {
        if (log[k].cmd && log[k].failed) {
            source_push(s, log[k].cmd);
            o->retry_seqs = xrealloc(o->retry_seqs, s->n * sizeof *o->retry_seqs);
            o->retry_seqs[s->n - 1] = k + 1;
        } else {
            free(log[k].cmd);
        }
    }
    free(log);
    return 0;
}
