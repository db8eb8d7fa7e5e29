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
#define GCP_PIN_MAX_CPUS 1024

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
 * Each publishes its descriptor in the thread's rseq area, then, between labels
 * 1 and 2 (the critical section): reads the CPU, the role's array, the local,
 * and ends with exactly one store, the commit.  The abort handler (label 4,
 * preceded by the signature the kernel checks) counts the restart and starts
 * over from the descriptor store, so an abort leaves nothing half done: before
 * the commit nothing was written.
 *
 * Ordering: the sequence's loads of the role and of private need no fence.
 * Only threads on this CPU write private (each in a sequence: a preemption
 * between our load and our commit restarts us), and a cycle touches the slot
 * only after gcp_pin_fence has aborted every sequence that loaded the old
 * role; its membarrier orders the cycle's stores before our next sequence. */
#if defined(__x86_64__) && defined(GCP_HAVE_RSEQ_AREA) && !defined(__SANITIZE_THREAD__)
#define GCP_PIN_RSEQ_POSSIBLE 1

/* OS CPU -> byte offset of its local, or GCP_PIN_NO_LOCAL for a CPU that has
 * no local of its own (not allowed at start): the table must be one to one,
 * or two CPUs' sequences would own one local. */
#define GCP_PIN_NO_LOCAL ((size_t)-1)
extern size_t gcp_pin_cpu_offset[GCP_PIN_MAX_CPUS];
extern _Atomic uint64_t gcp_pin_restart_count;
extern ptrdiff_t gcp_pin_rseq_offset; /* glibc's __rseq_offset, copied at start */

#define GCP_RSEQ_SIG "0x53053053" /* glibc's RSEQ_SIG on x86 */

/* Descriptor (3); abort handler (4), in its own section after the signature
 * the kernel checks, running `undo` then starting over; the entry (0), which
 * runs `init` and publishes the descriptor; then the critical section (1),
 * which finds this CPU's local in the array *role points to, in rdx, or goes
 * to 5 (no local: fail). */
#define GCP_RSEQ_BEGIN(init, undo)                                                             \
    ".pushsection __rseq_cs, \"aw\"\n\t"                                                       \
    ".balign 32\n\t"                                                                           \
    "3: .long 0, 0\n\t"                                                                        \
    ".quad 1f, (2f - 1f), 4f\n\t"                                                              \
    ".popsection\n\t"                                                                          \
    ".pushsection __rseq_failure, \"ax\"\n\t"                                                  \
    ".byte 0x0f, 0xb9, 0x3d\n\t"                                                               \
    ".long " GCP_RSEQ_SIG "\n\t"                                                               \
    "4: " undo "lock incq gcp_pin_restart_count(%%rip)\n\t"                                    \
    "jmp 0f\n\t"                                                                               \
    ".popsection\n\t"                                                                          \
    "0: " init "leaq 3b(%%rip), %%rax\n\t"                                                     \
    "movq %%rax, %%fs:8(%[rs])\n\t" /* rseq area's rseq_cs = &descriptor */                    \
    "1: movl %%fs:(%[rs]), %%ecx\n\t" /* its cpu_id_start */                                   \
    "cmpl %[max], %%ecx\n\t"                                                                   \
    "jae 5f\n\t"                                                                               \
    "movq (%[tab], %%rcx, 8), %%rax\n\t"                                                       \
    "cmpq $-1, %%rax\n\t"                                                                      \
    "je 5f\n\t"                                                                                \
    "movq (%[role]), %%rdx\n\t"                                                                \
    "testq %%rdx, %%rdx\n\t"                                                                   \
    "jz 5f\n\t"                                                                                \
    "movq %c[base](%%rdx), %%rdx\n\t"                                                          \
    "addq %%rax, %%rdx\n\t" /* rdx = this CPU's local */

/* rs: the rseq area's offset from the thread pointer, so the sequence reaches
 * it with one %fs-relative access instead of computing its address first. */
#define GCP_RSEQ_INPUTS(role)                                                                  \
    [rs] "r"(gcp_pin_rseq_offset), [role] "r"(role), [tab] "r"(gcp_pin_cpu_offset),             \
        [max] "i"(GCP_PIN_MAX_CPUS), [base] "i"(offsetof(struct gcp_locals, base))

