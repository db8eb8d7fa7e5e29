/* gcpool — Go's sync.Pool for C, bound to the Boehm collector.
 *
 * A pool caches objects between uses so that a program allocating the same kind
 * of object over and over (scratch buffers, request structs) reuses them instead
 * of growing the heap and making the collector mark more.  Cached objects are
 * dropped over two cleanup cycles: each cycle moves what a pool caches to its
 * victim cache and drops what the previous cycle moved there.  Under Boehm
 * (bdwgc) every collection runs one cycle; otherwise cycles come from
 * gcpool_collect() and the simulated collector (GCPOOL_GC=sim).  The default,
 * GCPOOL_GC=auto, binds to Boehm once the program has initialised it: call
 * GC_INIT() before the first gcpool_create.
 *
 * A pool keeps what it caches in memory the collector scans when its first
 * object (the first put, or new_fn's first result) is the collector's, and
 * always under Boehm; otherwise in malloc'd memory.  A pool set up for
 * malloc'd objects that is then given a collector object prints one warning,
 * drops what it holds and stops caching, rather than hand out an object the
 * collector freed.
 *
 * Thread safety: every function may be called from any thread at any time,
 * except gcpool_destroy, whose caller guarantees no concurrent use of that pool.
 * From inside free_fn and new_fn, and from signal handlers, see "Re-entrant
 * calls" at the end: no call waits for what its own thread holds.
 */
#ifndef GCPOOL_H
#define GCPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define GCPOOL_API __attribute__((visibility("default")))
#else
#define GCPOOL_API
#endif

#define GCPOOL_VERSION_MAJOR 0
#define GCPOOL_VERSION_MINOR 1
#define GCPOOL_VERSION_PATCH 0

typedef struct gcpool gcpool_t; /* opaque */
typedef void *(*gcpool_new_fn)(void *arg);
typedef void (*gcpool_free_fn)(void *obj, void *arg);

typedef struct gcpool_options {
    gcpool_new_fn new_fn;   /* like Pool.New: called by gcpool_get when nothing is cached; may be NULL */
    gcpool_free_fn free_fn; /* called exactly once for each object the pool drops (a cycle or destroy);
                               NULL: objects belong to the collector, which reclaims them */
    void *arg;              /* handed to new_fn and free_fn */
    const char *name;       /* label in statistics; copied; may be NULL */
    size_t size;            /* optional: the objects' size in bytes, 0 when unknown; checked mode
                               (GCPOOL_DEBUG=1) poisons cached objects of known size */
    size_t max_cached;      /* the retention bound, in objects: see below; 0: GCPOOL_MAX_CACHED
                               (whose default, 0, is no bound, as Go's) */
} gcpool_options_t;

/* The retention bound.  A pool with max_cached = B holds at most B objects in
 * its locals (what gets find before the next cycle) plus a slack of at most
 * one object per CPU local (its private slot) whose local has never had to
 * queue an object, so at most B + (CPUs the process may run on) at any
 * instant, however many threads put; a single thread on one CPU caches
 * exactly B.  A put beyond it drops the object at once: to free_fn, or left
 * to the collector; counted in dropped and in dropped_bound.  The bound is
 * kept on slow paths only: the private slot and the shared rings' fast paths
 * are unchanged, and each CPU's local takes ring slots from the budget when
 * it links a ring (a ring sized to what is left), giving them back when the
 * ring, drained, is retired.  So a local may keep budget in an empty ring
 * while another's put is refused: the bound caps what is held, and an idle
 * CPU's head ring can hold part of it back from busy ones until a cycle's
 * objects drain through.  The victim cache is not counted: it is what the
 * last cycle took out of the locals (so at most B + slack too), only shrinks,
 * and is dropped at the next cycle; counting it would refuse puts while the
 * locals are empty.  The memory a pool holds is thus at most twice the bound
 * plus slack.  In Go 1.12's locked mode (GCPOOL_SHARED=locked) each queued
 * object takes one from the budget, and the slack is one private slot a local. */

/* opts NULL: all defaults.  Returns NULL with errno set on failure (ENOMEM). */
GCPOOL_API gcpool_t *gcpool_create(const gcpool_options_t *opts);
/* The caller guarantees no concurrent use of the pool; cached objects go to free_fn.
 * Refused (EDEADLK) from inside a call of that same pool: see "Re-entrant calls". */
GCPOOL_API void gcpool_destroy(gcpool_t *pool);
/* A cached object, else new_fn(arg), else NULL.  NULL pool: NULL with errno EINVAL. */
GCPOOL_API void *gcpool_get(gcpool_t *pool);
/* Caches obj.  obj NULL: ignored.  NULL pool: errno EINVAL, obj untouched. */
GCPOOL_API void gcpool_put(gcpool_t *pool, void *obj);

