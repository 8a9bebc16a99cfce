/*
 * run.c: the runner of `concur run`: jobs in parallel, outputs grouped.
 *
 * DESIGN. One thread does everything, in a loop: start jobs while fewer than
 * -j run (reading the next input only then, so inputs are read lazily), then
 * sleep in epoll_wait on the pidfds of the running jobs, reap those that
 * ended and print their output whole (output.c). Each running job sits in a
 * slot (0..j-1, {%} is slot + 1); the slot's index is the epoll cookie. With
 * -k, a job that ends before its turn is held in a ring indexed by sequence
 * number, keeping its output files only if it wrote something; the ring's
 * size and a cap on held outputs bound what waiting for a slow job may cost:
 * at the cap, no new job starts until the slow one ends. Per job, the runner
 * costs a spawn (no shell unless needed: template.c), one epoll_ctl, one
 * waitid and two fstat calls: every buffer and output file is reused.
 */
#include "run.h"

#include <concur/subprocess.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

/* -k: at most this many ended jobs wait for their turn with output files. */
#define HOLD_MAX_OUTPUTS 256
/* -k: at most this many jobs (times -j) from the oldest unprinted one on. */
#define HOLD_SPAN_PER_JOB 64
#define HOLD_SPAN_MIN 4096
/* The epoll cookie of the signalfd (slots use their index). */
#define SIGNAL_COOKIE UINT64_MAX
/* After forwarding SIGINT/SIGTERM/SIGHUP, jobs get this long before SIGKILL. */
#define SIGNAL_GRACE (2 * CC_SEC)
/* fds we keep for ourselves beyond the jobs' (stdio, epoll, /dev/null...). */
#define FD_RESERVE 64

/* A slot: one running job. */
typedef struct job {
    cc_process *proc; /* the child; NULL while the slot is free */
    outpair *out;     /* where its stdout and stderr go */
    long seq;         /* its sequence number ({#}), from 1 */
} job;

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
    job *slots;       /* the slots, grown up to o->jobs */
    long nslots;      /* slots allocated */
    long free_hint;   /* no free slot below this index */
    long running;     /* jobs running */
    int epfd;         /* epoll over the running jobs' pidfds */
    int devnull;      /* every job's stdin (as GNU parallel's) */
    int sigfd;        /* signalfd of SIGINT, SIGTERM, SIGHUP */
    long next_seq;    /* the sequence number of the next job */
    long next_print;  /* -k: the job whose output is printed next */
    held *ring;       /* -k: held jobs, at seq % span */
    long span;        /* -k: ring entries */
    long held_outs;   /* -k: held jobs that keep output files */
    long failed;      /* jobs that failed (exit status != 0, signal) */
    bool input_done;  /* no input left (or reading it failed) */
    bool error;       /* an error of our own: exit 255 */
} runner;

/* Make room for every job's three fds; fewer jobs if the limit is too low. */
static void fit_fd_limit(runner *r)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    rlim_t want = (rlim_t)r->o->jobs * 3 + FD_RESERVE +
                  (r->o->keep_order ? 2 * HOLD_MAX_OUTPUTS : 0);
    if (rl.rlim_cur < want) {
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want
                                                                          : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur >= want)
        return;
    long fit = ((long)rl.rlim_cur - FD_RESERVE - 2 * HOLD_MAX_OUTPUTS) / 3;
    r->o->jobs = fit > 0 ? fit : 1;
    fprintf(stderr, "concur run: only enough file descriptors for %ld jobs at once\n",
            r->o->jobs);
}

static bool can_start(const runner *r)
{
    if (r->input_done || r->running >= r->o->jobs)
        return false;
    if (!r->o->keep_order)
        return true;
    return r->next_seq - r->next_print < r->span && r->held_outs < HOLD_MAX_OUTPUTS;
}

/* The lowest free slot, growing the slot array when every one is taken. */
static long take_slot(runner *r)
{
    for (long i = r->free_hint; i < r->nslots; i++)
        if (!r->slots[i].proc && !r->slots[i].out)
            return r->free_hint = i + 1, i;
    long n = r->nslots ? 2 * r->nslots : 8;
    if (n > r->o->jobs)
        n = r->o->jobs;
    r->slots = xrealloc(r->slots, (size_t)n * sizeof *r->slots);
    memset(r->slots + r->nslots, 0, (size_t)(n - r->nslots) * sizeof *r->slots);
    long i = r->nslots;
    r->nslots = n;
    r->free_hint = i + 1;
    return i;
}

static void free_slot(runner *r, long i)
{
    r->slots[i] = (job){0};
    if (i < r->free_hint)
        r->free_hint = i;
}

/* Print the output of a job (and, with -k, of those waiting behind it). */
static void print_output(runner *r, outpair *out)
{
    if (!outpair_empty(out))
        outpair_flush(&r->pool, out);
    outpool_put(&r->pool, out);
}

