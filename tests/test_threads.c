/* Threads that come and go: waves of short-lived threads that exit one after
 * another, bursts of thousands of threads started at once, and 64 threads per
 * CPU at once; a cycler runs cleanup cycles all along.  Each time: every object
 * is handed to one user at a time and never reaches free_fn while held; after
 * gcpool_destroy every object made reached free_fn exactly once (no loss), and
 * the pool reused objects across threads instead of making new ones (no leak).
 * Under the simulated source and Boehm, with the lock pin and with rseq.
 * Last, many threads on one CPU with no cycles: the pool makes no more
 * objects than were ever out of it at once, plus one. */
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

#include "tests/internal.h"
#include "tests/ledger.h"

struct world {
    gcpool_t *pool;
    struct ledger ledger;
    long iterations; /* per thread */
    _Atomic int stop_cycles;
    _Atomic long gets;
    unsigned cycle_sleep_us;
};

static long scale(long n)
{
    /* GCPOOL_TEST_N divides the work (valgrind runs with a small one). */
    const char *s = getenv("GCPOOL_TEST_N");
    long div = s && atol(s) > 0 ? atol(s) : 1;
    return n / div > 0 ? n / div : 1;
}

static void *worker(void *arg)
{
    struct world *w = arg;
    struct object *held[4];
    long gets = 0;
    for (long i = 0; i < w->iterations; i++) {
        int n = 1 + (int)(i % 4);
        for (int k = 0; k < n; k++)
            held[k] = ledger_take(gcpool_get(w->pool));
        gets += n;
        if (i % 16 == 0)
            sched_yield(); /* let the other threads in while holding objects */
        for (int k = 0; k < n; k++) {
            ledger_give(held[k]);
            gcpool_put(w->pool, held[k]);
        }
    }
    atomic_fetch_add(&w->gets, gets);
    return NULL;
}

static void *cycler(void *arg)
{
    struct world *w = arg;
    while (!atomic_load(&w->stop_cycles)) {
        test_cycle();
        usleep(w->cycle_sleep_us);
    }
    return NULL;
}

static void start(struct world *w, const struct test_mode *mode, long max_gets, pthread_t *cyc)
{
    ledger_init(&w->ledger, max_gets + 16, mode->boehm); /* at worst every get calls new_fn */
    /* Collections stop every thread: fewer of them under Boehm, where there
     * are thousands of threads to stop. */
    w->cycle_sleep_us = w->ledger.boehm ? 2000 : 200;
    gcpool_options_t o = {.new_fn = ledger_make, .free_fn = ledger_release, .arg = &w->ledger,
                          .name = "threads"};
    w->pool = gcpool_create(&o);
    ck_assert_ptr_nonnull(w->pool);
    ck_assert_int_eq(test_thread_start(cyc, cycler, w), 0);
}

/* Stops the cycler, destroys the pool, checks conservation and reuse. */
static void finish(struct world *w, pthread_t cyc, const char *what, long threads)
{
    atomic_store(&w->stop_cycles, 1);
    test_thread_join(cyc);
    gcpool_stats_t s;
    gcpool_read_stats(w->pool, &s);
    uint64_t cycles = gcpool_cycles();
    gcpool_destroy(w->pool);

    long made = ledger_settle(&w->ledger);
    long gets = atomic_load(&w->gets);
    ck_assert_uint_eq(s.gets, (uint64_t)gets);
    ck_assert_uint_eq(s.news, (uint64_t)made);
    /* Threads exiting must not take the pool's objects with them: most gets
     * reuse an object that another, maybe long gone, thread put. */
    ck_assert_msg(made * 4 <= gets, "%ld objects made for %ld gets: the pool does not reuse", made,
                  gets);
    printf("threads %s %s/%s: %ld threads, %ld gets, %ld objects made, %" PRIu64 " cycles, %" PRIu64
           " steals, %" PRIu64 " victim hits\n",
           what, w->ledger.boehm ? "boehm" : "sim", gcp_pin_name(), threads, gets, made, cycles,
           s.hit_steal, s.hit_victim);
}

/* Waves of short-lived threads: each wave starts, works and exits before the
 * next; objects outlive the threads that put them. */
