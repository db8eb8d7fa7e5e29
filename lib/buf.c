/* Buffer pools (<gcpool/buf.h>): one gcpool per power-of-two size class.
 *
 * The class pools are used through the public API only (the internals read
 * here are the cycle source and the current CPU): each class is a gcpool_t
 * whose new_fn allocates a buffer of the class size, so everything a pool
 * does (per-CPU locals, stealing, the victim cache, cycles bound to the
 * collector, the statistics and the at-exit report) comes with it unchanged.
 * What this file
 * adds is the size arithmetic, the oversize path, and three counters the pools
 * cannot know: the waste (class size minus what was asked for), puts whose
 * capacity was rounded down, and allocation failures.
 *
 * Memory, by the cycle source in force when the buffer pool is created
 * (gcp_glue_refresh(): a buffer pool created before a late GC_INIT() keeps
 * malloc'd buffers):
 *   Boehm  buffers come from GC_MALLOC_ATOMIC: pointer-free, so the collector
 *          never scans their bytes; the class pools have no free_fn, so a
 *          buffer a cycle drops is simply forgotten and reclaimed by that very
 *          collection.  Buffers not pooled (oversize, undersize) are forgotten
 *          too rather than GC_FREE'd: a program that puts a buffer twice, or
 *          one it did not get from us, then leaks nothing and corrupts nothing,
 *          and the next collection reclaims the memory all the same.
 *   sim    buffers are malloc'd; the class pools' free_fn frees what a cycle
 *          drops, and buffers not pooled are freed on put.
 *
 * Why a buffer beyond the largest class is never pooled, not even rounded
 * down into it: that is the point of the size classes — one giant request
 * must not leave a giant buffer behind (Go issues 23199, 27735, 48535).
 */
#ifndef _GNU_SOURCE /* config.h, forced in by the build, defines it */
#define _GNU_SOURCE       /* asprintf */
#endif
#include "gcpool/buf.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gc_glue/glue.h"
#include "lib/debug.h"
#include "lib/env.h"
#include "lib/pin.h"
#include "lib/reentry.h"
#include "lib/report.h"
#include "topology/topology.h"

/* Class limits as the environment table declares them (lib/env.c). */
_Static_assert(GCPOOL_BUF_MIN_LIMIT == 16 && GCPOOL_BUF_MAX_LIMIT == (size_t)1 << 30,
               "lib/env.c's GCPOOL_BUF_MIN/MAX ranges are 16 .. 1<<30");
_Static_assert(GCPOOL_BUF_CLASSES_MAX >= 27, "room for every class from 16 B to 1 GiB");

/* ---- how buffers are obtained and released -----------------------------------
 * Function pointers so that tests can count, fail or quarantine allocations
 * (tests/test_buf.c declares them itself: they are hidden, not API).  Read on
 * misses and on the oversize path only; tests set them before any thread runs. */

static void *gc_alloc_atomic(size_t size)
{
    return gcp_glue_memory()->alloc_pointer_free(size); /* GC_MALLOC_ATOMIC (gc_glue/boehm.c) */
}

void *(*gcp_buf_sys_alloc)(size_t) = malloc;
void (*gcp_buf_sys_free)(void *) = free;
void *(*gcp_buf_gc_alloc)(size_t) = gc_alloc_atomic;

/* ---- the buffer pool ------------------------------------------------------- */

struct buf_class {
    gcpool_t *pool;
    size_t size;
    bool boehm;               /* new_fn's allocator: a copy, so new_fn needs only its class */
    _Atomic uint64_t *failed; /* in the buffer pool's cold counters */
};

/* Per-CPU counters of one class.  A get adds its waste with one relaxed
 * fetch_add on the stripe of the CPU it runs on: the line is that CPU's (each
 * stripe is padded to the topology's local alignment), so the add stays an
 * uncontended locked instruction (~20 cycles on x86) and never bounces a line
 * between CPUs.  A read-modify-write rather than the pool's owner-only store
 * (pool.h), because nothing pins the thread here: two threads on one CPU, or a
 * thread migrated mid-update, must not lose an add.  Exact when summed. */
struct stripe_class {
    _Atomic uint64_t waste;   /* sum of (class size - size asked) over gets */
    _Atomic uint64_t rounded; /* puts whose capacity was not a class size */
};

/* Counters of rare paths (failures, oversize, undersize): plain relaxed atomics,
 * shared by all CPUs, since each of these events already costs a system
 * allocation or a free; kept off the lines the hot path reads. */
