/* A Boehm program that initialises the collector late, or never (bdwgc then
 * starts itself at the first GC_MALLOC), must never get memory the collector
 * freed back from a pool: 64 GC_MALLOC_ATOMIC buffers cached, a collection,
 * 2000 allocations of the same size (which reuse whatever that collection
 * freed), then every buffer the pool hands back must be as it was put.  Each
 * case runs in its own process (Check forks), since the cycle source and the
 * collector's state are the process's. */
#include <stdatomic.h>

#include "tests/internal.h"

#define BUFS 64
#define BUF_SIZE (16 * 1024)
#define ALLOCATIONS 2000

static _Atomic int news;

static void *new_buffer(void *arg)
{
    (void)arg;
    atomic_fetch_add(&news, 1);
    return GC_MALLOC_ATOMIC(BUF_SIZE);
}

/* The variants of the loop tests: without and with checked mode. */
static const struct checked_variant {
    const char *name;
    bool on; /* GCPOOL_DEBUG=1 */
} checked_variants[] = {{"unchecked", false}, {"checked", true}};

/* Checked mode without its random drops, so that every put is cached. */
static void use_checked_mode(bool on)
{
    test_setenv("GCPOOL_DEBUG", on ? "1" : "0");
    gcp_debug_set_drop_rate(0);
}

static bool boehm_runs_here(void)
{
    if (!TEST_BOEHM_OK) {
        printf("SKIP: Boehm and the sanitizers do not mix\n");
        return false;
    }
    const char *no = getenv("GCPOOL_TEST_NO_BOEHM");
    if (no && *no && strcmp(no, "0") != 0) {
        printf("SKIP: GCPOOL_TEST_NO_BOEHM is set\n");
        return false;
    }
    return true;
}

/* Gets BUFS buffers from the pool (new ones: it is empty), or allocates them
 * with GC_MALLOC_ATOMIC (from_pool false), fills them and puts them back; from
 * a frame of its own, so that no pointer to them stays on the test's stack. */
static __attribute__((noinline)) void cache_buffers(gcpool_t *p, bool from_pool)
{
    char *bufs[BUFS];
    for (int i = 0; i < BUFS; i++) {
        bufs[i] = from_pool ? gcpool_get(p) : GC_MALLOC_ATOMIC(BUF_SIZE);
        ck_assert_ptr_nonnull(bufs[i]);
        memset(bufs[i], 'A', BUF_SIZE);
    }
    for (int i = 0; i < BUFS; i++)
        gcpool_put(p, bufs[i]);
    memset(bufs, 0, sizeof bufs);
}

static __attribute__((noinline)) void allocate_over(void)
{
    for (int i = 0; i < ALLOCATIONS; i++)
        memset(GC_MALLOC_ATOMIC(BUF_SIZE), 'B', BUF_SIZE);
}

static __attribute__((noinline)) void scrub_stack(void)
{
    volatile char junk[16384];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = 0;
}

struct outcome {
    int cached;      /* gets the pool served from its cache (new_fn not called) */
    int overwritten; /* of those, buffers no longer as they were put */
};

/* One collection, then allocations that reuse what it freed, then BUFS gets:
 * a buffer the collection freed under the pool comes back overwritten. */
static struct outcome collect_and_get(gcpool_t *p)
{
    scrub_stack();
    GC_gcollect();
    GC_disable(); /* no other collection: what the pool kept is in its victim */
    allocate_over();
    struct outcome o = {0, 0};
    for (int i = 0; i < BUFS; i++) {
        int before = atomic_load(&news);
        char *b = gcpool_get(p);
        if (!b || atomic_load(&news) != before)
            continue;
        o.cached++;
        for (size_t k = 0; k < BUF_SIZE; k++) {
            if (b[k] != 'A') {
                o.overwritten++;
                break;
            }
        }
    }
    GC_enable();
    return o;
}

enum init_when { INIT_NEVER, INIT_AFTER_CREATE };

/* The program of the issue: a scratch-buffer pool whose new_fn allocates from
 * the collector, created before the program initialised it (or never does). */
static void late_program(enum init_when when, bool checked)
{
    if (!boehm_runs_here())
        return;
    test_setenv("GCPOOL_GC", NULL); /* auto */
    use_checked_mode(checked);
    test_pin_to_one_cpu(); /* every object in one local, so the gets reach them all */
    ck_assert(!GC_is_init_called());
    gcpool_options_t opts = {.new_fn = new_buffer, .name = "scratch"};
    gcpool_t *p = gcpool_create(&opts);
    if (when == INIT_AFTER_CREATE)
        GC_INIT();
    cache_buffers(p, true);
    ck_assert_int_eq(atomic_load(&news), BUFS);
    uint64_t cycles = gcpool_cycles();
    struct outcome o = collect_and_get(p);
    ck_assert_msg(o.overwritten == 0, "%d of the %d cached buffers were freed under the pool",
                  o.overwritten, o.cached);
    /* Storage the collector sees: the victim kept them all. */
    ck_assert_int_eq(o.cached, BUFS);
    /* The collector turned up before the pool's first use: cycles follow it. */
    ck_assert_int_eq(gcp_glue_source(), GCP_SOURCE_BOEHM);
    ck_assert_uint_eq(gcpool_cycles(), cycles + 1);
    gcpool_destroy(p);
}

