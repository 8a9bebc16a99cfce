/*
 * run.h: what the parts of `concur run` share: growable strings, input sources,
 * command templates, output files and the runner.
 *
 * The CLI is a program, not the library: it allocates with malloc and exits on
 * memory exhaustion (xmalloc) instead of threading -ENOMEM through every call.
 */
#ifndef CONCUR_TOOLS_RUN_H
#define CONCUR_TOOLS_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <regex.h>
#include <stdio.h>
#include <sys/types.h>

/* Our own errors exit with this status, as GNU parallel's do. */
#define RUN_EXIT_ERROR 255
/* At most this exit status counts failed jobs (GNU parallel's cap). */
#define RUN_EXIT_MAX_FAILED 101

/* ---- memory and strings (template.c) ------------------------------------- */

void *xmalloc(size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);

/* A growable byte string, always NUL-terminated once anything was put. */
typedef struct strbuf {
    char *data; /* the bytes; NULL until the first put */
    size_t len; /* bytes used, not counting the NUL */
    size_t cap; /* bytes allocated */
} strbuf;

void sb_put(strbuf *sb, const char *s, size_t n);
void sb_puts(strbuf *sb, const char *s);
void sb_putc(strbuf *sb, char c);
void sb_free(strbuf *sb);

/* ---- input sources (inputs.c) -------------------------------------------- */

/* One input source: the values after one `:::`, or the records of one file. */
typedef struct source {
    char **vals;      /* the values, when held in memory */
    size_t n;         /* how many vals */
    size_t cap;       /* vals allocated */
    FILE *stream;     /* records still to read (the first source only), or NULL */
    const char *name; /* the file name (its values are then allocated), or NULL */
    bool linked;      /* given with :::+ or ::::+: zipped with the source before */
} source;

/* The inputs of a run: the cartesian product of the groups of linked sources,
 * the last varying fastest (GNU parallel's order). See inputs.c. */
typedef struct inputs {
    source *src;       /* the sources, in command-line order */
    int nsrc;          /* how many sources */
    size_t *pos;       /* per group leader: the index of its current value */
    const char **cur;  /* the current tuple: one value per source */
    char *line;        /* the current value of a streamed first source */
    size_t line_cap;   /* bytes allocated for line */
    bool started;      /* inputs_next was called before */
    int delim;         /* the record delimiter of files: '\n', -0: '\0', -d */
    bool skip_empty;   /* -r: blank values make no job */
    bool slurp_all;    /* read the first source in full too (to count jobs) */
    bool header;       /* --header :: the first value of each source names it */
    bool has_colsep;   /* --colsep was given: colsep holds it */
    regex_t colsep;    /* --colsep: where values split into columns */
    const char **vals; /* the job's values: cur, or its columns (--colsep) */
    int nvals;         /* how many vals */
    strbuf colbuf;     /* --colsep: the columns' bytes, NUL-separated */
    size_t *col_offs;  /* --colsep: each column's offset in colbuf */
    size_t offs_cap;   /* col_offs allocated */
    char **cols;       /* --colsep: the columns, pointing into colbuf */
    size_t cols_cap;   /* cols allocated */
    char **names;      /* --header: the name of each column (or source) */
    int nnames;        /* how many names */
    bool ended;        /* the last tuple was read */
    long max_args;     /* -N, -X, -m: at most this many tuples per job (else 0) */
    size_t max_chars;  /* -X, -m: and at most about this many bytes of them */
} inputs;

/* Add a source of literal values / of the records of `path` ("-": stdin). */
source *inputs_add(inputs *in);
int inputs_add_file(inputs *in, const char *path);
/* Add a value to a source of literal values (`v` is not copied). */
void source_push(source *s, char *v);
/* Load every source but a lone first one in memory, and read the headers
 * (--header); call once, before inputs_next. 0 or -errno. */
int inputs_prepare(inputs *in);
/* The number of tuples, once every source is in memory (slurp_all). */
long inputs_total(const inputs *in);
/* Advance to the next tuple: 1 (in->vals holds it), 0 at the end, -errno. */
int inputs_next(inputs *in);
void inputs_free(inputs *in);
/* Read the next record of f (a file source) into *line: 1, 0 at its end, -errno. */
int read_record(inputs *in, FILE *f, char **line, size_t *cap);

/* --colsep and --header (columns.c). */
int inputs_set_colsep(inputs *in, const char *regex);
void split_columns(inputs *in, const char *v);
void add_column(inputs *in, const char *s, size_t n);
void columns_done(inputs *in);
int inputs_read_header(inputs *in);
/* A copy of word w with {name...} rewritten as {n...} (malloc'ed). */
char *header_rewrite(const inputs *in, const char *w);
void columns_free(inputs *in);

