/*
 * template.c: the command of each job, from the command words and its inputs.
 *
 * DESIGN. The words COMMAND ARG... are a template: each replacement string in
 * them ({} {.} {/} {//} {/.} {#} {%}, and {n} {n.} {n/} {n//} {n/.} for the
 * n-th source) is replaced by the job's value; with none, the values are
 * appended, one argument per source. GNU parallel joins the words with spaces
 * and hands the line to a shell. We do the same only when the shell could
 * change the meaning of a word ("the shell rule", tmpl_needs_shell below);
 * otherwise the words are the argv of the job, spawned without a shell: the
 * same result for half the cost, and values never meet a shell parser. When a
 * shell runs, every replaced value is single-quoted, so no input can inject a
 * command. Expansion writes into buffers that the runner reuses for every job.
 */
#include "run.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- memory and strings ---------------------------------------------------- */

static void out_of_memory(void)
{
    fputs("concur: out of memory\n", stderr);
    exit(RUN_EXIT_ERROR);
}

void *xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p)
        out_of_memory();
    return p;
}

void *xrealloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size ? size : 1);
    if (!p)
        out_of_memory();
    return p;
}

char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(xmalloc(n), s, n);
}

static void sb_reserve(strbuf *sb, size_t extra)
{
    if (sb->len + extra < sb->cap)
        return;
    size_t cap = sb->cap ? sb->cap : 256;
    while (cap <= sb->len + extra)
        cap *= 2;
    sb->data = xrealloc(sb->data, cap);
    sb->cap = cap;
}

void sb_put(strbuf *sb, const char *s, size_t n)
{
    sb_reserve(sb, n);
    memcpy(sb->data + sb->len, s, n);
    sb->len += n;
    sb->data[sb->len] = '\0';
}

void sb_puts(strbuf *sb, const char *s) { sb_put(sb, s, strlen(s)); }

void sb_putc(strbuf *sb, char c) { sb_put(sb, &c, 1); }

void sb_free(strbuf *sb)
{
    free(sb->data);
    *sb = (strbuf){0};
}

/* ---- replacement strings --------------------------------------------------- */

/* What a replacement string stands for. */
enum rep_kind {
    REP_VALUE,      /* {}   the value */
    REP_NOEXT,      /* {.}  without its extension */
    REP_BASE,       /* {/}  its basename */
    REP_DIR,        /* {//} its dirname */
    REP_BASE_NOEXT, /* {/.} its basename without extension */
    REP_SEQ,        /* {#}  the job's sequence number */
    REP_SLOT,       /* {%}  the job's slot number */
};

/* One replacement string found in a word. */
typedef struct rep {
    enum rep_kind kind; /* as above */
    int src;            /* 1-based source for {n...}; 0: every source */
} rep;

static const struct {
    const char *text;   /* what follows '{' (and the digits of {n...}) */
    enum rep_kind kind; /* what it stands for */
} rep_table[] = {
    {"}", REP_VALUE},     {".}", REP_NOEXT}, {"/}", REP_BASE}, {"//}", REP_DIR},
    {"/.}", REP_BASE_NOEXT}, {"#}", REP_SEQ}, {"%}", REP_SLOT},
};

/* Parse the digits of {n...}: the source number, or 0 when absent. Digits
 * that would pass INT_MAX are left unread: no replacement string then. A
 * source that is not there is one all the same, which stands for nothing
 * (as GNU parallel's: {3} of two sources is empty). */
static int rep_source(const char **p)
{
    long n = 0;
    while (**p >= '0' && **p <= '9' && n <= INT_MAX / 10)
        n = n * 10 + (*(*p)++ - '0');
    return (int)n;
}

/* The length of the replacement string at `p`, filling *r; 0 when none. */
static size_t match_rep(const char *p, rep *r)
{
    if (p[0] != '{')
        return 0;
    const char *q = p + 1;
    r->src = rep_source(&q);
    if (q > p + 1 && r->src == 0)
        return 0;
    for (size_t i = 0; i < sizeof rep_table / sizeof rep_table[0]; i++) {
        size_t n = strlen(rep_table[i].text);
        if (strncmp(q, rep_table[i].text, n) != 0)
            continue;
        r->kind = rep_table[i].kind;
        if (r->src && (r->kind == REP_SEQ || r->kind == REP_SLOT))
            return 0;
        return (size_t)(q - p) + n;
    }
    return 0;
}

/* The basename: what follows the last '/' (GNU parallel: s:.*\/::). */
static const char *base_of(const char *v, size_t *len)
{
    const char *slash = memrchr(v, '/', *len);
    if (slash) {
        *len -= (size_t)(slash + 1 - v);
        v = slash + 1;
    }
    return v;
}

