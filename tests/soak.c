/* Long soak (`make soak`, minutes, not in CI): the conservation test with
 * cycles, run for a fixed number of operations by threads that keep exiting
 * and being replaced, on a pool whose free_fn really frees.  It checks that
 * the pool neither loses nor duplicates objects over millions of cycles, and
 * that memory stays flat: the resident set at the end must not exceed the one
 * at 10% of the run by more than 20%.
 *
 *   tests/soak [OPERATIONS [sim|boehm [THREADS_PER_CPU]]]
 *                                     defaults: 7500000000 sim 4
 *
 * An operation is one get or one put.  Only the public API is used, so what
 * the soak measures is what a program would see (GCPOOL_* variables apply,
 * e.g. GCPOOL_DEBUG=1 or GCPOOL_PIN=lock). */
#define GC_THREADS
#include <gc/gc.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <gcpool.h>

#define DEFAULT_OPERATIONS 7500000000L /* about three minutes on 2 cores (sim) */
#define MAGIC 0x5eed5eedL
#define DEAD 0xdeadL
#define CHUNK 2000000L /* operations per worker thread before it exits */
#define HOLD 4        /* objects a worker usually holds at once */
#define BURST 256     /* and now and then: chains grow, cycles shrink them */

struct object {
    long magic;        /* MAGIC while alive, DEAD once free_fn ran */
    _Atomic int users; /* 1 while handed out */
    char payload[48];
};

static gcpool_t *pool;
static bool boehm;
static long total_ops;
static _Atomic long ops_done;
static _Atomic long made, freed;
static _Atomic long failures;
static _Atomic int stop_cycles;

static void fail(const char *what)
{
    if (atomic_fetch_add(&failures, 1) < 10)
        fprintf(stderr, "soak: %s\n", what);
}

static void *make(void *arg)
{
    (void)arg;
    struct object *o = boehm ? GC_MALLOC_UNCOLLECTABLE(sizeof *o) : malloc(sizeof *o);
    if (!o) {
        fail("out of memory");
        return NULL;
    }
    o->magic = MAGIC;
    atomic_init(&o->users, 0);
    atomic_fetch_add_explicit(&made, 1, memory_order_relaxed);
    return o;
}

static void release(void *obj, void *arg)
{
    (void)arg;
    struct object *o = obj;
    if (o->magic != MAGIC)
        fail("free_fn got an object that is not alive (freed twice?)");
    if (atomic_load(&o->users) != 0)
        fail("free_fn got an object in use");
    o->magic = DEAD;
    atomic_fetch_add_explicit(&freed, 1, memory_order_relaxed);
    if (boehm)
        GC_FREE(o);
    else
        free(o);
}

/* Runs up to CHUNK operations, then exits (its replacement carries on). */
static void *worker(void *arg)
{
    (void)arg;
    struct object *held[BURST];
    long ops = 0;
    for (long i = 0; ops < CHUNK; i++) {
        int n = i % 512 == 511 ? BURST : 1 + (int)(i % HOLD);
        for (int k = 0; k < n; k++) {
            struct object *o = gcpool_get(pool);
            if (!o || o->magic != MAGIC)
                fail("get returned a dead object");
            else if (atomic_fetch_add(&o->users, 1) != 0)
                fail("an object handed to two users");
            held[k] = o;
            if (o)
                o->payload[i % sizeof o->payload] = (char)i; /* use it */
        }
        for (int k = 0; k < n; k++) {
            if (!held[k])
                continue;
            atomic_store(&held[k]->users, 0);
            gcpool_put(pool, held[k]);
        }
        ops += 2 * n;
    }
    atomic_fetch_add(&ops_done, ops);
    return NULL;
}

static void *cycler(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop_cycles)) {
        if (boehm)
            GC_gcollect();
        else
            gcpool_collect();
        usleep(boehm ? 5000 : 200);
    }
    return NULL;
}

static int start_thread(pthread_t *t, void *(*fn)(void *))
{
    return boehm ? GC_pthread_create(t, NULL, fn, NULL) : pthread_create(t, NULL, fn, NULL);
}

static void join_thread(pthread_t t)
{
    if (boehm)
        GC_pthread_join(t, NULL);
    else
        pthread_join(t, NULL);
}

