/* Rings and chains, tested directly: ports of Go's TestPoolDequeue and
 * TestPoolChain (one owner pushing and sometimes popping the head, many thieves
 * popping the tail; every value must come out exactly once), plus the chain's
 * growth, its limit, and the reuse of retired rings. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>

#include "tests/internal.h"

#define THIEVES 15 /* with the owner, 8x the cores of a 2-core machine */

struct queue {
    struct gcp_ring *ring;   /* a lone ring, or NULL */
    struct gcp_chain chain;  /* else the chain */
    long n;
    _Atomic int *have;
    _Atomic int stop;
    _Atomic long pop_heads;
};

static void record(struct queue *q, void *obj)
{
    long v = (long)(uintptr_t)obj - 1;
    ck_assert(v >= 0 && v < q->n);
    atomic_fetch_add(&q->have[v], 1);
    if (v == q->n - 1)
        atomic_store(&q->stop, 1);
}

static void *pop_tail(struct queue *q)
{
    return q->ring ? gcp_ring_pop_tail(q->ring) : gcp_chain_pop_tail(&q->chain);
}

static void *thief(void *arg)
{
    struct queue *q = arg;
    int fail = 0;
    while (!atomic_load(&q->stop)) {
        void *obj = pop_tail(q);
        if (obj) {
            record(q, obj);
            fail = 0;
        } else if (++fail % 100 == 0) {
            sched_yield(); /* let the owner run */
        }
    }
    return NULL;
}

static bool push_head(struct queue *q, void *obj)
{
    if (q->ring)
        return gcp_ring_push_head(q->ring, obj);
    uint32_t want;
    if (gcp_chain_push_head(&q->chain, obj, &want, 8, 1024))
        return true;
    struct gcp_ring *r = want ? gcp_ring_new(want, false) : NULL;
    if (r && gcp_chain_push_ring(&q->chain, r, obj, NULL))
        return true;
    gcp_ring_free(r);
    return false;
}

static void *owner(void *arg)
{
    struct queue *q = arg;
    for (long j = 0; j < q->n; j++) {
        void *obj = (void *)(uintptr_t)(j + 1);
        while (!push_head(q, obj))
            sched_yield(); /* full: let a thief run */
        if (j % 10 == 0) {
            void *back = q->ring ? gcp_ring_pop_head(q->ring) : gcp_chain_pop_head(&q->chain);
            if (back) {
                atomic_fetch_add(&q->pop_heads, 1);
                record(q, back);
            }
        }
    }
    return NULL;
}

static void run_queue(struct queue *q, long n)
{
    q->n = n;
    q->have = calloc((size_t)n, sizeof *q->have);
    pthread_t t[THIEVES + 1];
    for (int i = 0; i < THIEVES; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, thief, q), 0);
    ck_assert_int_eq(pthread_create(&t[THIEVES], NULL, owner, q), 0);
    for (int i = 0; i <= THIEVES; i++)
        pthread_join(t[i], NULL);
    for (long i = 0; i < n; i++)
        ck_assert_msg(atomic_load(&q->have[i]) == 1, "value %ld came out %d times", i,
                      atomic_load(&q->have[i]));
    ck_assert_msg(atomic_load(&q->pop_heads) > 0, "pop_head never succeeded");
    free(q->have);
}

static long test_n(void)
{
    const char *s = getenv("GCPOOL_TEST_N"); /* smaller under valgrind */
    return s ? atol(s) : 1000000;
}

START_TEST(test_pool_dequeue)
{
    struct queue q = {0};
    q.ring = gcp_ring_new(16, false);
    ck_assert_ptr_nonnull(q.ring);
    run_queue(&q, test_n());
    ck_assert_ptr_null(gcp_ring_pop_tail(q.ring));
    gcp_ring_free(q.ring);
}
END_TEST

START_TEST(test_pool_chain)
{
    struct queue q = {0};
    gcp_chain_init(&q.chain);
    run_queue(&q, test_n());
    ck_assert_ptr_null(gcp_chain_pop_tail(&q.chain));
    gcp_chain_destroy(&q.chain);
}
END_TEST

