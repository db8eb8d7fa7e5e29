/* gcpool's inline fast path.  Included by <gcpool.h>; not a header of its own.
 *
 * On x86-64 Linux, gcpool_get and gcpool_put are also function-like macros
 * that first try this CPU's private slot, then the head ring of its shared
 * chain, in place, exactly as the library's own functions would: restartable
 * sequences (rseq), no call.  Two calls into a shared library cost this
 * machine more than the slot itself (perf/README.md).  When neither can serve
 * - empty, full, the pool's first use, a CPU without a local, a slow path at
 * work on the chain - they call the library past them; when the fast path is
 * off - the lock pin in force, checked mode, no rseq - every CPU's entry in
 * the table they read says "no local", so they give up at once and call the
 * library, which takes the general path.
 *
 *   GCPOOL_NO_INLINE   defined before including <gcpool.h>: always call.
 *   (gcpool_get)(p)    calls the function, as does taking its address.
 *
 * What follows is a contract between programs compiled against this header
 * and the library: a pool's first word points to the header of its current
 * array of locals (never NULL: see GCPOOL_RSEQ_LOCAL_), and the local of a
 * CPU sits the CPU's entry in cpu_local bytes past that header (0: no local,
 * call); a local and a ring have the fields the GCPOOL_FASTPATH_LOCAL_ and
 * _RING_ offsets name; the thread's rseq area is glibc's (__rseq_offset);
 * and the sequences keep the rules of lib/ring.h's "Slots".  The library
 * checks the layout when it is built (lib/pool.c).  A library that changes
 * the contract exports
 * gcpool_fastpath_v4 and keeps gcpool_fastpath_v3 with every entry 0, so that
 * programs built against this header go on working, through calls.  (v1 and
 * v2 are kept so, their `on` 0: v1's pop cleared its slot with a plain store
 * after the commit, which could undo the slow path's refill of a slot whose
 * clear lags; v2 tested `on`, read the library's copy of the rseq offset and
 * kept GCPOOL_FASTPATH_NO_LOCAL, -1, for a CPU without a local.)
 *
 * Reading order: the offsets, the table the sequences read, the pieces every
 * sequence is made of (descriptor, abort handler, start, the local's lookup),
 * then the four sequences, each under its C pseudo-code, then the inline
 * gcpool_get and gcpool_put that chain them.
 */
#ifndef GCPOOL_INSIDE_GCPOOL_H_
#error "include <gcpool.h>, not <gcpool/fastpath.h>: this is part of it"
#endif
#ifndef GCPOOL_FASTPATH_H
#define GCPOOL_FASTPATH_H

/* ---- the contract's offsets -------------------------------------------- */

#define GCPOOL_FASTPATH_MAX_CPUS 1024        /* OS CPU numbers served; higher ones call */
#define GCPOOL_FASTPATH_NO_LOCAL ((size_t)0) /* a CPU without a local, or the fast path off */
#define GCPOOL_FASTPATH_LOCALS_HEADER 32     /* bytes from an array's header to its locals */
/* A local (lib/pool.h's struct gcp_local): its private slot at 0, then: */
#define GCPOOL_FASTPATH_LOCAL_FILLS 8        /* fills: objects ever put in private */
#define GCPOOL_FASTPATH_LOCAL_PIN 16         /* pin: int, nonzero while a slow path owns the chain */
#define GCPOOL_FASTPATH_LOCAL_HIT_SHARED 24  /* seq.hit_shared: objects the sequences popped */
#define GCPOOL_FASTPATH_LOCAL_PUTS_SHARED 32 /* seq.puts_shared: objects the sequences pushed */
#define GCPOOL_FASTPATH_LOCAL_HEAD_RING 40   /* shared.head_ring: the chain's newest ring, or NULL */
/* A ring (lib/ring.h's struct gcp_ring): head_tail, head << 32 | tail, at 0;
 * on little-endian x86 its two uint32_t halves are: */
