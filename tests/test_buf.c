/* Buffer pools (<gcpool/buf.h>, lib/buf.c): class selection at every boundary,
 * oversize and undersize buffers never pooled, capacities rounded down and never
 * up, zeroing, exact statistics for a scripted sequence, the environment, bad
 * input, and conservation under concurrency.  The loop tests run under each of
 * test_sources: the simulated source and Boehm.
 *
 * Under sim, every buffer the library mallocs and frees goes through counting
 * hooks (below) that keep the live buffers in a table: a free of a pointer that
 * is not live (a double free, or a buffer never allocated) is counted as bad,
 * and after a destroy the table must be empty — every buffer freed exactly once.
 * In quarantine mode the hooks do not really free, so an address cannot come
 * back from malloc: "not the same pointer" then means "not the same buffer". */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* open_memstream */
#endif
#include <errno.h>
#include <search.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

#include "tests/internal.h"

#include <gc/gc_inline.h> /* GC_I_PTRFREE */
#include <gc/gc_mark.h>   /* GC_get_kind_and_size */
#include <gcpool/buf.h>

/* ---- tracking hooks ---------------------------------------------------------- */

static pthread_mutex_t track_mu = PTHREAD_MUTEX_INITIALIZER;
static void *live;                  /* tsearch tree of live malloc'd buffers */
static long n_alloc, n_free, n_bad_free, n_live, n_gc_alloc;
static void *last_freed;
static bool quarantine;             /* frees are recorded, the memory kept */
static void *quarantined[4096];
static int nquarantined;
static _Atomic int fail_next;       /* the next N allocations fail */

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;
    return (x > y) - (x < y);
}

static bool should_fail(void)
{
    int n = atomic_load(&fail_next);
    while (n > 0 && !atomic_compare_exchange_weak(&fail_next, &n, n - 1))
        ;
    return n > 0;
}

static void *track_alloc(size_t size)
{
    if (should_fail())
        return NULL;
    void *p = malloc(size);
    if (!p)
        return NULL;
    pthread_mutex_lock(&track_mu);
    ck_assert_ptr_nonnull(tsearch(p, &live, cmp_ptr));
    n_alloc++, n_live++;
    pthread_mutex_unlock(&track_mu);
    return p;
}

static void track_free(void *p)
{
    pthread_mutex_lock(&track_mu);
    bool known = tfind(p, &live, cmp_ptr) != NULL;
    if (known) {
        tdelete(p, &live, cmp_ptr);
        n_live--;
        n_free++;
        last_freed = p;
    } else {
        n_bad_free++;
    }
    bool keep = known && quarantine && nquarantined < (int)(sizeof quarantined / sizeof *quarantined);
    if (keep)
        quarantined[nquarantined++] = p;
    pthread_mutex_unlock(&track_mu);
    if (known && !keep)
        free(p);
}

static void *track_gc_alloc(size_t size)
{
    if (should_fail())
        return NULL;
    pthread_mutex_lock(&track_mu);
    n_gc_alloc++;
    pthread_mutex_unlock(&track_mu);
    return GC_MALLOC_ATOMIC(size);
}

static void *(*default_gc_alloc)(size_t);

static void track_install(bool keep_freed)
{
    default_gc_alloc = gcp_buf_gc_alloc;
    gcp_buf_sys_alloc = track_alloc;
    gcp_buf_sys_free = track_free;
    gcp_buf_gc_alloc = track_gc_alloc;
    quarantine = keep_freed;
}

static long frees(void)
{
    pthread_mutex_lock(&track_mu);
    long n = n_free;
    pthread_mutex_unlock(&track_mu);
    return n;
}

/* After a destroy under sim: every buffer malloc'd was freed exactly once. */
static void assert_all_freed_once(void)
{
    pthread_mutex_lock(&track_mu);
    ck_assert_int_eq(n_bad_free, 0);
    ck_assert_int_eq(n_live, 0);
    ck_assert_ptr_null(live);
    ck_assert_int_eq(n_free, n_alloc);
    pthread_mutex_unlock(&track_mu);
}

static bool sim(void)
{
    return gcp_glue_source() == GCP_SOURCE_SIM;
}

/* ---- helpers ------------------------------------------------------------------- */

static gcpool_bufpool_t *make(size_t min, size_t max, int zero, const char *name)
{
    gcpool_bufpool_options_t o = {.min_size = min, .max_size = max, .zero = zero, .name = name};
    gcpool_bufpool_t *bp = gcpool_bufpool_create(&o);
    ck_assert_ptr_nonnull(bp);
    return bp;
}

static gcpool_bufpool_stats_t stats(gcpool_bufpool_t *bp)
{
    gcpool_bufpool_stats_t s;
    ck_assert_int_eq(gcpool_bufpool_read_stats(bp, &s), 0);
    return s;
}

/* The index of the class of size bytes, -1 when no class has that size. */
static int class_index(const gcpool_bufpool_stats_t *s, size_t size)
{
    for (unsigned k = 0; k < s->nclasses; k++)
        if (s->classes[k].size == size)
            return (int)k;
    return -1;
}

/* What the contract says a request of size bytes gets: the smallest class
 * >= size, or 0 for "oversize, capacity == size". */
