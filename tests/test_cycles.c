/* The cycle history (gcpool_read_cycles, the JSON report's recent_cycles):
 * exact records for scripted cycles on one pinned thread, the ring's wrap at
 * GCPOOL_CYCLE_HISTORY, each cause, bad input, and readers racing a cycling
 * thread (never a torn record; TSan watches the seqlock). */
#include <errno.h>
#include <stdatomic.h>

#include "tests/internal.h"

static int objs[80];
static _Atomic int freed;

static void free_obj(void *obj, void *arg)
{
    (void)obj;
    (void)arg;
    atomic_fetch_add(&freed, 1);
}

static void *make(void *arg)
{
    (void)arg;
    return &objs[79];
}

static gcpool_cycle_t newest(void)
{
    gcpool_cycle_t c[1];
    ck_assert_int_eq(gcpool_read_cycles(c, 1), 1);
    return c[0];
}

START_TEST(test_explicit_records)
{
    test_setenv("GCPOOL_GC", "sim");
    test_pin_to_one_cpu();
    gcpool_cycle_t c[GCPOOL_CYCLE_HISTORY];
    ck_assert_int_eq(gcpool_read_cycles(c, GCPOOL_CYCLE_HISTORY), 0); /* none yet */
    gcpool_options_t o = {.free_fn = free_obj, .name = "history"};
    gcpool_t *p = gcpool_create(&o);
    for (int i = 0; i < 5; i++)
        gcpool_put(p, &objs[i]);
    gcpool_collect(); /* 1: five to the victim */
    ck_assert_ptr_nonnull(gcpool_get(p));
    ck_assert_ptr_nonnull(gcpool_get(p)); /* two victim hits */
    gcpool_collect();                     /* 2: the other three dropped */
    ck_assert_int_eq(atomic_load(&freed), 3);
    gcpool_put(p, &objs[10]);
    gcpool_collect(); /* 3: one moved */
    ck_assert_int_eq(gcpool_read_cycles(c, GCPOOL_CYCLE_HISTORY), 3);
    ck_assert_uint_eq(gcpool_cycles(), 3);
    static const uint64_t moved[] = {5, 0, 1}, dropped[] = {0, 3, 0}, hits[] = {2, 0, 0};
    for (int i = 0; i < 3; i++) {
        ck_assert_uint_eq(c[i].number, (uint64_t)i + 1);
        ck_assert_uint_eq(c[i].cause, GCPOOL_CYCLE_EXPLICIT);
        ck_assert_uint_eq(c[i].moved_to_victim, moved[i]);
        ck_assert_uint_eq(c[i].dropped, dropped[i]);
        ck_assert_uint_eq(c[i].victim_hits, hits[i]);
        ck_assert_uint_gt(c[i].start_ns, 0);
        if (i)
            ck_assert_uint_ge(c[i].start_ns, c[i - 1].start_ns + c[i - 1].duration_ns);
    }
    /* The newest counts so far: a victim hit now is its. */
    ck_assert_ptr_nonnull(gcpool_get(p));
    ck_assert_uint_eq(newest().victim_hits, 1);
    /* n smaller than stored: the newest n, oldest first. */
    ck_assert_int_eq(gcpool_read_cycles(c, 2), 2);
    ck_assert_uint_eq(c[0].number, 2);
    ck_assert_uint_eq(c[1].number, 3);
    ck_assert_int_eq(gcpool_read_cycles(c, 0), 0);
    gcpool_destroy(p);
}
END_TEST

START_TEST(test_ring_wraps)
{
    test_setenv("GCPOOL_GC", "sim");
    gcpool_t *p = gcpool_create(NULL);
    gcpool_put(p, &objs[0]);
    const int runs = GCPOOL_CYCLE_HISTORY + 6;
    for (int i = 0; i < runs; i++)
        gcpool_collect();
    gcpool_cycle_t c[GCPOOL_CYCLE_HISTORY + 8];
    /* n larger than kept: GCPOOL_CYCLE_HISTORY, the newest. */
    ck_assert_int_eq(gcpool_read_cycles(c, GCPOOL_CYCLE_HISTORY + 8), GCPOOL_CYCLE_HISTORY);
    for (int i = 0; i < GCPOOL_CYCLE_HISTORY; i++)
        ck_assert_uint_eq(c[i].number, (uint64_t)(runs - GCPOOL_CYCLE_HISTORY + 1 + i));
    ck_assert_uint_eq(c[GCPOOL_CYCLE_HISTORY - 1].number, gcpool_cycles());
    ck_assert_int_eq(gcpool_read_cycles(c, 10), 10);
    ck_assert_uint_eq(c[0].number, (uint64_t)runs - 9);
    ck_assert_uint_eq(c[9].number, (uint64_t)runs);
    gcpool_destroy(p);
}
END_TEST

START_TEST(test_bad_input)
{
    errno = 0;
    ck_assert_int_eq(gcpool_read_cycles(NULL, 4), -1);
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_int_eq(gcpool_read_cycles(NULL, 0), -1);
    ck_assert_int_eq(errno, EINVAL);
}
END_TEST

