/*
 * inputs.c: the input values of `concur run`, one tuple per job.
 *
 * DESIGN. Each `:::` gives a source of literal values, each `:::: FILE` a
 * source of lines (stdin when no source is given). Jobs run over the cartesian
 * product of the sources with the last one varying fastest, as GNU parallel.
 * The first source is gone through once, so it is read lazily, one line per
 * job: ten million lines on stdin never sit in memory. Every other source is
 * gone through once per value of the ones before it, so it is read in full
 * first (inputs_prepare). A line is what ends with a newline, or the end of
 * the file; the newline is not part of the value; empty lines are values.
 */
#include "run.h"

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

/* Read the next line of `f` into *line (without its newline): 1, 0 at the
 * end of the file, or -errno. */
static int read_line(FILE *f, char **line, size_t *cap)
{
    errno = 0;
    ssize_t n = getline(line, cap, f);
    if (n < 0)
        return ferror(f) ? -(errno ? errno : EIO) : 0;
    if (n > 0 && (*line)[n - 1] == '\n')
        (*line)[n - 1] = '\0';
    return 1;
}

static void close_stream(source *s)
{
    if (s->stream && s->stream != stdin)
        fclose(s->stream);
    s->stream = NULL;
}

/* Read all of a file source into memory. */
static int slurp(source *s)
{
    char *line = NULL;
    size_t cap = 0;
    int r;
    while ((r = read_line(s->stream, &line, &cap)) > 0)
        source_push(s, xstrdup(line));
    free(line);
    close_stream(s);
    return r;
}

int inputs_prepare(inputs *in)
{
    for (int i = 1; i < in->nsrc; i++) {
        if (!in->src[i].stream)
            continue;
        int r = slurp(&in->src[i]);
        if (r < 0)
            return r;
    }
    in->pos = xmalloc((size_t)in->nsrc * sizeof *in->pos);
    in->cur = xmalloc((size_t)in->nsrc * sizeof *in->cur);
    return 0;
}

/* Move the first source to its next value: 1, 0 at its end, -errno. */
static int advance_first(inputs *in)
{
    source *s = &in->src[0];
    if (!s->stream) {
        if (in->started && ++in->pos[0] >= s->n)
            return 0;
        if (!in->started && s->n == 0)
            return 0;
        in->cur[0] = s->vals[in->pos[0]];
        return 1;
    }
    int r = read_line(s->stream, &in->line, &in->line_cap);
    if (r <= 0)
        close_stream(s);
    in->cur[0] = in->line;
    return r;
}

/* The odometer: the last source turns fastest; 1 while tuples remain. */
static int advance(inputs *in)
{
    for (int i = in->nsrc - 1; i > 0; i--) {
        if (++in->pos[i] < in->src[i].n) {
            in->cur[i] = in->src[i].vals[in->pos[i]];
            return 1;
        }
        in->pos[i] = 0;
        in->cur[i] = in->src[i].vals[0];
    }
    return advance_first(in);
}

static int start(inputs *in)
{
    for (int i = 0; i < in->nsrc; i++) {
        in->pos[i] = 0;
        if (i > 0 && in->src[i].n == 0)
            return 0; /* an empty source: an empty product */
        if (i > 0)
            in->cur[i] = in->src[i].vals[0];
    }
    int r = advance_first(in);
    in->started = true;
    return r;
}

int inputs_next(inputs *in)
{
    if (!in->started)
        return start(in);
    return advance(in);
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
    *in = (inputs){0};
}
