/* Cycle source: the simulated collector, for programs whose objects are
 * malloc'd (GCPOOL_GC=sim, or Boehm not initialised).  Cycles come from
 * gcpool_collect() and from two policies checked on slow paths only (a miss, a
 * ring growing), so there is no thread of its own:
 *   GCPOOL_SIM_NEW=N          a cycle after every N calls of new_fn, all pools together;
 *   GCPOOL_SIM_INTERVAL_MS=M  a cycle when M ms have passed since the last one.
 * A single-threaded program gets the same cycles at the same points every run
 * under the first policy. */
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "cycle.h"
#include "env.h"
#include "glue.h"

static _Atomic uint64_t news_since_cycle;
static _Atomic uint64_t last_cycle_ms;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void gcp_sim_new_called(void)
{
    long every = gcp_env_long(GCP_ENV_SIM_NEW);
    if (every <= 0 || gcp_glue_source() != GCP_SOURCE_SIM)
        return;
    /* Relaxed: a counter; the cycle itself is ordered by its locks. */
    if (atomic_fetch_add_explicit(&news_since_cycle, 1, memory_order_relaxed) + 1 >= (uint64_t)every)
        gcp_cycle_try();
}

void gcp_sim_poll(void)
{
    long interval = gcp_env_long(GCP_ENV_SIM_INTERVAL_MS);
    if (interval <= 0 || gcp_glue_source() != GCP_SOURCE_SIM)
        return;
    uint64_t last = atomic_load_explicit(&last_cycle_ms, memory_order_relaxed);
    if (last == 0) /* the clock starts at the first look */
        atomic_compare_exchange_strong_explicit(&last_cycle_ms, &last, now_ms(),
                                                memory_order_relaxed, memory_order_relaxed);
    else if (now_ms() - last >= (uint64_t)interval)
        gcp_cycle_try();
}

void gcp_sim_cycle_done(void)
{
    atomic_store_explicit(&news_since_cycle, 0, memory_order_relaxed);
    atomic_store_explicit(&last_cycle_ms, now_ms(), memory_order_relaxed);
}
