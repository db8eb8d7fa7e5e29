/* Abort injection: every point of every restartable sequence the inline fast
 * path runs (gcpool/fastpath.h's GCPOOL_RSEQ_INJECT_ points: take, fill, push,
 * pop and the pop's clear) is made to abort, over and over, while threads get
 * and put and a cycler runs cycles.  Every object made must be handed to one
 * user at a time, never reach free_fn while held, and reach it exactly once
 * by the end, when the pool is destroyed.
 *
 * How an abort is forced: this program defines GCPOOL_RSEQ_INJECT(n) before
 * it includes <gcpool.h>, so the sequences it inlines count each pass at
 * point n, and every PERIOD-th pass there executes int3.  The kernel delivers
 * SIGTRAP, and since the thread is inside a critical section it first moves
 * it to that sequence's abort handler, which is where the signal handler is
 * told it will return: the handler checks that the address lies among the
 * abort handlers (section __rseq_failure) and counts an abort for the point
 * the thread noted just before its trap.  Then the abort handler runs (undoing a push's slot,
 * clearing a pop's slot by CAS) and the sequence starts again.  At the end
 * every trap must have aborted its sequence, and each point must have seen
 * such aborts.  Only the program's inline copies carry points, and they are
 * every sequence the library has; its own copies keep running unchanged.
 * rseq only: where the fast path is off (lock pin, ThreadSanitizer) it skips. */
#define GCPOOL_RSEQ_INJECT(n)                                                                  \
    "lock incq test_inject_passed+8*" #n "(%%rip)\n\t"                                         \
    "lock subl $1, test_inject_countdown+4*" #n "(%%rip)\n\t"                                  \
    "jg 88f\n\t"                                                                               \
    "movl $" TEST_PERIOD ", test_inject_countdown+4*" #n "(%%rip)\n\t"                         \
    "movl $" #n ", %%fs:test_inject_point@tpoff\n\t"                                           \
    "int3\n\t"                                                                                 \
    "88:\n\t"
#define TEST_PERIOD "13" /* a trap every 13th pass at each point */

#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <ucontext.h>
#include <unistd.h>

#include "tests/internal.h"

#ifdef GCPOOL_FASTPATH_RSEQ
#define POINTS GCPOOL_RSEQ_INJECT_POINTS

/* Read and written by the injected asm, by name: global, kept. */
__attribute__((used)) long test_inject_passed[POINTS + 1];
__attribute__((used)) int test_inject_countdown[POINTS + 1];
__attribute__((used)) __thread int test_inject_point; /* the point about to trap */
static _Atomic long aborted[POINTS + 1];

static const char *const point_names[POINTS + 1] = {
    "", "take 1", "take 2", "fill 3", "fill 4", "push 5", "push 6", "push 7 (slot stored)",
    "pop 8", "pop 9", "clear 10"};

/* The linker's bounds of the abort handlers' section. */
extern const char __start___rseq_failure[], __stop___rseq_failure[];

static _Atomic long traps_elsewhere;

static void on_trap(int sig, siginfo_t *info, void *context)
{
    (void)sig, (void)info;
    const ucontext_t *uc = context;
    const char *ip = (const char *)uc->uc_mcontext.gregs[REG_RIP];
    int n = test_inject_point;
    test_inject_point = 0;
    if (n > 0 && n <= POINTS && ip >= __start___rseq_failure && ip < __stop___rseq_failure)
        atomic_fetch_add_explicit(&aborted[n], 1, memory_order_relaxed);
    else
        atomic_fetch_add_explicit(&traps_elsewhere, 1, memory_order_relaxed);
}

/* ---- the objects, and what happens to each --------------------------------- */

#define MAX_OBJECTS 2000000

struct object {
    _Atomic int users; /* 1 while handed out */
    _Atomic int freed; /* free_fn calls */
};

static struct object *made[MAX_OBJECTS];
static _Atomic long nmade;
/* The first thing that went wrong, 0 if none: checked at the end, since
 * Check's assertions are not for threads that run millions of times (each
 * passed one writes to a pipe). */
static _Atomic int trouble;

static void note(int what)
{
    int none = 0;
    atomic_compare_exchange_strong(&trouble, &none, what);
}

static void *make(void *arg)
{
    (void)arg;
    long id = atomic_fetch_add(&nmade, 1);
    if (id >= MAX_OBJECTS) {
        note(1); /* more objects than any run here needs */
        atomic_fetch_sub(&nmade, 1);
        return NULL;
    }
    struct object *o = calloc(1, sizeof *o);
    if (!o)
        note(2);
    made[id] = o;
    return o;
}

static void release(void *obj, void *arg)
{
    (void)arg;
    struct object *o = obj;
    if (atomic_load(&o->users) != 0)
        note(3); /* dropped while in use */
    if (atomic_fetch_add(&o->freed, 1) != 0)
        note(4); /* freed twice */
}

