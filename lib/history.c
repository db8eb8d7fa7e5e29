/* The cycle history: a fixed ring of the last GCPOOL_CYCLE_HISTORY cycles.
 *
 * Fixed, because a cycle may run inside the collector, which must not
 * allocate.  One writer: rotate_all, which runs under the registry lock (its
 * mutex, or Boehm's allocation lock inside the collector: cycle.c), so cycles
 * are serialised and so are the records' writes.  Readers take no lock: each
 * record has its own sequence (a seqlock), odd while its cycle writes it, and
 * a reader keeps a copy only if the sequence was even and the same before
 * and after it.  Every field is an atomic (no data race, for the model and
 * for TSan), stored with release and loaded with acquire: that orders each
 * field after the odd sequence before it, without fences (which TSan does
 * not model).  On x86-64 and aarch64's LDAR/STLR these are plain moves or
 * nearly, and only the cycle and gcpool_read_cycles run them.
 *
 * dropped and victim_hits are not counted per cycle on any hot path: each
 * record keeps two snapshots taken at its start (the cycles' drop count, the
 * pools' hit_victim), and a read takes differences, the next record's
 * snapshot minus this one's (for the newest: now minus its own). */
#include "lib/history.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "lib/cycle.h"
#include "lib/reentry.h"
#include "lib/trace.h"

enum { NREC = GCPOOL_CYCLE_HISTORY };

struct slot {
    _Atomic uint64_t seq; /* odd: being written */
    _Atomic uint64_t number, cause, start_ns, duration_ns, moved, dropped_before, vhits_before;
};

static struct slot ring[NREC];
static _Atomic uint64_t recorded;   /* the newest record's number */
static _Atomic uint64_t cycle_drops; /* objects cycles dropped, ever */

uint64_t gcp_history_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void gcp_history_count_drops(uint64_t n)
{
    /* Relaxed: a count; reads take differences of snapshots of it. */
    atomic_fetch_add_explicit(&cycle_drops, n, memory_order_relaxed);
}

uint64_t gcp_history_drops(void)
{
    return atomic_load_explicit(&cycle_drops, memory_order_relaxed);
}

void gcp_history_start(struct gcp_cycle_rec *rec, uint64_t number, enum gcpool_cycle_cause cause)
{
    *rec = (struct gcp_cycle_rec){.number = number, .cause = cause, .start_ns = gcp_history_now(),
                                  .dropped_before = gcp_history_drops()};
}

/* Release and acquire: see the top, and read_slot. */
#define PUT(s, f, v) atomic_store_explicit(&(s)->f, (v), memory_order_release)
#define GET(s, f) atomic_load_explicit(&(s)->f, memory_order_acquire)

void gcp_history_record(struct gcp_cycle_rec *rec)
{
    rec->duration_ns = gcp_history_now() - rec->start_ns;
    struct slot *s = &ring[(rec->number - 1) % NREC];
    /* Relaxed: this thread is the only writer (registry lock). */
    uint64_t seq = atomic_load_explicit(&s->seq, memory_order_relaxed);
    atomic_store_explicit(&s->seq, seq + 1, memory_order_relaxed);
    /* Each PUT releases: a reader that loads any field stored below (GET,
     * acquire) sees this odd sequence too, on its second look, and drops its
     * copy. */
    PUT(s, number, rec->number);
    PUT(s, cause, rec->cause);
    PUT(s, start_ns, rec->start_ns);
    PUT(s, duration_ns, rec->duration_ns);
    PUT(s, moved, rec->moved);
    PUT(s, dropped_before, rec->dropped_before);
    PUT(s, vhits_before, rec->vhits_before);
    /* Release: a reader that loads this even sequence sees every field above. */
    atomic_store_explicit(&s->seq, seq + 2, memory_order_release);
    /* Release: pairs with the reader's acquire, so the newest record is whole. */
    atomic_store_explicit(&recorded, rec->number, memory_order_release);
    GCP_TRACE4(cycle__end, rec->number, rec->cause, rec->duration_ns, rec->moved);
}