static size_t want_class(size_t size, size_t min, size_t max)
{
    if (size > max)
        return 0;
    size_t c = min;
    while (c < size)
        c *= 2;
    return c;
}

/* Runs fn with fd 2 sent to a temporary file; returns what it wrote. */

/* The lines of s that mention GCPOOL_BUF (the harness may set other variables). */
static int buf_lines(const char *s, char *first, size_t len)
{
    int n = 0;
    for (const char *line = s; *line;) {
        const char *end = strchr(line, '\n');
        size_t l = end ? (size_t)(end - line + 1) : strlen(line);
        if (memmem(line, l, "GCPOOL_BUF", 10)) {
            if (n++ == 0)
                snprintf(first, len, "%.*s", (int)l, line);
        }
        line += l;
    }
    return n;
}

/* ---- class selection ------------------------------------------------------------ */

/* One get of size bytes: the capacity the contract wants, the whole capacity
 * writable, and exactly one get counted, in that class or as oversize.  Then the
 * put: counted in the same class, or as an oversize put. */
static void check_one(gcpool_bufpool_t *bp, size_t size)
{
    const size_t min = stats(bp).min_size, max = stats(bp).max_size;
    gcpool_bufpool_stats_t before = stats(bp);
    size_t cap = 0;
    unsigned char *buf = gcpool_buf_get(bp, size, &cap);
    ck_assert_msg(buf != NULL, "size %zu: NULL (%s)", size, strerror(errno));
    size_t want = want_class(size, min, max);
    gcpool_bufpool_stats_t after = stats(bp);
    if (want) {
        ck_assert_msg(cap == want, "size %zu: capacity %zu, want %zu", size, cap, want);
        int k = class_index(&after, want);
        ck_assert_int_ge(k, 0);
        for (unsigned j = 0; j < after.nclasses; j++)
            ck_assert_msg(after.classes[j].gets == before.classes[j].gets + (j == (unsigned)k),
                          "size %zu: class %zu counted the get", size, after.classes[j].size);
        ck_assert_uint_eq(after.oversize_gets, before.oversize_gets);
        ck_assert_uint_eq(after.waste, before.waste + (want - size));
    } else {
        ck_assert_msg(cap == size, "oversize %zu: capacity %zu", size, cap);
        for (unsigned j = 0; j < after.nclasses; j++)
            ck_assert_uint_eq(after.classes[j].gets, before.classes[j].gets);
        ck_assert_uint_eq(after.oversize_gets, before.oversize_gets + 1);
        ck_assert_uint_eq(after.oversize_bytes, before.oversize_bytes + size);
        ck_assert_uint_eq(after.waste, before.waste);
    }
    ck_assert_uint_eq(after.gets, before.gets + 1);
    buf[0] = 1; /* the whole capacity is ours (ASan checks the rest) */
    memset(buf, 0xa5, cap);
    gcpool_buf_put(bp, buf, cap);
    gcpool_bufpool_stats_t put = stats(bp);
    if (want) {
        int k = class_index(&put, want);
        ck_assert_uint_eq(put.classes[k].puts, after.classes[k].puts + 1);
        ck_assert_uint_eq(put.oversize_puts, after.oversize_puts);
    } else {
        ck_assert_uint_eq(put.oversize_puts, after.oversize_puts + 1);
    }
}

static void check_bounds(size_t min, size_t max)
{
    gcpool_bufpool_t *bp = make(min, max, 0, NULL);
    gcpool_bufpool_stats_t s = stats(bp);
    ck_assert_uint_eq(s.min_size, min);
    ck_assert_uint_eq(s.max_size, max);
    unsigned n = 0;
    for (size_t c = min; c <= max; c *= 2)
        ck_assert_uint_eq(s.classes[n++].size, c);
    ck_assert_uint_eq(s.nclasses, n);
    check_one(bp, 0);
    check_one(bp, 1);
    check_one(bp, min - 1);
    for (size_t c = min; c <= max; c *= 2) {
        check_one(bp, c - 1);
        check_one(bp, c);
        check_one(bp, c + 1);
    }
    check_one(bp, max + 1);
    check_one(bp, 3 * max);
    gcpool_bufpool_destroy(bp);
}

START_TEST(class_selection)
{
    if (!test_use_source(TEST_VARIANT(test_sources)->boehm))
        return;
    track_install(false);
    check_bounds(256, 4u << 20); /* the defaults */
    check_bounds(16, 64);        /* the smallest classes allowed */
    check_bounds(4096, 4096);    /* a single class */
    /* The defaults with no options at all. */
    gcpool_bufpool_t *bp = gcpool_bufpool_create(NULL);
    ck_assert_ptr_nonnull(bp);
    ck_assert_uint_eq(stats(bp).min_size, 256);
    ck_assert_uint_eq(stats(bp).max_size, 4u << 20);
    ck_assert_uint_eq(stats(bp).nclasses, 15);
    gcpool_bufpool_destroy(bp);
    if (sim())
        assert_all_freed_once();
}
END_TEST

/* ---- oversize ------------------------------------------------------------------- */

