/* Checked mode (GCPOOL_DEBUG=1, lib/debug.c): a double put is reported on
 * stderr and cached once; one put in four is dropped at random (to free_fn);
 * objects of known size are poisoned while cached, a write after put is
 * reported with its offset, and the owner gets its object back as it put it.
 * Off by default.  Reports are read back by pointing stderr at a temp file. */
#include <errno.h>
#include <stdatomic.h>
#include <inttypes.h>
#include <stdint.h>
#include <unistd.h>

#include <gcpool/buf.h>
#include "tests/internal.h"

#define OBJ_SIZE 64

/* GCPOOL_TEST_N divides the threaded tests' work (valgrind runs with a small one). */
static int test_n(void)
{
    const char *s = getenv("GCPOOL_TEST_N");
    int n = s ? atoi(s) : 1;
    return n < 1 ? 1 : n > 100 ? 100 : n;
}
#define MAX_OBJECTS 100000

/* Every object new_fn made, and how many times it reached free_fn. */
struct world {
    unsigned char *made[MAX_OBJECTS];
    _Atomic int freed[MAX_OBJECTS];
    _Atomic long nmade;
    _Atomic long freed_total;
    _Atomic long freed_damaged; /* free_fn found the object not as it was put */
    gcpool_t *pool;
    _Atomic int stop;
};

static struct world W;

/* Each object starts with its id; with a known size, the rest is a pattern of
 * that id, which free_fn and the tests check. */
static unsigned char fill_byte(long id, size_t i)
{
    return (unsigned char)('A' + (id + (long)i) % 26);
}

static void fill(unsigned char *o, long id, size_t size)
{
    memcpy(o, &id, sizeof id);
    for (size_t i = sizeof id; i < size; i++)
        o[i] = fill_byte(id, i);
}

static bool intact(const unsigned char *o, size_t size)
{
    long id;
    memcpy(&id, o, sizeof id);
    if (id < 0 || id >= atomic_load(&W.nmade) || W.made[id] != o)
        return false;
    for (size_t i = sizeof id; i < size; i++)
        if (o[i] != fill_byte(id, i))
            return false;
    return true;
}

static void *make(void *arg)
{
    (void)arg;
    long id = atomic_fetch_add(&W.nmade, 1);
    ck_assert_int_lt(id, MAX_OBJECTS);
    unsigned char *o = calloc(1, OBJ_SIZE);
    ck_assert_ptr_nonnull(o);
    fill(o, id, OBJ_SIZE);
    W.made[id] = o;
    return o;
}

static long id_of(const void *obj)
{
    long id;
    memcpy(&id, obj, sizeof id);
    return id;
}

/* free_fn: counts, and checks the object is as it was put (the poison undone). */
static void release(void *obj, void *arg)
{
    size_t size = (size_t)(uintptr_t)arg;
    if (!intact(obj, size ? size : sizeof(long)))
        atomic_fetch_add(&W.freed_damaged, 1);
    long id = id_of(obj);
    if (id >= 0 && id < MAX_OBJECTS)
        atomic_fetch_add(&W.freed[id], 1);
    atomic_fetch_add(&W.freed_total, 1);
}

/* The test process's CPUs, kept before the first pin_one_cpu (tests run one
 * after another in one process under CK_FORK=no). */
static cpu_set_t all_cpu_set;
static bool all_cpu_set_saved;

/* Single-threaded tests stay on one CPU: a get on another CPU would not see
 * the private slot the last put filled, and the tests check which object a get
 * returns (Go's tests pin to their P alike). */
static void pin_one_cpu(void)
{
    if (!all_cpu_set_saved) {
        sched_getaffinity(0, sizeof all_cpu_set, &all_cpu_set);
        all_cpu_set_saved = true;
    }
    test_pin_to_one_cpu();
}

static void all_cpus(void)
{
    if (all_cpu_set_saved)
        sched_setaffinity(0, sizeof all_cpu_set, &all_cpu_set);
}

