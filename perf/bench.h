/* bench.h — Go's testing.B, just enough of it to run C ports of Go's
 * benchmarks and print what `go test -bench` prints.
 *
 * Why a port rather than a C benchmark library: the point of perf/ is to put a
 * gcpool figure next to Go's for the same benchmark, and that comparison is
 * only fair when both sides choose b.N the same way, split it among threads the
 * same way and print the same line (so benchstat, or perf/run's summary, reads
 * both files alike).  Followed here from Go 1.19's testing/benchmark.go:
 *   - b.N: run once with N=1, then predict N from the last run's time, plus
 *     20%, at most 100x the last N, at least last+1, at most 1e9, until a run
 *     lasts -benchtime; or exactly N with -benchtime Nx.  (Go up to 1.15 also
 *     rounded N up to 1, 2, 3 or 5 x 10^k; 1.16 dropped that, and the Go on
 *     this machine is 1.19, so neither side rounds.)
 *   - a collection before every run (Go's runtime.GC()), so garbage of the last
 *     run is not billed to the next; under gcpool that is also a pool cycle,
 *     as it is in Go.
 *   - RunParallel: -cpu P threads share b.N through one atomic counter, taking
 *     a grain of iterations (about 100 us of work, at most 1e4) at a time.
 *   - output: name padded to the longest name, "-P" appended when P != 1, N in
 *     8 columns, numbers in Go's prettyPrint widths, extra metrics sorted by unit;
 *     goos/goarch/pkg/cpu header; PASS and an ok line at the end.
 *
 * Header-only (every function static inline) so each perf program can take
 * what it uses without a library.  Threads come from pthread_create, which
 * gc.h turns into GC_pthread_create under GC_THREADS: the collector has to know
 * every thread that holds pointers to collector memory on its stack. */
#ifndef GCPOOL_PERF_BENCH_H
#define GCPOOL_PERF_BENCH_H

#ifndef GC_THREADS
#define GC_THREADS
#endif
#include <gc/gc.h>

#include <pthread.h>
#include <regex.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

static inline uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- b *testing.B ------------------------------------------------------- */

#define BENCH_MAX_EXTRA 12

struct bench_metric {
    char unit[32];
    double value;
};

struct bench_b {
    long n;                       /* b.N */
    int procs;                    /* the -cpu value of this run: RunParallel's threads */
    long previous_n;              /* the last run's N and time: RunParallel's grain */
    uint64_t previous_ns;
    uint64_t start_ns, duration_ns;
    bool timer_on;
    struct bench_metric extra[BENCH_MAX_EXTRA]; /* b.ReportMetric */
    int nextra;
    const char *skip;             /* b.Skip: why this run is not measured */
};

typedef void (*bench_fn)(struct bench_b *b);

struct bench_def {
    const char *name;
    bench_fn fn;
};

static inline void bench_start_timer(struct bench_b *b)
{
    if (!b->timer_on) {
        b->start_ns = bench_now_ns();
        b->timer_on = true;
    }
}

static inline void bench_stop_timer(struct bench_b *b)
{
    if (b->timer_on) {
        b->duration_ns += bench_now_ns() - b->start_ns;
        b->timer_on = false;
    }
}

static inline void bench_reset_timer(struct bench_b *b)
{
    if (b->timer_on)
        b->start_ns = bench_now_ns();
    b->duration_ns = 0;
}

/* b.ReportMetric: a later value for the same unit replaces the earlier one;
 * "ns/op" replaces the measured time per op. */
static inline void bench_report_metric(struct bench_b *b, double value, const char *unit)
{
    int i;
    for (i = 0; i < b->nextra; i++)
        if (strcmp(b->extra[i].unit, unit) == 0)
            break;
    if (i == b->nextra) {
        if (b->nextra == BENCH_MAX_EXTRA)
            return;
        b->nextra++;
        snprintf(b->extra[i].unit, sizeof b->extra[i].unit, "%s", unit);
    }
    b->extra[i].value = value;
}

