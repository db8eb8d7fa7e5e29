/* Every public function called from inside free_fn and new_fn, during a
 * cycle's drain and during gcpool_destroy: each works, is deferred, or is
 * refused with errno EDEADLK and one warning line, exactly as <gcpool.h>
 * says, and none hangs (a watchdog fails the test instead).  Every object
 * made reaches free_fn exactly once, whatever the calls did. */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>

#include <gcpool/buf.h>
#include "tests/internal.h"

/* ---- objects: each knows whether free_fn saw it ------------------------------------ */

struct object {
    long magic;
    _Atomic int freed;
};
#define MAGIC 0x0b1ec7
#define MAX_OBJECTS 4096

static struct object *made[MAX_OBJECTS];
static _Atomic long nmade;

static void *make(void)
{
    long id = atomic_fetch_add(&nmade, 1);
    ck_assert_int_lt(id, MAX_OBJECTS);
    struct object *o = calloc(1, sizeof *o);
    ck_assert_ptr_nonnull(o);
    o->magic = MAGIC;
    made[id] = o;
    return o;
}

static void note_freed(void *obj)
{
    struct object *o = obj;
    ck_assert_int_eq(o->magic, MAGIC);
    ck_assert_msg(atomic_fetch_add(&o->freed, 1) == 0, "an object reached free_fn twice");
}

/* After every pool is gone: each object made reached free_fn once. */
static void settle(void)
{
    long n = atomic_load(&nmade);
    for (long i = 0; i < n; i++) {
        ck_assert_msg(atomic_load(&made[i]->freed) == 1, "object %ld reached free_fn %d times", i,
                      atomic_load(&made[i]->freed));
        free(made[i]);
    }
    atomic_store(&nmade, 0);
}

/* ---- the scene --------------------------------------------------------------------- */

enum context { FREE_IN_DRAIN, FREE_IN_DESTROY, NEW_IN_DRAIN, NEW_IN_DESTROY, CONTEXTS };
static const char *const context_names[CONTEXTS] = {
    "free_fn during a cycle's drain", "free_fn during gcpool_destroy",
    "new_fn during a cycle's drain", "new_fn during gcpool_destroy"};

enum outcome { WORKS, DEFERRED, REFUSED };
static const char *const outcome_names[] = {"works", "deferred", "refused (EDEADLK)"};

/* own: the pool whose callback makes the call; other: a bystander holding one
 * object; trigger: in NEW_IN_DRAIN, the pool whose drain runs own's new_fn. */
static gcpool_t *own, *other, *trigger;
static bool own_gone, other_gone;
static enum context context;
static bool armed;         /* the callback makes the call on its next run */
static bool trigger_armed; /* free_fn gets from own, so that own's new_fn runs */
static bool made_call;
static enum outcome observed;
static uint64_t cycles_before_call;
static const struct call *current;

struct call {
    const char *name;
    enum outcome (*run)(void);
    enum outcome expect[CONTEXTS];
};

static void *own_new(void *arg)
{
    (void)arg;
    void *obj = make();
    if (armed && (context == NEW_IN_DRAIN || context == NEW_IN_DESTROY)) {
        armed = false;
        made_call = true;
        observed = current->run();
    }
    return obj;
}

static void *plain_new(void *arg)
{
    (void)arg;
    return make();
}

/* Makes own's new_fn run from here: own is empty (or being destroyed). */
static void get_from_own(void)
{
    trigger_armed = false;
    void *obj = gcpool_get(own);
    ck_assert_ptr_nonnull(obj);
    gcpool_put(own, obj);
}

static void own_free(void *obj, void *arg)
{
    (void)arg;
    note_freed(obj);
    if (armed && (context == FREE_IN_DRAIN || context == FREE_IN_DESTROY)) {
        armed = false;
        made_call = true;
        observed = current->run();
    }
    if (trigger_armed && context == NEW_IN_DESTROY)
        get_from_own();
}

static void plain_free(void *obj, void *arg)
{
    (void)arg;
    note_freed(obj);
}

static void trigger_free(void *obj, void *arg)
{
    (void)arg;
    note_freed(obj);
    if (trigger_armed)
        get_from_own();
}

static gcpool_t *new_pool(const char *name, gcpool_new_fn new_fn, gcpool_free_fn free_fn)
{
    gcpool_options_t o = {.new_fn = new_fn, .free_fn = free_fn, .name = name};
    gcpool_t *p = gcpool_create(&o);
    ck_assert_ptr_nonnull(p);
    return p;
}

/* ---- the calls ---------------------------------------------------------------------- */

static enum outcome refused_or(enum outcome otherwise)
{
    return errno == EDEADLK ? REFUSED : otherwise;
}

