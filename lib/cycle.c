/* The cleanup cycle: Go's poolCleanup, run once per collection.
 *
 * A cycle rotates every registered pool's roles (pool.h): the victim is dropped,
 * the locals become the victim, and the array dropped last time (drained since)
 * becomes the locals.  A pool unused for two cycles therefore holds nothing.
 *
 * Locks, outermost first:
 *   drain_mutex     serialises cycles' drains with gcpool_destroy and reports, so
 *                   a pool is not freed while a drain walks it;
 *   registry lock   orders rotations against pools joining or leaving the
 *                   registry: registry_mutex, and under Boehm the collector's
 *                   allocation lock within it (the collector holds only that
 *                   one when it calls us, and never waits for ours);
 *   a local's pin   taken by drains for the private slots.
 * free_fn is called with drain_mutex held and nothing else: it may get and put,
 * but must not call gcpool_collect or gcpool_destroy.
 */
#include "cycle.h"

#include <pthread.h>
#include <stdlib.h>

#include <gc/gc.h>

#include "env.h"
#include "glue.h"
#include "pin.h"
#include "stats.h"

static struct gcpool *_Atomic registry; /* newest first */
static pthread_mutex_t registry_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t drain_mutex = PTHREAD_MUTEX_INITIALIZER;
static _Atomic uint64_t cycles;
static _Atomic bool drains_pending; /* some pool's drp waits for free_fn */

/* ---- the cycle source ------------------------------------------------------ */

static enum gcp_source source;
static pthread_once_t source_once = PTHREAD_ONCE_INIT;

static void choose_source(void)
{
    long want = gcp_env_long(GCP_ENV_GC);
    if (want == GCP_GC_BOEHM && !GC_is_init_called())
        GC_INIT(); /* asked for Boehm before the program initialised it */
    if (want == GCP_GC_BOEHM || (want == GCP_GC_AUTO && GC_is_init_called()))
        source = gcp_boehm_install() ? GCP_SOURCE_BOEHM : GCP_SOURCE_SIM;
    else
        source = GCP_SOURCE_SIM;
}

enum gcp_source gcp_glue_source(void)
{
    pthread_once(&source_once, choose_source);
    return source;
}

