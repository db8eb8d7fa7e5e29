/* Ports of Go's pool tests (TestPool, TestPoolNew, TestPoolGC, TestPoolRelease,
 * TestPoolStress), the loop ones under each of test_sources (the simulated
 * source, Boehm), plus what binding to Boehm promises: one cycle per
 * collection (every Kth with GCPOOL_CYCLE_EVERY), cached objects kept alive, the
 * program's own callback still called; and gcpool_trim. */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

#include "tests/internal.h"

static char a[] = "a", b[] = "b", c[] = "c";

START_TEST(test_pool)
{
    if (!test_use_source(TEST_VARIANT(test_sources)->boehm))
        return;
    gcpool_t *p = gcpool_create(NULL);
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_null(gcpool_get(p)); /* empty, no new_fn */
    test_pin_to_one_cpu(); /* put and get through one local */
    gcpool_put(p, a);
    gcpool_put(p, b);
    ck_assert_ptr_eq(gcpool_get(p), a); /* private first */
    ck_assert_ptr_eq(gcpool_get(p), b); /* then the shared head */
    ck_assert_ptr_null(gcpool_get(p));
    /* Enough objects to spill into the shared chain. */
    for (int i = 0; i < 100; i++)
        gcpool_put(p, c);
    /* After one cycle the victim cache keeps them... */
    test_cycle();
    ck_assert_ptr_eq(gcpool_get(p), c);
    /* ...a second cycle drops them. */
    test_cycle();
    ck_assert_ptr_null(gcpool_get(p));
    gcpool_stats_t s;
    ck_assert_int_eq(gcpool_read_stats(p, &s), 0);
    ck_assert_uint_eq(s.hit_private, 1);
    ck_assert_uint_eq(s.hit_shared, 1);
    ck_assert_uint_eq(s.hit_victim, 1);
    ck_assert_uint_eq(s.dropped, 99);
    ck_assert_uint_eq(s.gets, s.hit_private + s.hit_shared + s.hit_steal + s.hit_victim + s.miss);
    gcpool_destroy(p);
}
END_TEST

static void *count_new(void *arg)
{
    return (void *)(uintptr_t)++*(int *)arg;
}

START_TEST(test_pool_new)
{
    if (!test_use_source(TEST_VARIANT(test_sources)->boehm))
        return;
    int made = 0;
    gcpool_options_t o = {.new_fn = count_new, .arg = &made};
    gcpool_t *p = gcpool_create(&o);
    ck_assert_ptr_eq(gcpool_get(p), (void *)1);
    ck_assert_ptr_eq(gcpool_get(p), (void *)2);
    test_pin_to_one_cpu();
    gcpool_put(p, (void *)42);
    ck_assert_ptr_eq(gcpool_get(p), (void *)42);
    ck_assert_ptr_eq(gcpool_get(p), (void *)3);
    gcpool_stats_t s;
    gcpool_read_stats(p, &s);
    ck_assert_uint_eq(s.news, 3);
    ck_assert_uint_eq(s.miss, 3);
    gcpool_destroy(p);
}
END_TEST

/* ---- Boehm: objects reclaimed once dropped, kept while cached ---------------- */

static _Atomic int finalized;

static void on_finalize(void *obj, void *unused)
{
    (void)obj, (void)unused;
    atomic_fetch_add(&finalized, 1);
}

#define N_FIN 100

/* Puts N_FIN finalizable objects, from a separate frame so that no pointer to
 * them stays in this test's own stack slots. */
static __attribute__((noinline)) void put_finalizable(gcpool_t *p)
{
    for (int i = 0; i < N_FIN; i++) {
        void *v = GC_MALLOC(64);
        GC_REGISTER_FINALIZER(v, on_finalize, NULL, NULL, NULL);
        gcpool_put(p, v);
    }
}

static __attribute__((noinline)) void get_all(gcpool_t *p, int n)
{
    for (int i = 0; i < n; i++)
        ck_assert_ptr_nonnull(gcpool_get(p));
}

/* Clears a stretch of stack below us, where stale object pointers may linger.
 * A plain loop, not memset: with memset here the test passed even while
 * lib/locked.c copied its queue with memcpy, whose vector registers kept a
 * third of the objects alive (see copy_items there). */
static __attribute__((noinline)) void scrub_stack(void)
{
    volatile char junk[16384];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = 0;
}

