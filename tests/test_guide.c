/*
 * test_guide.c: every C snippet of docs/guide.md is quoted from a program in
 * examples/guide_*.c, which the test build compiles and runs; so the guide
 * cannot show code that does not compile or does not do what it says.
 * A snippet may skip lines: a line holding only "..." splits it into pieces,
 * each of which must appear verbatim in one and the same example file.
 */
#include "testutil.h"

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "re");
    assert_non_null(f);
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    assert_non_null(mem);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        fwrite(chunk, 1, n, mem);
    fclose(f);
    fclose(mem);
    return buf;
}

static const char *src_dir(void)
{
    const char *src = getenv("CONCUR_SRC");
    return src ? src : ".";
}

/* Whether every piece of snippet (split at "...\n" lines) occurs in text.
 * Modifies snippet, and restores it. */
static bool quoted_from(char *snippet, const char *text)
{
    for (char *piece = snippet; piece && *piece;) {
        char *cut = strstr(piece, "\n...\n");
        char *next = NULL;
        if (cut) {
            cut[1] = '\0';
            next = cut + 5;
        }
        bool found = strstr(text, piece) != NULL;
        if (cut)
            cut[1] = '.';
        if (!found)
            return false;
        piece = next;
    }
    return true;
}

static bool in_some_example(const char *snippet, char **texts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char *copy = strdup(snippet);
        bool ok = quoted_from(copy, texts[i]);
        free(copy);
        if (ok)
            return true;
    }
    return false;
}

static void every_snippet_is_quoted_from_an_example(void **state)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/examples/guide_*.c", src_dir());
    glob_t g;
    assert_int_equal(glob(path, 0, NULL, &g), 0);
    char **texts = calloc(g.gl_pathc, sizeof *texts);
    for (size_t i = 0; i < g.gl_pathc; i++)
        texts[i] = slurp(g.gl_pathv[i]);
    snprintf(path, sizeof path, "%s/docs/guide.md", src_dir());
    char *guide = slurp(path);
    int snippets = 0;
    for (char *p = guide; (p = strstr(p, "\n```c\n"));) {
        char *start = p + 6, *end = strstr(start, "\n```\n");
        assert_non_null(end);
        end[1] = '\0';
        if (!in_some_example(start, texts, g.gl_pathc))
            fail_msg("docs/guide.md: not in examples/guide_*.c:\n%s", start);
        end[1] = '`';
        snippets++;
        p = end + 1;
    }
    assert_true(snippets >= 8);
    for (size_t i = 0; i < g.gl_pathc; i++)
        free(texts[i]);
    free(texts);
    free(guide);
    globfree(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CC_TEST(every_snippet_is_quoted_from_an_example),
    };
    return CC_RUN_TESTS(tests);
}
