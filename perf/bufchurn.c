/* bufchurn — a server's scratch buffers, with and without a pool.
 *
 * Each simulated request obtains a 64 KiB scratch buffer, fills it and reads it
 * back (memset and a checksum: the work a request does with its buffer), then
 * is done with it.  Without the pool each request allocates a new buffer from
 * the collector, which clears it, and every 64 KiB allocated brings the next
 * collection nearer; with the pool the buffer goes back to the pool and the
 * next request on that CPU takes it.
 *
 *   perf/bufchurn -pool   -n 200000 -t 2
 *   perf/bufchurn -bufpool -n 200000 -t 2             (from a buffer pool, <gcpool/buf.h>)
 *   perf/bufchurn -nopool -n 200000 -t 2              (GC_MALLOC_ATOMIC each time)
 *   perf/bufchurn -nopool -n 200000 -t 2 -kind ptr    (GC_MALLOC: the collector
 *                                                      must scan every buffer)
 *   perf/bufchurn -pool -garbage 4096                 (each request also leaves
 *                       4 KiB of small objects behind, as real requests do: then
 *                       collections come with the pool too, and its victim cache
 *                       is what keeps them from costing new buffers)
 *
 * Prints wall time, collections (GC_get_gc_no), peak RSS (ru_maxrss) and the
 * pool's statistics as "# " lines, then one go-test-style line for perf/run.
 * perf/go/bufchurn is the same program in Go with sync.Pool; both print the
 * same checksum for the same -n, which shows they did the same work. */
#define GC_THREADS
#include <gc/gc.h>

#include <gcpool.h>
#include <gcpool/buf.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "perf/bench.h"

#define BUF_SIZE (64 << 10)

static struct {
    long requests;
    int threads;
    bool pool;
    bool bufpool; /* -bufpool: buffers from a size-classed buffer pool (<gcpool/buf.h>) */
    bool ptr;     /* -kind ptr: GC_MALLOC buffers, which the collector scans */
    long garbage; /* bytes of small objects each request allocates and drops */
} opt = {200000, 0, true, false, false, 0};

static gcpool_t *buffers;
static gcpool_bufpool_t *bufpool;

static void *new_buffer(void *arg)
{
    (void)arg;
    return opt.ptr ? GC_MALLOC(BUF_SIZE) : GC_MALLOC_ATOMIC(BUF_SIZE);
}

/* The request's work: fill the buffer with a byte that depends on the request,
 * then read one word of each cache line back.  The empty asm tells the compiler
 * the buffer may be read and written by code it cannot see, so neither the
 * fill nor the reads can be dropped or folded into a constant. */
static uint64_t serve(unsigned char *buf, uint64_t req)
{
    memset(buf, (int)(req * 131 + 7) & 0xff, BUF_SIZE);
    __asm__ volatile("" : : "r"(buf) : "memory");
    uint64_t sum = req;
    for (size_t i = 0; i < BUF_SIZE; i += 64) {
        uint64_t w;
        memcpy(&w, buf + i, sizeof w);
        sum += w ^ i;
    }
    return sum;
}

/* A request's other allocations: a chain of 128-byte objects (request,
 * headers, strings), dropped when the request ends. */
struct node {
    struct node *next;
    uint64_t payload[15];
};

static struct node *make_garbage(uint64_t req)
{
    struct node *head = NULL;
    for (long b = 0; b < opt.garbage; b += (long)sizeof(struct node)) {
        struct node *n = GC_MALLOC(sizeof *n);
        if (!n) {
            fprintf(stderr, "bufchurn: out of memory\n");
            exit(1);
        }
        n->next = head;
        n->payload[0] = req;
        head = n;
    }
    return head;
}

/* -cycles FILE: the cycle history of the whole run, not only the last
 * GCPOOL_CYCLE_HISTORY cycles gcpool_read_cycles keeps.  Worker 0 polls every
 * poll_every requests and writes the cycles it has not written yet, except the
 * newest, whose victim hits are still counting (the last poll, after the
 * workers, writes it too).  Cycles lost between two polls (more than the
 * history holds ran) are said, never hidden: a "# gap" line and a blank line,
 * so that gnuplot breaks its curve there. */
static FILE *cycles_out;
static long poll_every = 64;
static uint64_t cycles_written; /* the newest cycle number written */