/* GCPOOL_SIM_NEW=2: the simulator runs a cycle after every second new_fn. */
START_TEST(test_sim_cause)
{
    test_setenv("GCPOOL_GC", "sim");
    test_setenv("GCPOOL_SIM_NEW", "2");
    gcpool_options_t o = {.new_fn = make};
    gcpool_t *p = gcpool_create(&o);
    for (int i = 0; i < 4; i++)
        gcpool_get(p); /* misses */
    test_setenv("GCPOOL_SIM_NEW", NULL);
    ck_assert_uint_ge(gcpool_cycles(), 1);
    ck_assert_uint_eq(newest().cause, GCPOOL_CYCLE_SIM);
    gcpool_collect();
    ck_assert_uint_eq(newest().cause, GCPOOL_CYCLE_EXPLICIT);
    gcpool_destroy(p);
}
END_TEST

START_TEST(test_collector_cause)
{
    if (!test_use_source(1))
        return;
    gcpool_t *p = gcpool_create(NULL);
    ck_assert_int_eq(gcp_glue_source(), GCP_SOURCE_BOEHM);
    gcpool_put(p, GC_MALLOC(16));
    GC_gcollect();
    gcpool_cycle_t c = newest();
    ck_assert_uint_eq(c.cause, GCPOOL_CYCLE_COLLECTOR);
    ck_assert_uint_eq(c.number, gcpool_cycles());
    ck_assert_uint_eq(c.moved_to_victim, 1);
    gcpool_destroy(p);
}
END_TEST

START_TEST(test_json_report)
{
    test_setenv("GCPOOL_GC", "sim");
    gcpool_t *p = gcpool_create(NULL);
    gcpool_put(p, &objs[0]);
    gcpool_collect(); /* 1: moved */
    gcpool_collect(); /* 2: dropped */
    gcpool_put(p, &objs[1]);
    gcpool_collect();                     /* 3: moved */
    ck_assert_ptr_nonnull(gcpool_get(p)); /* and taken back: the newest's hit so far */
    FILE *f = tmpfile();
    gcpool_stats_print(f, GCPOOL_STATS_JSON);
    long len = ftell(f);
    rewind(f);
    char *doc = calloc(1, (size_t)len + 1);
    ck_assert_uint_eq(fread(doc, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    const char *at = strstr(doc, "\"recent_cycles\": [");
    ck_assert_msg(at, "no recent_cycles in %s", doc);
    ck_assert_msg(strstr(at, "{\"number\": 1, \"cause\": \"explicit\", \"start_ns\": "), "%s", doc);
    ck_assert_msg(strstr(at, "\"moved_to_victim\": 1, \"dropped\": 0, \"victim_hits\": 0}"), "%s", doc);
    ck_assert_msg(strstr(at, "{\"number\": 2, \"cause\": \"explicit\""), "%s", doc);
    ck_assert_msg(strstr(at, "\"moved_to_victim\": 0, \"dropped\": 1, \"victim_hits\": 0}"), "%s", doc);
    ck_assert_msg(strstr(at, "{\"number\": 3, \"cause\": \"explicit\""), "%s", doc);
    ck_assert_msg(strstr(at, "\"moved_to_victim\": 1, \"dropped\": 0, \"victim_hits\": 1}\n  ]}"), "%s",
                  doc);
    free(doc);
    gcpool_destroy(p);
}
END_TEST

/* Readers race a thread that cycles: every record read is whole (its
 * fields agree with one another) and the numbers run on without a gap. */
static _Atomic bool stop;

static void *cycler(void *arg)
{
    gcpool_t *p = arg;
    while (!atomic_load(&stop)) {
        gcpool_put(p, &objs[0]);
        gcpool_put(p, &objs[1]);
        gcpool_collect();
    }
    return NULL;
}

START_TEST(test_readers_never_torn)
{
    test_setenv("GCPOOL_GC", "sim");
    gcpool_t *p = gcpool_create(NULL);
    pthread_t t;
    ck_assert_int_eq(test_thread_start(&t, cycler, p), 0);
    gcpool_cycle_t c[GCPOOL_CYCLE_HISTORY];
    int reads = 0;
    for (double end = test_seconds() + 1.0; test_seconds() < end || reads < 100; reads++) {
        int n = gcpool_read_cycles(c, GCPOOL_CYCLE_HISTORY);
        ck_assert_int_ge(n, 0);
        for (int i = 0; i < n; i++) {
            ck_assert_uint_eq(c[i].cause, GCPOOL_CYCLE_EXPLICIT);
            ck_assert_uint_le(c[i].moved_to_victim, 2);
            if (i) {
                ck_assert_uint_eq(c[i].number, c[i - 1].number + 1);
                ck_assert_uint_ge(c[i].start_ns, c[i - 1].start_ns + c[i - 1].duration_ns);
            }
        }
    }
    atomic_store(&stop, true);
    test_thread_join(t);
    gcpool_destroy(p);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("cycles");
    TCase *tc = test_tcase(s, "history", 60);
    tcase_add_test(tc, test_explicit_records);
    tcase_add_test(tc, test_ring_wraps);
    tcase_add_test(tc, test_bad_input);
    tcase_add_test(tc, test_sim_cause);
    tcase_add_test(tc, test_collector_cause);
    tcase_add_test(tc, test_json_report);
    tcase_add_test(tc, test_readers_never_torn);
    return s;
}

TEST_MAIN(make_suite)
