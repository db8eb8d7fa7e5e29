/* Checked mode (GCPOOL_DEBUG=1), for users hunting misuse (lib/debug.c):
 * a put of an object the pool still holds is reported and not cached twice;
 * like Go's race mode a fraction of puts is dropped at random, so that code
 * that assumes "what I put I get back" fails in testing — such an object is
 * held, out of the gets' reach, until the next drain hands it to free_fn, so
 * that a second put of it is caught too; when the pool knows its objects'
 * size (gcpool_options_t.size) held objects are filled with a poison
 * pattern, checked on get and on drop, and writes after put are reported. */
#ifndef GCPOOL_DEBUG_H
#define GCPOOL_DEBUG_H

#include <stdbool.h>

#include "pool.h"

extern bool gcp_debug; /* GCPOOL_DEBUG, read at the first pool */

void gcp_debug_init(void);

enum gcp_debug_verdict {
    GCP_DEBUG_CACHE,     /* cache it as usual */
    GCP_DEBUG_IGNORE,    /* the pool holds it already: reported, the put does nothing */
    GCP_DEBUG_HELD,      /* dropped at random: checked mode holds it for the next drain */
    GCP_DEBUG_HELD_FULL, /* the same, and p's held objects reached GCP_DEBUG_HELD_MAX:
                            the caller releases them now (gcp_pool_release_held) */
};
/* Random drops a pool holds at most before a put releases them all, so that
 * a program without cycles does not accumulate them. */
#define GCP_DEBUG_HELD_MAX 256
/* Every put of a non-NULL object, before it is cached. */
enum gcp_debug_verdict gcp_debug_put(struct gcpool *p, void *obj);
/* Takes every object held for p and hands each to fn(obj, p) once, outside
 * any lock (fn calls gcp_debug_dropped); returns how many. */
uint64_t gcp_debug_release_held(struct gcpool *p, void (*fn)(void *obj, void *pool));
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