#define GCPOOL_FASTPATH_RING_HEAD_TAIL 0
#define GCPOOL_FASTPATH_RING_TAIL 0          /* the low half: thieves move it */
#define GCPOOL_FASTPATH_RING_HEAD 4          /* the high half: only the owner moves it */
#define GCPOOL_FASTPATH_RING_SIZE 8          /* size: uint32_t, a power of two */
#define GCPOOL_FASTPATH_RING_SLOTS 24        /* slots: void *[size]; NULL: free for the owner */
/* The kernel's struct rseq (linux/rseq.h), which every thread's rseq area is: */
#define GCPOOL_FASTPATH_RSEQ_CPU_ID_START 0  /* uint32_t: the CPU, always valid */
#define GCPOOL_FASTPATH_RSEQ_CS 8            /* u64: the running sequence's descriptor */

/* What the sequences read.  All zero, "no local" for every CPU, until the
 * library's first pool with the fast path on (rseq pin, checked mode off)
 * exists; then set once (back to zero only in a forked child that cannot
 * fence sequences, while it has one thread).  The sequences read cpu_local
 * with plain loads: a pool reaches another thread only through that thread's
 * own synchronisation, which orders the library's stores before it, and a
 * sequence that reads a zero before then merely calls the library. */
struct gcpool_fastpath {
    uint64_t restarts; /* sequences the kernel restarted; right before cpu_local,
                          where the abort handler finds it */
    size_t cpu_local[GCPOOL_FASTPATH_MAX_CPUS]; /* OS CPU -> bytes from an array's
                                                   header to its local, or NO_LOCAL */
};
/* restarts from cpu_local, as the abort handler addresses it. */
#define GCPOOL_FASTPATH_RESTARTS (-8)
extern GCPOOL_API struct gcpool_fastpath gcpool_fastpath_v3;
/* The library's gcpool_get and gcpool_put past the private slot and the head
 * ring, and where every call goes when the fast path is off. */
GCPOOL_API void *gcpool_fastpath_get_v3(gcpool_t *pool);
GCPOOL_API void gcpool_fastpath_put_v3(gcpool_t *pool, void *obj);

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GCPOOL_FASTPATH_TSAN_ 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define GCPOOL_FASTPATH_TSAN_ 1
#endif

/* `asm goto` (exits to C labels; GCC >= 4.5, clang >= 9) is what fill and
 * push leave by; older compilers call.  take and pop return an object, and
 * asm goto with outputs needs GCC >= 11 or clang >= 15 (Debian 12's clang is
 * 14): they end in local labels, one text for every compiler rather than two
 * to audit, at the cost of one jmp on the get's hit path. */
#if defined(__clang__)
#define GCPOOL_FASTPATH_ASM_GOTO_ (__clang_major__ >= 9)
#elif defined(__GNUC__)
#define GCPOOL_FASTPATH_ASM_GOTO_ (__GNUC__ > 4 || (__GNUC__ == 4 && __GNUC_MINOR__ >= 5))
#else
#define GCPOOL_FASTPATH_ASM_GOTO_ 0
#endif

/* glibc's rseq area (>= 2.35): __rseq_offset, const, which compilers keep
 * in a register across the asm's memory clobbers. */
#if defined(__has_include)
#if __has_include(<sys/rseq.h>)
#define GCPOOL_FASTPATH_HAVE_RSEQ_H_ 1
#endif
#endif

/* ThreadSanitizer cannot see inside a sequence: such builds call. */
#if defined(__x86_64__) && defined(__linux__) && GCPOOL_FASTPATH_ASM_GOTO_ &&                  \
    defined(GCPOOL_FASTPATH_HAVE_RSEQ_H_) && !defined(GCPOOL_FASTPATH_TSAN_)
#define GCPOOL_FASTPATH_RSEQ 1
#include <sys/rseq.h>

#define GCPOOL_RSEQ_SIG_ "0x53053053" /* glibc's RSEQ_SIG on x86 */

/* Abort injection, for tests (tests/test_abort.c), as in the Linux rseq
 * selftests and librseq: point n of a sequence is GCPOOL_RSEQ_INJECT_(n).  It
 * is empty, unless the program defines GCPOOL_RSEQ_INJECT(n) before it
 * includes <gcpool.h>: then it is that asm text, which may provoke an abort
 * there (a delay, a trap).  It must keep every register and the stack (the
 * red zone is live); it may change the flags, which are dead at every point.
 * Points: take 1 2, fill 3 4, push 5 6 7, pop 8 9, the pop's clear 10; the
 * last of each sits right before that sequence's commit. */
