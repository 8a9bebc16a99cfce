/*
 * runner.h: the state of one `concur run`, shared by run.c (starting and
 * waiting), job_end.c (what happens when a job ends, timeouts, --halt) and
 * joblog.c (--joblog, --resume).
 */
#ifndef CONCUR_TOOLS_RUNNER_H
#define CONCUR_TOOLS_RUNNER_H

#include "run.h"

#include <concur/subprocess.h>

#include <stdint.h>

/* A slot: one running job. */
typedef struct job {
    cc_process *proc; /* the child; NULL while the slot is free */
    outpair *out;     /* where its stdout and stderr go (NULL: -u) */
    long seq;         /* its sequence number ({#}), from 1 */
    long attempts;    /* times it was started (--retries) */
    int64_t start;    /* when it started (cc_now), when timed or logged */
    double start_real; /* when it started, in Unix seconds (--joblog) */
    int64_t due;      /* when the next --termseq step is due (0: none) */
    int kstage;       /* the next --termseq step */
    bool timed_out;   /* --timeout stopped it */
    char *cmdline;    /* its command, quoted (--joblog, --timeout, --halt) */
    char **vals;      /* --retries: a copy of its values, to start it again */
    int nvals;        /* how many vals */
    char *resdir;     /* --results: its directory */
    int pipe[2];      /* --line-buffer: its stdout, stderr pipes (else -1) */
    strbuf pend[2];   /* --line-buffer: their bytes not yet printed */
    char *tag;        /* --line-buffer --tag: its lines' prefix, or NULL */
    long long received; /* --line-buffer: bytes of stdout (--joblog) */
    int in_fd;        /* --pipe: its block (a memfd), else -1 */
} job;

/* A free slot. */
#define JOB_FREE ((job){.pipe = {-1, -1}, .in_fd = -1})

/* The epoll cookie of slot i's pidfd (kind 0) or pipe (1: stdout, 2: stderr). */
static inline uint64_t cookie_of(long i, int kind)
{
    return (uint64_t)i * 4 + (uint64_t)kind;
}

/* -k: a job that ended before its turn to print. */
typedef struct held {
    outpair *out; /* its output, or NULL when it wrote nothing */
    bool done;    /* it ended: print it when its turn comes */
} held;

/* Everything one run needs. */
typedef struct runner {
    run_opts *o;      /* the options and inputs */
    tmpl t;           /* the command template */
    expansion x;      /* the current job's command, reused */
    outpool pool;     /* output files, reused */
    strbuf scratch;   /* a reused buffer (command lines, tags) */
    job *slots;       /* the slots, grown up to o->jobs */
    long nslots;      /* slots allocated */
    long free_hint;   /* no free slot below this index */
    long running;     /* jobs running */
    int epfd;         /* epoll over the running jobs' pidfds */
    int devnull;      /* every job's stdin (as GNU parallel's) */
    int sigfd;        /* signalfd of SIGINT, SIGTERM, SIGHUP, SIGPIPE */
    long next_seq;    /* the sequence number of the next job */
    long next_print;  /* -k: the job whose output is printed next */
    held *ring;       /* -k: held jobs, at seq % span */
    long span;        /* -k: ring entries */
    long held_outs;   /* -k: held jobs that keep output files */
    long started;     /* jobs started (retries not counted) */
    long completed;   /* jobs that ended */
    long failed;      /* jobs that failed (exit status != 0, signal) */
    bool input_done;  /* no input left, reading it failed, or --halt */
    bool error;       /* an error of our own: exit 255 */
    bool keep_cmdline; /* jobs keep their command line (job.cmdline) */
    bool timed;       /* jobs have deadlines (--timeout) */
    FILE *joblog;     /* --joblog, or NULL */
    uint8_t *skip;    /* --resume: bit seq set: do not run job seq */
    long nskip;       /* bits in skip */
    double *runtimes; /* --timeout N%: the last runtimes, in seconds */
    long nruntimes;   /* how many runtimes were recorded (all time) */
    double median;    /* --timeout N%: their median */
    long total;       /* --halt N%: the number of jobs */
    bool halted;      /* --halt triggered */
    int halt_status;  /* --halt: the exit status it chose (when halted) */
    bool halt_status_set; /* halt_status is set */
    int signalled;    /* the first SIGINT/SIGTERM/SIGHUP we got (else 0) */
    int64_t kill_at;  /* after it: when the jobs left get SIGKILL (else 0) */
    blockreader blocks; /* --pipe: stdin, cut into blocks */
    int next_in;      /* --pipe: the block of the job being started, or -1 */
    bool progress;    /* --bar, --eta, and stderr is a terminal */
    long ptotal;      /* --bar, --eta: the number of jobs (0: unknown) */
    int64_t t0;       /* --bar, --eta: when the run started (cc_now) */
    int64_t last_draw; /* --bar, --eta: when the line was last drawn */
} runner;

/* job_end.c */
void reap(runner *r, long i);
void skip_job(runner *r, long seq);
void job_failed_to_start(runner *r, long i, const char *what, int err);
void free_slot(runner *r, long i);
void arm_timeout(runner *r, job *j);
/* The time until the next --termseq step is due, in ms for epoll (-1: none). */
int next_due_ms(runner *r);
/* Do the --termseq steps that are due. */
void run_due(runner *r);
int run_status(const runner *r);

/* linebuf.c */
int lb_open(job *j, int child[2]);
void lb_watch(runner *r, long i);
void lb_read(runner *r, long i, int k);
void lb_finish(runner *r, job *j);
void lb_close(job *j);

/* results.c */
char *results_dir(const char *dir, const inputs *in);
void results_save(runner *r, const job *j);

/* run.c */
int spawn_job(runner *r, job *j);
void watch(runner *r, long i);

/* progress.c */
void progress_start(runner *r);
void progress_tick(runner *r);
void progress_end(runner *r);

/* joblog.c */
int joblog_open(runner *r);
void joblog_write(runner *r, const job *j, int exitval, int sig, off_t received);
int resume_load(runner *r);
bool resume_skips(const runner *r, long seq);

#endif
