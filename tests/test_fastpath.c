/* The inline fast path of gcpool/fastpath.h: what programs compiled against
 * <gcpool.h> run in place of the calls.  Built twice: tests/test_fastpath with
 * the inline path, tests/test_fastpath_noinline with GCPOOL_NO_INLINE, where
 * every case must behave the same through calls.  Each case runs under each
 * of pins (below): the lock pin and rseq; the inline path only acts under rseq.
 *
 * Like a program, these link the shared library (where it is built) and use
 * only its public interface: the library's own copy of gcpool_fastpath_v3 and
 * the program's (a copy relocation) must be one. */
#include <errno.h>
#include <stdatomic.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <linux/membarrier.h>

#include "tests/testutil.h" /* its inline helpers that need no library internals */

#if defined(GCPOOL_FASTPATH_RSEQ) && !defined(GCPOOL_NO_INLINE)
#define INLINED 1
#else
#define INLINED 0
#endif

static char objs[200];

/* Whether the library can use rseq here: built for it (it is built as this
 * test is: not for ThreadSanitizer, say), glibc registered an area, and the
 * kernel has membarrier's rseq fence (which cycles need). */
static bool rseq_possible(void)
{
#ifdef GCPOOL_FASTPATH_RSEQ
    long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    return __rseq_size > 0 && cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ);
#else
    return false;
#endif
}

/* The variants of the loop tests: the pin. */
static const struct pin_variant {
    const char *name;
    bool rseq; /* rseq, else the lock */
} pins[] = {{"lock", false}, {"rseq", true}};

/* The simulated source and the pin (rseq or the lock), before the process's
 * first pool (Check runs each case in a new process). */
static bool setup(int rseq)
{
    if (rseq && !rseq_possible()) {
        printf("SKIP: rseq is not available in this process; rseq case skipped\n");
        return false;
    }
    setenv("GCPOOL_GC", "sim", 1);
    setenv("GCPOOL_PIN", rseq ? "rseq" : "lock", 1);
    return true;
}

/* What the program compiled against: macros where the path is inlined. */
START_TEST(test_macros_where_inlined)
{
#ifdef gcpool_get
    ck_assert_msg(INLINED, "gcpool_get is a macro although the inline path is off");
#else
    ck_assert_msg(!INLINED, "gcpool_get is not a macro although the inline path is on");
#endif
#ifdef gcpool_put
    ck_assert(INLINED);
#else
    ck_assert(!INLINED);
#endif
}
END_TEST

/* What a program built against the v2 contract reads first (fastpath.h):
 * its `on` must stay 0, so that such a program always calls. */
extern struct {
    int on;
} gcpool_fastpath_v2;

/* Whether the table the inline path reads gives any CPU a local: the fast
 * path on.  Off, every entry says "no local" and every get and put calls. */
static bool table_on(void)
{
#ifdef GCPOOL_FASTPATH_RSEQ
    for (int cpu = 0; cpu < GCPOOL_FASTPATH_MAX_CPUS; cpu++)
        if (gcpool_fastpath_v3.cpu_local[cpu] != GCPOOL_FASTPATH_NO_LOCAL)
            return true;
#endif
    return false;
}

/* The table is on only under the rseq pin, and then for this thread's CPU. */
START_TEST(test_on_follows_the_pin)
{
    const struct pin_variant *pin = TEST_VARIANT(pins);
    if (!setup(pin->rseq))
        return;
    int cpu = test_pin_to_one_cpu();
    ck_assert(!table_on()); /* before the first pool */
    gcpool_t *p = gcpool_create(NULL);
    ck_assert_int_eq(table_on(), pin->rseq);
#ifdef GCPOOL_FASTPATH_RSEQ
    if (pin->rseq && cpu < GCPOOL_FASTPATH_MAX_CPUS)
        ck_assert_uint_ne(gcpool_fastpath_v3.cpu_local[cpu], GCPOOL_FASTPATH_NO_LOCAL);
#else
    (void)cpu;
#endif
    ck_assert_int_eq(gcpool_fastpath_v2.on, 0);
    gcpool_destroy(p);
}
END_TEST

/* Checked mode needs every get and put in the library: the table stays off
 * (v2's `on` 0). */
START_TEST(test_checked_mode_turns_it_off)
{
    setenv("GCPOOL_DEBUG", "1", 1);
    if (!setup(TEST_VARIANT(pins)->rseq))
        return;
    gcpool_t *p = gcpool_create(NULL);
    test_pin_to_one_cpu(); /* a private slot is not stolen: a migration would lose the get */
    ck_assert(!table_on());
    ck_assert_int_eq(gcpool_fastpath_v2.on, 0);
    gcpool_put(p, &objs[0]);
    gcpool_put(p, &objs[0]); /* a double put: checked mode reports and ignores it */
    ck_assert_ptr_eq(gcpool_get(p), &objs[0]);
    ck_assert_ptr_null(gcpool_get(p));
    gcpool_destroy(p);
}
END_TEST

