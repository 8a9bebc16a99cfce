/*
 * job_end.c: what happens when a job of `concur run` ends, and what may end
 * it early.
 *
 * DESIGN. reap() collects a job's status; a failed job with attempts left
 * (--retries) starts again in the same slot, its output so far discarded.
 * Otherwise the job is logged (--joblog), counted, checked against --halt
 * (GNU parallel's rules, exit status included), and its output printed, or
 * held until its turn (-k). A job that ends after we stopped it (a signal
 * of ours, --halt now) is not logged, as in GNU parallel: it did not
 * finish, and --resume must run it again. --timeout gives each job a due
 * time; when it passes, the --termseq steps run one by one (a signal to
 * the job's whole process group, then a wait), driven by the runner's
 * epoll timeout (next_due_ms, run_due). --halt now runs the same steps on
 * every job.
 */
#include "runner.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

/* --timeout N%: the median is taken over at most this many last runtimes. */
#define RUNTIMES_MAX 999
/* A longer --timeout (about 31 years) is taken as this. */
#define TIMEOUT_MAX_S 1e9

void free_slot(runner *r, long i)
{
    job *j = &r->slots[i];
    free(j->cmdline);
    for (int k = 0; j->vals && k < j->nvals; k++)
        free(j->vals[k]);
    free(j->vals);
    free(j->resdir);
    free(j->tag);
    lb_close(j);
    if (j->in_fd >= 0)
        close(j->in_fd);
    *j = JOB_FREE;
    if (i < r->free_hint)
        r->free_hint = i;
}

/* ---- output ----------------------------------------------------------------- */

static void print_output(runner *r, outpair *out)
{
    if (!outpair_empty(out))
        outpair_flush(&r->pool, out);
    outpool_put(&r->pool, out);
}

