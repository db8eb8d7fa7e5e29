/* The pool: Go's sync.Pool (Go >= 1.13) in C.  Shapes and roles in pool.h.
 *
 * Get:  own private -> own shared head -> steal other locals' tails (topology
 *       order) -> victim private -> victim shared -> new_fn.
 * Put:  own private -> own shared head (a new ring when the head is full).
 */
#include "lib/pool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gc_glue/glue.h"
#include "lib/cycle.h"
#include "lib/debug.h"
#include "lib/env.h"
#include "lib/fork.h"
#include "lib/locked.h"
#include "lib/lockorder.h"
#include "lib/mem.h"
#include "lib/peek.h"
#include "lib/pin.h"
#include "lib/reentry.h"
#include "lib/report.h"
#include "lib/stats.h"
#include "lib/trace.h"
#include "topology/topology.h"

enum source { FROM_PRIVATE, FROM_SHARED, FROM_STEAL, FROM_VICTIM, FROM_NOWHERE };

static _Atomic unsigned pools_created;

/* gcpool/fastpath.h's sequences, inlined in programs, read our layout.  Any
 * change here is a change of that contract: rename gcpool_fastpath_v3 too. */
_Static_assert(offsetof(struct gcpool, cur) == 0, "fastpath.h: a pool's first word is cur");
_Static_assert(sizeof(struct gcp_locals) == GCPOOL_FASTPATH_LOCALS_HEADER,
               "fastpath.h: the locals start right after their array's header");
_Static_assert(GCPOOL_FASTPATH_NO_LOCAL < GCPOOL_FASTPATH_LOCALS_HEADER,
               "fastpath.h: no local's offset is NO_LOCAL");
#define LOCAL_AT(field, offset) (offsetof(struct gcp_local, field) == (offset))
_Static_assert(LOCAL_AT(private_, 0) && LOCAL_AT(fills, GCPOOL_FASTPATH_LOCAL_FILLS) &&
                   LOCAL_AT(pin, GCPOOL_FASTPATH_LOCAL_PIN) && sizeof(gcp_lock_t) == sizeof(int) &&
                   LOCAL_AT(seq.hit_shared, GCPOOL_FASTPATH_LOCAL_HIT_SHARED) &&
                   LOCAL_AT(seq.puts_shared, GCPOOL_FASTPATH_LOCAL_PUTS_SHARED) &&
                   LOCAL_AT(shared.head_ring, GCPOOL_FASTPATH_LOCAL_HEAD_RING),
               "fastpath.h: a local's fields where its sequences look");
#undef LOCAL_AT
_Static_assert(offsetof(struct gcp_ring, head_tail) == GCPOOL_FASTPATH_RING_HEAD_TAIL &&
                   GCPOOL_FASTPATH_RING_TAIL == GCPOOL_FASTPATH_RING_HEAD_TAIL &&
                   GCPOOL_FASTPATH_RING_HEAD == GCPOOL_FASTPATH_RING_HEAD_TAIL + 4 &&
                   offsetof(struct gcp_ring, size) == GCPOOL_FASTPATH_RING_SIZE &&
                   offsetof(struct gcp_ring, slots) == GCPOOL_FASTPATH_RING_SLOTS,
               "fastpath.h: a ring's fields where its sequences look");
_Static_assert(offsetof(struct gcpool_fastpath, restarts) - offsetof(struct gcpool_fastpath, cpu_local) ==
                   (size_t)GCPOOL_FASTPATH_RESTARTS,
               "fastpath.h: the abort handler finds restarts right before cpu_local");
#ifdef GCP_HAVE_RSEQ_AREA
_Static_assert(offsetof(struct rseq, cpu_id_start) == GCPOOL_FASTPATH_RSEQ_CPU_ID_START &&
                   offsetof(struct rseq, rseq_cs) == GCPOOL_FASTPATH_RSEQ_CS,
               "fastpath.h: the kernel's rseq area as its sequences read it");
#endif

/* rseq in force and checked mode off (pin.h's gcp_pin_fast). */
static inline bool fast_on(void)
{
    return __atomic_load_n(&gcp_pin_fast, __ATOMIC_RELAXED);
}

static size_t round_up(size_t n, size_t unit)
{
    return (n + unit - 1) / unit * unit;
}

size_t gcp_local_stride(void)
{
    return round_up(sizeof(struct gcp_local), gcp_topology()->local_align);
}

static struct gcp_locals *locals_new(bool collector)
{
    const struct gcp_topology *t = gcp_topology();
    unsigned n = t->nlocals;
    size_t stride = gcp_local_stride();
    /* The array's header, then the locals right after it, the first on a unit
     * boundary (one unit more for that): locals of neighbouring CPUs never
     * share a line or an adjacent-line prefetch pair, and a sequence finds a
     * local from the header's address alone (fastpath.h), one load fewer. */
    void *mem = gcp_mem_alloc(collector, sizeof(struct gcp_locals) + t->local_align + n * stride);
    if (!mem)
        return NULL;
    char *base = (char *)round_up((uintptr_t)mem + sizeof(struct gcp_locals), t->local_align);
    struct gcp_locals *a = (struct gcp_locals *)(base - sizeof(struct gcp_locals));
    a->n = n;
    a->stride = stride;
    a->mem = mem;
    a->base = base;
    for (unsigned i = 0; i < a->n; i++)
        gcp_chain_init(&gcp_local_at(a, i)->shared);
    return a;
}