/* ---- command templates (template.c) -------------------------------------- */

/* The command words with their replacement strings, and how to run them. */
typedef struct tmpl {
    char **words;     /* COMMAND ARG...: the template, as given */
    int nwords;       /* how many words */
    bool shell;       /* run through /bin/sh -c (see template.c) */
    bool has_rep;     /* a replacement string occurs: nothing is appended */
    char *exe;        /* the resolved path of a fixed command, or NULL */
    bool context;     /* -X, -N: repeat a word with {} for each value */
} tmpl;

/* One job's command, built by tmpl_expand into reused buffers. */
typedef struct expansion {
    strbuf text;      /* the words, NUL-separated (no shell) or the script */
    size_t *offs;     /* no shell: the offset of each word in text */
    char **argv;      /* the argv to spawn, NULL-terminated */
    int argc;         /* words in argv */
    int cap;          /* entries allocated in offs and argv */
    bool missing;     /* the word being expanded refers to a missing value */
} expansion;

/* shell_mode: 0 by the shell rule, 1 always a shell, -1 never. */
void tmpl_init(tmpl *t, char **words, int nwords, int shell_mode);
void tmpl_free(tmpl *t);
/* Build the command of job `seq` (from 1) running in `slot` (from 1). */
void tmpl_expand(const tmpl *t, const char *const *vals, int nvals, long seq,
                 long slot, expansion *x);
/* The command of x as one shell-quoted line (for --dry-run, the joblog). */
void expansion_format(const tmpl *t, const expansion *x, strbuf *line);
/* Expand the replacement strings of s, unquoted, into out (--tagstring); {}
 * with several values joins them with spaces. */
void expand_string(const char *s, const char *const *vals, int nvals,
                   long seq, long slot, strbuf *out);
/* Print x as one shell-quoted line (for --dry-run). */
void expansion_print(const tmpl *t, const expansion *x, FILE *f);
void expansion_free(expansion *x);

/* Append `s` quoted for /bin/sh: as is when it is safe, else in single quotes. */
void shell_quote(strbuf *sb, const char *s);
/* Find `name` in $PATH: a malloc'ed path, or NULL when it is not there. */
char *path_search(const char *name);

/* ---- options (run_args.c) ------------------------------------------------- */

/* How jobs' output reaches ours. */
enum out_mode {
    OUT_GROUP,   /* whole, job after job, through temporary files (default) */
    OUT_UNGROUP, /* -u: straight to our stdout and stderr */
    OUT_LINEBUF, /* --line-buffer: whole lines, as they come, through pipes */
};

/* --resume and its kin: which jobs of an earlier --joblog run again. */
enum resume_mode {
    RESUME_NONE,   /* every job runs */
    RESUME_ALL,    /* --resume: jobs in the joblog are skipped */
    RESUME_FAILED, /* --resume-failed: so are they, unless they failed */
    RETRY_FAILED,  /* --retry-failed: only the failed commands of the joblog run */
};

/* --halt: when to stop early. */
enum halt_when { HALT_NEVER, HALT_SOON, HALT_NOW };
enum halt_why { HALT_FAIL, HALT_SUCCESS, HALT_DONE };

/* The most steps of a --termseq (signal, then milliseconds to wait). */
#define TERMSEQ_MAX 16

/* What `concur run` was asked to do. */
typedef struct run_opts {
    long jobs;            /* -j: the most jobs running at once */
    bool keep_order;      /* -k: print outputs in input order */
    bool dry_run;         /* --dry-run: print the commands, run nothing */
    char **cmd;           /* COMMAND [ARG...] (argv, or rewritten: --header) */
    int ncmd;             /* how many cmd words */
    char **own_cmd;       /* --header: cmd, allocated by us (else NULL) */
    inputs in;            /* the input sources */
    enum out_mode out;    /* -u or grouped */
    const char *tag;      /* --tag, --tagstring: each line's prefix, or NULL */
    const char *joblog;   /* --joblog FILE, or NULL */
    bool joblog_append;   /* --joblog +FILE, --resume...: append to it */
    enum resume_mode resume; /* --resume, --resume-failed */
    double timeout;       /* --timeout SECS (0: none) */
    double timeout_pct;   /* --timeout N%: N / 100 of the median (0: none) */
    int termseq[2 * TERMSEQ_MAX]; /* --termseq: signal, ms, signal, ms... */
    int nterm;            /* steps in termseq */
    long retries;         /* --retries: attempts per job (at least 1) */
    enum halt_when halt_when; /* --halt: never, soon or now */
    enum halt_why halt_why;   /* --halt: on failures, successes or either */
    long halt_count;      /* --halt ...=N */
    double halt_pct;      /* --halt ...=N%: N / 100 (0: a count) */
    int multi;            /* 'X', 'm' or 'N': several inputs per job (else 0) */
    int shell_mode;       /* --shell: 1; --no-shell, -q: -1; else 0 */
    const char *results;  /* --results DIR, or NULL */
    long *retry_seqs;     /* --retry-failed: the logged seq of each job */
    bool pipe;            /* --pipe: stdin is cut into blocks, one per job */
    long long block;      /* --block: the block size, in bytes */
    const char *recend;   /* --recend: records end with it, or NULL */
    const char *recstart; /* --recstart: records start with it, or NULL */
    bool bar;             /* --bar: a progress bar on stderr (a terminal) */
    bool eta;             /* --eta: the estimated time left, likewise */
} run_opts;

