/* Cycle source: the Boehm collector.  Every collection (every Kth with
 * GCPOOL_CYCLE_EVERY=K) runs one cleanup cycle from the collector's own event
 * callback, at GC_EVENT_START: the allocation lock is held and the world
 * still runs, so the cycle allocates nothing, calls no GC function that
 * takes the lock, and lets other threads go on with their gets and puts
 * (pool.h says why that is safe).  Clearing our references there
 * lets this very collection reclaim what the cycle dropped.
 *
 * This file is also the collector's memory (struct gcp_glue_mem), which the
 * simulator's table shares: the only place of the library that calls it. */
#include <gc/gc.h>
#include <stdatomic.h>

#include "gc_glue/glue.h"
#include "lib/env.h"

/* The callback the program had installed before us, still called. */
static GC_on_collection_event_proc previous;
/* lib/cycle.c's, from install.  Written before the callback is set, under
 * the collector's lock that calls it. */
static void (*run_in_collector)(void);
/* GCPOOL_CYCLE_EVERY, read in install, and the collections seen so far.
 * Relaxed: the collector calls us under its allocation lock, one call at a
 * time, and that lock orders the counter's accesses; it is atomic only
 * because those calls come from whichever thread collects. */
static long cycle_every = 1;
static _Atomic unsigned long collections;

static void on_collection_event(GC_EventType event)
{
    if (event == GC_EVENT_START &&
        atomic_fetch_add_explicit(&collections, 1, memory_order_relaxed) % (unsigned long)cycle_every == 0) {
        gcp_glue_mark_registry(true); /* the collector's lock is the registry lock */
        run_in_collector();
        gcp_glue_mark_registry(false);
    }
    if (previous)
        previous(event);
}

static bool install(const struct gcp_glue_cycle *cycle)
{
    /* The slot is read and written under the allocation lock by the collector,
     * so swap it under that lock too. */
    run_in_collector = cycle->in_collector;
    cycle_every = gcp_env_long(GCP_ENV_CYCLE_EVERY); /* here, not in the collector: it may parse */
    previous = GC_get_on_collection_event();
    GC_set_on_collection_event(on_collection_event);
    return true;
}

struct locked_call {
    void (*fn)(void *);
    void *arg;
};

static void *call_locked(void *c)
{
    struct locked_call *call = c;
    call->fn(call->arg);
    return NULL;
}

/* The collector's callback walks the registry holding only its lock. */
static void alloc_locked(void (*fn)(void *), void *arg)
{
    struct locked_call call = {fn, arg};
    GC_call_with_alloc_lock(call_locked, &call);
}

static void nothing(void)
{
}

/* ---- the collector's memory -------------------------------------------------
 * Functions, not the macros themselves: GC_MALLOC and friends are macros
 * (GC_debug_malloc* under GC_DEBUG). */

static void *alloc_untraced(size_t size)
{
    return GC_MALLOC_UNCOLLECTABLE(size);
}

static void *alloc_traced(size_t size)
{
    return GC_MALLOC(size);
}

static void *alloc_pointer_free(size_t size)
{
    return GC_MALLOC_ATOMIC(size);
}

static void collector_free(void *p)
{
    GC_FREE(p);
}

static bool is_collectors(const void *p)
{
    return p && GC_base((void *)p) != NULL;
}

static bool initialised(void)
{
    return GC_is_init_called() != 0;
}

const struct gcp_glue_mem gcp_glue_collector_mem = {
    .alloc_untraced = alloc_untraced,
    .alloc_traced = alloc_traced,
    .alloc_pointer_free = alloc_pointer_free,
    .free = collector_free,
    .is_collectors = is_collectors,
    .initialised = initialised,
};

const struct gcp_glue_mem *gcp_glue_memory(void)
{
    return &gcp_glue_collector_mem;
}

/* Boehm paces itself: the heap it sees is the whole program's. */
static void no_new_called(uint64_t units)
{
    (void)units;
}

/* Initialises the collector: GCPOOL_GC=boehm before the program did (glue.c). */
void gcp_glue_boehm_init(void)
{
    GC_INIT();
}

const struct gcp_glue_ops gcp_glue_boehm = {
    .kind = GCP_SOURCE_BOEHM,
    .install = install,
    .locked = alloc_locked,
    .locked_in_collector = true, /* a rotation under the allocation lock, as a collection's */
    .poll = nothing,
    .new_called = no_new_called,
    .cycle_done = nothing,
    .mem = &gcp_glue_collector_mem,
};
