/*
 * inputs.c: the input values of `concur run`, one tuple per job.
 *
 * DESIGN. Each `:::` gives a source of literal values, each `:::: FILE` a
 * source of records (stdin when no source is given); a record ends with the
 * delimiter (newline; -0: NUL; -d), which is not part of it. A source given
 * with `:::+` or `::::+` is linked to the one before: together they form a
 * group whose n-th values go together (a zip, as long as the shortest). Jobs
 * run over the cartesian product of the groups, the last one varying
 * fastest, as GNU parallel. The first group is gone through once, so when it
 * is a lone file it is read lazily, one record per job: ten million lines on
 * stdin never sit in memory. Every other source is gone through once per
 * value of the ones before it, so it is read in full first (inputs_prepare).
 * With --colsep, each value of the tuple is split into columns; with
 * --header :, the first value of each source names its columns. With -N,
 * -X or -m, the values of several tuples make up one job's.
 */
#include "run.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

source *inputs_add(inputs *in)
{
    in->src = xrealloc(in->src, (size_t)(in->nsrc + 1) * sizeof *in->src);
    source *s = &in->src[in->nsrc++];
    *s = (source){0};
    return s;
}

void source_push(source *s, char *v)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 16;
        s->vals = xrealloc(s->vals, s->cap * sizeof *s->vals);
    }
    s->vals[s->n++] = v;
}

int inputs_add_file(inputs *in, const char *path)
{
    FILE *f = stdin;
    if (strcmp(path, "-") != 0 && !(f = fopen(path, "re")))
        return -errno;
    source *s = inputs_add(in);
    s->stream = f;
    s->name = path;
    return 0;
}

static bool blank(const char *v)
{
    while (isspace((unsigned char)*v))
        v++;
    return *v == '\0';
}

/* Read the next record of `f` into *line (without its delimiter): 1, 0 at
 * the end of the file, or -errno. With -r, blank records are skipped. */
int read_record(inputs *in, FILE *f, char **line, size_t *cap)
{
    for (;;) {
        errno = 0;
        ssize_t n = getdelim(line, cap, in->delim, f);
        if (n < 0)
            return ferror(f) ? -(errno ? errno : EIO) : 0;
        if (n > 0 && (*line)[n - 1] == (char)in->delim)
            (*line)[n - 1] = '\0';
        if (!in->skip_empty || !blank(*line))
            return 1;
    }
}

static void close_stream(source *s)
{
    if (s->stream && s->stream != stdin)
        fclose(s->stream);
    s->stream = NULL;
}

/* Read all of a file source into memory. */
static int slurp(inputs *in, source *s)
{
    char *line = NULL;
    size_t cap = 0;
    int r;
    while ((r = read_record(in, s->stream, &line, &cap)) > 0)
        source_push(s, xstrdup(line));
    free(line);
    close_stream(s);
    return r;
}

/* -r: drop the blank literal values (file records were filtered as read). */
static void drop_blank(source *s)
{
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++)
        if (!blank(s->vals[i]))
            s->vals[k++] = s->vals[i];
    s->n = k;
}

/* The number of values of the group that source i leads (its shortest). */
static size_t group_len(const inputs *in, int i)
{
    size_t n = in->src[i].n;
    for (int k = i + 1; k < in->nsrc && in->src[k].linked; k++)
        n = in->src[k].n < n ? in->src[k].n : n;
    return n;
}

/* Whether the first source is read lazily (a lone file, as the design says). */
static bool streams_first(const inputs *in)
{
    return in->src[0].stream && !(in->nsrc > 1 && in->src[1].linked) && !in->slurp_all;
}

static int load_sources(inputs *in)
{
    for (int i = 0; i < in->nsrc; i++) {
        source *s = &in->src[i];
        if (s->stream && (i > 0 || !streams_first(in))) {
            int r = slurp(in, s);
            if (r < 0)
                return r;
        } else if (!s->stream && in->skip_empty) {
            drop_blank(s);
        }
    }
    return 0;
}

int inputs_prepare(inputs *in)
{
    int r = load_sources(in);
    in->pos = xmalloc((size_t)in->nsrc * sizeof *in->pos);
    in->cur = xmalloc((size_t)in->nsrc * sizeof *in->cur);
    if (r == 0 && in->header)
        r = inputs_read_header(in);
    return r;
}

long inputs_total(const inputs *in)
{
    long total = 1;
    for (int i = 0; i < in->nsrc; i++)
        if (!in->src[i].linked)
            total *= (long)group_len(in, i);
    return total;
}

/* Point the tuple at value pos[i] of each source of the group led by i. */
static void set_group(inputs *in, int i)
{
    for (int k = i; k == i || (k < in->nsrc && in->src[k].linked); k++)
        in->cur[k] = in->src[k].vals[in->pos[i]];
}

/* Move the first group to its next value: 1, 0 at its end, -errno. */
static int advance_first(inputs *in)
{
    source *s = &in->src[0];
    if (!s->stream) {
        if (in->started)
            in->pos[0]++;
        if (in->pos[0] >= group_len(in, 0))
            return 0;
        set_group(in, 0);
        return 1;
    }
    int r = read_record(in, s->stream, &in->line, &in->line_cap);
    if (r <= 0)
        close_stream(s);
    in->cur[0] = in->line;
    return r;
}

/* The odometer: the last group turns fastest; 1 while tuples remain. */
static int advance(inputs *in)
{
    for (int i = in->nsrc - 1; i > 0; i--) {
        if (in->src[i].linked)
            continue;
        if (++in->pos[i] < group_len(in, i)) {
            set_group(in, i);
            return 1;
        }
        in->pos[i] = 0;
        set_group(in, i);
    }
    return advance_first(in);
}

static int start(inputs *in)
{
    for (int i = 0; i < in->nsrc; i++) {
        in->pos[i] = 0;
        if (i == 0 || in->src[i].linked)
            continue;
        if (group_len(in, i) == 0)
            return 0; /* an empty source: an empty product */
        set_group(in, i);
    }
    int r = advance_first(in);
    in->started = true;
    return r;
}

/* The next tuple: 1, 0 at the end (and ever after), -errno. */
static int next_tuple(inputs *in)
{
    if (in->ended)
        return 0;
    int r = in->started ? advance(in) : start(in);
    in->ended = r <= 0;
    return r;
}

/* -N, -X, -m: several tuples make one job's values (columns, if --colsep). */
static int next_group(inputs *in)
{
    in->nvals = 0;
    in->colbuf.len = 0;
    long got = 0;
    int r;
    while ((r = next_tuple(in)) > 0) {
        for (int i = 0; i < in->nsrc; i++)
            if (in->has_colsep)
                split_columns(in, in->cur[i]);
            else
                add_column(in, in->cur[i], strlen(in->cur[i]));
        if (++got >= in->max_args || in->colbuf.len >= in->max_chars)
            break;
    }
    if (r < 0 || got == 0)
        return r;
    columns_done(in);
    return 1;
}

int inputs_next(inputs *in)
{
    if (in->has_colsep || in->max_args > 1)
        return next_group(in);
    int r = next_tuple(in);
    in->vals = in->cur;
    in->nvals = in->nsrc;
    return r;
}

void inputs_free(inputs *in)
{
    for (int i = 0; i < in->nsrc; i++) {
        source *s = &in->src[i];
        close_stream(s);
        for (size_t k = 0; s->name && k < s->n; k++)
            free(s->vals[k]); /* values read from a file were allocated */
        free(s->vals);
    }
    free(in->src);
    free(in->pos);
    free(in->cur);
    free(in->line);
    columns_free(in);
    *in = (inputs){0};
}