/* --retry-failed: make the failed commands of the joblog the inputs (joblog.c). */
int retry_failed_load(run_opts *o);

/* Parse `concur run` arguments (argv[0] is "run"): 0 to run, 1 when --help was
 * printed, -1 after printing an error. */
int run_parse_args(run_opts *o, int argc, char **argv);
void run_opts_free(run_opts *o);
void run_usage(FILE *f);
/* Print "concur run: " fmt (with arg) and a hint: -1. */
int run_fail(const char *fmt, const char *arg);
long cpu_count(void);
/* Option values (run_values.c): 0, or -1 after a message. */
int parse_jobs(run_opts *o, const char *s);
int parse_delim(run_opts *o, const char *s);
int parse_timeout(run_opts *o, const char *s);
int parse_termseq(run_opts *o, const char *s);
int parse_halt(run_opts *o, const char *s);
int parse_block(run_opts *o, const char *s);

/* ---- --pipe (pipe.c) ------------------------------------------------------- */

/* stdin, cut into blocks at record boundaries (GNU parallel's way). */
typedef struct blockreader {
    strbuf buf;    /* bytes read from stdin, not yet given to a job */
    strbuf sep;    /* recend then recstart: a block ends inside it */
    size_t endlen; /* bytes of recend: the cut is after them */
    size_t block;  /* the block size, grown when no boundary is found */
    bool eof;      /* stdin ended */
} blockreader;

void blockreader_init(blockreader *b, const run_opts *o);
/* The next block, in a memfd at offset 0 (*fd): 1, 0 at the end, -errno. */
int blockreader_next(blockreader *b, int *fd);
void blockreader_free(blockreader *b);

/* ---- output files (output.c) ---------------------------------------------- */

/* A job's captured stdout and stderr: two unlinked temporary files. */
typedef struct outpair {
    int fd[2];            /* stdout, stderr files (close-on-exec) */
    char *tag;            /* --tag: the prefix of its lines, or NULL */
    struct outpair *next; /* the next free pair in the pool */
} outpair;

/* Free pairs, reused from job to job so that a job costs no file creation. */
typedef struct outpool {
    outpair *free;  /* the free list */
    int live;       /* pairs in existence (free or in use) */
    bool write_err; /* writing our stdout or stderr failed once */
} outpool;

int outpool_get(outpool *pool, outpair **out);
/* Whether the job that used the pair wrote nothing. */
bool outpair_empty(const outpair *p);
/* Copy the pair's contents to our stdout and stderr, then empty it. */
void outpair_flush(outpool *pool, outpair *p);
/* Write all n bytes (waiting if `to` is non-blocking): 0 or -errno. */
int fd_write_all(int to, const char *buf, size_t n);
/* Copy all of file `from` to `to`: 0 or -errno. */
int fd_copy_all(int to, int from);
/* The size of the captured stdout (--joblog's Receive). */
off_t outpair_size(const outpair *p);
/* Empty the pair, printing nothing (a retried or halted job). */
void outpair_discard(outpool *pool, outpair *p);
/* Give a pair back (emptied or empty); frees its tag. */
void outpool_put(outpool *pool, outpair *p);
void outpool_free(outpool *pool);

/* ---- the runner (run.c) ---------------------------------------------------- */

/* Run every job; the exit status: failed jobs (capped at 101), or 255. */
int run_jobs(run_opts *o);
/* `concur run ARGS`: parse, run, return the exit status. */
int cmd_run(int argc, char **argv);

#endif
