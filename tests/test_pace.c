/* The simulated collector's pacer (GCPOOL_SIM_GOGC, GCPOOL_SIM_MIN_HEAP) and
 * memory pressure (GCPOOL_PRESSURE_*, fed through files in tests/pressure),
 * with the cycles each pool counts by cause. */
#include <pthread.h>
#include <stdint.h>
#include <unistd.h>

#include "tests/internal.h"

struct kind {
    size_t size;
    int freed;
};

static void *make(void *arg)
{
    return malloc(((struct kind *)arg)->size);
}

static void count_free(void *obj, void *arg)
{
    ((struct kind *)arg)->freed++;
    free(obj);
}

static gcpool_t *pool_of(struct kind *k)
{
    gcpool_options_t o = {.new_fn = make, .free_fn = count_free, .arg = k, .size = k->size};
    gcpool_t *p = gcpool_create(&o);
    ck_assert_ptr_nonnull(p);
    return p;
}

static gcpool_stats_t stats(gcpool_t *p)
{
    gcpool_stats_t s;
    ck_assert_int_eq(gcpool_read_stats(p, &s), 0);
    return s;
}

/* One thread: every cycle comes after exactly the bytes the rule says.  Objects
 * of 1 KiB, held (live), GOGC 200, a minimum of 64 KiB: the first goal is the
 * minimum (nothing live), 64 objects; each later one is twice the live heap
 * after the cycle, i.e. twice the objects made so far. */
START_TEST(test_pacer_is_exact)
{
    test_setenv("GCPOOL_GC", "sim");
    test_setenv("GCPOOL_SIM_GOGC", "200");
    test_setenv("GCPOOL_SIM_MIN_HEAP", "65536");
    struct kind k = {.size = 1024};
    gcpool_t *p = pool_of(&k);
    ck_assert_int_eq(gcp_glue_source(), GCP_SOURCE_SIM);
    enum { N = 576 };
    static void *held[N];
    uint64_t base = gcpool_cycles();
    /* The cycle runs in the get that makes the object reaching the goal:
     * the 64th (64 KiB), 192nd (64 + 2 x 64), 576th (192 + 2 x 192). */
    for (int i = 1; i <= N; i++) {
        held[i - 1] = gcpool_get(p);
        ck_assert_ptr_nonnull(held[i - 1]);
        uint64_t want = (uint64_t)(i >= 64) + (i >= 192) + (i >= 576);
        ck_assert_msg(gcpool_cycles() - base == want, "after %d gets: %llu cycles, want %llu", i,
                      (unsigned long long)(gcpool_cycles() - base), (unsigned long long)want);
    }
    gcpool_stats_t s = stats(p);
    ck_assert_uint_eq(s.cycles_pacer, 3);
    ck_assert_uint_eq(s.cycles_collector + s.cycles_pressure + s.cycles_explicit, 0);
    gcpool_cycle_t newest;
    ck_assert_int_eq(gcpool_read_cycles(&newest, 1), 1);
    ck_assert_uint_eq(newest.cause, GCPOOL_CYCLE_PACER); /* the history names it too */
    ck_assert_uint_eq(gcp_glue_heap_live(), (uint64_t)N * 1024);
    /* Given back and dropped over two explicit cycles: the heap is empty. */
    for (int i = 0; i < N; i++)
        gcpool_put(p, held[i]);
    gcpool_collect();
    gcpool_collect();
    ck_assert_int_eq(k.freed, N);
    ck_assert_uint_eq(gcp_glue_heap_live(), 0);
    ck_assert_uint_eq(stats(p).cycles_explicit, 2);
    gcpool_destroy(p);
}
END_TEST

/* The pacer off (0 or off): no cycle however much is made. */
START_TEST(test_pacer_off)
{
    test_setenv("GCPOOL_GC", "sim");
    test_setenv("GCPOOL_SIM_GOGC", _i ? "off" : "0");
    test_setenv("GCPOOL_SIM_MIN_HEAP", "1024");
    struct kind k = {.size = 1024};
    gcpool_t *p = pool_of(&k);
    uint64_t base = gcpool_cycles();
    for (int i = 0; i < 100; i++)
        free(gcpool_get(p));
    ck_assert_uint_eq(gcpool_cycles(), base);
    gcpool_destroy(p);
}
END_TEST

