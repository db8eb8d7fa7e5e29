/* The cleanup cycle: Go's poolCleanup, run once per collection.
 *
 * A cycle rotates every registered pool's roles (pool.h): the victim is dropped,
 * the locals become the victim, and the array dropped last time (drained since)
 * becomes the locals.  A pool unused for two cycles therefore holds nothing.
 *
 * Locks, outermost first (lockorder.h has the whole table):
 *   drain_mutex     serialises cycles' drains with gcpool_destroy and reports, so
 *                   a pool is not freed while a drain walks it;
 *   registry lock   orders rotations against pools joining or leaving the
 *                   registry: registry_mutex, and under Boehm the collector's
 *                   allocation lock within it (the collector holds only that
 *                   one when it calls us, and never waits for ours);
 *   a local's pin   taken by drains for the private slots.
 * free_fn is called with drain_mutex held and nothing else (reentry.h records
 * which thread holds it).  So from free_fn a get or put works (its slow paths
 * only try drain_mutex), gcpool_collect is deferred to the end of the drain
 * that called free_fn, and a report or a gcpool_destroy walks or leaves the
 * registry without taking drain_mutex again: the drain is paused inside
 * free_fn, between two of its steps, and neither disturbs it (gcpool_destroy
 * refuses the pool whose objects the drain is handing out, reentry.h).
 */
#include "lib/cycle.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "gc_glue/glue.h"
#include "lib/debug.h"
#include "lib/history.h"
#include "lib/lockorder.h"
#include "lib/pin.h"
#include "lib/reentry.h"
#include "lib/stats.h"
#include "lib/trace.h"

static struct gcpool *_Atomic registry; /* newest first */
static pthread_mutex_t drain_mutex = PTHREAD_MUTEX_INITIALIZER;
static _Atomic uint64_t cycles;
static _Atomic bool drains_pending; /* some pool's drp waits for free_fn */

/* ---- drain_mutex, and who holds it ------------------------------------------ */

static void run_cycle(enum gcpool_cycle_cause cause);

/* drain_held changes inside a busy section (reentry.h), so that a signal
 * handler never sees the mutex ours and drain_held false. */
static void drain_lock(void)
{
    GCP_ASSERT(!gcp_holds_drain() && !gcp_holds_registry()); /* the outermost lock */
    gcp_busy_enter();
    pthread_mutex_lock(&drain_mutex);
    gcp_self.drain_held = true;
    gcp_busy_leave();
}

static bool drain_trylock(void)
{
    GCP_ASSERT(!gcp_holds_drain() && !gcp_holds_registry());
    gcp_busy_enter();
    bool got = pthread_mutex_trylock(&drain_mutex) == 0;
    if (got)
        gcp_self.drain_held = true;
    gcp_busy_leave();
    return got;
}

static void drain_unlock(void)
{
    /* A gcpool_collect that a free_fn called during our drains runs now, in
     * this thread, before the call that drained returns.  Several calls make
     * one cycle; a cycle whose drain calls gcpool_collect again makes another.
     * drain_held is cleared before the last look, inside a busy section: a
     * signal handler's gcpool_collect either comes before it (deferred, and
     * seen) or after (refused), never lost in between. */
    for (;;) {
        gcp_busy_enter();
        gcp_self.drain_held = false;
        atomic_signal_fence(memory_order_seq_cst);
        if (!gcp_self.cycle_deferred)
            break;
        gcp_self.drain_held = true;
        gcp_busy_leave();
        gcp_self.cycle_deferred = false;
        run_cycle(GCPOOL_CYCLE_EXPLICIT); /* only gcpool_collect defers */
    }
    pthread_mutex_unlock(&drain_mutex);
    gcp_busy_leave();
}

/* ---- the registry ---------------------------------------------------------- */

static void link_pool(void *arg)
{
    struct gcpool *p = arg;
    GCP_ASSERT(gcp_holds_registry());
    atomic_store_explicit(&p->next_pool, atomic_load_explicit(&registry, memory_order_relaxed),
                          memory_order_relaxed);
    /* Release: a drain walking the registry without the lock sees p's fields. */
    atomic_store_explicit(&registry, p, memory_order_release);
}

static void unlink_pool(void *arg)
{
    struct gcpool *p = arg;
    GCP_ASSERT(gcp_holds_drain() && gcp_holds_registry());
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
    /* Held already: a free_fn destroys a pool during a drain of this thread,
     * which will read the next link of the pool it is at only once free_fn
     * returns, and never reach p again. */
    bool mine = !gcp_self.drain_held;
    if (mine)
        drain_lock();
    gcp_glue_locked(unlink_pool, p);
    if (mine)
        drain_unlock();
}