/* Runs one cleanup cycle now, exactly as a collection does.  From free_fn during
 * a cycle's drain: deferred to the end of that drain (see "Re-entrant calls"). */
GCPOOL_API void gcpool_collect(void);
/* Drops now everything the pool caches (its locals and its victim), to free_fn,
 * for a program that knows it is going idle.  Safe against concurrent gets and
 * puts of the pool: what they put meanwhile may stay cached, and an object a
 * concurrent call is moving at that instant may too (under Boehm, a local whose
 * pin is busy keeps its private object); nothing is lost or handed out twice.
 * Not a cycle: gcpool_cycles() and the history do not count it; its drops count
 * in the pool's "dropped".  Returns 0; NULL pool: -1 with errno EINVAL.  From a
 * signal handler that interrupted a gcpool call, or from inside a call of that
 * same pool (its free_fn, new_fn): refused, -1 with errno EDEADLK (see
 * "Re-entrant calls"); from another pool's free_fn it runs. */
GCPOOL_API int gcpool_trim(gcpool_t *pool);
/* Cleanup cycles run so far, whatever their source. */
GCPOOL_API uint64_t gcpool_cycles(void);

/* The cycle history: the last GCPOOL_CYCLE_HISTORY cycles, each as one record.
 * It shows whether cycles come too often (a high victim hit rate: what a cycle
 * moves to the victim is wanted back before the next) or too rarely. */
#define GCPOOL_CYCLE_HISTORY 64
/* What ran a cycle.  More causes may be added: treat an unknown one as other. */
enum gcpool_cycle_cause {
    GCPOOL_CYCLE_COLLECTOR = 1, /* a Boehm collection */
    GCPOOL_CYCLE_SIM = 2,       /* the simulated collector's GCPOOL_SIM_NEW / _INTERVAL_MS */
    GCPOOL_CYCLE_EXPLICIT = 3,  /* gcpool_collect */
    GCPOOL_CYCLE_PACER = 4,     /* the simulated collector's pacer (GCPOOL_SIM_GOGC) */
    GCPOOL_CYCLE_PRESSURE = 5   /* memory pressure (GCPOOL_PRESSURE_*) */
};
typedef struct gcpool_cycle {
    uint64_t number;          /* 1 for the first cycle; gcpool_cycles() for the newest */
    uint32_t cause;           /* an enum gcpool_cycle_cause */
    uint32_t reserved_;       /* 0 */
    uint64_t start_ns;        /* when it started: CLOCK_MONOTONIC, in nanoseconds */
    uint64_t duration_ns;     /* how long its rotation took (the part run inside the collector) */
    uint64_t moved_to_victim; /* objects it moved from the pools to their victim caches */
    uint64_t dropped;         /* objects dropped from its start to the next cycle's (so far, for the newest):
                                 its own drops, and deferred ones of earlier cycles handed to free_fn then */
    uint64_t victim_hits;     /* gets served by a victim cache from its start to the next cycle's
                                 (so far, for the newest) */
} gcpool_cycle_t;
/* Copies the newest min(n, cycles recorded, GCPOOL_CYCLE_HISTORY) records to
 * out, oldest first, and returns how many; -1 with errno EINVAL when out is
 * NULL.  A record is never torn: each is copied whole, as its cycle left it.
 * Sums over pools are exact while the pools are quiet; a pool destroyed
 * meanwhile takes its victim hits with it. */
GCPOOL_API int gcpool_read_cycles(gcpool_cycle_t *out, size_t n);

/* The statistics counters: one list, one X(name, column, scope, heading, doc)
 * entry per counter, which generates gcpool_stats_t's fields (in this order),
 * the reports' text columns and JSON keys, the buffer classes' copy
 * (<gcpool/buf.h>) and the table of fields in the README and gcpool(3)
 * (gcpool-info --stats-markdown, --stats-man; the tests compare).  A new
 * counter is one line here, appended (the order is the structs' layout), and
 * the code that counts it.  Programs may expand the list too, with an X that
 * takes these five arguments, to print or compare every counter.
 *   name     the field, and the JSON report's key
 *   column   where the text report prints it: TOTAL (a count, first), SHARE
 *            (a share of gets, in %), COUNT (a count, after the shares)
 *   scope    BOTH: a buffer class's statistics have it too; POOL: pools only
 *            (GCPOOL_STAT_IF_CLASS picks the BOTH entries)
 *   heading  the text report's column heading
 *   doc      one line for the tables
 * gcpool_destroy counts nothing: it only releases what the pool holds. */
