/* <gcpool/sync.h>: ports of Go's mutex_test.go and waitgroup_test.go, plus
 * trylock, starvation mode and the misuse messages.  Threads outnumber the
 * cores on purpose: preempted holders and late wake-ups are what the slow
 * paths are for. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* testutil.h's CPU_SET, sched_setaffinity */
#endif
#include <gcpool/sync.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/testutil.h"

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* After contention: the mutex is back to all zeroes, nothing queued, no
 * permit left over (the internal layout of lib/mutex.c). */
static void assert_mutex_idle(const gcpool_mutex_t *m)
{
    ck_assert_uint_eq(m->state, 0);
    ck_assert_uint_eq(m->sema, 0);
    ck_assert_uint_eq(m->nwait, 0);
    ck_assert_ptr_null(m->head);
    ck_assert_ptr_null(m->tail);
}

/* Runs n threads of fn(arg) and joins them. */
static void run_threads(int n, void *(*fn)(void *), void *arg)
{
    pthread_t t[64];
    ck_assert_int_le(n, 64);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, fn, arg), 0);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
}

/* Runs fn in a child process and checks that it aborts (SIGABRT) with want on
 * stderr.  Our own fork, so it works under CK_FORK=no too. */
static void expect_fatal(void (*fn)(void), const char *want)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        dup2(p[1], STDERR_FILENO);
        close(p[0]);
        fn();
        _exit(0); /* fn returned: no abort */
    }
    close(p[1]);
    char out[4096];
    size_t len = 0;
    ssize_t k;
    while (len < sizeof out - 1 && (k = read(p[0], out + len, sizeof out - 1 - len)) > 0)
        len += (size_t)k;
    out[len] = '\0';
    close(p[0]);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
                  "expected SIGABRT, got status 0x%x; stderr: %s", status, out);
    ck_assert_msg(strstr(out, want) != NULL, "stderr lacks \"%s\": %s", want, out);
}

/* ---- Mutex ------------------------------------------------------------------- */

static gcpool_mutex_t static_mutex; /* zero: unlocked */

START_TEST(mutex_zero_init)
{
    gcpool_mutex_t a = GCPOOL_MUTEX_INIT;
    assert_mutex_idle(&a); /* the initialiser is all zeroes */
    assert_mutex_idle(&static_mutex);
    gcpool_mutex_lock(&static_mutex);
    gcpool_mutex_unlock(&static_mutex);
    ck_assert(!gcpool_mutex_starving(&static_mutex));
    /* Uncontended lock/unlock leaves the mutex exactly as it was. */
    assert_mutex_idle(&static_mutex);
}
END_TEST

static void *trylock_other(void *arg)
{
    return (void *)(intptr_t)gcpool_mutex_trylock(arg);
}

START_TEST(mutex_trylock)
{
    gcpool_mutex_t m = GCPOOL_MUTEX_INIT;
    gcpool_mutex_lock(&m);
    ck_assert_msg(!gcpool_mutex_trylock(&m), "trylock succeeded with mutex locked");
    pthread_t t;
    void *got;
    pthread_create(&t, NULL, trylock_other, &m);
    pthread_join(t, &got);
    ck_assert_msg(!got, "trylock from another thread succeeded with mutex locked");
    gcpool_mutex_unlock(&m);
    ck_assert_msg(gcpool_mutex_trylock(&m), "trylock failed with mutex unlocked");
    ck_assert(!gcpool_mutex_trylock(&m));
    gcpool_mutex_unlock(&m);
    /* A mutex locked by one thread may be unlocked by another (as in Go). */
    pthread_create(&t, NULL, trylock_other, &m);
    pthread_join(t, &got);
    ck_assert(got);
    gcpool_mutex_unlock(&m);
    ck_assert(gcpool_mutex_trylock(&m));
    gcpool_mutex_unlock(&m);

    /* Starving but momentarily unlocked (mid-handoff): the lock belongs to the
     * queue's head, so trylock must refuse.  State built by hand: starving,
     * one waiter (the internal layout of lib/mutex.c). */
    gcpool_mutex_t s = GCPOOL_MUTEX_INIT;
    s.state = 4u | (1u << 3);
    ck_assert(gcpool_mutex_starving(&s));
    ck_assert_msg(!gcpool_mutex_trylock(&s), "trylock took a mutex being handed off");
}
END_TEST