static void print_held(runner *r)
{
    for (;;) {
        held *h = &r->ring[r->next_print % r->span];
        if (!h->done)
            return;
        if (h->out) {
            outpair_flush(&r->pool, h->out);
            outpool_put(&r->pool, h->out);
            r->held_outs--;
        }
        *h = (held){0};
        r->next_print++;
    }
}

static void hold(runner *r, long seq, outpair *out)
{
    held *h = &r->ring[seq % r->span];
    h->done = true;
    if (outpair_empty(out)) {
        outpool_put(&r->pool, out);
        return;
    }
    h->out = out;
    r->held_outs++;
}

/* Job `seq` ended: count it, then print its output now or hold it (-k). */
static void job_ended(runner *r, long seq, outpair *out, bool failed)
{
    r->failed += failed;
    if (r->o->keep_order && seq != r->next_print) {
        hold(r, seq, out);
        return;
    }
    print_output(r, out);
    if (r->o->keep_order) {
        r->next_print++;
        print_held(r);
    }
}

/* A job that could not start: its message goes with its output. */
static void job_failed_to_start(runner *r, long seq, outpair *out, const char *what,
                                int err)
{
    dprintf(out->fd[1], "concur run: %s: %s\n", what,
            err == -ENOENT ? "command not found" : strerror(-err));
    job_ended(r, seq, out, true);
}

/* A program the kernel does not run (a script without #!) is run by /bin/sh,
 * as a shell (and so GNU parallel) would. */
static int spawn_script(job *j, char **argv, int argc, const cc_spawn_options *so)
{
    char **sh_argv = xmalloc((size_t)(argc + 2) * sizeof *sh_argv);
    sh_argv[0] = "/bin/sh";
    memcpy(sh_argv + 1, argv, (size_t)(argc + 1) * sizeof *argv);
    int err = cc_process_spawn(&j->proc, sh_argv, so);
    free(sh_argv);
    return err;
}

static int spawn_job(runner *r, job *j)
{
    cc_spawn_options so = {
        .stdin_io = {CC_STDIO_FD, r->devnull},
        .stdout_io = {CC_STDIO_FD, j->out->fd[0]},
        .stderr_io = {CC_STDIO_FD, j->out->fd[1]},
    };
    char **argv = r->x.argv;
    char *exe = NULL;
    if (!r->t.shell && !r->t.exe && !strchr(argv[0], '/')) {
        exe = path_search(argv[0]); /* a command made of the input */
        if (!exe)
            return -ENOENT;
        argv[0] = exe;
    }
    int err = cc_process_spawn(&j->proc, argv, &so);
    if (err == -ENOEXEC && !r->t.shell)
        err = spawn_script(j, argv, r->x.argc, &so);
    free(exe);
    return err;
}

static void watch(runner *r, long i)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)i};
    if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, cc_process_pidfd(r->slots[i].proc), &ev) < 0) {
        fprintf(stderr, "concur run: epoll_ctl: %s\n", strerror(errno));
        exit(RUN_EXIT_ERROR); /* cannot happen with a valid pidfd */
    }
}

/* Start the job for the current input. */
static void start_job(runner *r)
{
    long seq = r->next_seq++;
    long i = take_slot(r);
    job *j = &r->slots[i];
    tmpl_expand(&r->t, r->o->in.cur, seq, i + 1, &r->x);
    int err = outpool_get(&r->pool, &j->out);
    if (err < 0) {
        fprintf(stderr, "concur run: cannot create an output file: %s\n", strerror(-err));
        r->error = r->input_done = true;
        free_slot(r, i);
        return;
    }
    j->seq = seq;
    const char *name = r->x.text.data + (r->t.shell ? 0 : r->x.offs[0]);
    err = spawn_job(r, j);
    if (err < 0) {
        outpair *out = j->out;
        free_slot(r, i);
        job_failed_to_start(r, seq, out, name, err);
        return;
    }
    watch(r, i);
    r->running++;
}

/* Start jobs while slots and inputs allow. */
static void fill(runner *r)
{
    while (can_start(r)) {
        int got = inputs_next(&r->o->in);
        if (got <= 0) {
            if (got < 0)
                fprintf(stderr, "concur run: cannot read input: %s\n", strerror(-got));
            r->error |= got < 0;
            r->input_done = true;
            return;
        }
        start_job(r);
    }
}

/* The job in slot i ended (its pidfd is readable): reap it. */
static void reap(runner *r, long i)
{
    job *j = &r->slots[i];
    int code;
    if (cc_process_poll(j->proc, &code) < 0)
        return; /* not yet: a spurious wakeup */
    cc_process_free(j->proc); /* closes the pidfd: epoll forgets it */
    long seq = j->seq;
    outpair *out = j->out;
    free_slot(r, i);
    r->running--;
    job_ended(r, seq, out, code != 0);
}

