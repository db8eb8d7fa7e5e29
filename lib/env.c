/* The GCPOOL_* environment variables; see env.h.
 *
 * As in mimalloc's src/options.c, one table below declares every variable
 * (name, type, default, range, description).  The parser, gcpool-info
 * (gcp_env_print) and the README (gcp_env_print_markdown) all read that table,
 * so the documentation cannot drift from what the code accepts. */
#ifndef _GNU_SOURCE /* config.h, forced in by the build, defines it */
#define _GNU_SOURCE       /* secure_getenv, environ */
#endif
#include "lib/env.h"
#include "lib/report.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/auxv.h>
#include <unistd.h>

enum kind { K_CHOICE, K_BOOL, K_INT, K_POW2, K_PATH, K_INT_OFF };
static const char *const kind_names[] = {"choice", "bool", "integer", "power of two", "path",
                                         "integer or off"};

struct var {
    const char *name;
    enum kind kind;
    long def;                   /* a number, a bool or a choice's index */
    long min, max;              /* K_INT, K_POW2 */
    const char *const *choices; /* K_CHOICE: NULL-terminated, index == value */
    const char *desc;
};

#define CHOICE(n, d, desc, ...) {n, K_CHOICE, d, 0, 0, (const char *const[]){__VA_ARGS__, NULL}, desc}
#define BOOL(n, d, desc) {n, K_BOOL, d, 0, 1, NULL, desc}
#define INT(n, d, lo, hi, desc) {n, K_INT, d, lo, hi, NULL, desc}
#define POW2(n, d, lo, hi, desc) {n, K_POW2, d, lo, hi, NULL, desc}
#define PATH(n, desc) {n, K_PATH, 0, 0, 0, NULL, desc}
#define INT_OFF(n, d, hi, desc) {n, K_INT_OFF, d, 0, hi, NULL, desc} /* "off" is 0 */