/* Go's TestMutex / HammerMutex, with a plain counter that only the mutex
 * protects: a lost update (or, under TSan, a race report) shows a broken
 * lock. */
enum { HAMMER_THREADS = 24, HAMMER_LOOPS = 20000 };
static struct {
    gcpool_mutex_t m;
    long count;          /* guarded by m; deliberately not atomic */
    atomic_long entered; /* critical sections entered */
} hammer;

static void *hammer_fn(void *arg)
{
    for (int i = 0; i < HAMMER_LOOPS; i++) {
        if (i % 3 == 0) {
            if (gcpool_mutex_trylock(&hammer.m)) {
                hammer.count++;
                gcpool_mutex_unlock(&hammer.m);
                atomic_fetch_add(&hammer.entered, 1);
            }
            continue;
        }
        gcpool_mutex_lock(&hammer.m);
        long c = hammer.count;
        if (i % 101 == 0)
            sched_yield(); /* widen the window for a second holder */
        hammer.count = c + 1;
        gcpool_mutex_unlock(&hammer.m);
        atomic_fetch_add(&hammer.entered, 1);
    }
    return NULL;
}

START_TEST(mutex_hammer)
{
    run_threads(HAMMER_THREADS, hammer_fn, NULL);
    ck_assert_int_ge(atomic_load(&hammer.entered), (long)HAMMER_THREADS * HAMMER_LOOPS * 2 / 3);
    ck_assert_int_eq(hammer.count, atomic_load(&hammer.entered));
    ck_assert(!gcpool_mutex_starving(&hammer.m));
    assert_mutex_idle(&hammer.m);
}
END_TEST

/* Holders that sleep inside the lock keep the others waiting well over 1 ms,
 * so the mutex spends time in starvation mode with many queued: the handoff
 * path under load.  The count must still be exact. */
enum { SLOW_THREADS = 16, SLOW_LOOPS = 150 };
static struct {
    gcpool_mutex_t m;
    long count; /* guarded by m */
    atomic_int saw_starving;
} slow;

static void *slow_fn(void *arg)
{
    for (int i = 0; i < SLOW_LOOPS; i++) {
        gcpool_mutex_lock(&slow.m);
        long c = slow.count;
        if (i % 10 == 0)
            sleep_us(50);
        if (gcpool_mutex_starving(&slow.m))
            atomic_store(&slow.saw_starving, 1);
        slow.count = c + 1;
        gcpool_mutex_unlock(&slow.m);
    }
    return NULL;
}

START_TEST(mutex_hammer_starving)
{
    run_threads(SLOW_THREADS, slow_fn, NULL);
    ck_assert_int_eq(slow.count, (long)SLOW_THREADS * SLOW_LOOPS);
    ck_assert_msg(atomic_load(&slow.saw_starving), "never entered starvation mode");
    ck_assert_msg(!gcpool_mutex_starving(&slow.m), "still starving with no contention");
    assert_mutex_idle(&slow.m);
}
END_TEST

/* Go's TestMutexFairness: a greedy thread re-locking at once after each
 * unlock must not starve a polite one, which must get the lock 10 times
 * within 10 s.  Without starvation mode the greedy thread, already running,
 * wins nearly every race against the woken waiter. */
static struct {
    gcpool_mutex_t m;
    atomic_bool stop, done;
} fair;

static void *fair_greedy(void *arg)
{
    while (!atomic_load(&fair.stop)) {
        gcpool_mutex_lock(&fair.m);
        sleep_us(100);
        gcpool_mutex_unlock(&fair.m);
    }
    return NULL;
}

static void *fair_polite(void *arg)
{
    for (int i = 0; i < 10; i++) {
        sleep_us(100);
        gcpool_mutex_lock(&fair.m);
        gcpool_mutex_unlock(&fair.m);
    }
    atomic_store(&fair.done, true);
    return NULL;
}

START_TEST(mutex_fairness)
{
    pthread_t g, p;
    pthread_create(&g, NULL, fair_greedy, NULL);
    pthread_create(&p, NULL, fair_polite, NULL);
    double deadline = now_s() + 10;
    while (!atomic_load(&fair.done) && now_s() < deadline)
        sleep_us(1000);
    bool done = atomic_load(&fair.done);
    atomic_store(&fair.stop, true);
    pthread_join(g, NULL);
    pthread_join(p, NULL);
    ck_assert_msg(done, "can't acquire mutex in 10 seconds");
}
END_TEST

