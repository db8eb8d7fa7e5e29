/* gcpool-bench — Go's sync.Pool benchmarks (src/sync/pool_test.go), ported to
 * gcpool under the Boehm collector, with Go's names and go test's flags and
 * output, plus the baselines a pool is meant to beat: allocating the buffer
 * every time (GC_MALLOC, GC_MALLOC_ATOMIC, malloc/free).
 *
 *   perf/gcpool-bench -bench Pool -cpu 1,2 -benchtime 1s -count 5
 *
 * Where Go's benchmark relies on its runtime, the port says how it stands in:
 * runtime.GC() is GC_gcollect(), MemStats.NumGC is GC_get_gc_no(),
 * debug.SetGCPercent(-1) is GC_disable(), and the pause Go reads from
 * MemStats.PauseNs is a clock around GC_gcollect() (BenchmarkPoolSTW says
 * why it is reported as the difference the pool makes).  perf/run puts these
 * figures next to Go's, from the same run; perf/README.md explains each. */
#define GC_THREADS
#include <gc/gc.h>

#include <gcpool.h>
#include <gcpool/sync.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "perf/bench.h"

/* Go's benchmarks put the constant 1: an interface holding a small integer
 * points at static data, so nothing is allocated per Put.  The same here: one
 * static object, put over and over. */
static char the_item;
#define ITEM ((void *)&the_item)

static gcpool_t *new_pool(const gcpool_options_t *opts)
{
    gcpool_t *p = gcpool_create(opts);
    if (!p) {
        fprintf(stderr, "gcpool_create: %s\n", strerror(errno));
        exit(1);
    }
    return p;
}

/* ---- BenchmarkPool: a put and a get, each thread on its own -------------- */

static void pool_body(struct bench_pb *pb, void *arg)
{
    gcpool_t *p = arg;
    while (bench_pb_next(pb)) {
        gcpool_put(p, ITEM);
        (void)gcpool_get(p);
    }
}

static void BenchmarkPool(struct bench_b *b)
{
    gcpool_t *p = new_pool(NULL); /* Go: `var p Pool`, a new pool every run */
    bench_run_parallel(b, pool_body, p);
    bench_stop_timer(b);          /* Go never frees its pool; don't bill ours */
    gcpool_destroy(p);
}

/* ---- BenchmarkPoolOverflow: 100 puts then 100 gets, past the private slot - */

static void overflow_body(struct bench_pb *pb, void *arg)
{
    gcpool_t *p = arg;
    while (bench_pb_next(pb)) {
        for (int i = 0; i < 100; i++)
            gcpool_put(p, ITEM);
        for (int i = 0; i < 100; i++)
            (void)gcpool_get(p);
    }
}

static void BenchmarkPoolOverflow(struct bench_b *b)
{
    gcpool_t *p = new_pool(NULL);
    bench_run_parallel(b, overflow_body, p);
    bench_stop_timer(b);
    gcpool_destroy(p);
}

/* ---- BenchmarkPoolStarvation: a third fewer puts than gets, so threads ---
 * run dry and steal from each other (or, alone, miss). */

static void starvation_body(struct bench_pb *pb, void *arg)
{
    gcpool_t *p = arg;
    const int count = 100;
    const int starved = count - (int)((float)count * 0.33f); /* Go's 67 */
    while (bench_pb_next(pb)) {
        for (int i = 0; i < starved; i++)
            gcpool_put(p, ITEM);
        for (int i = 0; i < count; i++)
            (void)gcpool_get(p);
    }
}

static void BenchmarkPoolStarvation(struct bench_b *b)
{
    gcpool_t *p = new_pool(NULL);
    bench_run_parallel(b, starvation_body, p);
    bench_stop_timer(b);
    gcpool_destroy(p);
}