static enum outcome call_create_destroy(void)
{
    gcpool_t *p = new_pool("fresh", plain_new, plain_free);
    void *obj = gcpool_get(p);
    ck_assert_ptr_nonnull(obj);
    gcpool_put(p, obj);
    errno = 0;
    gcpool_destroy(p);
    return refused_or(WORKS);
}

static enum outcome call_destroy_other(void)
{
    errno = 0;
    gcpool_destroy(other);
    if (errno == EDEADLK)
        return REFUSED;
    other_gone = true;
    return WORKS;
}

static enum outcome call_destroy_own(void)
{
    errno = 0;
    gcpool_destroy(own);
    if (errno == EDEADLK)
        return REFUSED;
    own_gone = true;
    return WORKS;
}

static enum outcome get_put(gcpool_t *p)
{
    void *obj = gcpool_get(p);
    ck_assert_ptr_nonnull(obj); /* a cached object or new_fn's */
    gcpool_put(p, obj);
    return WORKS;
}

static enum outcome call_get_put_own(void)
{
    return get_put(own);
}

static enum outcome call_get_put_other(void)
{
    return get_put(other);
}

static enum outcome call_collect(void)
{
    uint64_t before = gcpool_cycles();
    errno = 0;
    gcpool_collect();
    if (errno == EDEADLK)
        return REFUSED;
    cycles_before_call = before;
    return gcpool_cycles() == before + 1 ? WORKS : DEFERRED;
}

static enum outcome call_cycles(void)
{
    uint64_t c = gcpool_cycles();
    ck_assert_uint_ge(gcpool_cycles(), c);
    return WORKS;
}

static enum outcome read_stats(gcpool_t *p)
{
    gcpool_stats_t s;
    errno = 0;
    int r = gcpool_read_stats(p, &s);
    if (r != 0)
        return refused_or(WORKS);
    ck_assert_uint_eq(s.gets, s.hit_private + s.hit_shared + s.hit_steal + s.hit_victim + s.miss);
    return WORKS;
}

static enum outcome call_read_stats_own(void)
{
    return read_stats(own);
}

static enum outcome call_read_stats_other(void)
{
    return read_stats(other);
}

static enum outcome call_stats_print(void)
{
    FILE *out = tmpfile();
    ck_assert_ptr_nonnull(out);
    errno = 0;
    gcpool_stats_print(out, GCPOOL_STATS_JSON);
    enum outcome o = refused_or(WORKS);
    if (o == WORKS) {
        long n = ftell(out);
        ck_assert_int_gt(n, 0);
        char text[64] = {0};
        rewind(out);
        ck_assert_uint_gt(fread(text, 1, sizeof text - 1, out), 0);
        ck_assert_ptr_nonnull(strstr(text, "\"version\""));
    }
    fclose(out);
    return o;
}

static enum outcome call_version(void)
{
    ck_assert_str_eq(gcpool_version(), PACKAGE_VERSION);
    return WORKS;
}

static enum outcome call_buffers(void)
{
    gcpool_bufpool_t *bp = gcpool_bufpool_create(NULL);
    ck_assert_ptr_nonnull(bp);
    size_t cap;
    void *buf = gcpool_buf_get(bp, 1500, &cap);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(cap, 2048);
    gcpool_buf_put(bp, buf, cap);
    gcpool_bufpool_stats_t s;
    ck_assert_int_eq(gcpool_bufpool_read_stats(bp, &s), 0);
    ck_assert_uint_eq(s.gets, 1);
    errno = 0;
    gcpool_bufpool_destroy(bp);
    return refused_or(WORKS);
}

/* <gcpool.h>'s table, by context: FREE_IN_DRAIN, FREE_IN_DESTROY, NEW_IN_DRAIN,
 * NEW_IN_DESTROY. */
static const struct call calls[] = {
    {"gcpool_create, get, put, gcpool_destroy of a new pool", call_create_destroy,
     {WORKS, WORKS, WORKS, WORKS}},
    {"gcpool_destroy of another pool", call_destroy_other, {WORKS, WORKS, WORKS, WORKS}},
    {"gcpool_destroy of the callback's own pool", call_destroy_own,
     {REFUSED, REFUSED, REFUSED, REFUSED}},
    {"gcpool_get and gcpool_put of the callback's own pool", call_get_put_own,
     {WORKS, WORKS, WORKS, WORKS}},
    {"gcpool_get and gcpool_put of another pool", call_get_put_other, {WORKS, WORKS, WORKS, WORKS}},
    {"gcpool_collect", call_collect, {DEFERRED, WORKS, DEFERRED, WORKS}},
    {"gcpool_cycles", call_cycles, {WORKS, WORKS, WORKS, WORKS}},
    {"gcpool_read_stats of the callback's own pool", call_read_stats_own,
     {WORKS, WORKS, WORKS, WORKS}},
    {"gcpool_read_stats of another pool", call_read_stats_other, {WORKS, WORKS, WORKS, WORKS}},
    {"gcpool_stats_print", call_stats_print, {WORKS, WORKS, WORKS, WORKS}},
    {"gcpool_version", call_version, {WORKS, WORKS, WORKS, WORKS}},
    {"gcpool_bufpool_create, buf_get, buf_put, bufpool_read_stats, bufpool_destroy",
     call_buffers, {WORKS, WORKS, WORKS, WORKS}},
};
#define NCALLS (sizeof calls / sizeof calls[0])