START_TEST(oversize_never_pooled)
{
    if (!test_use_source(TEST_VARIANT(test_sources)->boehm))
        return;
    track_install(true);
    test_pin_to_one_cpu();
    const size_t max = 64 << 10;
    gcpool_bufpool_t *bp = make(256, max, 0, NULL);
    size_t cap;
    void *giant = gcpool_buf_get(bp, max + 1, &cap);
    ck_assert_ptr_nonnull(giant);
    ck_assert_uint_eq(cap, max + 1);
    long freed = frees();
    gcpool_buf_put(bp, giant, cap);
    if (sim()) { /* released at once: freed, exactly once */
        ck_assert_int_eq(frees(), freed + 1);
        ck_assert_ptr_eq(last_freed, giant);
    }
    gcpool_bufpool_stats_t s = stats(bp);
    ck_assert_uint_eq(s.oversize_puts, 1);
    for (unsigned k = 0; k < s.nclasses; k++) {
        ck_assert_uint_eq(s.classes[k].puts, 0);
        ck_assert_uint_eq(s.classes[k].bytes_cached, 0);
    }
    ck_assert_uint_eq(s.bytes_cached, 0);
    /* Neither the same size nor the largest class gets it back (under Boehm the
     * test still holds `giant`, so the collector cannot hand its memory out again). */
    void *again = gcpool_buf_get(bp, max + 1, &cap);
    ck_assert_ptr_nonnull(again);
    ck_assert_ptr_ne(again, giant);
    void *largest = gcpool_buf_get(bp, max, &cap);
    ck_assert_ptr_ne(largest, giant);
    ck_assert_uint_eq(cap, max);
    /* A buffer beyond the largest class is not rounded down into it either. */
    gcpool_buf_put(bp, again, max + 1);
    gcpool_buf_put(bp, largest, max);
    s = stats(bp);
    ck_assert_uint_eq(s.oversize_puts, 2);
    ck_assert_uint_eq(s.classes[s.nclasses - 1].puts, 1);
    ck_assert_ptr_eq(gcpool_buf_get(bp, max, &cap), largest);
    gcpool_buf_put(bp, largest, max);
    gcpool_bufpool_destroy(bp);
    if (sim())
        assert_all_freed_once();
}
END_TEST

/* Under Boehm, what is not pooled and what cycles drop is the collector's: a giant
 * buffer put back is reclaimed by the next collections. */
static _Atomic int finalized;

static void on_finalize(void *obj, void *unused)
{
    (void)obj, (void)unused;
    atomic_fetch_add(&finalized, 1);
}

enum { N_FIN = 8 };

/* Gets N_FIN buffers, all at once so they are distinct, then puts them back;
 * from a separate frame so that no pointer to them stays in the test's slots. */
static __attribute__((noinline)) void get_put_finalizable(gcpool_bufpool_t *bp, size_t size)
{
    void *bufs[N_FIN];
    size_t cap[N_FIN];
    for (int i = 0; i < N_FIN; i++) {
        bufs[i] = gcpool_buf_get(bp, size, &cap[i]);
        ck_assert_ptr_nonnull(bufs[i]);
        GC_REGISTER_FINALIZER(bufs[i], on_finalize, NULL, NULL, NULL);
    }
    for (int i = 0; i < N_FIN; i++) {
        gcpool_buf_put(bp, bufs[i], cap[i]);
        bufs[i] = NULL;
    }
}

static __attribute__((noinline)) void scrub_stack(void)
{
    volatile char junk[16384];
    memset((char *)junk, 0, sizeof junk);
}

static int collect_and_count(void)
{
    int seen = 0;
    for (int i = 0; i < 5 && seen < N_FIN - 1; i++) {
        GC_gcollect();
        GC_invoke_finalizers();
        usleep(10000 * (unsigned)(i + 1));
        seen = atomic_load(&finalized);
    }
    return seen;
}

START_TEST(boehm_reclaims)
{
    setenv("GCPOOL_VICTIM", "1", 1); /* kept one collection, dropped the next */
    if (!test_use_source(1))
        return;
    gcpool_bufpool_t *bp = make(256, 64 << 10, 0, NULL);
    /* Oversize: not pooled, so nothing keeps them. */
    atomic_store(&finalized, 0);
    get_put_finalizable(bp, (64 << 10) + 1);
    scrub_stack();
    int seen = collect_and_count();
    /* As Go allows, one pointer may survive on the stack or in a register. */
    ck_assert_msg(seen >= N_FIN - 1, "%d of %d oversize buffers reclaimed", seen, N_FIN);
    /* Pooled: kept while cached (one collection moves them to the victim),
     * reclaimed once a cycle drops them. */
    atomic_store(&finalized, 0);
    get_put_finalizable(bp, 1000);
    scrub_stack();
    GC_gcollect();
    GC_invoke_finalizers();
    ck_assert_int_eq(atomic_load(&finalized), 0);
    seen = collect_and_count();
    ck_assert_msg(seen >= N_FIN - 1, "%d of %d dropped buffers reclaimed", seen, N_FIN);
    gcpool_bufpool_destroy(bp);
}
END_TEST

