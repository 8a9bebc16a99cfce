/*
 * run.c: the runner of `concur run`: jobs in parallel, outputs grouped.
 *
 * DESIGN. One thread does everything, in a loop: start jobs while fewer than
 * -j run (reading the next input only then, so inputs are read lazily), then
 * sleep in epoll_wait on the pidfds of the running jobs (until the next
 * --timeout step is due, if any), reap those that ended and print their
 * output whole (job_end.c, output.c), or with --line-buffer, read the pipes
 * of those that wrote (linebuf.c). Each running job sits in a slot
 * (0..j-1, {%} is slot + 1); the slot's index is the epoll cookie. With -k,
 * a job that ends before its turn is held in a ring indexed by sequence
 * number, keeping its output files only if it wrote something; the ring's
 * size and a cap on held outputs bound what waiting for a slow job may cost:
 * at the cap, no new job starts until the slow one ends. Per job, the runner
 * costs a spawn (no shell unless needed: template.c), one epoll_ctl, one
 * waitid and two fstat calls (and a read of the signalfd when its input may
 * have blocked): every buffer and output file is reused; what only some
 * options need (a clock, the command line) is done only for them.
 */
#include "runner.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <time.h>
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
/* fds a job holds: its pidfd, two outputs, a --pipe block. */
#define FDS_PER_JOB 4

/* Make room for every job's fds; fewer jobs if the limit is too low. */
static void fit_fd_limit(runner *r)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    long hold_fds = r->o->keep_order ? 2 * HOLD_MAX_OUTPUTS : 0; /* -k's */
    rlim_t want = (rlim_t)(r->o->jobs * FDS_PER_JOB + FD_RESERVE + hold_fds);
    if (rl.rlim_cur < want) {
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want
                                                                          : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur >= want)
        return;
    long fit = ((long)rl.rlim_cur - FD_RESERVE - hold_fds) / FDS_PER_JOB;
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
    for (long k = r->nslots; k < n; k++)
        r->slots[k] = JOB_FREE;
    long i = r->nslots;
    r->nslots = n;
    r->free_hint = i + 1;
    return i;
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

/* Start r->x (the command of job j) in j. */
/* Spawn with its output going to the pipes of --line-buffer. */
static int spawn_piped(job *j, char **argv, const cc_spawn_options *so0, int argc,
                       bool script)
{
    int child[2];
    int err = lb_open(j, child);
    if (err < 0)
        return err;
    cc_spawn_options so = *so0;
    so.stdout_io = (cc_stdio){CC_STDIO_FD, child[0]};
    so.stderr_io = (cc_stdio){CC_STDIO_FD, child[1]};
    err = script ? spawn_script(j, argv, argc, &so)
                 : cc_process_spawn(&j->proc, argv, &so);
    close(child[0]);
    close(child[1]);
    if (err < 0)
        lb_close(j);
    return err;
}

int spawn_job(runner *r, job *j)
{
    if (j->in_fd >= 0 && lseek(j->in_fd, 0, SEEK_SET) < 0)
        return -errno; /* a retry reads its block from the start */
    cc_spawn_options so = {
        .stdin_io = {CC_STDIO_FD, j->in_fd >= 0 ? j->in_fd : r->devnull},
        .stdout_io = {CC_STDIO_FD, j->out ? j->out->fd[0] : STDOUT_FILENO},
        .stderr_io = {CC_STDIO_FD, j->out ? j->out->fd[1] : STDERR_FILENO},
    };
    bool piped = r->o->out == OUT_LINEBUF;
    char **argv = r->x.argv;
    j->attempts++;
    if (r->timed || r->joblog)
        j->start = cc_now();
    char *exe = NULL;
    if (!r->t.shell && !r->t.exe && !strchr(argv[0], '/')) {
        exe = path_search(argv[0]); /* a command made of the input */
        if (!exe)
            return -ENOENT;
        argv[0] = exe;
    }
    int err = piped ? spawn_piped(j, argv, &so, r->x.argc, false)
                    : cc_process_spawn(&j->proc, argv, &so);
    if (err == -ENOEXEC && !r->t.shell)
        err = piped ? spawn_piped(j, argv, &so, r->x.argc, true)
                    : spawn_script(j, argv, r->x.argc, &so);
    free(exe);
    return err;
}

void watch(runner *r, long i)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = cookie_of(i, 0)};
    if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, cc_process_pidfd(r->slots[i].proc), &ev) < 0) {
        fprintf(stderr, "concur run: epoll_ctl: %s\n", strerror(errno));
        exit(RUN_EXIT_ERROR); /* cannot happen with a valid pidfd */
    }
    if (r->slots[i].pipe[0] >= 0)
        lb_watch(r, i);
}

