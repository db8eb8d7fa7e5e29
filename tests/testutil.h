/* Shared by the Check suites: the one main() that runs a suite, and small
 * helpers.  Public API only (<gcpool.h>, the collector, libc): what a test
 * needs from inside the library is in internal.h, the one door. */
#ifndef GCPOOL_TESTUTIL_H
#define GCPOOL_TESTUTIL_H

#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define GC_THREADS
#include <gc/gc.h>
#undef pthread_create
#undef pthread_join
#include <pthread.h>
#include <sched.h>
#include <signal.h>

#include <gcpool.h>

/* The path of one of the real machines' topologies the tests carry
 * (tests/topologies, see its README), found through the source tree the suite
 * was configured from: TEST_SRCDIR when the harness sets it, else the one
 * built in.  The result lives until the next call. */
static inline const char *test_topology_path(const char *file)
{
    static char path[4096];
    const char *top = getenv("TEST_SRCDIR");
    int n = snprintf(path, sizeof path, "%s/tests/topologies/%s", top && *top ? top : TEST_TOP_SRCDIR,
                     file);
    return n > 0 && (size_t)n < sizeof path ? path : "";
}

/* True when built with sanitizers: Boehm and the sanitizers do not mix. */
#ifdef GCPOOL_SANITIZERS
#define TEST_BOEHM_OK 0
#else
#define TEST_BOEHM_OK 1
#endif

/* Threads the collector knows about when it runs. */
static inline int test_thread_start(pthread_t *t, void *(*fn)(void *), void *arg)
{
#if TEST_BOEHM_OK
    if (GC_is_init_called())
        return GC_pthread_create(t, NULL, fn, arg);
#endif
    return pthread_create(t, NULL, fn, arg);
}

static inline void test_thread_join(pthread_t t)
{
#if TEST_BOEHM_OK
    if (GC_is_init_called()) {
        GC_pthread_join(t, NULL);
        return;
    }
#endif
    pthread_join(t, NULL);
}

/* Keeps the calling thread on one allowed CPU, as Go's tests pin to their P. */
static inline int test_pin_to_one_cpu(void)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    sched_getaffinity(0, sizeof set, &set);
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (CPU_ISSET(cpu, &set)) {
            cpu_set_t one;
            CPU_ZERO(&one);
            CPU_SET(cpu, &one);
            ck_assert_int_eq(sched_setaffinity(0, sizeof one, &one), 0);
            return cpu;
        }
    }
    return -1;
}

/* Runs fn with stderr sent to a temporary file; returns what it printed (a
 * static buffer, overwritten by the next call). */
static inline const char *test_capture_stderr(void (*fn)(void))
{
    static char captured[8192];
    fflush(stderr);
    FILE *tmp = tmpfile();
    ck_assert_ptr_nonnull(tmp);
    int saved = dup(2);
    ck_assert_int_ge(saved, 0);
    ck_assert_int_eq(dup2(fileno(tmp), 2), 2);
    fn();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(tmp);
    size_t n = fread(captured, 1, sizeof captured - 1, tmp);
    captured[n] = '\0';
    fclose(tmp);
    return captured;
}

/* ---- watchdog: a test whose failure would be a hang fails instead ---------------
 * test_watchdog(seconds, what) arms alarm(): if the process still runs then,
 * it prints "FAIL: watchdog: <what> still running after N s" and aborts, so
 * the suite fails (under CK_FORK=no too, where Check has no timeout).  The
 * time is multiplied by CK_TIMEOUT_MULTIPLIER, as Check's own timeouts are
 * (valgrind runs set it).  test_watchdog_off() disarms it. */
static const char *volatile test_watchdog_what = "";
static volatile unsigned test_watchdog_seconds;
static volatile int test_watchdog_fd = -1; /* stderr as it was when armed (tests capture it) */

static inline void test_watchdog_write(const char *s)
{
    ssize_t ignored = write(test_watchdog_fd, s, strlen(s));
    (void)ignored;
}

static inline void test_watchdog_fired(int sig)
{
    (void)sig;
    char n[24];
    int i = (int)sizeof n - 1;
    n[i] = '\0';
    unsigned v = test_watchdog_seconds;
    do
        n[--i] = (char)('0' + v % 10);
    while ((v /= 10) && i > 0);
    test_watchdog_write("\nFAIL: watchdog: ");
    test_watchdog_write((const char *)test_watchdog_what);
    test_watchdog_write(" still running after ");
    test_watchdog_write(n + i);
    test_watchdog_write(" s (a hang)\n");
    abort();
}

static inline void test_watchdog(unsigned seconds, const char *what)
{
    const char *m = getenv("CK_TIMEOUT_MULTIPLIER");
    long mult = m ? atol(m) : 1;
    test_watchdog_what = what;
    test_watchdog_seconds = seconds * (unsigned)(mult > 0 ? mult : 1);
    if (test_watchdog_fd < 0)
        test_watchdog_fd = dup(STDERR_FILENO);
    signal(SIGALRM, test_watchdog_fired);
    alarm(test_watchdog_seconds);
}

static inline void test_watchdog_off(void)
{
    alarm(0);
}

/* CLOCK_MONOTONIC in seconds: for tests that bound how long they run. */
static inline double test_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- named variants --------------------------------------------------------------
 * A test that runs in several variants loops over a table of them: a static
 * array of structs whose first member is `const char *name`, one row a
 * variant, registered with test_add_variants(tc, fn, table): a loop test whose
 * loop index picks the row, never bits of it.  Inside the test,
 * TEST_VARIANT(table) is the row, after its name was printed, so that the log
 * of a failure says which variant ran. */
#define TEST_NROWS(table) ((int)(sizeof(table) / sizeof((table)[0])))
#define test_add_variants(tc, fn, table) tcase_add_loop_test(tc, fn, 0, TEST_NROWS(table))
#define TEST_VARIANT(table) (test_announce(#table, (table)[_i].name), &(table)[_i])

static inline void test_announce(const char *table, const char *name)
{
    printf("variant %s: %s\n", table, name);
    fflush(stdout); /* before an assertion or a crash ends the process */
}

/* ---- the main() of every Check program ---------------------------------------- */

/* A test case added to s, with Check's timeout raised to timeout_s seconds
 * (0: Check's default). */
static inline TCase *test_tcase(Suite *s, const char *name, double timeout_s)
{
    TCase *tc = tcase_create(name);
    if (timeout_s > 0)
        tcase_set_timeout(tc, timeout_s);
    suite_add_tcase(s, tc);
    return tc;
}

/* Runs the suite; exit status 0 only when every test passed.  A NULL suite
 * means the program said why it cannot run here: 77, automake's skip. */
static inline int test_run_suite(Suite *s)
{
    if (!s)
        return 77;
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* TEST_MAIN(make_suite): the program's main().  make_suite() builds the suite
 * (and does whatever the program needs first: environment, a skip); Check's
 * own settings (CK_FORK, CK_RUN_CASE, CK_TIMEOUT_MULTIPLIER...) apply as ever. */
#define TEST_MAIN(make_suite)                                                                      \
    int main(void) { return test_run_suite(make_suite()); }

#endif