/* Buffers are pointer-free under Boehm, and malloc'd (never the collector's) under sim. */
START_TEST(allocation_kind)
{
    if (!test_use_source(TEST_VARIANT(test_sources)->boehm))
        return;
    track_install(false);
    gcp_buf_gc_alloc = default_gc_alloc; /* the library's own allocator is under test */
    gcpool_bufpool_t *bp = make(256, 64 << 10, 0, NULL);
    size_t sizes[] = {1, 4096, 64 << 10, (64 << 10) + 1}, cap;
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        void *buf = gcpool_buf_get(bp, sizes[i], &cap);
        ck_assert_ptr_nonnull(buf);
        if (!sim()) {
            ck_assert_ptr_eq(GC_base(buf), buf);
            ck_assert_int_eq(GC_get_kind_and_size(buf, NULL), GC_I_PTRFREE);
        }
        gcpool_buf_put(bp, buf, cap);
    }
    ck_assert_int_eq(n_alloc, sim() ? 4 : 0); /* malloc'd under sim, never under Boehm */
    /* Under Boehm, dropping cached buffers frees nothing: no free_fn. */
    test_cycle();
    test_cycle();
    gcpool_bufpool_destroy(bp);
    if (sim())
        assert_all_freed_once();
    else
        ck_assert_int_eq(n_free + n_bad_free, 0);
}
END_TEST

/* ---- capacity mismatches ----------------------------------------------------------- */

START_TEST(capacity_rounded_down)
{
    if (!test_use_source(TEST_VARIANT(test_sources)->boehm))
        return;
    track_install(true);
    test_pin_to_one_cpu(); /* put and get through one local's private slot */
    gcpool_bufpool_t *bp = make(256, 64 << 10, 0, NULL);
    size_t cap;
    void *buf = gcpool_buf_get(bp, 4096, &cap);
    ck_assert_uint_eq(cap, 4096);
    /* A 3000-byte capacity serves every 2048-class request, not a 4096 one. */
    gcpool_buf_put(bp, buf, 3000);
    gcpool_bufpool_stats_t s = stats(bp);
    int k2048 = class_index(&s, 2048), k4096 = class_index(&s, 4096);
    ck_assert_uint_eq(s.classes[k2048].puts, 1);
    ck_assert_uint_eq(s.classes[k2048].rounded_puts, 1);
    ck_assert_uint_eq(s.classes[k4096].puts, 0);
    void *up = gcpool_buf_get(bp, 3000, &cap); /* never rounded up */
    ck_assert_ptr_ne(up, buf);
    ck_assert_uint_eq(cap, 4096);
    void *down = gcpool_buf_get(bp, 2000, &cap);
    ck_assert_ptr_eq(down, buf);
    ck_assert_uint_eq(cap, 2048);
    gcpool_buf_put(bp, down, cap);
    gcpool_buf_put(bp, up, cap + 1);           /* 2049: 2048 class too */
    s = stats(bp);
    ck_assert_uint_eq(s.classes[k2048].puts, 3);
    ck_assert_uint_eq(s.classes[k2048].rounded_puts, 2);
    /* Exactly the smallest class: pooled; one byte less: released. */
    void *small = gcpool_buf_get(bp, 10, &cap);
    ck_assert_uint_eq(cap, 256);
    long freed = frees();
    gcpool_buf_put(bp, small, 255);
    s = stats(bp);
    ck_assert_uint_eq(s.undersize_puts, 1);
    ck_assert_uint_eq(s.classes[0].puts, 0);
    if (sim()) {
        ck_assert_int_eq(frees(), freed + 1);
        ck_assert_ptr_eq(last_freed, small);
    }
    void *other = gcpool_buf_get(bp, 10, &cap);
    ck_assert_ptr_ne(other, small);
    gcpool_buf_put(bp, other, cap);
    void *again = gcpool_buf_get(bp, 2000, &cap); /* `buf` again, from the private slot */
    ck_assert_ptr_eq(again, buf);
    gcpool_buf_put(bp, again, 0); /* 0: below any class as well */
    ck_assert_uint_eq(stats(bp).undersize_puts, 2);
    gcpool_buf_put(bp, NULL, 4096); /* ignored */
    s = stats(bp);
    ck_assert_uint_eq(s.undersize_puts, 2);
    ck_assert_uint_eq(s.oversize_puts, 0);
    gcpool_bufpool_destroy(bp);
    if (sim())
        assert_all_freed_once();
}
END_TEST

/* ---- zeroing ------------------------------------------------------------------------- */

static bool all_bytes(const unsigned char *p, size_t n, unsigned char v)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != v)
            return false;
    return true;
}

START_TEST(zeroing)
{
    if (!test_use_source(TEST_VARIANT(test_sources)->boehm))
        return;
    test_pin_to_one_cpu();
    for (int zero = 0; zero <= 1; zero++) {
        gcpool_bufpool_t *bp = make(256, 64 << 10, zero, NULL);
        size_t cap;
        unsigned char *buf = gcpool_buf_get(bp, 1000, &cap);
        ck_assert_uint_eq(cap, 1024);
        if (zero)
            ck_assert(all_bytes(buf, cap, 0)); /* new buffers too */
        memset(buf, 0xff, cap);
        gcpool_buf_put(bp, buf, cap);
        unsigned char *again = gcpool_buf_get(bp, 1000, &cap);
        ck_assert_ptr_eq(again, buf);
        /* Cleared over the whole capacity, or left as the last user left it. */
        ck_assert(all_bytes(again, cap, zero ? 0 : 0xff));
        gcpool_buf_put(bp, again, cap);
        unsigned char *giant = gcpool_buf_get(bp, (64 << 10) + 100, &cap);
        if (zero)
            ck_assert(all_bytes(giant, cap, 0));
        gcpool_buf_put(bp, giant, cap);
        gcpool_bufpool_destroy(bp);
    }
}
END_TEST