/* Sizes unknown: the heap counts objects, against the same rule. */
START_TEST(test_pacer_counts_objects_of_unknown_size)
{
    test_setenv("GCPOOL_GC", "sim");
    test_setenv("GCPOOL_SIM_MIN_HEAP", "10");
    struct kind k = {.size = 16};
    gcpool_options_t o = {.new_fn = make, .free_fn = count_free, .arg = &k};
    gcpool_t *p = gcpool_create(&o);
    static void *held[30];
    uint64_t base = gcpool_cycles();
    /* Goals: 10 (the minimum), then 100 % of the 10 live: cycles at 10 and 20. */
    for (int i = 1; i <= 30; i++) {
        held[i - 1] = gcpool_get(p);
        ck_assert_uint_eq(gcpool_cycles() - base, (uint64_t)(i >= 10) + (i >= 20));
    }
    for (int i = 0; i < 30; i++)
        gcpool_put(p, held[i]);
    gcpool_destroy(p);
    ck_assert_int_eq(k.freed, 30);
}
END_TEST

/* No knobs at all: a burst of 10 000 objects of 1 KiB, all given back, then a
 * quiet phase of small gets (64 bytes, freed by the program, which the pacer
 * cannot see).  Cycles come on their own, and the burst's cache is dropped
 * within 2 cycles of the quiet phase: with the default 4 MiB minimum and
 * GOGC 100, under QUIET_BOUND small allocations (README, "pacing"). */
enum { BURST = 10000, QUIET_BOUND = 400000 };

START_TEST(test_burst_then_quiet_falls_back)
{
    test_setenv("GCPOOL_GC", "sim");
    test_pin_to_one_cpu();
    struct kind big = {.size = 1024}, small = {.size = 64};
    gcpool_t *pb = pool_of(&big), *ps = pool_of(&small);
    static void *held[BURST];
    uint64_t base = gcpool_cycles();
    for (int i = 0; i < BURST; i++)
        held[i] = gcpool_get(pb);
    uint64_t burst_cycles = gcpool_cycles() - base;
    ck_assert_uint_eq(burst_cycles, 2); /* at 4 MiB and 8 MiB made */
    for (int i = 0; i < BURST; i++)
        gcpool_put(pb, held[i]);
    ck_assert_int_eq(big.freed, 0);
    int first_cycle = 0, gone = 0;
    for (int i = 1; i <= QUIET_BOUND && !gone; i++) {
        free(gcpool_get(ps));
        if (!first_cycle && gcpool_cycles() - base > burst_cycles)
            first_cycle = i;
        if (big.freed == BURST)
            gone = i;
    }
    fprintf(stderr, "test_pace: burst of %d x 1 KiB: %llu cycles; quiet phase: first cycle after %d "
                    "small gets, the burst's cache dropped after %d (%llu cycles in all)\n",
            BURST, (unsigned long long)burst_cycles, first_cycle, gone,
            (unsigned long long)(gcpool_cycles() - base));
    ck_assert_int_gt(first_cycle, 0);
    ck_assert_int_gt(gone, 0);
    ck_assert_int_eq(big.freed, BURST);
    ck_assert_uint_ge(stats(pb).cycles_pacer, 4);
    gcpool_destroy(pb);
    gcpool_destroy(ps);
}
END_TEST

/* Threads making objects at once: the pacer's counters are shared atomics, and
 * cycles still come about where the rule says.  Each of 4 threads gets (and
 * frees itself, unseen) 8192 objects of 1 KiB: 32 MiB made, all live for the
 * pacer, so goals of 4, 4, 8 and 16 MiB: cycles at about 4, 8, 16 and 32 MiB
 * (a thread may read a goal a few objects stale; the first to see it due
 * claims it, so one cycle runs, not one a thread). */
static gcpool_t *shared_pool;

static void *maker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 8192; i++)
        free(gcpool_get(shared_pool));
    return NULL;
}