#define DEFAULT_RATE -1 /* the library's own drop rate, which the test checks */
static bool rate_changed;

/* Checked mode on or off, drops at one_in (0: none), the simulated source with
 * no policy (cycles only from gcpool_collect).  GCPOOL_DEBUG is read once per
 * process: when Check does not fork per test (CK_FORK=no), an earlier test has
 * read it, and the test hook says what this test wants. */
static void checked_mode(bool on, int one_in)
{
    test_use_source(0);
    test_setenv("GCPOOL_SIM_NEW", NULL);
    test_setenv("GCPOOL_SIM_INTERVAL_MS", NULL);
    test_setenv("GCPOOL_DEBUG", on ? "1" : NULL);
    gcp_debug_init();
    if (gcp_debug != on)
        gcp_debug_force(on);
    if (one_in != DEFAULT_RATE) {
        gcp_debug_set_drop_rate((unsigned)one_in);
        rate_changed = true;
    } else if (rate_changed) {
        gcp_debug_set_drop_rate(4); /* CK_FORK=no: an earlier test changed it */
    }
    memset(&W, 0, sizeof W);
    pin_one_cpu();
}

static gcpool_t *new_pool(const char *name, size_t size)
{
    gcpool_options_t o = {.new_fn = make, .free_fn = release, .arg = (void *)(uintptr_t)size,
                          .name = name, .size = size};
    W.pool = gcpool_create(&o);
    ck_assert_ptr_nonnull(W.pool);
    return W.pool;
}

/* Destroys the pool and checks that every object made reached free_fn once,
 * as it was put; frees them. */
static void destroy_and_check(gcpool_t *p)
{
    gcpool_destroy(p);
    long made = atomic_load(&W.nmade);
    for (long i = 0; i < made; i++) {
        ck_assert_msg(atomic_load(&W.freed[i]) == 1, "object %ld reached free_fn %d times", i,
                      atomic_load(&W.freed[i]));
        free(W.made[i]);
    }
    ck_assert_int_eq(atomic_load(&W.freed_damaged), 0);
}

/* ---- stderr capture ------------------------------------------------------------ */

struct capture {
    FILE *file;
    int saved_fd;
};

static struct capture capture_start(void)
{
    struct capture c = {tmpfile(), -1};
    ck_assert_ptr_nonnull(c.file);
    fflush(stderr);
    c.saved_fd = dup(STDERR_FILENO);
    ck_assert_int_ge(c.saved_fd, 0);
    ck_assert_int_ge(dup2(fileno(c.file), STDERR_FILENO), 0);
    return c;
}

/* What was written to stderr since capture_start (caller frees). */
static char *capture_end(struct capture c)
{
    fflush(stderr);
    dup2(c.saved_fd, STDERR_FILENO);
    close(c.saved_fd);
    long n = ftell(c.file);
    ck_assert_int_ge(n, 0);
    char *text = calloc(1, (size_t)n + 1);
    rewind(c.file);
    ck_assert_uint_eq(fread(text, 1, (size_t)n, c.file), (size_t)n);
    fclose(c.file);
    return text;
}

static int count_lines_with(const char *text, const char *needle)
{
    int n = 0;
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char *copy = strndup(line, len);
        n += strstr(copy, needle) != NULL;
        free(copy);
        line += len + (end != NULL);
    }
    return n;
}

static int count_lines(const char *text)
{
    return count_lines_with(text, "");
}

/* ---- double put ------------------------------------------------------------------ */

/* Puts obj a second time while the pool holds it: exactly one line, naming the
 * pool and the object; returns nothing, checks it. */
static void double_put(gcpool_t *p, void *obj, const char *pool_name)
{
    struct capture c = capture_start();
    gcpool_put(p, obj);
    char *out = capture_end(c);
    char want[256];
    snprintf(want, sizeof want, "pool \"%s\": put of object %p, which the pool already caches",
             pool_name, obj);
    ck_assert_msg(count_lines(out) == 1 && count_lines_with(out, want) == 1,
                  "want one line with '%s', got '%s'", want, out);
    free(out);
}