/* ---- exact statistics --------------------------------------------------------------- */

START_TEST(stats_exact)
{
    setenv("GCPOOL_VICTIM", "1", 1); /* the script counts on the victim cache */
    if (!test_use_source(TEST_VARIANT(test_sources)->boehm))
        return;
    track_install(false);
    test_pin_to_one_cpu();
    if (!sim())
        GC_disable(); /* no collection (and so no cycle) in the middle of the script */
    gcpool_bufpool_t *bp = make(256, 4096, 0, "t");
    size_t cap;
    void *a = gcpool_buf_get(bp, 100, &cap);  /* 256: miss, waste 156 */
    void *b = gcpool_buf_get(bp, 256, &cap);  /* 256: miss, waste 0 */
    void *c = gcpool_buf_get(bp, 3000, &cap); /* 4096: miss, waste 1096 */
    gcpool_buf_put(bp, a, 256);               /* private */
    gcpool_buf_put(bp, b, 256);               /* shared */
    void *d = gcpool_buf_get(bp, 200, &cap);  /* private hit: a, waste 56 */
    void *e = gcpool_buf_get(bp, 1, &cap);    /* shared hit: b, waste 255 */
    ck_assert_ptr_eq(d, a);
    ck_assert_ptr_eq(e, b);
    gcpool_buf_put(bp, c, 4096);
    void *f = gcpool_buf_get(bp, 5000, &cap); /* oversize, 5000 bytes */
    ck_assert_uint_eq(cap, 5000);
    gcpool_buf_put(bp, f, 5000);              /* oversize put: released */
    gcpool_buf_put(bp, d, 100);               /* undersize put: released */
    gcpool_buf_put(bp, e, 300);               /* rounded down to 256 */
    void *fail;
    atomic_store(&fail_next, 1);
    fail = gcpool_buf_get(bp, 1000, &cap);    /* 1024: miss, no memory */
    ck_assert_ptr_null(fail);
    ck_assert_int_eq(errno, ENOMEM);

    gcpool_bufpool_stats_t s = stats(bp);
    ck_assert_uint_eq(s.nclasses, 5);
    const gcpool_buf_class_stats_t *c256 = &s.classes[0], *c1024 = &s.classes[2],
                                   *c4096 = &s.classes[4];
    ck_assert_uint_eq(c256->size, 256);
    ck_assert_uint_eq(c256->gets, 4);
    ck_assert_uint_eq(c256->miss, 2);
    ck_assert_uint_eq(c256->news, 2);
    ck_assert_uint_eq(c256->hit_private, 1);
    ck_assert_uint_eq(c256->hit_shared, 1);
    ck_assert_uint_eq(c256->hit_steal + c256->hit_victim, 0);
    ck_assert_uint_eq(c256->puts, 3);
    ck_assert_uint_eq(c256->rounded_puts, 1);
    ck_assert_uint_eq(c256->waste, 156 + 0 + 56 + 255);
    ck_assert_uint_eq(c256->bytes_cached, 256);
    ck_assert_uint_eq(c4096->gets, 1);
    ck_assert_uint_eq(c4096->puts, 1);
    ck_assert_uint_eq(c4096->waste, 1096);
    ck_assert_uint_eq(c4096->bytes_cached, 4096);
    ck_assert_uint_eq(c1024->gets, 1);
    ck_assert_uint_eq(c1024->miss, 1);
    ck_assert_uint_eq(c1024->failed, 1);
    ck_assert_uint_eq(c1024->waste, 0);
    ck_assert_uint_eq(c1024->bytes_cached, 0);
    ck_assert_uint_eq(s.classes[1].gets + s.classes[3].gets, 0);
    ck_assert_uint_eq(s.gets, 4 + 1 + 1 + 1);
    ck_assert_uint_eq(s.failed, 1);
    ck_assert_uint_eq(s.waste, 467 + 1096);
    ck_assert_uint_eq(s.oversize_gets, 1);
    ck_assert_uint_eq(s.oversize_bytes, 5000);
    ck_assert_uint_eq(s.oversize_puts, 1);
    ck_assert_uint_eq(s.undersize_puts, 1);
    ck_assert_uint_eq(s.bytes_cached, 256 + 4096);
    ck_assert_uint_eq(s.bytes_dropped, 0);
    if (sim()) {
        ck_assert_int_eq(n_alloc, 4); /* a, b, c, f */
        ck_assert_int_eq(n_free, 2);  /* f and d */
    } else {
        ck_assert_int_eq(n_gc_alloc, 4);
        ck_assert_int_eq(n_alloc + n_free, 0);
    }

    /* The class pools are in the reports, by name. */
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    gcpool_stats_print(out, GCPOOL_STATS_TEXT);
    gcpool_stats_print(out, GCPOOL_STATS_JSON);
    fclose(out);
    ck_assert_ptr_nonnull(strstr(text, "\nt:256 "));
    ck_assert_ptr_nonnull(strstr(text, "\nt:4096 "));
    ck_assert_ptr_nonnull(strstr(text, "\"name\": \"t:1024\""));
    free(text);

    /* Two cycles: one to the victim, one dropped. */
    if (!sim())
        GC_enable();
    test_cycle();
    s = stats(bp);
    ck_assert_uint_eq(s.bytes_cached, 256 + 4096);
    ck_assert_uint_eq(s.bytes_dropped, 0);
    test_cycle();
    s = stats(bp);
    ck_assert_uint_eq(s.classes[0].dropped, 1);
    ck_assert_uint_eq(s.classes[4].dropped, 1);
    ck_assert_uint_eq(s.bytes_dropped, 256 + 4096);
    ck_assert_uint_eq(s.bytes_cached, 0);
    gcpool_bufpool_destroy(bp);
    if (sim())
        assert_all_freed_once();
}
END_TEST

