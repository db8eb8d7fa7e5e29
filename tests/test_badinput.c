/* Bad input gets a clear answer and loses nothing: NULL where a pool is
 * expected fails with EINVAL; allocation failure at every internal allocation
 * a scenario reaches gives NULL/ENOMEM or success, never a lost or doubled
 * object; a new_fn returning NULL makes get return NULL and nothing else. */
#include <errno.h>
#include <stdint.h>

#include "tests/internal.h"

static int token = 7;

START_TEST(test_null_pool)
{
    test_setenv("GCPOOL_GC", "sim");
    errno = 0;
    ck_assert_ptr_null(gcpool_get(NULL));
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    gcpool_put(NULL, &token);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(token, 7); /* untouched */
    errno = 0;
    gcpool_destroy(NULL);
    ck_assert_int_eq(errno, EINVAL);
    gcpool_stats_t s;
    errno = 0;
    ck_assert_int_eq(gcpool_read_stats(NULL, &s), -1);
    ck_assert_int_eq(errno, EINVAL);
    gcpool_t *p = gcpool_create(NULL);
    errno = 0;
    ck_assert_int_eq(gcpool_read_stats(p, NULL), -1);
    ck_assert_int_eq(errno, EINVAL);
    /* A NULL object is ignored: not counted, not cached. */
    gcpool_put(p, NULL);
    ck_assert_int_eq(gcpool_read_stats(p, &s), 0);
    ck_assert_uint_eq(s.puts, 0);
    ck_assert_ptr_null(gcpool_get(p));
    gcpool_destroy(p);
}
END_TEST

static void *new_null(void *arg)
{
    ++*(int *)arg;
    return NULL;
}

START_TEST(test_new_fn_returns_null)
{
    test_setenv("GCPOOL_GC", "sim");
    int calls = 0;
    gcpool_options_t o = {.new_fn = new_null, .arg = &calls};
    gcpool_t *p = gcpool_create(&o);
    ck_assert_ptr_null(gcpool_get(p));
    ck_assert_ptr_null(gcpool_get(p));
    ck_assert_int_eq(calls, 2);
    gcpool_stats_t s;
    gcpool_read_stats(p, &s);
    ck_assert_uint_eq(s.miss, 2);
    ck_assert_uint_eq(s.news, 2);
    ck_assert_uint_eq(s.dropped, 0);
    gcpool_destroy(p);
}
END_TEST

/* ---- allocation failure at the N-th internal allocation, for every N ------- */

enum { OBJECTS = 300 };

struct ledger {
    int freed[OBJECTS]; /* free_fn calls per object */
    int out[OBJECTS];   /* 1 while the scenario holds it */
};

static int slot_of(void *obj, struct ledger *l)
{
    (void)l;
    return (int)((uintptr_t)obj >> 4) - 1;
}

static void *obj_of(int i)
{
    return (void *)(((uintptr_t)i + 1) << 4);
}

static void ledger_free(void *obj, void *arg)
{
    struct ledger *l = arg;
    int i = slot_of(obj, l);
    ck_assert(i >= 0 && i < OBJECTS);
    ck_assert_msg(!l->out[i], "object %d dropped while held", i);
    l->freed[i]++;
}

/* Create, put everything (rings grow), get half, cycle, put back, destroy.
 * Returns false when create failed (then nothing else happened). */
static bool scenario(struct ledger *l)
{
    gcpool_options_t o = {.free_fn = ledger_free, .arg = l, .name = "alloc-failure"};
    errno = 0;
    gcpool_t *p = gcpool_create(&o);
    if (!p) {
        ck_assert_int_eq(errno, ENOMEM);
        return false;
    }
    for (int i = 0; i < OBJECTS; i++)
        gcpool_put(p, obj_of(i));
    for (int k = 0; k < OBJECTS / 2; k++) {
        void *obj = gcpool_get(p);
        if (!obj)
            break;
        int i = slot_of(obj, l);
        ck_assert_msg(!l->out[i] && !l->freed[i], "object %d handed out twice or after free", i);
        l->out[i] = 1;
    }
    gcpool_collect();
    for (int i = 0; i < OBJECTS; i++) {
        if (l->out[i]) {
            l->out[i] = 0;
            gcpool_put(p, obj_of(i));
        }
    }
    gcpool_collect();
    gcpool_destroy(p);
    return true;
}

START_TEST(test_allocation_failure_every_n)
{
    test_setenv("GCPOOL_GC", "sim");
    test_pin_to_one_cpu();
    /* Count the allocations a clean run makes. */
    struct ledger *l = calloc(1, sizeof *l);
    gcp_mem_fail_at(0);
    ck_assert(scenario(l));
    long total = gcp_mem_fail_at(0);
    ck_assert_int_gt(total, 3);
    for (long n = 1; n <= total + 1; n++) {
        memset(l, 0, sizeof *l);
        gcp_mem_fail_at(n);
        bool created = scenario(l);
        gcp_mem_fail_at(0);
        /* Every object put reached free_fn exactly once. */
        for (int i = 0; i < OBJECTS && created; i++)
            ck_assert_msg(l->freed[i] == 1, "failure at allocation %ld: object %d freed %d times",
                          n, i, l->freed[i]);
    }
    free(l);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("badinput");
    TCase *tc = test_tcase(s, "badinput", 0);
    tcase_add_test(tc, test_null_pool);
    tcase_add_test(tc, test_new_fn_returns_null);
    tcase_add_test(tc, test_allocation_failure_every_n);
    return s;
}

TEST_MAIN(make_suite)
