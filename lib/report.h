/* What gcpool prints, whoever prints it: warning lines, JSON strings, and the
 * name a pool goes by in both.  Reports themselves are in stats.c, the
 * environment's listing in env.c. */
#ifndef GCPOOL_REPORT_H
#define GCPOOL_REPORT_H

#include <stddef.h>
#include <stdio.h>

struct gcpool;

/* Prints one line to stderr (a newline is added) in one write, so lines of
 * racing threads do not mix: every warning and report line gcpool prints.
 * Safe in a signal handler; keeps errno. */
__attribute__((format(printf, 1, 2))) void gcp_warn(const char *fmt, ...);
/* s as a JSON string, quotes included. */
void gcp_json_string(FILE *out, const char *s);
/* p's name in reports: its own, or pool#N (in buf, of len bytes). */
const char *gcp_pool_name(const struct gcpool *p, char *buf, size_t len);

#endif
