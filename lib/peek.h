/* Where the statistics read a pool's memory from: this process, or another.
 *
 * The counters a report sums (stats.c), the objects a pool holds, the cycle
 * history (history.c) are read through one function, so that gcpool-stat can
 * run the very same code on a process it observes (lib/live.c copies the
 * memory with process_vm_readv) as the library runs on itself.  In this
 * process the read copies nothing: it returns the address it was given, and
 * the callers' atomic loads read live memory, as they always did (and inside
 * the collector: no allocation, no lock).  From another process it copies
 * into the caller's buffer and returns that; the loads then read the copy.
 *
 * Whatever comes from another process is data, never trusted: a reader checks
 * every count and size it follows before it uses it (GCP_PEEK_MAX_*). */
#ifndef GCPOOL_PEEK_H
#define GCPOOL_PEEK_H

#include <stddef.h>
#include <stdint.h>

struct gcp_peek {
    /* n bytes at addr, an address in the process read: addr itself (this
     * process), or buf filled with a copy; NULL when they cannot be read. */
    const void *(*read)(const struct gcp_peek *pk, const void *addr, size_t n, void *buf);
    int pid;                  /* the process read (0: this one) */
    const void *no_locals;    /* its gcp_no_locals (pool.h); unused for this process, whose
                                 gcp_no_locals is set at run time */
};

/* This process. */
extern const struct gcp_peek gcp_peek_self;
/* Process pid, through process_vm_readv: the kernel allows it to the
 * process's own user (and root), as it allows ptrace, and a read of memory
 * the process no longer maps fails (EFAULT) rather than crashing the reader.
 * no_locals: that process's gcp_no_locals (its live file says). */
struct gcp_peek gcp_peek_process(int pid, const void *no_locals);

static inline const void *gcp_peek(const struct gcp_peek *pk, const void *addr, size_t n, void *buf)
{
    return pk->read(pk, addr, n, buf);
}

/* Bounds on what a reader follows in memory it does not trust. */
#define GCP_PEEK_MAX_LOCALS 65536u       /* locals in one array */
#define GCP_PEEK_MAX_STRIDE (1u << 16)   /* bytes between two locals */
#define GCP_PEEK_MAX_POOLS 1000000u      /* pools in one registry walk */
#define GCP_PEEK_MAX_NAME 256u           /* bytes of a pool's name */

#endif
