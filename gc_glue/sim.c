/* Cycle source: the simulated collector, for programs whose objects are
 * malloc'd (GCPOOL_GC=sim, or Boehm not initialised).  Cycles come from
 * gcpool_collect() and from policies checked on slow paths only (a miss, a
 * ring growing), so there is no thread of its own:
 *   GCPOOL_SIM_GOGC=P         on by default: Go's pacing, a cycle when the heap
 *                             made since the last one reaches P % of the live
 *                             heap (gc_glue/pacer.c);
 *   GCPOOL_SIM_NEW=N          a cycle after every N calls of new_fn, all pools together;
 *   GCPOOL_SIM_INTERVAL_MS=M  a cycle when M ms have passed since the last one.
 * A single-threaded program gets the same cycles at the same points every run
 * under the first policy.  Its hooks run only while it is the source in force
 * (glue.c dispatches through the table; a thread that read the table just
 * before the move to Boehm may run a policy once more, which is harmless). */
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "gc_glue/glue.h"
#include "lib/env.h"

static _Atomic uint64_t news_since_cycle;
static _Atomic uint64_t last_cycle_ms;
/* lib/cycle.c's, from install.  Relaxed: written once, before the table is
 * published (glue.c's once), read after it. */
static void (*_Atomic try_run)(enum gcpool_cycle_cause);

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void run(enum gcpool_cycle_cause cause)
{
    void (*fn)(enum gcpool_cycle_cause) = atomic_load_explicit(&try_run, memory_order_relaxed);
    if (fn)
        fn(cause);
}

static bool install(const struct gcp_glue_cycle *cycle)
{
    atomic_store_explicit(&try_run, cycle->try_run, memory_order_relaxed);
    return true;
}

static void new_called(uint64_t units)
{
    long every = gcp_env_long(GCP_ENV_SIM_NEW);
    /* Relaxed: a counter; the cycle itself is ordered by its locks.  Counted
     * whatever the pacer says, so one cycle serves both when both are due. */
    bool news_due = every > 0 &&
        atomic_fetch_add_explicit(&news_since_cycle, 1, memory_order_relaxed) + 1 >= (uint64_t)every;
    if (gcp_pacer_due(units))
        run(GCPOOL_CYCLE_PACER);
    else if (news_due)
        run(GCPOOL_CYCLE_SIM);
}

static void sim_poll(void)
{
    long interval = gcp_env_long(GCP_ENV_SIM_INTERVAL_MS);
    if (interval <= 0)
        return;
    uint64_t last = atomic_load_explicit(&last_cycle_ms, memory_order_relaxed);
    if (last == 0) /* the clock starts at the first look */
        atomic_compare_exchange_strong_explicit(&last_cycle_ms, &last, now_ms(),
                                                memory_order_relaxed, memory_order_relaxed);
    else if (now_ms() - last >= (uint64_t)interval)
        run(GCPOOL_CYCLE_SIM);
}

static void cycle_done(void)
{
    atomic_store_explicit(&news_since_cycle, 0, memory_order_relaxed);
    atomic_store_explicit(&last_cycle_ms, now_ms(), memory_order_relaxed);
    gcp_pacer_cycle_done();
}

/* No lock of its own: registry_mutex, which gcp_glue_locked holds, is all. */
static void just_call(void (*fn)(void *), void *arg)
{
    fn(arg);
}

const struct gcp_glue_ops gcp_glue_sim = {
    .kind = GCP_SOURCE_SIM,
    .install = install,
    .locked = just_call,
    .locked_in_collector = false,
    .poll = sim_poll,
    .new_called = new_called,
    .cycle_done = cycle_done,
    .mem = &gcp_glue_collector_mem, /* a pool may still be given the collector's objects */
};
