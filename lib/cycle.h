/* The cleanup cycle and the registry of pools it visits (cycle.c). */
#ifndef GCPOOL_CYCLE_H
#define GCPOOL_CYCLE_H

#include <stdbool.h>
#include "lib/pool.h"

/* Adds a new pool (cycles skip it until its first use sets up its arrays). */
void gcp_cycle_register(struct gcpool *p);
/* Removes a pool; waits for a cycle's drains in progress. */
void gcp_cycle_unregister(struct gcpool *p);
/* gcp_cycle_in_collector (one cycle from inside the collector, its lock held:
 * no allocation, no free_fn) and gcp_cycle_try (one cycle unless one is
 * running, with its cause: the simulated policies, memory pressure) are
 * declared in glue.h, which hands them to the sources at install. */
/* Hands to free_fn what cycles inside the collector had to leave behind. */
void gcp_cycle_drain_pending(void);
/* For the fork handlers (fork.c) only, which take every lock in order:
 * takes (true) or releases (false) drain_mutex with none of the bookkeeping
 * of a drain, and reads the registry's newest pool (then p->next_pool),
 * the registry lock being held. */
void gcp_cycle_fork_hold(bool take);
struct gcpool *gcp_cycle_first_pool(void);
/* Calls fn for every registered pool, pools held still (no destroy meanwhile). */
void gcp_cycle_each_pool(void (*fn)(struct gcpool *, void *), void *arg);

#endif