#define GCPOOL_RSEQ_INJECT_POINTS 10
#ifdef GCPOOL_RSEQ_INJECT
#define GCPOOL_RSEQ_INJECT_(n) GCPOOL_RSEQ_INJECT(n)
#else
#define GCPOOL_RSEQ_INJECT_(n) ""
#endif

/* ---- the pieces of a sequence ------------------------------------------
 * Local labels, the same in every sequence: 0 entry, 1 start of the critical
 * section, 2 its end (right after the one committing store), 3 descriptor,
 * 4 abort handler, 5 give up, 6 done; fill and push give up to a C label
 * instead, and are done where the asm ends.  (The pop's second sequence, its
 * clear, uses 11 to 15 for the same.)  Nothing before the commit is visible to
 * anyone, so a restart leaves nothing half done.  Every sequence takes
 * GCPOOL_RSEQ_INPUTS_; the labels are strings ("1"), as the descriptor
 * needs them forward ("1f") and the start backward ("3b"). */

/* The descriptor (struct rseq_cs: version, flags, start, length, abort), in
 * the section glibc and the kernel expect, aligned as the kernel requires. */
#define GCPOOL_RSEQ_DESCRIPTOR_(cs, start, end, abort)                                         \
    ".pushsection __rseq_cs, \"aw\"\n\t"                                                       \
    ".balign 32\n\t"                                                                           \
    cs ": .long 0, 0\n\t"                                                                      \
    ".quad " start "f, (" end "f - " start "f), " abort "f\n\t"                              \
    ".popsection\n\t"

/* The abort handler, where the kernel sends a preempted, migrated or
 * signalled sequence: after the signature it checks (four bytes right before
 * the handler, inside a ud1 so that disassemblers stay in step), out of line;
 * runs `undo`, counts the restart, then `then` (which jumps away). */
#define GCPOOL_RSEQ_ABORT_(label, undo, then)                                                  \
    ".pushsection __rseq_failure, \"ax\"\n\t"                                                  \
    ".byte 0x0f, 0xb9, 0x3d\n\t"                                                               \
    ".long " GCPOOL_RSEQ_SIG_ "\n\t"                                                           \
    label ": " undo "lock incq %c[restarts](%[tab])\n\t"                                       \
    then ".popsection\n\t"

/* Publishes the descriptor in the thread's rseq area, then opens the
 * critical section: from `start` on, the kernel restarts us. */
#define GCPOOL_RSEQ_START_(cs, start)                                                          \
    "leaq " cs "b(%%rip), %%rax\n\t"                                                           \
    "movq %%rax, %%fs:%c[rseq_cs](%[rs])\n\t"                                                  \
    start ": "

/* The local's lookup, first thing in the critical section: this CPU (in
 * ecx), its local's offset (rax), the array *role points to, and the local
 * in rdx; `fail` when the CPU is too high or has no local (or the fast path
 * is off: every entry is NO_LOCAL then).  The table is looked at before
 * *role: with the fast path off, role need not be a pool's.  *role is never
 * NULL: a pool without an array of its own (before its first use, say) points
 * to the library's array of locals that are no one's, whose every sequence
 * gives up at its first test (lib/pool.h, gcp_no_locals: a private slot that
 * take finds empty and fill taken, a pin held). */
#define GCPOOL_RSEQ_LOCAL_(fail)                                                               \
    "movl %%fs:%c[cpu_id_start](%[rs]), %%ecx\n\t"                                             \
    "cmpl %[max], %%ecx\n\t"                                                                   \
    "jae " fail "\n\t"                                                                         \
    "movq (%[tab], %%rcx, 8), %%rax\n\t"                                                       \
    "testq %%rax, %%rax\n\t" /* GCPOOL_FASTPATH_NO_LOCAL */                                    \
    "jz " fail "\n\t"                                                                          \
    "movq (%[role]), %%rdx\n\t"                                                                \
    "addq %%rax, %%rdx\n\t"