/* Starvation mode entered and left.  The greedy thread G holds the lock
 * almost always (it re-locks right after unlocking), so the waiter W, woken
 * but losing each race, passes 1 ms and switches the mutex to starvation
 * mode.  G sees that from inside its critical section; then, by handoff, the
 * next owner must be W, not G re-locking.  Once contention ends the mutex is
 * back in normal mode. */
enum { WHO_G = 1, WHO_W = 2 };
static struct {
    gcpool_mutex_t m;
    atomic_bool stop;
    /* guarded by m: */
    bool expect_w;         /* G saw starving: W must be the next owner */
    int seen_starving;     /* critical sections of G that saw starving */
    int handoffs_ok;       /* ... followed by W's */
    int handoffs_bad;      /* ... followed by G's own */
} st;

static void *st_greedy(void *arg)
{
    while (!atomic_load(&st.stop)) {
        gcpool_mutex_lock(&st.m);
        if (st.expect_w) {
            st.handoffs_bad++;
            st.expect_w = false;
        }
        sleep_us(100);
        if (gcpool_mutex_starving(&st.m)) {
            st.seen_starving++;
            st.expect_w = true;
        }
        gcpool_mutex_unlock(&st.m);
    }
    return NULL;
}

static void *st_waiter(void *arg)
{
    double deadline = now_s() + 3;
    for (;;) {
        gcpool_mutex_lock(&st.m);
        if (st.expect_w) {
            st.handoffs_ok++;
            st.expect_w = false;
        }
        bool enough = st.handoffs_ok >= 3;
        gcpool_mutex_unlock(&st.m);
        if (enough || now_s() > deadline)
            break;
        sleep_us(200);
    }
    atomic_store(&st.stop, true);
    return NULL;
}

START_TEST(mutex_starvation)
{
    pthread_t g, w;
    pthread_create(&g, NULL, st_greedy, NULL);
    pthread_create(&w, NULL, st_waiter, NULL);
    pthread_join(w, NULL);
    pthread_join(g, NULL);
    ck_assert_msg(st.seen_starving > 0, "starvation mode never entered");
    /* Not == 0: as in Go, a waiter that set the starving bit is queued on the
     * semaphore a moment later, and an unlock in between leaves a permit that
     * the greedy thread, re-locking, may take first (seen once under TSan).
     * Without the handoff G re-takes the lock nearly every time W is owed it. */
    ck_assert_int_ge(st.handoffs_ok, 1);
    ck_assert_msg(st.handoffs_bad < st.handoffs_ok,
                  "%d times the unlocker re-took a starving mutex, %d times it handed it over",
                  st.handoffs_bad, st.handoffs_ok);
    ck_assert_msg(!gcpool_mutex_starving(&st.m), "starvation mode not left after contention");
    assert_mutex_idle(&st.m);
    ck_assert(gcpool_mutex_trylock(&st.m));
}
END_TEST

/* Go's TestMutexMisuse (Mutex.Unlock and Mutex.Unlock2). */
static void misuse_unlock(void)
{
    gcpool_mutex_t m = GCPOOL_MUTEX_INIT;
    gcpool_mutex_unlock(&m);
}

static void misuse_unlock2(void)
{
    gcpool_mutex_t m = GCPOOL_MUTEX_INIT;
    gcpool_mutex_lock(&m);
    gcpool_mutex_unlock(&m);
    gcpool_mutex_unlock(&m);
}

START_TEST(mutex_misuse)
{
    expect_fatal(misuse_unlock, "unlock of unlocked mutex");
    expect_fatal(misuse_unlock2, "unlock of unlocked mutex");
}
END_TEST

/* ---- WaitGroup --------------------------------------------------------------- */

