/*
 * loop_diag.c: the loop's diagnostics (loop.h: cc_loop_set_diag,
 * cc_loop_dump, cc_loop_dump_on_sigquit). Off by default, at no cost but a
 * predictable branch per task switch.
 *
 * DESIGN. Stall detector: the loop thread notes, under a mutex, each time
 * it starts running a task (a switch count, the time, the task's name) and
 * when it is back in the scheduler; a watchdog thread per loop looks every
 * stall/4 ms and reports, once per stall, a task that has been running for
 * stall ms with no switch since, with a backtrace of the loop thread: it
 * sends the thread BT_SIGNAL, whose handler (on the alternate signal stack)
 * fills a per-thread buffer with backtrace() and answers through an atomic
 * counter; the watchdog, a normal thread, symbolises and prints. A loop
 * thread asleep in a system call (its /proc state) is not signalled: the
 * call would fail with EINTR. backtrace()
 * ran once when the loop started, so libgcc's unwinder is loaded and the
 * handler does not dlopen. Deadlock: when the loop is about to sleep
 * with no task ready, no timer (no task has a deadline) and no fd wait,
 * only another thread (or a signal handler) could wake a task. If the
 * process has no other thread (the loop's own watchdog, which wakes no
 * task, not counted), it is certainly a deadlock: report and
 * abort, as Go does. Else, after a quiet period with no task run, report a
 * "possible deadlock" once and go on sleeping. Dumps: a SIGQUIT handler
 * bumps a generation and wakes every opted-in loop's poller
 * (async-signal-safe); each loop dumps its tasks when it next idles or
 * switches.
 */
#include "atomics.h"
#include "loop_diag.h"
#include "loop_internal.h"
#include "poller.h"

#include <errno.h>
#include <fcntl.h>
#include <execinfo.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The stall backtrace: the signal (as Go's preemption signal: ignored by
 * default, rarely used), the most frames kept, the wait for an answer. */
#define BT_SIGNAL SIGURG
enum { BT_MAX = 48, BT_WAIT_MS = 1000 };

/* A thread's stall backtrace, filled by its BT_SIGNAL handler. Per thread,
 * not per loop: a signal that arrives late finds it still there. */
struct bt_slot {
    cc__atomic_u32 asked;    /* requests so far (the watchdog; release) */
    cc__atomic_u32 answered; /* the request answered last (the handler;
                                release: frames first) */
    int n;                   /* frames captured */
    void *frames[BT_MAX];    /* return addresses, innermost first */
};

static CC__THREAD_LOCAL struct bt_slot bt_tls;

struct cc__diag {
    cc_loop *loop;         /* whose diagnostics */
    pthread_t thread;      /* the loop's thread, for BT_SIGNAL */
    pid_t tid;             /* its kernel id, to read its state in /proc */
    struct bt_slot *bt;    /* its backtrace slot */
    int64_t stall_ns;      /* report a task running this long; 0: off */
    bool deadlock;         /* look for deadlocks */
    int64_t quiet_ns;      /* quiet time before a "possible deadlock" */
    pthread_t watchdog;    /* the stall watchdog, if stall_ns */
    pthread_mutex_t mu;    /* guards the fields below, to the watchdog */
    pthread_cond_t cv;     /* wakes the watchdog to stop */
    bool stop;             /* the watchdog must end */
    bool in_task;          /* the loop thread runs a task */
    uint64_t switches;     /* tasks started running so far */
    int64_t since;         /* when the running task started (cc__now) */
    char name[32];         /* its name */
    uint64_t runs;         /* switches, for the deadlock check (loop thread) */
    uint64_t idle_runs;    /* runs when the quiet period began */
    int64_t idle_since;    /* when it began; 0: not idle */
    bool reported;         /* the possible deadlock of this period is told */
    uint32_t seen_quit;    /* SIGQUIT generation dumped already */
    int slot;              /* place in quit_loops, or -1 */
};

/* ---- options ------------------------------------------------------------ */

/* cc_loop_set_diag's options; `set` 0: read the environment. Relaxed: a
 * loop started after the call sees them (the caller's ordering). */
static cc__atomic_u32 opt_set, opt_stall_ms, opt_deadlock, opt_quiet_ms;

