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
#include "lib/lock.h"
#include "lib/locked.h"
#include "lib/ring.h"

/* Counters of one local.  Written only by the thread that owns the local (a
 * relaxed load and store under the pin, no read-modify-write), read by anyone
 * (relaxed): no shared atomic on the hot path.  A get that hits the private
 * slot counts nothing: hit_private is derived on read from the private slot's
 * fills (stats.c), so the fastest get is one load and one store. */
struct gcp_counters {
    _Atomic uint64_t puts_shared;    /* puts that found private full */
    _Atomic uint64_t hit_shared, hit_steal, hit_victim, miss, news;
    _Atomic uint64_t victim_private; /* the part of hit_victim taken from a victim's private slot */
};

/* The same for the chain's rseq fast paths, incremented just after their
 * commit (pin.h says why not inside): a pin holder on another CPU must not
 * share a counter with them. */
struct gcp_seq_counters {
    _Atomic uint64_t hit_shared, puts_shared;
};

static inline void gcp_count(_Atomic uint64_t *c, uint64_t n)
{
    /* Relaxed: only the pin holder writes, readers only need an untorn value. */
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

struct gcp_local {
    /* First, in one line, what the sequences touch, at the offsets
     * gcpool/fastpath.h gives (lib/pool.c checks them): private_, fills,
     * pin, seq, then shared, whose first field is its head ring. */
    void *_Atomic private_;   /* relaxed accesses: statistics read it racily */
    _Atomic uint64_t fills;   /* objects ever put in private (fastpath.h says how counted) */
    gcp_lock_t pin;           /* the lock pin; under rseq, owner operations on the chain */
    struct gcp_seq_counters seq;
    struct gcp_chain shared;  /* owner at the head (under pin), thieves at the tail */
    void *private_dropped;    /* what a cycle took from private, until drained; under pin */
    struct gcp_locked locked; /* instead of shared, in Go 1.12's mode (GCPOOL_SHARED=locked) */
    struct gcp_counters counters;
};

/* The header of an array of locals, which follow it in the same block: base
 * is always (char *)(a + 1), as gcpool/fastpath.h's sequences expect. */
struct gcp_locals {
    char *base;      /* local i at base + i*stride, aligned to the stride unit */
    unsigned n;      /* locals, as the topology's nlocals */
    size_t stride;   /* bytes between locals: a multiple of the line size, >= 128 */
    void *mem;       /* what gcp_mem_alloc returned: the block holding all this */
};

static inline struct gcp_local *gcp_local_at(const struct gcp_locals *a, unsigned i)
{
    return (struct gcp_local *)(a->base + (size_t)i * a->stride);
}

/* What a pool's cur points to while it has no array of its own (before its
 * first use, once it stopped caching, while it is destroyed), so that cur is
 * never NULL and the sequences need not test it: one array, read-only, shared
 * by all pools, whose every local sends every sequence to the library - its
 * private slot holds GCP_NO_LOCALS_SLOT, which take treats as empty and fill
 * as taken, and its pin is held, so that push and pop give up.  Nothing ever
 * writes to it (it is mapped read-only): no sequence stores before its
 * checks pass, and the library reads cur through gcp_locals_real, which turns
 * it into NULL.  Set once, before the first pool exists. */
extern struct gcp_locals *gcp_no_locals;
#define GCP_NO_LOCALS_SLOT ((void *)-1) /* negative: no user-space object (fastpath.h) */

/* a, or NULL when it is gcp_no_locals. */
static inline struct gcp_locals *gcp_locals_real(struct gcp_locals *a)
{
    return a == gcp_no_locals ? NULL : a;
}

/* One past the largest enum gcpool_cycle_cause: grow it with the enum. */
#define GCP_CYCLE_CAUSES (GCPOOL_CYCLE_PRESSURE + 1)

struct gcpool {
    /* Roles, swapped by cycles.  Acquire loads pair with the release stores of
     * the rotation and of the lazy first use, so a reader sees a set-up array.
     * cur first: gcpool/fastpath.h's sequences, inlined in programs, read it
     * as the pool's first word.  cur is never NULL: gcp_no_locals stands for
     * no array (read it through gcp_locals_real). */
    struct gcp_locals *_Atomic cur, *_Atomic vic, *_Atomic drp;
    gcpool_new_fn new_fn;
    gcpool_free_fn free_fn;
    void *arg;
    char *name;
    size_t obj_size;                  /* gcpool_options_t.size: 0 when unknown */
    unsigned index;                   /* creation order: names unnamed pools in reports */
    uint32_t ring_min, ring_max;      /* ring sizes (GCPOOL_RING_MIN, GCPOOL_RING_MAX) */
    bool victim_on;                   /* GCPOOL_VICTIM */
    uint64_t max_cached;              /* the retention bound (options, GCPOOL_MAX_CACHED); 0: none */
    /* The bound's budgets, budget[k] for arrays[k]: each array's chains take
     * their rings' slots from it (ring.h).  Only slow paths touch them. */
    struct gcp_budget budget[3];
    bool shared_locked;               /* GCPOOL_SHARED=locked: Go 1.12's locked queues */
    gcp_lock_t init_lock;             /* first use: one thread sets up the arrays */
    bool collector_storage;           /* the arrays and rings are collector memory (mem.h):
                                         decided at first use, before cur is published */

    struct gcp_locals *arrays[3];     /* the storage behind the roles; NULL until first use */
    void *blocks[3];                  /* arrays[k]->mem: arrays[k] points inside its block, and a
                                         leak checker (valgrind) calls a block that only interior
                                         pointers reach "possibly lost" */
    /* The victim array a get found empty, so later gets skip it (Go's
     * victimSize = 0).  Naming the array, not a flag, means a get that races
     * with a cycle can only mark the array that is no longer the victim. */
    struct gcp_locals *_Atomic victim_empty;
    _Atomic int drain_pending;        /* drp holds objects a cycle could not drop in place */
    /* Set, once, when the pool met a collector object its storage cannot
     * keep alive (pool.c, stop_caching): from then on its roles are empty and
     * it behaves as a pool without storage.  Release, before cur is cleared. */
    _Atomic bool uncached;
    /* Gets and puts that found no storage and acted as an empty pool's (before
     * the first use, when it failed, since the pool stopped caching, during
     * its destroy, or from a signal handler that interrupted the library on
     * its thread): any thread, atomic adds. */
    struct gcp_counters no_storage;
    /* Checked mode: the objects its random drops hold until the next drain,
     * and how many (lib/debug.c). */
    struct gcp_debug_held *_Atomic debug_held;
    _Atomic unsigned debug_held_n;

    _Atomic uint64_t dropped;         /* slow path: cycles and destroy only */
    _Atomic uint64_t dropped_bound;   /* puts the bound refused (also in dropped) */
    _Atomic uint64_t moved_to_victim; /* objects cycles moved to the victim */
    _Atomic uint64_t private_moved;   /* objects cycles took out of private slots */
    _Atomic uint64_t last_moved, last_dropped; /* the same for the last cycle alone */
    _Atomic uint64_t cycles_by_cause[GCP_CYCLE_CAUSES]; /* cycles that rotated it, by cause */

    bool rotated;                     /* the cycle in progress rotated it; registry lock */
    bool destroyed;                   /* checked mode: a destroyed pool's kept handle (debug.h) */
    bool destroying;                  /* gcpool_destroy has begun: gets and puts from its
                                         callbacks find an empty pool (written and read by
                                         the destroying thread only: no concurrent use) */
    /* Registry link: written under the registry lock, walked by drains (cycle.c). */
    struct gcpool *_Atomic next_pool;
};

/* Drops every object of array a's chains and private_dropped slots to free_fn,
 * or forgets it when there is none.  Safe at any time, against any concurrent
 * get and put: every removal is exclusive.  Returns the objects dropped. */
#define GCP_DRAIN_PRIVATE 1 /* the private slots too: gcpool_destroy only (no concurrent use) */
#define GCP_DRAIN_NO_WAIT 2 /* inside the collector: skip a local whose pin is busy */
uint64_t gcp_pool_drain(struct gcpool *p, struct gcp_locals *a, unsigned flags);
/* A cycle, after gcp_pin_fence: moves array a's private objects to
 * private_dropped, where only drains look.  may_wait false: skips busy locals
 * (their objects stay cached).  Returns false when it skipped some. */
bool gcp_pool_take_privates(struct gcpool *p, struct gcp_locals *a, bool may_wait);
/* Checked mode: hands to free_fn (counted as dropped) what its random drops
 * held for p.  Outside the collector only: it may call free_fn. */
void gcp_pool_release_held(struct gcpool *p);
/* Objects array a holds now (a racy snapshot, for statistics). */
uint64_t gcp_pool_count(const struct gcp_locals *a);

/* gcpool_create without its re-entry check, for buffer pools, which create
 * theirs inside a busy section of their own (reentry.h). */
gcpool_t *gcp_pool_create(const gcpool_options_t *opts);

/* Sets up the arrays on first use, in the storage first_obj (the first object
 * the pool is given or makes) needs; returns cur, or NULL: no memory (errno
 * ENOMEM), or the pool stopped caching. */
struct gcp_locals *gcp_pool_first_use(struct gcpool *p, const void *first_obj);


/* Bytes between two locals, as this process lays them out. */
size_t gcp_local_stride(void);

#endif
