/* The library's locks, in the one order they are taken, and assertions of
 * who holds them (bdwgc's GC_ASSERT(I_HOLD_LOCK())).
 *
 * A lock higher in the table may be held while one lower down is taken, never
 * the other way round (the fork handlers take them all, top to bottom):
 *
 *   lock                       where            taken by
 *   1 drain_mutex              lib/cycle.c      cycles, gcpool_destroy, reports; free_fn
 *                                               runs holding it and nothing else
 *   2 registry_mutex           gc_glue/glue.c   gcp_glue_locked (pools joining, leaving,
 *                                               rotations), the source's one move to Boehm
 *   3 Boehm's allocation lock  bdwgc            within 2 under Boehm (gcp_glue_locked); the
 *                                               collector holds it alone when it calls the
 *                                               cycle, and never waits for ours: so 2 + 3
 *                                               are "the registry lock"
 *   4 a pool's init_lock       lib/pool.c       first use; taken after the storage decision,
 *                                               which may take 2
 *   5 a local's pin            lib/pin.h        puts, gets, drains; the collector's cycle
 *                                               only tries it (never waits)
 *   6 a locked queue's mutex   lib/locked.c     within the local's pin
 *   7 the statistics' list     lib/stats.c      a leaf (retired pools)
 *   8 checked mode's shells,   lib/debug.c      leaves: nothing is taken within them; their
 *     then its shards                           fork handler runs last (lib/fork.c says why)
 *
 * The held flags are per thread, set after the lock is taken and cleared
 * before it is let go.  GCP_ASSERT is active in checked builds (GCP_DEBUG:
 * configure --enable-assertions, on by default with --enable-sanitizers) and
 * costs nothing otherwise; never put one on the get/put fast paths. */
#ifndef GCPOOL_LOCKORDER_H
#define GCPOOL_LOCKORDER_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "gc_glue/glue.h"
#include "lib/reentry.h"

#ifdef GCP_DEBUG
#define GCP_ASSERT(cond)                                                                      \
    ((cond) ? (void)0                                                                         \
            : (fprintf(stderr, "gcpool: %s:%d: assertion failed: %s\n", __FILE__, __LINE__,   \
                       #cond),                                                                \
               abort()))
#else
#define GCP_ASSERT(cond) ((void)sizeof(cond)) /* type-checked, never evaluated */
#endif

/* This thread holds drain_mutex (reentry.h's drain_held). */
static inline bool gcp_holds_drain(void)
{
    return gcp_self.drain_held;
}

/* This thread holds the registry lock (glue.h). */
static inline bool gcp_holds_registry(void)
{
    return gcp_glue_holds_registry();
}

#endif
