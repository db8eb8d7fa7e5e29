/* The machine as the pool sees it: which CPUs get a local, how a CPU number
 * finds its local, how far apart locals are, and the cache line that pads them.
 * Loaded once per process from hwloc (topology/hwloc.c). */
#ifndef GCPOOL_TOPOLOGY_H
#define GCPOOL_TOPOLOGY_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/env.h" /* GCPOOL_STEAL's choices: enum gcp_steal_mode */


struct gcp_topology {
    unsigned nlocals;         /* allowed PUs, >= 1; locals are numbered 0..nlocals-1 */
    unsigned line_size;       /* L1d line size hwloc reports (when the L1d's is unknown, the
                                 nearest cache's that is known; else 64) */
    unsigned local_align;     /* max(line_size, 128) rounded up to a power of two: a local's
                                 alignment and stride unit */
    unsigned *local_os_index; /* [nlocals]: local -> OS CPU number */
    int *cpu_to_local;        /* [ncpu_table]: OS CPU number -> local, or -1 when not allowed */
    unsigned ncpu_table;      /* entries in cpu_to_local (max OS index + 1) */
    unsigned *steal_order;    /* [nlocals][nlocals-1]: the locals local L steals from, in order */
    enum gcp_steal_mode steal_mode; /* the order in force (round robin in the flat default) */
    bool this_system;         /* false when hwloc loads another machine (HWLOC_XMLFILE, HWLOC_SYNTHETIC) */
    bool from_hwloc;          /* false when hwloc failed and a flat default stands in */
    char error[160];          /* why hwloc failed, when from_hwloc is false */
};

/* The process-wide topology, loaded on first call (thread-safe, never freed).
 * Never NULL: when hwloc fails, a flat topology of the configured CPUs stands in. */
const struct gcp_topology *gcp_topology(void);

/* Loads a topology afresh (tests, gcpool-info).  Returns 0, or -1 with t->error
 * set and a flat default in *t.  steal_mode picks the steal order. */
int gcp_topology_load(struct gcp_topology *t, enum gcp_steal_mode steal_mode);
void gcp_topology_free(struct gcp_topology *t);

/* The local of OS CPU cpu, valid for every int: a CPU outside the table or not
 * allowed maps onto some local (cpu modulo nlocals), so nothing breaks. O(1). */
static inline unsigned gcp_topology_local_of(const struct gcp_topology *t, int cpu)
{
    if (cpu >= 0 && (unsigned)cpu < t->ncpu_table && t->cpu_to_local[cpu] >= 0)
        return (unsigned)t->cpu_to_local[cpu];
    return cpu < 0 ? 0u : (unsigned)cpu % t->nlocals;
}

/* The locals local l steals from, in order: nlocals-1 entries. */
static inline const unsigned *gcp_topology_steal_order(const struct gcp_topology *t, unsigned l)
{
    return t->steal_order + (size_t)l * (t->nlocals - 1);
}

#endif