/* ---- the threads ----------------------------------------------------------- */

static gcpool_t *pool;
static double deadline;
static _Atomic int stop_cycles;
static _Atomic long operations;

/* Bursts of 1 to 12 gets then as many puts: the private slot (take, fill)
 * and past it the head ring (push, pop, clear). */
static void *worker(void *arg)
{
    (void)arg;
    struct object *held[12];
    long ops = 0;
    for (long i = 0; i % 256 != 0 || test_seconds() < deadline; i++) {
        int n = 1 + (int)(i % 12);
        for (int k = 0; k < n; k++) {
            struct object *o = gcpool_get(pool);
            if (!o) {
                note(5);
                n = k;
                break;
            }
            if (atomic_fetch_add(&o->users, 1) != 0)
                note(6); /* handed to two users */
            if (atomic_load(&o->freed) != 0)
                note(7); /* handed out after free_fn */
            held[k] = o;
        }
        for (int k = 0; k < n; k++) {
            atomic_store(&held[k]->users, 0);
            gcpool_put(pool, held[k]);
        }
        ops += 2 * n;
    }
    atomic_fetch_add(&operations, ops);
    return NULL;
}

static void *cycler(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop_cycles)) {
        gcpool_collect();
        usleep(2000);
    }
    return NULL;
}

START_TEST(test_abort_at_every_point)
{
    if (!test_use_source(0) || !test_use_pin(1))
        return;
    for (int n = 1; n <= POINTS; n++)
        test_inject_countdown[n] = 1 + n; /* the first traps come early */
    struct sigaction sa = {.sa_sigaction = on_trap, .sa_flags = SA_SIGINFO | SA_RESTART};
    ck_assert_int_eq(sigaction(SIGTRAP, &sa, NULL), 0);
    gcpool_options_t o = {.new_fn = make, .free_fn = release, .name = "aborts"};
    pool = gcpool_create(&o);
    ck_assert_ptr_nonnull(pool);
    ck_assert(gcp_pin_fast); /* the inline sequences run */

    uint64_t restarts = gcp_pin_restarts();
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int nthreads = (int)(4 * cores);
    pthread_t cyc, t[nthreads];
    deadline = test_seconds() + 1;
    ck_assert_int_eq(pthread_create(&cyc, NULL, cycler, NULL), 0);
    for (int k = 0; k < nthreads; k++)
        ck_assert_int_eq(pthread_create(&t[k], NULL, worker, NULL), 0);
    for (int k = 0; k < nthreads; k++)
        pthread_join(t[k], NULL);
    atomic_store(&stop_cycles, 1);
    pthread_join(cyc, NULL);
    restarts = gcp_pin_restarts() - restarts;
    gcpool_destroy(pool);

    long trapped = 0;
    for (int n = 1; n <= POINTS; n++) {
        printf("point %2d %-22s passed %10ld, aborted %8ld\n", n, point_names[n],
               test_inject_passed[n], atomic_load(&aborted[n]));
        trapped += atomic_load(&aborted[n]);
    }
    long objects = atomic_load(&nmade);
    printf("aborts: %d threads, %ld operations, %ld objects, %" PRIu64 " cycles, %ld traps, %" PRIu64
           " sequences restarted\n",
           nthreads, atomic_load(&operations), objects, gcpool_cycles(), trapped, restarts);
    fflush(stdout);
    ck_assert_msg(atomic_load(&trouble) == 0, "check %d failed", atomic_load(&trouble));
    /* Conservation: each object made reached free_fn exactly once. */
    for (long i = 0; i < objects; i++) {
        if (atomic_load(&made[i]->freed) != 1)
            ck_abort_msg("object %ld of %ld reached free_fn %d times", i, objects,
                         atomic_load(&made[i]->freed));
        free(made[i]);
    }
    /* Every trap was inside a critical section, and aborted it... */
    ck_assert_int_eq(atomic_load(&traps_elsewhere), 0);
    ck_assert_uint_ge(restarts, (uint64_t)trapped); /* ...and its abort handler ran */
    /* ...and every point saw such aborts. */
    for (int n = 1; n <= POINTS; n++)
        ck_assert_msg(atomic_load(&aborted[n]) > 0, "point %d (%s) never aborted (passed %ld times)",
                      n, point_names[n], test_inject_passed[n]);
}
END_TEST

#else /* no inline sequences in this build */
START_TEST(test_abort_at_every_point)
{
    printf("SKIP: no inline fast path in this build (ThreadSanitizer, or not x86-64 Linux)\n");
}
END_TEST
#endif

static Suite *make_suite(void)
{
    Suite *s = suite_create("abort");
    TCase *tc = test_tcase(s, "abort", 120);
    tcase_add_test(tc, test_abort_at_every_point);
    return s;
}

TEST_MAIN(make_suite)