START_TEST(waitgroup_zero_init)
{
    /* Compared field by field: {0, 0} need not zero the padding. */
    gcpool_waitgroup_t a = GCPOOL_WAITGROUP_INIT;
    ck_assert_uint_eq(a.state, 0);
    ck_assert_uint_eq(a.sema, 0);
    gcpool_waitgroup_wait(&a); /* counter zero: returns at once */
    gcpool_waitgroup_add(&a, 2);
    gcpool_waitgroup_done(&a);
    gcpool_waitgroup_add(&a, -1);
    gcpool_waitgroup_wait(&a);
    ck_assert_uint_eq(a.state, 0);
    ck_assert_uint_eq(a.sema, 0);
    /* Go's TestWaitGroupAlign: the 64-bit word is aligned after a char. */
    struct { char c; gcpool_waitgroup_t wg; } x;
    ck_assert_uint_eq((uintptr_t)&x.wg.state % 8, 0);
}
END_TEST

/* Go's TestWaitGroup: wg1 and wg2 as a two-phase barrier, eight times over
 * the same pair to check that they reset properly. */
enum { WG_N = 16 };
static struct {
    gcpool_waitgroup_t wg1, wg2;
    atomic_int exited;
} wgt;

static void *wg_worker(void *arg)
{
    gcpool_waitgroup_done(&wgt.wg1);
    gcpool_waitgroup_wait(&wgt.wg2);
    atomic_fetch_add(&wgt.exited, 1);
    return NULL;
}

START_TEST(waitgroup_barrier)
{
    for (int round = 0; round < 8; round++) {
        pthread_t t[WG_N];
        atomic_store(&wgt.exited, 0);
        gcpool_waitgroup_add(&wgt.wg1, WG_N);
        gcpool_waitgroup_add(&wgt.wg2, WG_N);
        for (int i = 0; i < WG_N; i++)
            ck_assert_int_eq(pthread_create(&t[i], NULL, wg_worker, NULL), 0);
        gcpool_waitgroup_wait(&wgt.wg1);
        bool early = false;
        for (int i = 0; i < WG_N; i++) {
            if (i % 4 == 0)
                sleep_us(200); /* let any wrongly released waiter show up */
            if (atomic_load(&wgt.exited) != 0)
                early = true;
            gcpool_waitgroup_done(&wgt.wg2);
        }
        for (int i = 0; i < WG_N; i++)
            pthread_join(t[i], NULL);
        ck_assert_msg(!early, "WaitGroup released group too soon (round %d)", round);
        ck_assert_int_eq(atomic_load(&wgt.exited), WG_N);
    }
}
END_TEST

/* Go's TestWaitGroupRace: wait() must not return before both done()s. */
static struct {
    gcpool_waitgroup_t wg;
    atomic_int n;
} wgr;

static void *wgr_fn(void *arg)
{
    atomic_fetch_add(&wgr.n, 1);
    gcpool_waitgroup_done(&wgr.wg);
    return NULL;
}

START_TEST(waitgroup_race)
{
    for (int i = 0; i < 1000; i++) {
        gcpool_waitgroup_t zero = GCPOOL_WAITGROUP_INIT;
        wgr.wg = zero;
        atomic_store(&wgr.n, 0);
        pthread_t a, b;
        gcpool_waitgroup_add(&wgr.wg, 1);
        pthread_create(&a, NULL, wgr_fn, NULL);
        gcpool_waitgroup_add(&wgr.wg, 1);
        pthread_create(&b, NULL, wgr_fn, NULL);
        gcpool_waitgroup_wait(&wgr.wg);
        int n = atomic_load(&wgr.n);
        pthread_join(a, NULL);
        pthread_join(b, NULL);
        ck_assert_msg(n == 2, "spurious wakeup from wait (iteration %d)", i);
    }
}
END_TEST

/* Many waiters, many workers, one wait group reused per batch.  Workers write
 * plain (non-atomic) slots that the waiters read after wait(): done() must
 * happen before wait() returns (TSan checks the ordering, the sum the data). */
enum { WGM_WORKERS = 16, WGM_WAITERS = 8, WGM_ROUNDS = 60 };
static struct {
    gcpool_waitgroup_t wg;
    long slot[WGM_WORKERS];
    long want;
    atomic_int bad;
} wgm;

static void *wgm_worker(void *arg)
{
    intptr_t i = (intptr_t)arg;
    if (i % 3 == 0)
        sched_yield();
    wgm.slot[i] = i + 1;
    gcpool_waitgroup_done(&wgm.wg);
    return NULL;
}