/* ---- BenchmarkPoolSTW: what 100 000 cached objects add to a collection ---
 *
 * Go times the stop-the-world pause of a GC that follows 100 000 puts.  A
 * Boehm collection stops the world for all of its marking, so its pause is the
 * whole GC_gcollect() (milliseconds), and putting that next to Go's
 * microsecond STW phases would compare collectors, not pools.  What the pool
 * owns is the difference: the same collection with and without 100 000 cached
 * objects.  So each op does what Go's does (puts, then a timed collection,
 * which also drops the victims of the op before: the steady state); then, with
 * the pool emptied, as many collections are timed again as the baseline.
 *   ns/op, p50-ns/STW, p95-ns/STW: added by the pool (with minus without)
 *   p50-with-ns/GC, p50-without-ns/GC: the collections themselves
 * and, to tell where the added time goes, from Boehm's collection events:
 *   p50-cleanup-ns/GC: the pool's cleanup cycle, with 100 000 cached
 *   p50-stopped-ns/GC, p50-stopped-without-ns/GC: the world stopped (marking),
 *   with 100 000 cached and without */

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, c = *(const uint64_t *)y;
    return (a > c) - (a < c);
}

/* The pool's glue runs its cycle from Boehm's collection-event callback
 * (GC_EVENT_START) and chains to what was installed before it.  Installed
 * after the first pool, this one wraps the glue's: it times the call into it
 * (the cleanup) and the stopped world.  Called under the allocation lock, so
 * plain variables do; it must not allocate. */
static GC_on_collection_event_proc stw_chained;
static uint64_t stw_cleanup_ns, stw_stop_t0, stw_stopped_ns;

static void stw_event(GC_EventType e)
{
    uint64_t t = bench_now_ns();
    if (stw_chained)
        stw_chained(e);
    if (e == GC_EVENT_START)
        stw_cleanup_ns = bench_now_ns() - t;
    else if (e == GC_EVENT_PRE_STOP_WORLD)
        stw_stop_t0 = t;
    else if (e == GC_EVENT_POST_START_WORLD)
        stw_stopped_ns = t - stw_stop_t0;
}

static void stw_install(void)
{
    static bool installed;
    if (!installed) {
        stw_chained = GC_get_on_collection_event();
        GC_set_on_collection_event(stw_event);
        installed = true;
    }
}

static void BenchmarkPoolSTW(struct bench_b *b)
{
    enum { N = 100000 };
    long n = b->n;
    uint64_t *with = malloc((size_t)n * sizeof *with);
    uint64_t *without = malloc((size_t)n * sizeof *without);
    uint64_t *cleanup = malloc((size_t)n * sizeof *cleanup);
    uint64_t *stopped = malloc((size_t)n * sizeof *stopped);
    uint64_t *stopped0 = malloc((size_t)n * sizeof *stopped0);
    if (!with || !without || !cleanup || !stopped || !stopped0) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    gcpool_t *p = new_pool(NULL);
    stw_install(); /* after a pool exists, so the glue's callback is in place */
    for (long i = 0; i < n; i++) {
        /* Go sets GCPercent to -1 so no collection runs during the puts
         * (growing the pool's rings allocates collector memory). */
        GC_disable();
        for (int k = 0; k < N; k++)
            gcpool_put(p, ITEM);
        GC_enable();
        uint64_t t0 = bench_now_ns();
        GC_gcollect();
        with[i] = bench_now_ns() - t0;
        cleanup[i] = stw_cleanup_ns;
        stopped[i] = stw_stopped_ns;
    }
    GC_gcollect(); /* two cycles: cached -> victim -> dropped */
    GC_gcollect();
    for (long i = 0; i < n; i++) {
        uint64_t t0 = bench_now_ns();
        GC_gcollect();
        without[i] = bench_now_ns() - t0;
        stopped0[i] = stw_stopped_ns;
    }
    gcpool_destroy(p);

    double sum_with = 0, sum_without = 0;
    for (long i = 0; i < n; i++)
        sum_with += (double)with[i], sum_without += (double)without[i];
    qsort(with, (size_t)n, sizeof *with, cmp_u64);
    qsort(without, (size_t)n, sizeof *without, cmp_u64);
    qsort(cleanup, (size_t)n, sizeof *cleanup, cmp_u64);
    qsort(stopped, (size_t)n, sizeof *stopped, cmp_u64);
    qsort(stopped0, (size_t)n, sizeof *stopped0, cmp_u64);
    long i50 = n * 50 / 100, i95 = n * 95 / 100;
    bench_report_metric(b, (sum_with - sum_without) / (double)n, "ns/op");
    bench_report_metric(b, (double)with[i50] - (double)without[i50], "p50-ns/STW");
    bench_report_metric(b, (double)with[i95] - (double)without[i95], "p95-ns/STW");
    bench_report_metric(b, (double)with[i50], "p50-with-ns/GC");
    bench_report_metric(b, (double)without[i50], "p50-without-ns/GC");
    bench_report_metric(b, (double)cleanup[i50], "p50-cleanup-ns/GC");
    bench_report_metric(b, (double)stopped[i50], "p50-stopped-ns/GC");
    bench_report_metric(b, (double)stopped0[i50], "p50-stopped-without-ns/GC");
    free(with);
    free(without);
    free(cleanup);
    free(stopped);
    free(stopped0);
}