/* ---- bad input and failures ---------------------------------------------------------- */

START_TEST(bad_input)
{
    if (!test_use_source(TEST_VARIANT(test_sources)->boehm))
        return;
    track_install(false);
    static const gcpool_bufpool_options_t bad[] = {
        {.min_size = 300},           {.min_size = 8},    {.max_size = 3000},
        {.max_size = (size_t)1 << 31}, {.min_size = 4096, .max_size = 2048},
        {.min_size = 1},             {.max_size = 8},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        errno = 0;
        ck_assert_ptr_null(gcpool_bufpool_create(&bad[i]));
        ck_assert_int_eq(errno, EINVAL);
    }
    size_t cap = 7;
    errno = 0;
    ck_assert_ptr_null(gcpool_buf_get(NULL, 10, &cap));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_uint_eq(cap, 7);
    char mine[300];
    errno = 0;
    gcpool_buf_put(NULL, mine, sizeof mine);
    ck_assert_int_eq(errno, EINVAL);
    gcpool_bufpool_stats_t s;
    errno = 0;
    ck_assert_int_eq(gcpool_bufpool_read_stats(NULL, &s), -1);
    ck_assert_int_eq(errno, EINVAL);
    errno = 0;
    gcpool_bufpool_destroy(NULL);
    ck_assert_int_eq(errno, EINVAL);

    gcpool_bufpool_t *bp = make(16, 1u << 30, 0, NULL); /* the widest range allowed */
    ck_assert_uint_eq(stats(bp).nclasses, 27);
    errno = 0;
    ck_assert_int_eq(gcpool_bufpool_read_stats(bp, NULL), -1);
    ck_assert_int_eq(errno, EINVAL);
    /* No memory: NULL and ENOMEM, from a class and beyond the classes. */
    atomic_store(&fail_next, 2);
    errno = 0;
    ck_assert_ptr_null(gcpool_buf_get(bp, 100, &cap));
    ck_assert_int_eq(errno, ENOMEM);
    errno = 0;
    ck_assert_ptr_null(gcpool_buf_get(bp, SIZE_MAX / 2, &cap)); /* oversize */
    ck_assert_int_eq(errno, ENOMEM);
    s = stats(bp);
    ck_assert_uint_eq(s.failed, 2);
    ck_assert_uint_eq(s.oversize_gets, 1);
    ck_assert_uint_eq(s.oversize_bytes, 0);
    /* capacity may be NULL; the buffer still goes back by the size asked. */
    void *buf = gcpool_buf_get(bp, 100, NULL);
    ck_assert_ptr_nonnull(buf);
    gcpool_buf_put(bp, buf, 100);
    ck_assert_uint_eq(stats(bp).classes[2].puts, 1); /* 100 rounds down to 64 */
    gcpool_bufpool_destroy(bp);
    if (sim())
        assert_all_freed_once();
}
END_TEST

/* ---- the environment -------------------------------------------------------------------- */

START_TEST(env_bounds)
{
    setenv("GCPOOL_BUF_MIN", "1024", 1);
    setenv("GCPOOL_BUF_MAX", "65536", 1);
    char first[512] = "";
    ck_assert_int_eq(buf_lines(test_capture_stderr(gcp_env_reload), first, sizeof first), 0);
    if (!test_use_source(TEST_VARIANT(test_sources)->boehm))
        return;
    gcpool_bufpool_t *bp = gcpool_bufpool_create(NULL);
    gcpool_bufpool_stats_t s = stats(bp);
    ck_assert_uint_eq(s.min_size, 1024);
    ck_assert_uint_eq(s.max_size, 65536);
    ck_assert_uint_eq(s.nclasses, 7);
    size_t cap;
    void *buf = gcpool_buf_get(bp, 1, &cap);
    ck_assert_uint_eq(cap, 1024);
    gcpool_buf_put(bp, buf, cap);
    buf = gcpool_buf_get(bp, 65537, &cap);
    ck_assert_uint_eq(stats(bp).oversize_gets, 1);
    gcpool_buf_put(bp, buf, cap);
    gcpool_bufpool_destroy(bp);

    /* Options win; the environment's other bound yields to keep them ordered. */
    static const struct {
        size_t min, max, want_min, want_max;
    } cases[] = {
        {512, 0, 512, 65536},
        {0, 4096, 1024, 4096},
        {131072, 0, 131072, 131072},
        {0, 512, 512, 512},
        {64, 128, 64, 128},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        bp = make(cases[i].min, cases[i].max, 0, NULL);
        s = stats(bp);
        ck_assert_uint_eq(s.min_size, cases[i].want_min);
        ck_assert_uint_eq(s.max_size, cases[i].want_max);
        gcpool_bufpool_destroy(bp);
    }
}
END_TEST