START_TEST(test_double_put_reported)
{
    checked_mode(true, 0);
    gcpool_t *p = new_pool("dbl", 0);
    /* In the private slot. */
    void *x = gcpool_get(p);
    gcpool_put(p, x);
    double_put(p, x, "dbl");
    ck_assert_ptr_eq(gcpool_get(p), x);
    void *other = gcpool_get(p);
    ck_assert_ptr_ne(other, x); /* handed out once: the second put cached nothing */
    ck_assert_int_eq(atomic_load(&W.nmade), 2);

    /* In the shared chain (private already taken by x). */
    gcpool_put(p, x);
    gcpool_put(p, other);
    double_put(p, other, "dbl");
    /* In the victim, after a cycle. */
    gcpool_collect();
    double_put(p, x, "dbl");
    void *a = gcpool_get(p), *b = gcpool_get(p), *c = gcpool_get(p);
    ck_assert((a == x && b == other) || (a == other && b == x));
    ck_assert_ptr_ne(c, x);
    ck_assert_ptr_ne(c, other);
    gcpool_put(p, a);
    gcpool_put(p, b);
    gcpool_put(p, c);
    destroy_and_check(p);
}
END_TEST

START_TEST(test_double_put_unnamed_pool)
{
    checked_mode(true, 0);
    gcpool_t *p = new_pool(NULL, 0);
    char name[32];
    snprintf(name, sizeof name, "pool#%u", p->index);
    void *x = gcpool_get(p);
    gcpool_put(p, x);
    double_put(p, x, name);
    destroy_and_check(p);
}
END_TEST

/* Two threads put the same object at the same moment, over and over: one put
 * caches it, the other is reported.  Cached twice, the object would be dropped
 * twice by the two cycles that follow; it must reach free_fn once. */
#define RACES (200 / test_n())
static pthread_barrier_t race_start, race_done;
static void *_Atomic racing_obj;

static void *racer(void *arg)
{
    (void)arg;
    for (int i = 0; i < RACES; i++) {
        pthread_barrier_wait(&race_start);
        gcpool_put(W.pool, atomic_load(&racing_obj));
        pthread_barrier_wait(&race_done);
    }
    return NULL;
}

START_TEST(test_double_put_racing)
{
    checked_mode(true, 0);
    all_cpus(); /* the racers on different CPUs where there are several */
    gcpool_t *p = new_pool("race", 0);
    pthread_barrier_init(&race_start, NULL, 3);
    pthread_barrier_init(&race_done, NULL, 3);
    pthread_t t[2];
    struct capture c = capture_start();
    for (int k = 0; k < 2; k++)
        ck_assert_int_eq(pthread_create(&t[k], NULL, racer, NULL), 0);
    for (int i = 0; i < RACES; i++) {
        void *x = gcpool_get(p); /* new: the last cycles emptied the pool */
        atomic_store(&racing_obj, x);
        pthread_barrier_wait(&race_start);
        pthread_barrier_wait(&race_done);
        gcpool_collect();
        gcpool_collect();
        ck_assert_int_eq(atomic_load(&W.freed[id_of(x)]), 1);
    }
    for (int k = 0; k < 2; k++)
        pthread_join(t[k], NULL);
    char *out = capture_end(c);
    ck_assert_int_eq(count_lines_with(out, "(double put)"), RACES);
    ck_assert_int_eq(count_lines(out), RACES);
    free(out);
    pthread_barrier_destroy(&race_start);
    pthread_barrier_destroy(&race_done);
    ck_assert_int_eq(atomic_load(&W.nmade), RACES);
    destroy_and_check(p);
}
END_TEST

