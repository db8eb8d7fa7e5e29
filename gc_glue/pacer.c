/* The simulated collector's pacer: Go's GOGC rule, applied to the pools' heap.
 *
 * The heap is what the pools' objects take, in units: bytes for a pool that
 * knows its objects' size (gcpool_options_t.size; every buffer class does),
 * one per object otherwise.  Live is what new_fn made and no pool has dropped
 * since (cached or in the program's hands).  A cycle is due when the heap
 * made since the last cycle reaches GCPOOL_SIM_GOGC percent of the live heap
 * after that cycle, and never less than GCPOOL_SIM_MIN_HEAP units (Go's 4 MiB).
 *
 * The goal is set at the first new_fn call after a cycle, from the live heap
 * then: a simulated cycle's drops are done by the time its call returns, so
 * that is the live heap after the cycle.  Nothing here takes a lock: the
 * counters are relaxed atomics, and a pacer read a little stale by another
 * thread only moves a cycle by that thread's few objects.  A single thread
 * gets its cycles exactly where the rule says. */
#include <stdatomic.h>

#include "gc_glue/glue.h"
#include "lib/env.h"

/* Relaxed, all: counters and a goal, none of which publishes other memory
 * (the cycle itself is ordered by its own locks). */
static _Atomic uint64_t made, dropped;
static _Atomic uint64_t made_at_goal; /* made when the goal was set */
static _Atomic uint64_t goal;
static _Atomic bool goal_stale = true; /* no goal yet, or a cycle ran since */

void gcp_glue_heap_made(uint64_t units)
{
    atomic_fetch_add_explicit(&made, units, memory_order_relaxed);
}

void gcp_glue_heap_dropped(uint64_t units)
{
    atomic_fetch_add_explicit(&dropped, units, memory_order_relaxed);
}

uint64_t gcp_glue_heap_live(void)
{
    /* dropped first: read after made, it could count drops of objects made
     * after that read, and live would come out short. */
    uint64_t d = atomic_load_explicit(&dropped, memory_order_relaxed);
    uint64_t m = atomic_load_explicit(&made, memory_order_relaxed);
    return m > d ? m - d : 0;
}

bool gcp_pacer_due(uint64_t units)
{
    long gogc = gcp_env_long(GCP_ENV_SIM_GOGC);
    if (gogc <= 0)
        return false;
    uint64_t now = atomic_load_explicit(&made, memory_order_relaxed);
    /* One thread sets the goal after a cycle (the exchange); others meanwhile
     * compare with the old one, a few objects' worth of difference. */
    if (atomic_exchange_explicit(&goal_stale, false, memory_order_relaxed)) {
        uint64_t live = gcp_glue_heap_live();
        /* The object just counted is not live after the cycle: it is made since. */
        live = live > units ? live - units : 0;
        uint64_t g = live / 100u * (uint64_t)gogc + live % 100u * (uint64_t)gogc / 100u;
        uint64_t min = (uint64_t)gcp_env_long(GCP_ENV_SIM_MIN_HEAP);
        atomic_store_explicit(&goal, g > min ? g : min, memory_order_relaxed);
        atomic_store_explicit(&made_at_goal, now - units, memory_order_relaxed);
    }
    uint64_t base = atomic_load_explicit(&made_at_goal, memory_order_relaxed);
    /* base > now: another thread set the goal after our read of made. */
    if (now < base || now - base < atomic_load_explicit(&goal, memory_order_relaxed))
        return false;
    /* Due: the first thread to see it claims the goal (marking it stale, as
     * the cycle will), so threads missing at once run one cycle, not one each. */
    return !atomic_exchange_explicit(&goal_stale, true, memory_order_relaxed);
}

void gcp_pacer_cycle_done(void)
{
    atomic_store_explicit(&goal_stale, true, memory_order_relaxed);
}
