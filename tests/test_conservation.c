/* Conservation: many more threads than cores get and put objects made by new_fn
 * while another thread runs cycles all along.  Every object is handed to one
 * user at a time, never reaches free_fn while someone holds it, and after
 * gcpool_destroy every object made has reached free_fn exactly once.
 * Run under the simulated source (malloc'd objects) and under Boehm (real
 * collections as the cycles), with 4x and 16x more threads than cores.  The
 * trim variant has the cycling thread also gcpool_trim the pool over and
 * over; once the workers are done, one more trim leaves nothing cached: every
 * object made has reached free_fn exactly once before gcpool_destroy. */
#include <stdatomic.h>
#include <inttypes.h>
#include <stdint.h>
#include <unistd.h>

#include "tests/internal.h"
#include "tests/ledger.h"

struct world {
    gcpool_t *pool;
    struct ledger ledger;
    long iterations;
    bool trim;                 /* the cycler trims too */
    _Atomic long trims;
    _Atomic int stop_cycles;
    pthread_t *workers;
    int nworkers;
    _Atomic int workers_done;  /* workers that finished their iterations */
    _Atomic int signals_over;  /* workers may exit: nobody signals them any more */
};

static void *worker(void *arg)
{
    struct world *w = arg;
    struct object *held[4];
    for (long i = 0; i < w->iterations; i++) {
        int n = 1 + (int)(i % 4); /* hold up to four at once: private, shared, steals */
        for (int k = 0; k < n; k++)
            held[k] = ledger_take(gcpool_get(w->pool));
        if (i % 64 == 0 && !w->workers)
            sched_yield(); /* invite preemption mid-stream (signals do it otherwise) */
        for (int k = 0; k < n; k++) {
            ledger_give(held[k]);
            gcpool_put(w->pool, held[k]);
        }
    }
    /* Stay alive while the signaller may still name this thread. */
    atomic_fetch_add(&w->workers_done, 1);
    while (w->workers && !atomic_load(&w->signals_over))
        usleep(100);
    return NULL;
}

static void *cycler(void *arg)
{
    struct world *w = arg;
    for (long i = 0; !atomic_load(&w->stop_cycles); i++) {
        if (w->trim) {
            ck_assert_int_eq(gcpool_trim(w->pool), 0);
            atomic_fetch_add(&w->trims, 1);
            if (i % 4) { /* mostly trims, so that they meet gets and puts often */
                usleep(50);
                continue;
            }
        }
        test_cycle();
        usleep(200);
    }
    return NULL;
}

static void on_signal(int sig)
{
    (void)sig; /* arriving inside a sequence is the point */
}

/* Sends signals to the workers until they are done. */
static void *signaller(void *arg)
{
    struct world *w = arg;
    while (atomic_load(&w->workers_done) < w->nworkers) {
        for (int i = 0; i < w->nworkers; i++)
            pthread_kill(w->workers[i], SIGUSR1);
        usleep(20);
    }
    atomic_store(&w->signals_over, 1);
    return NULL;
}

/* After a trim with no user left: nothing cached, no object in use, and every
 * object made dropped, exactly once. */
static void check_all_dropped(struct world *w)
{
    long made = atomic_load(&w->ledger.nmade);
    for (long i = 0; i < made; i++) {
        struct object *o = w->ledger.made[i];
        ck_assert_int_eq(atomic_load(&o->users), 0);
        ck_assert_msg(atomic_load(&o->freed) == 1, "object %ld reached free_fn %d times after the last trim",
                      i, atomic_load(&o->freed));
    }
}

