/* Fork: a child forked while other threads get, put, run cycles and create
 * pools can use every pool (pthread_atfork handling in lib/fork.c, with pin.c and
 * debug.c): it gets and puts on each, runs cycles, prints statistics, uses
 * the pools from threads of its own, creates and destroys pools.  A lock left
 * held by a thread the child does not have would hang it: each child has an
 * alarm, and the parent fails the test unless every child exits 0.  The
 * parent goes on and must conserve its objects as ever.
 * Under the simulated source and Boehm, the lock pin and rseq, with and
 * without checked mode (GCPOOL_DEBUG=1, whose own locks must follow fork).
 * Then many quick forks in every mode: chain and locked queues, both pins.
 * Not in sanitizer builds, whose allocators hang such children (see below). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/internal.h"

#define MAGIC 0x6763706f6f6cL
#define MAX_OBJECTS 1000000 /* checked mode drops a put in four: new_fn makes more */
#define FORKS 20 /* divided by GCPOOL_TEST_N (valgrind runs with a small one) */

struct object {
    long magic;
    _Atomic int users; /* 1 while handed out */
    _Atomic int freed; /* free_fn calls */
    long id;
};

enum { P_NEW, P_NO_NEW, P_SIZED, P_UNUSED, P_MAIN_ONLY, NPOOLS };

struct world {
    gcpool_t *pools[NPOOLS];
    struct object **made;
    _Atomic long nmade;
    bool boehm;
    _Atomic int stop;
    _Atomic long churned; /* pools the churner created and destroyed */
    /* Rounds the workers may still run: the parent adds ROUNDS_PER_FORK
     * before each fork, so that the work (and the objects checked mode's drops
     * make new_fn make) is bounded however slow the build runs. */
    _Atomic long budget;
};
#define ROUNDS_PER_FORK 20000

static struct world W;

static struct object *new_object(void)
{
    long id = atomic_fetch_add(&W.nmade, 1);
    if (id >= MAX_OBJECTS) {
        fprintf(stderr, "test_fork: more than %d objects made\n", MAX_OBJECTS);
        abort(); /* in a child too: the parent sees it */
    }
    struct object *o = W.boehm ? GC_MALLOC_UNCOLLECTABLE(sizeof *o) : calloc(1, sizeof *o);
    if (!o)
        abort();
    o->magic = MAGIC;
    o->id = id;
    W.made[id] = o;
    return o;
}

static void *make(void *arg)
{
    (void)arg;
    return new_object();
}

/* In a child, a failed check is an exit code (Check's own reporting belongs
 * to the parent); in the parent, an assertion. */
static _Atomic int child_failure;
static bool in_child;

static void expect(bool ok, int code)
{
    if (ok)
        return;
    if (in_child)
        atomic_compare_exchange_strong(&child_failure, &(int){0}, code);
    else
        ck_abort_msg("check %d failed", code);
}

static void release(void *obj, void *arg)
{
    (void)arg;
    struct object *o = obj;
    expect(o->magic == MAGIC, 20);
    expect(atomic_load(&o->users) == 0, 21);
    expect(atomic_fetch_add(&o->freed, 1) == 0, 22);
}

/* One round on pool k: takes up to n objects (making some where the pool has
 * no new_fn), checks each is whole and unused, gives them back. */
static void round_on(int k, int n)
{
    gcpool_t *p = W.pools[k];
    struct object *held[8];
    n = n > 8 ? 8 : n;
    for (int i = 0; i < n; i++) {
        struct object *o = gcpool_get(p);
        if (!o && k == P_NO_NEW)
            o = new_object();
        expect(o != NULL, 30);
        if (!o)
            return;
        expect(o->magic == MAGIC, 31);
        expect(atomic_fetch_add(&o->users, 1) == 0, 32);
        expect(atomic_load(&o->freed) == 0, 33);
        held[i] = o;
    }
    for (int i = 0; i < n; i++) {
        atomic_store(&held[i]->users, 0);
        gcpool_put(p, held[i]);
    }
}

