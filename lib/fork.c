/* Fork: every lock the pools have is held across fork(), in the lock order
 * (lockorder.h), so that neither side inherits one held by a thread it does
 * not have.
 *
 * A child forked while other threads use pools has only the forking thread: a
 * lock held by a vanished thread would never be released.  So the fork waits
 * until it holds every lock the pools have, in the cycle's order (drain_mutex,
 * registry, each pool's init lock, pins and locked queues' mutexes, then the
 * statistics' list), and both sides let them go.  registry_mutex keeps pools
 * from joining or leaving meanwhile, under Boehm too (where the collector's
 * lock also guards the registry); the collector's callback only tries pins,
 * so holding them here cannot deadlock with it.
 *
 * The parent unlocks.  The child must not: a lock also records the threads
 * waiting for it, and those did not follow the fork.  Go's Mutex keeps their
 * count, its starving bit and a queue of nodes on their stacks; unlocked in
 * starvation mode, it handed itself to one of those vanished waiters, and the
 * child's next lock waited for ever.  The child's one thread holds every lock
 * and nobody else exists to want one, so each is reset to its zero state,
 * free with no waiter.  (pthread mutexes are unlocked: glibc's hold no
 * queue of their own.)
 *
 * Two sets of handlers, for two places in the order.  Prepare handlers run in
 * reverse order of registration.  The pools' are registered at the first
 * gcpool_create, so they run before the collector's (GC_INIT's, usually
 * earlier), whose lock they must take first.  Checked mode's shard locks are
 * leaves a thread may wait for while it holds the collector's lock (a drop
 * inside a collection), so theirs must run after the collector's: they are
 * registered when the library is loaded, before anything else. */
#include "lib/fork.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "gc_glue/glue.h"
#include "lib/cycle.h"
#include "lib/debug.h"
#include "lib/pin.h"
#include "lib/pool.h"
#include "lib/reentry.h"
#include "lib/stats.h"

enum fork_step { TAKE, RELEASE, RESET };

static void each_lock(enum fork_step step)
{
    for (struct gcpool *p = gcp_cycle_first_pool(); p;
         p = atomic_load_explicit(&p->next_pool, memory_order_acquire)) {
        if (step == TAKE)
            gcp_lock(&p->init_lock);
        for (int k = 0; k < 3; k++) {
            struct gcp_locals *a = p->arrays[k]; /* stable: first use holds init_lock */
            for (unsigned i = 0; a && i < a->n; i++) {
                struct gcp_local *l = gcp_local_at(a, i);
                switch (step) {
                case TAKE:
                    gcp_lock(&l->pin);
                    gcpool_mutex_lock(&l->locked.mu);
                    break;
                case RELEASE:
                    gcpool_mutex_unlock(&l->locked.mu);
                    gcp_unlock(&l->pin);
                    break;
                case RESET:
                    l->locked.mu = (gcpool_mutex_t)GCPOOL_MUTEX_INIT;
                    gcp_lock_reset(&l->pin);
                    /* Thieves caught inside a tail pop did not follow either. */
                    gcp_chain_after_fork(&l->shared);
                    break;
                }
            }
        }
        if (step == RELEASE)
            gcp_unlock(&p->init_lock);
        else if (step == RESET)
            gcp_lock_reset(&p->init_lock);
    }
}

/* A fork from inside free_fn finds drain_mutex its own already.  Per thread:
 * the three handlers run in the forking thread, and two threads may fork. */
static __thread bool fork_took_drain;
static __thread unsigned fork_busy; /* this thread's busy count before fork_prepare */

static void fork_prepare(void)
{
    /* (A fork from a signal handler that interrupted a pool call would wait
     * here for the pins its own thread holds: gcpool.h says so.) */
    fork_busy = gcp_self.busy;
    fork_took_drain = !gcp_self.drain_held;
    if (fork_took_drain)
        gcp_cycle_fork_hold(true);
    gcp_glue_registry_hold(true);
    each_lock(TAKE);
    gcp_stats_fork_lock(true);
}

static void fork_parent(void)
{
    gcp_stats_fork_lock(false);
    each_lock(RELEASE);
    gcp_glue_registry_hold(false);
    if (fork_took_drain)
        gcp_cycle_fork_hold(false);
}

static void fork_child(void)
{
    gcp_stats_fork_lock(false);
    each_lock(RESET);
    /* The pins and init locks taken by each_lock(TAKE) count as busy sections
     * (reentry.h), which their unlock would have closed; a reset does not
     * unlock, so the count goes back to what it was before the fork. */
    gcp_self.busy = fork_busy;
    gcp_glue_registry_hold(false);
    if (fork_took_drain) /* else the child's one thread is still inside its drain */
        gcp_cycle_fork_hold(false);
    gcp_pin_after_fork(); /* the child is a new process for membarrier */
}

static void install_pool_handlers(void)
{
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

void gcp_fork_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, install_pool_handlers);
}

/* Checked mode's shards (debug.c): the last locks a fork takes. */
static void debug_prepare(void)
{
    gcp_debug_fork_lock(true);
}

static void debug_parent(void)
{
    gcp_debug_fork_lock(false);
}

__attribute__((constructor)) static void install_debug_handlers(void)
{
    pthread_atfork(debug_prepare, debug_parent, gcp_debug_fork_child);
}