static const struct bad_env {
    const char *name, *value, *def;
} bad_env[] = {
    {"GCPOOL_BUF_MIN", "300", "256"},           {"GCPOOL_BUF_MIN", "8", "256"},
    {"GCPOOL_BUF_MIN", "0", "256"},             {"GCPOOL_BUF_MIN", "abc", "256"},
    {"GCPOOL_BUF_MIN", "", "256"},              {"GCPOOL_BUF_MIN", "2147483648", "256"},
    {"GCPOOL_BUF_MAX", "4194305", "4194304"},   {"GCPOOL_BUF_MAX", "-4096", "4194304"},
    {"GCPOOL_BUF_MAX", "2147483648", "4194304"}, {"GCPOOL_BUF_MAX", "4M", "4194304"},
};

START_TEST(env_bad_value)
{
    const struct bad_env *b = &bad_env[_i];
    setenv("GCPOOL_GC", "sim", 1);
    setenv(b->name, b->value, 1);
    char first[512] = "", want[256];
    const char *err = test_capture_stderr(gcp_env_reload);
    ck_assert_msg(buf_lines(err, first, sizeof first) == 1, "%s=%s: want one line, got \"%s\"",
                  b->name, b->value, err);
    snprintf(want, sizeof want, "gcpool: %s=%s ", b->name, b->value);
    ck_assert_msg(strncmp(first, want, strlen(want)) == 0, "got \"%s\"", first);
    snprintf(want, sizeof want, "; using the default %s\n", b->def);
    ck_assert_msg(strstr(first, want), "got \"%s\"", first);
    /* The default is what the buffer pool uses. */
    gcpool_bufpool_t *bp = gcpool_bufpool_create(NULL);
    gcpool_bufpool_stats_t s = stats(bp);
    ck_assert_uint_eq(s.min_size, 256);
    ck_assert_uint_eq(s.max_size, 4u << 20);
    gcpool_bufpool_destroy(bp);
}
END_TEST

START_TEST(env_max_below_min)
{
    setenv("GCPOOL_GC", "sim", 1);
    setenv("GCPOOL_BUF_MIN", "8192", 1);
    setenv("GCPOOL_BUF_MAX", "1024", 1);
    char first[512] = "";
    const char *err = test_capture_stderr(gcp_env_reload);
    ck_assert_msg(buf_lines(err, first, sizeof first) == 1, "got \"%s\"", err);
    ck_assert_msg(strstr(first, "GCPOOL_BUF_MAX=1024 is less than GCPOOL_BUF_MIN=8192"), "got \"%s\"",
                  first);
    gcpool_bufpool_t *bp = gcpool_bufpool_create(NULL);
    gcpool_bufpool_stats_t s = stats(bp);
    ck_assert_uint_eq(s.min_size, 8192);
    ck_assert_uint_eq(s.max_size, 8192);
    gcpool_bufpool_destroy(bp);
}
END_TEST

/* ---- conservation under concurrency ------------------------------------------------------ */

enum { HELD = 4, MIN = 64, MAX = 64 << 10 };

struct worker {
    gcpool_bufpool_t *bp;
    unsigned id;
    long iters;
    uint64_t gets, puts, waste;
    pthread_t thread;
};

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Many small, some medium, a few beyond the largest class. */
static size_t pick_size(uint64_t *rng)
{
    uint64_t r = xorshift(rng);
    unsigned p = (unsigned)(r % 100);
    r >>= 8;
    if (p < 85)
        return (size_t)(r % 4097);                  /* 0 .. 4 KiB */
    if (p < 98)
        return 4097 + (size_t)(r % (MAX - 4096));   /* .. the largest class */
    return MAX + 1 + (size_t)(r % MAX);              /* oversize */
}

static void stamp(unsigned char *buf, size_t cap, uint64_t v)
{
    memcpy(buf, &v, sizeof v);
    memcpy(buf + cap / 2, &v, sizeof v);
    memcpy(buf + cap - sizeof v, &v, sizeof v);
}

static bool stamped(const unsigned char *buf, size_t cap, uint64_t v)
{
    uint64_t x, y, z;
    memcpy(&x, buf, sizeof x);
    memcpy(&y, buf + cap / 2, sizeof y);
    memcpy(&z, buf + cap - sizeof z, sizeof z);
    return x == v && y == v && z == v;
}