/* The misuse checked mode exists for, with its random drops on: get X, put X,
 * put X, then cycles.  Whatever the first put's draw decided, the second is a
 * double put of an object the pool still holds: reported, not cached twice,
 * and X reaches free_fn once. */
START_TEST(test_double_put_whatever_the_draw)
{
    checked_mode(true, DEFAULT_RATE); /* one put in four dropped at random */
    gcpool_t *p = new_pool("draw", 0);
    enum { ROUNDS = 1000 };
    struct capture c = capture_start();
    for (int i = 0; i < ROUNDS; i++) {
        void *x = gcpool_get(p);
        gcpool_put(p, x);
        gcpool_put(p, x); /* the misuse */
        gcpool_collect();
        gcpool_collect();
        ck_assert_msg(atomic_load(&W.freed[id_of(x)]) == 1,
                      "round %d: object %ld reached free_fn %d times after two cycles", i, id_of(x),
                      atomic_load(&W.freed[id_of(x)]));
    }
    char *out = capture_end(c);
    int reported = count_lines_with(out, "(double put)");
    free(out);
    ck_assert_msg(reported == ROUNDS, "%d of %d double puts reported", reported, ROUNDS);
    destroy_and_check(p);
}
END_TEST

/* ---- random drops ------------------------------------------------------------------ */

START_TEST(test_random_drops)
{
    checked_mode(true, DEFAULT_RATE); /* Go's race mode: one in four */
    gcpool_t *p = new_pool("drops", 0);
    uint64_t cycles = gcpool_cycles();
    int same = 0;
    void *last = NULL;
    for (int i = 0; i < 4000; i++) {
        void *o = gcpool_get(p);
        same += o == last;
        gcpool_put(p, o);
        last = o;
    }
    gcpool_stats_t s;
    gcpool_read_stats(p, &s);
    /* No cycle ran: random drops wait, held, for a drain; without one they go
     * to free_fn in batches of GCP_DEBUG_HELD_MAX. */
    ck_assert_uint_eq(gcpool_cycles(), cycles);
    ck_assert_uint_eq(s.dropped % GCP_DEBUG_HELD_MAX, 0);
    ck_assert_int_eq(atomic_load(&W.freed_total), (long)s.dropped);
    /* One cycle's drain hands over the rest; what was cached moves to the
     * victim, so every drop now is a random one. */
    gcpool_collect();
    gcpool_read_stats(p, &s);
    ck_assert_msg(s.dropped >= 600 && s.dropped <= 1400, "%" PRIu64 " of 4000 puts dropped",
                  s.dropped);
    ck_assert_int_eq(atomic_load(&W.freed_total), (long)s.dropped);
    /* "What I put I get back" fails: a dropped object is not the next get's. */
    ck_assert_int_lt(same, 4000 - 600);
    ck_assert_uint_eq(s.news, (uint64_t)atomic_load(&W.nmade));
    destroy_and_check(p);
}
END_TEST

START_TEST(test_off_by_default)
{
    checked_mode(false, DEFAULT_RATE); /* the rate is there, checked mode is not */
    ck_assert(!gcp_debug);
    gcpool_t *p = new_pool("plain", OBJ_SIZE);
    struct capture c = capture_start();
    for (int i = 0; i < 4000; i++)
        gcpool_put(p, gcpool_get(p));
    unsigned char *o = gcpool_get(p);
    gcpool_put(p, o);
    /* Not poisoned: still as put (a read after put, for the test's sake). */
    bool poisoned = o[sizeof(long)] == 0xdb;
    char *out = capture_end(c);
    ck_assert(!poisoned);
    ck_assert_str_eq(out, "");
    free(out);
    gcpool_stats_t s;
    gcpool_read_stats(p, &s);
    ck_assert_uint_eq(s.dropped, 0);
    ck_assert_int_eq(atomic_load(&W.nmade), 1);
    destroy_and_check(p);
}
END_TEST

/* ---- poison ------------------------------------------------------------------------ */

