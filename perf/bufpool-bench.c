/* bufpool-bench — buffer pools (<gcpool/buf.h>) against allocating every buffer.
 *
 * One op obtains a buffer of a random size, touches its first and last byte,
 * and gives it back (or drops it).  Sizes follow a server's mix — many small,
 * few large: 90% in 64 B .. 4 KiB, 9% in 4 .. 64 KiB, 1% in 64 KiB .. 1 MiB —
 * drawn once into a table that every variant walks the same way, each thread
 * from its own offset.
 *
 *   BenchmarkBufPool            gcpool_buf_get / gcpool_buf_put (classes 256 B .. 4 MiB)
 *   BenchmarkBufMalloc          malloc / free
 *   BenchmarkBufGCMallocAtomic  GC_MALLOC_ATOMIC, dropped to the collector
 *   BenchmarkBufPoolOneClass    the trap the size classes avoid: one pool whose
 *                               buffers are all as large as the largest request
 *                               (what a single sync.Pool of []byte ends up holding)
 *
 *   perf/bufpool-bench -bench Buf -cpu 1,2 -benchtime 1s -count 5
 *
 * Extra columns:
 *   waste-bytes/op  bytes handed out beyond what was asked: for the buffer pool
 *                   its own statistic (capacity - size over gets, exact); for
 *                   malloc malloc_usable_size - size, for the collector GC_size -
 *                   size, for the one-class pool 1 MiB - size, each averaged over
 *                   the size table (untimed)
 *   GCs/op          Boehm collections per op during the timed run
 *   heap-MB         Boehm's heap after the run: what the variant makes the
 *                   collector hold on to (not printed for malloc)
 * Under GCPOOL_GC=sim the buffer pool mallocs its buffers instead. */
#define GC_THREADS
#include <gc/gc.h>

#include <gcpool.h>
#include <gcpool/buf.h>

#include <errno.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "perf/bench.h"

/* ---- the sizes ---------------------------------------------------------------- */

#define SIZES 65536 /* a power of two: walked with a mask */
#define ONE_CLASS_SIZE ((size_t)1 << 20)
static size_t sizes[SIZES];

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void make_sizes(void)
{
    uint64_t rng = 0x2545f4914f6cdd1dull; /* fixed: every run sees the same sizes */
    for (size_t i = 0; i < SIZES; i++) {
        uint64_t r = xorshift(&rng);
        unsigned p = (unsigned)(r % 100);
        r >>= 7;
        if (p < 90)
            sizes[i] = 64 + (size_t)(r % (4096 - 64 + 1));
        else if (p < 99)
            sizes[i] = 4097 + (size_t)(r % (65536 - 4096));
        else
            sizes[i] = 65537 + (size_t)(r % (ONE_CLASS_SIZE - 65536));
    }
}

/* ---- the variants ------------------------------------------------------------ */

enum kind { K_BUFPOOL, K_MALLOC, K_GC_ATOMIC, K_ONE_CLASS };

struct arg {
    enum kind kind;
    gcpool_bufpool_t *bp;
    gcpool_t *one;
    _Atomic unsigned threads; /* hands each thread its own offset into sizes[] */
};

static void body(struct bench_pb *pb, void *p)
{
    struct arg *a = p;
    /* Offsets far apart, so threads do not walk the table in step. */
    size_t i = (size_t)atomic_fetch_add(&a->threads, 1) * 7919;
    unsigned char *volatile sink = NULL; /* keeps each buffer and its writes observable */
    while (bench_pb_next(pb)) {
        size_t size = sizes[i++ & (SIZES - 1)];
        unsigned char *buf;
        size_t cap;
        switch (a->kind) {
        case K_BUFPOOL:
            buf = gcpool_buf_get(a->bp, size, &cap);
            buf[0] = 1;
            buf[size - 1] = 1;
            sink = buf;
            gcpool_buf_put(a->bp, buf, cap);
            break;
        case K_MALLOC:
            buf = malloc(size);
            buf[0] = 1;
            buf[size - 1] = 1;
            sink = buf;
            free(buf);
            break;
        case K_GC_ATOMIC:
            buf = GC_MALLOC_ATOMIC(size);
            buf[0] = 1;
            buf[size - 1] = 1;
            sink = buf;
            break;
        case K_ONE_CLASS:
            buf = gcpool_get(a->one);
            buf[0] = 1;
            buf[size - 1] = 1;
            sink = buf;
            gcpool_put(a->one, buf);
            break;
        }
    }
    (void)sink;
}

