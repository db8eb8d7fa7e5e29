/* gcpool-info --env-man: the environment table as man(7) source, for gcpool(7). */
#ifndef GCPOOL_TOOLS_ENV_MAN_H
#define GCPOOL_TOOLS_ENV_MAN_H

#include <stdio.h>

/* Prints lib/env.c's table (as gcp_env_print_markdown writes it) as one .TP
 * entry per variable.  0, or -1 with errno set when the table could not be
 * read or written. */
int gcp_env_print_man(FILE *out);

#endif
