/* Cycle source: the Boehm collector.  Every collection runs one cleanup cycle
 * from the collector's own event callback, at GC_EVENT_START: the allocation
 * lock is held and the world still runs, so the cycle allocates nothing, calls
 * no GC function that takes the lock, and lets other threads go on with their
 * gets and puts (pool.h says why that is safe).  Clearing our references there
 * lets this very collection reclaim what the cycle dropped. */
#include <gc/gc.h>

#include "cycle.h"
#include "glue.h"

/* The callback the program had installed before us, still called. */
static GC_on_collection_event_proc previous;

static void on_collection_event(GC_EventType event)
{
    if (event == GC_EVENT_START)
        gcp_cycle_in_collector();
    if (previous)
        previous(event);
}

bool gcp_boehm_install(void)
{
    /* The slot is read and written under the allocation lock by the collector,
     * so swap it under that lock too. */
    previous = GC_get_on_collection_event();
    GC_set_on_collection_event(on_collection_event);
    return true;
}
