/* Statistics: per-local counters summed on read, and the reports (stats.c). */
#ifndef GCPOOL_STATS_H
#define GCPOOL_STATS_H

#include "lib/pool.h"

/* Registers the at-exit report once, when GCPOOL_STATS asks for one. */
void gcp_stats_at_exit(void);

/* Keeps a destroyed pool's line for the report at exit (GCPOOL_STATS on). */
void gcp_stats_retire(struct gcpool *p);

/* Fork handlers (cycle.c): take (true) or let go of the destroyed pools'
 * list's lock, the last lock a fork takes. */
void gcp_stats_fork_lock(bool take);

/* The counters of GCPOOL_STAT_FIELDS (gcpool.h) as data: the reports print
 * from it, gcpool-info renders it as the README's and gcpool(3)'s tables. */
/* TOTAL, SHARE (a share of gets) and COUNT count up for ever; NOW is a level
 * (objects held now), which an interval's delta must not subtract. */
enum gcp_stat_column { GCP_STAT_COL_TOTAL, GCP_STAT_COL_SHARE, GCP_STAT_COL_COUNT, GCP_STAT_COL_NOW };
struct gcp_stat_field {
    const char *name;            /* the field, the JSON key */
    const char *heading;         /* the text report's column */
    const char *doc;             /* one line */
    size_t offset;               /* in gcpool_stats_t, of a uint64_t */
    enum gcp_stat_column column; /* GCP_STAT_COL_##column */
    bool in_class;               /* scope BOTH: in gcpool_buf_class_stats_t too */
};
#define GCP_STAT_ONE_(name, column, scope, heading, doc) +1
enum { GCP_STAT_NFIELDS = 0 GCPOOL_STAT_FIELDS(GCP_STAT_ONE_) };
#undef GCP_STAT_ONE_
extern const struct gcp_stat_field gcp_stat_fields[GCP_STAT_NFIELDS]; /* in struct order */

struct gcp_peek;
/* Sums a pool's counters (every array: roles rotate, counts stay). */
void gcp_stats_sum(struct gcpool *p, gcpool_stats_t *out);
/* The same for the pool at addr in the process pk reads (peek.h), its
 * struct copied to *seen when seen is not NULL; -1 when it cannot be read. */
int gcp_stats_peek(const struct gcp_peek *pk, const struct gcpool *addr, gcpool_stats_t *out,
                   struct gcpool *seen);
/* Objects array a holds now, read through pk (0 for NULL): gcp_pool_count's
 * body.  Loads only for this process: fine inside the collector. */
uint64_t gcp_stats_count(const struct gcp_peek *pk, const struct gcp_locals *a);

#endif