/* All four, as every sequence begins: descriptor 3, abort handler 4 (undo,
 * count, start over at 0), entry 0 (init), start 1, the local in rdx. */
#define GCPOOL_RSEQ_BEGIN_(init, undo, fail)                                                   \
    GCPOOL_RSEQ_DESCRIPTOR_("3", "1", "2", "4")                                                \
    GCPOOL_RSEQ_ABORT_("4", undo, "jmp 0f\n\t")                                                \
    "0: " init GCPOOL_RSEQ_START_("3", "1")                                                    \
    GCPOOL_RSEQ_LOCAL_(fail)

/* rs reaches the rseq area with one %fs-relative access; tab is the
 * cpu_local of the table in use (the program's gcpool_fastpath_v3, or the
 * library's own, filled under the rseq pin even in checked mode), and how the
 * abort handler finds its restart count. */
#define GCPOOL_RSEQ_INPUTS_(table, role)                                                       \
    [rs] "r"(__rseq_offset), [role] "r"(role), [tab] "r"(table),                              \
        [max] "i"(GCPOOL_FASTPATH_MAX_CPUS), [restarts] "i"(GCPOOL_FASTPATH_RESTARTS),        \
        [rseq_cs] "i"(GCPOOL_FASTPATH_RSEQ_CS),                                                \
        [cpu_id_start] "i"(GCPOOL_FASTPATH_RSEQ_CPU_ID_START)

/* ---- the private slot ----------------------------------------------------- */

/* take: the private object of this CPU's local in the array *role points
 * to; NULL when the slot is empty or there is no such local.  A negative
 * private (no user-space address) is a slot of a local that is no one's
 * (GCPOOL_RSEQ_LOCAL_): empty, and the test costs nothing more (jle, not jz).
 *
 *     local = this CPU's local in *role;    if none: return NULL
 *     obj = local->private_;                if NULL or negative: return NULL
 *     local->private_ = NULL;               commit
 *     return obj;
 */
static __inline__ __attribute__((always_inline)) void *gcpool_fastpath_take_(const size_t *tab,
                                                                            const void *role)
{
    void *obj;
    __asm__ __volatile__(GCPOOL_RSEQ_BEGIN_("", "", "5f")
                         GCPOOL_RSEQ_INJECT_(1)
                         "movq (%%rdx), %[obj]\n\t"
                         "testq %[obj], %[obj]\n\t"
                         "jle 5f\n\t"
                         GCPOOL_RSEQ_INJECT_(2)
                         "movq $0, (%%rdx)\n\t" /* commit */
                         "2: jmp 6f\n\t"
                         "5: xorl %k[obj], %k[obj]\n\t"
                         "6:\n\t"
                         : [obj] "=&r"(obj)
                         : GCPOOL_RSEQ_INPUTS_(tab, role)
                         : "rax", "rcx", "rdx", "memory", "cc");
    return obj;
}

/* fill: puts obj in that slot; 0 when it is taken or there is no such local.
 * The fill is counted by one increment right after the commit, not inside
 * (one store commits): a thread migrated within that one instruction, racing
 * another thread of the CPU it left on the same counter, could lose a count -
 * a statistic off by one, never an object.
 *
 *     local = this CPU's local in *role;    if none: return 0
 *     if (local->private_ != NULL) return 0;
 *     local->private_ = obj;                commit
 *     local->fills++;                       after the sequence
 *     return 1;
 */
static __inline__ __attribute__((always_inline)) int gcpool_fastpath_fill_(const size_t *tab,
                                                                            const void *role,
                                                                            void *obj)
{
    __asm__ goto(GCPOOL_RSEQ_BEGIN_("", "", "%l[taken]")
                 GCPOOL_RSEQ_INJECT_(3)
                 "cmpq $0, (%%rdx)\n\t"
                 "jne %l[taken]\n\t"
                 GCPOOL_RSEQ_INJECT_(4)
                 "movq %[obj], (%%rdx)\n\t" /* commit */
                 "2: incq %c[fills](%%rdx)\n\t"
                 :
                 : GCPOOL_RSEQ_INPUTS_(tab, role), [fills] "i"(GCPOOL_FASTPATH_LOCAL_FILLS),
                   [obj] "r"(obj)
                 : "rax", "rcx", "rdx", "memory", "cc"
                 : taken);
    return 1;
taken:
    return 0;
}

