/*
 * progress.c: --bar and --eta: progress on stderr, when it is a terminal.
 *
 * DESIGN. The runner calls progress_tick after each round of its loop (a job
 * started or ended, a timer fired); at most every PROGRESS_EVERY it rewrites
 * one line on stderr, starting with a carriage return: --bar a bar with the
 * percentage of jobs done, their count and the ETA; --eta GNU parallel's
 * "ETA: Ns Left: N AVG: Ns" line. The ETA is the mean time per completed
 * job (wall clock since the start over jobs done) times the jobs left, as
 * GNU parallel estimates it. The number of jobs is known when every input
 * was read first (--bar and --eta read them all, as GNU's --eta does); with
 * --pipe it is not, and only counts are shown. progress_end draws the last
 * line (100%) and ends it. When stderr is not a terminal, nothing is printed
 * (GNU parallel prints it anyway, into logs).
 */
#include "runner.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The line is redrawn at most this often. */
#define PROGRESS_EVERY (100 * CC_MSEC)
/* Cells of the --bar. */
#define BAR_WIDTH 30

void progress_start(runner *r)
{
    run_opts *o = r->o;
    r->progress = (o->bar || o->eta) && !o->dry_run && isatty(STDERR_FILENO);
    if (!r->progress)
        return;
    r->t0 = cc_now();
    r->ptotal = o->pipe ? 0 : inputs_total(&o->in);
    if (o->in.max_args > 0 && o->in.max_args < r->ptotal)
        r->ptotal = (r->ptotal + o->in.max_args - 1) / o->in.max_args;
}

static void draw(runner *r, int64_t now)
{
    long done = r->completed, total = r->ptotal >= done ? r->ptotal : 0;
    double avg = done ? (double)(now - r->t0) / 1e9 / (double)done : 0;
    long left = total ? total - done : r->running;
    double eta = avg * (double)left;
    int pct = total ? (int)(100 * done / total) : 0;
    char line[160];
    if (r->o->bar) {
        char bar[BAR_WIDTH + 1];
        int full = total ? (int)(BAR_WIDTH * done / total) : 0;
        memset(bar, '#', (size_t)full);
        memset(bar + full, '.', (size_t)(BAR_WIDTH - full));
        bar[BAR_WIDTH] = '\0';
        snprintf(line, sizeof line, "\r%3d%% [%s] %ld/%ld ETA %.0fs ", pct, bar, done,
                 total ? total : r->started, eta);
    } else {
        snprintf(line, sizeof line,
                 "\rETA: %.0fs Left: %ld AVG: %.2fs  local:%ld/%ld/%d%%/%.1fs ", eta,
                 left, avg, r->running, done, pct, avg);
    }
    fputs(line, stderr);
    fflush(stderr);
    r->last_draw = now;
}

void progress_tick(runner *r)
{
    if (!r->progress)
        return;
    int64_t now = cc_now();
    if (now - r->last_draw >= PROGRESS_EVERY)
        draw(r, now);
}

void progress_end(runner *r)
{
    if (!r->progress)
        return;
    r->ptotal = r->completed; /* what ran is all there was: 100% */
    draw(r, cc_now());
    fputc('\n', stderr);
}
