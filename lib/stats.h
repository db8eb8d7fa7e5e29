/* Statistics: per-local counters summed on read, and the reports (stats.c). */
#ifndef GCPOOL_STATS_H
#define GCPOOL_STATS_H

#include "pool.h"

/* Registers the at-exit report once, when GCPOOL_STATS asks for one. */
void gcp_stats_at_exit(void);

/* Keeps a destroyed pool's line for the report at exit (GCPOOL_STATS on). */
void gcp_stats_retire(struct gcpool *p);

/* Sums a pool's counters (every array: roles rotate, counts stay). */
void gcp_stats_sum(struct gcpool *p, gcpool_stats_t *out);

#endif