START_TEST(test_ring_order_and_full)
{
    struct gcp_ring *r = gcp_ring_new(4, false);
    for (uintptr_t i = 1; i <= 4; i++)
        ck_assert(gcp_ring_push_head(r, (void *)i));
    ck_assert(!gcp_ring_push_head(r, (void *)5)); /* full */
    ck_assert_uint_eq(gcp_ring_len(r), 4);
    ck_assert_ptr_eq(gcp_ring_pop_head(r), (void *)4); /* LIFO at the head */
    ck_assert_ptr_eq(gcp_ring_pop_tail(r), (void *)1); /* FIFO at the tail */
    ck_assert_ptr_eq(gcp_ring_pop_tail(r), (void *)2);
    ck_assert_ptr_eq(gcp_ring_pop_head(r), (void *)3);
    ck_assert_ptr_null(gcp_ring_pop_head(r));
    ck_assert_ptr_null(gcp_ring_pop_tail(r));
    /* Popped slots are cleared: the ring keeps no pointer it no longer holds. */
    for (int i = 0; i < 4; i++)
        ck_assert_ptr_null(atomic_load(&r->slots[i]));
    /* Wrapping round the slots many times keeps order. */
    for (uintptr_t i = 1; i <= 1000; i++) {
        ck_assert(gcp_ring_push_head(r, (void *)i));
        ck_assert_ptr_eq(gcp_ring_pop_tail(r), (void *)i);
    }
    gcp_ring_free(r);
}
END_TEST

/* A head slot that is not NULL: refilled when no thief is reading (a head
 * pop's clear that lags, ring.h "Slots"), refused while one may be. */
START_TEST(test_ring_head_slot_not_yet_cleared)
{
    struct gcp_ring *r = gcp_ring_new(4, false);
    ck_assert(gcp_ring_push_head(r, (void *)1));
    ck_assert(gcp_ring_push_head(r, (void *)2));
    ck_assert_ptr_eq(gcp_ring_pop_head(r), (void *)2);
    atomic_store(&r->slots[1], (void *)2); /* as if that pop's clear were still to come */
    ck_assert(gcp_ring_push_head(r, (void *)3)); /* no thief: the owner's to refill */
    ck_assert_ptr_eq(gcp_ring_pop_head(r), (void *)3);
    ck_assert_ptr_eq(gcp_ring_pop_head(r), (void *)1);
    /* Full, then a thief claims the oldest and has not read it yet. */
    for (uintptr_t i = 4; i <= 7; i++)
        ck_assert(gcp_ring_push_head(r, (void *)i));
    atomic_fetch_add(&r->head_tail, 1); /* tail + 1: claimed, done not yet */
    uint32_t thief = (uint32_t)atomic_load(&r->head_tail) - 1;
    ck_assert_ptr_eq(atomic_load(&r->slots[thief & 3]), (void *)4);
    ck_assert(!gcp_ring_push_head(r, (void *)8)); /* its slot: refused */
    /* A lagging clear elsewhere is refused too while the thief reads. */
    ck_assert_ptr_eq(gcp_ring_pop_head(r), (void *)7);
    atomic_store(&r->slots[(thief + 3) & 3], (void *)7);
    ck_assert(!gcp_ring_push_head(r, (void *)8));
    /* The thief finishes: both slots are the owner's again. */
    atomic_store(&r->slots[thief & 3], NULL);
    atomic_fetch_add(&r->done, 1);
    ck_assert(gcp_ring_push_head(r, (void *)8));
    ck_assert(gcp_ring_push_head(r, (void *)9));
    for (uintptr_t i = 5; i <= 6; i++)
        ck_assert_ptr_eq(gcp_ring_pop_tail(r), (void *)i);
    ck_assert_ptr_eq(gcp_ring_pop_tail(r), (void *)8);
    ck_assert_ptr_eq(gcp_ring_pop_tail(r), (void *)9);
    ck_assert_ptr_null(gcp_ring_pop_tail(r));
    gcp_ring_free(r);
}
END_TEST

static uintptr_t taken[64];
static int ntaken;

static void take(void *obj, void *arg)
{
    (void)arg;
    taken[ntaken++] = (uintptr_t)obj;
}

START_TEST(test_take_all)
{
    struct gcp_ring *r = gcp_ring_new(8, false);
    for (uintptr_t i = 1; i <= 8; i++)
        ck_assert(gcp_ring_push_head(r, (void *)i));
    ck_assert_ptr_eq(gcp_ring_pop_tail(r), (void *)1);
    ntaken = 0;
    ck_assert_uint_eq(gcp_ring_take_all(r, take, NULL), 7);
    for (int k = 0; k < 7; k++)
        ck_assert_uint_eq(taken[k], (uintptr_t)k + 2); /* oldest first, each once */
    ck_assert_uint_eq(gcp_ring_len(r), 0);
    for (int i = 0; i < 8; i++)
        ck_assert_ptr_null(atomic_load(&r->slots[i])); /* nothing kept */
    ck_assert(gcp_ring_push_head(r, (void *)99)); /* and it works on */
    ck_assert_ptr_eq(gcp_ring_pop_head(r), (void *)99);
    gcp_ring_free(r);
    /* A chain: every ring's objects, whatever the links. */
    struct gcp_chain c;
    gcp_chain_init(&c);
    long end = 1;
    for (; end <= 40; end++) {
        uint32_t want;
        void *obj = (void *)(uintptr_t)end;
        if (!gcp_chain_push_head(&c, obj, &want, 2, 8))
            ck_assert(gcp_chain_push_ring(&c, gcp_ring_new(want, false), obj, NULL));
    }
    ntaken = 0;
    ck_assert_uint_eq(gcp_chain_take_all(&c, take, NULL), 40);
    uint64_t seen = 0;
    for (int k = 0; k < 40; k++)
        seen |= 1ull << taken[k];
    ck_assert_uint_eq(seen, ((1ull << 41) - 1) & ~1ull); /* 1..40, each once */
    ck_assert_ptr_null(gcp_chain_pop_tail(&c));
    ck_assert_ptr_null(gcp_chain_pop_head(&c));
    gcp_chain_destroy(&c);
}
END_TEST

