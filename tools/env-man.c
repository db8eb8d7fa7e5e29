/* The environment table as man source: gcpool(7)'s ENVIRONMENT section.
 *
 * lib/env.c holds the one table of GCPOOL_* variables and prints it as the
 * README's Markdown table; this renders that very output, row by row, as
 * man(7) paragraphs, so the manual, the README and the parser read one table
 * (tests/test_man.sh compares man/gcpool.7 with it).  A row is
 *   | `NAME` | type | `default` | range | description |
 * with `code` spans and \| for a pipe inside a cell. */
#include "tools/env-man.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lib/env.h"

enum { CELLS = 5 };

/* Renders a cell's Markdown as roff text: `code` in bold (with \- for a
 * minus there), \| as a pipe, a backslash escaped. */
static void render(FILE *out, const char *s, size_t n)
{
    bool code = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '`')
            fputs((code = !code) ? "\\fB" : "\\fP", out);
        else if (c == '\\' && i + 1 < n && s[i + 1] == '|')
            fputc('|', out), i++;
        else if (c == '\\')
            fputs("\\e", out);
        else if (c == '-' && code)
            fputs("\\-", out);
        else
            fputc(c, out);
    }
    if (code)
        fputs("\\fP", out);
}

/* Writes prefix, the cell and suffix as text lines of at most 78 bytes,
 * broken at spaces (mandoc's lint asks for short source lines), each
 * protected with \& when it would start with a dot or a quote, so that roff
 * never reads text as a request. */
static void put_text(FILE *out, const char *prefix, const char *s, size_t n, const char *suffix)
{
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    if (!mem)
        return;
    fputs(prefix, mem);
    render(mem, s, n);
    fputs(suffix, mem);
    if (fclose(mem) != 0) {
        free(text);
        return;
    }
    for (const char *p = text; *p;) {
        while (*p == ' ')
            p++;
        size_t take = strlen(p), limit = 78;
        if (take > limit) {
            size_t cut = limit;
            while (cut > 0 && p[cut] != ' ')
                cut--;
            take = cut ? cut : strcspn(p, " "); /* a word longer than a line stays whole */
        }
        if (*p == '.' || *p == '\'')
            fputs("\\&", out);
        fwrite(p, 1, take, out);
        fputc('\n', out);
        p += take;
    }
    free(text);
}

/* Splits a row into its cells (trimmed; a \| stays inside its cell).  The
 * number of cells. */
static int split_row(const char *line, const char *cell[CELLS], size_t len[CELLS])
{
    int n = 0;
    const char *p = line;
    if (*p++ != '|')
        return 0;
    while (*p && *p != '\n' && n < CELLS) {
        const char *start = p;
        while (*p && *p != '\n' && !(*p == '|' && p[-1] != '\\'))
            p++;
        if (*p != '|')
            break;
        const char *end = p++;
        while (start < end && *start == ' ')
            start++;
        while (end > start && end[-1] == ' ')
            end--;
        cell[n] = start;
        len[n++] = (size_t)(end - start);
    }
    return n;
}

int gcp_env_print_man(FILE *out)
{
    char *md = NULL;
    size_t mdlen = 0;
    FILE *mem = open_memstream(&md, &mdlen);
    if (!mem)
        return -1;
    gcp_env_print_markdown(mem);
    if (fclose(mem) != 0) {
        free(md);
        return -1;
    }
    int rows = 0;
    for (char *line = md; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        const char *cell[CELLS];
        size_t len[CELLS];
        /* The header and the rule: no variable in their first cell. */
        if (split_row(line, cell, len) != CELLS || len[0] < 2 || cell[0][0] != '`')
            continue;
        fputs(".TP\n.B ", out);
        fwrite(cell[0] + 1, 1, len[0] - 2, out);
        fputc('\n', out);
        put_text(out, "", cell[4], len[4], ".");
        fputs(".br\n", out);
        put_text(out, "Type: ", cell[1], len[1], ".");
        put_text(out, "Default: ", cell[2], len[2], ".");
        put_text(out, "Range: ", cell[3], len[3], ".");
        rows++;
    }
    free(md);
    if (rows != GCP_ENV_COUNT) { /* the Markdown changed shape: fail, so the test does */
        fprintf(stderr, "gcpool-info: read %d of the %d variables' rows from the table\n", rows,
                GCP_ENV_COUNT);
        return -1;
    }
    return ferror(out) ? -1 : 0;
}