/* Indexed by enum gcp_env_id, so the enum order is the table order. */
static const struct var vars[] = {
    [GCP_ENV_GC] = CHOICE("GCPOOL_GC", GCP_GC_AUTO,
                          "Cycle source: Boehm's collections, the simulator, or auto "
                          "(Boehm when the program has initialised it)",
                          "auto", "boehm", "sim"),
    [GCP_ENV_VICTIM] = BOOL("GCPOOL_VICTIM", 1,
                            "Victim cache: objects survive one cycle; 0 gives Go 1.12's behaviour"),
    [GCP_ENV_PIN] = CHOICE("GCPOOL_PIN", GCP_PIN_AUTO,
                           "How a thread owns its CPU's local: rseq, a lock, or auto "
                           "(rseq where the kernel has it)",
                           "auto", "rseq", "lock"),
    [GCP_ENV_STEAL] = CHOICE("GCPOOL_STEAL", GCP_STEAL_TOPOLOGY,
                             "Order in which a get steals from other locals: nearest CPUs "
                             "first, or round robin",
                             "topology", "roundrobin"),
    [GCP_ENV_SHARED] = CHOICE("GCPOOL_SHARED", GCP_SHARED_CHAIN,
                              "Each local's shared queue: a chain of lock-free rings, or a "
                              "locked queue",
                              "chain", "locked"),
    [GCP_ENV_STATS] = CHOICE("GCPOOL_STATS", GCP_STATS_OFF,
                             "Statistics report printed at exit", "off", "text", "json"),
    [GCP_ENV_STATS_FILE] = PATH("GCPOOL_STATS_FILE",
                                "File the report at exit is written to; unset: stderr"),
    [GCP_ENV_SIM_NEW] = INT("GCPOOL_SIM_NEW", 0, 0, 2147483647,
                            "Simulator: a cycle after every N new_fn calls; 0: off"),
    [GCP_ENV_SIM_INTERVAL_MS] = INT("GCPOOL_SIM_INTERVAL_MS", 0, 0, 86400000,
                                    "Simulator: a cycle every N milliseconds; 0: off"),
    [GCP_ENV_RING_MIN] = POW2("GCPOOL_RING_MIN", 8, 2, 1L << 20,
                              "Size of a local's first shared ring"),
    [GCP_ENV_RING_MAX] = POW2("GCPOOL_RING_MAX", 1024, 2, 1L << 24,
                              "Largest shared ring (rings double up to it); raised to "
                              "GCPOOL_RING_MIN when smaller"),
    [GCP_ENV_DEBUG] = BOOL("GCPOOL_DEBUG", 0, "Checked mode: verify invariants and misuse (slower)"),
    /* Limits as GCPOOL_BUF_MIN_LIMIT and GCPOOL_BUF_MAX_LIMIT in <gcpool/buf.h>. */
    [GCP_ENV_BUF_MIN] = POW2("GCPOOL_BUF_MIN", 256, 16, 1L << 30,
                             "Buffer pools: smallest size class in bytes (when the options give none)"),
    [GCP_ENV_BUF_MAX] = POW2("GCPOOL_BUF_MAX", 4194304, 16, 1L << 30,
                             "Buffer pools: largest size class in bytes; larger buffers are never "
                             "pooled; raised to GCPOOL_BUF_MIN when smaller"),
    [GCP_ENV_SIM_GOGC] = INT_OFF("GCPOOL_SIM_GOGC", 100, 1000000,
                                 "Simulator's pacer: a cycle when the heap made since the last one "
                                 "reaches this percent of the live heap; 0 or off: no pacing"),
    [GCP_ENV_SIM_MIN_HEAP] = INT("GCPOOL_SIM_MIN_HEAP", 4194304, 1, 1099511627776L,
                                 "Simulator's pacer: the least heap made between two cycles, in bytes "
                                 "(objects for pools of unknown size)"),
    [GCP_ENV_PRESSURE_MS] = INT("GCPOOL_PRESSURE_MS", 100, 0, 86400000,
                                "Memory pressure is read at most every N milliseconds, on slow paths; "
                                "0: never"),
    [GCP_ENV_PRESSURE_FILE] = PATH("GCPOOL_PRESSURE_FILE",
                                   "Linux PSI file read for memory pressure; unset: /proc/pressure/memory"),
    [GCP_ENV_PRESSURE_AVG10] = INT("GCPOOL_PRESSURE_AVG10", 10, 0, 100,
                                   "PSI's some avg10 above this percent is pressure (a cycle); full "
                                   "avg10 above it, severe (two)"),
    [GCP_ENV_PRESSURE_CGROUP] = PATH("GCPOOL_PRESSURE_CGROUP",
                                     "cgroup v2 directory whose memory.current is compared with "
                                     "memory.high/max; unset: the process's own"),
    [GCP_ENV_CYCLE_EVERY] = INT("GCPOOL_CYCLE_EVERY", 1, 1, 1000000,
                                "Under Boehm, a cycle on every Nth collection (1: every one); "
                                "larger keeps objects cached longer"),
    [GCP_ENV_MAX_CACHED] = INT_OFF("GCPOOL_MAX_CACHED", 0, 1099511627776L,
                                   "Retention bound, in objects, of pools whose options give none "
                                   "(max_cached); 0 or off: no bound"),
};
_Static_assert(sizeof vars / sizeof vars[0] == GCP_ENV_COUNT, "one table row per gcp_env_id");
_Static_assert(GCP_GC_SIM == 2 && GCP_PIN_LOCK == 2 && GCP_SHARED_LOCKED == 1 &&
                   GCP_STATS_JSON_ == 2 && GCP_STEAL_ROUNDROBIN == 1,
               "a choice's value is the index of its text");

/* Not the library's, but set by the test harness and tools: not typos. */
static const char *const others[] = {"GCPOOL_BUILDDIR", "GCPOOL_TEST_N", "GCPOOL_TEST_NO_BOEHM"};

static long values[GCP_ENV_COUNT];
/* K_PATH: our own copy, since the program may change its environment later. */
static char *paths[GCP_ENV_COUNT];
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* A setuid/setgid program must not let whoever runs it steer it. */
static const char *env_get(const char *name)
{
#if defined(HAVE_CONFIG_H) && !defined(HAVE_SECURE_GETENV)
    return getauxval(AT_SECURE) ? NULL : getenv(name);
#else
    return secure_getenv(name);
#endif
}

/* s quoted for a one-line message: control bytes as \xNN (a newline in a value
 * must not split the warning), long values cut. */
static const char *printable(const char *s, size_t n, char *buf, size_t len)
{
    size_t o = 0, i = 0;
    for (; i < n && s[i] && o + 8 < len; i++) {
        unsigned char c = (unsigned char)s[i];
        o += (size_t)snprintf(buf + o, len - o, isprint(c) ? "%c" : "\\x%02x", c);
    }
    snprintf(buf + o, len - o, "%s", i < n && s[i] ? "..." : "");
    return buf;
}

static const char *value_text(int id, long v, char *buf, size_t len)
{
    const struct var *d = &vars[id];
    if (d->kind == K_CHOICE)
        return d->choices[v];
    if (d->kind == K_PATH)
        return paths[id] ? paths[id] : "";
    snprintf(buf, len, "%ld", v);
    return buf;
}

static const char *default_text(int id, char *buf, size_t len)
{
    return vars[id].kind == K_PATH ? "(unset)" : value_text(id, vars[id].def, buf, len);
}

