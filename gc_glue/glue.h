/* Cycle sources: what runs a cleanup cycle, the lock that orders cycles
 * against pools joining the registry, and the collector's memory.  This is the
 * one header of gc_glue/ that lib/ includes, and lib/ reaches the collector
 * only through it (no <gc/gc.h> in lib/).
 *
 * Each source is an operations table (struct gcp_glue_ops) that its own file
 * defines: gc_glue/boehm.c the Boehm collector's, gc_glue/sim.c the
 * simulator's.  gc_glue/glue.c chooses one when the first pool is created
 * (GCPOOL_GC=auto|boehm|sim); under auto it moves once from the simulator to
 * Boehm if the program initialises the collector later (gcp_glue_refresh).
 * The sources know nothing of lib/: the cycle's entry points are handed to
 * install (as Go's sync hands poolCleanup to runtime_registerPoolCleanup). */
#ifndef GCPOOL_GLUE_H
#define GCPOOL_GLUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gcpool.h" /* enum gcpool_cycle_cause */

enum gcp_source { GCP_SOURCE_NONE, GCP_SOURCE_BOEHM, GCP_SOURCE_SIM };

/* The collector's memory.  Whatever the source: under the simulator a pool may
 * still be given the collector's objects (mem.h), so both tables point at the
 * same one, gc_glue/boehm.c's.  Every call may run in a user thread only,
 * never inside the collector. */
struct gcp_glue_mem {
    void *(*alloc_untraced)(size_t);     /* scanned, freed only by free: GC_MALLOC_UNCOLLECTABLE */
    void *(*alloc_traced)(size_t);       /* scanned, reclaimed when unreachable: GC_MALLOC */
    void *(*alloc_pointer_free)(size_t); /* never scanned, reclaimed: GC_MALLOC_ATOMIC */
    void (*free)(void *);                /* GC_FREE */
    bool (*is_collectors)(const void *); /* p is in the collector's heap: GC_base; never initialises */
    bool (*initialised)(void);           /* the collector is initialised: GC_is_init_called */
};

/* What a source runs: lib/cycle.c's entry points, given to install. */
struct gcp_glue_cycle {
    void (*in_collector)(void);                   /* one cycle from the collector, its lock held */
    void (*try_run)(enum gcpool_cycle_cause cause); /* one cycle from a slow path, unless one is running */
};

struct gcp_glue_ops {
    enum gcp_source kind;
    /* Binds cycles to the source, once; false when it cannot. */
    bool (*install)(const struct gcp_glue_cycle *cycle);
    /* Runs fn(arg) holding the source's own lock, registry_mutex being held
     * already (gcp_glue_locked): Boehm's allocation lock, none for the sim. */
    void (*locked)(void (*fn)(void *), void *arg);
    /* fn under locked() counts as inside the collector: no free_fn, no allocation. */
    bool locked_in_collector;
    void (*poll)(void);       /* a slow path: checks a time policy */
    /* A get is about to call new_fn for an object of `units` (its size in
     * bytes when known, else 1); the heap has counted it already. */
    void (*new_called)(uint64_t units);
    void (*cycle_done)(void); /* a cycle ran, whatever its source */
    const struct gcp_glue_mem *mem;
};

extern const struct gcp_glue_mem gcp_glue_collector_mem; /* gc_glue/boehm.c */
extern const struct gcp_glue_ops gcp_glue_boehm; /* gc_glue/boehm.c */
extern const struct gcp_glue_ops gcp_glue_sim;   /* gc_glue/sim.c */

/* lib/cycle.c's entry points, the only names of lib/ the glue uses (glue.c
 * gives them to install; the sources never call lib/ directly). */
void gcp_cycle_in_collector(void);
void gcp_cycle_try(enum gcpool_cycle_cause cause);

/* The source's table in force, choosing it on first call. */
const struct gcp_glue_ops *gcp_glue(void);
/* Its kind. */
enum gcp_source gcp_glue_source(void);
/* Under GCPOOL_GC=auto, moves the source from the simulator to Boehm if the
 * collector has been initialised since it was chosen (a late GC_INIT(), or
 * bdwgc's own at the first GC_MALLOC), once and for good; returns the source
 * then in force.  Takes registry_mutex: never call it holding that, a pool's
 * init_lock or a pin, nor inside the collector. */
enum gcp_source gcp_glue_refresh(void);
/* Whether a pool whose first object is first_obj (NULL: none yet) must keep
 * its storage in collector memory (mem.h): under Boehm always (refreshed
 * first), under the simulator when first_obj is the collector's. */
bool gcp_glue_collector_storage(const void *first_obj);
/* The collector's memory, without choosing a source (so never initialising
 * the collector). */
const struct gcp_glue_mem *gcp_glue_memory(void);

/* Runs fn(arg) holding the registry lock: registry_mutex, and within it the
 * source's lock (Boehm's allocation lock under Boehm, so the collector's
 * callback sees a still list).  fn must not allocate. */
void gcp_glue_locked(void (*fn)(void *), void *arg);
/* Takes (true) or releases (false) registry_mutex alone: the fork handlers. */
void gcp_glue_registry_hold(bool take);
/* Whether this thread holds the registry lock: inside gcp_glue_locked or the
 * fork handlers' hold, or inside the collector's callback (whose lock is the
 * registry lock under Boehm).  For assertions (lockorder.h). */
bool gcp_glue_holds_registry(void);
/* gc_glue/ only: the collector's callback marks this thread inside it;
 * GC_INIT() for GCPOOL_GC=boehm before the program initialised it. */
void gcp_glue_mark_registry(bool held);
void gcp_glue_boehm_init(void);

/* The slow-path hooks: the source in force's, and memory pressure's (any
 * source; gc_glue/pressure.c). */
void gcp_glue_poll(void);
void gcp_glue_new_called(uint64_t units);

/* The pools' heap as the simulated collector sees it (gc_glue/pacer.c), in
 * units: an object's size in bytes when its pool knows it, else 1.  Made:
 * new_fn's objects; dropped: objects that left a pool for good (free_fn, or
 * left to the collector).  Relaxed atomic adds, from slow paths only (a miss,
 * a drop); safe from a signal handler. */
void gcp_glue_heap_made(uint64_t units);
void gcp_glue_heap_dropped(uint64_t units);
/* made - dropped (0 when more was dropped than made: puts of objects that
 * new_fn did not make). */
uint64_t gcp_glue_heap_live(void);
/* The pacer (sim.c calls it): counts nothing, says whether the new_fn call of
 * `units` just counted brings the heap made since the last cycle to its goal;
 * cycle_done marks the goal to be set again at the next call. */
bool gcp_pacer_due(uint64_t units);
void gcp_pacer_cycle_done(void);
/* Memory pressure (gc_glue/pressure.c): 0 none (or not checked now), 1
 * pressure, 2 severe.  Reads its files at most every GCPOOL_PRESSURE_MS. */
int gcp_pressure_level(void);

#endif