START_TEST(test_pacer_threads)
{
    test_setenv("GCPOOL_GC", "sim");
    struct kind k = {.size = 1024};
    shared_pool = pool_of(&k);
    pthread_t t[4];
    uint64_t base = gcpool_cycles();
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, maker, NULL), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    uint64_t n = gcpool_cycles() - base;
    ck_assert_msg(n >= 3 && n <= 5, "%llu cycles", (unsigned long long)n);
    ck_assert_uint_eq(stats(shared_pool).cycles_pacer, n);
    gcpool_destroy(shared_pool);
}
END_TEST

/* With GCPOOL_SIM_NEW too: one cycle serves both when both are due. */
START_TEST(test_pacer_with_sim_new)
{
    test_setenv("GCPOOL_GC", "sim");
    test_setenv("GCPOOL_SIM_NEW", "10");
    test_setenv("GCPOOL_SIM_MIN_HEAP", "10");
    struct kind k = {.size = 16};
    gcpool_options_t o = {.new_fn = make, .free_fn = count_free, .arg = &k};
    gcpool_t *p = gcpool_create(&o);
    static void *held[40];
    uint64_t base = gcpool_cycles();
    for (int i = 0; i < 40; i++)
        held[i] = gcpool_get(p);
    /* Each cycle restarts both counts.  At calls 10 and 20 both are due (the
     * pacer's goals: the minimum 10, then 100 % of 10 live): one cycle each,
     * the pacer's.  Then the goal is 20 and 30 (the live heap), and only
     * GCPOOL_SIM_NEW is due, at 30 and 40.  Four cycles, not six. */
    gcpool_stats_t s = stats(p);
    ck_assert_uint_eq(gcpool_cycles() - base, 4);
    ck_assert_uint_eq(s.cycles_pacer, 2);
    ck_assert_uint_eq(s.cycles_collector, 2);
    for (int i = 0; i < 40; i++)
        gcpool_put(p, held[i]);
    gcpool_destroy(p);
}
END_TEST

/* ---- memory pressure, fed through tests/pressure -------------------------- */

static void feed(const char *psi, const char *cgroup)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/pressure/%s", TEST_TOP_SRCDIR, psi);
    test_setenv("GCPOOL_PRESSURE_FILE", path);
    snprintf(path, sizeof path, "%s/tests/pressure/%s", TEST_TOP_SRCDIR, cgroup);
    test_setenv("GCPOOL_PRESSURE_CGROUP", path);
    test_setenv("GCPOOL_SIM_GOGC", "off");
}

static struct kind pk = {.size = 32};
static gcpool_t *pp, *empty;
static uint64_t cycles_before;

/* A pool caching one object, and an empty one whose gets miss (a slow path). */
static void setup_pools(void)
{
    if (!getenv("GCPOOL_GC"))
        test_setenv("GCPOOL_GC", "sim");
    pk.freed = 0;
    pp = pool_of(&pk);
    empty = gcpool_create(NULL);
    gcpool_put(pp, malloc(32));
    cycles_before = gcpool_cycles();
}

static void miss(void)
{
    ck_assert_ptr_null(gcpool_get(empty));
}

START_TEST(test_pressure_some)
{
    feed("some", "no-cgroup");
    setup_pools();
    miss(); /* the first look reads: pressure, one cycle */
    ck_assert_uint_eq(gcpool_cycles() - cycles_before, 1);
    miss(); /* read at most every 100 ms */
    ck_assert_uint_eq(gcpool_cycles() - cycles_before, 1);
    ck_assert_int_eq(pk.freed, 0); /* in the victim */
    usleep(120 * 1000);
    miss(); /* still pressure: the victim dropped at once */
    ck_assert_uint_eq(gcpool_cycles() - cycles_before, 2);
    ck_assert_int_eq(pk.freed, 1);
    ck_assert_uint_eq(stats(pp).cycles_pressure, 2);
    gcpool_cycle_t newest;
    ck_assert_int_eq(gcpool_read_cycles(&newest, 1), 1);
    ck_assert_uint_eq(newest.cause, GCPOOL_CYCLE_PRESSURE);
    gcpool_destroy(pp);
    gcpool_destroy(empty);
}
END_TEST