int cc_loop_set_diag(const cc_loop_diag_opts *opts)
{
    if (opts && (opts->stall_ms < 0 || opts->deadlock_quiet_ms < 0))
        return -EINVAL;
    cc__store_relaxed(&opt_stall_ms, opts ? (uint32_t)opts->stall_ms : 0);
    cc__store_relaxed(&opt_deadlock, opts ? opts->deadlock : 0);
    cc__store_relaxed(&opt_quiet_ms,
                      opts ? (uint32_t)opts->deadlock_quiet_ms : 0);
    cc__store_relaxed(&opt_set, opts != NULL);
    return 0;
}

static long env_long(const char *name)
{
    const char *v = getenv(name);
    long n = v ? strtol(v, NULL, 10) : 0;
    return n > 0 && n < 1000000000 ? n : 0;
}

static void read_options(struct cc__diag *d)
{
    long stall = env_long("CONCUR_STALL_MS");
    long dl = env_long("CONCUR_DEADLOCK"), quiet = env_long("CONCUR_DEADLOCK_MS");
    if (cc__load_relaxed(&opt_set)) {
        stall = cc__load_relaxed(&opt_stall_ms);
        dl = cc__load_relaxed(&opt_deadlock);
        quiet = cc__load_relaxed(&opt_quiet_ms);
    }
    d->stall_ns = stall * CC_MSEC;
    d->deadlock = dl != 0;
    d->quiet_ns = (quiet ? quiet : 1000) * CC_MSEC;
}

/* ---- reports ------------------------------------------------------------ */

static void print_task(void *ctx, const cc__task_info *t)
{
    FILE *out = ctx;
    fprintf(out, "  task \"%s\" %s", t->name, t->state);
    if (strcmp(t->state, "parked") == 0 || strcmp(t->state, "woken") == 0) {
        if (t->what && t->arg >= 0)
            fprintf(out, ", waiting on %s %ld", t->what, t->arg);
        else if (t->what)
            fprintf(out, ", waiting on %s", t->what);
        else
            fprintf(out, ", waiting on a wait queue (lock, condition, "
                         "event, queue, future, join...)");
        if (t->until == CC_FOREVER)
            fprintf(out, ", no deadline");
        else
            fprintf(out, ", deadline in %lld ms",
                    (long long)((t->until - cc__now()) / CC_MSEC));
    }
    fputc('\n', out);
}

static void dump(cc_loop *l, FILE *out)
{
    fprintf(out, "concur: loop %p (%s): %zu task(s)\n", (void *)l,
            cc__poller_backend(cc__loop_poller_of(l)), cc__loop_ntasks(l));
    cc__loop_each_task(l, print_task, out);
    fflush(out);
}

/* Close the memory stream `out` (unless it is stderr) and write its text
 * to stderr in one call. */
static void write_out(FILE *out, char **text, size_t *len)
{
    if (out == stderr) {
        fflush(stderr);
        return;
    }
    fclose(out); /* sets *text and *len */
    fwrite(*text, 1, *len, stderr);
    fflush(stderr);
    free(*text); /* open_memstream's, from malloc */
}

static void dump_stderr(cc_loop *l)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    dump(l, out ? out : stderr);
    write_out(out ? out : stderr, &text, &len);
}

int cc_loop_dump(cc_loop *loop, FILE *out)
{
    if (!loop || loop != cc_loop_current())
        return -EPERM;
    if (out)
        dump(loop, out);
    else
        dump_stderr(loop);
    return 0;
}

/* ---- stall backtraces --------------------------------------------------- */

static pthread_once_t bt_once = PTHREAD_ONCE_INIT;
static struct sigaction bt_previous; /* BT_SIGNAL's handler before ours */

static void bt_pass_on(int sig, siginfo_t *si, void *uctx)
{
    if (bt_previous.sa_flags & SA_SIGINFO)
        bt_previous.sa_sigaction(sig, si, uctx);
    else if (bt_previous.sa_handler != SIG_DFL &&
             bt_previous.sa_handler != SIG_IGN)
        bt_previous.sa_handler(sig); /* SIGURG's default: ignore */
}

static void on_bt_signal(int sig, siginfo_t *si, void *uctx)
{
    struct bt_slot *s = &bt_tls;
    /* acquire: pairs with the watchdog's release of the request. */
    uint32_t asked = cc__load_acq(&s->asked);
    if (asked == cc__load_relaxed(&s->answered)) {
        bt_pass_on(sig, si, uctx); /* not ours: the application's */
        return;
    }
    int saved = errno;
    s->n = backtrace(s->frames, BT_MAX);
    cc__store_rel(&s->answered, asked); /* release: the frames first */
    errno = saved;
}

