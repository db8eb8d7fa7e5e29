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
#include <stddef.h>
#include <stdint.h>

#include "lib/pool.h"

extern bool gcp_debug; /* GCPOOL_DEBUG, read at the first pool */

void gcp_debug_init(void);
/* fork.c's checked-mode handlers: every shard's lock taken (true) or released
 * (false); in the child, released with the objects out before the fork
 * marked as no longer anyone's. */
void gcp_debug_fork_lock(bool take);
void gcp_debug_fork_child(void);

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

/* Buffer pools (lib/buf.c): checked mode remembers the capacity each buffer
 * was handed out with. */
void gcp_debug_buf_out(void *buf, size_t capacity);
enum gcp_debug_buf_verdict {
    GCP_DEBUG_BUF_POOL,    /* pool it as usual */
    GCP_DEBUG_BUF_IGNORE,  /* a double put, or not a buffer of ours: reported; touch nothing */
    GCP_DEBUG_BUF_RELEASE, /* a capacity beyond the one handed out: reported; release it */
};
/* Every put of a non-NULL buffer, before anything else; bp_name for reports. */
enum gcp_debug_buf_verdict gcp_debug_buf_back(const char *bp_name, void *buf, size_t capacity);
/* A buffer released (freed, or left to the collector) rather than pooled. */
void gcp_debug_buf_released(void *buf);

/* Destroyed handles: in checked mode a destroyed pool's or buffer pool's own
 * struct is not freed but kept, marked, so that a call through the handle is
 * reported; release frees it once GCP_DEBUG_SHELLS_MAX newer ones are kept. */
#define GCP_DEBUG_SHELLS_MAX 4096
void gcp_debug_keep_shell(void *shell, void (*release)(void *));
/* Reports call (e.g. "gcpool_put of object 0x…") through destroyed pool p,
 * and what the library did instead (outcome). */
void gcp_debug_after_destroy(struct gcpool *p, const char *call, const char *outcome);

/* Test hooks: call while no pool is in use. */
/* One put in one_in is dropped at random (default 4, as Go's race mode); 0: none. */
void gcp_debug_set_drop_rate(unsigned one_in);
/* Checked mode on or off for this process, whatever GCPOOL_DEBUG says (for
 * tests that cannot start a process per case, e.g. under CK_FORK=no). */
void gcp_debug_force(bool on);

#endif