/* ---- BenchmarkPoolExpensiveNew: how often cleanup makes new_fn run again --
 * An 8 MiB ballast gives the collector a heap to pace itself by; each thread
 * keeps 100 objects out at a time and allocates 32 KiB of garbage per object
 * checked out, so collections (and pool cycles) come while objects are out. */

static void *volatile ballast;     /* a root: the collector scans our data segment */
static _Atomic uint64_t expensive_news;

static void *expensive_new(void *arg)
{
    (void)arg;
    atomic_fetch_add_explicit(&expensive_news, 1, memory_order_relaxed);
    struct timespec ms = {0, 1000000};
    nanosleep(&ms, NULL);
    return ITEM;
}

static void expensive_body(struct bench_pb *pb, void *arg)
{
    gcpool_t *p = arg;
    void *items[100];
    void *volatile sink = NULL;
    while (bench_pb_next(pb)) {
        for (int i = 0; i < 100; i++) {
            items[i] = gcpool_get(p);
            sink = GC_MALLOC_ATOMIC(32 << 10); /* the work done with the object out */
        }
        for (int i = 0; i < 100; i++) {
            gcpool_put(p, items[i]);
            items[i] = NULL;
        }
    }
    (void)sink;
}

static void BenchmarkPoolExpensiveNew(struct bench_b *b)
{
    ballast = GC_MALLOC_ATOMIC(8 << 20);
    atomic_store(&expensive_news, 0);
    gcpool_t *p = new_pool(&(gcpool_options_t){.new_fn = expensive_new, .name = "expensive"});
    GC_word gc0 = GC_get_gc_no();
    bench_run_parallel(b, expensive_body, p);
    GC_word gcs = GC_get_gc_no() - gc0;
    bench_stop_timer(b);
    gcpool_destroy(p);
    ballast = NULL;
    bench_report_metric(b, (double)gcs / (double)b->n, "GCs/op");
    bench_report_metric(b, (double)atomic_load(&expensive_news) / (double)b->n, "New/op");
}

/* ---- Buffers: the pool against allocating the buffer every time ----------
 * One op obtains a buffer, writes to it, and gives it back (or drops it).  The
 * pool figures are what BenchmarkPool costs when the object is a real buffer;
 * the allocation figures are what a program pays without a pool: Boehm clears
 * every object it hands out, and each allocated byte brings the next
 * collection nearer. */

enum buf_kind { BUF_POOL, BUF_GC_MALLOC, BUF_GC_MALLOC_ATOMIC, BUF_MALLOC };

struct buf_arg {
    enum buf_kind kind;
    size_t size;
    gcpool_t *pool;
};

static void *new_atomic_buffer(void *arg)
{
    return GC_MALLOC_ATOMIC((size_t)(uintptr_t)arg);
}

static void buf_body(struct bench_pb *pb, void *arg)
{
    const struct buf_arg *a = arg;
    unsigned char *volatile sink = NULL; /* keeps the buffer, and its write, observable */
    while (bench_pb_next(pb)) {
        unsigned char *buf;
        switch (a->kind) {
        case BUF_POOL:
            buf = gcpool_get(a->pool);
            buf[0] = 1;
            sink = buf;
            gcpool_put(a->pool, buf);
            break;
        case BUF_GC_MALLOC:
            buf = GC_MALLOC(a->size);
            buf[0] = 1;
            sink = buf;
            break;
        case BUF_GC_MALLOC_ATOMIC:
            buf = GC_MALLOC_ATOMIC(a->size);
            buf[0] = 1;
            sink = buf;
            break;
        case BUF_MALLOC:
            buf = malloc(a->size);
            buf[0] = 1;
            sink = buf;
            free(buf);
            break;
        }
    }
    (void)sink;
}

