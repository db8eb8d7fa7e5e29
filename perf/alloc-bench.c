/* alloc-bench — a gcpool get+put pair against what a C programmer would do
 * instead: call malloc and free (glibc's, or jemalloc, tcmalloc, mimalloc
 * preloaded), keep a free list under a mutex, or allocate from Boehm and let
 * it collect (or GC_FREE).  In go test's format, like gcpool-bench.
 *
 *   perf/alloc-bench -bench Alloc -cpu 1,2 -benchtime 1s
 *   LD_PRELOAD=libjemalloc.so.2 perf/alloc-bench -bench '/malloc-' -cpu 1,2
 *
 * Names: BenchmarkAlloc/SIZE/MODE/VARIANT[-threads]
 *   SIZE     64B, 4KiB, 64KiB
 *   MODE     local: each thread takes an object, writes its first byte and
 *            gives it back, over and over;
 *            handoff: each thread takes objects and passes them, 32 at a
 *            time through a ring, to the next thread, which gives them back:
 *            every object is taken on one thread and returned on another
 *            (allocators pay for remote frees, pools refill other CPUs'
 *            locals).  It needs two threads: at -cpu 1 it says SKIP.
 *   VARIANT  none              no allocator: the thread's own one object,
 *                              written and passed on as the others are; the
 *                              harness's own cost (the loop, and in a
 *                              hand-off the ring), under every other variant
 *            gcpool            gcpool_get / gcpool_put, a pool per size whose
 *                              new_fn is GC_MALLOC_ATOMIC (the inline path)
 *            bufpool           gcpool_buf_get / gcpool_buf_put (<gcpool/buf.h>)
 *            freelist          a singly linked free list under one pthread
 *                              mutex, refilled with malloc
 *            malloc-IMPL       malloc + free; IMPL is the allocator that is
 *                              really in force (glibc, jemalloc, tcmalloc,
 *                              mimalloc: found by its symbols, so a preload
 *                              that failed cannot be mislabelled)
 *            gc-malloc, gc-malloc-atomic   GC_MALLOC / GC_MALLOC_ATOMIC, the
 *                              object left to the collector
 *            gc-free           GC_MALLOC + GC_FREE
 * One op is one object taken and given back.  Extra columns: GCs/op (Boehm
 * collections), and for the pools news/op and steals/op.
 *
 * Kept from being optimised away: GCC removes a malloc/free pair whose
 * pointer it can follow; every pointer here passes through an empty asm that
 * the compiler must assume reads and changes it, and the write of the first
 * byte is volatile.  The rings that carry objects between threads are
 * collector memory (uncollectable, so scanned): an object in flight is never
 * collected under a GC_FREE. */
#define GC_THREADS
#include <gc/gc.h>

#include <gcpool.h>
#include <gcpool/buf.h>

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "perf/bench.h"

enum variant { V_NONE, V_GCPOOL, V_BUFPOOL, V_FREELIST, V_MALLOC, V_GC_MALLOC, V_GC_ATOMIC, V_GC_FREE, NVARIANTS };
enum mode { M_LOCAL, M_HANDOFF, NMODES };
enum { NSIZES = 3 };
static const size_t sizes[NSIZES] = {64, 4096, 65536};
static const char *const size_names[NSIZES] = {"64B", "4KiB", "64KiB"};
static const char *const mode_names[NMODES] = {"local", "handoff"};
static const char *variant_names[NVARIANTS] = {"none", "gcpool", "bufpool", "freelist", "malloc-?",
                                               "gc-malloc", "gc-malloc-atomic", "gc-free"};

/* The malloc in force: a preloaded allocator's own symbols are visible to
 * dlsym, glibc has none of them. */
static const char *malloc_name(void)
{
    if (dlsym(RTLD_DEFAULT, "mallctl"))
        return "malloc-jemalloc";
    if (dlsym(RTLD_DEFAULT, "tc_malloc"))
        return "malloc-tcmalloc";
    if (dlsym(RTLD_DEFAULT, "mi_malloc"))
        return "malloc-mimalloc";
    return "malloc-glibc";
}

/* ---- the variants' state ------------------------------------------------------- */

struct freelist {
    pthread_mutex_t lock;
    void *head; /* each free object's first word points to the next */
};

static gcpool_t *pools[NSIZES];
static gcpool_bufpool_t *bufpool;
static struct freelist freelists[NSIZES];

static void *new_atomic(void *arg) { return GC_MALLOC_ATOMIC((size_t)(uintptr_t)arg); }