/* What only some options need: the command line, the values, the tag. */
static void note_job(runner *r, job *j, long slot)
{
    inputs *in = &r->o->in;
    if (r->keep_cmdline && r->o->retry_seqs) {
        j->cmdline = xstrdup(in->vals[0]); /* --retry-failed: as logged */
    } else if (r->keep_cmdline) {
        expansion_format(&r->t, &r->x, &r->scratch);
        j->cmdline = xstrdup(r->scratch.data);
    }
    if (r->joblog) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        j->start_real = (double)ts.tv_sec + ts.tv_nsec / 1e9;
    }
    if (r->o->retries > 1) {
        j->nvals = in->nvals;
        j->vals = xmalloc((size_t)(in->nvals + 1) * sizeof *j->vals);
        for (int k = 0; k < in->nvals; k++)
            j->vals[k] = xstrdup(in->vals[k]);
    }
    if (r->o->results)
        j->resdir = results_dir(r->o->results, in);
    if (r->o->tag && r->o->out != OUT_UNGROUP) {
        expand_string(r->o->tag, in->vals, in->nvals, j->seq, slot,
                      &r->scratch);
        *(j->out ? &j->out->tag : &j->tag) = xstrdup(r->scratch.data);
    }
}

/* Start the job for the current input. */
static void start_job(runner *r, long seq)
{
    long i = take_slot(r);
    job *j = &r->slots[i];
    j->in_fd = r->next_in; /* freed with the slot */
    r->next_in = -1;
    inputs *in = &r->o->in;
    tmpl_expand(&r->t, in->vals, in->nvals, seq, i + 1, &r->x);
    int err = r->o->out == OUT_GROUP ? outpool_get(&r->pool, &j->out) : 0;
    if (err < 0) {
        fprintf(stderr, "concur run: cannot create an output file: %s\n", strerror(-err));
        r->error = r->input_done = true;
        free_slot(r, i);
        return;
    }
    j->seq = seq;
    r->started++;
    note_job(r, j, i + 1);
    const char *name = r->x.text.data + (r->t.shell ? 0 : r->x.offs[0]);
    err = spawn_job(r, j);
    if (err < 0) {
        job_failed_to_start(r, i, name, err);
        return;
    }
    watch(r, i);
    arm_timeout(r, j);
    r->running++;
}

/* Read the next input (--pipe: the next block): 1, 0 at the end, -errno. */
static int next_input(runner *r)
{
    if (!r->o->pipe)
        return inputs_next(&r->o->in);
    r->o->in.vals = NULL;
    r->o->in.nvals = 0;
    return blockreader_next(&r->blocks, &r->next_in);
}

/* --pipe: close the block that was read for a job that does not start. */
static void drop_block(runner *r)
{
    if (r->next_in >= 0)
        close(r->next_in);
    r->next_in = -1;
}

/* Whether reading the next input may have blocked (a streamed source,
 * --pipe): a signal that came meanwhile was not seen by epoll_wait. */
static bool input_may_block(const runner *r)
{
    return r->o->pipe || (r->o->in.nsrc > 0 && r->o->in.src[0].stream);
}

static void on_signal(runner *r);

/* Start jobs while slots and inputs allow. */
static void fill(runner *r)
{
    while (can_start(r)) {
        int got = next_input(r);
        if (got > 0 && input_may_block(r))
            on_signal(r); /* one that came while we waited: start no job */
        if (got <= 0 || r->signalled) {
            if (got < 0)
                fprintf(stderr, "concur run: cannot read input: %s\n", strerror(-got));
            r->error |= got < 0;
            r->input_done = true;
            drop_block(r);
            return;
        }
        long seq = r->next_seq++;
        if (r->skip && resume_skips(r, seq)) {
            skip_job(r, seq);
            drop_block(r);
        }
        else
            start_job(r, seq);
    }
}

static void runner_free(runner *r);

/* Send sig to the process group of every running job. */
static void signal_jobs(runner *r, int sig)
{
    for (long i = 0; i < r->nslots; i++)
        if (r->slots[i].proc)
            kill(-cc_process_pid(r->slots[i].proc), sig); /* unreaped: ours */
}

/*
 * Jobs lead their own process groups (subprocess.h), so a Ctrl-C at the
 * terminal reaches only us. The first SIGINT, SIGTERM or SIGHUP stops
 * starting jobs and sends SIGTERM to every job's group (a job that ignores
 * SIGINT, as background jobs of a shell do, still stops); the jobs then
 * end as usual (printed, logged), those still running after SIGNAL_GRACE
 * are killed (run_due), and so are they all at a second signal. Once none
 * runs, we die of the first signal (die_now). epoll_wait sees signals only
 * while jobs run: one that comes while we wait for input is read after that
 * input (fill) and when the last job has ended (run_jobs). SIGPIPE is one
 * of them: when the reader of our stdout goes (| head), a write fails with
 * EPIPE and the jobs are stopped the same way, as GNU parallel's are,
 * instead of our dying at once and leaving them running unwatched.
 */