static void run_buf(struct bench_b *b, enum buf_kind kind, size_t size)
{
    struct buf_arg a = {kind, size, NULL};
    if (kind == BUF_POOL)
        a.pool = new_pool(&(gcpool_options_t){.new_fn = new_atomic_buffer,
                                              .arg = (void *)(uintptr_t)size});
    bench_run_parallel(b, buf_body, &a);
    bench_stop_timer(b);
    if (a.pool)
        gcpool_destroy(a.pool);
}

static void BenchmarkPoolBuffer4K(struct bench_b *b) { run_buf(b, BUF_POOL, 4 << 10); }
static void BenchmarkPoolBuffer64K(struct bench_b *b) { run_buf(b, BUF_POOL, 64 << 10); }
static void BenchmarkGCMalloc4K(struct bench_b *b) { run_buf(b, BUF_GC_MALLOC, 4 << 10); }
static void BenchmarkGCMalloc64K(struct bench_b *b) { run_buf(b, BUF_GC_MALLOC, 64 << 10); }
static void BenchmarkGCMallocAtomic4K(struct bench_b *b) { run_buf(b, BUF_GC_MALLOC_ATOMIC, 4 << 10); }
static void BenchmarkGCMallocAtomic64K(struct bench_b *b) { run_buf(b, BUF_GC_MALLOC_ATOMIC, 64 << 10); }
static void BenchmarkMalloc4K(struct bench_b *b) { run_buf(b, BUF_MALLOC, 4 << 10); }
static void BenchmarkMalloc64K(struct bench_b *b) { run_buf(b, BUF_MALLOC, 64 << 10); }

/* ---- pthread_mutex: the baseline for <gcpool/sync.h>'s mutex ---------------
 * Shapes of Go's BenchmarkMutexUncontended (a mutex per thread, padded off
 * its neighbours' lines), BenchmarkMutex (one mutex for all) and
 * BenchmarkMutexWork (the same, with 100 steps of local work between locks). */

struct padded_pthread_mutex {
    pthread_mutex_t mu;
    char pad[128];
};

static void pthread_uncontended_body(struct bench_pb *pb, void *arg)
{
    (void)arg;
    struct padded_pthread_mutex m = {.mu = PTHREAD_MUTEX_INITIALIZER};
    while (bench_pb_next(pb)) {
        pthread_mutex_lock(&m.mu);
        pthread_mutex_unlock(&m.mu);
    }
}

static void BenchmarkPthreadMutexUncontended(struct bench_b *b)
{
    bench_run_parallel(b, pthread_uncontended_body, NULL);
}

struct mutex_arg {
    pthread_mutex_t *mu;
    int work;
};

/* Go's work between locks is `for i := 0; i < 100; i++ { foo *= 2; foo /= 2 }`
 * with foo never used, and Go 1.19 compiles it to an empty loop of 100 turns
 * (go tool objdump of sync.test shows INCQ, CMPQ, JL).  The port does the same
 * work: an empty loop, which the empty asm keeps the compiler from deleting. */
static inline void local_work(int steps)
{
    for (int i = 0; i < steps; i++)
        __asm__ volatile("");
}

static void pthread_mutex_body(struct bench_pb *pb, void *arg)
{
    const struct mutex_arg *a = arg;
    while (bench_pb_next(pb)) {
        pthread_mutex_lock(a->mu);
        pthread_mutex_unlock(a->mu);
        local_work(a->work);
    }
}

static void BenchmarkPthreadMutex(struct bench_b *b)
{
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    bench_run_parallel(b, pthread_mutex_body, &(struct mutex_arg){&mu, 0});
}

static void BenchmarkPthreadMutexWork(struct bench_b *b)
{
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    bench_run_parallel(b, pthread_mutex_body, &(struct mutex_arg){&mu, 100});
}

/* ---- <gcpool/sync.h>: Go's mutex and wait group benchmarks -----------------
 * Guarded on the header's own macro, so this file builds against a sync.h that
 * does not declare them yet. */
#ifdef GCPOOL_MUTEX_INIT
struct padded_mutex {
    gcpool_mutex_t mu;
    char pad[128];
};