START_TEST(test_write_after_put)
{
    checked_mode(true, 0);
    gcpool_t *p = new_pool("poisoned", OBJ_SIZE);
    unsigned char *o = gcpool_get(p);
    gcpool_put(p, o);
    /* Cached: poisoned (the test reads after put on purpose). */
    for (size_t i = 0; i < OBJ_SIZE; i++)
        ck_assert_uint_eq(o[i], 0xdb);
    o[10] = 'x'; /* the bug checked mode hunts */
    o[11] = 'y';
    struct capture c = capture_start();
    unsigned char *g = gcpool_get(p);
    char *out = capture_end(c);
    ck_assert_ptr_eq(g, o);
    char want[256];
    snprintf(want, sizeof want,
             "pool \"poisoned\": write after put to object %p at offset 10 (2 of %d bytes changed",
             (void *)o, OBJ_SIZE);
    ck_assert_msg(count_lines(out) == 1 && count_lines_with(out, want) == 1,
                  "want one line with '%s', got '%s'", want, out);
    free(out);
    /* Back as it was put, the stray write undone. */
    ck_assert(intact(g, OBJ_SIZE));
    gcpool_put(p, g);
    destroy_and_check(p);
}
END_TEST

START_TEST(test_write_after_put_found_at_drop)
{
    checked_mode(true, 0);
    gcpool_t *p = new_pool("poisoned", OBJ_SIZE);
    unsigned char *o = gcpool_get(p);
    gcpool_put(p, o);
    o[OBJ_SIZE - 1] = 0;
    struct capture c = capture_start();
    gcpool_collect(); /* to the victim */
    gcpool_collect(); /* dropped: free_fn */
    char *out = capture_end(c);
    ck_assert_int_eq(atomic_load(&W.freed[0]), 1);
    char want[256];
    snprintf(want, sizeof want, "write after put to object %p at offset %d", (void *)o,
             OBJ_SIZE - 1);
    ck_assert_msg(count_lines_with(out, want) == 1 && count_lines_with(out, "at drop") == 1,
                  "want '%s' at drop, got '%s'", want, out);
    free(out);
    destroy_and_check(p); /* free_fn saw the object as it was put */
}
END_TEST

START_TEST(test_poison_silent_when_nobody_writes)
{
    checked_mode(true, 0);
    gcpool_t *p = new_pool("clean", OBJ_SIZE);
    struct capture c = capture_start();
    /* Private, shared, victim, dropped: each way out restores the object. */
    unsigned char *o[4];
    for (int k = 0; k < 4; k++)
        o[k] = gcpool_get(p);
    for (int k = 0; k < 4; k++)
        gcpool_put(p, o[k]);
    for (int k = 0; k < 4; k++) {
        unsigned char *g = gcpool_get(p);
        ck_assert(intact(g, OBJ_SIZE));
        o[k] = g;
    }
    for (int k = 0; k < 4; k++)
        gcpool_put(p, o[k]);
    gcpool_collect();
    for (int k = 0; k < 2; k++) {
        unsigned char *g = gcpool_get(p); /* from the victim */
        ck_assert(intact(g, OBJ_SIZE));
        gcpool_put(p, g);
    }
    gcpool_collect();
    gcpool_collect(); /* drops all four: free_fn checks them */
    ck_assert_int_eq(atomic_load(&W.freed_total), 4);
    char *out = capture_end(c);
    ck_assert_str_eq(out, "");
    free(out);
    ck_assert_int_eq(atomic_load(&W.nmade), 4);
    destroy_and_check(p);
}
END_TEST

/* ---- buffer pools ----------------------------------------------------------------- */

/* Checked mode knows the capacity each buffer was handed out with: a put that
 * claims more is reported (pool, address, both capacities) and the buffer is
 * released, not pooled, so no later get can hand a 256-byte buffer to a
 * caller who asked for 64 KiB.  (Before, the poison alone wrote 64 KiB over
 * the heap.)  A double put under two capacities, and a buffer no buffer pool
 * handed out, are reported and ignored. */