static void *busy_worker(void *arg)
{
    long seed = (long)(intptr_t)arg;
    for (long i = 0; !atomic_load(&W.stop); i++) {
        if (atomic_fetch_sub(&W.budget, 1) <= 0) {
            atomic_fetch_add(&W.budget, 1);
            usleep(100); /* wait for the next fork's budget */
            continue;
        }
        int k = (int)((i + seed) % 3); /* P_NEW, P_NO_NEW, P_SIZED */
        round_on(k, 1 + (int)(i % 5));
    }
    return NULL;
}

static void *busy_cycler(void *arg)
{
    (void)arg;
    while (!atomic_load(&W.stop)) {
        test_cycle();
        usleep(300);
    }
    return NULL;
}

/* Pools coming and going while the parent forks.  (The busy_ threads'
 * names matter: quickstart's valgrind step forgives leaks in a child of what
 * they were allocating when the fork left them behind.) */
static void *busy_churner(void *arg)
{
    (void)arg;
    while (!atomic_load(&W.stop)) {
        gcpool_options_t o = {.name = "churn"};
        gcpool_t *p = gcpool_create(&o);
        if (!p)
            continue;
        int x;
        gcpool_put(p, &x);
        gcpool_get(p);
        gcpool_destroy(p);
        atomic_fetch_add(&W.churned, 1);
    }
    return NULL;
}

/* ---- the child ------------------------------------------------------------- */

static void *child_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i < 200; i++)
        for (int k = 0; k < NPOOLS; k++)
            if (k != P_UNUSED || i % 50 == 0)
                round_on(k, 1 + i % 5);
    return NULL;
}

/* Everything a program might do with its pools after fork.  Returns the exit
 * code: 0, or the number of the first failed check. */
static int child(void)
{
    in_child = true;
    signal(SIGALRM, SIG_DFL);
    alarm(30); /* a lock the fork left held: killed, and the parent says so */
    /* Checked mode's reports go to a file the child reads back at the end. */
    char path[] = "/tmp/gcpool-fork-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0 || dup2(fd, STDERR_FILENO) < 0)
        return 2;
    unlink(path);

    for (int k = 0; k < NPOOLS; k++)
        round_on(k, 8);
    gcpool_collect();
    for (int k = 0; k < NPOOLS; k++)
        round_on(k, 8);
    test_cycle();
    test_cycle();
    for (int k = 0; k < NPOOLS; k++) {
        round_on(k, 3);
        gcpool_stats_t s;
        expect(gcpool_read_stats(W.pools[k], &s) == 0, 40);
        expect(s.gets == s.hit_private + s.hit_shared + s.hit_steal + s.hit_victim + s.miss, 41);
    }
    FILE *devnull = fopen("/dev/null", "w");
    gcpool_stats_print(devnull, GCPOOL_STATS_TEXT);
    gcpool_stats_print(devnull, GCPOOL_STATS_JSON);
    fclose(devnull);

    /* Threads of the child's own, on every pool at once. */
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        expect(test_thread_start(&t[i], child_thread, NULL) == 0, 50);
    for (int i = 0; i < 4; i++)
        test_thread_join(t[i]);

    /* A pool of the child's own, and a destroy. */
    gcpool_options_t o = {.new_fn = make, .free_fn = release, .name = "child"};
    gcpool_t *mine = gcpool_create(&o);
    expect(mine != NULL, 60);
    for (int i = 0; i < 100; i++)
        gcpool_put(mine, gcpool_get(mine));
    gcpool_destroy(mine);
    gcpool_destroy(W.pools[P_NEW]);
    W.pools[P_NEW] = NULL;
    gcpool_collect();

    /* Checked mode saw no misuse and no loss. */
    fflush(stderr);
    char text[4096] = "";
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    if (n > 0 && strstr(text, "checked mode:")) {
        dprintf(STDOUT_FILENO, "child's stderr: %s\n", text);
        return 70;
    }
    return atomic_load(&child_failure);
}

/* ---- the parent ------------------------------------------------------------ */

