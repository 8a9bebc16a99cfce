/*
 * results.c: --results DIR of `concur run`, as GNU parallel's.
 *
 * DESIGN. Each job's output goes, instead of our stdout and stderr, into
 * DIR/1/VALUE1/2/VALUE2.../{stdout,stderr,seq}: one level per value (source,
 * or column with --colsep), the value escaped as GNU parallel does ('\' as
 * '\\', '/' as '\_'; "" and ".." are left as they are, as there). The path is
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

char *results_dir(const char *dir, const char *const *vals, int nvals)
{
    strbuf sb = {0};
    sb_puts(&sb, dir);
    for (int i = 0; i < nvals; i++) {
        char num[24];
        sb_put(&sb, num, (size_t)snprintf(num, sizeof num, "/%d/", i + 1));
        for (const char *p = vals[i]; *p; p++)
            if (*p == '\\')
                sb_puts(&sb, "\\\\");
            else if (*p == '/')
                sb_puts(&sb, "\\_");
            else
                sb_putc(&sb, *p);
    }
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