/* Without the extension (GNU parallel: s:\.[^/.]*$::). */
static void strip_ext(const char *v, size_t *len)
{
    const char *dot = memrchr(v, '.', *len);
    if (dot && !memchr(dot, '/', *len - (size_t)(dot - v)))
        *len = (size_t)(dot - v);
}

/* The dirname, as POSIX dirname(3) and Perl's File::Basename::dirname. */
static const char *dir_of(const char *v, size_t *len)
{
    size_t n = *len;
    while (n > 1 && v[n - 1] == '/')
        n--;
    const char *slash = memrchr(v, '/', n);
    if (!slash) {
        *len = 1;
        return ".";
    }
    n = (size_t)(slash - v);
    while (n > 1 && v[n - 1] == '/')
        n--;
    *len = n ? n : 1;
    return n ? v : "/";
}

/* The part of value `v` that replacement `kind` stands for: (pointer, *len). */
static const char *transform(enum rep_kind kind, const char *v, size_t *len)
{
    *len = strlen(v);
    switch (kind) {
    case REP_NOEXT:
        strip_ext(v, len);
        return v;
    case REP_BASE:
        return base_of(v, len);
    case REP_DIR:
        return dir_of(v, len);
    case REP_BASE_NOEXT:
        v = base_of(v, len);
        strip_ext(v, len);
        return v;
    default:
        return v;
    }
}

/* ---- shell quoting and the shell rule --------------------------------------- */

static bool quote_safe(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_' || c == '.' || c == '+' || c == '/';
}

/* As GNU parallel: words of safe characters stay bare, others are put in single
 * quotes, where only ' itself needs care: it becomes '"'"'; a '' left at
 * either end is dropped ("'" gives "'" rather than ''"'"''). */
static void shell_quote_n(strbuf *sb, const char *s, size_t n)
{
    size_t safe = 0;
    while (safe < n && quote_safe(s[safe]))
        safe++;
    if (n && safe == n) {
        sb_put(sb, s, n);
        return;
    }
    size_t begin = sb->len;
    sb_putc(sb, '\'');
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\'')
            sb_put(sb, "'\"'\"'", 5);
        else
            sb_putc(sb, s[i]);
    }
    sb_putc(sb, '\'');
    char *q = sb->data;
    if (sb->len - begin > 4 && q[sb->len - 2] == '\'' && q[sb->len - 3] == '"')
        sb->len -= 2, q[sb->len] = '\0';
    if (sb->len - begin > 4 && sb->data[begin + 1] == '\'' && s[0] == '\'') {
        memmove(sb->data + begin, sb->data + begin + 2, sb->len - begin - 2);
        sb->len -= 2, sb->data[sb->len] = '\0';
    }
}

void shell_quote(strbuf *sb, const char *s) { shell_quote_n(sb, s, strlen(s)); }

/* Characters that mean something to /bin/sh anywhere in a word. */
static const char shell_chars[] = " \t\n\r|&;<>()$`\\\"'*?[]#~{}!";

/* Words the shell treats itself when they come first: reserved words and
 * builtins, some of which also exist as programs that behave differently. */
static const char *const shell_words[] = {
    "if", "then", "else", "elif", "fi", "case", "esac", "for", "while", "until",
    "do", "done", "in", "function", "select", "time", ".", ":", "break",
    "continue", "eval", "exec", "exit", "export", "readonly", "return", "set",
    "shift", "times", "trap", "unset", "cd", "alias", "unalias", "bg", "fg",
    "jobs", "wait", "read", "umask", "ulimit", "command", "type", "hash",
    "getopts", "local", "source", "let", "declare", "typeset",
};

/* Whether the shell would read word `w` differently from a literal argument. */
static bool word_needs_shell(const char *w, bool first)
{
    if (!*w)
        return true; /* the shell drops an empty unquoted word */
    for (const char *p = w; *p;) {
        rep r;
        size_t n = match_rep(p, &r);
        if (n) {
            p += n;
            continue;
        }
        if (strchr(shell_chars, *p) || (first && (*p == '=' || *p == '%')))
            return true;
        p++;
    }
    if (!first)
        return false;
    for (size_t i = 0; i < sizeof shell_words / sizeof shell_words[0]; i++)
        if (strcmp(w, shell_words[i]) == 0)
            return true;
    return false;
}

static bool word_has_rep(const char *w)
{
    rep r;
    for (const char *p = w; *p; p++)
        if (match_rep(p, &r))
            return true;
    return false;
}