static void test_release(bool drain)
{
    if (!test_use_source(1))
        return;
    gcpool_t *p = gcpool_create(NULL);
    test_pin_to_one_cpu(); /* get_all must reach every private slot used */
    for (int attempt = 0; attempt < 3; attempt++) {
        atomic_store(&finalized, 0);
        put_finalizable(p);
        if (drain)
            get_all(p, N_FIN);
        scrub_stack();
        int seen = 0;
        for (int i = 0; i < 5 && seen < N_FIN - 1; i++) {
            GC_gcollect();
            GC_invoke_finalizers();
            usleep(10000 * (unsigned)(i + 1));
            seen = atomic_load(&finalized);
        }
        /* As Go allows, one pointer may survive on the stack or in a register. */
        ck_assert_msg(seen >= N_FIN - 1, "only %d of %d objects reclaimed on attempt %d", seen,
                      N_FIN, attempt);
    }
    gcpool_destroy(p);
}

/* TestPoolGC: the pool keeps no pointer to what it handed out. */
START_TEST(test_pool_gc) { test_release(true); }
END_TEST

/* TestPoolRelease: objects left in the pool are reclaimed after two cycles. */
START_TEST(test_pool_release) { test_release(false); }
END_TEST

START_TEST(test_boehm_keeps_cached)
{
    if (!test_use_source(1))
        return;
    gcpool_t *p = gcpool_create(NULL);
    atomic_store(&finalized, 0);
    test_pin_to_one_cpu(); /* another CPU's private slot is not stealable */
    put_finalizable(p);
    scrub_stack();
    /* One collection: the objects are in the victim cache, still the pool's. */
    GC_gcollect();
    GC_invoke_finalizers();
    ck_assert_int_eq(atomic_load(&finalized), 0);
    get_all(p, N_FIN);
    gcpool_destroy(p);
}
END_TEST

static _Atomic int previous_calls;

static void previous_callback(GC_EventType e)
{
    if (e == GC_EVENT_START)
        atomic_fetch_add(&previous_calls, 1);
}

START_TEST(test_boehm_one_cycle_per_collection)
{
    if (!TEST_BOEHM_OK)
        return;
    GC_INIT();
    GC_set_on_collection_event(previous_callback); /* the program's own, installed first */
    test_setenv("GCPOOL_GC", NULL);                /* auto: Boehm, since it is initialised */
    gcpool_t *p = gcpool_create(NULL);
    ck_assert_int_eq(gcp_glue_source(), GCP_SOURCE_BOEHM);
    gcpool_put(p, a);
    uint64_t before = gcpool_cycles();
    for (int i = 1; i <= 5; i++) {
        GC_gcollect();
        ck_assert_uint_eq(gcpool_cycles(), before + (uint64_t)i);
    }
    ck_assert_int_eq(atomic_load(&previous_calls), 5);
    /* gcpool_collect runs a cycle without a collection. */
    gcpool_collect();
    ck_assert_uint_eq(gcpool_cycles(), before + 6);
    gcpool_destroy(p);
}
END_TEST

/* GCPOOL_CYCLE_EVERY=3: one cycle every third collection. */
START_TEST(test_boehm_cycle_every)
{
    if (!TEST_BOEHM_OK)
        return;
    GC_INIT();
    test_setenv("GCPOOL_GC", NULL);
    test_setenv("GCPOOL_CYCLE_EVERY", "3");
    gcpool_t *p = gcpool_create(NULL);
    ck_assert_int_eq(gcp_glue_source(), GCP_SOURCE_BOEHM);
    gcpool_put(p, a);
    uint64_t before = gcpool_cycles();
    for (int i = 0; i < 6; i++)
        GC_gcollect();
    ck_assert_uint_eq(gcpool_cycles(), before + 2); /* any 6 in a row hold two thirds */
    gcpool_destroy(p);
}
END_TEST

/* gcpool_trim drops the locals and the victim at once, counts no cycle, and
 * refuses a trim from the pool's own free_fn. */
static gcpool_t *trim_pool;
static int trim_freed, trim_inner_rc, trim_inner_errno;

static void trim_free(void *obj, void *arg)
{
    (void)obj, (void)arg;
    if (trim_freed++ == 0) {
        errno = 0;
        trim_inner_rc = gcpool_trim(trim_pool);
        trim_inner_errno = errno;
    }
}