struct cold {
    _Atomic uint64_t failed[GCPOOL_BUF_CLASSES_MAX];
    _Atomic uint64_t oversize_gets, oversize_bytes, oversize_puts, oversize_failed;
    _Atomic uint64_t undersize_puts;
};

struct gcpool_bufpool {
    /* Read by every get and put, written only by create: shared read-only. */
    size_t min, max;
    unsigned min_shift;       /* log2(min) */
    unsigned nclasses;
    bool zero;
    bool boehm;
    bool destroyed;           /* checked mode: a destroyed buffer pool's kept handle */
    char *name;               /* the class pools' prefix, for checked mode's reports */
    const struct gcp_topology *topo; /* never freed: the stripe of the current CPU */
    char *stripes;            /* topo->nlocals stripes of stripe_size bytes */
    size_t stripe_size;
    struct buf_class classes[GCPOOL_BUF_CLASSES_MAX];
    _Alignas(128) struct cold cold;
};

static bool is_pow2(size_t n)
{
    return n && !(n & (n - 1));
}

/* floor(log2(n)), n > 0 */
static inline unsigned log2_floor(size_t n)
{
    return (unsigned)(sizeof(unsigned long long) * 8 - 1) - (unsigned)__builtin_clzll(n);
}

/* ceil(log2(n)), n > 1 */
static inline unsigned log2_ceil(size_t n)
{
    return log2_floor(n - 1) + 1;
}

static inline struct stripe_class *stripe(gcpool_bufpool_t *bp, unsigned k)
{
    /* The CPU read may be stale by the time the add lands: then another CPU's
     * stripe takes it, which costs a cache miss, never a count. */
    unsigned l = gcp_current_local(bp->topo);
    return (struct stripe_class *)(bp->stripes + (size_t)l * bp->stripe_size) + k;
}

/* Buffers are allocated and freed in busy sections (reentry.h): a signal
 * handler that interrupted one is refused rather than allocate in turn. */
static void *class_new(void *arg)
{
    const struct buf_class *c = arg;
    gcp_busy_enter();
    void *buf = c->boehm ? gcp_buf_gc_alloc(c->size) : gcp_buf_sys_alloc(c->size);
    gcp_busy_leave();
    return buf;
}

static void sys_free(void *buf)
{
    gcp_busy_enter();
    gcp_buf_sys_free(buf);
    gcp_busy_leave();
}

/* sim only: Boehm's class pools have no free_fn. */
static void class_free(void *buf, void *arg)
{
    (void)arg;
    sys_free(buf);
}

/* A buffer that is not pooled: see the top of this file. */
static void release(const gcpool_bufpool_t *bp, void *buf)
{
    if (gcp_debug)
        gcp_debug_buf_released(buf);
    if (!bp->boehm)
        sys_free(buf);
}

/* A signal handler that interrupted a gcpool call of its own thread: a buffer
 * pool's get and put may allocate or free (a miss, a release), which that
 * thread may be doing.  Refused; the caller keeps what it has. */
static bool refused(const char *call)
{
    if (!gcp_reentered())
        return false;
    gcp_refuse(call, "called from a signal handler that interrupted a gcpool call on this thread "
                     "(buffers are allocated and freed with malloc or the collector)");
    return true;
}

/* Chooses the classes: explicit options win; a bound from the environment
 * yields to an explicit one (the environment already orders its own pair). */
static bool choose_bounds(const gcpool_bufpool_options_t *o, size_t *min, size_t *max)
{
    bool ok_min = !o->min_size || (is_pow2(o->min_size) && o->min_size >= GCPOOL_BUF_MIN_LIMIT &&
                                   o->min_size <= GCPOOL_BUF_MAX_LIMIT);
    bool ok_max = !o->max_size || (is_pow2(o->max_size) && o->max_size >= GCPOOL_BUF_MIN_LIMIT &&
                                   o->max_size <= GCPOOL_BUF_MAX_LIMIT);
    if (!ok_min || !ok_max || (o->min_size && o->max_size && o->min_size > o->max_size))
        return false;
    *min = o->min_size ? o->min_size : (size_t)gcp_env_long(GCP_ENV_BUF_MIN);
    *max = o->max_size ? o->max_size : (size_t)gcp_env_long(GCP_ENV_BUF_MAX);
    if (*min > *max) {
        if (o->min_size)
            *max = *min;
        else
            *min = *max;
    }
    return true;
}

