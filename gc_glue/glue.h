/* Cycle sources: what runs a cleanup cycle, and the lock that orders cycles
 * against pools joining the registry.  One source is chosen when the first pool
 * is created (GCPOOL_GC=auto|boehm|sim); under auto it moves once from the
 * simulator to Boehm if the program initialises the collector later. */
#ifndef GCPOOL_GLUE_H
#define GCPOOL_GLUE_H

#include <stdbool.h>

enum gcp_source { GCP_SOURCE_NONE, GCP_SOURCE_BOEHM, GCP_SOURCE_SIM };

/* The source in force, choosing it on first call. */
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

/* Runs fn(arg) holding the registry lock: Boehm's allocation lock under Boehm
 * (so the collector's callback sees a still list), a mutex otherwise.
 * fn must not allocate. */
void gcp_glue_locked(void (*fn)(void *), void *arg);

/* gc_glue/boehm.c: installs the collection callback (chaining the previous one). */
bool gcp_boehm_install(void);
/* gc_glue/sim.c: the simulated collector's policy, checked on slow paths. */
void gcp_sim_new_called(void);   /* a get called new_fn */
void gcp_sim_poll(void);         /* a slow path: checks the interval policy */
void gcp_sim_cycle_done(void);   /* a cycle ran, whatever its source: restart the policies */

#endif