/* ---- the chain's head ring ------------------------------------------------
 * The chain's owner operations on its head ring (Go's pushHead and popHead
 * of poolDequeue).  They give up (0, NULL) whenever anything is not simple:
 * the local's pin held (a slow path is changing the chain), no head ring, the
 * ring full or empty, a thief's CAS won the race; the library then does it
 * under the pin.  They count what they do just after the commit, as the fill.
 *
 * Each reads the head ring's head in ecx and its tail in eax, as the two
 * halves of head_tail: the push commits by storing the head half alone, and a
 * 64-bit load right after that 32-bit store could not be forwarded from it
 * and would wait for it to reach the cache.  r9 keeps the local, rdx becomes
 * the ring.
 *
 *     if (local->pin) give up;
 *     ring = local->shared.head_ring;       if NULL: give up
 *     head = ring->head; tail = ring->tail;
 */
#define GCPOOL_RSEQ_HEAD_RING_(fail)                                                           \
    "cmpl $0, %c[pin](%%rdx)\n\t"                                                              \
    "jne " fail "\n\t"                                                                         \
    "movq %%rdx, %%r9\n\t"                                                                     \
    "movq %c[head_ring](%%rdx), %%rdx\n\t"                                                     \
    "testq %%rdx, %%rdx\n\t"                                                                   \
    "jz " fail "\n\t"                                                                          \
    "movl %c[head](%%rdx), %%ecx\n\t"                                                          \
    "movl %c[tail](%%rdx), %%eax\n\t"

#define GCPOOL_RSEQ_CHAIN_INPUTS_                                                              \
    [pin] "i"(GCPOOL_FASTPATH_LOCAL_PIN), [head_ring] "i"(GCPOOL_FASTPATH_LOCAL_HEAD_RING),     \
        [size] "i"(GCPOOL_FASTPATH_RING_SIZE), [slots] "i"(GCPOOL_FASTPATH_RING_SLOTS),       \
        [head] "i"(GCPOOL_FASTPATH_RING_HEAD), [tail] "i"(GCPOOL_FASTPATH_RING_TAIL),         \
        [head_tail] "i"(GCPOOL_FASTPATH_RING_HEAD_TAIL)

/* push: the slot store comes before the committing store of head, so an
 * abort between them would leave a ghost in a slot nobody owns.  r11 names
 * that slot from just before the store; the abort handler takes our object
 * back out of it with a CAS (it may already hold nothing, or never have held
 * it), so an aborted push leaves nothing behind.
 *
 * The commit is a plain 32-bit store of head + 1 into head_tail's upper half,
 * not Go's atomic add on the whole word: only the owner moves head (its
 * sequences are serial on this CPU, and a slow-path owner fences them), and
 * everyone else only moves tail, by a 64-bit CAS that compares head too.  A
 * CAS before our store keeps its tail (we write the other half); one after it
 * sees the new head, or fails on the old one and retries.  x86 stores are
 * seen in order, so whoever sees the new head sees the slot.
 *
 *     undo = NULL;                          on abort: if (undo) CAS(undo, obj, NULL)
 *     local, ring, head, tail as above;     else: return 0
 *     if (head - tail >= ring->size) return 0;                  full
 *     slot = &ring->slots[head & (ring->size - 1)];
 *     if (*slot != NULL) return 0;          a thief's, or a pop's clear to come
 *     undo = slot; *slot = obj;
 *     ring->head = head + 1;                commit
 *     local->seq.puts_shared++;             after the sequence
 *     return 1;
 */