static void *wgm_waiter(void *arg)
{
    gcpool_waitgroup_wait(&wgm.wg);
    long sum = 0;
    for (int i = 0; i < WGM_WORKERS; i++)
        sum += wgm.slot[i];
    if (sum != wgm.want)
        atomic_fetch_add(&wgm.bad, 1);
    return NULL;
}

START_TEST(waitgroup_many_waiters)
{
    wgm.want = (long)WGM_WORKERS * (WGM_WORKERS + 1) / 2;
    for (int r = 0; r < WGM_ROUNDS; r++) {
        pthread_t wk[WGM_WORKERS], wt[WGM_WAITERS];
        memset(wgm.slot, 0, sizeof wgm.slot);
        gcpool_waitgroup_add(&wgm.wg, WGM_WORKERS);
        for (int i = 0; i < WGM_WAITERS; i++)
            pthread_create(&wt[i], NULL, wgm_waiter, NULL);
        for (intptr_t i = 0; i < WGM_WORKERS; i++)
            pthread_create(&wk[i], NULL, wgm_worker, (void *)i);
        for (int i = 0; i < WGM_WORKERS; i++)
            pthread_join(wk[i], NULL);
        for (int i = 0; i < WGM_WAITERS; i++)
            pthread_join(wt[i], NULL); /* all waits returned: reuse is allowed */
    }
    ck_assert_int_eq(atomic_load(&wgm.bad), 0);
    ck_assert_uint_eq(wgm.wg.state, 0);
}
END_TEST

/* Go's TestWaitGroupMisuse. */
static void wg_negative(void)
{
    gcpool_waitgroup_t wg = GCPOOL_WAITGROUP_INIT;
    gcpool_waitgroup_add(&wg, 1);
    gcpool_waitgroup_done(&wg);
    gcpool_waitgroup_done(&wg);
}

/* Go's TestWaitGroupMisuse2/3 provoke the other two messages by racing and
 * only sometimes succeed.  Here the racy moment is built by hand, writing the
 * private fields (the layout of lib/waitgroup.c):
 *
 * Counter 0 with one waiter is the instant after the last done(), before it
 * resets the word and releases the waiter; an add(1) landing there was not
 * ordered before that wait(). */
static void wg_add_during_wait(void)
{
    gcpool_waitgroup_t wg = GCPOOL_WAITGROUP_INIT;
    wg.state = 1; /* counter 0, one waiter */
    gcpool_waitgroup_add(&wg, 1);
}

/* A permit already released (the previous batch's last done()) and counter 1
 * (a new batch's add(1) landing before the released waiter checked): wait()
 * counts itself, takes the permit at once and finds the word not reset. */
static void wg_reused(void)
{
    gcpool_waitgroup_t wg = GCPOOL_WAITGROUP_INIT;
    wg.state = (uint64_t)1 << 32;
    wg.sema = 1;
    gcpool_waitgroup_wait(&wg);
}

START_TEST(waitgroup_misuse)
{
    expect_fatal(wg_negative, "sync: negative WaitGroup counter");
    expect_fatal(wg_add_during_wait, "sync: WaitGroup misuse: Add called concurrently with Wait");
    expect_fatal(wg_reused, "sync: WaitGroup is reused before previous Wait has returned");
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("sync");
    TCase *mu = test_tcase(s, "mutex", 60); /* generous for sanitizer builds */
    tcase_add_test(mu, mutex_zero_init);
    tcase_add_test(mu, mutex_trylock);
    tcase_add_test(mu, mutex_hammer);
    tcase_add_test(mu, mutex_hammer_starving);
    tcase_add_test(mu, mutex_starvation);
    tcase_add_test(mu, mutex_misuse);
    TCase *fairness = test_tcase(s, "fairness", 60); /* the test itself gives up after 10 s */
    tcase_add_test(fairness, mutex_fairness);
    TCase *wg = test_tcase(s, "waitgroup", 60);
    tcase_add_test(wg, waitgroup_zero_init);
    tcase_add_test(wg, waitgroup_barrier);
    tcase_add_test(wg, waitgroup_race);
    tcase_add_test(wg, waitgroup_many_waiters);
    tcase_add_test(wg, waitgroup_misuse);
    return s;
}

TEST_MAIN(make_suite)
