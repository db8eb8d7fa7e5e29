/* Statistics: per-local counters summed on read, and the reports (stats.c). */
#ifndef GCPOOL_STATS_H
#define GCPOOL_STATS_H

#include "pool.h"

/* Registers the at-exit report once, when GCPOOL_STATS asks for one. */
void gcp_stats_at_exit(void);

/* Keeps a destroyed pool's line for the report at exit (GCPOOL_STATS on). */
void gcp_stats_retire(struct gcpool *p);

/* Fork handlers (cycle.c): take (true) or let go of the destroyed pools'
 * list's lock, the last lock a fork takes. */
void gcp_stats_fork_lock(bool take);

/* Sums a pool's counters (every array: roles rotate, counts stay). */
void gcp_stats_sum(struct gcpool *p, gcpool_stats_t *out);

#endif