char *path_search(const char *name)
{
    const char *path = getenv("PATH");
    if (!path)
        path = "/bin:/usr/bin";
    strbuf sb = {0};
    for (const char *p = path;; p++) {
        const char *end = strchrnul(p, ':');
        sb.len = 0;
        sb_put(&sb, p == end ? "." : p, p == end ? 1 : (size_t)(end - p));
        sb_putc(&sb, '/');
        sb_puts(&sb, name);
        struct stat st;
        if (stat(sb.data, &st) == 0 && S_ISREG(st.st_mode) && access(sb.data, X_OK) == 0)
            return sb.data;
        if (!*end)
            break;
        p = end;
    }
    sb_free(&sb);
    return NULL;
}

/*
 * The shell rule: a shell runs the command when a word is empty, when a word has
 * one of   space tab newline CR | & ; < > ( ) $ ` \ " ' * ? [ ] # ~ { } !
 * outside its replacement strings, when the first word has = or %, when the
 * first word is a shell keyword or builtin, or when the first word is fixed and
 * not found in $PATH (so that the shell reports it, with status 127).
 */
void tmpl_init(tmpl *t, char **words, int nwords, int shell_mode)
{
    *t = (tmpl){.words = words, .nwords = nwords};
    for (int i = 0; i < nwords; i++) {
        t->shell |= word_needs_shell(words[i], i == 0);
        t->has_rep |= word_has_rep(words[i]);
    }
    if (shell_mode != 0)
        t->shell = shell_mode > 0; /* --shell, --no-shell or -q */
    if (t->shell || strchr(words[0], '/') || word_has_rep(words[0]))
        return;
    t->exe = path_search(words[0]);
    t->shell = !t->exe && shell_mode == 0;
}

void tmpl_free(tmpl *t)
{
    free(t->exe);
    t->exe = NULL;
}

/* ---- expansion --------------------------------------------------------------- */

static void word_begin(const tmpl *t, expansion *x)
{
    if (t->shell) {
        if (x->text.len)
            sb_putc(&x->text, ' ');
        return;
    }
    if (x->argc + 1 >= x->cap) {
        x->cap = x->cap ? 2 * x->cap : 16;
        x->offs = xrealloc(x->offs, x->cap * sizeof *x->offs);
        x->argv = xrealloc(x->argv, x->cap * sizeof *x->argv);
    }
    x->offs[x->argc++] = x->text.len;
}

static void word_end(const tmpl *t, expansion *x)
{
    if (!t->shell)
        sb_putc(&x->text, '\0');
}

static void put_value(const tmpl *t, enum rep_kind kind, const char *v, expansion *x)
{
    size_t n;
    const char *s = transform(kind, v, &n);
    if (t->shell)
        shell_quote_n(&x->text, s, n);
    else
        sb_put(&x->text, s, n);
}

static void put_number(expansion *x, long n)
{
    char buf[24];
    sb_put(&x->text, buf, (size_t)snprintf(buf, sizeof buf, "%ld", n));
}

/* {} with several sources: each value, as its own word (as GNU parallel). */
static void put_rep(const tmpl *t, const rep *r, const char *const *vals, int nvals,
                    long seq, long slot, expansion *x)
{
    if (r->kind == REP_SEQ || r->kind == REP_SLOT) {
        put_number(x, r->kind == REP_SEQ ? seq : slot);
        return;
    }
    if (r->src) {
        if (r->src <= nvals)
            put_value(t, r->kind, vals[r->src - 1], x);
        x->missing |= r->src > nvals; /* nothing, whatever its form */
        return;
    }
    for (int i = 0; i < nvals; i++) {
        if (i) {
            word_end(t, x);
            word_begin(t, x);
        }
        put_value(t, r->kind, vals[i], x);
    }
}

/* Expand the replacement strings of the n bytes at w into x->text. */
static void expand_text(const tmpl *t, const char *w, size_t n, const char *const *vals,
                        int nvals, long seq, long slot, expansion *x)
{
    const char *lit = w, *end = w + n;
    for (const char *p = w; p < end;) {
        rep r;
        size_t len = match_rep(p, &r);
        if (!len || p + len > end) {
            p++;
            continue;
        }
        sb_put(&x->text, lit, (size_t)(p - lit));
        put_rep(t, &r, vals, nvals, seq, slot, x);
        p += len;
        lit = p;
    }
    sb_put(&x->text, lit, (size_t)(end - lit));
}

/* A word made empty by missing values ({3} of two) is dropped, as the shell
 * drops it from GNU parallel's command line. */
static void expand_one(const tmpl *t, const char *w, const char *const *vals,
                       int nvals, long seq, long slot, expansion *x)
{
    word_begin(t, x);
    x->missing = false;
    expand_text(t, w, strlen(w), vals, nvals, seq, slot, x);
    if (!t->shell && x->missing && x->text.len == x->offs[x->argc - 1]) {
        x->argc--;
        return;
    }
    word_end(t, x);
}