START_TEST(test_threads_that_exit)
{
    const struct test_mode *mode = TEST_VARIANT(test_modes);
    if (!test_use_mode(mode))
        return;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int per_wave = (int)(2 * cores), waves = (int)scale(100);
    struct world w = {.iterations = scale(200)};
    pthread_t cyc, t[per_wave];
    start(&w, mode, (long)waves * per_wave * w.iterations * 4, &cyc);
    for (int v = 0; v < waves; v++) {
        for (int k = 0; k < per_wave; k++)
            ck_assert_int_eq(test_thread_start(&t[k], worker, &w), 0);
        for (int k = 0; k < per_wave; k++)
            test_thread_join(t[k]);
    }
    finish(&w, cyc, "that exit", (long)waves * per_wave);
}
END_TEST

/* Thousands of threads started at once, then all joined; three times. */
START_TEST(test_threads_in_bursts)
{
    const struct test_mode *mode = TEST_VARIANT(test_modes);
    if (!test_use_mode(mode))
        return;
    int burst = (int)scale(2000), bursts = 3;
    struct world w = {.iterations = 10};
    pthread_t cyc, *t = calloc((size_t)burst, sizeof *t);
    start(&w, mode, (long)bursts * burst * w.iterations * 4, &cyc);
    for (int b = 0; b < bursts; b++) {
        int started = 0;
        for (; started < burst; started++)
            ck_assert_int_eq(test_thread_start(&t[started], worker, &w), 0);
        for (int k = 0; k < started; k++)
            test_thread_join(t[k]);
    }
    finish(&w, cyc, "in bursts", (long)bursts * burst);
    free(t);
}
END_TEST

/* 64 threads for every CPU, all working at once. */
START_TEST(test_threads_64_per_cpu)
{
    const struct test_mode *mode = TEST_VARIANT(test_modes);
    if (!test_use_mode(mode))
        return;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int n = (int)(64 * cores);
    struct world w = {.iterations = scale(1000)};
    pthread_t cyc, *t = calloc((size_t)n, sizeof *t);
    start(&w, mode, (long)n * w.iterations * 4, &cyc);
    for (int k = 0; k < n; k++)
        ck_assert_int_eq(test_thread_start(&t[k], worker, &w), 0);
    for (int k = 0; k < n; k++)
        test_thread_join(t[k]);
    finish(&w, cyc, "64 per CPU", n);
    free(t);
}
END_TEST

/* ---- many threads on ONE CPU, no cycles -------------------------------------
 * Nothing steals there and nothing drops, so a pool whose callers never have
 * more than PEAK objects out of it at once (held, or inside a get or a put)
 * makes at most PEAK + 1 (README, "How many objects a pool makes").  Once, a
 * pop preempted between its commit and the clear of its slot made every push
 * that met the slot link a new ring, until the chain's table was full of
 * empty rings and puts dropped what did not fit: two million new_fn calls in
 * three seconds, for 16 objects out at most.  To meet such windows often, a
 * signaller (no pool user: it may run on any CPU) interrupts the workers at
 * arbitrary instructions, and the handler yields the CPU to another worker. */
struct one_cpu {
    gcpool_t *pool;
    long iterations;  /* per worker, unless time runs out first */
    double deadline;  /* CLOCK_MONOTONIC seconds */
    pthread_t workers[8];
    _Atomic long out, peak, made, freed, signals;
    _Atomic int workers_done, signals_over, bad_get;
};

static void *one_cpu_make(void *arg)
{
    struct one_cpu *w = arg;
    atomic_fetch_add_explicit(&w->made, 1, memory_order_relaxed);
    void *obj = malloc(64);
    ck_assert_ptr_nonnull(obj);
    return obj;
}

static void one_cpu_free(void *obj, void *arg)
{
    struct one_cpu *w = arg;
    atomic_fetch_add_explicit(&w->freed, 1, memory_order_relaxed);
    free(obj);
}