static void on_signal(runner *r)
{
    struct signalfd_siginfo si;
    if (read(r->sigfd, &si, sizeof si) != sizeof si)
        return;
    if (r->signalled) {
        if (si.ssi_signo != SIGPIPE) /* a later write to a gone reader */
            signal_jobs(r, SIGKILL);
        return;
    }
    r->signalled = (int)si.ssi_signo;
    r->input_done = true;
    signal_jobs(r, SIGTERM);
    r->kill_at = cc_now() + SIGNAL_GRACE;
    r->timed = true;
}

static _Noreturn void die_now(runner *r)
{
    int sig = r->signalled;
    fflush(NULL);
    runner_free(r);
    run_opts_free(r->o);
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
    /* Inherited as ignored, SIGCHLD would let the kernel reap our jobs
     * before we could: their status lost, spawns failing with ESRCH. */
    signal(SIGCHLD, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGPIPE); /* our stdout's reader went: writes fail EPIPE */
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
    int ms = r->timed ? next_due_ms(r) : -1;
    if (r->progress && (ms < 0 || ms > 1000))
        ms = 1000; /* the ETA moves on even when no job ends */
    int n = epoll_wait(r->epfd, ev, 64, ms);
    if (n < 0 && errno != EINTR) {
        fprintf(stderr, "concur run: epoll_wait: %s\n", strerror(errno));
        exit(RUN_EXIT_ERROR);
    }
    for (int k = 0; k < n; k++)
        if (ev[k].data.u64 == SIGNAL_COOKIE)
            on_signal(r);
    for (int k = 0; k < n; k++) {
        uint64_t c = ev[k].data.u64;
        if (c % 4 == 0)
            reap(r, (long)(c / 4));
        else if (c != SIGNAL_COOKIE)
            lb_read(r, (long)(c / 4), (int)(c % 4) - 1);
    }
    if (r->timed)
        run_due(r);
}

static int dry_run(runner *r)
{
    int got;
    inputs *in = &r->o->in;
    while ((got = next_input(r)) > 0) {
        drop_block(r); /* --pipe: its block is not shown */
        long seq = r->next_seq++;
        long slot = (seq - 1) % r->o->jobs + 1;
        tmpl_expand(&r->t, in->vals, in->nvals, seq, slot, &r->x);
        if (r->o->tag) {
            expand_string(r->o->tag, in->vals, in->nvals, seq, slot,
                          &r->scratch);
            printf("%s\t", r->scratch.data);
        }
        expansion_print(&r->t, &r->x, stdout);
    }
    if (got < 0)
        fprintf(stderr, "concur run: cannot read input: %s\n", strerror(-got));
    return got < 0 ? RUN_EXIT_ERROR : 0;
}

static int runner_setup(runner *r)
{
    run_opts *o = r->o;
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
    return o->joblog ? joblog_open(r) : 0;
}

static int runner_init(runner *r, run_opts *o)
{
    *r = (runner){.o = o, .next_seq = 1, .next_print = 1, .epfd = -1, .devnull = -1,
                  .sigfd = -1, .next_in = -1};
    if (o->pipe)
        blockreader_init(&r->blocks, o);
    tmpl_init(&r->t, o->cmd, o->ncmd, o->shell_mode);
    r->t.context = o->multi == 'X' || o->multi == 'N';
    if (o->results)
        o->out = OUT_GROUP; /* saved, not printed: captured in files */
    if (o->out == OUT_UNGROUP)
        o->keep_order = false; /* output is not held: there is no order */
    if (o->out == OUT_LINEBUF && o->keep_order)
        o->out = OUT_GROUP; /* -k holds output: whole jobs, in order */
    r->timed = o->timeout > 0 || o->timeout_pct > 0;
    r->keep_cmdline = o->joblog || r->timed || o->halt_when != HALT_NEVER;
    if (o->halt_pct > 0)
        r->total = inputs_total(&o->in);
    if ((o->resume == RESUME_ALL || o->resume == RESUME_FAILED) && resume_load(r) < 0)
        return -1;
    return o->dry_run ? 0 : runner_setup(r);
}

static void runner_free(runner *r)
{
    tmpl_free(&r->t);
    expansion_free(&r->x);
    for (long k = 0; r->ring && k < r->span; k++)
        if (r->ring[k].out) /* held, never printed: after --halt now */
            outpool_put(&r->pool, r->ring[k].out);
    outpool_free(&r->pool);
    sb_free(&r->scratch);
    free(r->slots);
    free(r->ring);
    free(r->skip);
    free(r->runtimes);
    blockreader_free(&r->blocks);
    if (r->joblog)
        fclose(r->joblog);
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
    progress_start(&r);
    for (fill(&r); r.running > 0; fill(&r)) {
        progress_tick(&r);
        wait_jobs(&r);
    }
    progress_end(&r);
    if (!r.signalled)
        on_signal(&r); /* one that came while no job ran (reading input) */
    if (r.signalled)
        die_now(&r);
    status = run_status(&r);
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