static void conserve(const struct test_mode *mode, int threads_per_core, bool signals, bool trim)
{
    int boehm = mode->boehm;
    if (!test_use_mode(mode))
        return;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int nthreads = (int)(cores * threads_per_core);
    /* With signals, one thread per core: a signal then mostly finds its thread
     * running, often inside a sequence. */
    struct world w = {.iterations = (signals ? 100000 : 20000) / threads_per_core, .trim = trim};
    ledger_init(&w.ledger, (long)nthreads * w.iterations * 4 + 16, boehm);
    gcpool_options_t o = {.new_fn = ledger_make, .free_fn = ledger_release, .arg = &w.ledger,
                          .name = "conserve"};
    w.pool = gcpool_create(&o);
    ck_assert_ptr_nonnull(w.pool);

    pthread_t cyc, sig, *t = calloc((size_t)nthreads, sizeof *t);
    w.workers = signals ? t : NULL;
    w.nworkers = nthreads;
    uint64_t restarts = gcp_pin_restarts();
    if (signals) {
        struct sigaction sa = {.sa_handler = on_signal, .sa_flags = SA_RESTART};
        sigaction(SIGUSR1, &sa, NULL);
    }
    ck_assert_int_eq(test_thread_start(&cyc, cycler, &w), 0);
    for (int i = 0; i < nthreads; i++)
        ck_assert_int_eq(test_thread_start(&t[i], worker, &w), 0);
    if (signals)
        ck_assert_int_eq(pthread_create(&sig, NULL, signaller, &w), 0);
    for (int i = 0; i < nthreads; i++)
        test_thread_join(t[i]);
    if (signals)
        pthread_join(sig, NULL);
    atomic_store(&w.stop_cycles, 1);
    test_thread_join(cyc);
    restarts = gcp_pin_restarts() - restarts;
    if (signals && strcmp(gcp_pin_name(), "rseq") == 0)
        ck_assert_msg(restarts > 0, "signals inside sequences should have restarted some");

    uint64_t cycles = gcpool_cycles();
    gcpool_stats_t s;
    if (trim) {
        ck_assert_int_eq(gcpool_trim(w.pool), 0);
        ck_assert_uint_eq(gcpool_cycles(), cycles); /* a trim is no cycle */
        check_all_dropped(&w);
        gcpool_read_stats(w.pool, &s);
        ck_assert_uint_eq(s.dropped, s.news); /* trims' drops count in dropped */
        ck_assert_int_gt(atomic_load(&w.trims), 0);
    }
    gcpool_read_stats(w.pool, &s);
    gcpool_destroy(w.pool);

    long made = ledger_settle(&w.ledger);
    ck_assert_uint_eq((uint64_t)made, s.news);
    ck_assert_uint_eq(s.gets, s.hit_private + s.hit_shared + s.hit_steal + s.hit_victim + s.miss);
    ck_assert_uint_gt(cycles, 0);
    printf("conservation %s/%s x%d%s%s: %ld trims, %d threads, %ld objects made, %" PRIu64 " cycles, %" PRIu64
           " victim hits, %" PRIu64 " steals, %" PRIu64 " sequences restarted\n",
           boehm ? "boehm" : "sim", gcp_pin_name(), threads_per_core, signals ? " with signals" : "",
           trim ? " with trims" : "", atomic_load(&w.trims), nthreads, made, cycles, s.hit_victim, s.hit_steal, restarts);
    free(t);
}

START_TEST(test_conservation_4x) { conserve(TEST_VARIANT(test_modes), 4, false, false); }
END_TEST

START_TEST(test_conservation_16x) { conserve(TEST_VARIANT(test_modes), 16, false, false); }
END_TEST

START_TEST(test_conservation_signals) { conserve(TEST_VARIANT(test_modes), 1, true, false); }
END_TEST

START_TEST(test_conservation_trim) { conserve(TEST_VARIANT(test_modes), 4, false, true); }
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("conservation");
    TCase *tc = test_tcase(s, "conservation", 600);
    test_add_variants(tc, test_conservation_4x, test_modes);
    test_add_variants(tc, test_conservation_16x, test_modes);
    test_add_variants(tc, test_conservation_signals, test_modes);
    test_add_variants(tc, test_conservation_trim, test_modes);
    return s;
}

TEST_MAIN(make_suite)
