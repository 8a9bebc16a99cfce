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
#include <stdio.h>

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

/* One input source: the values after one `:::`, or the lines of one file. */
typedef struct source {
    char **vals;      /* the values, when held in memory */
    size_t n;         /* how many vals */
    size_t cap;       /* vals allocated */
    FILE *stream;     /* lines still to read (the first source only), or NULL */
    const char *name; /* the file name, for messages */
} source;

/* The inputs of a run: the cartesian product of the sources, the last source
 * varying fastest (GNU parallel's order). Only the first source is read lazily;
 * the others are held in memory, since they are gone through once per value. */
typedef struct inputs {
    source *src;       /* the sources, in command-line order */
    int nsrc;          /* how many sources */
    size_t *pos;       /* per source: the index of its current value */
    const char **cur;  /* the current tuple: one value per source */
    char *line;        /* the current value of a streamed first source */
    size_t line_cap;   /* bytes allocated for line */
    bool started;      /* inputs_next was called before */
} inputs;

/* Add a source of literal values / of the lines of `path` ("-": stdin). */
source *inputs_add(inputs *in);
int inputs_add_file(inputs *in, const char *path);
/* Add a value to a source of literal values (`v` is not copied). */
void source_push(source *s, char *v);
/* Load every source but the first in memory; call once, before inputs_next. */
int inputs_prepare(inputs *in);
/* Advance to the next tuple: 1 (in->cur holds it), 0 at the end, -errno. */
int inputs_next(inputs *in);
void inputs_free(inputs *in);

/* ---- command templates (template.c) -------------------------------------- */

/* The command words with their replacement strings, and how to run them. */
typedef struct tmpl {
    char **words;     /* COMMAND ARG...: the template, as given */
    int nwords;       /* how many words */
    int nsrc;         /* how many input sources ({} then stands for all) */
    bool shell;       /* run through /bin/sh -c (see template.c) */
    bool has_rep;     /* a replacement string occurs: nothing is appended */
    char *exe;        /* the resolved path of a fixed command, or NULL */
} tmpl;

/* One job's command, built by tmpl_expand into reused buffers. */
typedef struct expansion {
    strbuf text;      /* the words, NUL-separated (no shell) or the script */
    size_t *offs;     /* no shell: the offset of each word in text */
    char **argv;      /* the argv to spawn, NULL-terminated */
    int argc;         /* words in argv */
    int cap;          /* entries allocated in offs and argv */
} expansion;

void tmpl_init(tmpl *t, char **words, int nwords, int nsrc);
void tmpl_free(tmpl *t);
/* Build the command of job `seq` (from 1) running in `slot` (from 1). */
void tmpl_expand(const tmpl *t, const char *const *vals, long seq, long slot,
                 expansion *x);
/* Print x as one shell-quoted line (for --dry-run). */
void expansion_print(const tmpl *t, const expansion *x, FILE *f);
void expansion_free(expansion *x);

/* Append `s` quoted for /bin/sh: as is when it is safe, else in single quotes. */
void shell_quote(strbuf *sb, const char *s);
/* Find `name` in $PATH: a malloc'ed path, or NULL when it is not there. */
char *path_search(const char *name);

/* ---- options (run_args.c) ------------------------------------------------- */

/* What `concur run` was asked to do. */
typedef struct run_opts {
    long jobs;       /* -j: the most jobs running at once */
    bool keep_order; /* -k: print outputs in input order */
    bool dry_run;    /* --dry-run: print the commands, run nothing */
    char **cmd;      /* COMMAND [ARG...] (points into argv) */
    int ncmd;        /* how many cmd words */
    inputs in;       /* the input sources */
} run_opts;

/* Parse `concur run` arguments (argv[0] is "run"): 0 to run, 1 when --help was
 * printed, -1 after printing an error. */
int run_parse_args(run_opts *o, int argc, char **argv);
void run_opts_free(run_opts *o);
void run_usage(FILE *f);

/* ---- output files (output.c) ---------------------------------------------- */

/* A job's captured stdout and stderr: two unlinked temporary files. */
typedef struct outpair {
    int fd[2];            /* stdout, stderr files (close-on-exec) */
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
/* Give a pair back (emptied or empty). */
void outpool_put(outpool *pool, outpair *p);
void outpool_free(outpool *pool);

/* ---- the runner (run.c) ---------------------------------------------------- */

/* Run every job; the exit status: failed jobs (capped at 101), or 255. */
int run_jobs(run_opts *o);
/* `concur run ARGS`: parse, run, return the exit status. */
int cmd_run(int argc, char **argv);

#endif
