/* The retention bound (max_cached, GCPOOL_MAX_CACHED, max_cached_bytes): exact
 * on one thread on one CPU; never over bound + slack (one private slot per
 * local, gcpool.h) with 16 threads on 2 cores; every object dropped over it
 * seen by free_fn once, and none lost. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "gcpool/buf.h"
#include "tests/internal.h"

static _Atomic long freed, made;

static void *make(void *arg)
{
    (void)arg;
    atomic_fetch_add(&made, 1);
    return malloc(64);
}

static void count_free(void *obj, void *arg)
{
    (void)arg;
    atomic_fetch_add(&freed, 1);
    free(obj);
}

static gcpool_t *bounded(size_t max_cached)
{
    gcpool_options_t o = {.new_fn = make, .free_fn = count_free, .max_cached = max_cached, .name = "bounded"};
    gcpool_t *p = gcpool_create(&o);
    ck_assert_ptr_nonnull(p);
    return p;
}

/* One thread on one CPU: exactly the bound is kept, for bounds that are and
 * are not a ring's size, and the rest is dropped and counted. */
START_TEST(test_exact_on_one_thread)
{
    static const size_t bounds[] = {1, 2, 9, 10, 37, 100};
    test_setenv("GCPOOL_GC", "sim");
    test_setenv("GCPOOL_SIM_GOGC", "off");
    test_pin_to_one_cpu();
    size_t bound = bounds[_i];
    atomic_store(&freed, 0);
    gcpool_t *p = bounded(bound);
    enum { N = 300 };
    for (int i = 0; i < N; i++)
        gcpool_put(p, malloc(64));
    gcpool_stats_t s;
    gcpool_read_stats(p, &s);
    ck_assert_uint_eq(s.cached, bound);
    ck_assert_uint_eq(s.dropped_bound, N - bound);
    ck_assert_uint_eq(s.dropped, N - bound);
    ck_assert_int_eq(atomic_load(&freed), (long)(N - bound));
    /* What is kept comes back, then the pool misses. */
    void *got[N];
    for (size_t i = 0; i < bound; i++)
        ck_assert_ptr_nonnull(got[i] = gcpool_get(p));
    gcpool_read_stats(p, &s);
    ck_assert_uint_eq(s.miss, 0);
    ck_assert_uint_eq(s.cached, 0);
    /* Given back, the same budget takes them again: nothing dropped. */
    for (size_t i = 0; i < bound; i++)
        gcpool_put(p, got[i]);
    gcpool_read_stats(p, &s);
    ck_assert_uint_eq(s.cached, bound);
    ck_assert_uint_eq(s.dropped_bound, N - bound);
    gcpool_destroy(p);
    ck_assert_int_eq(atomic_load(&freed), N);
}
END_TEST

/* GCPOOL_MAX_CACHED is the bound of pools whose options give none. */
START_TEST(test_env_default)
{
    test_setenv("GCPOOL_GC", "sim");
    test_setenv("GCPOOL_MAX_CACHED", "5");
    test_pin_to_one_cpu();
    gcpool_t *p = bounded(0);
    for (int i = 0; i < 20; i++)
        gcpool_put(p, malloc(64));
    gcpool_stats_t s;
    gcpool_read_stats(p, &s);
    ck_assert_uint_eq(s.cached, 5);
    ck_assert_uint_eq(s.dropped_bound, 15);
    gcpool_destroy(p);
    test_setenv("GCPOOL_MAX_CACHED", NULL);
}
END_TEST

/* 16 threads on 2 cores, no cycles: a sampler sees the pool at many points,
 * never over bound + one private slot per local; at the end every object is
 * out, cached, or seen by free_fn, once. */
enum { THREADS = 16, HELD = 12, ROUNDS = 4000, BOUND = 20 };
static gcpool_t *shared_pool;
static _Atomic bool stop;

static void *churn(void *arg)
{
    (void)arg;
    void *held[HELD];
    for (int r = 0; r < ROUNDS; r++) {
        int n = 1 + r % HELD;
        for (int i = 0; i < n; i++)
            held[i] = gcpool_get(shared_pool);
        for (int i = 0; i < n; i++)
            gcpool_put(shared_pool, held[i]);
    }
    return NULL;
}