/* b.Skip, for what cannot run with this -cpu (a hand-off needs two threads):
 * the benchmark returns right after; go test's "--- SKIP" lines follow its
 * name, and no result. */
static inline void bench_skip(struct bench_b *b, const char *why) { b->skip = why; }

/* ---- b.RunParallel -------------------------------------------------------- */

struct bench_pb {
    _Atomic uint64_t *global_n; /* iterations handed out so far, by all threads */
    uint64_t grain;             /* taken from global_n at a time */
    uint64_t cache;             /* taken and not yet run */
    uint64_t bn;                /* b.N */
    int id;                     /* this thread: 0 .. procs - 1 */
};

/* pb.Next: one shared atomic add per grain, not per iteration, so the counter
 * costs nothing next to the benchmark body. */
static inline bool bench_pb_next(struct bench_pb *pb)
{
    if (pb->cache == 0) {
        uint64_t n = atomic_fetch_add_explicit(pb->global_n, pb->grain, memory_order_relaxed) +
                     pb->grain;
        if (n <= pb->bn)
            pb->cache = pb->grain;
        else if (n < pb->bn + pb->grain)
            pb->cache = pb->bn + pb->grain - n;
        else
            return false;
    }
    pb->cache--;
    return true;
}

typedef void (*bench_body)(struct bench_pb *pb, void *arg);

struct bench_worker {
    pthread_barrier_t *start;
    struct bench_pb pb;
    bench_body body;
    void *arg;
};

static inline void *bench_worker_main(void *p)
{
    struct bench_worker *w = p;
    pthread_barrier_wait(w->start);
    w->body(&w->pb, w->arg);
    return NULL;
}

/* Runs body(pb, arg) on b->procs threads until they have run b.N iterations
 * between them.  The timer restarts when every thread is ready: Go starts
 * goroutines in nanoseconds, threads take tens of microseconds, and that cost
 * is the harness's, not the benchmark's. */
static inline void bench_run_parallel(struct bench_b *b, bench_body body, void *arg)
{
    if (b->n == 0)
        return;
    uint64_t grain = 1;
    if (b->previous_n > 0 && b->previous_ns > 0)
        grain = 100000u * (uint64_t)b->previous_n / b->previous_ns;
    if (grain < 1)
        grain = 1;
    if (grain > 10000)
        grain = 10000;

    int procs = b->procs;
    _Atomic uint64_t n = 0;
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)procs + 1);
    pthread_t *threads = calloc((size_t)procs, sizeof *threads);
    struct bench_worker *workers = calloc((size_t)procs, sizeof *workers);
    if (!threads || !workers) {
        fprintf(stderr, "bench: out of memory\n");
        exit(1);
    }
    for (int i = 0; i < procs; i++) {
        workers[i] = (struct bench_worker){&start, {&n, grain, 0, (uint64_t)b->n, i}, body, arg};
        int err = pthread_create(&threads[i], NULL, bench_worker_main, &workers[i]);
        if (err) {
            fprintf(stderr, "bench: pthread_create: %s\n", strerror(err));
            exit(1);
        }
    }
    bench_reset_timer(b);
    pthread_barrier_wait(&start);
    for (int i = 0; i < procs; i++)
        pthread_join(threads[i], NULL);
    bench_stop_timer(b);
    pthread_barrier_destroy(&start);
    free(workers);
    free(threads);
}

/* ---- the driver: flags, the N loop, output ------------------------------- */

struct bench_flags {
    const char *bench; /* -bench: POSIX extended regex */
    int cpus[64];      /* -cpu */
    int ncpus;
    long benchtime_n;  /* -benchtime Nx; 0: a duration */
    uint64_t benchtime_ns;
    int count;         /* -count */
    const char *pkg;   /* -pkg: the pkg: header line */
    bool list;         /* -list: print matching names and exit */
};