/* Only plain decimal digits: strtol alone would take " 12", "+12", "0x" prefixes... */
static bool parse_number(const char *s, long *out)
{
    if (!*s || strspn(s, "0123456789") != strlen(s))
        return false;
    errno = 0;
    *out = strtol(s, NULL, 10);
    return errno == 0;
}

/* Even index: false; odd: true.  Case-insensitive. */
static const char *const bools[] = {"0", "1", "false", "true", "no", "yes", "off", "on", NULL};

/* Parses s for variable id into values[]/paths[]; false with why set when bad. */
static bool parse(int id, const char *s, char *why, size_t len)
{
    const struct var *d = &vars[id];
    long n;
    switch (d->kind) {
    case K_CHOICE: {
        for (long i = 0; d->choices[i]; i++)
            if (strcasecmp(s, d->choices[i]) == 0)
                return values[id] = i, true;
        size_t o = (size_t)snprintf(why, len, "is not one of ");
        for (int i = 0; d->choices[i] && o < len; i++)
            o += (size_t)snprintf(why + o, len - o, "%s%s", i ? "|" : "", d->choices[i]);
        return false;
    }
    case K_BOOL:
        for (int i = 0; bools[i]; i++)
            if (strcasecmp(s, bools[i]) == 0)
                return values[id] = i & 1, true;
        snprintf(why, len, "is not a bool (1/0, true/false, yes/no, on/off)");
        return false;
    case K_INT_OFF:
        if (strcasecmp(s, "off") == 0)
            return values[id] = 0, true;
        if (parse_number(s, &n) && n >= d->min && n <= d->max)
            return values[id] = n, true;
        snprintf(why, len, "is not off or an integer in [%ld, %ld]", d->min, d->max);
        return false;
    case K_INT:
    case K_POW2:
        if (parse_number(s, &n) && n >= d->min && n <= d->max && (d->kind == K_INT || !(n & (n - 1))))
            return values[id] = n, true;
        snprintf(why, len, "is not %s in [%ld, %ld]", d->kind == K_INT ? "an integer" : "a power of two",
                 d->min, d->max);
        return false;
    case K_PATH:
        if (*s && (paths[id] = strdup(s)))
            return true;
        snprintf(why, len, *s ? "cannot be copied (out of memory)" : "is an empty path");
        return false;
    }
    return false;
}

/* Edit distance, to suggest the variable a typo meant. */
static size_t distance(const char *a, size_t na, const char *b)
{
    size_t nb = strlen(b), row[64];
    if (na >= 64 || nb >= 64)
        return 64;
    for (size_t j = 0; j <= nb; j++)
        row[j] = j;
    for (size_t i = 1; i <= na; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= nb; j++) {
            size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
            best = up + 1 < best ? up + 1 : best;
            best = row[j - 1] + 1 < best ? row[j - 1] + 1 : best;
            row[j] = best, diag = up;
        }
    }
    return row[nb];
}

/* A misspelt variable would otherwise be ignored in silence. */
static void warn_unknown(void)
{
    if (getauxval(AT_SECURE)) /* nothing is read there, so nothing to check */
        return;
    for (char **e = environ; e && *e; e++) {
        if (strncmp(*e, "GCPOOL_", 7) != 0)
            continue;
        size_t n = strcspn(*e, "=");
        bool known = false;
        const char *near = NULL;
        size_t best = 3; /* suggest only within two edits */
        for (int i = 0; i < GCP_ENV_COUNT + (int)(sizeof others / sizeof *others) && !known; i++) {
            const char *name = i < GCP_ENV_COUNT ? vars[i].name : others[i - GCP_ENV_COUNT];
            size_t dist = distance(*e, n, name);
            known = dist == 0;
            if (dist < best && i < GCP_ENV_COUNT)
                best = dist, near = name;
        }
        char buf[160];
        if (!known)
            gcp_warn("gcpool: %s is not a gcpool variable; ignored%s%s%s", printable(*e, n, buf, sizeof buf),
                 near ? " (did you mean " : "", near ? near : "", near ? "?)" : "");
    }
}