/* The class pools and the stripes: everything but the struct and its name. */
static void release_all(gcpool_bufpool_t *bp)
{
    for (unsigned k = 0; k < bp->nclasses; k++)
        if (bp->classes[k].pool)
            gcpool_destroy(bp->classes[k].pool); /* sim: free_fn frees what is cached */
    gcp_busy_enter();
    free(bp->stripes);
    gcp_busy_leave();
    bp->stripes = NULL;
}

static void free_shell(void *shell)
{
    gcpool_bufpool_t *bp = shell;
    gcp_busy_enter();
    free(bp->name);
    free(bp);
    gcp_busy_leave();
}

static bool set_up(gcpool_bufpool_t *bp, const gcpool_bufpool_options_t *opts, size_t min,
                   size_t max);

gcpool_bufpool_t *gcpool_bufpool_create(const gcpool_bufpool_options_t *opts)
{
    if (refused("gcpool_bufpool_create"))
        return NULL;
    gcpool_bufpool_options_t defaults = {0};
    if (!opts)
        opts = &defaults;
    size_t min, max;
    if (!choose_bounds(opts, &min, &max)) {
        errno = EINVAL;
        return NULL;
    }
    /* Allocations: a busy section (reentry.h); the class pools are made
     * without gcpool_create's re-entry check, which would see it. */
    gcp_busy_enter();
    gcpool_bufpool_t *bp = aligned_alloc(_Alignof(gcpool_bufpool_t), sizeof *bp);
    bool ok = bp && set_up(bp, opts, min, max);
    gcp_busy_leave();
    if (ok)
        return bp;
    if (bp) {
        release_all(bp);
        free_shell(bp);
    }
    errno = ENOMEM;
    return NULL;
}

/* Everything but the struct; false when out of memory (bp half set up). */
static bool set_up(gcpool_bufpool_t *bp, const gcpool_bufpool_options_t *opts, size_t min,
                   size_t max)
{
    memset(bp, 0, sizeof *bp);
    bp->min = min;
    bp->max = max;
    bp->min_shift = log2_floor(min);
    bp->nclasses = log2_floor(max) - bp->min_shift + 1;
    bp->zero = opts->zero != 0;
    /* The first gcpool_create would choose the source (or move it to Boehm,
     * the collector having turned up since); do it now, so that the allocator
     * and the pools agree: buffers come from the collector exactly when a
     * pool with no object yet would keep its storage there. */
    bp->boehm = gcp_glue_collector_storage(NULL);
    bp->topo = gcp_topology();

    size_t align = bp->topo->local_align;
    bp->stripe_size = (bp->nclasses * sizeof(struct stripe_class) + align - 1) / align * align;
    size_t stripes_size = (size_t)bp->topo->nlocals * bp->stripe_size;
    bp->stripes = aligned_alloc(align, stripes_size);
    if (!bp->stripes)
        return false;
    memset(bp->stripes, 0, stripes_size);

    const char *prefix = opts->name ? opts->name : "buf";
    if (!(bp->name = strdup(prefix)))
        return false;
    for (unsigned k = 0; k < bp->nclasses; k++) {
        struct buf_class *c = &bp->classes[k];
        c->size = min << k;
        c->boehm = bp->boehm;
        c->failed = &bp->cold.failed[k];
        /* gcpool_create copies the name. */
        char *name = NULL;
        if (asprintf(&name, "%s:%zu", prefix, c->size) < 0)
            return false;
        gcpool_options_t o = {
            .new_fn = class_new,
            .free_fn = bp->boehm ? NULL : class_free,
            .arg = c,
            .name = name,
            .size = c->size, /* checked mode (GCPOOL_DEBUG) poisons cached buffers */
            /* The bound is per class, in whole buffers, at least one (buf.h);
             * none given: GCPOOL_MAX_CACHED, as any pool's. */
            .max_cached = !opts->max_cached_bytes ? 0
                          : opts->max_cached_bytes / c->size ? opts->max_cached_bytes / c->size
                                                               : 1,
        };
        c->pool = gcp_pool_create(&o);
        free(name);
        if (!c->pool)
            return false;
    }
    return true;
}

/* Checked mode: reports a call through a destroyed buffer pool's kept handle;
 * true when bp is one (the caller then returns with EINVAL). */