static inline void bench_usage(FILE *out, const char *prog)
{
    fprintf(out,
            "usage: %s [-bench REGEX] [-cpu 1,2,4] [-benchtime 1s|Nx] [-count N] [-pkg NAME] [-list]\n"
            "  Flags as go test's (-test.bench etc. and -flag=value are accepted too).\n"
            "  -bench   benchmarks to run, a POSIX extended regex (default: all)\n"
            "  -cpu     thread counts to run each benchmark with (default: online CPUs)\n"
            "  -benchtime  run each benchmark this long (1s, 500ms) or N times (100x) (default 1s)\n"
            "  -count   run each benchmark this many times (default 1)\n"
            "  -list    print the names -bench selects, run nothing\n"
            "  -pkg     the pkg: header line (default: sync, the package these are ports of,\n"
            "           so benchstat puts a C run and a `go test sync` run in one table)\n",
            prog);
}

/* Go's time.ParseDuration, for what a benchtime needs: "1s", "500ms", "1.5s",
 * "2m30s"; units ns, us, µs, ms, s, m, h. */
static inline bool bench_parse_duration(const char *s, uint64_t *out)
{
    static const struct {
        const char *unit;
        double ns;
    } units[] = {{"ns", 1}, {"us", 1e3}, {"\xc2\xb5s", 1e3}, {"ms", 1e6},
                 {"s", 1e9}, {"m", 60e9}, {"h", 3600e9}};
    double total = 0;
    if (!*s)
        return false;
    while (*s) {
        char *end;
        double v = strtod(s, &end);
        if (end == s || v < 0)
            return false;
        s = end;
        size_t best = 0, which = 0;
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
            size_t l = strlen(units[i].unit);
            if (strncmp(s, units[i].unit, l) == 0 && l > best)
                best = l, which = i;
        }
        if (!best)
            return false;
        total += v * units[which].ns;
        s += best;
    }
    *out = (uint64_t)total;
    return total > 0;
}

static inline int bench_parse_flags(int argc, char **argv, struct bench_flags *f)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    *f = (struct bench_flags){.bench = ".", .ncpus = 1, .benchtime_ns = 1000000000u, .count = 1,
                              .pkg = "sync"};
    f->cpus[0] = ncpu > 0 ? (int)ncpu : 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-') {
            fprintf(stderr, "unexpected argument %s\n", a);
            return -1;
        }
        a += a[1] == '-' ? 2 : 1;
        if (strncmp(a, "test.", 5) == 0)
            a += 5;
        char name[32];
        const char *val = strchr(a, '=');
        size_t len = val ? (size_t)(val - a) : strlen(a);
        if (len >= sizeof name)
            len = sizeof name - 1;
        memcpy(name, a, len);
        name[len] = 0;
        if (strcmp(name, "h") == 0 || strcmp(name, "help") == 0) {
            bench_usage(stdout, argv[0]);
            exit(0);
        }
        if (strcmp(name, "list") == 0) {
            f->list = true;
            continue;
        }
        if (val)
            val++;
        else if (i + 1 < argc)
            val = argv[++i];
        else {
            fprintf(stderr, "flag needs an argument: -%s\n", name);
            return -1;
        }
        if (strcmp(name, "bench") == 0) {
            f->bench = val;
        } else if (strcmp(name, "cpu") == 0) {
            f->ncpus = 0;
            for (const char *p = val; *p;) {
                char *end;
                long c = strtol(p, &end, 10);
                if (end == p || c <= 0 || c > 4096 || f->ncpus == 64) {
                    fprintf(stderr, "invalid value \"%s\" for -cpu\n", val);
                    return -1;
                }
                f->cpus[f->ncpus++] = (int)c;
                p = end;
                while (*p == ',' || *p == ' ')
                    p++;
            }
            if (f->ncpus == 0)
                f->cpus[f->ncpus++] = (int)(ncpu > 0 ? ncpu : 1);
        } else if (strcmp(name, "benchtime") == 0) {
            size_t l = strlen(val);
            if (l > 1 && val[l - 1] == 'x') {
                char *end;
                f->benchtime_n = strtol(val, &end, 10);
                if (end != val + l - 1 || f->benchtime_n <= 0) {
                    fprintf(stderr, "invalid value \"%s\" for -benchtime: invalid count\n", val);
                    return -1;
                }
            } else if (bench_parse_duration(val, &f->benchtime_ns)) {
                f->benchtime_n = 0;
            } else {
                fprintf(stderr, "invalid value \"%s\" for -benchtime: invalid duration\n", val);
                return -1;
            }
        } else if (strcmp(name, "count") == 0) {
            f->count = atoi(val);
            if (f->count <= 0) {
                fprintf(stderr, "invalid value \"%s\" for -count\n", val);
                return -1;
            }
        } else if (strcmp(name, "pkg") == 0) {
            f->pkg = val;
        } else {
            fprintf(stderr, "flag provided but not defined: -%s\n", name);
            bench_usage(stderr, argv[0]);
            return -1;
        }
    }
    return 0;
}