static void *sample(void *arg)
{
    uint64_t *worst = arg;
    while (!atomic_load(&stop)) {
        /* cur and its count, as gcpool_read_stats' cached reads them. */
        struct gcp_locals *cur = gcp_locals_real(atomic_load(&shared_pool->cur));
        uint64_t n = cur ? gcp_pool_count(cur) : 0;
        if (n > *worst)
            *worst = n;
    }
    return NULL;
}

START_TEST(test_slack_with_16_threads)
{
    test_setenv("GCPOOL_GC", "sim");
    test_setenv("GCPOOL_SIM_GOGC", "off");
    atomic_store(&freed, 0);
    atomic_store(&made, 0);
    atomic_store(&stop, false);
    shared_pool = bounded(BOUND);
    pthread_t t[THREADS], s;
    uint64_t worst = 0;
    ck_assert_int_eq(pthread_create(&s, NULL, sample, &worst), 0);
    for (int i = 0; i < THREADS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, churn, NULL), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    atomic_store(&stop, true);
    pthread_join(s, NULL);
    unsigned slack = gcp_topology()->nlocals;
    gcpool_stats_t st;
    gcpool_read_stats(shared_pool, &st);
    ck_assert_msg(worst <= BOUND + slack, "held %llu, bound %d + slack %u", (unsigned long long)worst,
                  BOUND, slack);
    ck_assert_uint_le(st.cached, BOUND + slack);
    ck_assert_uint_gt(st.dropped_bound, 0); /* 16 threads holding 12 each: the bound was met */
    /* Conservation: every object made is cached or was freed, once. */
    ck_assert_int_eq((long)st.cached + (long)st.in_victim + atomic_load(&freed), atomic_load(&made));
    gcpool_destroy(shared_pool);
    ck_assert_int_eq(atomic_load(&freed), atomic_load(&made));
}
END_TEST

/* Buffer pools: max_cached_bytes per class, as buf.h says. */
START_TEST(test_bufpool_bytes)
{
    test_setenv("GCPOOL_GC", "sim");
    test_pin_to_one_cpu();
    gcpool_bufpool_options_t o = {.min_size = 1024, .max_size = 4096, .max_cached_bytes = 8192};
    gcpool_bufpool_t *bp = gcpool_bufpool_create(&o);
    ck_assert_ptr_nonnull(bp);
    enum { N = 10 };
    void *b1[N], *b4[N];
    size_t c1[N], c4[N];
    for (int i = 0; i < N; i++) {
        b1[i] = gcpool_buf_get(bp, 1024, &c1[i]);
        b4[i] = gcpool_buf_get(bp, 4096, &c4[i]);
    }
    for (int i = 0; i < N; i++) {
        gcpool_buf_put(bp, b1[i], c1[i]);
        gcpool_buf_put(bp, b4[i], c4[i]);
    }
    gcpool_bufpool_stats_t s;
    ck_assert_int_eq(gcpool_bufpool_read_stats(bp, &s), 0);
    /* 8192 bytes a class: 8 of 1 KiB (of 10 given), 2 of 4 KiB. */
    ck_assert_uint_eq(s.classes[0].dropped_bound, N - 8);
    ck_assert_uint_eq(s.classes[2].dropped_bound, N - 2);
    ck_assert_uint_eq(s.classes[0].bytes_cached, 8 * 1024);
    ck_assert_uint_eq(s.classes[2].bytes_cached, 2 * 4096);
    gcpool_bufpool_destroy(bp);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("bound");
    TCase *tc = test_tcase(s, "bound", 0);
    tcase_add_loop_test(tc, test_exact_on_one_thread, 0, 6);
    tcase_add_test(tc, test_env_default);
    tcase_add_test(tc, test_slack_with_16_threads);
    tcase_add_test(tc, test_bufpool_bytes);
    return s;
}

TEST_MAIN(make_suite)
