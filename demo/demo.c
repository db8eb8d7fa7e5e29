/* demo — gcpool in one page: a server's 64 KiB scratch buffers under the
 * Boehm collector, first allocated for every request, then taken from a pool.
 *
 *   make demo
 *
 * The pool is created after GC_INIT(), so Boehm's collections clean it: each
 * collection moves what the pool caches to a victim cache and drops what the
 * collection before had moved there.  A buffer therefore lives through at most
 * two collections unused, and a busy server keeps reusing the same few. */
#define GC_THREADS /* before gc.h: threads come from GC_pthread_create */
#include <gc/gc.h>

#include <gcpool.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

enum { REQUESTS = 60000, THREADS = 2, BUF_SIZE = 64 << 10 };

static gcpool_t *buffers;

/* What the pool calls when it has nothing cached. */
static void *new_buffer(void *arg)
{
    (void)arg;
    return GC_MALLOC_ATOMIC(BUF_SIZE); /* atomic: bytes, nothing for the collector to scan */
}

/* One request; pool NULL: the run without a pool. */
static void handle_request(gcpool_t *pool, unsigned id)
{
    unsigned char *buf = pool ? gcpool_get(pool) : GC_MALLOC_ATOMIC(BUF_SIZE);

    memset(buf, (int)(id & 0xff), BUF_SIZE);  /* the request's work with its buffer */
    __asm__ volatile("" : : "r"(buf) : "memory"); /* ...which the compiler must not skip */

    if (pool)
        gcpool_put(pool, buf); /* done: the next request on this CPU takes it */

    /* The request's other allocations (request object, headers): they keep
     * collections coming even with the pool, as in a real server. */
    void *volatile request = GC_MALLOC(1024);
    (void)request;
}

static void *serve(void *pool)
{
    for (unsigned i = 0; i < REQUESTS / THREADS; i++)
        handle_request(pool, i);
    return NULL;
}

static void run(const char *label, gcpool_t *pool)
{
    struct timespec t0, t1;
    pthread_t threads[THREADS];

    GC_gcollect(); /* both runs start from a collected heap */
    GC_word gc0 = GC_get_gc_no();
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < THREADS; i++)
        pthread_create(&threads[i], NULL, serve, pool);
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);

    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    printf("%-13s %5d requests in %7.1f ms, %6lu collections\n", label, REQUESTS, ms,
           (unsigned long)(GC_get_gc_no() - gc0));
}

int main(void)
{
    GC_INIT(); /* first: a pool created after it binds to Boehm */
    gcpool_options_t opts = {.new_fn = new_buffer, .name = "scratch"};
    buffers = gcpool_create(&opts);
    if (!buffers) {
        perror("gcpool_create");
        return 1;
    }
    printf("gcpool %s: %d threads, %d KiB scratch buffer per request\n", gcpool_version(),
           THREADS, BUF_SIZE >> 10);

    run("without pool", NULL);
    run("with pool", buffers);

    /* Where the pooled run's buffers came from: almost all from the calling
     * CPU's private slot, a few from the victim cache after a collection,
     * and new_fn only for the first buffer of each CPU (and after two
     * collections in a row found a buffer unused). */
    gcpool_stats_t s;
    gcpool_read_stats(buffers, &s);
    printf("pool stats:   gets %llu  hit_private %llu  hit_shared %llu  hit_steal %llu\n"
           "              hit_victim %llu  miss %llu  news %llu  dropped %llu\n",
           (unsigned long long)s.gets, (unsigned long long)s.hit_private,
           (unsigned long long)s.hit_shared, (unsigned long long)s.hit_steal,
           (unsigned long long)s.hit_victim, (unsigned long long)s.miss,
           (unsigned long long)s.news, (unsigned long long)s.dropped);

    gcpool_destroy(buffers);
    return 0;
}