/* ---- one call in one context ---------------------------------------------------------- */

static uint64_t cycles_at_end;

/* Sets up the pools, makes the callback run with the call armed, tears down.
 * Runs with stderr captured (test_capture_stderr). */
static void scene(void)
{
    bool in_new = context == NEW_IN_DRAIN || context == NEW_IN_DESTROY;
    own = new_pool("own", in_new ? own_new : plain_new, own_free);
    other = new_pool("other", plain_new, plain_free);
    trigger = new_pool("trigger", plain_new, trigger_free);
    own_gone = other_gone = false;
    gcpool_put(other, make());
    made_call = false;
    cycles_before_call = 0;
    switch (context) {
    case FREE_IN_DRAIN: /* own's object dropped by the second cycle */
        gcpool_put(own, make());
        armed = true;
        gcpool_collect();
        gcpool_collect();
        break;
    case FREE_IN_DESTROY:
        gcpool_put(own, make());
        armed = true;
        gcpool_destroy(own);
        own_gone = true;
        break;
    case NEW_IN_DRAIN: /* trigger's drop gets from own, which is empty */
        gcpool_put(trigger, make());
        armed = trigger_armed = true;
        gcpool_collect();
        gcpool_collect();
        break;
    case NEW_IN_DESTROY: /* own's free_fn gets from own while it is destroyed */
        gcpool_put(own, make());
        armed = trigger_armed = true;
        gcpool_destroy(own);
        own_gone = true;
        break;
    case CONTEXTS:
        break;
    }
    cycles_at_end = gcpool_cycles();
    armed = trigger_armed = false;
    if (!own_gone)
        gcpool_destroy(own);
    if (!other_gone)
        gcpool_destroy(other);
    gcpool_destroy(trigger);
}

static int count_lines_with(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static char watchdog_text[256];

START_TEST(test_every_call_from_callbacks)
{
    test_use_source(0);
    test_setenv("GCPOOL_SIM_NEW", NULL);
    test_setenv("GCPOOL_SIM_INTERVAL_MS", NULL);
    context = (enum context)_i;
    /* The topology now, outside the captures: hwloc may warn (under valgrind). */
    gcpool_destroy(gcpool_create(NULL));
    for (size_t k = 0; k < NCALLS; k++) {
        current = &calls[k];
        snprintf(watchdog_text, sizeof watchdog_text, "'%s' from %s", current->name,
                 context_names[context]);
        test_watchdog(30, watchdog_text);
        const char *err = test_capture_stderr(scene);
        test_watchdog_off();
        enum outcome want = current->expect[context];
        ck_assert_msg(made_call, "%s: the callback never ran", watchdog_text);
        ck_assert_msg(observed == want, "%s: %s, want %s", watchdog_text, outcome_names[observed],
                      outcome_names[want]);
        int lines = count_lines_with(err, "\n");
        int refusals = count_lines_with(err, "refused (EDEADLK)");
        ck_assert_msg(refusals == (want == REFUSED) && lines == refusals,
                      "%s: want %d warning line(s), got '%s'", watchdog_text, want == REFUSED, err);
        if (want == REFUSED)
            ck_assert_msg(strstr(err, "gcpool_destroy of pool \"own\"") != NULL, "%s: '%s'",
                          watchdog_text, err);
        if (want == DEFERRED) /* it ran once the drain ended, before the outer call returned */
            ck_assert_msg(cycles_at_end >= cycles_before_call + 1,
                          "%s: the deferred cycle never ran (%llu cycles, %llu before the call)",
                          watchdog_text, (unsigned long long)cycles_at_end,
                          (unsigned long long)cycles_before_call);
        settle();
    }
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("reentry");
    TCase *tc = test_tcase(s, "callbacks", 120);
    tcase_add_loop_test(tc, test_every_call_from_callbacks, 0, CONTEXTS);
    return s;
}

TEST_MAIN(make_suite)
