/* The simulated collector: cycles from gcpool_collect and from the policies
 * GCPOOL_SIM_NEW and GCPOOL_SIM_INTERVAL_MS, checked on slow paths only, with
 * dropped objects handed to free_fn exactly once. */
#include <stdint.h>
#include <unistd.h>

#include "tests/internal.h"

static void *make(void *arg)
{
    return malloc(16 + 0 * (uintptr_t)arg);
}

static void count_free(void *obj, void *arg)
{
    ++*(int *)arg;
    free(obj);
}

START_TEST(test_sim_new_policy_is_deterministic)
{
    test_setenv("GCPOOL_GC", "sim");
    test_setenv("GCPOOL_SIM_NEW", "3");
    int freed = 0;
    gcpool_options_t o = {.new_fn = make, .free_fn = count_free, .arg = &freed};
    gcpool_t *p = gcpool_create(&o);
    ck_assert_int_eq(gcp_glue_source(), GCP_SOURCE_SIM);
    uint64_t base = gcpool_cycles();
    /* Each get misses and calls new_fn: a cycle at the 3rd, 6th and 9th call. */
    for (int i = 1; i <= 10; i++) {
        void *obj = gcpool_get(p);
        ck_assert_ptr_nonnull(obj);
        ck_assert_uint_eq(gcpool_cycles() - base, (uint64_t)(i / 3));
        free(obj);
    }
    /* Hits call no new_fn and run no cycle. */
    test_pin_to_one_cpu();
    void *obj = gcpool_get(p);
    uint64_t before = gcpool_cycles();
    for (int i = 0; i < 100; i++) {
        gcpool_put(p, obj);
        obj = gcpool_get(p);
    }
    ck_assert_uint_eq(gcpool_cycles(), before);
    gcpool_put(p, obj);
    gcpool_destroy(p);
    ck_assert_int_eq(freed, 1);
}
END_TEST

START_TEST(test_sim_interval_policy)
{
    test_setenv("GCPOOL_GC", "sim");
    test_setenv("GCPOOL_SIM_INTERVAL_MS", "50");
    gcpool_t *p = gcpool_create(NULL);
    ck_assert_ptr_null(gcpool_get(p)); /* a miss: the clock starts */
    uint64_t base = gcpool_cycles();
    ck_assert_ptr_null(gcpool_get(p)); /* well under 50 ms later: no cycle */
    ck_assert_uint_eq(gcpool_cycles(), base);
    usleep(60 * 1000);
    ck_assert_ptr_null(gcpool_get(p)); /* over 50 ms: this slow path runs one */
    ck_assert_uint_eq(gcpool_cycles(), base + 1);
    ck_assert_ptr_null(gcpool_get(p));
    ck_assert_uint_eq(gcpool_cycles(), base + 1);
    gcpool_destroy(p);
}
END_TEST

START_TEST(test_sim_policies_off_by_default)
{
    test_setenv("GCPOOL_GC", "sim");
    gcpool_options_t o = {.new_fn = make, .free_fn = count_free};
    int freed = 0;
    o.arg = &freed;
    gcpool_t *p = gcpool_create(&o);
    for (int i = 0; i < 1000; i++)
        free(gcpool_get(p));
    ck_assert_uint_eq(gcpool_cycles(), 0);
    gcpool_destroy(p);
}
END_TEST

START_TEST(test_sim_two_cycles_free_everything_once)
{
    test_setenv("GCPOOL_GC", "sim");
    int freed = 0;
    gcpool_options_t o = {.new_fn = make, .free_fn = count_free, .arg = &freed};
    gcpool_t *p = gcpool_create(&o);
    void *objs[500];
    for (int i = 0; i < 500; i++)
        objs[i] = gcpool_get(p);
    for (int i = 0; i < 500; i++)
        gcpool_put(p, objs[i]);
    gcpool_collect(); /* all to the victim: nothing freed yet */
    ck_assert_int_eq(freed, 0);
    gcpool_collect(); /* the victim dropped */
    ck_assert_int_eq(freed, 500);
    gcpool_collect();
    ck_assert_int_eq(freed, 500);
    gcpool_stats_t s;
    gcpool_read_stats(p, &s);
    ck_assert_uint_eq(s.dropped, 500);
    gcpool_destroy(p);
    ck_assert_int_eq(freed, 500);
}
END_TEST

START_TEST(test_destroy_hands_everything_to_free_fn)
{
    test_setenv("GCPOOL_GC", "sim");
    int freed = 0;
    gcpool_options_t o = {.new_fn = make, .free_fn = count_free, .arg = &freed};
    gcpool_t *p = gcpool_create(&o);
    for (int i = 0; i < 300; i++)
        gcpool_put(p, malloc(8));
    gcpool_collect(); /* some in the victim... */
    for (int i = 0; i < 200; i++)
        gcpool_put(p, malloc(8)); /* ...some in the locals */
    gcpool_destroy(p);
    ck_assert_int_eq(freed, 500);
}
END_TEST

START_TEST(test_sim_without_free_fn_forgets)
{
    test_setenv("GCPOOL_GC", "sim");
    static int objs[10];
    gcpool_t *p = gcpool_create(NULL);
    for (int i = 0; i < 10; i++)
        gcpool_put(p, &objs[i]);
    gcpool_collect();
    gcpool_collect();
    ck_assert_ptr_null(gcpool_get(p));
    gcpool_stats_t s;
    gcpool_read_stats(p, &s);
    ck_assert_uint_eq(s.dropped, 10);
    gcpool_destroy(p);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("sim");
    TCase *tc = test_tcase(s, "sim", 0);
    tcase_add_test(tc, test_sim_new_policy_is_deterministic);
    tcase_add_test(tc, test_sim_interval_policy);
    tcase_add_test(tc, test_sim_policies_off_by_default);
    tcase_add_test(tc, test_sim_two_cycles_free_everything_once);
    tcase_add_test(tc, test_destroy_hands_everything_to_free_fn);
    tcase_add_test(tc, test_sim_without_free_fn_forgets);
    return s;
}

TEST_MAIN(make_suite)
