/* The pool: Go's sync.Pool (Go >= 1.13) in C.  Shapes and roles in pool.h.
 *
 * Get:  own private -> own shared head -> steal other locals' tails (topology
 *       order) -> victim private -> victim shared -> new_fn.
 * Put:  own private -> own shared head (a new ring when the head is full).
 */
#include "pool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cycle.h"
#include "debug.h"
#include "env.h"
#include "locked.h"
#include "glue.h"
#include "mem.h"
#include "pin.h"
#include "stats.h"
#include "topology.h"

enum source { FROM_PRIVATE, FROM_SHARED, FROM_STEAL, FROM_VICTIM, FROM_NOWHERE };

static _Atomic unsigned pools_created;

/* gcpool/fastpath.h's sequences, inlined in programs, read our layout.  Any
 * change here is a change of that contract: rename gcpool_fastpath_v2 too. */
_Static_assert(offsetof(struct gcpool, cur) == 0, "fastpath.h: a pool's first word is cur");
_Static_assert(sizeof(struct gcp_locals) == GCPOOL_FASTPATH_LOCALS_HEADER,
               "fastpath.h: the locals start right after their array's header");
#define LOCAL_AT(field, offset) (offsetof(struct gcp_local, field) == (offset))
_Static_assert(LOCAL_AT(private_, 0) && LOCAL_AT(fills, GCPOOL_FASTPATH_LOCAL_FILLS) &&
                   LOCAL_AT(pin, GCPOOL_FASTPATH_LOCAL_PIN) && sizeof(gcp_lock_t) == sizeof(int) &&
                   LOCAL_AT(seq.hit_shared, GCPOOL_FASTPATH_LOCAL_POPS) &&
                   LOCAL_AT(seq.puts_shared, GCPOOL_FASTPATH_LOCAL_PUSHES) &&
                   LOCAL_AT(shared.head_ring, GCPOOL_FASTPATH_LOCAL_HEAD_RING),
               "fastpath.h: a local's fields where its sequences look");
#undef LOCAL_AT
_Static_assert(offsetof(struct gcp_ring, head_tail) == 0 &&
                   offsetof(struct gcp_ring, size) == GCPOOL_FASTPATH_RING_SIZE &&
                   offsetof(struct gcp_ring, slots) == GCPOOL_FASTPATH_RING_SLOTS,
               "fastpath.h: a ring's fields where its sequences look");
_Static_assert(offsetof(struct gcpool_fastpath, cpu_local) ==
                   offsetof(struct gcpool_fastpath, restarts) + sizeof(uint64_t),
               "fastpath.h: the abort handler finds restarts right before cpu_local");

/* rseq in force and checked mode off: gets and puts need test nothing else
 * before their sequence, here and where programs inline them.  Set when a
 * pool is created, to the same value by every creator (both inputs are
 * chosen once); relaxed, as fastpath.h says. */
static inline bool fast_on(void)
{
    return __atomic_load_n(&gcpool_fastpath_v2.on, __ATOMIC_RELAXED);
}

static size_t round_up(size_t n, size_t unit)
{
    return (n + unit - 1) / unit * unit;
}

size_t gcp_local_stride(void)
{
    return round_up(sizeof(struct gcp_local), gcp_topology()->local_align);
}