static void bt_install(void)
{
    void *warm[1];
    backtrace(warm, 1); /* loads libgcc_s now, not in the handler */
    struct sigaction sa = {.sa_sigaction = on_bt_signal,
                           .sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK};
    sigemptyset(&sa.sa_mask);
    if (sigaction(BT_SIGNAL, &sa, &bt_previous) < 0)
        cc__panic("sigaction", -errno);
}

/* The fields of a /proc stat file after the command name, which may hold
 * any byte (so the last ')'), read into buf; NULL if unreadable. */
static const char *stat_fields(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    if (n <= 0)
        return NULL;
    buf[n] = 0;
    const char *p = strrchr(buf, ')');
    return p && p[1] == ' ' ? p + 2 : NULL;
}

/* Whether thread tid sleeps in the kernel (state S or D of its /proc
 * stat): blocked in a system call, which BT_SIGNAL would make fail with
 * EINTR (nanosleep, poll, select... are never restarted, SA_RESTART or
 * not), changing what the program does. */
static bool thread_blocked(pid_t tid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
    const char *f = stat_fields(path, buf, sizeof buf);
    return f && (f[0] == 'S' || f[0] == 'D');
}

/* Ask the loop thread for its backtrace; its frame count, 0 when it did
 * not answer within BT_WAIT_MS (a sanitizer may hold signals back), or -1
 * when it is blocked in a system call (not asked). Called without d->mu,
 * which the loop thread may want meanwhile. */
static int bt_capture(struct cc__diag *d)
{
    struct bt_slot *s = d->bt;
    if (thread_blocked(d->tid))
        return -1;
    /* release: a late answer to an older request is told apart. */
    uint32_t want = cc__load_relaxed(&s->asked) + 1;
    cc__store_rel(&s->asked, want);
    if (pthread_kill(d->thread, BT_SIGNAL) != 0)
        return 0;
    for (int ms = 0; ms < BT_WAIT_MS; ms++) {
        /* acquire: the frames written before the answer. */
        if (cc__load_acq(&s->answered) == want)
            return s->n;
        nanosleep(&(struct timespec){0, CC_MSEC}, NULL);
    }
    return 0;
}

/* Frames 0 and 1 are the handler and the kernel's signal return. */
enum { BT_SKIP = 2 };

static void print_backtrace(FILE *out, struct bt_slot *s, int n, bool moved)
{
    if (n < 0) {
        fprintf(out, "  (no backtrace: the loop thread is blocked in a "
                     "system call, which a signal would interrupt)\n");
        return;
    }
    if (n <= BT_SKIP) {
        fprintf(out, "  (no backtrace: the loop thread did not answer)\n");
        return;
    }
    fprintf(out, "  backtrace of the loop thread%s (names need -rdynamic):\n",
            moved ? ", which had switched tasks by then" : "");
    char **names = backtrace_symbols(s->frames + BT_SKIP, n - BT_SKIP);
    for (int i = 0; i < n - BT_SKIP; i++) {
        if (names)
            fprintf(out, "    %s\n", names[i]);
        else
            fprintf(out, "    [%p]\n", s->frames[BT_SKIP + i]);
    }
    free(names); /* backtrace_symbols': one malloc'd block */
}

static void report_stall(struct cc__diag *d, const char *name, int64_t ran,
                         int frames, bool moved)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out)
        out = stderr;
    fprintf(out, "concur: stall: task \"%s\" of loop %p has run %lld ms "
            "without yielding\n", name, (void *)d->loop,
            (long long)(ran / CC_MSEC));
    print_backtrace(out, d->bt, frames, moved);
    write_out(out, &text, &len);
}

/* Under d->mu: report the stall of the running task, with a backtrace
 * taken with the mutex released. */
static void stall_found(struct cc__diag *d, int64_t ran)
{
    char name[sizeof d->name];
    memcpy(name, d->name, sizeof name);
    uint64_t switches = d->switches;
    pthread_mutex_unlock(&d->mu);
    int frames = bt_capture(d);
    pthread_mutex_lock(&d->mu);
    report_stall(d, name, ran, frames, d->switches != switches);
}

/* ---- stall watchdog ----------------------------------------------------- */

