/* gcpool-info --stats-markdown, --stats-man: the statistics counters of
 * GCPOOL_STAT_FIELDS as the README's table and as gcpool(3)'s list. */
#ifndef GCPOOL_TOOLS_STATS_FIELDS_H
#define GCPOOL_TOOLS_STATS_FIELDS_H

#include <stdio.h>

/* The README's Markdown table of gcpool_stats_t's fields.  0, or -1 when
 * the output could not be written. */
int gcp_stats_print_markdown(FILE *out);

/* The same as man(7) source, one .TP entry per field, for gcpool(3).  0, or
 * -1 when a line would be too long for the page's lint or on a write error. */
int gcp_stats_print_man(FILE *out);

#endif