static struct gcp_locals *locals_new(void)
{
    const struct gcp_topology *t = gcp_topology();
    unsigned n = t->nlocals;
    size_t stride = gcp_local_stride();
    /* The array's header, then the locals right after it, the first on a unit
     * boundary (one unit more for that): locals of neighbouring CPUs never
     * share a line or an adjacent-line prefetch pair, and a sequence finds a
     * local from the header's address alone (fastpath.h), one load fewer. */
    void *mem = gcp_mem_alloc(sizeof(struct gcp_locals) + t->local_align + n * stride);
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

gcpool_t *gcpool_create(const gcpool_options_t *opts)
{
    gcpool_options_t defaults = {0};
    if (!opts)
        opts = &defaults;
    /* Choose the cycle source, the pin and the topology now, not on a hot path. */
    gcp_glue_source();
    gcp_topology();
    gcp_pin_init();
    gcp_cycle_init();
    gcp_debug_init();
    gcp_stats_at_exit();
    __atomic_store_n(&gcpool_fastpath_v2.on, gcp_pin_rseq && !gcp_debug, __ATOMIC_RELAXED);

    struct gcpool *p = gcp_mem_calloc(sizeof *p);
    if (!p || (opts->name && !(p->name = gcp_mem_strdup(opts->name)))) {
        free(p);
        errno = ENOMEM;
        return NULL;
    }
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
    p->shared_locked = gcp_env_long(GCP_ENV_SHARED) == GCP_SHARED_LOCKED;
    /* In the registry from the start (reports, fork); cycles skip it until its
     * first use sets up the arrays. */
    gcp_cycle_register(p);
    return p;
}

struct gcp_locals *gcp_pool_first_use(struct gcpool *p)
{
    gcp_lock(&p->init_lock);
    struct gcp_locals *cur = atomic_load_explicit(&p->cur, memory_order_acquire);
    if (!cur) {
        /* All three arrays now, so that a cycle never has to allocate. */
        for (int k = 0; k < 3; k++) {
            if (!(p->arrays[k] = locals_new())) {
                for (int j = 0; j < k; j++)
                    locals_free(p->arrays[j]);
                memset(p->arrays, 0, sizeof p->arrays);
                memset(p->blocks, 0, sizeof p->blocks);
                gcp_unlock(&p->init_lock);
                errno = ENOMEM;
                return NULL;
            }
            p->blocks[k] = p->arrays[k]->mem;
        }
        atomic_store_explicit(&p->drp, p->arrays[2], memory_order_relaxed);
        atomic_store_explicit(&p->vic, p->victim_on ? p->arrays[1] : NULL, memory_order_relaxed);
        /* Release: whoever loads cur sees the arrays set up. */
        atomic_store_explicit(&p->cur, p->arrays[0], memory_order_release);
        cur = p->arrays[0];
    }
    gcp_unlock(&p->init_lock);
    return cur;
}

/* The array gets and puts use now, set up on first use; NULL when that failed. */
static inline struct gcp_locals *current_array(struct gcpool *p)
{
    /* Acquire: pairs with the release stores of first use and of a cycle. */
    struct gcp_locals *a = atomic_load_explicit(&p->cur, memory_order_acquire);
    return __builtin_expect(a != NULL, 1) ? a : gcp_pool_first_use(p);
}

/* One object leaves the pool for good; the caller counts it in p->dropped. */
static void drop_uncounted(void *obj, void *pool)
{
    struct gcpool *p = pool;
    if (__builtin_expect(gcp_debug, 0))
        gcp_debug_dropped(p, obj);
    if (p->free_fn)
        p->free_fn(obj, p->arg);
}

static void drop(struct gcpool *p, void *obj)
{
    drop_uncounted(obj, p);
    atomic_fetch_add_explicit(&p->dropped, 1, memory_order_relaxed);
}

/* A thief's end of a local's shared queue: the chain's tail, lock-free; or, in
 * Go 1.12's locked mode, the last item under the queue's mutex (may_wait
 * false: give up when it is busy). */
static void *take_tail(struct gcpool *p, struct gcp_local *l, bool may_wait)
{
    return p->shared_locked ? gcp_locked_pop(&l->locked, may_wait) : gcp_chain_pop_tail(&l->shared);
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
    uint64_t n = 0;
    for (unsigned i = 0; i < a->n; i++) {
        struct gcp_local *l = gcp_local_at(a, i);
        /* A racy read of private, for statistics only. */
        n += atomic_load_explicit(&l->private_, memory_order_relaxed) != NULL;
        n += gcp_locked_len(&l->locked);
        for (int k = 0; k < GCP_CHAIN_RINGS; k++) {
            struct gcp_ring *r = atomic_load_explicit(&l->shared.rings[k], memory_order_acquire);
            if (r)
                n += gcp_ring_len(r);
        }
    }
    return n;
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

static void *get_slow(struct gcpool *p, struct gcp_locals *a, unsigned self)
{
    enum source src = FROM_STEAL;
    bool victim_private = false;
    void *obj = steal(p, a, self);
    if (!obj) {
        obj = from_victim(p, self, &victim_private);
        src = obj ? FROM_VICTIM : FROM_NOWHERE;
    }
    count_slow_get(a, src, victim_private, !obj && p->new_fn);
    if (obj)
        return obj;
    /* A miss is a slow path: the simulated collector and deferred drops run here. */
    gcp_cycle_drain_pending();
    gcp_sim_poll();
    if (!p->new_fn)
        return NULL;
    gcp_sim_new_called();
    return p->new_fn(p->arg);
}

/* A get that found this CPU's private slot empty. */
static __attribute__((noinline)) void *get_shared(struct gcpool *p)
{
    struct gcp_locals *a = current_array(p);
    if (!a) /* no memory for locals: behave as an empty pool */
        return p->new_fn ? p->new_fn(p->arg) : NULL;
    void *obj;
    if (!p->shared_locked && (obj = gcp_pin_chain_pop(&p->cur)))
        return obj;
    unsigned self;
    struct gcp_local *l = gcp_pin_owner(a, &self);
    obj = p->shared_locked ? gcp_locked_pop(&l->locked, true) : gcp_chain_pop_head(&l->shared);
    if (obj) {
        gcp_count(&l->counters.hit_shared, 1);
        gcp_unpin(l);
        return obj;
    }
    gcp_unpin(l);
    return get_slow(p, a, self);
}

/* Every get but the rseq hit path: a NULL pool, the lock pin, checked mode. */
static __attribute__((noinline)) void *get_general(struct gcpool *p)
{
    if (!p) {
        errno = EINVAL;
        return NULL;
    }
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
        void *obj = gcp_rseq_take_private(&p->cur);
        return __builtin_expect(obj != NULL, 1) ? obj : get_shared(p);
    }
#endif
    return get_general(p);
}

/* Where the inline gcpool_get goes when the private slot and the head ring
 * were empty (get_shared tries the ring once more: the sequence may have
 * given up for a migration). */
void *gcpool_fastpath_get_v2(gcpool_t *p)
{
    return __builtin_expect(p && fast_on(), 1) ? get_shared(p) : get_general(p);
}

/* The head ring was full: grow the chain with a ring allocated outside any
 * lock (under Boehm the collector's callback may wait for our pin, and an
 * allocation may wait for the collector), then push again. */
static void put_slow(struct gcpool *p, void *obj, uint32_t want)
{
    gcp_sim_poll();
    struct gcp_ring *r = want ? gcp_ring_new(want) : NULL;
    struct gcp_locals *a = current_array(p);
    if (a) {
        unsigned self;
        struct gcp_local *l = gcp_pin_owner(a, &self);
        uint32_t again;
        bool done = gcp_chain_push_head(&l->shared, obj, &again, p->ring_min, p->ring_max);
        if (!done && r && gcp_chain_push_ring(&l->shared, r, obj)) {
            done = true;
            r = NULL; /* the chain owns it now */
        }
        gcp_unpin(l);
        if (done) {
            gcp_ring_free(r);
            return;
        }
    }
    /* No room and no memory: the pool may drop anything, but never loses it. */
    gcp_ring_free(r);
    drop(p, obj);
}

/* A put that found this CPU's private slot taken. */
static __attribute__((noinline)) void put_shared(struct gcpool *p, void *obj)
{
    struct gcp_locals *a = atomic_load_explicit(&p->cur, memory_order_acquire);
    if (!a) { /* first use: set up the arrays, then the private slot is free */
        if (!(a = gcp_pool_first_use(p))) {
            drop(p, obj);
            return;
        }
        if (gcp_pin_fill_private(&p->cur, obj))
            return;
    }
    if (!p->shared_locked && gcp_pin_chain_push(&p->cur, obj))
        return;
    unsigned self;
    struct gcp_local *l = gcp_pin_owner(a, &self);
    gcp_count(&l->counters.puts_shared, 1);
    if (p->shared_locked) {
        /* Go 1.12: append under the queue's mutex (which may grow the array:
         * not under the pin, see put_slow). */
        gcp_unpin(l);
        if (!gcp_locked_push(&l->locked, obj))
            drop(p, obj);
        return;
    }
    uint32_t want;
    bool done = gcp_chain_push_head(&l->shared, obj, &want, p->ring_min, p->ring_max);
    gcp_unpin(l);
    if (!done)
        put_slow(p, obj, want);
}

/* Every put but the rseq hit path: NULLs, the lock pin, checked mode. */
static __attribute__((noinline)) void put_general(struct gcpool *p, void *obj)
{
    if (!p) {
        errno = EINVAL;
        return;
    }
    if (!obj)
        return;
    if (gcp_debug) {
        enum gcp_debug_verdict v = gcp_debug_put(p, obj);
        if (v == GCP_DEBUG_IGNORE)
            return;
        if (v == GCP_DEBUG_DROP) {
            drop(p, obj);
            return;
        }
    }
    if (!gcp_pin_fill_private(&p->cur, obj))
        put_shared(p, obj);
}

void(gcpool_put)(gcpool_t *p, void *obj)
{
#ifdef GCP_PIN_RSEQ_POSSIBLE
    /* The hot path: this CPU's private slot, one sequence (see gcpool_get). */
    if (__builtin_expect(p && obj && fast_on(), 1)) {
        if (__builtin_expect(!gcp_rseq_fill_private(&p->cur, obj), 0))
            put_shared(p, obj);
        return;
    }
#endif
    put_general(p, obj);
}

/* Where the inline gcpool_put goes when the private slot and the head ring
 * were full (put_shared tries the ring once more, as gcpool_fastpath_get_v2). */
void gcpool_fastpath_put_v2(gcpool_t *p, void *obj)
{
    if (__builtin_expect(p && obj && fast_on(), 1))
        put_shared(p, obj);
    else
        put_general(p, obj);
}

/* Programs built against the v1 contract (fastpath.h says why it changed)
 * read gcpool_fastpath_v1 instead: its `on` stays 0, so they call gcpool_get
 * and gcpool_put and never these two, kept so that they still link. */
GCPOOL_API struct gcpool_fastpath gcpool_fastpath_v1;
GCPOOL_API void *gcpool_fastpath_get_v1(gcpool_t *p);
GCPOOL_API void gcpool_fastpath_put_v1(gcpool_t *p, void *obj);

void *gcpool_fastpath_get_v1(gcpool_t *p)
{
    return get_general(p);
}

void gcpool_fastpath_put_v1(gcpool_t *p, void *obj)
{
    put_general(p, obj);
}

const char *gcpool_version(void)
{
    return PACKAGE_VERSION;
}

void gcpool_destroy(gcpool_t *p)
{
    if (!p) {
        errno = EINVAL;
        return;
    }
    /* Out of the registry first, so no cycle can reach the pool any more. */
    gcp_cycle_unregister(p);
    for (int k = 0; k < 3; k++)
        if (p->arrays[k])
            gcp_pool_drain(p, p->arrays[k], GCP_DRAIN_PRIVATE);
    gcp_stats_retire(p); /* its counters live in the arrays: before they go */
    for (int k = 0; k < 3; k++)
        locals_free(p->arrays[k]);
    if (gcp_debug)
        gcp_debug_destroyed(p);
    free(p->name);
    free(p);
}