static void setup(void)
{
    for (int k = 0; k < NSIZES; k++) {
        gcpool_options_t o = {.new_fn = new_atomic, .arg = (void *)(uintptr_t)sizes[k], .name = size_names[k]};
        pools[k] = gcpool_create(&o);
        pthread_mutex_init(&freelists[k].lock, NULL);
        if (!pools[k]) {
            fprintf(stderr, "gcpool_create: %s\n", strerror(errno));
            exit(1);
        }
    }
    gcpool_bufpool_options_t bo = {.min_size = 64, .max_size = 65536, .name = "alloc-bench"};
    if (!(bufpool = gcpool_bufpool_create(&bo))) {
        fprintf(stderr, "gcpool_bufpool_create: %s\n", strerror(errno));
        exit(1);
    }
}

/* The compiler must assume the asm reads and rewrites p: it can no longer
 * pair a free with the malloc that produced its argument. */
#define OPAQUE(p) __asm__ __volatile__("" : "+r"(p))

/* V_NONE's object: one per thread and size, its own for good. */
static __thread void *none_objects[NSIZES];

static void *none_take(int k)
{
    if (!none_objects[k]) /* the thread's first: the untimed N=1 run, mostly */
        none_objects[k] = GC_MALLOC_ATOMIC_UNCOLLECTABLE(sizes[k]);
    return none_objects[k];
}

static inline __attribute__((always_inline)) void *take(enum variant v, int k)
{
    void *p;
    switch (v) {
    case V_NONE:
        p = none_take(k);
        break;
    case V_GCPOOL:
        p = gcpool_get(pools[k]);
        break;
    case V_BUFPOOL:
        p = gcpool_buf_get(bufpool, sizes[k], NULL);
        break;
    case V_FREELIST: {
        struct freelist *f = &freelists[k];
        pthread_mutex_lock(&f->lock);
        p = f->head;
        if (p)
            f->head = *(void **)p;
        pthread_mutex_unlock(&f->lock);
        if (!p)
            p = malloc(sizes[k]);
        break;
    }
    case V_MALLOC:
        p = malloc(sizes[k]);
        break;
    case V_GC_MALLOC:
    case V_GC_FREE:
        p = GC_MALLOC(sizes[k]);
        break;
    default:
        p = GC_MALLOC_ATOMIC(sizes[k]);
        break;
    }
    OPAQUE(p);
    if (!p) {
        fprintf(stderr, "alloc-bench: out of memory\n");
        exit(1);
    }
    ((volatile char *)p)[0] = 1; /* the user's first write */
    return p;
}

static inline __attribute__((always_inline)) void give(enum variant v, int k, void *p)
{
    OPAQUE(p);
    switch (v) {
    case V_GCPOOL:
        gcpool_put(pools[k], p);
        break;
    case V_BUFPOOL:
        gcpool_buf_put(bufpool, p, sizes[k]);
        break;
    case V_FREELIST: {
        struct freelist *f = &freelists[k];
        pthread_mutex_lock(&f->lock);
        *(void **)p = f->head;
        f->head = p;
        pthread_mutex_unlock(&f->lock);
        break;
    }
    case V_MALLOC:
        free(p);
        break;
    case V_GC_FREE:
        GC_FREE(p);
        break;
    default: /* none's objects stay its thread's; the collector's are left to it */
        break;
    }
}

/* ---- the hand-off ring ------------------------------------------------------------- */

enum { RING = 1024, BATCH = 32 };

/* One producer (thread i-1) and one consumer (thread i).  tail is the
 * producer's and head the consumer's, each on its own line; a batch is
 * published with one release store, so the consumer's acquire load of tail
 * sees its slots (and head likewise hands the slots back). */
struct ring {
    _Alignas(64) _Atomic size_t tail;
    atomic_bool producer_done;
    _Alignas(64) _Atomic size_t head;
    atomic_bool consumer_done;
    _Alignas(64) void *slot[RING];
};

struct handoff {
    enum variant v;
    int k;
    int procs;
    struct ring *rings; /* rings[i]: consumed by thread i, filled by thread i - 1 */
};

/* Gives back up to max objects from r; how many. */
static inline __attribute__((always_inline)) size_t drain(const struct handoff *h, struct ring *r, size_t max)
{
    size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    size_t n = atomic_load_explicit(&r->tail, memory_order_acquire) - head;
    if (n > max)
        n = max;
    for (size_t i = 0; i < n; i++)
        give(h->v, h->k, r->slot[(head + i) % RING]);
    atomic_store_explicit(&r->head, head + n, memory_order_release);
    return n;
}