static void locals_free(struct gcp_locals *a)
{
    if (!a)
        return;
    for (unsigned i = 0; i < a->n; i++) {
        gcp_chain_destroy(&gcp_local_at(a, i)->shared);
        gcp_locked_destroy(&gcp_local_at(a, i)->locked);
    }
    gcp_mem_free(a->mem); /* a lives in it */
}

struct gcp_locals *gcp_no_locals;

/* gcp_no_locals, laid out as locals_new's arrays, so that every CPU's offset
 * in the table lands on one of its locals; then mapped read-only. */
static void no_locals_init(void)
{
    const struct gcp_topology *t = gcp_topology();
    size_t stride = gcp_local_stride();
    size_t len = round_up(sizeof(struct gcp_locals) + t->local_align + t->nlocals * stride,
                          (size_t)sysconf(_SC_PAGESIZE));
    void *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        return;
    char *base = (char *)round_up((uintptr_t)mem + sizeof(struct gcp_locals), t->local_align);
    struct gcp_locals *a = (struct gcp_locals *)(base - sizeof(struct gcp_locals));
    a->n = t->nlocals;
    a->stride = stride;
    a->mem = mem;
    a->base = base;
    for (unsigned i = 0; i < a->n; i++) {
        struct gcp_local *l = gcp_local_at(a, i);
        atomic_init(&l->private_, GCP_NO_LOCALS_SLOT);
        l->pin.word = 1; /* held, for ever */
    }
    if (mprotect(mem, len, PROT_READ) != 0) {
        munmap(mem, len);
        return;
    }
    gcp_no_locals = a;
}

static gcpool_t *create(const gcpool_options_t *opts);

gcpool_t *gcpool_create(const gcpool_options_t *opts)
{
    if (gcp_reentered()) {
        gcp_refuse("gcpool_create", "called from a signal handler that interrupted a gcpool call "
                                    "on this thread (a pool is allocated and registered under locks)");
        return NULL;
    }
    return gcp_pool_create(opts);
}

gcpool_t *gcp_pool_create(const gcpool_options_t *opts)
{
    /* Allocation, locks, once-only set-ups: a busy section (reentry.h). */
    gcp_busy_enter();
    gcpool_t *p = create(opts);
    gcp_busy_leave();
    return p;
}

static gcpool_t *create(const gcpool_options_t *opts)
{
    gcpool_options_t defaults = {0};
    if (!opts)
        opts = &defaults;
    /* Choose the cycle source (or move it to Boehm, the collector having
     * turned up since), the pin and the topology now, not on a hot path. */
    gcp_glue_refresh();
    gcp_topology();
    gcp_pin_init();
    gcp_fork_init();
    gcp_debug_init();
    gcp_stats_at_exit();
    static pthread_once_t no_locals_once = PTHREAD_ONCE_INIT;
    pthread_once(&no_locals_once, no_locals_init);
    if (!gcp_no_locals) {
        errno = ENOMEM;
        return NULL;
    }
    if (gcp_pin_rseq && !gcp_debug) /* both chosen once */
        gcp_pin_fast_on();

    struct gcpool *p = gcp_mem_calloc(sizeof *p);
    if (!p || (opts->name && !(p->name = gcp_mem_strdup(opts->name)))) {
        free(p);
        errno = ENOMEM;
        return NULL;
    }
    /* Relaxed: the pool is not published yet. */
    atomic_store_explicit(&p->cur, gcp_no_locals, memory_order_relaxed);
    p->new_fn = opts->new_fn;
    p->free_fn = opts->free_fn;
    p->arg = opts->arg;
    p->obj_size = opts->size;
    p->index = atomic_fetch_add_explicit(&pools_created, 1, memory_order_relaxed);
    p->ring_min = (uint32_t)gcp_env_long(GCP_ENV_RING_MIN);
    p->ring_max = (uint32_t)gcp_env_long(GCP_ENV_RING_MAX);
    if (p->ring_max < p->ring_min)
        p->ring_max = p->ring_min;
    p->victim_on = gcp_env_long(GCP_ENV_VICTIM) != 0;
    p->max_cached = opts->max_cached ? (uint64_t)opts->max_cached
                                     : (uint64_t)gcp_env_long(GCP_ENV_MAX_CACHED);
    p->shared_locked = gcp_env_long(GCP_ENV_SHARED) == GCP_SHARED_LOCKED;
    /* In the registry from the start (reports, fork); cycles skip it until its
     * first use sets up the arrays. */
    gcp_cycle_register(p);
    return p;
}