/* Go's prettyPrint: whole part in 10 places, small numbers to four figures. */
static inline void bench_pretty(FILE *out, double x, const char *unit)
{
    double y = x < 0 ? -x : x;
    int width, prec;
    if (y == 0 || y >= 999.95)
        width = 10, prec = 0;
    else if (y >= 99.995)
        width = 12, prec = 1;
    else if (y >= 9.9995)
        width = 13, prec = 2;
    else if (y >= 0.99995)
        width = 14, prec = 3;
    else if (y >= 0.099995)
        width = 15, prec = 4;
    else if (y >= 0.0099995)
        width = 16, prec = 5;
    else if (y >= 0.00099995)
        width = 17, prec = 6;
    else
        width = 18, prec = 7;
    fprintf(out, "%*.*f %s", width, prec, x, unit);
}

static inline void bench_run_n(struct bench_b *b, bench_fn fn, long n)
{
    GC_gcollect();
    b->n = n;
    b->nextra = 0;
    b->skip = NULL;
    b->duration_ns = 0;
    b->timer_on = false;
    bench_start_timer(b);
    fn(b);
    bench_stop_timer(b);
    b->previous_n = n;
    b->previous_ns = b->duration_ns;
}

static inline long bench_min(long x, long y) { return x < y ? x : y; }
static inline long bench_max(long x, long y) { return x > y ? x : y; }

/* b.run1 + b.launch: one run of N=1, then grow N until a run lasts benchtime. */
static inline void bench_launch(struct bench_b *b, bench_fn fn, const struct bench_flags *f)
{
    bench_run_n(b, fn, 1);
    if (b->skip)
        return;
    if (f->benchtime_n > 0) {
        if (f->benchtime_n > 1)
            bench_run_n(b, fn, f->benchtime_n);
        return;
    }
    for (long n = 1; b->duration_ns < f->benchtime_ns && n < 1000000000L;) {
        long last = n;
        uint64_t prevns = b->duration_ns ? b->duration_ns : 1;
        /* Multiply first: for a fast benchmark prev N ~ prev ns, and dividing
         * first would lose an order of magnitude. */
        n = (long)((double)f->benchtime_ns * (double)b->n / (double)prevns);
        n += n / 5;
        n = bench_min(n, 100 * last);
        n = bench_max(n, last + 1);
        n = bench_min(n, 1000000000L);
        bench_run_n(b, fn, n);
    }
}

static inline int bench_metric_cmp(const void *x, const void *y)
{
    return strcmp(((const struct bench_metric *)x)->unit, ((const struct bench_metric *)y)->unit);
}

static inline void bench_print_result(FILE *out, const struct bench_b *b)
{
    fprintf(out, "%8ld", b->n);
    double ns = (double)b->duration_ns / (double)b->n;
    /* Extra metrics, in unit order as Go sorts them; "ns/op" overrides. */
    struct bench_metric ex[BENCH_MAX_EXTRA];
    int nex = 0;
    for (int i = 0; i < b->nextra; i++) {
        if (strcmp(b->extra[i].unit, "ns/op") == 0)
            ns = b->extra[i].value;
        else
            ex[nex++] = b->extra[i];
    }
    qsort(ex, (size_t)nex, sizeof ex[0], bench_metric_cmp);
    if (ns != 0) {
        fputc('\t', out);
        bench_pretty(out, ns, "ns/op");
    }
    for (int i = 0; i < nex; i++) {
        fputc('\t', out);
        bench_pretty(out, ex[i].value, ex[i].unit);
    }
    fputc('\n', out);
}