void gcp_cycle_each_pool(void (*fn)(struct gcpool *, void *), void *arg)
{
    bool mine = !gcp_self.drain_held; /* held: a report from free_fn, see the top */
    if (mine)
        drain_lock();
    /* Pools leave the registry only under drain_mutex, and join at its head,
     * so this walk needs no other lock.  Acquire: pairs with link_pool. */
    for (struct gcpool *p = atomic_load_explicit(&registry, memory_order_acquire); p;
         p = atomic_load_explicit(&p->next_pool, memory_order_acquire))
        fn(p, arg);
    if (mine)
        drain_unlock();
}

/* ---- the cycle ------------------------------------------------------------- */

/* The roles move on: cur becomes the victim (without one, the dropped array),
 * the victim the dropped array, and the dropped one, drained since, cur.
 * Registry lock held: a cycle's rotate and gcpool_trim. */
static void swap_roles(struct gcpool *p, struct gcp_locals *cur)
{
    struct gcp_locals *vic = atomic_load_explicit(&p->vic, memory_order_relaxed);
    struct gcp_locals *drp = atomic_load_explicit(&p->drp, memory_order_relaxed);
    /* Threads that loaded a role before these stores may go on using that
     * array for one operation; pool.h explains why that is safe.  Release: a
     * reader of a role sees the array as this thread left it. */
    if (p->victim_on) {
        atomic_store_explicit(&p->drp, vic, memory_order_release);
        atomic_store_explicit(&p->vic, cur, memory_order_release);
    } else {
        atomic_store_explicit(&p->drp, cur, memory_order_release);
    }
    atomic_store_explicit(&p->cur, drp, memory_order_release);
    atomic_store_explicit(&p->victim_empty, NULL, memory_order_relaxed);
}

/* Rotates one pool's roles.  Registry lock held; may run inside the collector. */
static void rotate(struct gcpool *p, struct gcp_locals *cur, enum gcpool_cycle_cause cause)
{
    GCP_ASSERT(gcp_holds_registry());
    uint64_t moved = p->victim_on ? gcp_pool_count(cur) : 0;
    swap_roles(p, cur);
    atomic_fetch_add_explicit(&p->moved_to_victim, moved, memory_order_relaxed);
    atomic_store_explicit(&p->last_moved, moved, memory_order_relaxed);
    /* Relaxed: a counter, read by statistics only. */
    GCP_ASSERT((unsigned)cause < GCP_CYCLE_CAUSES);
    atomic_fetch_add_explicit(&p->cycles_by_cause[cause], 1, memory_order_relaxed);
}

/* Drops what the rotation put in p's drp, or leaves it for later. */
static void drop_or_defer(struct gcpool *p, bool in_collector)
{
    struct gcp_locals *drp = atomic_load_explicit(&p->drp, memory_order_relaxed);
    gcp_pool_take_privates(p, drp, !in_collector);
    if (in_collector && !p->free_fn) {
        /* No free_fn: dropping is clearing our references, which lets this
         * very collection reclaim the objects. */
        uint64_t n = gcp_pool_drain(p, drp, GCP_DRAIN_NO_WAIT);
        atomic_store_explicit(&p->last_dropped, n, memory_order_relaxed);
        gcp_history_count_drops(n);
        GCP_TRACE2(drop, p, n);
        /* Checked mode's held random drops are released outside the collector
         * (their nodes are GC_FREE'd): by the next drain.  Relaxed: as below. */
        if (atomic_load_explicit(&p->debug_held, memory_order_relaxed)) {
            atomic_store_explicit(&p->drain_pending, 1, memory_order_relaxed);
            atomic_store_explicit(&drains_pending, true, memory_order_relaxed);
        }
    } else {
        /* free_fn may allocate, which would deadlock inside the collector (and
         * outside it runs after the registry lock is released): the drop waits
         * for drain_pending_locked, the next slow path or the next cycle. */
        atomic_store_explicit(&p->drain_pending, 1, memory_order_relaxed);
        atomic_store_explicit(&drains_pending, true, memory_order_relaxed);
    }
}

/* The cycle proper.  Registry lock held (in_collector: the collector's),
 * which also makes this the history's one writer (history.c). */