static bool destroyed(gcpool_bufpool_t *bp, const char *call, const char *outcome)
{
    if (!gcp_debug || !bp->destroyed)
        return false;
    gcp_warn("gcpool: checked mode: %s: buffer pool \"%s\" (%p) was destroyed; %s", call, bp->name,
             (void *)bp, outcome);
    errno = EINVAL;
    return true;
}

void gcpool_bufpool_destroy(gcpool_bufpool_t *bp)
{
    if (!bp) {
        errno = EINVAL;
        return;
    }
    if (destroyed(bp, "gcpool_bufpool_destroy", "ignored (EINVAL)") ||
        refused("gcpool_bufpool_destroy"))
        return;
    /* All or nothing: refused while this thread is inside a call of one of
     * its class pools (gcpool_destroy would refuse that one alone). */
    for (unsigned k = 0; k < bp->nclasses; k++) {
        if (bp->classes[k].pool && gcp_in_call_of(bp->classes[k].pool)) {
            char call[96];
            snprintf(call, sizeof call, "gcpool_bufpool_destroy of buffer pool \"%s\"", bp->name);
            gcp_refuse(call, "called from inside a get or put of it on this thread, which uses it "
                             "still: destroy it once that call has returned");
            return;
        }
    }
    release_all(bp);
    if (gcp_debug) {
        /* The handle stays reserved: a later call through it is reported. */
        bp->destroyed = true;
        gcp_debug_keep_shell(bp, free_shell);
        return;
    }
    free_shell(bp);
}

/* Beyond the largest class: allocated for this caller alone, never pooled. */
static __attribute__((noinline)) void *get_oversize(gcpool_bufpool_t *bp, size_t size,
                                                    size_t *capacity)
{
    atomic_fetch_add_explicit(&bp->cold.oversize_gets, 1, memory_order_relaxed);
    gcp_busy_enter();
    void *buf = bp->boehm ? gcp_buf_gc_alloc(size) : gcp_buf_sys_alloc(size);
    gcp_busy_leave();
    if (!buf) {
        atomic_fetch_add_explicit(&bp->cold.oversize_failed, 1, memory_order_relaxed);
        errno = ENOMEM;
        return NULL;
    }
    atomic_fetch_add_explicit(&bp->cold.oversize_bytes, size, memory_order_relaxed);
    if (bp->zero)
        memset(buf, 0, size);
    if (gcp_debug)
        gcp_debug_buf_out(buf, size);
    if (capacity)
        *capacity = size;
    return buf;
}

static __attribute__((noinline)) void *get_failed(struct buf_class *c)
{
    atomic_fetch_add_explicit(c->failed, 1, memory_order_relaxed);
    errno = ENOMEM; /* whatever new_fn's allocator left there */
    return NULL;
}

void *gcpool_buf_get(gcpool_bufpool_t *bp, size_t size, size_t *capacity)
{
    if (__builtin_expect(!bp, 0)) {
        errno = EINVAL;
        return NULL;
    }
    if (__builtin_expect(gcp_debug, 0) && destroyed(bp, "gcpool_buf_get", "NULL (EINVAL)"))
        return NULL;
    if (__builtin_expect(gcp_reentered(), 0) && refused("gcpool_buf_get"))
        return NULL;
    unsigned k;
    if (size <= bp->min)
        k = 0; /* size 0 too: a minimum-class buffer */
    else if (__builtin_expect(size > bp->max, 0))
        return get_oversize(bp, size, capacity);
    else
        k = log2_ceil(size) - bp->min_shift; /* the smallest class >= size */
    struct buf_class *c = &bp->classes[k];
    void *buf = gcpool_get(c->pool);
    if (__builtin_expect(!buf, 0))
        return get_failed(c);
    /* A request of exactly a class size wastes nothing: no add at all. */
    if (c->size != size)
        atomic_fetch_add_explicit(&stripe(bp, k)->waste, c->size - size, memory_order_relaxed);
    if (bp->zero)
        memset(buf, 0, c->size);
    if (__builtin_expect(gcp_debug, 0))
        gcp_debug_buf_out(buf, c->size);
    if (capacity)
        *capacity = c->size;
    return buf;
}

/* Checked mode: a put of a buffer handed out with less than capacity, put
 * back twice, or not ours, is reported; false when the put must stop here. */
