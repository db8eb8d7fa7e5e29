/* gcpool's inline fast path.  Included by <gcpool.h>; not a header of its own.
 *
 * On x86-64 Linux, gcpool_get and gcpool_put are also function-like macros
 * that first try this CPU's private slot in place, exactly as the library's
 * own functions would: one restartable sequence (rseq) each, no call.  Two
 * calls into a shared library cost this machine more than the slot itself
 * (perf/README.md).  When the slot cannot serve - empty, full, the pool's
 * first use, a CPU without a local - they call the library past the slot; when
 * the fast path is off - the lock pin in force, checked mode, no rseq - they
 * call gcpool_get and gcpool_put.
 *
 *   GCPOOL_NO_INLINE   defined before including <gcpool.h>: always call.
 *   (gcpool_get)(p)    calls the function, as does taking its address.
 *
 * What follows is a contract between programs compiled against this header
 * and the library: a pool's first word points to the header of its current
 * array of locals, and the local of a CPU sits GCPOOL_FASTPATH_LOCALS_HEADER
 * bytes past that header plus the CPU's entry in cpu_local; a local begins
 * with its private slot and then the count of fills.  The library checks it when it is built
 * (lib/pool.c).  A library that changes it exports gcpool_fastpath_v2 and
 * keeps gcpool_fastpath_v1 with `on` 0, so that programs built against this
 * header go on working, through calls.
 */
#ifndef GCPOOL_FASTPATH_H
#define GCPOOL_FASTPATH_H

#define GCPOOL_FASTPATH_MAX_CPUS 1024        /* OS CPU numbers served; higher ones call */
#define GCPOOL_FASTPATH_NO_LOCAL ((size_t)-1) /* a CPU without a local of its own */
#define GCPOOL_FASTPATH_LOCALS_HEADER 32     /* bytes from an array's header to its locals */
#define GCPOOL_FASTPATH_LOCAL_FILLS 8        /* byte offset of a local's count of fills */

/* What the sequences read.  Set by the library before its first pool exists,
 * read with relaxed loads: a pool reaches another thread only through that
 * thread's own synchronisation, which orders these stores before it. */
struct gcpool_fastpath {
    int on;                /* 1: rseq pin in force and checked mode off; 0: call */
    ptrdiff_t rseq_offset; /* the thread's rseq area from the thread pointer (__rseq_offset) */
    uint64_t restarts;     /* sequences the kernel restarted; right before cpu_local,
                              where the abort handler finds it */
    size_t cpu_local[GCPOOL_FASTPATH_MAX_CPUS]; /* OS CPU -> byte offset of its local */
};
extern GCPOOL_API struct gcpool_fastpath gcpool_fastpath_v1;
/* The library's gcpool_get and gcpool_put past the private slot; pool not NULL. */
GCPOOL_API void *gcpool_fastpath_get_v1(gcpool_t *pool);
GCPOOL_API void gcpool_fastpath_put_v1(gcpool_t *pool, void *obj);

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GCPOOL_FASTPATH_TSAN_ 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define GCPOOL_FASTPATH_TSAN_ 1
#endif

/* ThreadSanitizer cannot see inside a sequence: such builds call. */
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(GCPOOL_FASTPATH_TSAN_)
#define GCPOOL_FASTPATH_RSEQ 1

#define GCPOOL_RSEQ_SIG_ "0x53053053" /* glibc's RSEQ_SIG on x86 */

/* The start of every sequence, the library's included.  Emits its descriptor
 * (3) and its abort handler (4, after the signature the kernel checks, in a
 * section of its own), which runs `undo`, counts the restart and starts over;
 * then the entry (0), which runs `init` and publishes the descriptor in the
 * thread's rseq area; then the critical section (1): reads the CPU, finds the
 * array *role points to and this CPU's local in it (in rdx), or goes to 5 when
 * there is none.  The caller ends the critical section (2) right after its
 * one committing store.  Nothing before the commit is visible to anyone, so a
 * restart leaves nothing half done. */
#define GCPOOL_RSEQ_BEGIN_(init, undo)                                                         \
    ".pushsection __rseq_cs, \"aw\"\n\t"                                                       \
    ".balign 32\n\t"                                                                           \
    "3: .long 0, 0\n\t"                                                                        \
    ".quad 1f, (2f - 1f), 4f\n\t"                                                              \
    ".popsection\n\t"                                                                          \
    ".pushsection __rseq_failure, \"ax\"\n\t"                                                  \
    ".byte 0x0f, 0xb9, 0x3d\n\t"                                                               \
    ".long " GCPOOL_RSEQ_SIG_ "\n\t"                                                           \
    "4: " undo "lock incq -8(%[tab])\n\t"                                                      \
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
    "movq (%[role]), %%rdx\n\t" /* the array of locals */                                      \
    "testq %%rdx, %%rdx\n\t"                                                                   \
    "jz 5f\n\t"                                                                                \
    "leaq %c[hdr](%%rdx, %%rax), %%rdx\n\t" /* rdx = this CPU's local */