static void load(void)
{
    for (int id = 0; id < GCP_ENV_COUNT; id++) {
        const char *s = env_get(vars[id].name);
        char why[160], val[160], def[32];
        values[id] = vars[id].def;
        free(paths[id]);
        paths[id] = NULL;
        if (s && !parse(id, s, why, sizeof why))
            gcp_warn("gcpool: %s=%s %s; using the default %s", vars[id].name,
                 printable(s, strlen(s), val, sizeof val), why, default_text(id, def, sizeof def));
    }
    /* Rings grow from RING_MIN up to RING_MAX: the pair must be ordered. */
    if (values[GCP_ENV_RING_MAX] < values[GCP_ENV_RING_MIN]) {
        gcp_warn("gcpool: GCPOOL_RING_MAX=%ld%s is less than GCPOOL_RING_MIN=%ld; using GCPOOL_RING_MAX=%ld",
             values[GCP_ENV_RING_MAX], env_get("GCPOOL_RING_MAX") ? "" : " (the default)",
             values[GCP_ENV_RING_MIN], values[GCP_ENV_RING_MIN]);
        values[GCP_ENV_RING_MAX] = values[GCP_ENV_RING_MIN];
    }
    /* Buffer classes run from BUF_MIN up to BUF_MAX: the same rule. */
    if (values[GCP_ENV_BUF_MAX] < values[GCP_ENV_BUF_MIN]) {
        gcp_warn("gcpool: GCPOOL_BUF_MAX=%ld%s is less than GCPOOL_BUF_MIN=%ld; using GCPOOL_BUF_MAX=%ld",
             values[GCP_ENV_BUF_MAX], env_get("GCPOOL_BUF_MAX") ? "" : " (the default)",
             values[GCP_ENV_BUF_MIN], values[GCP_ENV_BUF_MIN]);
        values[GCP_ENV_BUF_MAX] = values[GCP_ENV_BUF_MIN];
    }
    warn_unknown();
}

/* pthread_once: the first call may come from any thread, and must warn once. */
static bool ready(enum gcp_env_id id)
{
    pthread_once(&once, load);
    return (unsigned)id < GCP_ENV_COUNT;
}

long gcp_env_long(enum gcp_env_id id)
{
    return ready(id) && vars[id].kind != K_PATH ? values[id] : 0;
}

const char *gcp_env_str(enum gcp_env_id id)
{
    return ready(id) && vars[id].kind == K_PATH ? paths[id] : NULL;
}

/* Choices and paths return their own stable text; numbers are written to buf. */
const char *gcp_env_text(enum gcp_env_id id, char *buf, size_t len)
{
    if (!ready(id))
        return "";
    if (vars[id].kind != K_CHOICE && vars[id].kind != K_PATH && (!buf || !len))
        return "";
    return value_text(id, values[id], buf, len);
}

const char *gcp_env_name(enum gcp_env_id id)
{
    return (unsigned)id < GCP_ENV_COUNT ? vars[id].name : NULL;
}

void gcp_env_print(FILE *out, bool json)
{
    char buf[32], def[32];
    pthread_once(&once, load);
    if (!json)
        fprintf(out, "%-24s %-12s %-12s %s\n", "variable", "value", "default", "description");
    for (int id = 0; id < GCP_ENV_COUNT; id++) {
        const char *v = value_text(id, values[id], buf, sizeof buf);
        if (json) {
            fprintf(out, "%s", id ? ", " : "{");
            gcp_json_string(out, vars[id].name);
            fputs(": ", out);
            gcp_json_string(out, v);
        } else {
            fprintf(out, "%-24s %-12s %-12s %s\n", vars[id].name,
                     vars[id].kind == K_PATH && !paths[id] ? "(unset)" : v,
                     default_text(id, def, sizeof def), vars[id].desc);
        }
    }
    if (json)
        fputs("}\n", out);
}

/* The README's table: | variable | type | default | range | description |. */
void gcp_env_print_markdown(FILE *out)
{
    char def[32];
    fputs("| Variable | Type | Default | Range | Description |\n|---|---|---|---|---|\n", out);
    for (int id = 0; id < GCP_ENV_COUNT; id++) {
        const struct var *d = &vars[id];
        fprintf(out, "| `%s` | %s | %s%s%s | ", d->name, kind_names[d->kind], d->kind == K_PATH ? "" : "`",
                d->kind == K_PATH ? "unset" : default_text(id, def, sizeof def), d->kind == K_PATH ? "" : "`");
        if (d->kind == K_CHOICE)
            for (int i = 0; d->choices[i]; i++)
                fprintf(out, "%s`%s`", i ? " \\| " : "", d->choices[i]);
        else if (d->kind == K_BOOL)
            fputs("1/0, true/false, yes/no, on/off", out);
        else if (d->kind == K_PATH)
            fputs("a file name", out);
        else if (d->kind == K_INT_OFF)
            fprintf(out, "%ld .. %ld, `off`", d->min, d->max);
        else
            fprintf(out, "%ld .. %ld", d->min, d->max);
        fprintf(out, " | %s |\n", d->desc);
    }
}

/* Tests only: the once has run (or runs now, reading nothing new), then load
 * again.  Marking the once done first keeps a later gcp_env_* from reloading. */
static void nothing(void) {}

void gcp_env_reload(void)
{
    pthread_once(&once, nothing);
    load();
}