/* The variants: each source and pin, without and with checked mode. */
static const struct busy_variant {
    const char *name;
    bool boehm;   /* the cycle source: Boehm, else the simulator */
    bool rseq;    /* the pin: rseq, else the lock */
    bool checked; /* GCPOOL_DEBUG=1 */
} busy_variants[] = {
    {"sim/lock", false, false, false},
    {"boehm/lock", true, false, false},
    {"sim/rseq", false, true, false},
    {"boehm/rseq", true, true, false},
    {"sim/lock checked", false, false, true},
    {"boehm/lock checked", true, false, true},
    {"sim/rseq checked", false, true, true},
    {"boehm/rseq checked", true, true, true},
};

static void fork_while_busy(const struct busy_variant *v)
{
#ifdef GCPOOL_SANITIZERS
    /* Seen here with GCC 12's runtimes: now and then a child hangs in malloc,
     * on a lock of the sanitizer's own allocator (libasan's size classes,
     * libtsan's metadata slabs) that a thread the child does not have held
     * at fork.  glibc's malloc locks itself around fork; those do not. */
    if (v == &busy_variants[0])
        printf("SKIP: the sanitizers' allocators do not survive fork in a threaded process\n");
    return;
#endif
    if (!test_use_source(v->boehm) || !test_use_pin(v->rseq))
        return;
    bool checked = v->checked;
    test_setenv("GCPOOL_DEBUG", checked ? "1" : NULL);
    gcp_debug_init();
    if (gcp_debug != checked) /* CK_FORK=no: an earlier case read GCPOOL_DEBUG */
        gcp_debug_force(checked);

    memset(&W, 0, sizeof W);
    W.boehm = v->boehm;
    W.made = calloc(MAX_OBJECTS, sizeof *W.made);
    ck_assert_ptr_nonnull(W.made);
    const char *names[NPOOLS] = {"new", NULL, "sized", "unused", "main-only"};
    for (int k = 0; k < NPOOLS; k++) {
        gcpool_options_t o = {.new_fn = k == P_NO_NEW ? NULL : make, .free_fn = release,
                              .name = names[k], .size = k == P_SIZED ? sizeof(struct object) : 0};
        W.pools[k] = gcpool_create(&o);
        ck_assert_ptr_nonnull(W.pools[k]);
    }
    round_on(P_MAIN_ONLY, 8);

    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int nworkers = (int)(2 * cores);
    pthread_t workers[nworkers], cyc, churn;
    for (int i = 0; i < nworkers; i++)
        ck_assert_int_eq(test_thread_start(&workers[i], busy_worker, (void *)(intptr_t)i), 0);
    ck_assert_int_eq(test_thread_start(&cyc, busy_cycler, NULL), 0);
    ck_assert_int_eq(test_thread_start(&churn, busy_churner, NULL), 0);

    const char *test_n = getenv("GCPOOL_TEST_N");
    int forks = test_n && atoi(test_n) > 1 ? FORKS / atoi(test_n) : FORKS;
    forks = forks < 2 ? 2 : forks;
    for (int f = 0; f < forks; f++) {
        atomic_fetch_add(&W.budget, ROUNDS_PER_FORK);
        usleep(2000); /* let the threads get into the thick of it */
        fflush(stdout);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0)
            _exit(child());
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(!WIFSIGNALED(status), "fork %d: child killed by signal %d%s", f,
                      WTERMSIG(status), WTERMSIG(status) == SIGALRM ? " (hung: a lock left held)" : "");
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "fork %d: child check %d failed",
                      f, WEXITSTATUS(status));
    }

    atomic_store(&W.stop, 1);
    for (int i = 0; i < nworkers; i++)
        test_thread_join(workers[i]);
    test_thread_join(cyc);
    test_thread_join(churn);
    for (int k = 0; k < NPOOLS; k++)
        gcpool_destroy(W.pools[k]);
    /* The parent kept every object: each reached free_fn once. */
    long made = atomic_load(&W.nmade);
    for (long i = 0; i < made; i++) {
        ck_assert_msg(atomic_load(&W.made[i]->freed) == 1, "object %ld reached free_fn %d times", i,
                      atomic_load(&W.made[i]->freed));
        if (W.boehm)
            GC_FREE(W.made[i]);
        else
            free(W.made[i]);
    }
    printf("fork %s/%s%s: %d children, %ld objects, %ld pools churned, %" PRIu64 " cycles\n",
           W.boehm ? "boehm" : "sim", gcp_pin_name(), checked ? " checked" : "", forks, made,
           atomic_load(&W.churned), gcpool_cycles());
    free(W.made);
}