/*
 * Jobs lead their own process groups (subprocess.h), so a Ctrl-C at the
 * terminal reaches only us: pass the signal on to every job's group, give them
 * SIGNAL_GRACE to end, kill the rest, then die of the same signal.
 */
static _Noreturn void die_of_signal(runner *r)
{
    struct signalfd_siginfo si = {.ssi_signo = SIGTERM};
    if (read(r->sigfd, &si, sizeof si) < 0)
        si.ssi_signo = SIGTERM;
    int sig = (int)si.ssi_signo;
    for (long i = 0; i < r->nslots; i++)
        if (r->slots[i].proc)
            kill(-cc_process_pid(r->slots[i].proc), sig); /* unreaped: ours */
    cc_deadline grace = cc_deadline_in(SIGNAL_GRACE);
    for (long i = 0; i < r->nslots; i++) {
        if (!r->slots[i].proc)
            continue;
        cc_process_wait(r->slots[i].proc, grace, NULL);
        cc_process_free(r->slots[i].proc); /* SIGKILLs a job still running */
    }
    fflush(NULL);
    signal(sig, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    raise(sig);
    _exit(128 + sig);
}

static int watch_signals(runner *r)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL); /* children start unblocked */
    r->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = SIGNAL_COOKIE};
    if (r->sigfd < 0 || epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->sigfd, &ev) < 0)
        return -1;
    return 0;
}

static void wait_jobs(runner *r)
{
    struct epoll_event ev[64];
    int n = epoll_wait(r->epfd, ev, 64, -1);
    if (n < 0 && errno != EINTR) {
        fprintf(stderr, "concur run: epoll_wait: %s\n", strerror(errno));
        exit(RUN_EXIT_ERROR);
    }
    for (int k = 0; k < n; k++)
        if (ev[k].data.u64 == SIGNAL_COOKIE)
            die_of_signal(r);
    for (int k = 0; k < n; k++)
        reap(r, (long)ev[k].data.u64);
}

static int dry_run(runner *r)
{
    int got;
    while ((got = inputs_next(&r->o->in)) > 0) {
        long seq = r->next_seq++;
        tmpl_expand(&r->t, r->o->in.cur, seq, (seq - 1) % r->o->jobs + 1, &r->x);
        expansion_print(&r->t, &r->x, stdout);
    }
    if (got < 0)
        fprintf(stderr, "concur run: cannot read input: %s\n", strerror(-got));
    return got < 0 ? RUN_EXIT_ERROR : 0;
}

static int runner_init(runner *r, run_opts *o)
{
    *r = (runner){.o = o, .next_seq = 1, .next_print = 1, .epfd = -1, .devnull = -1,
                  .sigfd = -1};
    tmpl_init(&r->t, o->cmd, o->ncmd, o->in.nsrc);
    if (o->dry_run)
        return 0;
    fit_fd_limit(r);
    r->epfd = epoll_create1(EPOLL_CLOEXEC);
    r->devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (r->epfd < 0 || r->devnull < 0 || watch_signals(r) < 0) {
        fprintf(stderr, "concur run: cannot start: %s\n", strerror(errno));
        return -1;
    }
    if (o->keep_order) {
        r->span = o->jobs * HOLD_SPAN_PER_JOB;
        r->span = r->span < HOLD_SPAN_MIN ? HOLD_SPAN_MIN : r->span;
        r->ring = xmalloc((size_t)r->span * sizeof *r->ring);
        memset(r->ring, 0, (size_t)r->span * sizeof *r->ring);
    }
    return 0;
}

static void runner_free(runner *r)
{
    tmpl_free(&r->t);
    expansion_free(&r->x);
    outpool_free(&r->pool);
    free(r->slots);
    free(r->ring);
    if (r->epfd >= 0)
        close(r->epfd);
    if (r->devnull >= 0)
        close(r->devnull);
    if (r->sigfd >= 0)
        close(r->sigfd);
}

int run_jobs(run_opts *o)
{
    runner r;
    int status = RUN_EXIT_ERROR;
    if (runner_init(&r, o) < 0)
        goto out;
    if (o->dry_run) {
        status = dry_run(&r);
        goto out;
    }
    for (fill(&r); r.running > 0; fill(&r))
        wait_jobs(&r);
    if (r.error || r.pool.write_err)
        status = RUN_EXIT_ERROR;
    else
        status = r.failed > RUN_EXIT_MAX_FAILED - 1 ? RUN_EXIT_MAX_FAILED : (int)r.failed;
out:
    runner_free(&r);
    return status;
}

int cmd_run(int argc, char **argv)
{
    run_opts o;
    int r = run_parse_args(&o, argc, argv);
    if (r != 0) {
        run_opts_free(&o);
        return r > 0 ? 0 : RUN_EXIT_ERROR;
    }
    fflush(stdout);
    int status = run_jobs(&o);
    run_opts_free(&o);
    return status;
}
