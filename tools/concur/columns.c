/*
 * columns.c: --colsep and --header of `concur run`.
 *
 * DESIGN. With --colsep REGEX (a POSIX extended regular expression, where
 * Perl's \t \n \s \S \d \D \w \W also work, as in GNU parallel's), each
 * value of a job's tuple is split at every match into columns, and the
 * columns of all the sources, in order, are the job's values: {1} is the
 * first column, {} stands for them all. The columns are copied into one
 * reused buffer (colbuf) and pointed at once it stops growing. With
 * --header :, the first value of each source is not a job: it names the
 * source (or, with --colsep, each of its columns), and the command words are
 * rewritten so that {name} and its {name.} {name/} ... forms become {n}.
 */
#include "run.h"

#include <stdlib.h>
#include <string.h>

/* Perl's escapes that --colsep is often given with, in POSIX terms. */
static const struct { char c; const char *out, *in_brackets; } perl_escapes[] = {
    {'t', "\t", "\t"},
    {'n', "\n", "\n"},
    {'s', "[[:space:]]", "[:space:]"},
    {'S', "[^[:space:]]", NULL},
    {'d', "[0-9]", "0-9"},
    {'D', "[^0-9]", NULL},
    {'w', "[[:alnum:]_]", "[:alnum:]_"},
    {'W', "[^[:alnum:]_]", NULL},
};

/* re with the escapes above translated (malloc'ed). */
static char *from_perl(const char *re)
{
    strbuf sb = {0};
    sb_puts(&sb, "");
    bool brackets = false;
    for (const char *p = re; *p; p++) {
        brackets = *p == '[' ? true : *p == ']' ? false : brackets;
        size_t k = 0, n = sizeof perl_escapes / sizeof perl_escapes[0];
        while (*p == '\\' && k < n && perl_escapes[k].c != p[1])
            k++;
        const char *to = *p != '\\' || k == n ? NULL
                         : brackets ? perl_escapes[k].in_brackets : perl_escapes[k].out;
        if (to)
            sb_puts(&sb, to), p++;
        else
            sb_putc(&sb, *p);
        if (!to && *p == '\\' && p[1])
            sb_putc(&sb, *++p); /* any other escape stays as it is */
    }
    return sb.data;
}

int inputs_set_colsep(inputs *in, const char *re)
{
    char *posix = from_perl(re);
    int err = regcomp(&in->colsep, posix, REG_EXTENDED);
    free(posix);
    in->has_colsep = err == 0;
    return err == 0 ? 0 : -1;
}

/* Add a column: its bytes into colbuf, its offset into offs (pointers later,
 * as colbuf may move while it grows). */
void add_column(inputs *in, const char *s, size_t n)
{
    if ((size_t)in->nvals == in->offs_cap) {
        in->offs_cap = in->offs_cap ? 2 * in->offs_cap : 16;
        in->col_offs = xrealloc(in->col_offs, in->offs_cap * sizeof *in->col_offs);
    }
    in->col_offs[in->nvals++] = in->colbuf.len;
    sb_put(&in->colbuf, s, n);
    sb_putc(&in->colbuf, '\0');
}

void split_columns(inputs *in, const char *v)
{
    regmatch_t m;
    int flags = 0;
    for (;;) {
        if (regexec(&in->colsep, v, 1, &m, flags) != 0 || m.rm_eo == m.rm_so)
            break; /* an empty match would split forever: none */
        add_column(in, v, (size_t)m.rm_so);
        v += m.rm_eo;
        flags = REG_NOTBOL;
    }
    add_column(in, v, strlen(v));
}

void columns_done(inputs *in)
{
    if ((size_t)in->nvals > in->cols_cap) {
        in->cols_cap = (size_t)in->nvals;
        in->cols = xrealloc(in->cols, in->cols_cap * sizeof *in->cols);
    }
    for (int i = 0; i < in->nvals; i++)
        in->cols[i] = in->colbuf.data + in->col_offs[i];
    in->vals = (const char **)in->cols;
}

static void add_name(inputs *in, const char *name)
{
    in->names = xrealloc(in->names, (size_t)(in->nnames + 1) * sizeof *in->names);
    in->names[in->nnames++] = xstrdup(name);
}

/* Take the first value of source i out of it: the header. */
static int take_header(inputs *in, int i, char **hdr)
{
    source *s = &in->src[i];
    if (s->stream) {
        int r = read_record(in, s->stream, &in->line, &in->line_cap);
        *hdr = r > 0 ? xstrdup(in->line) : xstrdup("");
        return r < 0 ? r : 0;
    }
    *hdr = xstrdup(s->n ? s->vals[0] : "");
    if (s->n == 0)
        return 0;
    if (s->name)
        free(s->vals[0]);
    memmove(s->vals, s->vals + 1, (s->n - 1) * sizeof *s->vals);
    s->n--;
    return 0;
}

int inputs_read_header(inputs *in)
{
    for (int i = 0; i < in->nsrc; i++) {
        char *hdr;
        int r = take_header(in, i, &hdr);
        if (r < 0)
            return free(hdr), r;
        if (!in->has_colsep) {
            add_name(in, hdr);
        } else {
            in->nvals = 0;
            in->colbuf.len = 0;
            split_columns(in, hdr);
            columns_done(in);
            for (int k = 0; k < in->nvals; k++)
                add_name(in, in->vals[k]);
        }
        free(hdr);
    }
    return 0;
}

/* The forms a named replacement string may take: {name} {name.} ... */
static const char *const name_forms[] = {"}", ".}", "/}", "//}", "/.}"};

/* If `p` starts a {name...} of a known name: its length, its number in *col. */
static size_t match_name(const inputs *in, const char *p, int *col)
{
    for (int i = 0; i < in->nnames; i++) {
        size_t n = strlen(in->names[i]);
        if (strncmp(p + 1, in->names[i], n) != 0 || !n)
            continue;
        for (size_t f = 0; f < sizeof name_forms / sizeof name_forms[0]; f++)
            if (strncmp(p + 1 + n, name_forms[f], strlen(name_forms[f])) == 0)
                return *col = i + 1, 1 + n;
    }
    return 0;
}

char *header_rewrite(const inputs *in, const char *w)
{
    strbuf sb = {0};
    sb_puts(&sb, "");
    for (const char *p = w; *p;) {
        int col;
        size_t n = *p == '{' ? match_name(in, p, &col) : 0;
        if (!n) {
            sb_putc(&sb, *p++);
            continue;
        }
        char num[24];
        sb_put(&sb, num, (size_t)snprintf(num, sizeof num, "{%d", col));
        p += n;
    }
    return sb.data;
}

void columns_free(inputs *in)
{
    if (in->has_colsep)
        regfree(&in->colsep);
    for (int i = 0; i < in->nnames; i++)
        free(in->names[i]);
    free(in->names);
    free(in->col_offs);
    free(in->cols);
    sb_free(&in->colbuf);
}