static void record_cycles(bool final)
{
    gcpool_cycle_t c[GCPOOL_CYCLE_HISTORY];
    int n = gcpool_read_cycles(c, GCPOOL_CYCLE_HISTORY);
    for (int i = 0; i < n - (final ? 0 : 1); i++) {
        if (c[i].number <= cycles_written)
            continue;
        if (c[i].number > cycles_written + 1)
            fprintf(cycles_out, "# gap: cycles %" PRIu64 "..%" PRIu64 " lost\n\n", cycles_written + 1,
                    c[i].number - 1);
        fprintf(cycles_out, "%" PRIu64 "\t%s\t%.3f\t%.1f\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t%.4f\n",
                c[i].number,
                c[i].cause == GCPOOL_CYCLE_COLLECTOR ? "collector"
                : c[i].cause == GCPOOL_CYCLE_SIM     ? "sim"
                : c[i].cause == GCPOOL_CYCLE_EXPLICIT ? "explicit"
                : c[i].cause == GCPOOL_CYCLE_PACER    ? "pacer"
                : c[i].cause == GCPOOL_CYCLE_PRESSURE ? "pressure"
                                                      : "other",
                (double)c[i].start_ns / 1e6, (double)c[i].duration_ns / 1e3, c[i].moved_to_victim,
                c[i].dropped, c[i].victim_hits,
                c[i].moved_to_victim ? (double)c[i].victim_hits / (double)c[i].moved_to_victim : 0.0);
        cycles_written = c[i].number;
    }
}

struct worker {
    long first, count; /* requests first .. first+count-1 */
    uint64_t checksum;
};

static void *worker_main(void *p)
{
    struct worker *w = p;
    uint64_t sum = 0;
    for (long r = w->first; r < w->first + w->count; r++) {
        size_t cap = BUF_SIZE;
        unsigned char *buf = opt.bufpool ? gcpool_buf_get(bufpool, BUF_SIZE, &cap)
                             : opt.pool  ? gcpool_get(buffers)
                                         : new_buffer(NULL);
        if (!buf) {
            fprintf(stderr, "bufchurn: out of memory\n");
            exit(1);
        }
        sum += serve(buf, (uint64_t)r);
        if (opt.bufpool)
            gcpool_buf_put(bufpool, buf, cap);
        else if (opt.pool)
            gcpool_put(buffers, buf);
        /* After the buffer is back: the collections this garbage sets off find
         * it cached, as they would find most buffers of a busy server. */
        struct node *volatile garbage = make_garbage((uint64_t)r);
        (void)garbage;
        if (cycles_out && w->first == 0 && (r + 1) % poll_every == 0)
            record_cycles(false);
    }
    w->checksum = sum;
    return NULL;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: bufchurn [-pool|-bufpool|-nopool] [-kind atomic|ptr] [-n REQUESTS] [-t THREADS]\n"
                 "                [-garbage BYTES] [-cycles FILE [-poll-every N]]\n"
                 "  -pool       take buffers from a gcpool (default)\n"
                 "  -bufpool    take buffers from a size-classed buffer pool (<gcpool/buf.h>)\n"
                 "  -nopool     allocate every buffer from the collector\n"
                 "  -kind       atomic: GC_MALLOC_ATOMIC, not scanned (default); ptr: GC_MALLOC\n"
                 "  -n          requests to serve (default 200000)\n"
                 "  -t          threads serving them (default: online CPUs)\n"
                 "  -garbage    bytes of small objects each request also allocates (default 0)\n"
                 "  -cycles F   write every cycle of the run to F (TSV: number, cause, start_ms,\n"
                 "              duration_us, moved_to_victim, dropped, victim_hits, victim_hit_rate)\n"
                 "  -poll-every N  requests between two reads of the cycle history (default 64)\n");
}

