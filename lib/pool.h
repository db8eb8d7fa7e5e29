/* The pool's internal shape, shared by pool.c, cycle.c, stats.c and the glue.
 *
 * A pool owns three arrays of locals (one local per allowed CPU).  At any time
 * each array plays one role:
 *   cur  the locals gets and puts use now;
 *   vic  the victim cache: what the last cycle took out of cur;
 *   drp  what the last cycle dropped: drained (objects to free_fn or forgotten)
 *        as soon as it may be, then reused as the next cur.
 * A cycle rotates the roles (cur, vic, drp) <- (drp, cur, vic).
 *
 * Arrays are never freed before gcpool_destroy, and every way an object leaves
 * an array is exclusive (the local's pin for private and the chain head, a CAS
 * for the chain tail).  So a thread that loaded an array pointer just before a
 * cycle rotated it away touches live memory, and whatever it puts there is
 * later handed out or dropped, once: a stale pointer costs a cache miss, never
 * an object.
 */
#ifndef GCPOOL_POOL_H
#define GCPOOL_POOL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gcpool.h"
#include "lock.h"
#include "ring.h"

/* Counters of one local.  Written only by the thread that holds the local's pin
 * (a relaxed load and store, no read-modify-write), read by anyone (relaxed):
 * no shared atomic on the hot path. */
struct gcp_counters {
    _Atomic uint64_t gets, puts, news;
    _Atomic uint64_t hit_private, hit_shared, hit_steal, hit_victim, miss;
};

static inline void gcp_count(_Atomic uint64_t *c, uint64_t n)
{
    /* Relaxed: only the pin holder writes, readers only need an untorn value. */
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

struct gcp_local {
    gcp_lock_t pin;           /* owner operations on this local hold it */
    void *private_;           /* one object for the owner alone; under pin */
    struct gcp_chain shared;  /* owner at the head (under pin), thieves at the tail */
    struct gcp_counters counters;
};

struct gcp_locals {
    unsigned n;      /* locals, as the topology's nlocals */
    size_t stride;   /* bytes between locals: a multiple of the line size, >= 128 */
    char *base;      /* local i at base + i*stride, aligned to the stride unit */
    void *mem;       /* what gcp_mem_alloc returned */
};

static inline struct gcp_local *gcp_local_at(const struct gcp_locals *a, unsigned i)
{
    return (struct gcp_local *)(a->base + (size_t)i * a->stride);
}

struct gcpool {
    gcpool_new_fn new_fn;
    gcpool_free_fn free_fn;
    void *arg;
    char *name;
    unsigned index;                   /* creation order: names unnamed pools in reports */
    uint32_t ring_min, ring_max;      /* ring sizes (GCPOOL_RING_MIN, GCPOOL_RING_MAX) */
    bool victim_on;                   /* GCPOOL_VICTIM */
    gcp_lock_t init_lock;             /* first use: one thread sets up the arrays */

    /* Roles, swapped by cycles.  Acquire loads pair with the release stores of
     * the rotation and of the lazy first use, so a reader sees a set-up array. */
    struct gcp_locals *_Atomic cur, *_Atomic vic, *_Atomic drp;
    struct gcp_locals *arrays[3];     /* the storage behind the roles; NULL until first use */
    /* The victim array a get found empty, so later gets skip it (Go's
     * victimSize = 0).  Naming the array, not a flag, means a get that races
     * with a cycle can only mark the array that is no longer the victim. */
    struct gcp_locals *_Atomic victim_empty;
    _Atomic int drain_pending;        /* drp holds objects a cycle could not drop in place */

    _Atomic uint64_t dropped;         /* slow path: cycles and destroy only */
    _Atomic uint64_t moved_to_victim; /* objects cycles moved to the victim */
    _Atomic uint64_t last_moved, last_dropped; /* the same for the last cycle alone */

    /* Registry link: written under the registry lock, walked by drains (cycle.c). */
    struct gcpool *_Atomic next_pool;
    _Atomic bool registered;
};

/* Drops every object of array a (private slots and chains) to free_fn, or
 * forgets it when there is none.  Safe at any time, against any concurrent
 * get and put: every removal is exclusive.  Returns the objects dropped. */
uint64_t gcp_pool_drain(struct gcpool *p, struct gcp_locals *a);
/* Objects array a holds now (a racy snapshot, for statistics). */
uint64_t gcp_pool_count(const struct gcp_locals *a);

/* Sets up the arrays on first use; returns cur, or NULL (errno ENOMEM). */
struct gcp_locals *gcp_pool_first_use(struct gcpool *p);

/* Bytes between two locals, as this process lays them out. */
size_t gcp_local_stride(void);

#endif
