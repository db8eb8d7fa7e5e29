/* Pinning: how a thread comes to own the local of the CPU it runs on, as Go
 * disables preemption to own its P for the length of a pool operation.
 *
 * Two methods, one chosen per process at the first pool (GCPOOL_PIN):
 *   rseq  the private slot is taken and filled, and the chain's head ring
 *         pushed and popped, by Linux restartable sequences: if the thread is
 *         preempted, migrated or signalled before the one committing store,
 *         the kernel restarts it, so the local is the CPU's alone without a
 *         lock.  The sequences are gcpool/fastpath.h's, which programs inline;
 *         what they give up on, the slow paths do under the local's lock.
 *   lock  everything an owner does takes the local's lock.  Where rseq is
 *         missing: valgrind, glibc.pthread.rseq=0, old kernels, ThreadSanitizer.
 * Either way the CPU read is only a hint for the lock: a thread migrated after
 * reading it holds the right lock and merely shares a local for a moment. */
#ifndef GCPOOL_PIN_H
#define GCPOOL_PIN_H

#include <sched.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/pool.h"
#include "topology/topology.h"

#if __has_include(<sys/rseq.h>)
#include <sys/rseq.h>
#define GCP_HAVE_RSEQ_AREA 1
#endif

/* OS CPU numbers the rseq path serves; a thread on a higher one takes the lock path. */
#define GCP_PIN_MAX_CPUS GCPOOL_FASTPATH_MAX_CPUS

extern bool gcp_pin_rseq; /* chosen once by gcp_pin_init */