static int parse_args(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i] + (argv[i][0] == '-' && argv[i][1] == '-');
        bool has_val = i + 1 < argc;
        if (strcmp(a, "-pool") == 0)
            opt.pool = true, opt.bufpool = false;
        else if (strcmp(a, "-bufpool") == 0)
            opt.pool = false, opt.bufpool = true;
        else if (strcmp(a, "-nopool") == 0)
            opt.pool = false, opt.bufpool = false;
        else if (strcmp(a, "-kind") == 0 && has_val) {
            const char *k = argv[++i];
            if (strcmp(k, "atomic") != 0 && strcmp(k, "ptr") != 0)
                return -1;
            opt.ptr = strcmp(k, "ptr") == 0;
        } else if (strcmp(a, "-n") == 0 && has_val)
            opt.requests = atol(argv[++i]);
        else if (strcmp(a, "-garbage") == 0 && has_val)
            opt.garbage = atol(argv[++i]);
        else if (strcmp(a, "-cycles") == 0 && has_val) {
            if (!(cycles_out = fopen(argv[++i], "w"))) {
                fprintf(stderr, "bufchurn: %s: %s\n", argv[i], strerror(errno));
                return -1;
            }
        } else if (strcmp(a, "-poll-every") == 0 && has_val)
            poll_every = atol(argv[++i]) > 0 ? atol(argv[i]) : 1;
        else if (strcmp(a, "-t") == 0 && has_val)
            opt.threads = atoi(argv[++i]);
        else if (strcmp(a, "-h") == 0 || strcmp(a, "-help") == 0) {
            usage(stdout);
            exit(0);
        } else
            return -1;
    }
    if (opt.threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        opt.threads = n > 0 ? (int)n : 1;
    }
    return opt.requests > 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    GC_INIT(); /* first: pools created after it are cleaned by Boehm's collections */
    if (parse_args(argc, argv) != 0) {
        usage(stderr);
        return 2;
    }
    const char *mode = opt.bufpool ? "bufpool" : opt.pool ? "pool" : "nopool";
    const char *kind = opt.ptr ? "ptr" : "atomic";
    if (opt.bufpool && !(bufpool = gcpool_bufpool_create(NULL))) {
        fprintf(stderr, "gcpool_bufpool_create: %s\n", strerror(errno));
        return 1;
    }
    if (opt.pool) {
        buffers = gcpool_create(&(gcpool_options_t){.new_fn = new_buffer, .name = "bufchurn"});
        if (!buffers) {
            fprintf(stderr, "gcpool_create: %s\n", strerror(errno));
            return 1;
        }
    }

    int t = opt.threads;
    pthread_t *tids = calloc((size_t)t, sizeof *tids);
    struct worker *w = calloc((size_t)t, sizeof *w);
    if (!tids || !w)
        return 1;
    GC_gcollect(); /* start from a collected heap, both modes alike */
    GC_word gc0 = GC_get_gc_no();
    uint64_t t0 = bench_now_ns();
    for (int i = 0; i < t; i++) {
        w[i].first = opt.requests * i / t;
        w[i].count = opt.requests * (i + 1) / t - w[i].first;
        int err = pthread_create(&tids[i], NULL, worker_main, &w[i]);
        if (err) {
            fprintf(stderr, "pthread_create: %s\n", strerror(err));
            return 1;
        }
    }
    uint64_t checksum = 0;
    for (int i = 0; i < t; i++) {
        pthread_join(tids[i], NULL);
        checksum += w[i].checksum;
    }
    uint64_t ns = bench_now_ns() - t0;
    if (cycles_out) {
        record_cycles(true);
        fclose(cycles_out);
    }
    GC_word gcs = GC_get_gc_no() - gc0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);

    printf("# bufchurn: %ld requests, %d KiB buffers, %d threads, %s, %s buffers, "
           "%ld bytes of garbage per request\n",
           opt.requests, BUF_SIZE >> 10, t, mode, kind, opt.garbage);
    printf("# wall %.3f s (%.0f ns/request)\n", (double)ns / 1e9, (double)ns / (double)opt.requests);
    printf("# collections %lu\n", (unsigned long)gcs);
    printf("# peak RSS %.1f MiB\n", (double)ru.ru_maxrss / 1024);
    printf("# checksum %016" PRIx64 "\n", checksum);
    gcpool_stats_t s = {0};
    if (opt.pool) {
        gcpool_read_stats(buffers, &s);
        printf("# pool gets %" PRIu64 " hit_private %" PRIu64 " hit_shared %" PRIu64
               " hit_steal %" PRIu64 " hit_victim %" PRIu64 " miss %" PRIu64 " news %" PRIu64
               " dropped %" PRIu64 "\n",
               s.gets, s.hit_private, s.hit_shared, s.hit_steal, s.hit_victim, s.miss, s.news,
               s.dropped);
    }

    /* One line perf/run (and benchstat) can read; named like a Go
     * sub-benchmark, with the thread count as the -P suffix. */
    char name[128], full[160];
    if (opt.garbage)
        snprintf(name, sizeof name, "BenchmarkBufchurn/%s-%s-garbage%ld", mode, kind, opt.garbage);
    else
        snprintf(name, sizeof name, "BenchmarkBufchurn/%s-%s", mode, kind);
    bench_name(full, sizeof full, name, t);
    printf("%s\t", full);
    struct bench_b b = {.n = opt.requests, .duration_ns = ns};
    bench_report_metric(&b, (double)gcs, "GCs");
    bench_report_metric(&b, (double)ru.ru_maxrss, "peak-RSS-KiB");
    if (opt.pool)
        bench_report_metric(&b, (double)s.hit_victim, "victim-hits");
    bench_print_result(stdout, &b);

    if (buffers)
        gcpool_destroy(buffers);
    if (bufpool)
        gcpool_bufpool_destroy(bufpool);
    free(w);
    free(tids);
    return 0;
}