START_TEST(test_buf_wrong_capacity_reported)
{
    checked_mode(true, 0);
    test_watchdog(60, "test_buf_wrong_capacity_reported");
    gcpool_bufpool_options_t bo = {.name = "scratch"};
    gcpool_bufpool_t *bp = gcpool_bufpool_create(&bo);
    ck_assert_ptr_nonnull(bp);
    size_t cap;
    char *small = gcpool_buf_get(bp, 200, &cap);
    ck_assert_uint_eq(cap, 256);
    struct capture c = capture_start();
    gcpool_buf_put(bp, small, 65536);
    char *out = capture_end(c);
    char want[256];
    snprintf(want, sizeof want,
             "buffer pool \"scratch\": put of buffer %p with capacity 65536, but it was handed out "
             "with capacity 256",
             (void *)small);
    ck_assert_msg(count_lines(out) == 1 && count_lines_with(out, want) == 1,
                  "want one line with '%s', got '%s'", want, out);
    free(out);
    /* Not pooled: the 64 KiB class is empty, and its get is a real 64 KiB. */
    char *big = gcpool_buf_get(bp, 65536, &cap);
    ck_assert_ptr_ne(big, small);
    ck_assert_uint_eq(cap, 65536);
    memset(big, 'x', cap);
    gcpool_bufpool_stats_t st;
    gcpool_bufpool_read_stats(bp, &st);
    ck_assert_uint_eq(st.classes[8].puts, 0); /* 256 << 8 == 65536: nothing went in */
    ck_assert_uint_eq(st.classes[8].news, 1);

    /* Put back right, then again under another capacity: one line, ignored. */
    gcpool_buf_put(bp, big, cap);
    c = capture_start();
    gcpool_buf_put(bp, big, 4096);
    out = capture_end(c);
    snprintf(want, sizeof want, "buffer pool \"scratch\": put of buffer %p, which was already put back",
             (void *)big);
    ck_assert_msg(count_lines(out) == 1 && count_lines_with(out, want) == 1,
                  "want one line with '%s', got '%s'", want, out);
    free(out);
    gcpool_bufpool_read_stats(bp, &st);
    ck_assert_uint_eq(st.classes[4].puts, 0); /* the 4096 class got nothing */

    /* A buffer no buffer pool handed out: reported, left alone. */
    static char foreign[1024];
    c = capture_start();
    gcpool_buf_put(bp, foreign, sizeof foreign);
    out = capture_end(c);
    snprintf(want, sizeof want, "put of buffer %p, which no buffer pool handed out", (void *)foreign);
    ck_assert_msg(count_lines(out) == 1 && count_lines_with(out, want) == 1,
                  "want one line with '%s', got '%s'", want, out);
    free(out);
    gcpool_bufpool_destroy(bp);
    test_watchdog_off();
}
END_TEST

/* ---- use after destroy ------------------------------------------------------------- */

/* In checked mode a destroyed pool's handle stays reserved, so a second
 * destroy, a put, a get, a trim and a read of statistics through it are reported and
 * refused (EINVAL) instead of reading freed memory. */