/* Waiting for room, a thread gives back what it was handed meanwhile: no
 * cycle of full rings can stop every thread. */
static inline __attribute__((always_inline)) void push(const struct handoff *h, struct ring *out, struct ring *in,
                                                     void **objs, size_t n)
{
    size_t tail = atomic_load_explicit(&out->tail, memory_order_relaxed);
    for (int spins = 0; RING - (tail - atomic_load_explicit(&out->head, memory_order_acquire)) < n;) {
        if (atomic_load_explicit(&out->consumer_done, memory_order_acquire)) {
            for (size_t i = 0; i < n; i++) /* nobody left to hand them to */
                give(h->v, h->k, objs[i]);
            return;
        }
        if (!drain(h, in, BATCH) && ++spins % 64 == 0)
            sched_yield(); /* the consumer may be preempted: a shared machine */
    }
    for (size_t i = 0; i < n; i++)
        out->slot[(tail + i) % RING] = objs[i];
    atomic_store_explicit(&out->tail, tail + n, memory_order_release);
}

/* Inlined into one body per variant (below), so that each runs its own
 * calls with no dispatch on the variant in its loop. */
static inline __attribute__((always_inline)) void handoff_loop(struct bench_pb *pb, const struct handoff *h)
{
    struct ring *in = &h->rings[pb->id], *out = &h->rings[(pb->id + 1) % h->procs];
    void *batch[BATCH];
    size_t n = 0;
    while (bench_pb_next(pb)) {
        batch[n++] = take(h->v, h->k);
        if (n == BATCH) {
            push(h, out, in, batch, n);
            n = 0;
            drain(h, in, BATCH);
        }
    }
    push(h, out, in, batch, n);
    atomic_store_explicit(&out->producer_done, true, memory_order_release);
    /* Give back all the previous thread hands over, until it is done. */
    for (int spins = 0;;) {
        bool done = atomic_load_explicit(&in->producer_done, memory_order_acquire);
        if (!drain(h, in, RING) && done)
            break;
        if (++spins % 64 == 0)
            sched_yield();
    }
    atomic_store_explicit(&in->consumer_done, true, memory_order_release);
}

/* ---- local: take and give back on one thread --------------------------------------- */

struct local {
    enum variant v;
    int k;
};

static inline __attribute__((always_inline)) void local_loop(struct bench_pb *pb, enum variant v, int k)
{
    while (bench_pb_next(pb))
        give(v, k, take(v, k));
}

/* The bodies, one per variant and mode: v is a constant in each. */
#define BODIES(V)                                                                                  \
    static void local_##V(struct bench_pb *pb, void *arg)                                          \
    {                                                                                              \
        local_loop(pb, V, ((const struct local *)arg)->k);                                         \
    }                                                                                              \
    static void handoff_##V(struct bench_pb *pb, void *arg)                                        \
    {                                                                                              \
        struct handoff h = *(const struct handoff *)arg;                                           \
        h.v = V;                                                                                   \
        handoff_loop(pb, &h);                                                                      \
    }
BODIES(V_NONE)
BODIES(V_GCPOOL)
BODIES(V_BUFPOOL)
BODIES(V_FREELIST)
BODIES(V_MALLOC)
BODIES(V_GC_MALLOC)
BODIES(V_GC_ATOMIC)
BODIES(V_GC_FREE)
#define BODY_ROW(v) [v] = {local_##v, handoff_##v}
static const bench_body bodies[NVARIANTS][NMODES] = {
    BODY_ROW(V_NONE),     BODY_ROW(V_GCPOOL),    BODY_ROW(V_BUFPOOL),   BODY_ROW(V_FREELIST),
    BODY_ROW(V_MALLOC),   BODY_ROW(V_GC_MALLOC), BODY_ROW(V_GC_ATOMIC), BODY_ROW(V_GC_FREE),
};

/* ---- one benchmark ------------------------------------------------------------------ */