/* Resident set now, in KiB. */
static long rss_kib(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    total_ops = argc > 1 ? atol(argv[1]) : DEFAULT_OPERATIONS;
    boehm = argc > 2 && strcmp(argv[2], "boehm") == 0;
    long per_cpu = argc > 3 ? atol(argv[3]) : 4;
    if (total_ops <= 0 || (argc > 2 && !boehm && strcmp(argv[2], "sim") != 0) || per_cpu <= 0 ||
        per_cpu > 256) {
        fprintf(stderr, "usage: %s [OPERATIONS [sim|boehm [THREADS_PER_CPU]]]\n", argv[0]);
        return 2;
    }
    if (boehm)
        GC_INIT();
    setenv("GCPOOL_GC", boehm ? "boehm" : "sim", 1);
    gcpool_options_t o = {.new_fn = make, .free_fn = release, .name = "soak",
                          .size = sizeof(struct object)};
    pool = gcpool_create(&o);
    if (!pool) {
        perror("gcpool_create");
        return 1;
    }

    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int nworkers = (int)(per_cpu * cores);
    pthread_t cyc, t[nworkers];
    if (start_thread(&cyc, cycler) != 0) {
        perror("pthread_create");
        return 1;
    }
    /* Workers run CHUNK operations each and exit; a finished one is replaced
     * until the total is reached.  Main samples the resident set on the way. */
    long started = 0, joined = 0, needed = (total_ops + CHUNK - 1) / CHUNK;
    long marks[3] = {total_ops / 10, total_ops / 2, total_ops}, rss[3] = {0};
    int next_mark = 0;
    double t0 = seconds();
    for (int k = 0; k < nworkers && started < needed; k++, started++)
        if (start_thread(&t[k], worker) != 0) {
            perror("pthread_create");
            return 1;
        }
    for (int k = 0; joined < started; k = (k + 1) % nworkers) {
        join_thread(t[k]);
        joined++;
        long done = atomic_load(&ops_done);
        while (next_mark < 2 && done >= marks[next_mark]) {
            rss[next_mark] = rss_kib();
            printf("soak: %3d%%: %ld operations, RSS %ld KiB, %" PRIu64 " cycles, %.0f s\n",
                   next_mark ? 50 : 10, done, rss[next_mark], gcpool_cycles(), seconds() - t0);
            fflush(stdout);
            next_mark++;
        }
        if (started < needed) {
            if (start_thread(&t[k], worker) != 0) {
                perror("pthread_create");
                return 1;
            }
            started++;
        }
    }
    /* 100%: with the pool still in use by the cycler, as at the other marks. */
    rss[2] = rss_kib();
    long done = atomic_load(&ops_done);
    printf("soak: 100%%: %ld operations, RSS %ld KiB, %" PRIu64 " cycles, %.0f s\n", done, rss[2],
           gcpool_cycles(), seconds() - t0);
    atomic_store(&stop_cycles, 1);
    join_thread(cyc);

    gcpool_stats_t s;
    gcpool_read_stats(pool, &s);
    gcpool_destroy(pool);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    long m = atomic_load(&made), f = atomic_load(&freed);
    const char *pin = getenv("GCPOOL_PIN");
    printf("soak: %s, GCPOOL_PIN=%s, %d threads at once (%ld per CPU), %ld in all, %" PRIu64
           " gets, %" PRIu64 " puts, %" PRIu64 " news, %" PRIu64 " dropped, %" PRIu64
           " cycles, %ld objects made, %ld freed, peak RSS %ld KiB, %.0f s\n",
           boehm ? "boehm" : "sim", pin ? pin : "(unset)", nworkers, per_cpu, started, s.gets, s.puts,
           s.news, s.dropped, gcpool_cycles(), m, f, ru.ru_maxrss, seconds() - t0);

    int status = 0;
    if (atomic_load(&failures)) {
        printf("soak: FAIL: %ld misuse or corruption reports\n", atomic_load(&failures));
        status = 1;
    }
    if (m != f) {
        printf("soak: FAIL: %ld objects made but %ld reached free_fn\n", m, f);
        status = 1;
    }
    if ((uint64_t)m != s.news) {
        printf("soak: FAIL: new_fn made %ld objects, statistics say %" PRIu64 "\n", m, s.news);
        status = 1;
    }
    if (rss[2] * 10 > rss[0] * 12) {
        printf("soak: FAIL: RSS grew from %ld KiB at 10%% to %ld KiB at the end (> 20%%)\n", rss[0],
               rss[2]);
        status = 1;
    }
    if (!status)
        printf("soak: PASS\n");
    return status;
}