#ifdef GCP_HAVE_RSEQ_AREA
/* This thread's rseq area, which glibc registered (if __rseq_size > 0). */
static inline struct rseq *gcp_pin_rseq_area(void)
{
    return (struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
}
#endif

/* The CPU this thread runs on now (may be stale by the time it is used). */
static inline int gcp_current_cpu(void)
{
#ifdef GCP_HAVE_RSEQ_AREA
    if (__builtin_expect(__rseq_size > 0, 1)) {
        const struct rseq *rs = gcp_pin_rseq_area();
        /* The kernel updates cpu_id on every return to this thread; a volatile
         * read so the compiler loads it now.  Negative: not registered. */
        int cpu = (int)*(volatile const uint32_t *)&rs->cpu_id;
        if (cpu >= 0)
            return cpu;
    }
#endif
    return sched_getcpu();
}

/* The index of this thread's local now. */
static inline unsigned gcp_current_local(const struct gcp_topology *t)
{
    return gcp_topology_local_of(t, gcp_current_cpu());
}

/* Owns local i of array a until gcp_unpin: the local's lock.  Under rseq this
 * orders against other lock holders only, not against sequences: use it for
 * what sequences never touch (counters, private_dropped), and gcp_pin_owner
 * for the chain's owner operations. */
static inline struct gcp_local *gcp_pin(struct gcp_locals *a, unsigned i)
{
    struct gcp_local *l = gcp_local_at(a, i);
    gcp_lock(&l->pin);
    return l;
}

static inline void gcp_unpin(struct gcp_local *l)
{
    gcp_unlock(&l->pin);
}

/* ---- the rseq sequences (x86-64) ------------------------------------------
 * The library runs gcpool/fastpath.h's sequences themselves
 * (gcpool_fastpath_take_, _fill_, _push_, _pop_), so that programs inline
 * exactly what the library runs; the gcp_pin_ functions below choose between
 * them and the lock pin.
 *
 * Ordering: the sequence's loads of the role and of private need no fence.
 * Only threads on this CPU write private (each in a sequence: a preemption
 * between our load and our commit restarts us), and a cycle touches the slot
 * only after gcp_pin_fence has aborted every sequence that loaded the old
 * role; its membarrier orders the cycle's stores before our next sequence. */
#if defined(GCPOOL_FASTPATH_RSEQ) && defined(GCP_HAVE_RSEQ_AREA)
#define GCP_PIN_RSEQ_POSSIBLE 1

/* OS CPU -> bytes from an array's header to its local, or GCP_PIN_NO_LOCAL
 * for a CPU that has no local of its own (not allowed at start): the table
 * must be one to one, or two CPUs' sequences would own one local. */
#define GCP_PIN_NO_LOCAL GCPOOL_FASTPATH_NO_LOCAL

/* The library's own table, which its sequences read: filled whenever the rseq
 * pin is chosen, checked mode or not.  The programs' gcpool_fastpath_v3 is a
 * copy of it only while the fast path is on (gcp_pin_fast_on). */
extern struct gcpool_fastpath gcp_pin_table;
#endif

/* The fast path on: gets and puts need test nothing else before their
 * sequence, here and where programs inline them (whose table it fills).
 * Relaxed loads: set once, before the first pool that uses it exists. */
extern bool gcp_pin_fast;
void gcp_pin_fast_on(void);

void *gcp_pin_lock_take_private(struct gcp_locals *_Atomic *role);
bool gcp_pin_lock_fill_private(struct gcp_locals *_Atomic *role, void *obj);

/* Takes the private object of this CPU's local in the array *role points to
 * now (read inside the sequence, so that a cycle's fence reaches it).  NULL
 * when empty, or when *role is NULL. */
static inline void *gcp_pin_take_private(struct gcp_locals *_Atomic *role)
{
#ifdef GCP_PIN_RSEQ_POSSIBLE
    if (__builtin_expect(gcp_pin_rseq, 1))
        return gcpool_fastpath_take_(gcp_pin_table.cpu_local, role);
#endif
    return gcp_pin_lock_take_private(role);
}

/* Puts obj there, counting the fill; false when the slot is taken (or *role
 * is NULL): the caller goes to the chain. */
static inline bool gcp_pin_fill_private(struct gcp_locals *_Atomic *role, void *obj)
{
#ifdef GCP_PIN_RSEQ_POSSIBLE
    if (__builtin_expect(gcp_pin_rseq, 1))
        return gcpool_fastpath_fill_(gcp_pin_table.cpu_local, role, obj);
#endif
    return gcp_pin_lock_fill_private(role, obj);
}

/* The chain's owner operations on its head ring, counted in the local's seq
 * counters: under rseq only; false/NULL sends the caller to the slow path
 * (gcp_pin_owner). */
static inline bool gcp_pin_chain_push(struct gcp_locals *_Atomic *role, void *obj)
{
#ifdef GCP_PIN_RSEQ_POSSIBLE
    if (gcp_pin_rseq)
        return gcpool_fastpath_push_(gcp_pin_table.cpu_local, role, obj);
#endif
    (void)role, (void)obj;
    return false;
}

static inline void *gcp_pin_chain_pop(struct gcp_locals *_Atomic *role)
{
#ifdef GCP_PIN_RSEQ_POSSIBLE
    if (gcp_pin_rseq)
        return gcpool_fastpath_pop_(gcp_pin_table.cpu_local, role);
#endif
    (void)role;
    return NULL;
}

/* Owns this CPU's local in array a for the chain's owner operations: its
 * lock, and under rseq also the guarantee that no sequence on that local is
 * still running (each checks the lock before it commits): either this thread
 * is on the local's CPU after taking the lock, so any sequence there was
 * preempted and will restart, or a fence aborts them.  *self: the local. */
struct gcp_local *gcp_pin_owner(struct gcp_locals *a, unsigned *self);

/* Chooses the method (GCPOOL_PIN); idempotent, thread-safe. */
void gcp_pin_init(void);
/* "rseq" or "lock": the method in force (choosing it if need be). */
const char *gcp_pin_name(void);


/* After a cycle changed roles: returns once no thread is still inside a
 * sequence on an array it loaded before the change (membarrier with the rseq
 * command aborts them all).  Nothing to do for the lock pin. */
void gcp_pin_fence(void);

/* In a forked child: registers the child for membarrier's rseq fence. */
void gcp_pin_after_fork(void);

/* Sequences restarted by the kernel so far (a debug statistic). */
uint64_t gcp_pin_restarts(void);

#endif