/* What the macros put the functions find, and the other way round; the
 * statistics count both the same. */
START_TEST(test_inline_and_calls_agree)
{
    if (!setup(TEST_VARIANT(pins)->rseq))
        return;
    gcpool_t *p = gcpool_create(NULL);
    test_pin_to_one_cpu();
    enum { PAIRS = 1000 };
    for (int i = 0; i < PAIRS; i++) {
        void *o = &objs[i % 200];
        if (i % 2) {
            gcpool_put(p, o);
            ck_assert_ptr_eq((gcpool_get)(p), o);
        } else {
            (gcpool_put)(p, o);
            ck_assert_ptr_eq(gcpool_get(p), o);
        }
    }
    ck_assert_ptr_null(gcpool_get(p));
    gcpool_stats_t s;
    ck_assert_int_eq(gcpool_read_stats(p, &s), 0);
    ck_assert_uint_eq(s.puts, PAIRS);
    ck_assert_uint_eq(s.gets, PAIRS + 1);
    ck_assert_uint_eq(s.hit_private, PAIRS);
    ck_assert_uint_eq(s.miss, 1);
    gcpool_destroy(p);
}
END_TEST

/* Past the private slot: the macros hand over to the library's chain and
 * give back each object once, in Go's order (private, then the chain LIFO). */
START_TEST(test_overflow_through_the_macros)
{
    if (!setup(TEST_VARIANT(pins)->rseq))
        return;
    gcpool_t *p = gcpool_create(NULL);
    test_pin_to_one_cpu();
    for (int i = 0; i < 200; i++)
        gcpool_put(p, &objs[i]);
    ck_assert_ptr_eq(gcpool_get(p), &objs[0]); /* the first put filled private */
    for (int i = 199; i >= 1; i--)
        ck_assert_ptr_eq(gcpool_get(p), &objs[i]);
    ck_assert_ptr_null(gcpool_get(p));
    gcpool_stats_t s;
    gcpool_read_stats(p, &s);
    ck_assert_uint_eq(s.hit_private, 1);
    ck_assert_uint_eq(s.hit_shared, 199);
    gcpool_destroy(p);
}
END_TEST

static _Atomic int made, freed;
static void *make(void *arg)
{
    (void)arg;
    return &objs[100 + atomic_fetch_add(&made, 1)];
}
static void release(void *obj, void *arg)
{
    (void)obj, (void)arg;
    atomic_fetch_add(&freed, 1);
}

/* A pool's first operation finds no array yet: the macro's sequence gives up
 * and the library sets the pool up; cycles then drop what the macros put. */
START_TEST(test_first_use_and_cycles)
{
    if (!setup(TEST_VARIANT(pins)->rseq))
        return;
    gcpool_options_t o = {.new_fn = make, .free_fn = release};
    gcpool_t *p = gcpool_create(&o);
    test_pin_to_one_cpu();
    void *first = gcpool_get(p);
    ck_assert_ptr_eq(first, &objs[100]);
    gcpool_put(p, first);
    gcpool_collect(); /* to the victim: still cached */
    ck_assert_ptr_eq(gcpool_get(p), first);
    gcpool_put(p, first);
    gcpool_collect();
    gcpool_collect(); /* dropped, to free_fn once */
    ck_assert_int_eq(atomic_load(&freed), 1);
    ck_assert_ptr_eq(gcpool_get(p), &objs[101]); /* new_fn again */
    gcpool_destroy(p);
    ck_assert_int_eq(atomic_load(&freed), 1); /* the pool held nothing more */
}
END_TEST

START_TEST(test_null_pool_and_object)
{
    if (!setup(TEST_VARIANT(pins)->rseq))
        return;
    gcpool_t *p = gcpool_create(NULL);
    errno = 0;
    ck_assert_ptr_null(gcpool_get(NULL));
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    gcpool_put(NULL, &objs[0]);
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    ck_assert_ptr_null(gcpool_fastpath_get_v3(NULL));
    ck_assert_int_eq(errno, EINVAL);
    gcpool_put(p, NULL); /* ignored */
    ck_assert_ptr_null(gcpool_get(p));
    gcpool_destroy(p);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create(INLINED ? "fastpath" : "fastpath (GCPOOL_NO_INLINE)");
    TCase *tc = test_tcase(s, "fastpath", 0);
    tcase_add_test(tc, test_macros_where_inlined);
    test_add_variants(tc, test_on_follows_the_pin, pins);
    test_add_variants(tc, test_checked_mode_turns_it_off, pins);
    test_add_variants(tc, test_inline_and_calls_agree, pins);
    test_add_variants(tc, test_overflow_through_the_macros, pins);
    test_add_variants(tc, test_first_use_and_cycles, pins);
    test_add_variants(tc, test_null_pool_and_object, pins);
    return s;
}

TEST_MAIN(make_suite)