START_TEST(test_use_after_destroy_reported)
{
    checked_mode(true, 0);
    gcpool_t *p = new_pool("gone", 0);
    void *x = gcpool_get(p), *y = gcpool_get(p);
    gcpool_put(p, x);
    gcpool_destroy(p); /* x to free_fn */
    ck_assert_int_eq(atomic_load(&W.freed[id_of(x)]), 1);
    struct capture c = capture_start();
    errno = 0;
    gcpool_destroy(p);
    int destroy_errno = errno;
    errno = 0;
    gcpool_put(p, y);
    int put_errno = errno;
    errno = 0;
    void *g = gcpool_get(p);
    int get_errno = errno;
    gcpool_stats_t s;
    errno = 0;
    int r = gcpool_read_stats(p, &s);
    int stats_errno = errno;
    errno = 0;
    int trim_r = gcpool_trim(p);
    int trim_errno = errno;
    char *out = capture_end(c);
    ck_assert_int_eq(destroy_errno, EINVAL);
    ck_assert_int_eq(put_errno, EINVAL);
    ck_assert_ptr_null(g);
    ck_assert_int_eq(get_errno, EINVAL);
    ck_assert_int_eq(r, -1);
    ck_assert_int_eq(stats_errno, EINVAL);
    ck_assert_int_eq(trim_r, -1);
    ck_assert_int_eq(trim_errno, EINVAL);
    ck_assert_msg(count_lines(out) == 5 && count_lines_with(out, "pool \"gone\"") == 5 &&
                      count_lines_with(out, "was destroyed") == 5 &&
                      count_lines_with(out, "gcpool_trim") == 1 &&
                      count_lines_with(out, "gcpool_destroy") == 1 &&
                      count_lines_with(out, "gcpool_put") == 1 &&
                      count_lines_with(out, "gcpool_get") == 1 &&
                      count_lines_with(out, "gcpool_read_stats") == 1,
                  "want five lines, one per call, got '%s'", out);
    free(out);
    /* The put did not take y: still the caller's, never seen by free_fn. */
    ck_assert_int_eq(atomic_load(&W.freed[id_of(y)]), 0);
    free(x);
    free(y);

    /* Buffer pools alike. */
    gcpool_bufpool_options_t bo = {.name = "gonebuf"};
    gcpool_bufpool_t *bp = gcpool_bufpool_create(&bo);
    size_t cap;
    void *b = gcpool_buf_get(bp, 100, &cap);
    gcpool_bufpool_destroy(bp);
    c = capture_start();
    gcpool_bufpool_destroy(bp);
    gcpool_buf_put(bp, b, cap);
    void *b2 = gcpool_buf_get(bp, 100, &cap);
    out = capture_end(c);
    ck_assert_ptr_null(b2);
    ck_assert_msg(count_lines(out) == 3 && count_lines_with(out, "buffer pool \"gonebuf\"") == 3 &&
                      count_lines_with(out, "was destroyed") == 3,
                  "want three lines, got '%s'", out);
    free(out);
    free(b); /* the simulated source: malloc'd, and still ours */
}
END_TEST

/* ---- many threads ---------------------------------------------------------------- */

#define THREAD_ITERATIONS (4000 / test_n())
static _Atomic int in_use[MAX_OBJECTS];

static void *worker(void *arg)
{
    gcpool_t *p = arg;
    unsigned char *held[3];
    for (int i = 0; i < THREAD_ITERATIONS; i++) {
        int n = 1 + i % 3;
        for (int k = 0; k < n; k++) {
            held[k] = gcpool_get(p);
            ck_assert_msg(intact(held[k], OBJ_SIZE), "an object came back changed");
            long id = id_of(held[k]);
            ck_assert_msg(atomic_fetch_add(&in_use[id], 1) == 0, "object %ld handed out twice", id);
        }
        for (int k = 0; k < n; k++) {
            atomic_store(&in_use[id_of(held[k])], 0);
            gcpool_put(p, held[k]);
        }
    }
    return NULL;
}

static void *cycler(void *arg)
{
    (void)arg;
    while (!atomic_load(&W.stop)) {
        gcpool_collect();
        usleep(500);
    }
    return NULL;
}

/* All hooks at once from many threads, with cycles and random drops: no false
 * report, nothing handed out twice, everything to free_fn once, intact. */