static void *new_one_class(void *unused)
{
    (void)unused;
    return GC_MALLOC_ATOMIC(ONE_CLASS_SIZE);
}

/* Average bytes beyond the size asked, over the size table (untimed). */
static double table_waste(enum kind kind)
{
    double sum = 0;
    for (size_t i = 0; i < SIZES; i++) {
        void *p;
        switch (kind) {
        case K_MALLOC:
            p = malloc(sizes[i]);
            sum += (double)(malloc_usable_size(p) - sizes[i]);
            free(p);
            break;
        case K_GC_ATOMIC:
            p = GC_MALLOC_ATOMIC(sizes[i]);
            sum += (double)(GC_size(p) - sizes[i]);
            break;
        default:
            sum += (double)(ONE_CLASS_SIZE - sizes[i]);
            break;
        }
    }
    return sum / SIZES;
}

static void die(const char *what)
{
    fprintf(stderr, "%s: %s\n", what, strerror(errno));
    exit(1);
}

static void run(struct bench_b *b, enum kind kind)
{
    static double waste[4];
    static bool measured[4];
    struct arg a = {.kind = kind};
    if (kind == K_BUFPOOL && !(a.bp = gcpool_bufpool_create(NULL)))
        die("gcpool_bufpool_create");
    if (kind == K_ONE_CLASS &&
        !(a.one = gcpool_create(&(gcpool_options_t){.new_fn = new_one_class, .name = "one-class"})))
        die("gcpool_create");
    GC_word gc0 = GC_get_gc_no();
    bench_run_parallel(b, body, &a);
    bench_stop_timer(b);
    double gcs = (double)(GC_get_gc_no() - gc0);
    double heap = (double)GC_get_heap_size() / 1e6;
    if (kind == K_BUFPOOL) {
        gcpool_bufpool_stats_t s;
        gcpool_bufpool_read_stats(a.bp, &s);
        waste[kind] = b->n ? (double)s.waste / (double)b->n : 0;
        gcpool_bufpool_destroy(a.bp);
    } else if (!measured[kind]) {
        waste[kind] = table_waste(kind);
        measured[kind] = true;
    }
    if (a.one)
        gcpool_destroy(a.one);
    bench_report_metric(b, waste[kind], "waste-bytes/op");
    bench_report_metric(b, gcs / (double)b->n, "GCs/op");
    if (kind != K_MALLOC) /* Boehm's heap says nothing about malloc's */
        bench_report_metric(b, heap, "heap-MB");
}

static void BenchmarkBufPool(struct bench_b *b) { run(b, K_BUFPOOL); }
static void BenchmarkBufMalloc(struct bench_b *b) { run(b, K_MALLOC); }
static void BenchmarkBufGCMallocAtomic(struct bench_b *b) { run(b, K_GC_ATOMIC); }
static void BenchmarkBufPoolOneClass(struct bench_b *b) { run(b, K_ONE_CLASS); }

static const struct bench_def benchmarks[] = {
    {"BenchmarkBufPool", BenchmarkBufPool},
    {"BenchmarkBufMalloc", BenchmarkBufMalloc},
    {"BenchmarkBufGCMallocAtomic", BenchmarkBufGCMallocAtomic},
    {"BenchmarkBufPoolOneClass", BenchmarkBufPoolOneClass},
};

int main(int argc, char **argv)
{
    /* Before any pool exists: pools created after GC_INIT follow Boehm's
     * collections and allocate their buffers from it. */
    GC_INIT();
    make_sizes();
    return bench_main(argc, argv, benchmarks, sizeof benchmarks / sizeof benchmarks[0]);
}