static void run(struct bench_b *b, enum variant v, int k, enum mode m)
{
    if (m == M_HANDOFF && b->procs < 2) {
        bench_skip(b, "a hand-off needs two threads: run it with -cpu 2 or more");
        return;
    }
    gcpool_stats_t s0 = {0}, s1 = {0};
    gcpool_t *pool = v == V_GCPOOL ? pools[k] : NULL;
    gcpool_bufpool_stats_t b0, b1;
    if (pool)
        gcpool_read_stats(pool, &s0);
    if (v == V_BUFPOOL)
        gcpool_bufpool_read_stats(bufpool, &b0);
    GC_word gc0 = GC_get_gc_no();

    if (m == M_LOCAL) {
        struct local l = {v, k};
        bench_run_parallel(b, bodies[v][M_LOCAL], &l);
    } else {
        bench_stop_timer(b); /* the rings are the harness's */
        size_t bytes = (size_t)b->procs * sizeof(struct ring) + 64;
        void *base = GC_MALLOC_UNCOLLECTABLE(bytes);
        if (!base) {
            fprintf(stderr, "alloc-bench: out of memory\n");
            exit(1);
        }
        memset(base, 0, bytes);
        struct handoff h = {v, k, b->procs, (struct ring *)(((uintptr_t)base + 63) & ~(uintptr_t)63)};
        bench_start_timer(b);
        bench_run_parallel(b, bodies[v][M_HANDOFF], &h);
        bench_stop_timer(b);
        GC_FREE(base);
    }
    bench_stop_timer(b);

    double n = (double)b->n;
    bench_report_metric(b, (double)(GC_get_gc_no() - gc0) / n, "GCs/op");
    if (pool) {
        gcpool_read_stats(pool, &s1);
        bench_report_metric(b, (double)(s1.news - s0.news) / n, "news/op");
        bench_report_metric(b, (double)(s1.hit_steal - s0.hit_steal) / n, "steals/op");
    }
    if (v == V_BUFPOOL) {
        gcpool_bufpool_read_stats(bufpool, &b1);
        /* The class serving this size: sizes are classes (min_size 64). */
        const gcpool_buf_class_stats_t *c0 = NULL, *c1 = NULL;
        for (unsigned i = 0; i < b1.nclasses; i++)
            if (b1.classes[i].size == sizes[k])
                c0 = &b0.classes[i], c1 = &b1.classes[i];
        if (c1) {
            bench_report_metric(b, (double)(c1->news - c0->news) / n, "news/op");
            bench_report_metric(b, (double)(c1->hit_steal - c0->hit_steal) / n, "steals/op");
        }
    }
}

/* One function per (variant, size, mode): bench_def takes no argument. */
#define FN(v, k, m)                                                                                \
    static void bench_##v##_##k##_##m(struct bench_b *b) { run(b, v, k, m); }
#define SIZES_OF(v, m) FN(v, 0, m) FN(v, 1, m) FN(v, 2, m)
#define MODES_OF(v) SIZES_OF(v, M_LOCAL) SIZES_OF(v, M_HANDOFF)
MODES_OF(V_NONE)
MODES_OF(V_GCPOOL)
MODES_OF(V_BUFPOOL)
MODES_OF(V_FREELIST)
MODES_OF(V_MALLOC)
MODES_OF(V_GC_MALLOC)
MODES_OF(V_GC_ATOMIC)
MODES_OF(V_GC_FREE)

#define ROW(v, k, m) {v, k, m, bench_##v##_##k##_##m}
#define ROWS(k, m)                                                                                 \
    ROW(V_NONE, k, m), ROW(V_GCPOOL, k, m), ROW(V_BUFPOOL, k, m), ROW(V_FREELIST, k, m), ROW(V_MALLOC, k, m),         \
        ROW(V_GC_MALLOC, k, m), ROW(V_GC_ATOMIC, k, m), ROW(V_GC_FREE, k, m)
static const struct {
    enum variant v;
    int k;
    enum mode m;
    bench_fn fn;
} table[] = {ROWS(0, M_LOCAL),   ROWS(1, M_LOCAL),   ROWS(2, M_LOCAL),
             ROWS(0, M_HANDOFF), ROWS(1, M_HANDOFF), ROWS(2, M_HANDOFF)};
enum { NBENCH = sizeof table / sizeof table[0] };

int main(int argc, char **argv)
{
    GC_INIT(); /* before the first pool: its cycles follow Boehm's collections */
    variant_names[V_MALLOC] = malloc_name();
    setup();
    static char names[NBENCH][96];
    static struct bench_def defs[NBENCH];
    for (int i = 0; i < NBENCH; i++) {
        snprintf(names[i], sizeof names[i], "BenchmarkAlloc/%s/%s/%s", size_names[table[i].k],
                 mode_names[table[i].m], variant_names[table[i].v]);
        defs[i] = (struct bench_def){names[i], table[i].fn};
    }
    return bench_main(argc, argv, defs, NBENCH);
}