static __inline__ __attribute__((always_inline)) int gcpool_fastpath_push_(const size_t *tab,
                                                                            const void *role,
                                                                            void *obj)
{
    __asm__ goto(
        GCPOOL_RSEQ_BEGIN_("xorl %%r11d, %%r11d\n\t",
                           "testq %%r11, %%r11\n\t"
                           "jz 7f\n\t"
                           "movq %[obj], %%rax\n\t"
                           "xorl %%ecx, %%ecx\n\t"
                           "lock cmpxchgq %%rcx, (%%r11)\n\t"
                           "7: ",
                           "%l[full]")
        GCPOOL_RSEQ_HEAD_RING_("%l[full]")
        GCPOOL_RSEQ_INJECT_(5)
        "movl %%ecx, %%r8d\n\t"
        "subl %%eax, %%r8d\n\t"       /* head - tail */
        "cmpl %c[size](%%rdx), %%r8d\n\t"
        "jae %l[full]\n\t"
        "movl %c[size](%%rdx), %%r8d\n\t"
        "decl %%r8d\n\t"
        "andl %%ecx, %%r8d\n\t"
        "leaq %c[slots](%%rdx, %%r8, 8), %%r8\n\t"
        "cmpq $0, (%%r8)\n\t"
        "jne %l[full]\n\t"            /* a thief's, or a pop's clear to come: slow path */
        GCPOOL_RSEQ_INJECT_(6)
        "movq %%r8, %%r11\n\t"        /* from here an abort undoes the slot */
        "movq %[obj], (%%r8)\n\t"
        "incl %%ecx\n\t"
        GCPOOL_RSEQ_INJECT_(7)        /* the slot written, head not yet moved */
        "movl %%ecx, %c[head](%%rdx)\n\t" /* commit: head + 1 publishes the slot */
        "2: incq %c[count](%%r9)\n\t"
        :
        : GCPOOL_RSEQ_INPUTS_(tab, role), GCPOOL_RSEQ_CHAIN_INPUTS_, [obj] "r"(obj),
          [count] "i"(GCPOOL_FASTPATH_LOCAL_PUTS_SHARED)
        : "rax", "rcx", "rdx", "r8", "r9", "r11", "memory", "cc"
        : full);
    return 1;
full:
    return 0;
}

/* pop: reads the object at head - 1, then one CAS moving head back commits;
 * it fails if a thief moved the tail meanwhile.  Not a plain store as in the
 * push: between our read and our store thieves could take every object up to
 * head - 1, ours too.
 *
 * The slot is cleared after the commit (the pool keeps no pointer it handed
 * out), by a second sequence (descriptor 13).  Between the two the popper
 * may be off the CPU for as long as the scheduler likes, its object still in
 * the slot at the head; a push meanwhile finds the slot taken, and the slow
 * path, under the pin, refills it (lib/ring.h, "Slots").  So the clear must
 * never land after such a refill: it stores NULL only if the slot still holds
 * our object, on the CPU we popped on (kept in r11), with the local's pin
 * free - all checked inside the sequence, so no thread of this CPU runs
 * between the check and the store, and a slow path that owns the local
 * preempts us into the abort handler or finds us past the store.  Anywhere
 * else (migrated, pin held, aborted: 14, 15) a CAS clears it.
 *
 *     cpu = this CPU;
 *     local, ring, head, tail as above;     else: return NULL
 *     if (head == tail) return NULL;                            empty
 *     slot = &ring->slots[(head - 1) & (ring->size - 1)];
 *     obj = *slot;
 *     if (!CAS(&ring->head_tail, head << 32 | tail, (head - 1) << 32 | tail))
 *         return NULL;                      commit, unless a thief moved tail
 *     local->seq.hit_shared++;              after the sequence
 *   the clear, a sequence of its own:       on abort: CAS(slot, obj, NULL)
 *     if (this CPU != cpu || local->pin) CAS(slot, obj, NULL);
 *     else if (*slot == obj) *slot = NULL;  commit
 *     return obj;
 */