START_TEST(test_pool_trim)
{
    if (!test_use_source(TEST_VARIANT(test_sources)->boehm))
        return;
    errno = 0;
    ck_assert_int_eq(gcpool_trim(NULL), -1);
    ck_assert_int_eq(errno, EINVAL);
    static char objs[15];
    gcpool_options_t o = {.free_fn = trim_free};
    trim_pool = gcpool_create(&o);
    ck_assert_int_eq(gcpool_trim(trim_pool), 0); /* never used: nothing to do */
    test_pin_to_one_cpu();
    for (int i = 0; i < 10; i++)
        gcpool_put(trim_pool, &objs[i]);
    test_cycle(); /* the ten to the victim */
    for (int i = 10; i < 15; i++)
        gcpool_put(trim_pool, &objs[i]);
    ck_assert_int_eq(trim_freed, 0);
    uint64_t cycles = gcpool_cycles();
    ck_assert_int_eq(gcpool_trim(trim_pool), 0);
    ck_assert_int_eq(trim_freed, 15);
    ck_assert_int_eq(trim_inner_rc, -1);
    ck_assert_int_eq(trim_inner_errno, EDEADLK);
    ck_assert_uint_eq(gcpool_cycles(), cycles);
    ck_assert_ptr_null(gcpool_get(trim_pool));
    gcpool_stats_t s;
    ck_assert_int_eq(gcpool_read_stats(trim_pool, &s), 0);
    ck_assert_uint_eq(s.dropped, 15);
    ck_assert_uint_eq(s.hit_victim, 0);
    gcpool_put(trim_pool, &objs[0]); /* still a working pool */
    ck_assert_ptr_eq(gcpool_get(trim_pool), &objs[0]);
    gcpool_destroy(trim_pool);
    ck_assert_int_eq(trim_freed, 15);
}
END_TEST

/* A thread created with plain pthread_create and registered with the
 * collector by hand: its cached objects survive collections like anyone's. */
static void *registered_worker(void *arg)
{
    gcpool_t *p = arg;
    struct GC_stack_base sb;
    ck_assert_int_eq(GC_get_stack_base(&sb), GC_SUCCESS);
    GC_register_my_thread(&sb);
    test_pin_to_one_cpu(); /* another CPU's private slot is not stealable */
    put_finalizable(p);
    scrub_stack();
    GC_gcollect(); /* one cycle: in the victim, still alive */
    GC_invoke_finalizers();
    ck_assert_int_eq(atomic_load(&finalized), 0);
    get_all(p, N_FIN);
    GC_unregister_my_thread();
    return NULL;
}

START_TEST(test_boehm_registered_thread)
{
    if (!test_use_source(1))
        return;
    GC_allow_register_threads();
    gcpool_t *p = gcpool_create(NULL);
    atomic_store(&finalized, 0);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, registered_worker, p), 0);
    pthread_join(t, NULL);
    gcpool_destroy(p);
}
END_TEST

/* Under Boehm free_fn cannot run inside the collector, so what a cycle drops
 * is handed over at the next slow path: a miss, or a put that grows a ring.
 * A producer that only puts must get there too: 100 objects cached, two
 * collections (the second drops them), then puts that grow the chain and no
 * get at all: the 100 reach free_fn during the puts. */
enum { PRODUCER_CACHED = 100, PRODUCER_PUTS = 4000 };
static _Atomic int producer_freed[PRODUCER_CACHED + PRODUCER_PUTS];

static void count_producer_free(void *obj, void *arg)
{
    (void)arg;
    atomic_fetch_add(&producer_freed[*(long *)obj], 1);
}

/* One try; false when a collection the test did not ask for ran meanwhile
 * (an allocation of the pool's own storage can start one): it moves objects
 * early, and a drop array left undrained by then comes back into use. */
static bool producer_scenario(void)
{
    enum { CACHED = PRODUCER_CACHED, PUTS = PRODUCER_PUTS };
    gcpool_options_t o = {.free_fn = count_producer_free, .name = "producer"};
    gcpool_t *p = gcpool_create(&o);
    void **objs = GC_MALLOC((CACHED + PUTS) * sizeof *objs); /* keeps them all alive */
    for (long i = 0; i < CACHED + PUTS; i++) {
        objs[i] = GC_MALLOC(sizeof(long));
        *(long *)objs[i] = i;
        atomic_store(&producer_freed[i], 0);
    }
    GC_gcollect(); /* Boehm's allocation count starts afresh: no collection of its own soon */
    uint64_t cycles = gcpool_cycles();
    for (int i = 0; i < CACHED; i++)
        gcpool_put(p, objs[i]);
    GC_gcollect(); /* to the victim */
    GC_gcollect(); /* dropped: free_fn must wait for a slow path */
    for (int i = 0; i < CACHED; i++)
        ck_assert_int_eq(atomic_load(&producer_freed[i]), 0);
    for (int i = CACHED; i < CACHED + PUTS; i++)
        gcpool_put(p, objs[i]);
    bool clean = gcpool_cycles() == cycles + 2;
    int freed = 0;
    for (int i = 0; i < CACHED; i++)
        freed += atomic_load(&producer_freed[i]) == 1;
    gcpool_stats_t s;
    gcpool_read_stats(p, &s);
    gcpool_destroy(p);
    if (!clean)
        return false;
    ck_assert_msg(freed == CACHED, "%d of the %d dropped objects reached free_fn during %d puts",
                  freed, CACHED, PUTS);
    ck_assert_uint_eq(s.dropped, CACHED);
    ck_assert_uint_eq(s.gets, 0);
    for (int i = 0; i < CACHED + PUTS; i++)
        ck_assert_int_eq(atomic_load(&producer_freed[i]), 1); /* destroy: the rest, once */
    return true;
}

