/* Pinning: how a thread comes to own the local of the CPU it runs on, as Go
 * disables preemption to own its P for the length of a pool operation.
 *
 * Two methods, one chosen per process at the first pool (GCPOOL_PIN):
 *   rseq  the private slot is taken and filled by Linux restartable sequences:
 *         if the thread is preempted, migrated or signalled before the one
 *         committing store, the kernel restarts it, so the slot is the CPU's
 *         alone without a lock or an atomic read-modify-write.  The chain's
 *         owner operations (several stores each) take the local's lock.
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

#include "pool.h"
#include "topology.h"

#if __has_include(<sys/rseq.h>)
#include <sys/rseq.h>
#define GCP_HAVE_RSEQ_AREA 1
#endif

/* OS CPU numbers the rseq path serves; a thread on a higher one takes the lock path. */
#define GCP_PIN_MAX_CPUS GCPOOL_FASTPATH_MAX_CPUS

extern bool gcp_pin_rseq; /* chosen once by gcp_pin_init */

/* The CPU this thread runs on now (may be stale by the time it is used). */
static inline int gcp_current_cpu(void)
{
#ifdef GCP_HAVE_RSEQ_AREA
    if (__builtin_expect(__rseq_size > 0, 1)) {
        const struct rseq *rs =
            (const struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
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

/* gcp_pin_take_private(role): takes the private object of this CPU's local in
 * the array *role points to now (read inside the sequence, so that a cycle's
 * fence reaches it).  NULL when empty, or when *role is NULL.
 * gcp_pin_fill_private(role, obj): puts obj there, counting the fill; false
 * when the slot is taken (or *role is NULL): the caller goes to the chain. */
/* ---- the rseq sequences (x86-64) ------------------------------------------
 * The private slot's two sequences and the start every sequence shares are
 * gcpool/fastpath.h's, so that programs inline exactly what the library runs.
 *
 * Ordering: the sequence's loads of the role and of private need no fence.
 * Only threads on this CPU write private (each in a sequence: a preemption
 * between our load and our commit restarts us), and a cycle touches the slot
 * only after gcp_pin_fence has aborted every sequence that loaded the old
 * role; its membarrier orders the cycle's stores before our next sequence. */
#if defined(GCPOOL_FASTPATH_RSEQ) && defined(GCP_HAVE_RSEQ_AREA)
#define GCP_PIN_RSEQ_POSSIBLE 1

/* OS CPU -> byte offset of its local, or GCP_PIN_NO_LOCAL for a CPU that has
 * no local of its own (not allowed at start): the table must be one to one,
 * or two CPUs' sequences would own one local. */
#define GCP_PIN_NO_LOCAL GCPOOL_FASTPATH_NO_LOCAL
#define GCP_RSEQ_BEGIN(init, undo) GCPOOL_RSEQ_BEGIN_(init, undo)
#define GCP_RSEQ_INPUTS(role) GCPOOL_RSEQ_INPUTS_(role)

static inline struct rseq *gcp_rseq_area(void)
{
    return (struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
}

static inline void *gcp_rseq_take_private(struct gcp_locals *_Atomic *role)
{
    return gcpool_fastpath_take_(role);
}

static inline bool gcp_rseq_fill_private(struct gcp_locals *_Atomic *role, void *obj)
{
    return gcpool_fastpath_fill_(role, obj);
}

/* The chain's owner operations on its head ring, as sequences.  They give up
 * (false, NULL) whenever anything is not simple: the local's pin is held (a
 * slow path is changing the chain), no head ring, the ring full or empty, a
 * thief's CAS won the race.  The slow path then does it under the pin. */
#define GCP_CHAIN_OFFSETS                                                                      \
    [pin] "i"(offsetof(struct gcp_local, pin)),                                                 \
        [head_ring] "i"(offsetof(struct gcp_local, shared) + offsetof(struct gcp_chain, head_ring)), \
        [size] "i"(offsetof(struct gcp_ring, size)), [slots] "i"(offsetof(struct gcp_ring, slots)), \
        [ht_tail] "i"(offsetof(struct gcp_ring, head_tail)),                                     \
        [ht_head] "i"(offsetof(struct gcp_ring, head_tail) + 4)

/* The head ring's head in ecx and tail in eax, read as the two halves of
 * head_tail (little-endian: head is the upper one): the push's commit stores
 * the head half alone, and a 64-bit load right after that 32-bit store could
 * not be forwarded from it and would wait for it to reach the cache.  r9
 * keeps the local, rdx becomes the ring. */
#define GCP_RSEQ_HEAD_RING                                                                     \
    "cmpl $0, %c[pin](%%rdx)\n\t"                                                              \
    "jne 5f\n\t"                                                                               \
    "movq %%rdx, %%r9\n\t"                                                                     \
    "movq %c[head_ring](%%rdx), %%rdx\n\t"                                                     \
    "testq %%rdx, %%rdx\n\t"                                                                   \
    "jz 5f\n\t"                                                                                \
    "movl %c[ht_head](%%rdx), %%ecx\n\t"                                                       \
    "movl %c[ht_tail](%%rdx), %%eax\n\t"

/* Push: the slot store comes before the committing store of head, so an
 * abort between them would leave a ghost in a slot nobody owns (design.md's
 * hazard).  r11 names that slot from just before the store; the abort handler
 * takes our object back out of it with a CAS (it may already hold nothing, or
 * never have held it), so an aborted push leaves nothing behind.
 *
 * The commit is a plain 32-bit store of head + 1 into head_tail's upper half,
 * not Go's atomic add on the whole word: only the owner moves head (its
 * sequences are serial on this CPU, and a slow-path owner fences them), and
 * everyone else only moves tail, by a 64-bit CAS that compares head too.  A
 * CAS before our store keeps its tail (we write the other half); one after it
 * sees the new head, or fails on the old one and retries.  x86 stores are
 * seen in order, so whoever sees the new head sees the slot.  No locked
 * instruction: the push costs what a store costs. */
static inline bool gcp_rseq_chain_push(struct gcp_locals *_Atomic *role, void *obj)
{
    int done;
    __asm__ __volatile__(
        GCP_RSEQ_BEGIN("xorl %%r11d, %%r11d\n\t",
                       "testq %%r11, %%r11\n\t"
                       "jz 7f\n\t"
                       "movq %[obj], %%rax\n\t"
                       "xorl %%ecx, %%ecx\n\t"
                       "lock cmpxchgq %%rcx, (%%r11)\n\t"
                       "7: ")
        "xorl %[done], %[done]\n\t"
        GCP_RSEQ_HEAD_RING
        "movl %%ecx, %%r8d\n\t"
        "subl %%eax, %%r8d\n\t"       /* head - tail */
        "cmpl %c[size](%%rdx), %%r8d\n\t"
        "jae 5f\n\t"                  /* full */
        "movl %c[size](%%rdx), %%r8d\n\t"
        "decl %%r8d\n\t"
        "andl %%ecx, %%r8d\n\t"
        "leaq %c[slots](%%rdx, %%r8, 8), %%r8\n\t"
        "cmpq $0, (%%r8)\n\t"
        "jne 5f\n\t"                  /* a thief has not cleared it yet */
        "movq %%r8, %%r11\n\t"        /* from here an abort undoes the slot */
        "movq %[obj], (%%r8)\n\t"
        "movl $1, %[done]\n\t"
        "incl %%ecx\n\t"
        "movl %%ecx, %c[ht_head](%%rdx)\n\t" /* commit: head + 1 publishes the slot */
        "2: incq %c[count](%%r9)\n\t"   /* counted as the private fill is */
        "jmp 6f\n\t"
        "5: xorl %[done], %[done]\n\t"
        "6:\n\t"
        : [done] "=&r"(done)
        : GCP_RSEQ_INPUTS(role), GCP_CHAIN_OFFSETS, [obj] "r"(obj),
          [count] "i"(offsetof(struct gcp_local, seq.puts_shared))
        : "rax", "rcx", "rdx", "r8", "r9", "r11", "memory", "cc");
    return done;
}

/* Pop: reads the object at head - 1, then one CAS moving head back commits;
 * it fails if a thief moved the tail meanwhile.  Not a plain store as in the
 * push: between our read and our store thieves could take every object up to
 * head - 1, ours too.  The slot is cleared after the commit: until then a
 * push sees it taken and goes to the slow path. */
static inline void *gcp_rseq_chain_pop(struct gcp_locals *_Atomic *role)
{
    void *obj;
    void **slot;
    __asm__ __volatile__(
        /* slot is cleared before anything can go to 5: */
        GCP_RSEQ_BEGIN("xorl %k[slot], %k[slot]\n\t", "")
        GCP_RSEQ_HEAD_RING
        "cmpl %%eax, %%ecx\n\t"
        "je 5f\n\t"                   /* empty */
        "movl %c[size](%%rdx), %%r8d\n\t"
        "decl %%r8d\n\t"
        "leal -1(%%rcx), %%r10d\n\t"
        "andl %%r10d, %%r8d\n\t"      /* the slot of head - 1 */
        "leaq %c[slots](%%rdx, %%r8, 8), %%r8\n\t"
        "movq (%%r8), %[obj]\n\t"
        "shlq $32, %%rcx\n\t"
        "orq %%rcx, %%rax\n\t"        /* head_tail as we read it */
        "movq %%rax, %%rcx\n\t"
        "subq %[one], %%rcx\n\t"      /* head - 1, same tail */
        "lock cmpxchgq %%rcx, %c[ht_tail](%%rdx)\n\t" /* commit, if head_tail did not move */
        "2: jne 5f\n\t"
        "incq %c[count](%%r9)\n\t"
        "movq %%r8, %[slot]\n\t"
        "jmp 6f\n\t"
        "5: xorl %k[obj], %k[obj]\n\t"
        "6:\n\t"
        : [obj] "=&r"(obj), [slot] "=&r"(slot)
        : GCP_RSEQ_INPUTS(role), GCP_CHAIN_OFFSETS, [one] "r"((uint64_t)1 << 32),
          [count] "i"(offsetof(struct gcp_local, seq.hit_shared))
        : "rax", "rcx", "rdx", "r8", "r9", "r10", "memory", "cc");
    if (slot)
        /* Ours since the commit; relaxed: a thief never reads a slot at or
         * beyond head, and a push by this CPU waits for NULL. */
        __atomic_store_n(slot, NULL, __ATOMIC_RELAXED);
    return obj;
}
#endif

void *gcp_pin_lock_take_private(struct gcp_locals *_Atomic *role);
bool gcp_pin_lock_fill_private(struct gcp_locals *_Atomic *role, void *obj);

static inline void *gcp_pin_take_private(struct gcp_locals *_Atomic *role)
{
#ifdef GCP_PIN_RSEQ_POSSIBLE
    if (__builtin_expect(gcp_pin_rseq, 1))
        return gcp_rseq_take_private(role);
#endif
    return gcp_pin_lock_take_private(role);
}

static inline bool gcp_pin_fill_private(struct gcp_locals *_Atomic *role, void *obj)
{
#ifdef GCP_PIN_RSEQ_POSSIBLE
    if (__builtin_expect(gcp_pin_rseq, 1))
        return gcp_rseq_fill_private(role, obj);
#endif
    return gcp_pin_lock_fill_private(role, obj);
}

/* The chain's fast paths, counted in the local's seq counters: under rseq
 * only; false/NULL sends the caller to the slow path (gcp_pin_owner). */
static inline bool gcp_pin_chain_push(struct gcp_locals *_Atomic *role, void *obj)
{
#ifdef GCP_PIN_RSEQ_POSSIBLE
    if (gcp_pin_rseq)
        return gcp_rseq_chain_push(role, obj);
#endif
    (void)role, (void)obj;
    return false;
}

static inline void *gcp_pin_chain_pop(struct gcp_locals *_Atomic *role)
{
#ifdef GCP_PIN_RSEQ_POSSIBLE
    if (gcp_pin_rseq)
        return gcp_rseq_chain_pop(role);
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