static void rotate_all(bool in_collector, enum gcpool_cycle_cause cause)
{
    GCP_ASSERT(gcp_holds_registry());
    struct gcp_cycle_rec rec;
    /* Relaxed: cycles changes only here, under the registry lock. */
    gcp_history_start(&rec, atomic_load_explicit(&cycles, memory_order_relaxed) + 1, cause);
    GCP_TRACE2(cycle__start, rec.number, rec.cause);
    struct gcpool *first = atomic_load_explicit(&registry, memory_order_relaxed);
    for (struct gcpool *p = first; p; p = atomic_load_explicit(&p->next_pool, memory_order_relaxed)) {
        /* Acquire: pairs with first use's release of cur, so that a pool set
         * up while we run is either skipped or seen whole. */
        struct gcp_locals *cur = gcp_locals_real(atomic_load_explicit(&p->cur, memory_order_acquire));
        p->rotated = cur != NULL;
        if (cur) {
            rec.vhits_before += gcp_stats_victim_hits(p);
            rotate(p, cur, cause);
            rec.moved += atomic_load_explicit(&p->last_moved, memory_order_relaxed); /* ours */
        }
    }
    /* Under rseq an owner may still be inside a sequence on an array that just
     * left its role; once the fence returns none is, and none can start (a
     * sequence reads the role afresh), so private slots can be emptied. */
    gcp_pin_fence();
    for (struct gcpool *p = first; p; p = atomic_load_explicit(&p->next_pool, memory_order_relaxed))
        if (p->rotated)
            drop_or_defer(p, in_collector);
    gcp_history_record(&rec);
    atomic_fetch_add_explicit(&cycles, 1, memory_order_relaxed);
    gcp_glue()->cycle_done();
}

static void drain_one(struct gcpool *p, void *unused)
{
    (void)unused;
    if (atomic_exchange_explicit(&p->drain_pending, 0, memory_order_relaxed)) {
        /* In a frame of p: nothing this thread runs meanwhile (free_fn, a
         * signal handler) may destroy the pool this drain walks. */
        struct gcp_frame f;
        gcp_frame_enter(&f, p);
        uint64_t n = gcp_pool_drain(p, atomic_load_explicit(&p->drp, memory_order_acquire), 0);
        atomic_store_explicit(&p->last_dropped, n, memory_order_relaxed);
        gcp_history_count_drops(n);
        GCP_TRACE2(drop, p, n);
        gcp_pool_release_held(p); /* checked mode's random drops, with the cycle's */
        gcp_frame_leave(&f);
    }
}

/* drain_mutex held.  free_fn may destroy other pools meanwhile (never p, the
 * one being drained): p's next link is read after drain_one returns. */
static void drain_pending_locked(void)
{
    GCP_ASSERT(gcp_holds_drain());
    atomic_store_explicit(&drains_pending, false, memory_order_relaxed);
    for (struct gcpool *p = atomic_load_explicit(&registry, memory_order_acquire); p;
         p = atomic_load_explicit(&p->next_pool, memory_order_acquire))
        drain_one(p, NULL);
}

void gcp_cycle_drain_pending(void)
{
    /* Relaxed: a late view only defers the drops to a later slow path.  Held
     * by this thread: a free_fn's get or put, inside the drain already. */
    if (!atomic_load_explicit(&drains_pending, memory_order_relaxed) || gcp_self.drain_held)
        return;
    /* trylock: never wait for another thread's drain on a get or put. */
    if (drain_trylock()) {
        drain_pending_locked();
        drain_unlock();
    }
}

void gcp_cycle_in_collector(void)
{
    /* The collector's lock is this thread's: a handler must not allocate. */
    gcp_busy_enter();
    rotate_all(true, GCPOOL_CYCLE_COLLECTOR);
    gcp_busy_leave();
}

/* Under Boehm gcp_glue_locked holds the allocation lock, as a collection
 * would, and the rotation then counts as in the collector (no free_fn under
 * that lock).  The source is read here, under registry_mutex, where it cannot
 * change between that lock's choice and ours. */
static void rotate_all_locked(void *cause)
{
    rotate_all(gcp_glue()->locked_in_collector, *(enum gcpool_cycle_cause *)cause);
}

/* drain_mutex held. */
static void run_cycle(enum gcpool_cycle_cause cause)
{
    GCP_ASSERT(gcp_holds_drain());
    gcp_glue_locked(rotate_all_locked, &cause);
    drain_pending_locked();
}

void gcpool_collect(void)
{
    if (gcp_self.drain_held) {
        /* From free_fn during a drain (or a signal handler that interrupted
         * one): the cycle would rotate the arrays that drain walks.  It runs
         * when the drain ends (drain_unlock). */
        gcp_self.cycle_deferred = true;
        return;
    }
    if (gcp_reentered()) {
        gcp_refuse("gcpool_collect", "called from a signal handler that interrupted a gcpool call "
                                     "on this thread, whose locks a cycle needs");
        return;
    }
    drain_lock();
    run_cycle(GCPOOL_CYCLE_EXPLICIT);
    drain_unlock();
}

void gcp_cycle_try(enum gcpool_cycle_cause cause)
{
    if (!gcp_self.drain_held && drain_trylock()) {
        run_cycle(cause); /* the simulator's policies and pacer, memory pressure */
        drain_unlock();
    }
}