START_TEST(test_fork_while_busy) { fork_while_busy(TEST_VARIANT(busy_variants)); }
END_TEST

/* ---- many forks under busy threads, in every mode -----------------------------
 * A child forked while threads are queued on a lock the pool uses must find
 * it clean.  Go's Mutex (the locked queues of GCPOOL_SHARED=locked) keeps its
 * waiters' count, its starving bit and a queue of nodes on their stacks; the
 * child does not have those threads, and an unlock there once handed the lock
 * to one of them, so the child's next lock waited for ever.  16 threads keep
 * every local's queue busy (bursts past the private slot), and signals make
 * one of them nap now and then, as if preempted, wherever it is: often with a
 * lock held, so that its waiters starve.  200 times the parent forks, and
 * each child gets and puts past the private slot too, then exits.  The
 * parent gives it ten seconds and fails rather than hang: a child takes
 * milliseconds, 0.4 s at worst seen on a 2-CPU machine at load average 25,
 * and a hang is for ever; one second failed there under load.  Before the
 * child reset the locks, both locked-queue cases hung within a few dozen
 * forks. */
#define MANY_FORKS 200 /* divided by GCPOOL_TEST_N */
#define BUSY_THREADS 16
#define CHILD_SECONDS 10.0 /* times CK_TIMEOUT_MULTIPLIER (valgrind) */

static struct {
    gcpool_t *pool;
    _Atomic long made, freed;
    _Atomic int stop;
} M;

static void *many_make(void *arg)
{
    (void)arg;
    atomic_fetch_add(&M.made, 1);
    return malloc(32);
}

static void many_free(void *obj, void *arg)
{
    (void)arg;
    atomic_fetch_add(&M.freed, 1);
    free(obj);
}

/* A burst of n gets then n puts: past the private slot, into the shared
 * queue (a chain, or a locked queue) and out of it again.  0, or the code of
 * the first failed check. */
static int burst(int n)
{
    void *held[8];
    for (int k = 0; k < n; k++)
        if (!(held[k] = gcpool_get(M.pool)))
            return 80;
    for (int k = 0; k < n; k++)
        gcpool_put(M.pool, held[k]);
    return 0;
}

static void *busy_burster(void *arg)
{
    (void)arg;
    for (unsigned i = 0; !atomic_load(&M.stop); i++)
        burst(2 + (int)(i % 7));
    return NULL;
}

/* A thread preempted while it holds a lock: its waiters wait long enough
 * (over 1 ms) to put Go's Mutex into starvation mode. */
static void nap_on_signal(int sig)
{
    (void)sig;
    usleep(1500);
}

static void *busy_napper(void *arg)
{
    pthread_t *t = arg;
    for (unsigned k = 0; !atomic_load(&M.stop); k++) {
        pthread_kill(t[k % BUSY_THREADS], SIGUSR1);
        usleep(200);
    }
    return NULL;
}

/* Waits until the deadline (test_seconds) for child pid to exit: true with
 * its status, false if it is still running. */
static bool wait_child(pid_t pid, double deadline, int *status)
{
    int fd = pidfd_open(pid, 0); /* readable once the child has exited */
    if (fd >= 0) {
        struct pollfd ready = {.fd = fd, .events = POLLIN};
        int n;
        do {
            double left = deadline - test_seconds();
            n = poll(&ready, 1, left > 0 ? (int)(left * 1000) + 1 : 0);
        } while (n < 0 && errno == EINTR);
        close(fd);
        if (n == 0)
            return false;
        return waitpid(pid, status, 0) == pid;
    }
    pid_t got; /* no pidfd (old kernel, valgrind): look every millisecond */
    while ((got = waitpid(pid, status, WNOHANG)) == 0 && test_seconds() < deadline)
        usleep(1000);
    return got == pid;
}

/* The variants: each pin with each shared queue; the simulated source. */
static const struct many_variant {
    const char *name;
    bool rseq;   /* the pin: rseq, else the lock */
    bool locked; /* the shared queue: GCPOOL_SHARED=locked, else the chain */
} many_variants[] = {
    {"lock/chain", false, false},
    {"rseq/chain", true, false},
    {"lock/locked", false, true},
    {"rseq/locked", true, true},
};

