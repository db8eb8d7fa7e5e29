/* The table of statistics fields, for the README and gcpool(3).
 *
 * GCPOOL_STAT_FIELDS (gcpool.h) generates the struct, the reports and the
 * buffer classes' copy; lib/stats.c keeps it as data (gcp_stat_fields), and
 * this renders that data, so the documentation lists exactly the counters the
 * library has (tests/test_readme_stats.sh and tests/test_man.sh compare). */
#include "tools/stats-fields.h"

#include <stdbool.h>
#include <string.h>

#include "lib/stats.h"

/* What the text report prints in a field's column. */
static const char *column_text(const struct gcp_stat_field *f)
{
    return f->column == GCP_STAT_COL_SHARE ? " (% of gets)"
           : f->column == GCP_STAT_COL_NOW ? " (now)"
                                           : "";
}

int gcp_stats_print_markdown(FILE *out)
{
    fputs("| Field | Text report | Buffer classes | Description |\n|---|---|---|---|\n", out);
    for (size_t i = 0; i < GCP_STAT_NFIELDS; i++) {
        const struct gcp_stat_field *f = &gcp_stat_fields[i];
        fprintf(out, "| `%s` | `%s`%s | %s | %s |\n", f->name, f->heading, column_text(f),
                f->in_class ? "yes" : "no", f->doc);
    }
    return ferror(out) ? -1 : 0;
}

/* Appends s to line, as roff text when roff (a backslash escaped, and in
 * code, bold, a minus sign as \-), else as it is.  False when the line is
 * full. */
static bool put(char *line, size_t size, const char *s, bool roff, bool code)
{
    size_t n = strlen(line);
    for (; *s; s++) {
        const char *t = roff && *s == '\\' ? "\\e" : roff && code && *s == '-' ? "\\-" : NULL;
        char one[2] = {*s, 0};
        size_t len = strlen(t ? t : one);
        if (n + len >= size)
            return false;
        memcpy(line + n, t ? t : one, len + 1);
        n += len;
    }
    return true;
}

/* Two lines of text per field, each at most 78 bytes (mandoc's lint asks for
 * short source lines) and none starting with a dot or a quote, which roff
 * would read as a request: a longer description fails, so the test does. */
int gcp_stats_print_man(FILE *out)
{
    enum { LINE = 78 + 1 };
    for (size_t i = 0; i < GCP_STAT_NFIELDS; i++) {
        const struct gcp_stat_field *f = &gcp_stat_fields[i];
        char doc[LINE] = "", col[LINE] = "Report column \\fB";
        bool fits = put(doc, sizeof doc, f->doc, true, false) && put(doc, sizeof doc, ".", false, false) &&
                    put(col, sizeof col, f->heading, true, true) &&
                    put(col, sizeof col, "\\fP", false, false) &&
                    put(col, sizeof col, column_text(f), true, false) &&
                    put(col, sizeof col, f->in_class ? "; in buffer classes too." : "; pools only.",
                        false, false);
        if (!fits || doc[0] == '.' || doc[0] == '\'') {
            fprintf(stderr, "gcpool-info: %s's description does not fit a man page line\n", f->name);
            return -1;
        }
        fprintf(out, ".TP\n.B %s\n%s\n.br\n%s\n", f->name, doc, col);
    }
    return ferror(out) ? -1 : 0;
}
