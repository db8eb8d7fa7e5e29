/* Checked mode (GCPOOL_DEBUG=1), for users hunting misuse (lib/debug.c):
 * a put of an object already cached is reported and not cached twice; like
 * Go's race mode a fraction of puts is dropped at random, so that code that
 * assumes "what I put I get back" fails in testing; when the pool knows its
 * objects' size (gcpool_options_t.size) cached objects are filled with a
 * poison pattern, checked on get, and writes after put are reported. */
#ifndef GCPOOL_DEBUG_H
#define GCPOOL_DEBUG_H

#include <stdbool.h>

#include "pool.h"

extern bool gcp_debug; /* GCPOOL_DEBUG, read at the first pool */

void gcp_debug_init(void);

enum gcp_debug_verdict {
    GCP_DEBUG_CACHE,  /* cache it as usual */
    GCP_DEBUG_IGNORE, /* already cached: reported, the put does nothing */
    GCP_DEBUG_DROP,   /* dropped at random: the pool drops it (free_fn) */
};
/* Every put of a non-NULL object, before it is cached. */
enum gcp_debug_verdict gcp_debug_put(struct gcpool *p, void *obj);
/* Every object a get returns (from the pool or from new_fn). */
void gcp_debug_get(struct gcpool *p, void *obj);
/* Every object the pool drops (to free_fn or forgotten). */
void gcp_debug_dropped(struct gcpool *p, void *obj);
/* A pool's destruction: forget what was tracked for it. */
void gcp_debug_destroyed(struct gcpool *p);

/* Test hooks: call while no pool is in use. */
/* One put in one_in is dropped at random (default 4, as Go's race mode); 0: none. */
void gcp_debug_set_drop_rate(unsigned one_in);
/* Checked mode on or off for this process, whatever GCPOOL_DEBUG says (for
 * tests that cannot start a process per case, e.g. under CK_FORK=no). */
void gcp_debug_force(bool on);

#endif