struct gcp_locals *gcp_pool_first_use(struct gcpool *p, const void *first_obj)
{
    if (p->destroying) /* a callback of its destroy: no storage any more */
        return NULL;
    /* Acquire: pairs with stop_caching's exchange; a pool that stopped caching
     * is never set up again. */
    if (atomic_load_explicit(&p->uncached, memory_order_acquire))
        return NULL;
    /* The storage the first object needs, decided outside init_lock: the
     * decision may take registry_mutex, which fork takes before init_lock. */
    bool collector = gcp_glue_collector_storage(first_obj);
    gcp_lock(&p->init_lock);
    if (!p->arrays[0]) { /* arrays[0] is set, under init_lock, only here */
        p->collector_storage = collector;
        /* All three arrays now, so that a cycle never has to allocate. */
        for (int k = 0; k < 3; k++) {
            if (!(p->arrays[k] = locals_new(collector))) {
                for (int j = 0; j < k; j++)
                    locals_free(p->arrays[j]);
                memset(p->arrays, 0, sizeof p->arrays);
                memset(p->blocks, 0, sizeof p->blocks);
                gcp_unlock(&p->init_lock);
                errno = ENOMEM;
                return NULL;
            }
            p->blocks[k] = p->arrays[k]->mem;
            /* The bound (gcpool_options_t.max_cached): one budget an array,
             * which its chains keep through the rotations, as their rings. */
            p->budget[k].max = p->max_cached;
            for (unsigned i = 0; p->max_cached && i < p->arrays[k]->n; i++)
                gcp_local_at(p->arrays[k], i)->shared.budget = &p->budget[k];
        }
        atomic_store_explicit(&p->drp, p->arrays[2], memory_order_relaxed);
        atomic_store_explicit(&p->vic, p->victim_on ? p->arrays[1] : NULL, memory_order_relaxed);
        /* Release: whoever loads cur sees the arrays set up. */
        atomic_store_explicit(&p->cur, p->arrays[0], memory_order_release);
    }
    /* Set up by us or before us; NULL if the pool stopped caching since. */
    struct gcp_locals *cur = gcp_locals_real(atomic_load_explicit(&p->cur, memory_order_acquire));
    gcp_unlock(&p->init_lock);
    return cur;
}

/* The array gets and puts use now, set up on first use (for obj, the object
 * at hand); NULL when that failed. */
static inline struct gcp_locals *current_array(struct gcpool *p, const void *obj)
{
    /* Acquire: pairs with the release stores of first use and of a cycle. */
    struct gcp_locals *a = gcp_locals_real(atomic_load_explicit(&p->cur, memory_order_acquire));
    return __builtin_expect(a != NULL, 1) ? a : gcp_pool_first_use(p, obj);
}

/* ---- objects the pool's storage cannot keep ---------------------------------
 * A pool set up for malloc'd objects (under the simulator, or before the
 * collector was initialised) keeps them in malloc'd storage, which the
 * collector does not scan: a collector object cached there would be freed by
 * the next collection and handed out afterwards.  So when such a pool meets a
 * collector object, it stops caching rather than risk it: everything it holds
 * is dropped, and from then on gets call new_fn and puts drop.  Who looks:
 * checked mode at every put; otherwise the slow paths that see an object -
 * every new_fn result, the put that sets the pool up, a put that grows a
 * chain - since the paths that hit a slot or a ring cannot afford to ask the
 * collector (GC_base: some 30 instructions a put under the lock pin).  A pool whose first
 * object is the collector's is set up in collector memory in the first place
 * (gcp_glue_collector_storage), so this is for pools given both kinds.
 * What such a pool cached before it noticed is dropped like any cycle's drop
 * (to free_fn, if it has one); only the checked mode sees every put in time. */

/* Whether obj is the collector's while p's storage is not.  p is set up. */
static bool hidden_from_collector(const struct gcpool *p, const void *obj)
{
    return !p->collector_storage && gcp_mem_is_collectors(obj);
}

/* Registry lock held: no cycle rotates the roles meanwhile.  drp stays, for a
 * drain a cycle may have left pending; cycles skip a pool without cur. */
static void empty_roles(void *pool)
{
    struct gcpool *p = pool;
    GCP_ASSERT(gcp_holds_registry());
    atomic_store_explicit(&p->vic, NULL, memory_order_relaxed);
    /* Release: whoever loads this no-array sees uncached set (first use, stats). */
    atomic_store_explicit(&p->cur, gcp_no_locals, memory_order_release);
}

/* Every object of every array to free_fn (or forgotten), as after a cycle's
 * rotation: once the fence returns no sequence runs on the arrays any more,
 * and none can start (a sequence reads cur afresh), so private slots can be
 * emptied. */
static void drain_all(struct gcpool *p)
{
    gcp_pin_fence();
    for (int k = 0; k < 3; k++) {
        gcp_pool_drain(p, p->arrays[k], 0); /* chains, and what cycles left in private_dropped */
        gcp_pool_take_privates(p, p->arrays[k], true);
        gcp_pool_drain(p, p->arrays[k], 0); /* the private slots, now in private_dropped */
    }
}

static void stop_caching(struct gcpool *p, const void *obj)
{
    /* The first thread to get here reports and empties; acq_rel: pairs with
     * first use's acquire, so that it never sets the pool up again. */
    if (atomic_exchange_explicit(&p->uncached, true, memory_order_acq_rel))
        return;
    char index_name[32];
    gcp_warn("gcpool: pool \"%s\": object %p is the Boehm collector's, but the pool's storage was "
             "set up for malloc'd objects and the collector cannot see it; the pool stops caching "
             "(call GC_INIT() before the first gcpool_create, or set GCPOOL_GC=boehm)",
             gcp_pool_name(p, index_name, sizeof index_name), obj);
    gcp_glue_locked(empty_roles, p);
    drain_all(p);
}