static void *conservation_worker(void *arg)
{
    struct worker *w = arg;
    uint64_t rng = 0x9e3779b97f4a7c15ull * (w->id + 1);
    unsigned char *held[HELD] = {0};
    size_t cap[HELD];
    uint64_t mark[HELD];
    for (long i = 0; i < w->iters; i++) {
        int slot = (int)(i % HELD);
        if (held[slot]) {
            /* Still as we left it: nobody else was handed this buffer meanwhile. */
            ck_assert_msg(stamped(held[slot], cap[slot], mark[slot]),
                          "thread %u: a buffer of %zu bytes was changed while held", w->id, cap[slot]);
            size_t give = cap[slot];
            uint64_t r = xorshift(&rng) % 32;
            if (r == 0)
                give = cap[slot] - 1 - (size_t)(xorshift(&rng) % (cap[slot] / 2)); /* rounded down */
            else if (r == 1)
                give = MIN - 1; /* below the classes: released */
            gcpool_buf_put(w->bp, held[slot], give);
            held[slot] = NULL;
            w->puts++;
        }
        size_t size = pick_size(&rng);
        unsigned char *buf = gcpool_buf_get(w->bp, size, &cap[slot]);
        w->gets++;
        ck_assert_ptr_nonnull(buf);
        ck_assert_uint_ge(cap[slot], size);
        ck_assert_uint_ge(cap[slot], MIN);
        w->waste += cap[slot] - size; /* 0 beyond the classes: capacity == size */
        mark[slot] = ((uint64_t)w->id << 40) | (uint64_t)i;
        stamp(buf, cap[slot], mark[slot]);
        held[slot] = buf;
        if (i % 16 == 0)
            sched_yield(); /* let others run while we hold buffers */
    }
    for (int slot = 0; slot < HELD; slot++) {
        if (held[slot]) {
            ck_assert(stamped(held[slot], cap[slot], mark[slot]));
            gcpool_buf_put(w->bp, held[slot], cap[slot]);
            w->puts++;
        }
    }
    return NULL;
}

static _Atomic bool stop_cycles;

static void *cycler(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop_cycles)) {
        test_cycle();
        usleep(2000);
    }
    return NULL;
}

START_TEST(conservation)
{
    if (!test_use_source(TEST_VARIANT(test_sources)->boehm))
        return;
    track_install(false);
    enum { THREADS = 16 };
    const long iters = TEST_BOEHM_OK ? 20000 : 5000; /* sanitizer builds are slower */
    gcpool_bufpool_t *bp = make(MIN, MAX, 0, "cons");
    static struct worker w[THREADS];
    pthread_t cyc;
    atomic_store(&stop_cycles, false);
    ck_assert_int_eq(test_thread_start(&cyc, cycler, NULL), 0);
    for (unsigned i = 0; i < THREADS; i++) {
        w[i] = (struct worker){.bp = bp, .id = i, .iters = iters};
        ck_assert_int_eq(test_thread_start(&w[i].thread, conservation_worker, &w[i]), 0);
    }
    uint64_t gets = 0, puts = 0, waste = 0;
    for (unsigned i = 0; i < THREADS; i++) {
        test_thread_join(w[i].thread);
        gets += w[i].gets;
        puts += w[i].puts;
        waste += w[i].waste;
    }
    atomic_store(&stop_cycles, true);
    test_thread_join(cyc);

    gcpool_bufpool_stats_t s = stats(bp);
    ck_assert_uint_eq(s.gets, gets);
    ck_assert_uint_eq(s.waste, waste); /* every CPU's stripe summed, no add lost */
    uint64_t class_puts = 0, cached = 0;
    for (unsigned k = 0; k < s.nclasses; k++) {
        const gcpool_buf_class_stats_t *c = &s.classes[k];
        class_puts += c->puts;
        cached += c->bytes_cached;
        ck_assert_uint_eq(c->gets, c->hit_private + c->hit_shared + c->hit_steal + c->hit_victim +
                                       c->miss);
        ck_assert_uint_eq(c->bytes_dropped, c->dropped * c->size);
    }
    ck_assert_uint_eq(class_puts + s.oversize_puts + s.undersize_puts, puts);
    ck_assert_uint_eq(cached, s.bytes_cached);
    ck_assert_uint_eq(s.failed, 0);
    ck_assert_uint_gt(s.oversize_gets, 0);
    ck_assert_uint_gt(s.undersize_puts, 0);
    gcpool_bufpool_destroy(bp);
    if (sim()) {
        assert_all_freed_once();
        ck_assert_int_gt(n_alloc, 0);
    }
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("buf");
    TCase *tc = test_tcase(s, "classes", 60);
    test_add_variants(tc, class_selection, test_sources);
    test_add_variants(tc, oversize_never_pooled, test_sources);
    tcase_add_test(tc, boehm_reclaims);
    test_add_variants(tc, allocation_kind, test_sources);
    test_add_variants(tc, capacity_rounded_down, test_sources);
    test_add_variants(tc, zeroing, test_sources);
    test_add_variants(tc, stats_exact, test_sources);
    test_add_variants(tc, bad_input, test_sources);
    TCase *env = test_tcase(s, "env", 0);
    test_add_variants(env, env_bounds, test_sources);
    tcase_add_loop_test(env, env_bad_value, 0, (int)(sizeof bad_env / sizeof *bad_env));
    tcase_add_test(env, env_max_below_min);
    TCase *threads = test_tcase(s, "threads", 300);
    test_add_variants(threads, conservation, test_sources);
    return s;
}

TEST_MAIN(make_suite)