static inline void bench_name(char *buf, size_t len, const char *name, int procs)
{
    if (procs != 1)
        snprintf(buf, len, "%s-%d", name, procs);
    else
        snprintf(buf, len, "%s", name);
}

/* GOARCH's spelling of this machine. */
static inline const char *bench_goarch(void)
{
    static struct utsname u;
    if (uname(&u) != 0)
        return "unknown";
    if (strcmp(u.machine, "x86_64") == 0)
        return "amd64";
    if (strcmp(u.machine, "aarch64") == 0)
        return "arm64";
    if (u.machine[0] == 'i' && strcmp(u.machine + 2, "86") == 0)
        return "386";
    return u.machine;
}

/* What Go's internal/sysinfo prints: the model name of the first CPU. */
static inline void bench_cpu_name(char *buf, size_t len)
{
    buf[0] = 0;
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            char *v = strchr(line, ':');
            if (v) {
                v++;
                while (*v == ' ' || *v == '\t')
                    v++;
                v[strcspn(v, "\n")] = 0;
                snprintf(buf, len, "%s", v);
            }
            break;
        }
    }
    fclose(f);
}

/* go test's RunBenchmarks: every matching benchmark, for each -cpu value,
 * -count times.  Returns the exit status. */
static inline int bench_main(int argc, char **argv, const struct bench_def *defs, size_t ndefs)
{
    struct bench_flags f;
    if (bench_parse_flags(argc, argv, &f) != 0)
        return 2;
    regex_t re;
    int err = regcomp(&re, f.bench, REG_EXTENDED | REG_NOSUB);
    if (err) {
        char msg[256];
        regerror(err, &re, msg, sizeof msg);
        fprintf(stderr, "invalid regexp for -bench: %s\n", msg);
        return 2;
    }
    bool *match = calloc(ndefs, sizeof *match);
    int maxprocs = 1;
    for (int i = 0; i < f.ncpus; i++)
        maxprocs = f.cpus[i] > maxprocs ? f.cpus[i] : maxprocs;
    char buf[256];
    bench_name(buf, sizeof buf, "", maxprocs);
    int extlen = (int)strlen(buf), maxlen = 0;
    for (size_t i = 0; i < ndefs; i++) {
        match[i] = regexec(&re, defs[i].name, 0, NULL, 0) == 0;
        if (match[i] && f.list)
            printf("%s\n", defs[i].name);
        int l = (int)strlen(defs[i].name) + 2 * extlen + 1;
        if (match[i] && l > maxlen)
            maxlen = l;
    }
    regfree(&re);
    if (f.list) {
        free(match);
        return 0;
    }

    uint64_t t0 = bench_now_ns();
    char cpu[256];
    bench_cpu_name(cpu, sizeof cpu);
    printf("goos: linux\ngoarch: %s\npkg: %s\n", bench_goarch(), f.pkg);
    if (cpu[0])
        printf("cpu: %s\n", cpu);
    for (size_t i = 0; i < ndefs; i++) {
        if (!match[i])
            continue;
        for (int c = 0; c < f.ncpus; c++) {
            for (int k = 0; k < f.count; k++) {
                bench_name(buf, sizeof buf, defs[i].name, f.cpus[c]);
                printf("%-*s\t", maxlen, buf);
                fflush(stdout); /* show which benchmark is running */
                struct bench_b b = {.procs = f.cpus[c]};
                bench_launch(&b, defs[i].fn, &f);
                if (b.skip)
                    printf("\n    %s\n--- SKIP: %s\n", b.skip, buf);
                else
                    bench_print_result(stdout, &b);
                fflush(stdout);
            }
        }
    }
    free(match);
    printf("PASS\nok  \t%s\t%.3fs\n", f.pkg, (double)(bench_now_ns() - t0) / 1e9);
    return 0;
}

#endif /* GCPOOL_PERF_BENCH_H */