#define GCPOOL_STAT_FIELDS(X)                                                                            \
    X(gets, TOTAL, BOTH, "gets", "every get: hit_private + hit_shared + hit_steal + hit_victim + miss")  \
    X(puts, TOTAL, BOTH, "puts", "objects given to gcpool_put")                                          \
    X(news, COUNT, BOTH, "news", "calls of new_fn")                                                      \
    X(hit_private, SHARE, BOTH, "private", "gets served by the CPU's private slot")                      \
    X(hit_shared, SHARE, BOTH, "shared", "gets served by the CPU's shared queue")                        \
    X(hit_steal, SHARE, BOTH, "steal", "gets served by another CPU's shared queue")                      \
    X(hit_victim, SHARE, BOTH, "victim", "gets served by the victim cache")                              \
    X(miss, SHARE, BOTH, "miss", "gets that found nothing cached (new_fn's result, or NULL)")            \
    X(dropped, COUNT, BOTH, "dropped", "objects dropped by cycles, or by a put that could not cache")    \
    X(moved_to_victim, COUNT, POOL, "to-victim", "objects cycles moved from the pool to its victim cache") \
    X(cycles_collector, COUNT, POOL, "c-gc", "its cycles run by a collection (Boehm's; the sim's NEW, INTERVAL_MS)") \
    X(cycles_pacer, COUNT, POOL, "c-pace", "its cycles run by the simulator's pacer (GCPOOL_SIM_GOGC)") \
    X(cycles_pressure, COUNT, POOL, "c-press", "its cycles run for memory pressure (GCPOOL_PRESSURE_*)") \
    X(cycles_explicit, COUNT, POOL, "c-call", "its cycles run by gcpool_collect")                 \
    X(cached, NOW, POOL, "cached", "objects in the pool now, outside the victim (what gets find first)") \
    X(in_victim, NOW, POOL, "in-victim", "objects in the victim cache now")                          \
    X(dropped_bound, COUNT, BOTH, "d-bound", "puts dropped over the retention bound (max_cached; also in dropped)")

/* The cycles_* counters are per pool: the cycles that found it set up (its
 * first get or put) and rotated it, by cause.  Per pool rather than global,
 * because a pool's statistics are what it lived through: one created late, or
 * set up late, saw fewer cycles than gcpool_cycles() counts; and their sum is
 * how many times this pool's cache was aged.  (gcpool_cycles() stays the
 * global total.)  They were appended last: gcpool_read_stats fills the whole
 * struct of the header the library was built with, so a program must be built
 * with this header (or a newer one) — the struct is the caller's. */
/* GCPOOL_STAT_IF_CLASS(scope, code): code for a BOTH entry, nothing for POOL. */
#define GCPOOL_STAT_IF_CLASS(scope, code) GCPOOL_STAT_IF_CLASS_##scope(code)
#define GCPOOL_STAT_IF_CLASS_BOTH(code) code
#define GCPOOL_STAT_IF_CLASS_POOL(code)

typedef struct gcpool_stats {
#define GCPOOL_STAT_FIELD_(name, column, scope, heading, doc) uint64_t name;
    GCPOOL_STAT_FIELDS(GCPOOL_STAT_FIELD_)
#undef GCPOOL_STAT_FIELD_
} gcpool_stats_t;
/* 0; -1 with errno EINVAL when pool or out is NULL.  Counters are summed from
 * every CPU's local on read: exact when the pool is quiet, a snapshot while it
 * is busy.  gets == hit_private + hit_shared + hit_steal + hit_victim + miss. */
GCPOOL_API int gcpool_read_stats(gcpool_t *pool, gcpool_stats_t *out);

/* The victim hit rate, hit_victim / moved_to_victim (0 when nothing moved):
 * of the objects cycles moved to the victim, the share gets took back before
 * the next cycle dropped them.  Near 1, cycles come faster than the pool's
 * objects turn over and the victim spares the new_fn calls they would cost
 * (GCPOOL_VICTIM=0 would make them misses); near 0, what cycles move there
 * is surplus, dropped one cycle later.  The reports print this (v-hit,
 * victim_hit_rate). */
static inline double gcpool_victim_hit_rate(const gcpool_stats_t *s)
{
    return s->moved_to_victim ? (double)s->hit_victim / (double)s->moved_to_victim : 0.0;
}

/* Flags for gcpool_stats_print. */
#define GCPOOL_STATS_TEXT 0
#define GCPOOL_STATS_JSON 1
/* Prints the statistics report to out: every live pool's line and, when
 * GCPOOL_STATS asks for a report at exit, those of the pools destroyed before
 * (marked destroyed) - the very report printed at exit.  A destroyed pool's
 * line is kept only then: a program that creates and destroys pools for ever
 * would otherwise grow a list no one reads.  A destroyed pool's line is the
 * pool as the program left it (destroy counts nothing). */