static __inline__ __attribute__((always_inline)) void *gcpool_fastpath_pop_(const size_t *tab,
                                                                            const void *role)
{
    void *obj;
    __asm__ __volatile__(
        GCPOOL_RSEQ_BEGIN_("", "", "5f")
        "movl %%ecx, %%r11d\n\t"      /* this CPU, for the clear */
        GCPOOL_RSEQ_HEAD_RING_("5f")
        GCPOOL_RSEQ_INJECT_(8)
        "cmpl %%eax, %%ecx\n\t"
        "je 5f\n\t"                   /* empty */
        "movl %c[size](%%rdx), %%r8d\n\t"
        "decl %%r8d\n\t"
        "leal -1(%%rcx), %%r10d\n\t"  /* head - 1 */
        "andl %%r10d, %%r8d\n\t"
        "leaq %c[slots](%%rdx, %%r8, 8), %%r8\n\t"
        "movq (%%r8), %[obj]\n\t"
        "shlq $32, %%rcx\n\t"
        "orq %%rcx, %%rax\n\t"        /* expected: head_tail as we read it */
        "shlq $32, %%r10\n\t"
        "movl %%eax, %%ecx\n\t"
        "orq %%rcx, %%r10\n\t"        /* new: head - 1, same tail */
        GCPOOL_RSEQ_INJECT_(9)
        "lock cmpxchgq %%r10, %c[head_tail](%%rdx)\n\t" /* commit, if head_tail did not move */
        "2: jne 5f\n\t"
        "incq %c[count](%%r9)\n\t"
        /* The clear: descriptor 13, start 11, end 12, abort 15. */
        GCPOOL_RSEQ_DESCRIPTOR_("13", "11", "12", "15")
        GCPOOL_RSEQ_START_("13", "11")
        "cmpl %%fs:%c[cpu_id_start](%[rs]), %%r11d\n\t" /* the CPU we popped on? */
        "jne 14f\n\t"
        "cmpl $0, %c[pin](%%r9)\n\t"
        "jne 14f\n\t"
        "cmpq %[obj], (%%r8)\n\t"
        "jne 12f\n\t"                 /* refilled: no longer ours */
        GCPOOL_RSEQ_INJECT_(10)
        "movq $0, (%%r8)\n\t"         /* commit */
        "12: jmp 6f\n\t"
        GCPOOL_RSEQ_ABORT_("15", "",
                           "14: movq %[obj], %%rax\n\t"
                           "xorl %%ecx, %%ecx\n\t"
                           "lock cmpxchgq %%rcx, (%%r8)\n\t"
                           "jmp 12b\n\t")
        "5: xorl %k[obj], %k[obj]\n\t"
        "6:\n\t"
        : [obj] "=&r"(obj)
        : GCPOOL_RSEQ_INPUTS_(tab, role), GCPOOL_RSEQ_CHAIN_INPUTS_,
          [count] "i"(GCPOOL_FASTPATH_LOCAL_HIT_SHARED)
        : "rax", "rcx", "rdx", "r8", "r9", "r10", "r11", "memory", "cc");
    return obj;
}

/* ---- gcpool_get and gcpool_put --------------------------------------------- */
/* With the fast path off, both sequences give up at the table (no local for
 * any CPU) and the library's entry point takes the general path. */
#ifndef GCPOOL_NO_INLINE
static __inline__ __attribute__((always_inline)) void *gcpool_get_inline_(gcpool_t *pool)
{
    if (__builtin_expect(pool != NULL, 1)) {
        /* The role: the pool's first word. */
        void *obj = gcpool_fastpath_take_(gcpool_fastpath_v3.cpu_local, pool);
        if (__builtin_expect(obj != NULL, 1))
            return obj;
        obj = gcpool_fastpath_pop_(gcpool_fastpath_v3.cpu_local, pool);
        return __builtin_expect(obj != NULL, 1) ? obj : gcpool_fastpath_get_v3(pool);
    }
    return (gcpool_get)(pool);
}

static __inline__ __attribute__((always_inline)) void gcpool_put_inline_(gcpool_t *pool, void *obj)
{
    if (__builtin_expect(pool != NULL && obj != NULL, 1)) {
        if (__builtin_expect(!gcpool_fastpath_fill_(gcpool_fastpath_v3.cpu_local, pool, obj), 0) &&
            __builtin_expect(!gcpool_fastpath_push_(gcpool_fastpath_v3.cpu_local, pool, obj), 0))
            gcpool_fastpath_put_v3(pool, obj);
        return;
    }
    (gcpool_put)(pool, obj);
}

#define gcpool_get(pool) gcpool_get_inline_(pool)
#define gcpool_put(pool, obj) gcpool_put_inline_(pool, obj)
#endif /* GCPOOL_NO_INLINE */
#endif /* x86-64 Linux */
#endif /* GCPOOL_FASTPATH_H */