static void wait_period(struct cc__diag *d)
{
    int64_t period = d->stall_ns / 4 > CC_MSEC ? d->stall_ns / 4 : CC_MSEC;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t t = ts.tv_sec * CC_SEC + ts.tv_nsec + period;
    ts = (struct timespec){t / CC_SEC, t % CC_SEC};
    pthread_cond_timedwait(&d->cv, &d->mu, &ts);
}

static void *watchdog_main(void *arg)
{
    struct cc__diag *d = arg;
    uint64_t reported = UINT64_MAX; /* the switch whose stall was told */
    pthread_mutex_lock(&d->mu);
    while (!d->stop) {
        wait_period(d);
        int64_t ran = cc__now() - d->since;
        if (d->in_task && ran >= d->stall_ns && reported != d->switches) {
            reported = d->switches;
            stall_found(d, ran);
        }
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

static int start_watchdog(struct cc__diag *d)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&d->mu, NULL);
    /* The watchdog takes no signal meant for the application's threads. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int r = pthread_create(&d->watchdog, NULL, watchdog_main, d);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r != 0) {
        pthread_cond_destroy(&d->cv);
        pthread_mutex_destroy(&d->mu);
    }
    return -r;
}

/* ---- SIGQUIT ------------------------------------------------------------- */

enum { MAX_QUIT_LOOPS = 64 };

/* The opted-in loops' diagnostics, the handlers at work, and how many
 * SIGQUITs came. seq_cst between the handler's busy++ then slot load and
 * cc__diag_free's slot clear then busy load (Dekker): a loop is freed only
 * once no handler can still notify its poller. */
static _Atomic(struct cc__diag *) quit_loops[MAX_QUIT_LOOPS];
static cc__atomic_u32 quit_busy, quit_gen;

static void on_sigquit(int sig)
{
    int saved = errno;
    cc__fetch_add_seq_cst(&quit_busy, 1);
    cc__fetch_add_seq_cst(&quit_gen, 1);
    for (int i = 0; i < MAX_QUIT_LOOPS; i++) {
        struct cc__diag *d = cc__load_seq_cst(&quit_loops[i]);
        if (d)
            cc__poller_notify(cc__loop_poller_of(d->loop));
    }
    atomic_fetch_sub_explicit(&quit_busy, 1, memory_order_seq_cst);
    errno = saved;
}

static int quit_register(struct cc__diag *d)
{
    for (int i = 0; i < MAX_QUIT_LOOPS; i++) {
        struct cc__diag *none = NULL;
        if (atomic_compare_exchange_strong(&quit_loops[i], &none, d)) {
            d->slot = i;
            return 0;
        }
    }
    return -EBUSY;
}

static void quit_unregister(struct cc__diag *d)
{
    if (d->slot < 0)
        return;
    atomic_store_explicit(&quit_loops[d->slot], NULL, memory_order_seq_cst);
    while (cc__load_seq_cst(&quit_busy) != 0)
        cc__cpu_relax();
}

/* Dump if a SIGQUIT came since the last dump (relaxed: a late look only
 * delays the dump to the next switch or idle). */
static void maybe_dump(struct cc__diag *d)
{
    uint32_t gen = cc__load_relaxed(&quit_gen);
    if (CC__UNLIKELY(d->slot >= 0 && gen != d->seen_quit)) {
        d->seen_quit = gen;
        dump_stderr(d->loop);
    }
}

static struct cc__diag *diag_alloc(cc_loop *l)
{
    struct cc__diag *d = cc__calloc(1, sizeof *d);
    if (d) {
        d->loop = l;
        d->slot = -1;
    }
    return d;
}

int cc_loop_dump_on_sigquit(void)
{
    cc_loop *l = cc_loop_current();
    if (!l)
        return -EPERM;
    struct cc__diag **slot = cc__loop_diag_slot(l);
    if (!*slot && !(*slot = diag_alloc(l)))
        return -ENOMEM;
    struct cc__diag *d = *slot;
    if (d->slot >= 0)
        return 0;
    d->seen_quit = cc__load_relaxed(&quit_gen);
    int r = quit_register(d);
    if (r < 0)
        return r;
    struct sigaction sa = {.sa_handler = on_sigquit, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    return sigaction(SIGQUIT, &sa, NULL) < 0 ? -errno : 0;
}

/* ---- the loop's hooks ---------------------------------------------------- */

void cc__diag_enter(struct cc__diag *d, const char *name)
{
    d->runs++;
    maybe_dump(d);
    if (!d->stall_ns)
        return;
    pthread_mutex_lock(&d->mu);
    d->switches++;
    d->in_task = true;
    d->since = cc__now();
    snprintf(d->name, sizeof d->name, "%s", name);
    pthread_mutex_unlock(&d->mu);
}

void cc__diag_leave(struct cc__diag *d)
{
    if (!d->stall_ns)
        return;
    pthread_mutex_lock(&d->mu);
    d->in_task = false;
    pthread_mutex_unlock(&d->mu);
}

/* The threads of this process, from /proc/self/stat (field 20); 0 if
 * unknown. */
static long count_threads(void)
{
    char buf[1024];
    const char *p = stat_fields("/proc/self/stat", buf, sizeof buf);
    for (int field = 3; p && field < 20; field++) /* p: at field `field` */
        if ((p = strchr(p, ' ')))
            p++;
    return p ? strtol(p, NULL, 10) : 0;
}

/* Reports are formatted in memory and written at once, so that they are
 * not interleaved with other output (stderr is unbuffered). */
static void report_deadlock(struct cc__diag *d, bool certain)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out)
        out = stderr;
    if (certain)
        fprintf(out, "concur: deadlock: every task of loop %p is parked "
                "and nothing can wake any of them (no timer, no fd wait, "
                "no other thread):\n", (void *)d->loop);
    else
        fprintf(out, "concur: possible deadlock: for %lld ms every task "
                "of loop %p has been parked with no timer and no fd wait; "
                "only another thread can wake them:\n",
                (long long)(d->quiet_ns / CC_MSEC), (void *)d->loop);
    cc__loop_each_task(d->loop, print_task, out);
    write_out(out, &text, &len);
}

