/* Signal handlers that get and put: a storm of SIGUSR1 on worker threads (and
 * on the thread running cycles) whose handler takes an object from a pool and
 * puts it back, while the workers get, put, create pools, use them for the
 * first time and destroy them.  A handler that interrupted a pool call on its
 * own thread must not wait for what that call holds (the first use's lock, a
 * local's pin, a drain): nothing may hang (a watchdog fails the test instead),
 * no object may reach two users, and every object made must reach free_fn
 * exactly once.  new_fn and free_fn are async-signal-safe here, as a
 * handler's must be: objects come from a static array, and free_fn counts.
 * Both pins (the lock pin, rseq). */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "tests/internal.h"

/* ThreadSanitizer reports any malloc inside a signal handler.  Here a
 * handler's put may link a new ring, and its get may make an upcoming pool's
 * first use, which allocate — <gcpool.h> says so — and cannot deadlock: these
 * threads allocate nothing outside the library, and the library's own
 * allocations make a handler's call act as an empty pool's.  Races are still
 * reported. */
#if defined(__SANITIZE_THREAD__) || defined(GCPOOL_FASTPATH_TSAN_)
/* Default visibility: the runtime finds it in the executable's dynamic symbols. */
__attribute__((visibility("default"))) const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
    return "report_signal_unsafe=0";
}
#endif

/* ---- async-signal-safe objects ----------------------------------------------------- */

#define MAX_OBJECTS (1 << 20)

struct object {
    _Atomic int users; /* 1 while handed out */
    _Atomic int freed; /* free_fn calls */
};

static struct object objects[MAX_OBJECTS];
static _Atomic long nmade;
static _Atomic int trouble; /* what went wrong, found where ck_assert may not run */
enum { OK, TOO_MANY, TWO_USERS, FREED_TWICE, FREED_IN_USE, USED_AFTER_FREE };

static void report(int what)
{
    int ok = OK;
    atomic_compare_exchange_strong(&trouble, &ok, what);
}

static void *make(void *arg)
{
    (void)arg;
    long id = atomic_fetch_add(&nmade, 1);
    if (id >= MAX_OBJECTS) {
        report(TOO_MANY);
        return NULL;
    }
    return &objects[id];
}

static void release(void *obj, void *arg)
{
    (void)arg;
    struct object *o = obj;
    if (atomic_load(&o->users))
        report(FREED_IN_USE);
    if (atomic_fetch_add(&o->freed, 1))
        report(FREED_TWICE);
}

static struct object *take(gcpool_t *p)
{
    struct object *o = gcpool_get(p);
    if (!o)
        return NULL;
    if (atomic_fetch_add(&o->users, 1))
        report(TWO_USERS);
    if (atomic_load(&o->freed))
        report(USED_AFTER_FREE);
    return o;
}

static void give(gcpool_t *p, struct object *o)
{
    if (o) {
        atomic_store(&o->users, 0);
        gcpool_put(p, o);
    }
}

/* ---- the handler -------------------------------------------------------------------- */

static gcpool_t *common;                         /* every thread's, for the run */
static _Thread_local gcpool_t *_Atomic mine;     /* the worker's pool of the moment */
static _Thread_local gcpool_t *_Atomic upcoming; /* the one it is setting up, or NULL */
static _Atomic long handled;

/* Two objects from the common pool, so that the second comes from past the
 * private slot (the chain, under the local's pin), and one from each of the
 * worker's pools, the upcoming one perhaps in the middle of its first use. */
static void on_signal(int sig)
{
    (void)sig;
    int saved = errno;
    gcpool_t *p = atomic_load(&mine), *q = atomic_load(&upcoming);
    struct object *a = take(common), *b = take(common);
    struct object *c = p ? take(p) : NULL, *d = q ? take(q) : NULL;
    give(common, a);
    give(common, b);
    if (p)
        give(p, c);
    if (q)
        give(q, d);
    atomic_fetch_add(&handled, 1);
    errno = saved;
}

/* ---- the threads -------------------------------------------------------------------- */

static _Atomic int stop;

static gcpool_t *new_pool(void)
{
    gcpool_options_t o = {.new_fn = make, .free_fn = release};
    gcpool_t *p = gcpool_create(&o);
    ck_assert_ptr_nonnull(p);
    return p;
}

/* A new pool's first use: its arrays are allocated under its lock, which a
 * handler interrupting it (and using that very pool) must not wait for.  A
 * handler may even come first and make the first use itself: that allocates,
 * so <gcpool.h> does not call it async-signal-safe, but it must not hang, and
 * cannot deadlock here (nothing else on these threads calls malloc). */
