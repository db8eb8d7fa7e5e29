/* Statistics.  Counters live in each local and are written only under its pin
 * (pool.h), so a get or put pays a plain increment; a read sums them all.
 * Reports (the at-exit one of GCPOOL_STATS, and gcpool_stats_print) are printed
 * by one function, as mimalloc's and jemalloc's are. */
#include "lib/stats.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "gc_glue/glue.h"
#include "lib/cycle.h"
#include "lib/debug.h"
#include "lib/env.h"
#include "lib/history.h"
#include "lib/locked.h"
#include "lib/peek.h"
#include "lib/reentry.h"
#include "lib/report.h"

/* GCPOOL_STAT_FIELDS as data (in_class: 1 + 0 for BOTH, + 0 for POOL). */
#define FIELD(name_, column_, scope, heading_, doc_)                                               \
    {.name = #name_, .heading = heading_, .doc = doc_, .offset = offsetof(gcpool_stats_t, name_),    \
     .column = GCP_STAT_COL_##column_, .in_class = GCPOOL_STAT_IF_CLASS(scope, 1) + 0},
const struct gcp_stat_field gcp_stat_fields[GCP_STAT_NFIELDS] = {GCPOOL_STAT_FIELDS(FIELD)};
#undef FIELD
/* field_value reads every field as a uint64_t: the list is the whole struct. */
_Static_assert(sizeof(gcpool_stats_t) == GCP_STAT_NFIELDS * sizeof(uint64_t),
               "gcpool_stats_t is GCPOOL_STAT_FIELDS' uint64_t counters and nothing else");

static uint64_t field_value(const gcpool_stats_t *s, const struct gcp_stat_field *f)
{
    return *(const uint64_t *)(const void *)((const char *)s + f->offset);
}

static uint64_t get(const _Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

static void add_counters(gcpool_stats_t *out, const struct gcp_counters *c)
{
    out->puts += get(&c->puts_shared);
    out->news += get(&c->news);
    out->hit_shared += get(&c->hit_shared);
    out->hit_steal += get(&c->hit_steal);
    out->hit_victim += get(&c->hit_victim);
    out->miss += get(&c->miss);
}

/* ---- reading a pool, here or in another process (peek.h) -------------------- */

/* One array of locals as read through pk: local i at base + i*stride. */
struct locals_view {
    const char *base;
    unsigned n;
    size_t stride;
    void *copy; /* what to free: the copy of another process's locals */
};

static bool view_locals(const struct gcp_peek *pk, const struct gcp_locals *addr,
                        struct locals_view *v)
{
    struct gcp_locals hbuf;
    const struct gcp_locals *h = gcp_peek(pk, addr, sizeof hbuf, &hbuf);
    /* Checked even here: another process's header is data. */
    if (!h || h->n > GCP_PEEK_MAX_LOCALS || h->stride < sizeof(struct gcp_local) ||
        h->stride > GCP_PEEK_MAX_STRIDE)
        return false;
    *v = (struct locals_view){.base = h->base, .n = h->n, .stride = h->stride};
    if (pk == &gcp_peek_self)
        return true; /* no copy: inside the collector too (gcp_pool_count) */
    size_t bytes = (size_t)h->n * h->stride;
    if (!(v->copy = malloc(bytes ? bytes : 1)))
        return false;
    if (!(v->base = gcp_peek(pk, h->base, bytes, v->copy))) {
        free(v->copy);
        return false;
    }
    return true;
}

static const struct gcp_local *view_at(const struct locals_view *v, unsigned i)
{
    return (const struct gcp_local *)(const void *)(v->base + (size_t)i * v->stride);
}

/* Objects one local holds now: private, the locked queue, every ring. */
static uint64_t local_count(const struct gcp_peek *pk, const struct gcp_local *l)
{
    /* A racy read of private, for statistics only. */
    uint64_t n = atomic_load_explicit(&l->private_, memory_order_relaxed) != NULL;
    n += gcp_locked_len(&l->locked);
    for (int k = 0; k < GCP_CHAIN_RINGS; k++) {
        /* Acquire: pairs with the release that published the ring. */
        const struct gcp_ring *r = atomic_load_explicit(&l->shared.rings[k], memory_order_acquire);
        struct gcp_ring rbuf;
        if (r && (r = gcp_peek(pk, r, sizeof rbuf, &rbuf)))
            n += gcp_ring_len(r);
    }
    return n;
}

uint64_t gcp_stats_count(const struct gcp_peek *pk, const struct gcp_locals *a)
{
    struct locals_view v;
    if (!a || !view_locals(pk, a, &v))
        return 0;
    uint64_t n = 0;
    for (unsigned i = 0; i < v.n; i++)
        n += local_count(pk, view_at(&v, i));
    free(v.copy);
    return n;
}

int gcp_stats_peek(const struct gcp_peek *pk, const struct gcpool *addr, gcpool_stats_t *out,
                   struct gcpool *seen)
{
    memset(out, 0, sizeof *out);
    struct gcpool pbuf;
    const struct gcpool *p = gcp_peek(pk, addr, sizeof pbuf, &pbuf);
    if (!p)
        return -1;
    if (seen)
        memcpy(seen, p, sizeof *seen);
    uint64_t fills = 0, victim_private = 0, privates_now = 0;
    /* gcp_no_locals is set at run time here; another process's is in pk. */
    const void *no_locals = pk == &gcp_peek_self ? gcp_no_locals : pk->no_locals;
    /* Acquire: the arrays exist once cur is published (first use), and stay
     * when a pool that stopped caching takes cur away (uncached, set before)
     * and while a pool being destroyed drains them (destroying). */
    const struct gcp_locals *cur = atomic_load_explicit(&p->cur, memory_order_acquire);
    bool set_up = (cur && cur != no_locals) ||
                  atomic_load_explicit(&p->uncached, memory_order_acquire) || p->destroying;
    for (int k = 0; k < 3 && set_up; k++) {
        struct locals_view v;
        if (!p->arrays[k] || !view_locals(pk, p->arrays[k], &v))
            continue;
        for (unsigned i = 0; i < v.n; i++) {
            const struct gcp_local *l = view_at(&v, i);
            fills += get(&l->fills);
            privates_now += atomic_load_explicit(&l->private_, memory_order_relaxed) != NULL;
            victim_private += get(&l->counters.victim_private);
            out->hit_shared += get(&l->seq.hit_shared);
            out->puts += get(&l->seq.puts_shared);
            add_counters(out, &l->counters);
        }
        free(v.copy);
    }
    add_counters(out, &p->no_storage); /* what found no storage */
    /* Every object put in a private slot left it by one of: a get's private
     * hit (uncounted: the hot path stays one load and one store), a victim
     * get, a cycle; or is there still.  Exact when the pool is quiet; while it
     * is busy, a snapshot like every counter here (never below zero). */
    uint64_t gone = victim_private + get(&p->private_moved) + privates_now;
    out->hit_private = fills > gone ? fills - gone : 0;
    out->puts += fills;
    out->gets = out->hit_private + out->hit_shared + out->hit_steal + out->hit_victim + out->miss;
    out->dropped = get(&p->dropped);
    out->dropped_bound = get(&p->dropped_bound);
    out->moved_to_victim = get(&p->moved_to_victim);
    /* The collector's cycles: Boehm's, or the simulated collector's own
     * policies (its pacer is counted apart). */
    out->cycles_collector = get(&p->cycles_by_cause[GCPOOL_CYCLE_COLLECTOR]) +
                            get(&p->cycles_by_cause[GCPOOL_CYCLE_SIM]);
    out->cycles_pacer = get(&p->cycles_by_cause[GCPOOL_CYCLE_PACER]);
    out->cycles_pressure = get(&p->cycles_by_cause[GCPOOL_CYCLE_PRESSURE]);
    out->cycles_explicit = get(&p->cycles_by_cause[GCPOOL_CYCLE_EXPLICIT]);
    /* Objects held now: in cur, what gets find first; in the victim. */
    if (cur && cur != no_locals)
        out->cached = gcp_stats_count(pk, cur);
    out->in_victim = gcp_stats_count(pk, atomic_load_explicit(&p->vic, memory_order_acquire));
    return 0;
}

void gcp_stats_sum(struct gcpool *p, gcpool_stats_t *out)
{
    gcp_stats_peek(&gcp_peek_self, p, out, NULL); /* this process: always readable */
}

uint64_t gcp_stats_victim_hits(const struct gcpool *p)
{
    /* Acquire: as in gcp_stats_peek.  Loads only: the cycle calls this inside
     * the collector (history.h). */
    bool set_up = atomic_load_explicit(&p->cur, memory_order_acquire) != NULL ||
                  atomic_load_explicit(&p->uncached, memory_order_acquire) || p->destroying;
    uint64_t n = get(&p->no_storage.hit_victim);
    for (int k = 0; k < 3 && set_up; k++) {
        const struct gcp_locals *a = p->arrays[k];
        for (unsigned i = 0; a && i < a->n; i++)
            n += get(&gcp_local_at(a, i)->counters.hit_victim);
    }
    return n;
}

int gcpool_read_stats(gcpool_t *pool, gcpool_stats_t *out)
{
    if (!pool || !out) {
        errno = EINVAL;
        return -1;
    }
    if (gcp_debug && pool->destroyed) {
        gcp_debug_after_destroy(pool, "gcpool_read_stats", "-1 (EINVAL)");
        errno = EINVAL;
        return -1;
    }
    gcp_stats_sum(pool, out);
    return 0;
}

/* ---- reports --------------------------------------------------------------- */

struct report {
    FILE *out;
    bool json;
    bool first;
};

static double rate(uint64_t part, uint64_t whole)
{
    return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

/* One pool's line of a report: taken from a live pool, or kept from one
 * destroyed while reports were asked for (GCPOOL_STATS), so that the report
 * at exit shows every pool the program used. */
struct row {
    struct row *next;
    gcpool_stats_t s;
    uint64_t last_moved, last_dropped;
    bool destroyed;
    char name[]; /* its name, or pool#N */
};

static struct row *retired; /* newest first; under retired_mutex */
static pthread_mutex_t retired_mutex = PTHREAD_MUTEX_INITIALIZER;

static struct row *row_of(struct gcpool *p)
{
    char index_name[32];
    const char *name = gcp_pool_name(p, index_name, sizeof index_name);
    struct row *w = malloc(sizeof *w + strlen(name) + 1);
    if (!w)
        return NULL;
    gcp_stats_sum(p, &w->s);
    w->last_moved = get(&p->last_moved);
    w->last_dropped = get(&p->last_dropped);
    w->destroyed = false;
    strcpy(w->name, name);
    return w;
}

/* The text report's columns: the TOTAL counters, then every SHARE one as a
 * share of gets, then the COUNT ones and the NOW ones, each group in the
 * list's order. */
static const enum gcp_stat_column text_order[] = {GCP_STAT_COL_TOTAL, GCP_STAT_COL_SHARE,
                                                  GCP_STAT_COL_COUNT, GCP_STAT_COL_NOW};
/* A SHARE column's 7: "%6.1f%%". */
static const int text_width[] = {[GCP_STAT_COL_TOTAL] = 12, [GCP_STAT_COL_SHARE] = 7,
                                 [GCP_STAT_COL_COUNT] = 10, [GCP_STAT_COL_NOW] = 10};

static void print_text_heading(FILE *out)
{
    fprintf(out, "%-20s", "pool");
    for (size_t g = 0; g < sizeof text_order / sizeof *text_order; g++)
        for (size_t i = 0; i < GCP_STAT_NFIELDS; i++)
            if (gcp_stat_fields[i].column == text_order[g])
                fprintf(out, " %*s", text_width[text_order[g]], gcp_stat_fields[i].heading);
    fprintf(out, " %7s\n", "v-hit");
}

static void print_row(struct report *r, const struct row *w)
{
    const gcpool_stats_t *s = &w->s;
    if (r->json) {
        /* In ten-thousandths, printed as digits: %f would follow the
         * program's locale, and a decimal comma is no JSON. */
        uint64_t v_hit = (uint64_t)(gcpool_victim_hit_rate(s) * 10000.0 + 0.5);
        fprintf(r->out, "%s\n    {\"name\": ", r->first ? "" : ",");
        gcp_json_string(r->out, w->name);
        for (size_t i = 0; i < GCP_STAT_NFIELDS; i++)
            fprintf(r->out, ", \"%s\": %" PRIu64, gcp_stat_fields[i].name,
                    field_value(s, &gcp_stat_fields[i]));
        fprintf(r->out,
                ", \"victim_hit_rate\": %" PRIu64 ".%04" PRIu64
                ", \"last_cycle_moved\": %" PRIu64 ", \"last_cycle_dropped\": %" PRIu64
                ", \"destroyed\": %s}",
                v_hit / 10000, v_hit % 10000, w->last_moved, w->last_dropped,
                w->destroyed ? "true" : "false");
    } else {
        fprintf(r->out, "%-20.20s", w->name);
        for (size_t g = 0; g < sizeof text_order / sizeof *text_order; g++) {
            for (size_t i = 0; i < GCP_STAT_NFIELDS; i++) {
                const struct gcp_stat_field *f = &gcp_stat_fields[i];
                if (f->column != text_order[g])
                    continue;
                if (f->column == GCP_STAT_COL_SHARE)
                    fprintf(r->out, " %6.1f%%", rate(field_value(s, f), s->gets));
                else
                    fprintf(r->out, " %*" PRIu64, text_width[f->column], field_value(s, f));
            }
        }
        fprintf(r->out, " %6.1f%%%s\n", 100.0 * gcpool_victim_hit_rate(s),
                w->destroyed ? " (destroyed)" : "");
    }
    r->first = false;
}

static void report_pool(struct gcpool *p, void *arg)
{
    struct row *w = row_of(p);
    if (w) {
        print_row(arg, w);
        free(w);
    }
}

static void report_retired(struct report *r)
{
    pthread_mutex_lock(&retired_mutex);
    for (const struct row *w = retired; w; w = w->next)
        print_row(r, w);
    pthread_mutex_unlock(&retired_mutex);
}

void gcp_stats_fork_lock(bool take)
{
    if (take)
        pthread_mutex_lock(&retired_mutex);
    else
        pthread_mutex_unlock(&retired_mutex);
}

void gcp_stats_retire(struct gcpool *p)
{
    if (gcp_env_long(GCP_ENV_STATS) == GCP_STATS_OFF)
        return; /* nobody will read it: keep nothing */
    gcp_busy_enter(); /* malloc and a mutex (reentry.h) */
    struct row *w = row_of(p);
    if (w) { /* else the report lacks this pool; nothing else is lost */
        w->destroyed = true;
        pthread_mutex_lock(&retired_mutex);
        w->next = retired;
        retired = w;
        pthread_mutex_unlock(&retired_mutex);
    }
    gcp_busy_leave();
}

static void print_report(FILE *out, int flags);

void gcpool_stats_print(FILE *out, int flags)
{
    if (!out) {
        errno = EINVAL;
        return;
    }
    if (gcp_reentered()) {
        gcp_refuse("gcpool_stats_print", "called from a signal handler that interrupted a gcpool "
                                         "call on this thread (a report allocates and prints)");
        return;
    }
    /* stdio, malloc and a mutex: a busy section (reentry.h).  From free_fn it
     * works: the registry walk knows this thread may hold drain_mutex. */
    gcp_busy_enter();
    print_report(out, flags);
    gcp_busy_leave();
}

/* The cycle history (gcpool_read_cycles), oldest first: "recent_cycles",
 * since "cycles" is the count already. */
static void print_cycles_json(FILE *out)
{
    gcpool_cycle_t c[GCPOOL_CYCLE_HISTORY];
    /* Walking the pools works here, busy section and all (as report_pool's). */
    int n = gcp_history_read(c, GCPOOL_CYCLE_HISTORY, true);
    fputs(", \"recent_cycles\": [", out);
    for (int i = 0; i < n; i++)
        fprintf(out,
                "%s\n    {\"number\": %" PRIu64 ", \"cause\": \"%s\", \"start_ns\": %" PRIu64
                ", \"duration_ns\": %" PRIu64 ", \"moved_to_victim\": %" PRIu64
                ", \"dropped\": %" PRIu64 ", \"victim_hits\": %" PRIu64 "}",
                i ? "," : "", c[i].number, gcp_cycle_cause_name(c[i].cause), c[i].start_ns,
                c[i].duration_ns, c[i].moved_to_victim, c[i].dropped, c[i].victim_hits);
    fputs(n ? "\n  ]" : "]", out);
}

static void print_report(FILE *out, int flags)
{
    struct report r = {out, flags & GCPOOL_STATS_JSON, true};
    if (r.json) {
        fprintf(out, "{\"version\": \"%s\", \"cycles\": %" PRIu64 ", \"pools\": [", gcpool_version(),
                gcpool_cycles());
        gcp_cycle_each_pool(report_pool, &r);
        report_retired(&r);
        fprintf(out, "%s]", r.first ? "" : "\n  ");
        print_cycles_json(out);
        fputs("}\n", out);
    } else {
        fprintf(out, "gcpool %s: %" PRIu64 " cycles\n", gcpool_version(), gcpool_cycles());
        print_text_heading(out);
        gcp_cycle_each_pool(report_pool, &r);
        report_retired(&r);
        fputs("(v-hit: victim hit rate, hit_victim / to-victim - of the objects cycles moved to "
              "the victim, the share gets took back)\n",
              out);
    }
    fflush(out);
}

static void print_at_exit(void)
{
    long mode = gcp_env_long(GCP_ENV_STATS);
    const char *path = gcp_env_str(GCP_ENV_STATS_FILE);
    FILE *out = path && *path ? fopen(path, "w") : stderr;
    if (!out) {
        gcp_warn("gcpool: cannot open GCPOOL_STATS_FILE=%s; report on stderr", path);
        out = stderr;
    }
    gcpool_stats_print(out, mode == GCP_STATS_JSON_ ? GCPOOL_STATS_JSON : GCPOOL_STATS_TEXT);
    if (out != stderr)
        fclose(out);
}

static void register_at_exit(void)
{
    if (gcp_env_long(GCP_ENV_STATS) != GCP_STATS_OFF)
        atexit(print_at_exit);
}

void gcp_stats_at_exit(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, register_at_exit);
}