static void print_held(runner *r)
{
    while (!(r->halted && r->o->halt_when == HALT_NOW)) { /* then: no more */
        held *h = &r->ring[r->next_print % r->span];
        if (!h->done)
            return;
        if (h->out) {
            print_output(r, h->out);
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
    if (!out)
        return;
    if (outpair_empty(out)) {
        outpool_put(&r->pool, out);
        return;
    }
    h->out = out;
    r->held_outs++;
}

/* Print job seq's output now or hold it (-k); NULL: it has none. */
static void output_ready(runner *r, long seq, outpair *out)
{
    if (r->o->keep_order && seq != r->next_print) {
        hold(r, seq, out);
        return;
    }
    if (out)
        print_output(r, out);
    if (r->o->keep_order) {
        r->next_print++;
        print_held(r);
    }
}

void skip_job(runner *r, long seq) { output_ready(r, seq, NULL); }

/* ---- --halt ------------------------------------------------------------------- */

/* Stop every running job: the --termseq steps, starting now. */
static void stop_all(runner *r)
{
    int64_t now = cc_now();
    for (long i = 0; i < r->nslots; i++)
        if (r->slots[i].proc && !r->slots[i].due)
            r->slots[i].due = now, r->slots[i].kstage = 0;
    r->timed = true;
}

/* n as a percentage of total, rounded up (GNU parallel's exit status). */
static int percent(long n, long total)
{
    return (int)ceil((double)n / (double)(total ? total : 1) * 100);
}

/* The exit status --halt chooses when it triggers (GNU parallel's rules). */
static void halt_status(runner *r, int exitval, int sig)
{
    const run_opts *o = r->o;
    if (o->halt_why == HALT_SUCCESS) {
        r->halt_status = 0, r->halt_status_set = true;
        return;
    }
    if (r->halt_status_set)
        return;
    double count = o->halt_pct ? r->total * o->halt_pct : (double)o->halt_count;
    if (o->halt_pct)
        r->halt_status = percent(r->failed, r->total);
    else
        r->halt_status = r->failed < RUN_EXIT_MAX_FAILED ? (int)r->failed
                                                         : RUN_EXIT_MAX_FAILED;
    if (count == 1)
        r->halt_status = exitval ? exitval : sig ? sig + 128 : 0;
    r->halt_status_set = true;
}

static void check_halt(runner *r, const job *j, bool failed, int exitval, int sig)
{
    const run_opts *o = r->o;
    long limit = o->halt_why == HALT_FAIL      ? (failed ? r->failed : -1)
                 : o->halt_why == HALT_SUCCESS ? (failed ? -1 : r->completed - r->failed)
                                               : r->completed;
    if (limit < 0)
        return;
    fprintf(stderr, "concur run: This job %s:\n%s\n",
            o->halt_why == HALT_DONE ? "finished" : failed ? "failed" : "succeeded",
            j->cmdline);
    double count = o->halt_pct ? r->total * o->halt_pct : (double)o->halt_count;
    if ((double)limit < count)
        return;
    halt_status(r, exitval, sig);
    r->halted = r->input_done = true;
    if (o->halt_when == HALT_NOW)
        stop_all(r);
}

int run_status(const runner *r)
{
    if (r->error || r->pool.write_err)
        return RUN_EXIT_ERROR;
    if (r->halt_status_set)
        return r->halt_status < 0 ? RUN_EXIT_ERROR : r->halt_status;
    if (r->o->halt_when != HALT_NEVER && r->o->halt_pct)
        return percent(r->failed, r->started);
    return r->failed > RUN_EXIT_MAX_FAILED - 1 ? RUN_EXIT_MAX_FAILED : (int)r->failed;
}

/* ---- --timeout ---------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* --timeout N%: record a runtime, update the median of the last ones. */
static void record_runtime(runner *r, double secs)
{
    if (!r->runtimes)
        r->runtimes = xmalloc(RUNTIMES_MAX * sizeof *r->runtimes);
    r->runtimes[r->nruntimes++ % RUNTIMES_MAX] = secs;
    long n = r->nruntimes < RUNTIMES_MAX ? r->nruntimes : RUNTIMES_MAX;
    double *sorted = xmalloc((size_t)n * sizeof *sorted);
    memcpy(sorted, r->runtimes, (size_t)n * sizeof *sorted);
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_double);
    r->median = sorted[(n - 1) / 2];
    free(sorted);
}

/* The job's time limit in ns, or 0 for none (yet). */
static int64_t time_limit(const runner *r)
{
    const run_opts *o = r->o;
    if (o->timeout <= 0 && r->nruntimes == 0)
        return 0; /* no median yet (GNU parallel: a million seconds) */
    double secs = o->timeout > 0 ? o->timeout : o->timeout_pct * r->median;
    if (secs > TIMEOUT_MAX_S)
        secs = TIMEOUT_MAX_S; /* in ns, more would not fit an int64_t */
    int64_t t = (int64_t)(secs * CC_SEC);
    return t > 0 ? t : 1;
}

void arm_timeout(runner *r, job *j)
{
    int64_t limit = r->timed ? time_limit(r) : 0;
    j->due = limit ? j->start + limit : 0;
    j->kstage = 0;
}

int next_due_ms(runner *r)
{
    int64_t first = r->kill_at, now = cc_now();
    for (long i = 0; i < r->nslots; i++) {
        int64_t d = r->slots[i].proc ? r->slots[i].due : 0;
        if (d && (!first || d < first))
            first = d;
    }
    if (!first)
        return -1;
    int64_t ms = (first - now + CC_MSEC - 1) / CC_MSEC;
    return first <= now ? 0 : ms > INT_MAX ? INT_MAX : (int)ms;
}

/* The next --termseq step of job j (due now). */
static void termseq_step(runner *r, job *j)
{
    const run_opts *o = r->o;
    if (j->kstage == 0 && !r->halted) {
        j->timed_out = true;
        fprintf(stderr, "concur run: Warning: This job was killed because it timed"
                        " out:\nconcur run: Warning: %s\n", j->cmdline);
    }
    kill(-cc_process_pid(j->proc), o->termseq[2 * j->kstage]);
    j->due = cc_now() + o->termseq[2 * j->kstage + 1] * CC_MSEC;
    if (++j->kstage >= o->nterm)
        j->due = 0; /* the last step was taken: wait for the end */
}

void run_due(runner *r)
{
    int64_t now = cc_now();
    if (r->kill_at && r->kill_at <= now) {
        r->kill_at = 0; /* the grace after a signal is over */
        for (long i = 0; i < r->nslots; i++)
            if (r->slots[i].proc)
                kill(-cc_process_pid(r->slots[i].proc), SIGKILL);
    }
    for (long i = 0; i < r->nslots; i++) {
        job *j = &r->slots[i];
        if (j->proc && j->due && j->due <= now)
            termseq_step(r, j);
    }
}

/* ---- the end of a job ----------------------------------------------------------- */

/* A failed job with attempts left starts again: 1, or 0 when it does not. */
static int retry(runner *r, long i)
{
    job *j = &r->slots[i];
    if (j->attempts >= r->o->retries || r->halted || r->signalled || !j->vals)
        return 0;
    j->timed_out = false;
    if (j->out)
        outpair_discard(&r->pool, j->out);
    tmpl_expand(&r->t, (const char *const *)j->vals, j->nvals, j->seq, i + 1, &r->x);
    if (spawn_job(r, j) < 0)
        return 0;
    watch(r, i);
    arm_timeout(r, j);
    return 1;
}

/* Job in slot i ended with this exit value and signal (0 if none). */
static void job_ended(runner *r, long i, int exitval, int sig)
{
    job *j = &r->slots[i];
    bool failed = exitval != 0 || sig != 0;
    bool discard = r->halted && r->o->halt_when == HALT_NOW;
    if (r->joblog && !discard && !r->signalled) /* stopped: not done */
        joblog_write(r, j, exitval, sig, j->out ? outpair_size(j->out) : j->received);
    if (r->o->timeout_pct > 0)
        record_runtime(r, (double)(cc_now() - j->start) / CC_SEC);
    if (j->resdir && !discard)
        results_save(r, j);
    discard |= j->resdir != NULL; /* --results: saved, not printed */
    r->completed++;
    r->failed += failed;
    if (r->o->halt_when != HALT_NEVER && !r->halted)
        check_halt(r, j, failed, exitval, sig);
    long seq = j->seq;
    outpair *out = j->out;
    if (discard && out)
        outpair_discard(&r->pool, out);
    free_slot(r, i);
    output_ready(r, seq, out);
}

void reap(runner *r, long i)
{
    job *j = &r->slots[i];
    int code;
    if (cc_process_poll(j->proc, &code) < 0)
        return; /* not yet: a spurious wakeup */
    cc_process_free(j->proc); /* closes the pidfd: epoll forgets it */
    j->proc = NULL;
    lb_finish(r, j); /* --line-buffer: its pipes still open */
    if (code != 0 && retry(r, i))
        return;
    r->running--;
    int sig = code < 0 ? -code : 0;
    job_ended(r, i, j->timed_out ? -1 : code < 0 ? 0 : code, sig);
}

/* A job that could not start: its message goes with its output. */
void job_failed_to_start(runner *r, long i, const char *what, int err)
{
    job *j = &r->slots[i];
    dprintf(j->out ? j->out->fd[1] : 2, "concur run: %s: %s\n", what,
            err == -ENOENT ? "command not found" : strerror(-err));
    job_ended(r, i, 127, 0);
}