/* Whether the n bytes at w have a replacement string of every value ({}...). */
static bool has_all_rep(const char *w, size_t n)
{
    rep r;
    for (const char *p = w; p < w + n; p++) {
        size_t len = match_rep(p, &r);
        if (len && p + len <= w + n && !r.src && r.kind != REP_SEQ && r.kind != REP_SLOT)
            return true;
    }
    return false;
}

/* -X, -N in a shell command: as GNU parallel, the context is the run of
 * non-blanks around {}: that run is repeated for each value. */
static void expand_tokens(const tmpl *t, const char *w, const char *const *vals,
                          int nvals, long seq, long slot, expansion *x)
{
    word_begin(t, x);
    for (const char *p = w; *p;) {
        size_t blanks = strspn(p, " \t\n");
        sb_put(&x->text, p, blanks);
        p += blanks;
        size_t n = strcspn(p, " \t\n");
        bool each = has_all_rep(p, n);
        for (int i = 0; i < (each ? nvals : 1); i++) {
            if (i)
                sb_putc(&x->text, ' ');
            expand_text(t, p, n, each ? vals + i : vals, each ? 1 : nvals, seq, slot, x);
        }
        p += n;
    }
    word_end(t, x);
}

/* -X, -N: a word with {} is repeated for each value, context and all. */
static void expand_word(const tmpl *t, const char *w, const char *const *vals,
                        int nvals, long seq, long slot, expansion *x)
{
    if (!t->context || nvals < 2 || !has_all_rep(w, strlen(w))) {
        expand_one(t, w, vals, nvals, seq, slot, x);
    } else if (t->shell) {
        expand_tokens(t, w, vals, nvals, seq, slot, x);
    } else {
        for (int i = 0; i < nvals; i++)
            expand_one(t, w, vals + i, 1, seq, slot, x);
    }
}

static void finish_argv(const tmpl *t, expansion *x)
{
    if (t->shell) {
        if (x->cap < 4) {
            x->cap = 16;
            x->argv = xrealloc(x->argv, x->cap * sizeof *x->argv);
            x->offs = xrealloc(x->offs, x->cap * sizeof *x->offs);
        }
        x->argv[0] = "/bin/sh";
        x->argv[1] = "-c";
        x->argv[2] = x->text.data;
        x->argv[3] = NULL;
        x->argc = 3;
        return;
    }
    for (int i = 0; i < x->argc; i++)
        x->argv[i] = x->text.data + x->offs[i];
    x->argv[x->argc] = NULL;
    if (t->exe)
        x->argv[0] = t->exe;
}

void tmpl_expand(const tmpl *t, const char *const *vals, int nvals, long seq,
                 long slot, expansion *x)
{
    x->text.len = 0;
    x->argc = 0;
    for (int i = 0; i < t->nwords; i++)
        expand_word(t, t->words[i], vals, nvals, seq, slot, x);
    for (int i = 0; !t->has_rep && i < nvals; i++) {
        word_begin(t, x);
        put_value(t, REP_VALUE, vals[i], x);
        word_end(t, x);
    }
    finish_argv(t, x);
}

void expansion_format(const tmpl *t, const expansion *x, strbuf *line)
{
    line->len = 0;
    sb_puts(line, "");
    if (t->shell) {
        sb_puts(line, x->text.data);
        return;
    }
    for (int i = 0; i < x->argc; i++) {
        if (i)
            sb_putc(line, ' ');
        shell_quote(line, x->text.data + x->offs[i]);
    }
}

void expansion_print(const tmpl *t, const expansion *x, FILE *f)
{
    strbuf line = {0};
    expansion_format(t, x, &line);
    fprintf(f, "%s\n", line.data);
    sb_free(&line);
}

void expand_string(const char *s, const char *const *vals, int nvals,
                   long seq, long slot, strbuf *out)
{
    out->len = 0;
    sb_puts(out, "");
    for (const char *p = s; *p;) {
        rep r;
        size_t n = match_rep(p, &r);
        if (!n) {
            sb_putc(out, *p++);
            continue;
        }
        if (r.kind == REP_SEQ || r.kind == REP_SLOT) {
            char buf[24];
            sb_put(out, buf, (size_t)snprintf(buf, sizeof buf, "%ld",
                                              r.kind == REP_SEQ ? seq : slot));
        }
        for (int i = 0; i < nvals && r.kind != REP_SEQ && r.kind != REP_SLOT; i++) {
            if (r.src && i != r.src - 1)
                continue;
            if (!r.src && i)
                sb_putc(out, ' ');
            size_t len;
            const char *v = transform(r.kind, vals[i], &len);
            sb_put(out, v, len);
        }
        p += n;
    }
}

void expansion_free(expansion *x)
{
    sb_free(&x->text);
    free(x->offs);
    free(x->argv);
    *x = (expansion){0};
}