/* rs reaches the rseq area with one %fs-relative access; tab is also how the
 * abort handler finds the restart count. */
#define GCPOOL_RSEQ_INPUTS_(role)                                                              \
    [rs] "r"(gcpool_fastpath_v1.rseq_offset), [role] "r"(role),                               \
        [tab] "r"(gcpool_fastpath_v1.cpu_local), [max] "i"(GCPOOL_FASTPATH_MAX_CPUS),         \
        [hdr] "i"(GCPOOL_FASTPATH_LOCALS_HEADER)

/* Takes the private object of this CPU's local in the array *role points to:
 * NULL when the slot is empty or there is no such local.  The commit is the
 * store that empties the slot. */
static __inline__ __attribute__((always_inline)) void *gcpool_fastpath_take_(const void *role)
{
    void *obj;
    __asm__ __volatile__(GCPOOL_RSEQ_BEGIN_("", "")
                         "movq (%%rdx), %[obj]\n\t"
                         "testq %[obj], %[obj]\n\t"
                         "jz 2f\n\t"
                         "movq $0, (%%rdx)\n\t" /* commit */
                         "2: jmp 6f\n\t"
                         "5: xorl %k[obj], %k[obj]\n\t"
                         "6:\n\t"
                         : [obj] "=&r"(obj)
                         : GCPOOL_RSEQ_INPUTS_(role)
                         : "rax", "rcx", "rdx", "memory", "cc");
    return obj;
}

/* Puts obj in that slot: 0 when it is taken or there is no such local.  The
 * commit is the store of obj; the fill is counted by one increment right
 * after it, not inside (one store commits): a thread migrated within that one
 * instruction, racing another thread of the CPU it left on the same counter,
 * could lose a count - a statistic off by one, never an object. */
static __inline__ __attribute__((always_inline)) int gcpool_fastpath_fill_(const void *role,
                                                                            void *obj)
{
    int done;
    __asm__ __volatile__(GCPOOL_RSEQ_BEGIN_("", "")
                         "cmpq $0, (%%rdx)\n\t"
                         "jne 5f\n\t"
                         "movq %[obj], (%%rdx)\n\t" /* commit */
                         "2: incq %c[fills](%%rdx)\n\t"
                         "movl $1, %[done]\n\t"
                         "jmp 6f\n\t"
                         "5: xorl %[done], %[done]\n\t"
                         "6:\n\t"
                         : [done] "=&r"(done)
                         : GCPOOL_RSEQ_INPUTS_(role), [fills] "i"(GCPOOL_FASTPATH_LOCAL_FILLS),
                           [obj] "r"(obj)
                         : "rax", "rcx", "rdx", "memory", "cc");
    return done;
}

#ifndef GCPOOL_NO_INLINE
static __inline__ __attribute__((always_inline)) void *gcpool_get_inline_(gcpool_t *pool)
{
    if (__builtin_expect(pool != 0 && __atomic_load_n(&gcpool_fastpath_v1.on, __ATOMIC_RELAXED), 1)) {
        void *obj = gcpool_fastpath_take_(pool); /* the role: the pool's first word */
        return __builtin_expect(obj != 0, 1) ? obj : gcpool_fastpath_get_v1(pool);
    }
    return (gcpool_get)(pool);
}

static __inline__ __attribute__((always_inline)) void gcpool_put_inline_(gcpool_t *pool, void *obj)
{
    if (__builtin_expect(pool != 0 && obj != 0 &&
                             __atomic_load_n(&gcpool_fastpath_v1.on, __ATOMIC_RELAXED),
                         1)) {
        if (__builtin_expect(!gcpool_fastpath_fill_(pool, obj), 0))
            gcpool_fastpath_put_v1(pool, obj);
        return;
    }
    (gcpool_put)(pool, obj);
}

#define gcpool_get(pool) gcpool_get_inline_(pool)
#define gcpool_put(pool, obj) gcpool_put_inline_(pool, obj)
#endif /* GCPOOL_NO_INLINE */
#endif /* x86-64 Linux */
#endif /* GCPOOL_FASTPATH_H */