START_TEST(no_init) { late_program(INIT_NEVER, false); }
END_TEST

START_TEST(no_init_checked) { late_program(INIT_NEVER, true); }
END_TEST

START_TEST(init_after_create) { late_program(INIT_AFTER_CREATE, false); }
END_TEST

START_TEST(init_after_create_checked) { late_program(INIT_AFTER_CREATE, true); }
END_TEST

/* GCPOOL_GC=sim asked for in a Boehm program: cycles come from gcpool_collect,
 * but a pool whose objects are the collector's still keeps them alive. */
START_TEST(sim_chosen_in_boehm_program)
{
    if (!boehm_runs_here())
        return;
    GC_INIT();
    test_setenv("GCPOOL_GC", "sim");
    use_checked_mode(TEST_VARIANT(checked_variants)->on);
    test_pin_to_one_cpu();
    gcpool_options_t opts = {.new_fn = new_buffer, .name = "scratch"};
    gcpool_t *p = gcpool_create(&opts);
    cache_buffers(p, true);
    ck_assert_int_eq(gcp_glue_source(), GCP_SOURCE_SIM);
    struct outcome o = collect_and_get(p);
    ck_assert_msg(o.overwritten == 0, "%d of the %d cached buffers were freed under the pool",
                  o.overwritten, o.cached);
    ck_assert_int_eq(o.cached, BUFS); /* no cycle ran: all still cached */
    gcpool_destroy(p);
}
END_TEST

/* A pool set up for malloc'd objects before the collector existed, then given
 * the collector's: its storage is invisible to the collector, so it stops
 * caching, and says so once, naming the fix. */
static gcpool_t *mixed_pool;

static void put_collector_buffers(void)
{
    cache_buffers(mixed_pool, false);
}

START_TEST(collector_objects_in_malloc_pool)
{
    if (!boehm_runs_here())
        return;
    test_setenv("GCPOOL_GC", NULL);
    use_checked_mode(TEST_VARIANT(checked_variants)->on);
    test_pin_to_one_cpu();
    mixed_pool = gcpool_create(NULL);
    void *m = malloc(64);
    gcpool_put(mixed_pool, m); /* the first object: malloc'd, before any GC_INIT */
    ck_assert_ptr_eq(gcpool_get(mixed_pool), m);
    free(m);
    GC_INIT();
    char warning[512];
    snprintf(warning, sizeof warning, "%s", test_capture_stderr(put_collector_buffers));
    struct outcome o = collect_and_get(mixed_pool);
    ck_assert_msg(o.overwritten == 0, "%d of the %d buffers handed back were freed under the pool",
                  o.overwritten, o.cached);
    ck_assert_msg(strstr(warning, "GC_INIT()") && strstr(warning, "GCPOOL_GC=boehm"),
                  "no warning naming the fix: \"%s\"", warning);
    ck_assert_msg(strchr(warning, '\n') == warning + strlen(warning) - 1, "not one line: \"%s\"",
                  warning);
    const char *err;
    /* It caches nothing any more, and warns no more. */
    err = test_capture_stderr(put_collector_buffers);
    ck_assert_str_eq(err, "");
    ck_assert_ptr_null(gcpool_get(mixed_pool));
    gcpool_stats_t s;
    ck_assert_int_eq(gcpool_read_stats(mixed_pool, &s), 0);
    ck_assert_uint_eq(s.gets, s.hit_private + s.hit_shared + s.hit_steal + s.hit_victim + s.miss);
    ck_assert_uint_eq(s.puts, 1 + 2 * BUFS);
    gcpool_destroy(mixed_pool);
}
END_TEST

/* A program that never uses the collector never starts it: malloc'd objects,
 * cycles, checked mode, destroy. */
static void free_obj(void *obj, void *arg)
{
    (void)arg;
    free(obj);
}

static void *new_obj(void *arg)
{
    (void)arg;
    return malloc(64);
}

START_TEST(malloc_program_never_starts_collector)
{
    test_setenv("GCPOOL_GC", NULL);
    use_checked_mode(TEST_VARIANT(checked_variants)->on);
    gcpool_options_t opts = {.new_fn = new_obj, .free_fn = free_obj, .size = 64};
    gcpool_t *p = gcpool_create(&opts);
    void *objs[100];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 100; i++)
            objs[i] = gcpool_get(p);
        for (int i = 0; i < 100; i++)
            gcpool_put(p, objs[i]);
        gcpool_collect();
    }
    gcpool_destroy(p);
    ck_assert_int_eq(gcp_glue_source(), GCP_SOURCE_SIM);
    ck_assert(!GC_is_init_called());
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("late_init");
    TCase *tc = test_tcase(s, "late GC_INIT", 60);
    tcase_add_test(tc, no_init);
    tcase_add_test(tc, no_init_checked);
    tcase_add_test(tc, init_after_create);
    tcase_add_test(tc, init_after_create_checked);
    test_add_variants(tc, sim_chosen_in_boehm_program, checked_variants);
    test_add_variants(tc, collector_objects_in_malloc_pool, checked_variants);
    test_add_variants(tc, malloc_program_never_starts_collector, checked_variants);
    return s;
}

TEST_MAIN(make_suite)