static void mutex_uncontended_body(struct bench_pb *pb, void *arg)
{
    (void)arg;
    struct padded_mutex m = {.mu = GCPOOL_MUTEX_INIT};
    while (bench_pb_next(pb)) {
        gcpool_mutex_lock(&m.mu);
        gcpool_mutex_unlock(&m.mu);
    }
}

static void BenchmarkMutexUncontended(struct bench_b *b)
{
    bench_run_parallel(b, mutex_uncontended_body, NULL);
}

struct gcpool_mutex_arg {
    gcpool_mutex_t *mu;
    int work;
};

static void mutex_body(struct bench_pb *pb, void *arg)
{
    const struct gcpool_mutex_arg *a = arg;
    while (bench_pb_next(pb)) {
        gcpool_mutex_lock(a->mu);
        gcpool_mutex_unlock(a->mu);
        local_work(a->work);
    }
}

static void BenchmarkMutex(struct bench_b *b)
{
    gcpool_mutex_t mu = GCPOOL_MUTEX_INIT;
    bench_run_parallel(b, mutex_body, &(struct gcpool_mutex_arg){&mu, 0});
}

static void BenchmarkMutexWork(struct bench_b *b)
{
    gcpool_mutex_t mu = GCPOOL_MUTEX_INIT;
    bench_run_parallel(b, mutex_body, &(struct gcpool_mutex_arg){&mu, 100});
}

/* One wait group for all threads: each adds one and is done with it, so the
 * counter stays near zero and every thread hammers the same word. */
static void waitgroup_add_done_body(struct bench_pb *pb, void *arg)
{
    gcpool_waitgroup_t *wg = arg;
    while (bench_pb_next(pb)) {
        gcpool_waitgroup_add(wg, 1);
        gcpool_waitgroup_done(wg);
    }
}

static void BenchmarkWaitGroupAddDone(struct bench_b *b)
{
    gcpool_waitgroup_t wg = GCPOOL_WAITGROUP_INIT;
    bench_run_parallel(b, waitgroup_add_done_body, &wg);
}

/* Wait on a wait group that is already zero: the fast path, read-only. */
static void waitgroup_wait_body(struct bench_pb *pb, void *arg)
{
    gcpool_waitgroup_t *wg = arg;
    while (bench_pb_next(pb))
        gcpool_waitgroup_wait(wg);
}

static void BenchmarkWaitGroupWait(struct bench_b *b)
{
    gcpool_waitgroup_t wg = GCPOOL_WAITGROUP_INIT;
    bench_run_parallel(b, waitgroup_wait_body, &wg);
}
#endif

/* ---- the table, in Go's order, then the baselines ------------------------ */

#define BENCH(f) {#f, f}
static const struct bench_def benchmarks[] = {
    BENCH(BenchmarkPool),
    BENCH(BenchmarkPoolOverflow),
    BENCH(BenchmarkPoolStarvation),
    BENCH(BenchmarkPoolSTW),
    BENCH(BenchmarkPoolExpensiveNew),
    BENCH(BenchmarkPoolBuffer4K),
    BENCH(BenchmarkPoolBuffer64K),
    BENCH(BenchmarkGCMalloc4K),
    BENCH(BenchmarkGCMalloc64K),
    BENCH(BenchmarkGCMallocAtomic4K),
    BENCH(BenchmarkGCMallocAtomic64K),
    BENCH(BenchmarkMalloc4K),
    BENCH(BenchmarkMalloc64K),
#ifdef GCPOOL_MUTEX_INIT
    BENCH(BenchmarkMutexUncontended),
    BENCH(BenchmarkMutex),
    BENCH(BenchmarkMutexWork),
    BENCH(BenchmarkWaitGroupAddDone),
    BENCH(BenchmarkWaitGroupWait),
#endif
    BENCH(BenchmarkPthreadMutexUncontended),
    BENCH(BenchmarkPthreadMutex),
    BENCH(BenchmarkPthreadMutexWork),
};

int main(int argc, char **argv)
{
    /* Before any pool exists: a pool created after GC_INIT binds its cleanup
     * to Boehm's collections. */
    GC_INIT();
    return bench_main(argc, argv, benchmarks, sizeof benchmarks / sizeof benchmarks[0]);
}