static void *one_cpu_worker(void *arg)
{
    struct one_cpu *w = arg;
    long peak = 0;
    for (long i = 0; i < w->iterations; i++) {
        /* Counted out before the gets and back in after the puts: never fewer
         * than are really out. */
        long out = atomic_fetch_add_explicit(&w->out, 2, memory_order_relaxed) + 2;
        peak = out > peak ? out : peak;
        void *a = gcpool_get(w->pool), *b = gcpool_get(w->pool);
        if (!a || !b || a == b) /* not ck_assert: Check writes a pipe at each */
            atomic_store(&w->bad_get, 1);
        gcpool_put(w->pool, a);
        gcpool_put(w->pool, b);
        atomic_fetch_sub_explicit(&w->out, 2, memory_order_relaxed);
        /* The CPU may be shared with the whole machine: a time limit keeps
         * the test short.  It only shortens the run; what is checked holds at
         * every instant. */
        if (i % 4096 == 4095 && test_seconds() > w->deadline)
            break;
    }
    /* The most any fetch_add returned is the most ever counted out. */
    long seen = atomic_load(&w->peak);
    while (peak > seen && !atomic_compare_exchange_weak(&w->peak, &seen, peak))
        ;
    atomic_fetch_add(&w->workers_done, 1);
    while (!atomic_load(&w->signals_over)) /* the signaller may still name us */
        usleep(100);
    return NULL;
}

static void yield_on_signal(int sig)
{
    (void)sig;
    sched_yield(); /* a worker interrupted anywhere lets another one run */
}

static void *one_cpu_signaller(void *arg)
{
    struct one_cpu *w = arg;
    int n = (int)(sizeof w->workers / sizeof w->workers[0]);
    for (unsigned k = 0; atomic_load(&w->workers_done) < n; k++) {
        pthread_kill(w->workers[k % (unsigned)n], SIGUSR1);
        atomic_fetch_add_explicit(&w->signals, 1, memory_order_relaxed);
        if (k % 4 == 3)
            usleep(10);
    }
    atomic_store(&w->signals_over, 1);
    return NULL;
}

/* Each pin (test_pins); the simulated source, no cycles. */
START_TEST(test_threads_on_one_cpu)
{
    if (!test_use_source(0) || !test_use_pin(TEST_VARIANT(test_pins)->rseq))
        return;
    struct one_cpu w = {.iterations = scale(5000000)};
    int n = (int)(sizeof w.workers / sizeof w.workers[0]);
    gcpool_options_t o = {.new_fn = one_cpu_make, .free_fn = one_cpu_free, .arg = &w,
                          .name = "one-cpu"};
    w.pool = gcpool_create(&o);
    ck_assert_ptr_nonnull(w.pool);
    struct sigaction sa = {.sa_handler = yield_on_signal, .sa_flags = SA_RESTART};
    ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);
    pthread_t signaller;
    pthread_attr_t anywhere;
    cpu_set_t all;
    ck_assert_int_eq(sched_getaffinity(0, sizeof all, &all), 0);
    pthread_attr_init(&anywhere);
    pthread_attr_setaffinity_np(&anywhere, sizeof all, &all);
    int cpu = test_pin_to_one_cpu(); /* the workers inherit it */
    w.deadline = test_seconds() + 2;
    for (int k = 0; k < n; k++)
        ck_assert_int_eq(pthread_create(&w.workers[k], NULL, one_cpu_worker, &w), 0);
    ck_assert_int_eq(pthread_create(&signaller, &anywhere, one_cpu_signaller, &w), 0);
    pthread_attr_destroy(&anywhere);
    pthread_join(signaller, NULL);
    for (int k = 0; k < n; k++)
        pthread_join(w.workers[k], NULL);

    gcpool_stats_t s;
    gcpool_read_stats(w.pool, &s);
    long made = atomic_load(&w.made), peak = atomic_load(&w.peak);
    printf("threads on one CPU (%d) sim/%s: %d threads, %" PRIu64 " gets, %ld signals, %ld objects "
           "made, %ld out at most, %" PRIu64 " dropped\n",
           cpu, gcp_pin_name(), n, s.gets, atomic_load(&w.signals), made, peak, s.dropped);
    fflush(stdout); /* before an assertion ends the process */
    ck_assert_msg(!atomic_load(&w.bad_get), "a get returned NULL, or one object twice");
    ck_assert_uint_eq(s.dropped, 0);
    ck_assert_msg(made <= peak + 1, "%ld objects made, for %ld out at most", made, peak);
    gcpool_destroy(w.pool);
    ck_assert_int_eq(atomic_load(&w.freed), made); /* each once, at the destroy */
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("threads");
    TCase *tc = test_tcase(s, "threads", 600);
    test_add_variants(tc, test_threads_that_exit, test_modes);
    test_add_variants(tc, test_threads_in_bursts, test_modes);
    test_add_variants(tc, test_threads_64_per_cpu, test_modes);
    test_add_variants(tc, test_threads_on_one_cpu, test_pins);
    return s;
}

TEST_MAIN(make_suite)