const char *gcp_glue_name(void)
{
    long want = gcp_env_long(GCP_ENV_GC);
    enum gcp_source s = source;
    if (s == GCP_SOURCE_NONE) /* not chosen yet: what auto would choose now */
        s = want == GCP_GC_BOEHM || (want == GCP_GC_AUTO && GC_is_init_called()) ? GCP_SOURCE_BOEHM
                                                                                 : GCP_SOURCE_SIM;
    return s == GCP_SOURCE_BOEHM ? "boehm" : "sim";
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

void gcp_glue_locked(void (*fn)(void *), void *arg)
{
    /* registry_mutex always: the fork handlers hold it to keep the registry
     * still.  Under Boehm the collector's lock too, since the collector's
     * callback walks the registry holding only that one. */
    pthread_mutex_lock(&registry_mutex);
    if (gcp_glue_source() == GCP_SOURCE_BOEHM) {
        struct locked_call call = {fn, arg};
        GC_call_with_alloc_lock(call_locked, &call);
    } else {
        fn(arg);
    }
    pthread_mutex_unlock(&registry_mutex);
}

/* ---- the registry ---------------------------------------------------------- */

static void link_pool(void *arg)
{
    struct gcpool *p = arg;
    atomic_store_explicit(&p->next_pool, atomic_load_explicit(&registry, memory_order_relaxed),
                          memory_order_relaxed);
    /* Release: a drain walking the registry without the lock sees p's fields. */
    atomic_store_explicit(&registry, p, memory_order_release);
}

static void unlink_pool(void *arg)
{
    struct gcpool *p = arg;
    struct gcpool *_Atomic *link = &registry;
    for (struct gcpool *q; (q = atomic_load_explicit(link, memory_order_relaxed)); link = &q->next_pool) {
        if (q == p) {
            atomic_store_explicit(link, atomic_load_explicit(&p->next_pool, memory_order_relaxed),
                                  memory_order_release);
            break;
        }
    }
}

void gcp_cycle_register(struct gcpool *p)
{
    gcp_glue_locked(link_pool, p);
}

void gcp_cycle_unregister(struct gcpool *p)
{
    pthread_mutex_lock(&drain_mutex);
    gcp_glue_locked(unlink_pool, p);
    pthread_mutex_unlock(&drain_mutex);
}

void gcp_cycle_each_pool(void (*fn)(struct gcpool *, void *), void *arg)
{
    pthread_mutex_lock(&drain_mutex);
    /* Pools leave the registry only under drain_mutex, and join at its head,
     * so this walk needs no other lock.  Acquire: pairs with link_pool. */
    for (struct gcpool *p = atomic_load_explicit(&registry, memory_order_acquire); p;
         p = atomic_load_explicit(&p->next_pool, memory_order_acquire))
        fn(p, arg);
    pthread_mutex_unlock(&drain_mutex);
}

/* ---- the cycle ------------------------------------------------------------- */

/* Rotates one pool's roles.  Registry lock held; may run inside the collector. */
static void rotate(struct gcpool *p, struct gcp_locals *cur)
{
    struct gcp_locals *vic = atomic_load_explicit(&p->vic, memory_order_relaxed);
    struct gcp_locals *drp = atomic_load_explicit(&p->drp, memory_order_relaxed);
    /* Threads that loaded a role before these stores may go on using that
     * array for one operation; pool.h explains why that is safe.  Release: a
     * reader of a role sees the array as this thread left it. */
    uint64_t moved = 0;
    if (p->victim_on) {
        moved = gcp_pool_count(cur);
        atomic_store_explicit(&p->drp, vic, memory_order_release);
        atomic_store_explicit(&p->vic, cur, memory_order_release);
    } else {
        atomic_store_explicit(&p->drp, cur, memory_order_release);
    }
    atomic_store_explicit(&p->cur, drp, memory_order_release);
    atomic_store_explicit(&p->victim_empty, NULL, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->moved_to_victim, moved, memory_order_relaxed);
    atomic_store_explicit(&p->last_moved, moved, memory_order_relaxed);
}

/* Drops what the rotation put in p's drp, or leaves it for later. */
static void drop_or_defer(struct gcpool *p, bool in_collector)
{
    struct gcp_locals *drp = atomic_load_explicit(&p->drp, memory_order_relaxed);
    gcp_pool_take_privates(p, drp, !in_collector);
    if (in_collector && !p->free_fn) {
        /* No free_fn: dropping is clearing our references, which lets this
         * very collection reclaim the objects. */
        atomic_store_explicit(&p->last_dropped, gcp_pool_drain(p, drp, GCP_DRAIN_NO_WAIT),
                              memory_order_relaxed);
    } else {
        /* free_fn may allocate, which would deadlock inside the collector (and
         * outside it runs after the registry lock is released): the drop waits
         * for drain_pending_locked, the next slow path or the next cycle. */
        atomic_store_explicit(&p->drain_pending, 1, memory_order_relaxed);
        atomic_store_explicit(&drains_pending, true, memory_order_relaxed);
    }
}

/* The cycle proper.  Registry lock held (in_collector: the collector's). */
static void rotate_all(void *in_collector)
{
    struct gcpool *first = atomic_load_explicit(&registry, memory_order_relaxed);
    for (struct gcpool *p = first; p; p = atomic_load_explicit(&p->next_pool, memory_order_relaxed)) {
        /* Acquire: pairs with first use's release of cur, so that a pool set
         * up while we run is either skipped or seen whole. */
        struct gcp_locals *cur = atomic_load_explicit(&p->cur, memory_order_acquire);
        p->rotated = cur != NULL;
        if (cur)
            rotate(p, cur);
    }
    /* Under rseq an owner may still be inside a sequence on an array that just
     * left its role; once the fence returns none is, and none can start (a
     * sequence reads the role afresh), so private slots can be emptied. */
    gcp_pin_fence();
    for (struct gcpool *p = first; p; p = atomic_load_explicit(&p->next_pool, memory_order_relaxed))
        if (p->rotated)
            drop_or_defer(p, in_collector != NULL);
    atomic_fetch_add_explicit(&cycles, 1, memory_order_relaxed);
    gcp_sim_cycle_done();
}

static void drain_one(struct gcpool *p, void *unused)
{
    (void)unused;
    if (atomic_exchange_explicit(&p->drain_pending, 0, memory_order_relaxed)) {
        uint64_t n = gcp_pool_drain(p, atomic_load_explicit(&p->drp, memory_order_acquire), 0);
        atomic_store_explicit(&p->last_dropped, n, memory_order_relaxed);
    }
}

/* drain_mutex held. */
static void drain_pending_locked(void)
{
    atomic_store_explicit(&drains_pending, false, memory_order_relaxed);
    for (struct gcpool *p = atomic_load_explicit(&registry, memory_order_acquire); p;
         p = atomic_load_explicit(&p->next_pool, memory_order_acquire))
        drain_one(p, NULL);
}

void gcp_cycle_drain_pending(void)
{
    /* Relaxed: a late view only defers the drops to a later slow path. */
    if (!atomic_load_explicit(&drains_pending, memory_order_relaxed))
        return;
    /* trylock: a free_fn that misses its pool lands here, and must not wait for
     * the drain that called it. */
    if (pthread_mutex_trylock(&drain_mutex) == 0) {
        drain_pending_locked();
        pthread_mutex_unlock(&drain_mutex);
    }
}

void gcp_cycle_in_collector(void)
{
    rotate_all((void *)1);
}

static void run_cycle(void)
{
    /* Under Boehm the rotation takes the allocation lock, as a collection
     * would; it then counts as in the collector (no free_fn under that lock). */
    gcp_glue_locked(rotate_all, gcp_glue_source() == GCP_SOURCE_BOEHM ? (void *)1 : NULL);
    drain_pending_locked();
}

void gcpool_collect(void)
{
    pthread_mutex_lock(&drain_mutex);
    run_cycle();
    pthread_mutex_unlock(&drain_mutex);
}

void gcp_cycle_try(void)
{
    if (pthread_mutex_trylock(&drain_mutex) == 0) {
        run_cycle();
        pthread_mutex_unlock(&drain_mutex);
    }
}

/* ---- fork -------------------------------------------------------------------
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
 * queue of their own.) */

enum fork_step { TAKE, RELEASE, RESET };

static void each_lock(enum fork_step step)
{
    for (struct gcpool *p = atomic_load_explicit(&registry, memory_order_acquire); p;
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

static void fork_prepare(void)
{
    pthread_mutex_lock(&drain_mutex);
    pthread_mutex_lock(&registry_mutex);
    each_lock(TAKE);
    gcp_stats_fork_lock(true);
}

static void fork_parent(void)
{
    gcp_stats_fork_lock(false);
    each_lock(RELEASE);
    pthread_mutex_unlock(&registry_mutex);
    pthread_mutex_unlock(&drain_mutex);
}

static void fork_child(void)
{
    gcp_stats_fork_lock(false);
    each_lock(RESET);
    pthread_mutex_unlock(&registry_mutex);
    pthread_mutex_unlock(&drain_mutex);
    gcp_pin_after_fork(); /* the child is a new process for membarrier */
}

static void install_fork_handlers(void)
{
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

void gcp_cycle_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, install_fork_handlers);
}

uint64_t gcpool_cycles(void)
{
    return atomic_load_explicit(&cycles, memory_order_relaxed);
}