/* Counts in the pool's no_storage counters (any thread). */
static void count_no_storage(_Atomic uint64_t *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

/* The callbacks, each inside a frame of its pool (reentry.h): from them, a
 * gcpool_destroy of that pool is refused. */
static void *call_new(struct gcpool *p)
{
    struct gcp_frame f;
    gcp_frame_enter(&f, p);
    void *obj = p->new_fn(p->arg);
    gcp_frame_leave(&f);
    return obj;
}

/* What one of p's objects weighs in the simulated collector's heap (glue.h). */
static uint64_t heap_units(const struct gcpool *p)
{
    return p->obj_size ? p->obj_size : 1;
}

/* The heap counted new_fn's object before the call: a NULL takes it back. */
static void *made_or_not(struct gcpool *p, void *obj)
{
    if (!obj)
        gcp_glue_heap_dropped(heap_units(p));
    return obj;
}

/* A miss: new_fn's object, or NULL.  A slow path: the simulated collector's
 * policies are checked here. */
static void *miss_new(struct gcpool *p)
{
    GCP_TRACE1(miss, p);
    gcp_glue_poll();
    if (!p->new_fn)
        return NULL;
    gcp_glue_new_called(heap_units(p));
    void *obj = made_or_not(p, call_new(p));
    GCP_TRACE2(new, p, obj);
    return obj;
}

/* One object leaves the pool for good; the caller counts it in p->dropped. */
static void drop_uncounted(void *obj, void *pool)
{
    struct gcpool *p = pool;
    gcp_glue_heap_dropped(heap_units(p));
    if (__builtin_expect(gcp_debug, 0))
        gcp_debug_dropped(p, obj);
    if (p->free_fn) {
        struct gcp_frame f;
        gcp_frame_enter(&f, p);
        p->free_fn(obj, p->arg);
        gcp_frame_leave(&f);
    }
}

static void drop(struct gcpool *p, void *obj)
{
    drop_uncounted(obj, p);
    atomic_fetch_add_explicit(&p->dropped, 1, memory_order_relaxed);
}

/* A put the retention bound refused (gcpool_options_t.max_cached): dropped
 * as any other, and counted apart too. */
static __attribute__((noinline)) void drop_over_bound(struct gcpool *p, void *obj)
{
    GCP_TRACE2(drop__bound, p, obj);
    drop(p, obj);
    atomic_fetch_add_explicit(&p->dropped_bound, 1, memory_order_relaxed); /* a count */
}

/* A get or put that cannot use the pool's storage acts as an empty pool's. */
static void *get_unpooled(struct gcpool *p)
{
    count_no_storage(&p->no_storage.miss);
    if (!p->new_fn)
        return NULL;
    count_no_storage(&p->no_storage.news);
    gcp_glue_heap_made(heap_units(p)); /* an atomic add: fine in a signal handler */
    return made_or_not(p, call_new(p));
}

static void put_unpooled(struct gcpool *p, void *obj)
{
    count_no_storage(&p->no_storage.puts_shared);
    drop(p, obj);
}

/* A get or put from a signal handler that interrupted a library section of
 * its own thread (reentry.h): whatever it would need — a pin, the first use's
 * lock, an allocation, checked mode's tables — that thread may hold.  So it
 * touches none of the pool's storage and acts as an empty pool's: new_fn, or
 * free_fn at once, counted (a miss; a put and a drop).  Checked mode cannot
 * track it (its tables have locks): such a call is not checked. */
static __attribute__((noinline)) void *get_reentrant(struct gcpool *p)
{
    return get_unpooled(p);
}

static __attribute__((noinline)) void put_reentrant(struct gcpool *p, void *obj)
{
    count_no_storage(&p->no_storage.puts_shared);
    atomic_fetch_add_explicit(&p->dropped, 1, memory_order_relaxed);
    gcp_glue_heap_dropped(heap_units(p));
    if (p->free_fn) {
        struct gcp_frame f;
        gcp_frame_enter(&f, p);
        p->free_fn(obj, p->arg);
        gcp_frame_leave(&f);
    }
}

void gcp_pool_release_held(struct gcpool *p)
{
    /* Relaxed peek: a list pushed meanwhile waits for the next release. */
    if (gcp_debug && atomic_load_explicit(&p->debug_held, memory_order_relaxed))
        atomic_fetch_add_explicit(&p->dropped, gcp_debug_release_held(p, drop_uncounted),
                                  memory_order_relaxed);
}

/* Go 1.12's locked mode: a pop of l's queue, which gives its object's share
 * of the bound back (the put took it). */
static void *locked_pop(struct gcp_local *l, bool may_wait)
{
    void *obj = gcp_locked_pop(&l->locked, may_wait);
    if (obj && l->shared.budget)
        gcp_budget_give(l->shared.budget, 1);
    return obj;
}

/* A thief's end of a local's shared queue: the chain's tail, lock-free; or, in
 * Go 1.12's locked mode, the last item under the queue's mutex (may_wait
 * false: give up when it is busy). */
static void *take_tail(struct gcpool *p, struct gcp_local *l, bool may_wait)
{
    return p->shared_locked ? locked_pop(l, may_wait) : gcp_chain_pop_tail(&l->shared);
}

/* The collector's callback must never wait for a local's pin: the fork
 * handlers hold every pin while they wait for the collector's lock.  So it
 * tries, and leaves a busy local for a later drain (may_wait false). */
static struct gcp_local *pin_for_cycle(struct gcp_locals *a, unsigned i, bool may_wait)
{
    struct gcp_local *l = gcp_local_at(a, i);
    if (may_wait)
        gcp_lock(&l->pin);
    else if (!gcp_trylock(&l->pin))
        return NULL;
    return l;
}

uint64_t gcp_pool_drain(struct gcpool *p, struct gcp_locals *a, unsigned flags)
{
    uint64_t n = 0;
    bool with_private = flags & GCP_DRAIN_PRIVATE;
    for (unsigned i = 0; i < a->n; i++) {
        struct gcp_local *l = pin_for_cycle(a, i, !(flags & GCP_DRAIN_NO_WAIT));
        if (l) {
            void *objs[2] = {l->private_dropped, NULL};
            l->private_dropped = NULL;
            if (with_private)
                objs[1] = atomic_exchange_explicit(&l->private_, NULL, memory_order_relaxed);
            gcp_unpin(l);
            /* free_fn runs outside the pin: it may use pools itself. */
            for (int k = 0; k < 2; k++) {
                if (objs[k]) {
                    drop_uncounted(objs[k], p);
                    n++;
                }
            }
        }
        l = gcp_local_at(a, i);
        if (!p->shared_locked) {
            /* One CAS a ring: this runs inside the collector's pause. */
            n += gcp_chain_take_all(&l->shared, drop_uncounted, p);
            continue;
        }
        void *obj;
        while ((obj = take_tail(p, l, !(flags & GCP_DRAIN_NO_WAIT)))) {
            drop_uncounted(obj, p);
            n++;
        }
    }
    atomic_fetch_add_explicit(&p->dropped, n, memory_order_relaxed);
    return n;
}

bool gcp_pool_take_privates(struct gcpool *p, struct gcp_locals *a, bool may_wait)
{
    uint64_t n = 0;
    bool all = true;
    for (unsigned i = 0; i < a->n; i++) {
        struct gcp_local *l = pin_for_cycle(a, i, may_wait);
        if (!l) {
            all = false;
            continue;
        }
        /* A drop still pending from an earlier cycle holds the spare slot: then
         * the object stays where it is, cached, rather than be lost. */
        /* Relaxed: the pin (lock pin) or the fence (rseq) orders this against
         * the owners; atomic only for the statistics' racy reads. */
        void *obj = atomic_load_explicit(&l->private_, memory_order_relaxed);
        if (obj && !l->private_dropped) {
            l->private_dropped = obj;
            atomic_store_explicit(&l->private_, NULL, memory_order_relaxed);
            n++;
        }
        gcp_unpin(l);
    }
    atomic_fetch_add_explicit(&p->private_moved, n, memory_order_relaxed);
    return all;
}

uint64_t gcp_pool_count(const struct gcp_locals *a)
{
    return gcp_stats_count(&gcp_peek_self, a);
}

/* Pops the tail of every other local of a, nearest first. */
static void *steal(struct gcpool *p, struct gcp_locals *a, unsigned self)
{
    const struct gcp_topology *t = gcp_topology();
    const unsigned *order = gcp_topology_steal_order(t, self);
    for (unsigned k = 0; k + 1 < a->n; k++) {
        void *obj = take_tail(p, gcp_local_at(a, order[k]), true);
        if (obj)
            return obj;
    }
    return NULL;
}

static void *from_victim(struct gcpool *p, unsigned self, bool *from_private)
{
    /* Acquire: pairs with the cycle's release of the roles. */
    struct gcp_locals *v = atomic_load_explicit(&p->vic, memory_order_acquire);
    if (!v || atomic_load_explicit(&p->victim_empty, memory_order_relaxed) == v)
        return NULL;
    void *obj = gcp_pin_take_private(&p->vic);
    *from_private = obj != NULL;
    if (obj)
        return obj;
    if ((obj = take_tail(p, gcp_local_at(v, self), true)) || (obj = steal(p, v, self)))
        return obj;
    /* Later gets skip this victim until the next cycle replaces it.  Relaxed:
     * a stale view only costs a wasted or a skipped search. */
    atomic_store_explicit(&p->victim_empty, v, memory_order_relaxed);
    return NULL;
}

/* Counts a get that did not find its object in its own local. */
static void count_slow_get(struct gcp_locals *a, enum source src, bool victim_private, bool call_new)
{
    struct gcp_local *l = gcp_pin(a, gcp_current_local(gcp_topology()));
    gcp_count(src == FROM_STEAL    ? &l->counters.hit_steal
              : src == FROM_VICTIM ? &l->counters.hit_victim
                                   : &l->counters.miss,
              1);
    if (victim_private)
        gcp_count(&l->counters.victim_private, 1);
    if (call_new)
        gcp_count(&l->counters.news, 1);
    gcp_unpin(l);
}

static void *get_slow_in_frame(struct gcpool *p, struct gcp_locals *a, unsigned self)
{
    /* A slow path: drops deferred by cycles inside the collector go to
     * free_fn here (a get that steals, a miss), as in put_slow and put_grow. */
    gcp_cycle_drain_pending();
    enum source src = FROM_STEAL;
    bool victim_private = false;
    void *obj = steal(p, a, self);
    if (obj) {
        GCP_TRACE2(steal, p, obj);
    } else {
        obj = from_victim(p, self, &victim_private);
        src = obj ? FROM_VICTIM : FROM_NOWHERE;
    }
    count_slow_get(a, src, victim_private, !obj && p->new_fn);
    if (obj)
        return obj;
    /* A miss: the simulated collector's interval policy is checked here. */
    obj = miss_new(p);
    if (obj && hidden_from_collector(p, obj))
        stop_caching(p, obj); /* before the caller can put it back */
    return obj;
}

/* A get that found no array: the pool's first (nothing is cached before a put
 * has set the arrays up), or one of a pool without storage.  new_fn's object,
 * the pool's first, is what first use sets the storage up for; a get with no
 * object sets nothing up, and the first put decides. */
static void *get_no_storage(struct gcpool *p)
{
    struct gcp_frame f;
    gcp_frame_enter(&f, p);
    gcp_cycle_drain_pending();
    void *obj = miss_new(p);
    struct gcp_locals *a = obj ? gcp_pool_first_use(p, obj) : NULL;
    if (!a) {
        count_no_storage(&p->no_storage.miss);
        if (p->new_fn)
            count_no_storage(&p->no_storage.news);
    } else {
        if (hidden_from_collector(p, obj)) /* another thread set it up, for other objects */
            stop_caching(p, obj);
        count_slow_get(a, FROM_NOWHERE, false, p->new_fn != NULL);
    }
    gcp_frame_leave(&f);
    return obj;
}

/* In a frame of p: the drain, the simulated collector and new_fn may run
 * callbacks, and p is used after them. */
static void *get_slow(struct gcpool *p, struct gcp_locals *a, unsigned self)
{
    struct gcp_frame f;
    gcp_frame_enter(&f, p);
    void *obj = get_slow_in_frame(p, a, self);
    gcp_frame_leave(&f);
    return obj;
}

/* A get that found this CPU's private slot empty.  The head ring's sequence
 * is safe from a signal handler; what follows it is checked for re-entry. */
static __attribute__((noinline)) void *get_shared(struct gcpool *p)
{
    /* Acquire: pairs with the release stores of first use and of a cycle. */
    struct gcp_locals *a = gcp_locals_real(atomic_load_explicit(&p->cur, memory_order_acquire));
    if (__builtin_expect(!a, 0)) {
        if (gcp_reentered())
            return get_reentrant(p);
        return get_no_storage(p);
    }
    void *obj;
    if (!p->shared_locked && (obj = gcp_pin_chain_pop(&p->cur)))
        return obj;
    if (gcp_reentered())
        return get_reentrant(p);
    unsigned self;
    struct gcp_local *l = gcp_pin_owner(a, &self);
    obj = p->shared_locked ? locked_pop(l, true) : gcp_chain_pop_head(&l->shared);
    if (obj) {
        gcp_count(&l->counters.hit_shared, 1);
        gcp_unpin(l);
        return obj;
    }
    gcp_unpin(l);
    return get_slow(p, a, self);
}

/* Checked mode: a get through a destroyed pool's kept handle (debug.h). */
static __attribute__((noinline, cold)) void *get_after_destroy(struct gcpool *p)
{
    gcp_debug_after_destroy(p, "gcpool_get", "NULL (EINVAL)");
    errno = EINVAL;
    return NULL;
}

/* Every get but the rseq hit path: a NULL pool, the lock pin, checked mode. */
static __attribute__((noinline)) void *get_general(struct gcpool *p)
{
    if (!p) {
        errno = EINVAL;
        return NULL;
    }
    if (gcp_debug && p->destroyed)
        return get_after_destroy(p);
    if (gcp_reentered()) /* before the lock pin's private slot, and checked mode's hooks */
        return get_reentrant(p);
    void *obj = gcp_pin_take_private(&p->cur);
    if (!obj)
        obj = get_shared(p);
    if (gcp_debug && obj)
        gcp_debug_get(p, obj);
    return obj;
}

/* The name in parentheses: the definition, not fastpath.h's macro. */
void *(gcpool_get)(gcpool_t *p)
{
#ifdef GCP_PIN_RSEQ_POSSIBLE
    /* The hot path: one sequence, one load and one store. */
    if (__builtin_expect(p && fast_on(), 1)) {
        void *obj = gcpool_fastpath_take_(gcp_pin_table.cpu_local, &p->cur);
        return __builtin_expect(obj != NULL, 1) ? obj : get_shared(p);
    }
#endif
    return get_general(p);
}

/* Where the inline gcpool_get goes when the private slot and the head ring
 * were empty (get_shared tries the ring once more: the sequence may have
 * given up for a migration). */
void *gcpool_fastpath_get_v3(gcpool_t *p)
{
    return __builtin_expect(p && fast_on(), 1) ? get_shared(p) : get_general(p);
}

/* The head ring was full: grow the chain with a ring allocated outside any
 * lock (under Boehm the collector's callback may wait for our pin, and an
 * allocation may wait for the collector), then push again. */
static void put_grow(struct gcpool *p, void *obj, uint32_t want)
{
    /* In a frame of p: the drain and the simulated collector may run
     * callbacks, and p is used after them. */
    struct gcp_frame f;
    gcp_frame_enter(&f, p);
    /* A slow path: a program that only puts hands deferred drops over here. */
    gcp_cycle_drain_pending();
    gcp_glue_poll();
    struct gcp_locals *a = current_array(p, obj);
    if (a && hidden_from_collector(p, obj)) {
        stop_caching(p, obj);
        a = NULL;
    }
    struct gcp_ring *r = a && want ? gcp_ring_new(want, p->collector_storage) : NULL;
    bool over_bound = a && !want;
    if (a) {
        unsigned self;
        struct gcp_local *l = gcp_pin_owner(a, &self);
        uint32_t again;
        bool done = gcp_chain_push_head(&l->shared, obj, &again, p->ring_min, p->ring_max);
        if (!done) {
            /* The budget may have run out meanwhile (other locals took it),
             * or come back (a ring retired): the second look decides. */
            over_bound = !again;
            if (r && !over_bound && gcp_chain_push_ring(&l->shared, r, obj, &over_bound)) {
                done = true;
                r = NULL; /* the chain owns it now */
            }
        }
        gcp_unpin(l);
        if (done) {
            gcp_ring_free(r);
            gcp_frame_leave(&f);
            return;
        }
    }
    /* No room and no memory, or the bound: the pool may drop anything, but
     * never loses it. */
    gcp_ring_free(r);
    if (over_bound)
        drop_over_bound(p, obj);
    else
        drop(p, obj);
    gcp_frame_leave(&f);
}

/* Checked mode: a put through a destroyed pool's kept handle (debug.h). */
static __attribute__((noinline, cold)) void put_after_destroy(struct gcpool *p, void *obj)
{
    char call[64];
    snprintf(call, sizeof call, "gcpool_put of object %p", obj);
    gcp_debug_after_destroy(p, call, "not cached: the object is still the caller's (EINVAL)");
    errno = EINVAL;
}

/* Every put but the rseq hit path, which gcpool_put and the inline put take
 * first: with the fast path on, p and obj set, this CPU's private slot has
 * been tried (by the inline put, the head ring too).  Otherwise - NULLs, the
 * lock pin, checked mode - the checks come first, then the private slot.
 * From the head ring's sequence on, both ways are one. */
static __attribute__((noinline)) void put_slow(struct gcpool *p, void *obj)
{
    if (__builtin_expect(!p || !obj || !fast_on(), 0)) {
        if (!p) {
            errno = EINVAL;
            return;
        }
        if (!obj)
            return;
        if (gcp_debug && p->destroyed) {
            put_after_destroy(p, obj);
            return;
        }
        if (gcp_reentered()) { /* before the lock pin's private slot, and checked mode's hooks */
            put_reentrant(p, obj);
            return;
        }
        if (gcp_debug) {
            /* Checked mode asks the collector about every put (see stop_caching). */
            if (gcp_locals_real(atomic_load_explicit(&p->cur, memory_order_acquire)) &&
                hidden_from_collector(p, obj))
                stop_caching(p, obj);
            switch (gcp_debug_put(p, obj)) {
            case GCP_DEBUG_CACHE:
                break;
            case GCP_DEBUG_HELD_FULL:
                gcp_pool_release_held(p);
                return;
            case GCP_DEBUG_IGNORE:
            case GCP_DEBUG_HELD:
                return;
            }
        }
        if (gcp_pin_fill_private(&p->cur, obj))
            return;
    }
    /* The private slot was taken.  The head ring's sequence is safe from a
     * signal handler; what follows it is checked for re-entry, as in
     * get_shared. */
    struct gcp_locals *a = gcp_locals_real(atomic_load_explicit(&p->cur, memory_order_acquire));
    if (!a) { /* first use: set up the arrays, then the private slot is free */
        if (gcp_reentered()) {
            put_reentrant(p, obj);
            return;
        }
        if ((a = gcp_pool_first_use(p, obj)) && hidden_from_collector(p, obj)) {
            stop_caching(p, obj); /* another thread set it up, for other objects */
            a = NULL;
        }
        if (!a) { /* no memory, being destroyed, or no storage: a put that drops */
            put_unpooled(p, obj);
            return;
        }
        if (gcp_pin_fill_private(&p->cur, obj))
            return;
    }
    if (!p->shared_locked && gcp_pin_chain_push(&p->cur, obj))
        return;
    if (gcp_reentered()) {
        put_reentrant(p, obj);
        return;
    }
    unsigned self;
    struct gcp_local *l = gcp_pin_owner(a, &self);
    gcp_count(&l->counters.puts_shared, 1);
    if (p->shared_locked) {
        /* Go 1.12: append under the queue's mutex (which may grow the array:
         * not under the pin, see put_grow). */
        gcp_unpin(l);
        /* The bound counts each queued object (locked_pop gives it back). */
        if (l->shared.budget && !gcp_budget_take(l->shared.budget, 1))
            drop_over_bound(p, obj);
        else if (!gcp_locked_push(&l->locked, obj, p->collector_storage)) {
            if (l->shared.budget)
                gcp_budget_give(l->shared.budget, 1);
            drop(p, obj);
        }
        gcp_cycle_drain_pending();
        return;
    }
    uint32_t want;
    bool done = gcp_chain_push_head(&l->shared, obj, &want, p->ring_min, p->ring_max);
    gcp_unpin(l);
    if (!done)
        put_grow(p, obj, want);
    else
        gcp_cycle_drain_pending(); /* a slow path too: the head ring was full (or busy) */
}

void(gcpool_put)(gcpool_t *p, void *obj)
{
#ifdef GCP_PIN_RSEQ_POSSIBLE
    /* The hot path: this CPU's private slot, one sequence (see gcpool_get). */
    if (__builtin_expect(p && obj && fast_on(), 1) &&
        __builtin_expect(gcpool_fastpath_fill_(gcp_pin_table.cpu_local, &p->cur, obj), 1))
        return;
#endif
    put_slow(p, obj);
}

/* Where the inline gcpool_put goes when the private slot and the head ring
 * were full (put_slow tries the ring once more, as gcpool_fastpath_get_v2). */
void gcpool_fastpath_put_v3(gcpool_t *p, void *obj)
{
    put_slow(p, obj);
}

/* Programs built against the v1 and v2 contracts (fastpath.h says why each
 * changed) read gcpool_fastpath_v1 or _v2 instead, a table of this layout
 * (which a copy relocation may have copied at its size): its `on` stays 0, so
 * they call gcpool_get and gcpool_put and never these, kept so that they
 * still link, and still right if called. */
struct gcp_fastpath_v2 {
    int on;
    ptrdiff_t rseq_offset;
    uint64_t restarts;
    size_t cpu_local[1024];
};
GCPOOL_API struct gcp_fastpath_v2 gcpool_fastpath_v1, gcpool_fastpath_v2;
GCPOOL_API void *gcpool_fastpath_get_v1(gcpool_t *p);
GCPOOL_API void gcpool_fastpath_put_v1(gcpool_t *p, void *obj);
GCPOOL_API void *gcpool_fastpath_get_v2(gcpool_t *p);
GCPOOL_API void gcpool_fastpath_put_v2(gcpool_t *p, void *obj);

void *gcpool_fastpath_get_v1(gcpool_t *p)
{
    return get_general(p);
}

void gcpool_fastpath_put_v1(gcpool_t *p, void *obj)
{
    put_slow(p, obj);
}

void *gcpool_fastpath_get_v2(gcpool_t *p)
{
    return get_general(p);
}

void gcpool_fastpath_put_v2(gcpool_t *p, void *obj)
{
    put_slow(p, obj);
}

const char *gcpool_version(void)
{
    return PACKAGE_VERSION;
}

/* Checked mode keeps a destroyed pool's struct (debug.h); this frees it. */
static void free_shell(void *shell)
{
    struct gcpool *p = shell;
    gcp_busy_enter();
    free(p->name);
    free(p);
    gcp_busy_leave();
}

void gcpool_destroy(gcpool_t *p)
{
    if (!p) {
        errno = EINVAL;
        return;
    }
    if (gcp_debug && p->destroyed) {
        gcp_debug_after_destroy(p, "gcpool_destroy", "ignored (EINVAL)");
        errno = EINVAL;
        return;
    }
    if (gcp_reentered()) {
        gcp_refuse("gcpool_destroy", "called from a signal handler that interrupted a gcpool call "
                                     "on this thread (destroy frees, and waits for cycles)");
        return;
    }
    if (gcp_in_call_of(p)) {
        char buf[32], call[96];
        snprintf(call, sizeof call, "gcpool_destroy of pool \"%s\"", gcp_pool_name(p, buf, sizeof buf));
        gcp_refuse(call, "called from inside a call of that pool on this thread (its free_fn or "
                         "new_fn, its destroy, or a get or put of it that ran this callback), "
                         "which uses it still: destroy it once that call has returned");
        return;
    }
    struct gcp_frame f;
    gcp_frame_enter(&f, p);
    /* Out of the registry first, so no cycle can reach the pool any more. */
    gcp_cycle_unregister(p);
    /* What the last cycle dropped but left for later (free_fn under Boehm)
     * is that cycle's drop, and counts as one. */
    if (atomic_exchange_explicit(&p->drain_pending, 0, memory_order_relaxed))
        gcp_pool_drain(p, atomic_load_explicit(&p->drp, memory_order_acquire), 0);
    /* The pool's line for the report at exit, as the program left it: taken
     * before the drains below, so that destroy counts nothing (its releases
     * are no drops, and the object it takes from a private slot no hit). */
    gcp_stats_retire(p);
    /* From here gets and puts (free_fn's, this thread's: no one else may use
     * the pool) find no storage: an empty pool's new_fn and free_fn, so that
     * nothing is put where the drains below have passed already. */
    p->destroying = true;
    atomic_store_explicit(&p->cur, gcp_no_locals, memory_order_relaxed);
    atomic_store_explicit(&p->vic, NULL, memory_order_relaxed);
    for (int k = 0; k < 3; k++)
        if (p->arrays[k])
            gcp_pool_drain(p, p->arrays[k], GCP_DRAIN_PRIVATE);
    gcp_pool_release_held(p);
    for (int k = 0; k < 3; k++)
        locals_free(p->arrays[k]);
    gcp_frame_leave(&f);
    if (gcp_debug) {
        gcp_debug_destroyed(p);
        /* The handle stays reserved, so that a later call through it is
         * reported rather than reading freed memory. */
        memset(p->arrays, 0, sizeof p->arrays);
        atomic_store_explicit(&p->cur, gcp_no_locals, memory_order_relaxed);
        atomic_store_explicit(&p->vic, NULL, memory_order_relaxed);
        atomic_store_explicit(&p->drp, NULL, memory_order_relaxed);
        p->destroyed = true;
        gcp_debug_keep_shell(p, free_shell);
        return;
    }
    free_shell(p);
}
