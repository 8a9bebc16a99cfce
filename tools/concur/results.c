/*
 * results.c: --results DIR of `concur run`, as GNU parallel's.
 *
 * DESIGN. Each job's output goes, instead of our stdout and stderr, into
 * DIR/1/VALUE1/2/VALUE2.../{stdout,stderr,seq}: two levels per value, its
 * source (or column, with --colsep) and the value, escaped as GNU parallel
 * does ('\' as '\\', tab as '\t', '/' as '\_'; "" and ".." are left as they
 * are, as there). With --header the levels are named, in name order; with
 * -N each input of the job adds its levels in turn. The path is
 * made when the job starts (its values are gone when it ends); the captured
 * files are copied there when it ends.
 */
#include "runner.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The label of column k (from 0): its --header name, else its number. */
static const char *label(const inputs *in, int k, char num[24])
{
    if (k < in->nnames)
        return in->names[k];
    snprintf(num, 24, "%d", k + 1);
    return num;
}

/* Perl's ($a <=> $b or $a cmp $b) on labels, as GNU parallel sorts them. */
static int label_cmp(const char *a, const char *b)
{
    long x = strtol(a, NULL, 10), y = strtol(b, NULL, 10);
    return x != y ? (x < y ? -1 : 1) : strcmp(a, b);
}

/* The columns of a record, in GNU parallel's order: by label. */
static int *label_order(const inputs *in, int width)
{
    int *order = xmalloc((size_t)width * sizeof *order);
    char na[24], nb[24];
    for (int k = 0; k < width; k++) {
        int m = k;
        while (m > 0 && label_cmp(label(in, order[m - 1], na), label(in, k, nb)) > 0) {
            order[m] = order[m - 1];
            m--;
        }
        order[m] = k;
    }
    return order;
}

static void put_escaped(strbuf *sb, const char *v)
{
    for (const char *p = v; *p; p++)
        if (*p == '\\')
            sb_puts(sb, "\\\\");
        else if (*p == '\t')
            sb_puts(sb, "\\t");
        else if (*p == '/')
            sb_puts(sb, "\\_");
        else
            sb_putc(sb, *p);
}

char *results_dir(const char *dir, const inputs *in)
{
    int width = in->has_colsep || in->nsrc < 1 ? in->nvals : in->nsrc;
    int *order = label_order(in, width > 0 ? width : 1);
    strbuf sb = {0};
    char num[24];
    sb_puts(&sb, dir);
    for (int rec = 0; rec < in->nvals; rec += width) /* -N: records in turn */
        for (int k = 0; k < width && rec + order[k] < in->nvals; k++) {
            sb_putc(&sb, '/');
            sb_puts(&sb, label(in, order[k], num));
            sb_putc(&sb, '/');
            put_escaped(&sb, in->vals[rec + order[k]]);
        }
    free(order);
    return sb.data;
}

/* mkdir -p */
static int make_dirs(char *path)
{
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p)
            continue;
        char c = *p;
        *p = '\0';
        int r = mkdir(path, 0777);
        *p = c;
        if (r < 0 && errno != EEXIST)
            return -errno;
        if (!c)
            return 0;
    }
}

static int save_file(const char *dir, const char *name, int from, const char *text)
{
    strbuf path = {0};
    sb_puts(&path, dir);
    sb_putc(&path, '/');
    sb_puts(&path, name);
    int fd = open(path.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    sb_free(&path);
    if (fd < 0)
        return -errno;
    int r = text ? (write(fd, text, strlen(text)) < 0 ? -errno : 0)
                 : fd_copy_all(fd, from);
    close(fd);
    return r;
}

void results_save(runner *r, const job *j)
{
    char seq[24];
    snprintf(seq, sizeof seq, "%ld", j->seq);
    int err = make_dirs(j->resdir);
    if (!err)
        err = save_file(j->resdir, "seq", -1, seq);
    if (!err && j->out)
        err = save_file(j->resdir, "stdout", j->out->fd[0], NULL);
    if (!err && j->out)
        err = save_file(j->resdir, "stderr", j->out->fd[1], NULL);
    if (err < 0) {
        fprintf(stderr, "concur run: cannot save results in '%s': %s\n", j->resdir,
                strerror(-err));
        r->error = true;
    }
}