START_TEST(test_boehm_producer_hands_drops)
{
    if (!test_use_source(1))
        return;
    test_pin_to_one_cpu(); /* every put into one local, whose chain grows */
    gcpool_t *probe = gcpool_create(NULL);
    gcpool_destroy(probe);
    if (gcp_glue_source() != GCP_SOURCE_BOEHM) {
        printf("SKIP: this process already chose the simulated source; Boehm case skipped\n");
        return;
    }
    int tries = 0;
    while (!producer_scenario())
        ck_assert_msg(++tries < 5, "a collection of its own ran during each of 5 tries");
}
END_TEST

START_TEST(test_sim_when_boehm_not_initialised)
{
    test_setenv("GCPOOL_GC", "auto");
    gcpool_t *p = gcpool_create(NULL);
    ck_assert_int_eq(gcp_glue_source(), GCP_SOURCE_SIM);
    gcpool_destroy(p);
}
END_TEST

/* ---- TestPoolStress ---------------------------------------------------------- */

static int zero;

struct stress {
    gcpool_t *pool;
    long n;
};

static void *stress_worker(void *arg)
{
    struct stress *st = arg;
    void *v = &zero;
    for (long j = 0; j < st->n; j++) {
        if (!v)
            v = &zero;
        gcpool_put(st->pool, v);
        v = gcpool_get(st->pool);
        ck_assert_msg(v == NULL || v == &zero, "got %p, want &zero", v);
    }
    return NULL;
}

START_TEST(test_pool_stress)
{
    if (!test_use_source(TEST_VARIANT(test_sources)->boehm))
        return;
    enum { P = 10 };
    struct stress st = {gcpool_create(NULL), 200000};
    pthread_t t[P];
    for (int i = 0; i < P; i++)
        ck_assert_int_eq(test_thread_start(&t[i], stress_worker, &st), 0);
    for (int i = 0; i < P; i++)
        test_thread_join(t[i]);
    gcpool_stats_t s;
    gcpool_read_stats(st.pool, &s);
    ck_assert_uint_eq(s.puts, (uint64_t)P * 200000);
    ck_assert_uint_eq(s.gets, s.hit_private + s.hit_shared + s.hit_steal + s.hit_victim + s.miss);
    gcpool_destroy(st.pool);
}
END_TEST

/* ---- topology: a thread on each CPU puts and gets through its own local ----- */

START_TEST(test_each_cpu_own_local)
{
    if (!test_use_source(0))
        return;
    gcpool_t *p = gcpool_create(NULL);
    cpu_set_t allowed;
    sched_getaffinity(0, sizeof allowed, &allowed);
    int tried = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, &allowed))
            continue;
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(cpu, &one);
        ck_assert_int_eq(sched_setaffinity(0, sizeof one, &one), 0);
        gcpool_stats_t before, after;
        gcpool_read_stats(p, &before);
        gcpool_put(p, a);
        ck_assert_ptr_eq(gcpool_get(p), a);
        gcpool_read_stats(p, &after);
        /* Found in the private slot of the local it was put in: no steal. */
        ck_assert_uint_eq(after.hit_private, before.hit_private + 1);
        tried++;
    }
    ck_assert_int_ge(tried, 1);
    gcpool_destroy(p);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("pool");
    TCase *go = test_tcase(s, "go", 120);
    test_add_variants(go, test_pool, test_sources);
    test_add_variants(go, test_pool_new, test_sources);
    tcase_add_test(go, test_pool_gc);
    tcase_add_test(go, test_pool_release);
    test_add_variants(go, test_pool_stress, test_sources);
    test_add_variants(go, test_pool_trim, test_sources);
    TCase *boehm = test_tcase(s, "binding", 0);
    tcase_add_test(boehm, test_boehm_keeps_cached);
    tcase_add_test(boehm, test_boehm_one_cycle_per_collection);
    tcase_add_test(boehm, test_boehm_cycle_every);
    tcase_add_test(boehm, test_boehm_registered_thread);
    tcase_add_test(boehm, test_boehm_producer_hands_drops);
    tcase_add_test(boehm, test_sim_when_boehm_not_initialised);
    tcase_add_test(boehm, test_each_cpu_own_local);
    return s;
}

TEST_MAIN(make_suite)