START_TEST(test_threads_no_false_reports)
{
    checked_mode(true, DEFAULT_RATE);
    all_cpus();
    memset(in_use, 0, sizeof in_use);
    gcpool_t *p = new_pool("threads", OBJ_SIZE);
    enum { N = 8 };
    pthread_t t[N], cyc;
    struct capture c = capture_start();
    ck_assert_int_eq(pthread_create(&cyc, NULL, cycler, NULL), 0);
    for (int k = 0; k < N; k++)
        ck_assert_int_eq(pthread_create(&t[k], NULL, worker, p), 0);
    for (int k = 0; k < N; k++)
        pthread_join(t[k], NULL);
    atomic_store(&W.stop, 1);
    pthread_join(cyc, NULL);
    char *out = capture_end(c);
    ck_assert_str_eq(out, "");
    free(out);
    gcpool_stats_t s;
    gcpool_read_stats(p, &s);
    ck_assert_uint_gt(s.dropped, 0);
    destroy_and_check(p);
}
END_TEST

/* ---- Boehm ---------------------------------------------------------------------- */

struct node {
    struct node *inner; /* the only reference to inner while cached: in the copy */
    long pad[3];
};

static _Atomic int finalized;

static void on_finalize(void *obj, void *arg)
{
    (void)obj, (void)arg;
    atomic_fetch_add(&finalized, 1);
}

static __attribute__((noinline)) struct node *make_node_with_inner(void)
{
    struct node *n = GC_MALLOC(sizeof *n);
    n->inner = GC_MALLOC(sizeof *n->inner);
    GC_register_finalizer(n->inner, on_finalize, NULL, NULL, NULL);
    return n;
}

/* Under Boehm a poisoned object's pointers live only in its copy, which the
 * collector must scan: what they point to survives while the object is cached,
 * and the object comes back whole. */
START_TEST(test_boehm_poison_keeps_pointees)
{
    if (!test_use_source(1))
        return;
    pin_one_cpu(); /* the get must find this CPU's victim private slot */
    test_setenv("GCPOOL_DEBUG", "1");
    gcp_debug_init();
    if (!gcp_debug)
        gcp_debug_force(true);
    gcp_debug_set_drop_rate(0);
    gcpool_options_t o = {.name = "boehm", .size = sizeof(struct node)};
    gcpool_t *p = gcpool_create(&o);
    if (gcp_glue_source() != GCP_SOURCE_BOEHM) {
        printf("SKIP: this process already chose the simulated source; Boehm case skipped\n");
        gcpool_destroy(p);
        return;
    }
    struct node *n = make_node_with_inner();
    uintptr_t hidden_inner = ~(uintptr_t)n->inner; /* not a pointer the collector sees */
    gcpool_put(p, n);
    ck_assert_ptr_eq(n->inner, (void *)0xdbdbdbdbdbdbdbdbULL); /* poisoned while cached */
    n = NULL;
    GC_gcollect(); /* one cycle: to the victim, still cached */
    GC_invoke_finalizers();
    ck_assert_int_eq(atomic_load(&finalized), 0);
    struct node *g = gcpool_get(p);
    ck_assert_ptr_nonnull(g);
    ck_assert_ptr_eq(g->inner, (void *)~hidden_inner);
    gcpool_destroy(p);
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("debug");
    TCase *tc = test_tcase(s, "checked mode", 120);
    tcase_add_test(tc, test_off_by_default);
    tcase_add_test(tc, test_double_put_reported);
    tcase_add_test(tc, test_double_put_unnamed_pool);
    tcase_add_test(tc, test_double_put_racing);
    tcase_add_test(tc, test_double_put_whatever_the_draw);
    tcase_add_test(tc, test_random_drops);
    tcase_add_test(tc, test_write_after_put);
    tcase_add_test(tc, test_write_after_put_found_at_drop);
    tcase_add_test(tc, test_poison_silent_when_nobody_writes);
    tcase_add_test(tc, test_buf_wrong_capacity_reported);
    tcase_add_test(tc, test_use_after_destroy_reported);
    tcase_add_test(tc, test_threads_no_false_reports);
    tcase_add_test(tc, test_boehm_poison_keeps_pointees);
    return s;
}

TEST_MAIN(make_suite)
