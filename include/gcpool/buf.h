/* gcpool/buf.h — buffer pools: size-classed byte buffers on top of gcpool.
 *
 * The most common use of a pool is caching byte buffers, and its best-known
 * trap is variable sizes (Go issues 23199, 27735, 48535): one huge buffer put
 * back into a single pool is kept and handed to callers who needed 100 bytes.
 * A buffer pool keeps one gcpool per size class instead — powers of two from
 * a minimum (256 B by default) to a maximum (4 MiB by default) — so a request
 * is served from the smallest class that fits, and a buffer larger than the
 * maximum is never pooled: a single giant request cannot pin memory.
 *
 *   gcpool_bufpool_t *bp = gcpool_bufpool_create(NULL);
 *   size_t cap;
 *   char *buf = gcpool_buf_get(bp, 1500, &cap);   // cap == 2048
 *   ...
 *   gcpool_buf_put(bp, buf, cap);
 *
 * Buffers are plain bytes: under Boehm they are allocated pointer-free
 * (GC_MALLOC_ATOMIC), so the collector never scans them — store no pointer
 * to collector memory in a buffer.  Without Boehm they are malloc'd and
 * freed when a cycle drops them.
 *
 * Thread safety: as <gcpool.h>: every function may be called from any thread,
 * except gcpool_bufpool_destroy, whose caller guarantees no concurrent use.
 * From callbacks and signal handlers: <gcpool.h>'s "Re-entrant calls".
 *
 * Checked mode (GCPOOL_DEBUG=1) remembers the capacity each get handed out: a
 * put that claims more is reported (buffer pool, address, both capacities)
 * and the buffer released, not pooled; a put of a buffer already put back, or
 * of one no buffer pool handed out, is reported and ignored. */
#ifndef GCPOOL_BUF_H
#define GCPOOL_BUF_H

#include <gcpool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Limits of the class sizes (options and GCPOOL_BUF_MIN / GCPOOL_BUF_MAX). */
#define GCPOOL_BUF_MIN_LIMIT ((size_t)16)
#define GCPOOL_BUF_MAX_LIMIT ((size_t)1 << 30)
/* Room for every class between the limits (27 used), and some to spare. */
#define GCPOOL_BUF_CLASSES_MAX 32

typedef struct gcpool_bufpool gcpool_bufpool_t; /* opaque */

typedef struct gcpool_bufpool_options {
    size_t min_size;  /* the smallest class, a power of two in [GCPOOL_BUF_MIN_LIMIT,
                         GCPOOL_BUF_MAX_LIMIT]; 0: GCPOOL_BUF_MIN (default 256) */
    size_t max_size;  /* the largest class, likewise; 0: GCPOOL_BUF_MAX (default 4 MiB).
                         When one bound comes from the environment and the other from
                         here, the environment's yields (the classes stay ordered). */
    int zero;         /* nonzero: gcpool_buf_get clears the whole capacity */
    const char *name; /* prefix of the class pools' names in reports ("buf:4096");
                         copied; NULL: "buf" */
    size_t max_cached_bytes; /* the retention bound, per class: each class's pool holds at
                         most max_cached_bytes / its size buffers (at least one), plus
                         <gcpool.h>'s slack (one buffer a CPU); so the whole buffer pool at
                         most classes * max_cached_bytes.  0: each class's bound is
                         GCPOOL_MAX_CACHED buffers (default: none).  Per class, not in
                         total: a total would need one shared count on every put, and one
                         busy class would starve the others. */
} gcpool_bufpool_options_t;

/* opts NULL: all defaults.  NULL with errno EINVAL when a size is not a power of
 * two within the limits or min_size > max_size (both given), ENOMEM on failure. */
GCPOOL_API gcpool_bufpool_t *gcpool_bufpool_create(const gcpool_bufpool_options_t *opts);
/* The caller guarantees no concurrent use; cached buffers are released. */
GCPOOL_API void gcpool_bufpool_destroy(gcpool_bufpool_t *bp);

/* A buffer of at least size bytes (size 0: a minimum-class buffer), from the
 * smallest class that fits; *capacity (when capacity is not NULL) receives its
 * usable size: the class size, or exactly size for a request beyond the largest
 * class, which is allocated directly and never pooled.  NULL with errno ENOMEM
 * when no memory, EINVAL when bp is NULL. */
GCPOOL_API void *gcpool_buf_get(gcpool_bufpool_t *bp, size_t size, size_t *capacity);
/* Gives buf back.  buf must come from gcpool_buf_get (of any buffer pool of this
 * process) and capacity be at most what that get reported: the buffer goes to
 * the largest class it can serve (a capacity between classes is rounded down,
 * never up); below the smallest class or beyond the largest it is not pooled but
 * released (freed without Boehm, left to the collector under Boehm).  buf NULL:
 * ignored.  NULL bp: errno EINVAL, buf untouched.  Never use buf after the put. */
GCPOOL_API void gcpool_buf_put(gcpool_bufpool_t *bp, void *buf, size_t capacity);

typedef struct gcpool_buf_class_stats {
    size_t size;                  /* the class's buffer size */
    /* The class pool's gcpool_stats_t fields of scope BOTH (GCPOOL_STAT_FIELDS
     * in <gcpool.h>): gets, puts, news, where each get found its buffer,
     * dropped; then the class's own. */
#define GCPOOL_BUF_CLASS_FIELD_(name, column, scope, heading, doc) GCPOOL_STAT_IF_CLASS(scope, uint64_t name;)
    GCPOOL_STAT_FIELDS(GCPOOL_BUF_CLASS_FIELD_)
#undef GCPOOL_BUF_CLASS_FIELD_
    uint64_t bytes_cached;        /* (puts - hits - dropped) * size: approximate while busy */
    uint64_t bytes_dropped;       /* dropped * size */
    uint64_t waste;               /* sum of (size - asked) over this class's gets */
    uint64_t rounded_puts;        /* puts whose capacity was rounded down to this class */
    uint64_t failed;              /* gets that found no memory (ENOMEM) */
} gcpool_buf_class_stats_t;

typedef struct gcpool_bufpool_stats {
    size_t min_size, max_size;    /* the classes in force */
    unsigned nclasses;            /* classes[0 .. nclasses-1]: min_size, 2*min_size, ... max_size */
    gcpool_buf_class_stats_t classes[GCPOOL_BUF_CLASSES_MAX];
    /* Sums over the classes, plus the oversize traffic. */
    uint64_t gets;                /* every get that returned a buffer or failed */
    uint64_t waste;               /* bytes handed out beyond what was asked for */
    uint64_t bytes_cached, bytes_dropped;
    uint64_t oversize_gets;       /* requests beyond max_size: allocated directly */
    uint64_t oversize_bytes;      /* bytes those requests allocated */
    uint64_t oversize_puts;       /* buffers beyond max_size given back: released */
    uint64_t undersize_puts;      /* buffers below min_size given back: released */
    uint64_t failed;              /* gets that returned NULL with ENOMEM */
} gcpool_bufpool_stats_t;

/* 0; -1 with errno EINVAL when bp or out is NULL.  Exact when the buffer pool is
 * quiet; while it is busy, a snapshot like gcpool_read_stats. */
GCPOOL_API int gcpool_bufpool_read_stats(gcpool_bufpool_t *bp, gcpool_bufpool_stats_t *out);

#ifdef __cplusplus
}
#endif
#endif /* GCPOOL_BUF_H */