/* Copies record number into *r; false if it is being written or was
 * overwritten by a newer cycle (tried a few times: the writer is short, and
 * may be this very thread, interrupted by the signal handler reading). */
static bool read_slot(uint64_t number, struct gcp_cycle_rec *r)
{
    const struct slot *s = &ring[(number - 1) % NREC];
    for (int tries = 0; tries < 64; tries++) {
        /* Acquire: pairs with the writer's final release store. */
        uint64_t before = atomic_load_explicit(&s->seq, memory_order_acquire);
        if (before & 1)
            continue;
        *r = (struct gcp_cycle_rec){GET(s, number), GET(s, cause), GET(s, start_ns),
                                    GET(s, duration_ns), GET(s, moved), GET(s, dropped_before),
                                    GET(s, vhits_before)};
        /* Relaxed: the GETs above acquire, so this load comes after them, and
         * if one of them read a write begun since, this sees at least that
         * write's odd sequence (each PUT released it). */
        if (atomic_load_explicit(&s->seq, memory_order_relaxed) == before)
            return r->number == number;
    }
    return false;
}

static void add_victim_hits(struct gcpool *p, void *sum)
{
    *(uint64_t *)sum += gcp_stats_victim_hits(p);
}

static uint64_t diff(uint64_t later, uint64_t earlier)
{
    return later > earlier ? later - earlier : 0; /* a destroyed pool took its hits */
}

int gcpool_read_cycles(gcpool_cycle_t *out, size_t n)
{
    if (!out) {
        errno = EINVAL;
        return -1;
    }
    /* The pools' walk takes drain_mutex, which a signal handler that
     * interrupted a gcpool call must not: there the newest stops at its
     * cycle's start. */
    return gcp_history_read(out, n, !gcp_reentered());
}

int gcp_history_read(gcpool_cycle_t *out, size_t n, bool walk)
{
    /* Acquire: pairs with gcp_history_record's release of recorded. */
    uint64_t newest = atomic_load_explicit(&recorded, memory_order_acquire);
    size_t want = n < NREC ? n : NREC;
    if (want > newest)
        want = (size_t)newest;
    /* Newest first, stopping at one lost to a newer cycle (or a writer that
     * does not finish): never a torn record, at worst fewer. */
    struct gcp_cycle_rec recs[NREC];
    size_t got = 0;
    while (got < want && read_slot(newest - got, &recs[got]))
        got++;
    if (!got)
        return 0;
    /* The newest's "so far": now. */
    uint64_t drops_now = gcp_history_drops(), vhits_now = recs[0].vhits_before;
    if (walk) {
        vhits_now = 0;
        gcp_cycle_each_pool(add_victim_hits, &vhits_now);
    }
    for (size_t i = 0; i < got; i++) {
        const struct gcp_cycle_rec *r = &recs[i];
        uint64_t drops_next = i ? recs[i - 1].dropped_before : drops_now;
        uint64_t vhits_next = i ? recs[i - 1].vhits_before : vhits_now;
        out[got - 1 - i] = (gcpool_cycle_t){.number = r->number,
                                            .cause = (uint32_t)r->cause,
                                            .start_ns = r->start_ns,
                                            .duration_ns = r->duration_ns,
                                            .moved_to_victim = r->moved,
                                            .dropped = diff(drops_next, r->dropped_before),
                                            .victim_hits = diff(vhits_next, r->vhits_before)};
    }
    return (int)got;
}

const char *gcp_cycle_cause_name(uint32_t cause)
{
    switch (cause) {
    case GCPOOL_CYCLE_COLLECTOR:
        return "collector";
    case GCPOOL_CYCLE_SIM:
        return "sim";
    case GCPOOL_CYCLE_EXPLICIT:
        return "explicit";
    case GCPOOL_CYCLE_PACER:
        return "pacer";
    case GCPOOL_CYCLE_PRESSURE:
        return "pressure";
    default:
        return "other";
    }
}