/* Pushes without any allocation help until the chain wants a ring. */
static long fill(struct gcp_chain *c, uint32_t min, uint32_t max, long next)
{
    for (;;) {
        uint32_t want;
        void *obj = (void *)(uintptr_t)next;
        if (gcp_chain_push_head(c, obj, &want, min, max)) {
            next++;
            continue;
        }
        struct gcp_ring *r = gcp_ring_new(want, false);
        ck_assert_ptr_nonnull(r);
        ck_assert(want == min || want <= max);
        if (!gcp_chain_push_ring(c, r, obj, NULL)) { /* the table is full */
            gcp_ring_free(r);
            return next;
        }
        next++;
    }
}

START_TEST(test_chain_growth_limit_reuse)
{
    struct gcp_chain c;
    gcp_chain_init(&c);
    /* Rings of 2, 4, then 4 (the limit) until the table of GCP_CHAIN_RINGS is full. */
    long end = fill(&c, 2, 4, 1);
    long capacity = 2 + (GCP_CHAIN_RINGS - 1) * 4;
    ck_assert_int_eq(end - 1, capacity);
    ck_assert_uint_eq(atomic_load(&c.rings[0])->size, 2);
    ck_assert_uint_eq(atomic_load(&c.rings[1])->size, 4);
    ck_assert_uint_eq(atomic_load(&c.rings[GCP_CHAIN_RINGS - 1])->size, 4);
    /* Thieves see the oldest first, across every ring. */
    for (long i = 1; i < end; i++)
        ck_assert_ptr_eq(gcp_chain_pop_tail(&c), (void *)(uintptr_t)i);
    ck_assert_ptr_null(gcp_chain_pop_tail(&c));
    /* Every drained ring but the head was unlinked and retired... */
    ck_assert_uint_eq(__builtin_popcount(atomic_load(&c.retired)), GCP_CHAIN_RINGS - 1);
    /* ...and is reused: the same capacity again without a new ring (the table
     * is full, so fill() fails at once if one is asked for). */
    long end2 = fill(&c, 2, 4, end);
    ck_assert_int_ge(end2 - end, capacity - 2);
    /* The owner's head pops come newest first, across rings. */
    for (long i = end2 - 1; i >= end; i--)
        ck_assert_ptr_eq(gcp_chain_pop_head(&c), (void *)(uintptr_t)i);
    ck_assert_ptr_null(gcp_chain_pop_head(&c));
    gcp_chain_destroy(&c);
}
END_TEST

/* With no thief at all, the owner retires the rings it drained itself: a
 * chain filled to the table's limit and emptied by head pops takes the same
 * number of objects again without a new ring. */
START_TEST(test_chain_owner_reclaims)
{
    struct gcp_chain c;
    gcp_chain_init(&c);
    long end = fill(&c, 2, 2, 1);
    long capacity = GCP_CHAIN_RINGS * 2;
    ck_assert_int_eq(end - 1, capacity);
    for (long i = end - 1; i >= 1; i--)
        ck_assert_ptr_eq(gcp_chain_pop_head(&c), (void *)(uintptr_t)i);
    ck_assert_ptr_null(gcp_chain_pop_head(&c));
    long end2 = fill(&c, 2, 2, end); /* fails at once if a new ring is asked for */
    ck_assert_int_eq(end2 - end, capacity);
    for (long i = end; i < end2; i++) /* every one reachable, oldest first */
        ck_assert_ptr_eq(gcp_chain_pop_tail(&c), (void *)(uintptr_t)i);
    ck_assert_ptr_null(gcp_chain_pop_tail(&c));
    gcp_chain_destroy(&c);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("ring");
    TCase *tc = test_tcase(s, "ring", 300);
    tcase_add_test(tc, test_ring_order_and_full);
    tcase_add_test(tc, test_ring_head_slot_not_yet_cleared);
    tcase_add_test(tc, test_chain_growth_limit_reuse);
    tcase_add_test(tc, test_chain_owner_reclaims);
    tcase_add_test(tc, test_take_all);
    tcase_add_test(tc, test_pool_dequeue);
    tcase_add_test(tc, test_pool_chain);
    return s;
}

TEST_MAIN(make_suite)