static inline struct rseq *gcp_rseq_area(void)
{
    return (struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
}

static inline void *gcp_rseq_take_private(struct gcp_locals *_Atomic *role)
{
    void *obj;
    __asm__ __volatile__(GCP_RSEQ_BEGIN("", "")
                         "movq %c[priv](%%rdx), %[obj]\n\t"
                         "testq %[obj], %[obj]\n\t"
                         "jz 2f\n\t"
                         "movq $0, %c[priv](%%rdx)\n\t" /* commit: the slot is empty */
                         "2: jmp 6f\n\t"
                         "5: xorl %k[obj], %k[obj]\n\t"
                         "6:\n\t"
                         : [obj] "=&r"(obj)
                         : GCP_RSEQ_INPUTS(role), [priv] "i"(offsetof(struct gcp_local, private_))
                         : "rax", "rcx", "rdx", "memory", "cc");
    return obj;
}

/* The fill is counted by one increment just after the commit, on the local
 * the sequence used.  Not inside the sequence: only one store may commit,
 * and a 16-byte store of slot and count together costs the pair 65% here
 * (perf/count-overhead).  One instruction cannot be split by preemption, so
 * this CPU's threads never lose each other's counts; a thread migrated in the
 * one instruction between commit and increment, racing a thread of the old
 * CPU on the same counter at that very moment, could lose one count: a
 * statistic off by one, never an object. */
static inline bool gcp_rseq_fill_private(struct gcp_locals *_Atomic *role, void *obj)
{
    int done;
    __asm__ __volatile__(GCP_RSEQ_BEGIN("", "")
                         "cmpq $0, %c[priv](%%rdx)\n\t"
                         "jne 5f\n\t"
                         "movq %[obj], %c[priv](%%rdx)\n\t" /* commit */
                         "2: incq %c[fills](%%rdx)\n\t"
                         "movl $1, %[done]\n\t"
                         "jmp 6f\n\t"
                         "5: xorl %[done], %[done]\n\t"
                         "6:\n\t"
                         : [done] "=&r"(done)
                         : GCP_RSEQ_INPUTS(role), [priv] "i"(offsetof(struct gcp_local, private_)),
                           [fills] "i"(offsetof(struct gcp_local, fills)), [obj] "r"(obj)
                         : "rax", "rcx", "rdx", "memory", "cc");
    return done;
}

/* The chain's owner operations on its head ring, as sequences.  They give up
 * (false, NULL) whenever anything is not simple: the local's pin is held (a
 * slow path is changing the chain), no head ring, the ring full or empty, a
 * thief's CAS won the race.  The slow path then does it under the pin. */
#define GCP_CHAIN_OFFSETS                                                                      \
    [pin] "i"(offsetof(struct gcp_local, pin)),                                                 \
        [head] "i"(offsetof(struct gcp_local, shared) + offsetof(struct gcp_chain, head)),      \
        [rings] "i"(offsetof(struct gcp_local, shared) + offsetof(struct gcp_chain, rings)),    \
        [size] "i"(offsetof(struct gcp_ring, size)), [slots] "i"(offsetof(struct gcp_ring, slots))

/* The ring's head_tail, head in ecx; r9 keeps the local, rdx becomes the ring. */
#define GCP_RSEQ_HEAD_RING                                                                     \
    "cmpl $0, %c[pin](%%rdx)\n\t"                                                              \
    "jne 5f\n\t"                                                                               \
    "movl %c[head](%%rdx), %%eax\n\t"                                                          \
    "cmpl $-1, %%eax\n\t"                                                                      \
    "je 5f\n\t"                                                                                \
    "movq %%rdx, %%r9\n\t"                                                                     \
    "movq %c[rings](%%rdx, %%rax, 8), %%rdx\n\t"                                               \
    "movq (%%rdx), %%rax\n\t" /* head_tail */                                                  \
    "movq %%rax, %%rcx\n\t"                                                                    \
    "shrq $32, %%rcx\n\t"     /* ecx = head, eax = tail */

/* Push: the slot store comes before the committing increment of head, so an
 * abort between them would leave a ghost in a slot nobody owns (design.md's
 * hazard).  r11 names that slot from just before the store; the abort handler
 * takes our object back out of it with a CAS (it may already hold nothing, or
 * never have held it), so an aborted push leaves nothing behind. */
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
        "lock addq %[one], (%%rdx)\n\t" /* commit: head + 1 publishes the slot */
        "2: incq %c[count](%%r9)\n\t"   /* counted as the private fill is */
        "jmp 6f\n\t"
        "5: xorl %[done], %[done]\n\t"
        "6:\n\t"
        : [done] "=&r"(done)
        : GCP_RSEQ_INPUTS(role), GCP_CHAIN_OFFSETS, [obj] "r"(obj), [one] "r"((uint64_t)1 << 32),
          [count] "i"(offsetof(struct gcp_local, seq.puts_shared))
        : "rax", "rcx", "rdx", "r8", "r9", "r11", "memory", "cc");
    return done;
}

/* Pop: reads the object at head - 1, then one CAS moving head back commits;
 * it fails if a thief moved the tail meanwhile.  The slot is cleared after
 * the commit: until then a push sees it taken and goes to the slow path. */
static inline void *gcp_rseq_chain_pop(struct gcp_locals *_Atomic *role)
{
    void *obj;
    void **slot;
    __asm__ __volatile__(
        GCP_RSEQ_BEGIN("", "")
        "xorl %k[slot], %k[slot]\n\t"
        GCP_RSEQ_HEAD_RING
        "cmpl %%eax, %%ecx\n\t"
        "je 5f\n\t"                   /* empty */
        "decl %%ecx\n\t"
        "movl %c[size](%%rdx), %%r8d\n\t"
        "decl %%r8d\n\t"
        "andl %%ecx, %%r8d\n\t"
        "leaq %c[slots](%%rdx, %%r8, 8), %%r8\n\t"
        "movq (%%r8), %[obj]\n\t"
        "movq %%rax, %%rcx\n\t"
        "subq %[one], %%rcx\n\t"      /* head - 1, same tail */
        "lock cmpxchgq %%rcx, (%%rdx)\n\t" /* commit, if head_tail did not move */
        "2: jne 5f\n\t"
        "incq %c[count](%%r9)\n\t"
        "movq %%r8, %[slot]\n\t"
        "jmp 6f\n\t"
        "5: xorl %k[obj], %k[obj]\n\t"
        "6:\n\t"
        : [obj] "=&r"(obj), [slot] "=&r"(slot)
        : GCP_RSEQ_INPUTS(role), GCP_CHAIN_OFFSETS, [one] "r"((uint64_t)1 << 32),
          [count] "i"(offsetof(struct gcp_local, seq.hit_shared))
        : "rax", "rcx", "rdx", "r8", "r9", "memory", "cc");
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