START_TEST(test_pressure_severe_drops_everything)
{
    feed(_i ? "calm" : "severe", _i ? "cgroup-severe" : "no-cgroup");
    setup_pools();
    miss();
    ck_assert_uint_eq(gcpool_cycles() - cycles_before, 2);
    ck_assert_int_eq(pk.freed, 1);
    gcpool_destroy(pp);
    gcpool_destroy(empty);
}
END_TEST

START_TEST(test_pressure_cgroup_high)
{
    feed("calm", "cgroup-high");
    setup_pools();
    miss();
    ck_assert_uint_eq(gcpool_cycles() - cycles_before, 1);
    ck_assert_int_eq(pk.freed, 0);
    gcpool_destroy(pp);
    gcpool_destroy(empty);
}
END_TEST

START_TEST(test_pressure_calm_or_missing_is_silent)
{
    feed(_i ? "no-such-file" : "calm", "no-cgroup");
    setup_pools();
    ck_assert_str_eq(test_capture_stderr(miss), "");
    usleep(120 * 1000);
    ck_assert_str_eq(test_capture_stderr(miss), "");
    ck_assert_uint_eq(gcpool_cycles(), cycles_before);
    gcpool_destroy(pp);
    gcpool_destroy(empty);
}
END_TEST

START_TEST(test_pressure_garbage_warns_once)
{
    feed(_i ? "calm" : "garbage", _i ? "cgroup-garbage" : "no-cgroup");
    setup_pools();
    const char *err = test_capture_stderr(miss);
    ck_assert_msg(strstr(err, "memory pressure") && strchr(err, '\n') == err + strlen(err) - 1,
                  "want one line, got \"%s\"", err);
    usleep(120 * 1000);
    ck_assert_str_eq(test_capture_stderr(miss), ""); /* off: never read again */
    ck_assert_uint_eq(gcpool_cycles(), cycles_before);
    gcpool_destroy(pp);
    gcpool_destroy(empty);
}
END_TEST

/* Under Boehm too: cycles beyond the collector's, counted as pressure's. */
START_TEST(test_pressure_under_boehm)
{
    if (!test_use_source(1))
        return;
    feed("severe", "no-cgroup");
    setup_pools();
    ck_assert_int_eq(gcp_glue_source(), GCP_SOURCE_BOEHM);
    uint64_t before = stats(pp).cycles_pressure;
    miss();
    ck_assert_uint_ge(gcpool_cycles() - cycles_before, 2);
    ck_assert_uint_eq(stats(pp).cycles_pressure - before, 2);
    ck_assert_int_eq(pk.freed, 1);
    gcpool_destroy(pp);
    gcpool_destroy(empty);
}
END_TEST

START_TEST(test_pressure_off)
{
    feed("severe", "cgroup-severe");
    test_setenv("GCPOOL_PRESSURE_MS", "0");
    setup_pools();
    miss();
    ck_assert_uint_eq(gcpool_cycles(), cycles_before);
    gcpool_destroy(pp);
    gcpool_destroy(empty);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("pace");
    TCase *tc = test_tcase(s, "pacer", 60);
    tcase_add_test(tc, test_pacer_is_exact);
    tcase_add_loop_test(tc, test_pacer_off, 0, 2);
    tcase_add_test(tc, test_pacer_counts_objects_of_unknown_size);
    tcase_add_test(tc, test_burst_then_quiet_falls_back);
    tcase_add_test(tc, test_pacer_threads);
    tcase_add_test(tc, test_pacer_with_sim_new);
    tc = test_tcase(s, "pressure", 0);
    tcase_add_test(tc, test_pressure_some);
    tcase_add_loop_test(tc, test_pressure_severe_drops_everything, 0, 2);
    tcase_add_test(tc, test_pressure_cgroup_high);
    tcase_add_loop_test(tc, test_pressure_calm_or_missing_is_silent, 0, 2);
    tcase_add_loop_test(tc, test_pressure_garbage_warns_once, 0, 2);
    tcase_add_test(tc, test_pressure_off);
    tcase_add_test(tc, test_pressure_under_boehm);
    return s;
}

TEST_MAIN(make_suite)