START_TEST(test_many_forks_every_mode)
{
    const struct many_variant *v = TEST_VARIANT(many_variants);
#ifdef GCPOOL_SANITIZERS
    if (v == &many_variants[0])
        printf("SKIP: the sanitizers' allocators do not survive fork in a threaded process\n");
    return;
#endif
    bool locked = v->locked;
    if (!test_use_source(0) || !test_use_pin(v->rseq))
        return;
    test_setenv("GCPOOL_SHARED", locked ? "locked" : "chain");
    memset(&M, 0, sizeof M);
    gcpool_options_t o = {.new_fn = many_make, .free_fn = many_free, .name = "forked"};
    M.pool = gcpool_create(&o);
    ck_assert_ptr_nonnull(M.pool);
    test_setenv("GCPOOL_SHARED", NULL);
    ck_assert_int_eq(burst(8), 0);

    struct sigaction sa = {.sa_handler = nap_on_signal, .sa_flags = SA_RESTART};
    ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);
    pthread_t t[BUSY_THREADS], napper;
    for (int k = 0; k < BUSY_THREADS; k++)
        ck_assert_int_eq(pthread_create(&t[k], NULL, busy_burster, NULL), 0);
    ck_assert_int_eq(pthread_create(&napper, NULL, busy_napper, t), 0);
    const char *test_n = getenv("GCPOOL_TEST_N"), *mult = getenv("CK_TIMEOUT_MULTIPLIER");
    int forks = test_n && atoi(test_n) > 1 ? MANY_FORKS / atoi(test_n) : MANY_FORKS;
    double limit = CHILD_SECONDS * (mult && atof(mult) > 1 ? atof(mult) : 1), slowest = 0;
    char failure[160] = "";
    for (int f = 0; f < forks; f++) {
        usleep(500); /* let the threads queue up again */
        fflush(stdout);
        pid_t pid = fork();
        double start = test_seconds(); /* the child's second starts now */
        if (pid < 0) {
            snprintf(failure, sizeof failure, "fork %d: fork failed: %s", f, strerror(errno));
            break;
        }
        if (pid == 0) {
            int code = 0;
            for (int r = 0; r < 4 && !code; r++)
                code = burst(8);
            _exit(code);
        }
        int status;
        /* A failure stops the threads before it is reported: they use this
         * frame's t[], and Check without fork leaves the test by longjmp. */
        if (!wait_child(pid, start + limit, &status)) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            snprintf(failure, sizeof failure,
                     "fork %d (%s/%s): the child did not exit within %.1f s: it hangs", f,
                     locked ? "locked" : "chain", gcp_pin_name(), limit);
            break;
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            snprintf(failure, sizeof failure, "fork %d (%s/%s): child %s %d", f,
                     locked ? "locked" : "chain", gcp_pin_name(),
                     WIFEXITED(status) ? "exit status" : "killed by signal",
                     WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
            break;
        }
        slowest = test_seconds() - start > slowest ? test_seconds() - start : slowest;
    }
    atomic_store(&M.stop, 1);
    pthread_join(napper, NULL);
    for (int k = 0; k < BUSY_THREADS; k++)
        pthread_join(t[k], NULL);
    ck_assert_msg(!failure[0], "%s", failure);
    gcpool_destroy(M.pool);
    ck_assert_int_eq(atomic_load(&M.freed), atomic_load(&M.made)); /* the parent lost nothing */
    printf("many forks %s/%s: %d children under %d threads, slowest %.3f s, %ld objects\n",
           locked ? "locked" : "chain", gcp_pin_name(), forks, BUSY_THREADS, slowest,
           atomic_load(&M.made));
}
END_TEST

static Suite *make_suite(void)
{
    Suite *s = suite_create("fork");
    TCase *tc = test_tcase(s, "fork", 300);
    test_add_variants(tc, test_fork_while_busy, busy_variants);
    test_add_variants(tc, test_many_forks_every_mode, many_variants);
    return s;
}

TEST_MAIN(make_suite)