static gcpool_t *new_pool_used(void)
{
    gcpool_t *p = new_pool();
    atomic_store(&upcoming, p);
    give(p, take(p));
    atomic_store(&upcoming, NULL);
    return p;
}

static void *worker(void *arg)
{
    (void)arg;
    atomic_store(&mine, new_pool_used());
    for (long round = 0; !atomic_load(&stop); round++) {
        gcpool_t *p = atomic_load(&mine);
        for (int i = 0; i < 200 && !atomic_load(&stop); i++) {
            struct object *held[4];
            int n = 1 + (int)((round + i) % 4);
            for (int k = 0; k < n; k++)
                held[k] = take(k % 2 ? p : common);
            for (int k = 0; k < n; k++)
                give(k % 2 ? p : common, held[k]);
        }
        /* The next pool, set up while the handler uses this one; then this
         * one is destroyed, the handler (on this thread) using the next. */
        atomic_store(&mine, new_pool_used());
        gcpool_destroy(p);
    }
    gcpool_t *p = atomic_load(&mine);
    atomic_store(&mine, NULL);
    gcpool_destroy(p);
    return NULL;
}

static void *cycler(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        gcpool_collect();
        usleep(100);
    }
    return NULL;
}

enum { WORKERS = 4 };
static pthread_t victims[WORKERS + 1];

static void *storm(void *arg)
{
    (void)arg;
    for (unsigned k = 0; !atomic_load(&stop); k++) {
        pthread_kill(victims[k % (WORKERS + 1)], SIGUSR1);
        if (k % 64 == 0)
            sched_yield();
    }
    return NULL;
}

/* GCPOOL_TEST_N divides the run's length (valgrind runs with a small one). */
static double seconds(void)
{
    const char *s = getenv("GCPOOL_TEST_N");
    int n = s ? atoi(s) : 1;
    return 1.5 / (n < 1 ? 1 : n);
}

START_TEST(test_signal_storm)
{
    const struct test_pin *pin = TEST_VARIANT(test_pins);
    test_use_source(0);
    test_setenv("GCPOOL_SIM_NEW", NULL);
    test_setenv("GCPOOL_SIM_INTERVAL_MS", NULL);
    if (!test_use_pin(pin->rseq))
        return;
    test_watchdog(30, pin->rseq ? "the signal storm (rseq pin)" : "the signal storm (lock pin)");
    struct sigaction sa = {.sa_handler = on_signal, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);
    atomic_store(&stop, 0);
    common = new_pool();
    for (int k = 0; k < WORKERS; k++)
        ck_assert_int_eq(pthread_create(&victims[k], NULL, worker, NULL), 0);
    ck_assert_int_eq(pthread_create(&victims[WORKERS], NULL, cycler, NULL), 0);
    pthread_t stormer;
    ck_assert_int_eq(pthread_create(&stormer, NULL, storm, NULL), 0);
    double t = seconds();
    struct timespec pause = {.tv_sec = (time_t)t, .tv_nsec = (long)((t - (double)(time_t)t) * 1e9)};
    nanosleep(&pause, NULL);
    atomic_store(&stop, 1);
    pthread_join(stormer, NULL);
    for (int k = 0; k <= WORKERS; k++)
        pthread_join(victims[k], NULL);
    signal(SIGUSR1, SIG_IGN);
    gcpool_stats_t s;
    ck_assert_int_eq(gcpool_read_stats(common, &s), 0);
    ck_assert_uint_eq(s.gets, s.hit_private + s.hit_shared + s.hit_steal + s.hit_victim + s.miss);
    gcpool_destroy(common);
    test_watchdog_off();
    ck_assert_msg(atomic_load(&trouble) == OK, "trouble %d", atomic_load(&trouble));
    long n = atomic_load(&nmade);
    for (long i = 0; i < n; i++)
        ck_assert_msg(atomic_load(&objects[i].freed) == 1, "object %ld reached free_fn %d times", i,
                      atomic_load(&objects[i].freed));
    printf("signals %s: %ld signals handled, %ld objects, %" PRIu64 " cycles\n",
           pin->name, atomic_load(&handled), n, gcpool_cycles());
    long h = atomic_load(&handled);
    ck_assert_msg(h > 0, "no signal was handled");
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("signals");
    TCase *tc = test_tcase(s, "storm", 120);
    test_add_variants(tc, test_signal_storm, test_pins);
    return s;
}

TEST_MAIN(make_suite)
