/* The choice of the cycle source, and the registry lock (glue.h).
 *
 * Chosen once, when the first pool is created.  Under GCPOOL_GC=auto a program
 * may initialise the collector only after that (GC_INIT() late, or never and
 * bdwgc starts itself at the first GC_MALLOC): then the source moves from the
 * simulator to Boehm, once and for good, the next time a pool is created or
 * set up (gcp_glue_refresh).  Pools set up before keep their storage (mem.h):
 * malloc'd, right for the malloc'd objects they were given; one that is later
 * given the collector's objects stops caching (pool.c, stop_caching). */
#include "gc_glue/glue.h"

#include <pthread.h>
#include <stdatomic.h>

#include "lib/env.h"
#include "lib/reentry.h"

/* NULL until chosen.  Relaxed: it changes only under registry_mutex (or in the
 * once below, before any pool exists), and is read under that mutex wherever
 * the answer decides a lock (gcp_glue_locked, the cycle); elsewhere a stale
 * simulator only lets a simulated policy run once more.  What it points to is
 * a constant table, so no ordering is needed to read through it. */
static const struct gcp_glue_ops *_Atomic source;
static bool source_auto; /* GCPOOL_GC=auto: set in the once */
static pthread_once_t source_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t registry_mutex = PTHREAD_MUTEX_INITIALIZER;
/* This thread holds the registry lock (for assertions, lockorder.h): set
 * after taking it, cleared before letting it go. */
static __thread bool registry_held;

static void registry_lock(void);
static void registry_unlock(void);

static const struct gcp_glue_cycle cycle = {
    .in_collector = gcp_cycle_in_collector,
    .try_run = gcp_cycle_try,
};

/* Binds cycles to the collector.  The source is stored before the callback
 * exists, so a collection never runs while the simulator is in force; when
 * called late, registry_mutex is held, so no registry change is in flight and
 * every later one reads Boehm and takes the collector's lock too. */
static void bind_to_boehm(void)
{
    atomic_store_explicit(&source, &gcp_glue_boehm, memory_order_relaxed);
    if (!gcp_glue_boehm.install(&cycle))
        atomic_store_explicit(&source, &gcp_glue_sim, memory_order_relaxed);
}

static void choose_source(void)
{
    long want = gcp_env_long(GCP_ENV_GC);
    const struct gcp_glue_mem *mem = gcp_glue_memory();
    source_auto = want == GCP_GC_AUTO;
    /* The simulator's hooks are given even when Boehm is chosen: it is the
     * fallback if Boehm's install fails. */
    gcp_glue_sim.install(&cycle);
    if (want == GCP_GC_BOEHM && !mem->initialised())
        gcp_glue_boehm_init(); /* asked for Boehm before the program initialised it */
    if (want == GCP_GC_BOEHM || (want == GCP_GC_AUTO && mem->initialised()))
        bind_to_boehm(); /* no lock: the first pool is not in the registry yet */
    else
        atomic_store_explicit(&source, &gcp_glue_sim, memory_order_relaxed);
}

const struct gcp_glue_ops *gcp_glue(void)
{
    pthread_once(&source_once, choose_source);
    return atomic_load_explicit(&source, memory_order_relaxed);
}

enum gcp_source gcp_glue_source(void)
{
    return gcp_glue()->kind;
}

enum gcp_source gcp_glue_refresh(void)
{
    const struct gcp_glue_ops *s = gcp_glue();
    if (s != &gcp_glue_sim || !source_auto || !gcp_glue_memory()->initialised())
        return s->kind;
    registry_lock();
    if (atomic_load_explicit(&source, memory_order_relaxed) == &gcp_glue_sim)
        bind_to_boehm();
    s = atomic_load_explicit(&source, memory_order_relaxed);
    registry_unlock();
    return s->kind;
}

bool gcp_glue_collector_storage(const void *first_obj)
{
    /* Under Boehm, always: a pool may be given the collector's objects at any
     * time.  Under the simulator only for the collector's objects: malloc'd
     * ones need none of it, and a thread the collector does not know must not
     * allocate from it. */
    return gcp_glue_refresh() == GCP_SOURCE_BOEHM || gcp_glue_memory()->is_collectors(first_obj);
}

static void registry_lock(void)
{
    gcp_busy_enter(); /* a library mutex (reentry.h) */
    pthread_mutex_lock(&registry_mutex);
    registry_held = true;
}

static void registry_unlock(void)
{
    registry_held = false;
    pthread_mutex_unlock(&registry_mutex);
    gcp_busy_leave();
}

void gcp_glue_registry_hold(bool take)
{
    /* No busy section: the fork handlers account for it themselves (lib/fork.c). */
    if (take) {
        pthread_mutex_lock(&registry_mutex);
        registry_held = true;
    } else {
        registry_held = false;
        pthread_mutex_unlock(&registry_mutex);
    }
}

void gcp_glue_locked(void (*fn)(void *), void *arg)
{
    /* registry_mutex always: the fork handlers hold it to keep the registry
     * still.  Within it the source's lock: under Boehm the collector's, since
     * the collector's callback walks the registry holding only that one.  The
     * source is read under registry_mutex, where it cannot change (and is
     * chosen there if it was not yet: the once takes no lock of ours). */
    registry_lock();
    gcp_glue()->locked(fn, arg);
    registry_unlock();
}

bool gcp_glue_holds_registry(void)
{
    return registry_held;
}

void gcp_glue_mark_registry(bool held)
{
    registry_held = held;
}

void gcp_glue_poll(void)
{
    /* Memory pressure, under any source (under Boehm, extra cycles): severe
     * pressure runs two, which drop the victims and then what the first one
     * moved there, so the pools hold nothing. */
    int level = gcp_pressure_level();
    for (int i = 0; i < level; i++)
        cycle.try_run(GCPOOL_CYCLE_PRESSURE);
    gcp_glue()->poll();
}

void gcp_glue_new_called(uint64_t units)
{
    gcp_glue_heap_made(units);
    gcp_glue()->new_called(units);
}