/* fork.c holds drain_mutex across a fork; the child's one thread owns it then. */
void gcp_cycle_fork_hold(bool take)
{
    if (take)
        pthread_mutex_lock(&drain_mutex);
    else
        pthread_mutex_unlock(&drain_mutex);
}

struct gcpool *gcp_cycle_first_pool(void)
{
    /* Acquire: pairs with link_pool's release, so a pool read here is whole. */
    return atomic_load_explicit(&registry, memory_order_acquire);
}

uint64_t gcpool_cycles(void)
{
    return atomic_load_explicit(&cycles, memory_order_relaxed);
}

/* ---- gcpool_trim: one pool's cache dropped at once ---------------------------
 * A trim is the cycle's own steps for one pool, twice (with the victim: cur
 * goes to the victim, then to drp; without it once), each pass a rotation and
 * the fence under the registry lock and the drain outside it.  So it is safe
 * against concurrent gets and puts for the reasons a cycle is (pool.h): an
 * object put through a stale array pointer meanwhile is handed out or dropped
 * later, once.  It is no cycle: gcpool_cycles(), the history and the pool's
 * cycles by cause do not count it; its drops count in the pool's dropped. */

struct trim_pass {
    struct gcpool *p;
    bool rotated; /* not p->rotated: a collection's cycle may write that one meanwhile */
};

/* Registry lock held.  Rotates p's roles as a cycle would, without counting
 * a cycle, then empties the private slots of the array it dropped. */
static void trim_rotate(void *arg)
{
    struct trim_pass *t = arg;
    struct gcpool *p = t->p;
    GCP_ASSERT(gcp_holds_registry());
    /* Acquire: pairs with first use's release of cur, as in rotate_all. */
    struct gcp_locals *cur = gcp_locals_real(atomic_load_explicit(&p->cur, memory_order_acquire));
    t->rotated = cur != NULL; /* no array (never used, uncached): nothing to trim */
    if (!cur)
        return;
    swap_roles(p, cur);
    /* As in rotate_all: after the fence no rseq sequence runs on the array
     * that left its role, and none can start on it. */
    gcp_pin_fence();
    /* Under Boehm the allocation lock is held: a pin's holder may be waiting
     * for it, so busy locals are skipped (their object stays cached). */
    gcp_pool_take_privates(p, atomic_load_explicit(&p->drp, memory_order_relaxed),
                           !gcp_glue()->locked_in_collector);
}

/* drain_mutex held, in a frame of p: drops what p's drp holds (its chains and
 * the private slots the rotation took).  A cycle's pending drop is the
 * cycle's (drain_one, first); the rest is the trim's.  drain_pending is left
 * as it is: a collection's cycle that set it since still gets its drain
 * later (clearing it here could hide that drp from it), at worst a walk of
 * an array this drain emptied.  Acquire: pairs with the rotations' release. */
static uint64_t trim_drain(struct gcpool *p)
{
    return gcp_pool_drain(p, atomic_load_explicit(&p->drp, memory_order_acquire), 0);
}

int gcpool_trim(gcpool_t *p)
{
    if (!p) {
        errno = EINVAL;
        return -1;
    }
    if (gcp_debug && p->destroyed) { /* checked mode keeps the handle (debug.h) */
        gcp_debug_after_destroy(p, "gcpool_trim", "ignored (EINVAL)");
        errno = EINVAL;
        return -1;
    }
    if (gcp_reentered()) {
        gcp_refuse("gcpool_trim", "called from a signal handler that interrupted a gcpool call "
                                  "on this thread, whose locks a trim needs");
        return -1;
    }
    if (gcp_in_call_of(p)) {
        gcp_refuse("gcpool_trim", "called from inside a call of that pool on this thread (its "
                                  "free_fn or new_fn, or a get or put of it that ran this "
                                  "callback), which uses its arrays still");
        return -1;
    }
    /* Held: from another pool's free_fn, inside a drain of that pool (a
     * cycle's or a trim's), which this trim does not touch: the frames
     * refused p itself above.  As for a report, the mutex is not taken again. */
    bool mine = !gcp_self.drain_held;
    if (mine)
        drain_lock();
    struct gcp_frame f;
    gcp_frame_enter(&f, p);
    drain_one(p, NULL); /* a cycle's pending drop, first: drp is drained before it becomes cur */
    for (int pass = 0; pass < (p->victim_on ? 2 : 1); pass++) {
        struct trim_pass t = {p, false};
        gcp_glue_locked(trim_rotate, &t);
        if (!t.rotated)
            break;
        trim_drain(p);
    }
    gcp_pool_release_held(p);
    gcp_frame_leave(&f);
    if (mine)
        drain_unlock();
    return 0;
}