GCPOOL_API void gcpool_stats_print(FILE *out, int flags);

/* "0.1.0" */
GCPOOL_API const char *gcpool_version(void);

/* Re-entrant calls.  A pool calls new_fn and free_fn from inside its own calls
 * (a get that misses, a cycle's drain, gcpool_destroy, a put that drops), and a
 * signal handler may interrupt any call.  No call made from there waits for
 * what its own thread holds: each function works, is deferred, or is refused
 * with errno EDEADLK and one line on stderr.  It never hangs.
 *
 * From free_fn or new_fn:
 *   gcpool_get, gcpool_put   work, on any pool.  On the pool being destroyed
 *                            (from its free_fn during gcpool_destroy) they find it
 *                            empty: a get calls new_fn, a put hands the object to
 *                            free_fn at once (counted as a miss; a put and a drop).
 *   gcpool_create            works.
 *   gcpool_destroy           works for another pool.  Refused (EDEADLK) for a pool
 *                            this thread is inside a call of, which still uses it:
 *                            the pool whose free_fn or new_fn this is, the pool
 *                            being destroyed, or a pool whose get or put ran the
 *                            drain that called this free_fn.  Destroy it once that
 *                            call has returned.
 *   gcpool_collect           deferred during a cycle's drain (free_fn called by a
 *                            cycle, or new_fn of a get made from one): the cycle
 *                            runs when the drain ends, in this thread, before the
 *                            call that drained returns; several calls make one
 *                            cycle.  Elsewhere (during gcpool_destroy, in new_fn
 *                            of an ordinary get) it works.
 *   gcpool_cycles, gcpool_version, gcpool_read_stats, gcpool_stats_print,
 *   gcpool_read_cycles       work.
 *   <gcpool/buf.h>           every function works; gcpool_bufpool_destroy is
 *                            refused, as gcpool_destroy, for a buffer pool whose
 *                            get or put ran the callback.
 *
 * From a signal handler that interrupted a gcpool call on its own thread (the
 * library knows, the handler need not):
 *   gcpool_get, gcpool_put   work, touching nothing the interrupted call may hold
 *                            (a lock, an allocation in progress): the pool acts as
 *                            an empty one — a get calls new_fn, a put hands the
 *                            object to free_fn at once — counted as a miss, or as
 *                            a put and a drop.  Checked mode does not track them.
 *   gcpool_collect           deferred if the interrupted call was draining (as
 *                            above), else refused (EDEADLK).
 *   gcpool_create, gcpool_destroy, gcpool_stats_print, gcpool_bufpool_create,
 *   gcpool_bufpool_destroy, gcpool_buf_get, gcpool_buf_put   refused (EDEADLK):
 *                            they allocate, free or take locks; a refused get
 *                            returns NULL, a refused put leaves the buffer to the
 *                            caller.
 *   gcpool_cycles, gcpool_version, gcpool_read_stats, gcpool_bufpool_read_stats,
 *   gcpool_read_cycles       work (the newest record's victim_hits is then 0:
 *                            counting it so far would take a lock).
 * A handler that interrupted anything else makes ordinary calls.
 *
 * Async-signal-safety (what POSIX allows in a handler).  gcpool_cycles,
 * gcpool_version and gcpool_read_stats are: they only load.  gcpool_get and
 * gcpool_put are when new_fn and free_fn are, checked mode is off, and the
 * pool's first use (its first get or put, which allocates) was made outside
 * handlers — with one exception: a put that finds this CPU's private slot and
 * every ring of its chain full links a new ring, allocated with malloc (with
 * GC_MALLOC under Boehm); if the handler interrupted malloc (or the collector)
 * outside gcpool, that allocation is not safe.  A handler that puts back only
 * what it got reaches it only if another thread on its CPU fills the slot and
 * the rings meanwhile.  The rest allocate, free or lock and are not
 * async-signal-safe: create, destroy, collect, stats_print, and every buffer
 * pool function but gcpool_bufpool_read_stats (buffers come from malloc or the
 * collector).  fork from a handler that interrupted a gcpool call waits for
 * the locks that call holds (fork's handlers take them all): do not. */

/* gcpool_get and gcpool_put inline their hit path where they can (x86-64
 * Linux; GCPOOL_NO_INLINE turns it off): see gcpool/fastpath.h, which is
 * part of this header and refuses to be included on its own. */
#define GCPOOL_INSIDE_GCPOOL_H_ 1
#include "gcpool/fastpath.h"
#undef GCPOOL_INSIDE_GCPOOL_H_

#ifdef __cplusplus
}
#endif
#endif /* GCPOOL_H */