static __attribute__((noinline)) bool checked_put(gcpool_bufpool_t *bp, void *buf, size_t capacity)
{
    char call[64];
    snprintf(call, sizeof call, "gcpool_buf_put of buffer %p", buf);
    if (destroyed(bp, call, "not pooled: the buffer is still the caller's (EINVAL)"))
        return false;
    switch (gcp_debug_buf_back(bp->name, buf, capacity)) {
    case GCP_DEBUG_BUF_POOL:
        return true;
    case GCP_DEBUG_BUF_RELEASE:
        /* Handed out smaller than claimed: no class may cache it, and the
         * poison must not fill what it does not have.  It is ours: release it. */
        release(bp, buf);
        return false;
    case GCP_DEBUG_BUF_IGNORE:
        break;
    }
    return false;
}

void gcpool_buf_put(gcpool_bufpool_t *bp, void *buf, size_t capacity)
{
    if (__builtin_expect(!bp, 0)) {
        errno = EINVAL;
        return;
    }
    if (__builtin_expect(!buf, 0))
        return;
    if (__builtin_expect(gcp_reentered(), 0) && refused("gcpool_buf_put"))
        return;
    if (__builtin_expect(gcp_debug, 0) && !checked_put(bp, buf, capacity))
        return;
    if (__builtin_expect(capacity < bp->min, 0)) {
        /* It cannot serve the smallest request of any class. */
        atomic_fetch_add_explicit(&bp->cold.undersize_puts, 1, memory_order_relaxed);
        release(bp, buf);
        return;
    }
    if (__builtin_expect(capacity > bp->max, 0)) {
        atomic_fetch_add_explicit(&bp->cold.oversize_puts, 1, memory_order_relaxed);
        release(bp, buf);
        return;
    }
    /* Rounded down: the class whose every request the buffer can serve. */
    unsigned k = log2_floor(capacity) - bp->min_shift;
    if (__builtin_expect(!is_pow2(capacity), 0))
        atomic_fetch_add_explicit(&stripe(bp, k)->rounded, 1, memory_order_relaxed);
    gcpool_put(bp->classes[k].pool, buf);
}

static uint64_t load(const _Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

int gcpool_bufpool_read_stats(gcpool_bufpool_t *bp, gcpool_bufpool_stats_t *out)
{
    if (!bp || !out) {
        errno = EINVAL;
        return -1;
    }
    if (destroyed(bp, "gcpool_bufpool_read_stats", "-1 (EINVAL)"))
        return -1;
    memset(out, 0, sizeof *out);
    out->min_size = bp->min;
    out->max_size = bp->max;
    out->nclasses = bp->nclasses;
    for (unsigned k = 0; k < bp->nclasses; k++) {
        const struct buf_class *c = &bp->classes[k];
        gcpool_buf_class_stats_t *cs = &out->classes[k];
        gcpool_stats_t s;
        gcpool_read_stats(c->pool, &s);
        cs->size = c->size;
#define COPY(name, column, scope, heading, doc) GCPOOL_STAT_IF_CLASS(scope, cs->name = s.name;)
        GCPOOL_STAT_FIELDS(COPY) /* the counters a class shares with its pool */
#undef COPY
        /* In the pool: put, and neither handed out again nor dropped.  Counters
         * read one after another can disagree while the pool is busy: never
         * below zero. */
        uint64_t left = s.gets - s.miss + s.dropped;
        cs->bytes_cached = s.puts > left ? (s.puts - left) * c->size : 0;
        cs->bytes_dropped = s.dropped * c->size;
        for (unsigned l = 0; l < bp->topo->nlocals; l++) {
            const struct stripe_class *st =
                (const struct stripe_class *)(bp->stripes + (size_t)l * bp->stripe_size) + k;
            cs->waste += load(&st->waste);
            cs->rounded_puts += load(&st->rounded);
        }
        cs->failed = load(c->failed);
        out->gets += cs->gets;
        out->waste += cs->waste;
        out->bytes_cached += cs->bytes_cached;
        out->bytes_dropped += cs->bytes_dropped;
        out->failed += cs->failed;
    }
    out->oversize_gets = load(&bp->cold.oversize_gets);
    out->oversize_bytes = load(&bp->cold.oversize_bytes);
    out->oversize_puts = load(&bp->cold.oversize_puts);
    out->undersize_puts = load(&bp->cold.undersize_puts);
    out->gets += out->oversize_gets;
    out->failed += load(&bp->cold.oversize_failed);
    return 0;
}