/* A deadlock check as the loop goes idle: the deadline to sleep until. */
static cc_deadline check_deadlock(struct cc__diag *d)
{
    /* Threads first, then the hand-over stack: a thread that woke a task
     * and exited in between is seen through its push. Our own watchdog
     * wakes no task and lives as long as the loop: it does not count. */
    long others = count_threads() - (d->stall_ns ? 1 : 0);
    if (others == 1 && !cc__loop_remote_pending(d->loop)) {
        report_deadlock(d, true);
        abort();
    }
    int64_t now = cc__now();
    if (!d->idle_since || d->runs != d->idle_runs) {
        d->idle_since = now;
        d->idle_runs = d->runs;
        d->reported = false;
    }
    if (!d->reported && now - d->idle_since >= d->quiet_ns) {
        d->reported = true;
        report_deadlock(d, false);
    }
    return d->reported ? CC_FOREVER : d->idle_since + d->quiet_ns;
}

cc_deadline cc__diag_idle(struct cc__diag *d, cc_loop *l, cc_deadline until,
                          int fd_waits)
{
    maybe_dump(d);
    if (d->deadlock && until == CC_FOREVER && fd_waits == 0 &&
        cc__loop_ntasks(l) > 0)
        return check_deadlock(d);
    d->idle_since = 0;
    return until;
}

/* ---- life ----------------------------------------------------------------- */

int cc__diag_new(struct cc__diag **out, cc_loop *l)
{
    *out = NULL;
    struct cc__diag tmp = {0};
    read_options(&tmp);
    if (!tmp.stall_ns && !tmp.deadlock)
        return 0;
    struct cc__diag *d = diag_alloc(l);
    if (!d)
        return -ENOMEM;
    d->stall_ns = tmp.stall_ns;
    d->deadlock = tmp.deadlock;
    d->quiet_ns = tmp.quiet_ns;
    d->thread = pthread_self(); /* loops run on the thread that made them */
    d->tid = gettid();
    d->bt = &bt_tls;
    if (d->stall_ns)
        pthread_once(&bt_once, bt_install);
    int r = d->stall_ns ? start_watchdog(d) : 0;
    if (r < 0) {
        cc__free(d, sizeof *d);
        return r;
    }
    *out = d;
    return 0;
}

void cc__diag_free(struct cc__diag *d)
{
    if (!d)
        return;
    quit_unregister(d);
    if (d->stall_ns) {
        pthread_mutex_lock(&d->mu);
        d->stop = true;
        pthread_cond_signal(&d->cv);
        pthread_mutex_unlock(&d->mu);
        pthread_join(d->watchdog, NULL);
        pthread_cond_destroy(&d->cv);
        pthread_mutex_destroy(&d->mu);
    }
    cc__free(d, sizeof *d);
}
