/* Pinning: how a thread comes to own the local of the CPU it runs on.
 *
 * Go disables preemption to own its P for the length of a pool operation.  The
 * lock pin reads the current CPU (from the rseq area glibc registers for every
 * thread: a plain load; else sched_getcpu) and takes that local's lock.  The CPU
 * is only a hint: a thread migrated after the read still holds the right lock,
 * it merely shares a local with another CPU's threads for a moment. */
#ifndef GCPOOL_PIN_H
#define GCPOOL_PIN_H

#include <sched.h>
#include <stdint.h>

#include "pool.h"
#include "topology.h"

#if defined(HAVE_SYS_RSEQ_H) || __has_include(<sys/rseq.h>)
#include <sys/rseq.h>
#define GCP_HAVE_RSEQ_AREA 1
#endif

/* The CPU this thread runs on now (may be stale by the time it is used). */
static inline int gcp_current_cpu(void)
{
#ifdef GCP_HAVE_RSEQ_AREA
    if (__builtin_expect(__rseq_size > 0, 1)) {
        const struct rseq *rs =
            (const struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
        /* The kernel updates cpu_id on every return to this thread; a volatile
         * read so the compiler loads it now. */
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

/* Owns local i of array a until gcp_unpin. */
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

/* "lock" or "rseq": the pin method in force. */
const char *gcp_pin_name(void);

#endif
