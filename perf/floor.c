/* floor — what a per-CPU cache's put+get pair costs at the least, here,
 * beside gcpool's own pair, in go test's format (one thread: -cpu 1).
 *
 *   perf/floor -cpu 1 -benchtime 1s -count 5
 *
 *   BenchmarkFloor/slot     the CPU read from the rseq area, then one store
 *                           into that CPU's slot (put) and one load and one
 *                           store of NULL (get): no restartable sequence, so
 *                           not safe against preemption, only a floor
 *   BenchmarkFloor/rseq     the same slot inside two minimal restartable
 *                           sequences (librseq's pattern: publish the
 *                           descriptor, read the CPU, find the slot, check,
 *                           one committing store): the least a correct pair
 *                           does
 *   BenchmarkPool           gcpool_put + gcpool_get of one static object, the
 *                           inline fast path, as gcpool-bench's
 *   BenchmarkPoolCall       the same through the library's functions
 *                           ((gcpool_put)(p, o), (gcpool_get)(p))
 *
 * perf/run runs it in alternated rounds and puts the pool's ns/op over the
 * floors'; perf/README.md counts the instructions of each pair.  Linux
 * x86-64 with glibc's rseq registration only; elsewhere each benchmark says
 * SKIP. */
#define GC_THREADS
#include <gc/gc.h>

#include <gcpool.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && __has_include(<sys/rseq.h>)
#include <sys/rseq.h>
#define FLOOR_RSEQ 1
#endif

#include "perf/bench.h"

enum { MAX_CPUS = 1024, STRIDE = 8 }; /* a slot per CPU, one cache line apart */
static void *slots[MAX_CPUS * STRIDE];
static char the_item;
#define ITEM ((void *)&the_item)

#ifdef FLOOR_RSEQ
static int rseq_ok(void) { return __rseq_size >= 20; }

/* The rseq area's cpu_id (offset 4), %fs-relative: what every sequence reads. */
static inline uint32_t cpu_now(void)
{
    uint32_t cpu;
    __asm__ __volatile__("movl %%fs:4(%1), %0" : "=r"(cpu) : "r"(__rseq_offset));
    return cpu;
}

static void slot_body(struct bench_pb *pb, void *arg)
{
    (void)arg;
    while (bench_pb_next(pb)) {
        void *volatile *s = &slots[(cpu_now() % MAX_CPUS) * STRIDE];
        *s = ITEM; /* put */
        s = &slots[(cpu_now() % MAX_CPUS) * STRIDE];
        void *obj = *s; /* get */
        *s = NULL;
        __asm__ __volatile__("" : : "r"(obj));
    }
}

/* A sequence's descriptor (3), its abort handler (4, after the signature
 * the kernel checks) which starts over, and the entry (0) that publishes the
 * descriptor; the critical section (1) ends at its committing store (2). */
#define FLOOR_RSEQ_BEGIN                                                                           \
    ".pushsection __rseq_cs, \"aw\"\n\t"                                                           \
    ".balign 32\n\t"                                                                               \
    "3: .long 0, 0\n\t"                                                                            \
    ".quad 1f, (2f - 1f), 4f\n\t"                                                                  \
    ".popsection\n\t"                                                                              \
    ".pushsection __rseq_failure, \"ax\"\n\t"                                                      \
    ".byte 0x0f, 0xb9, 0x3d\n\t"                                                                   \
    ".long 0x53053053\n\t"                                                                         \
    "4: jmp 0f\n\t"                                                                                \
    ".popsection\n\t"                                                                              \
    "0: leaq 3b(%%rip), %%rax\n\t"                                                                 \
    "movq %%rax, %%fs:8(%[rs])\n\t"                                                                \
    "1: movl %%fs:4(%[rs]), %%ecx\n\t"                                                             \
    "cmpl %[max], %%ecx\n\t"                                                                       \
    "jae 5f\n\t"                                                                                   \
    "shlq $6, %%rcx\n\t"                                                                           \
    "addq %[slots], %%rcx\n\t"

static inline int rseq_fill(void *obj)
{
    int done;
    __asm__ __volatile__(FLOOR_RSEQ_BEGIN
                         "cmpq $0, (%%rcx)\n\t"
                         "jne 5f\n\t"
                         "movq %[obj], (%%rcx)\n\t" /* commit */
                         "2: movl $1, %[done]\n\t"
                         "jmp 6f\n\t"
                         "5: xorl %[done], %[done]\n\t"
                         "6:\n\t"
                         : [done] "=&r"(done)
                         : [rs] "r"(__rseq_offset), [max] "i"(MAX_CPUS), [slots] "r"(slots),
                           [obj] "r"(obj)
                         : "rax", "rcx", "memory", "cc");
    return done;
}

static inline void *rseq_take(void)
{
    void *obj;
    __asm__ __volatile__(FLOOR_RSEQ_BEGIN
                         "movq (%%rcx), %[obj]\n\t"
                         "testq %[obj], %[obj]\n\t"
                         "jz 2f\n\t"
                         "movq $0, (%%rcx)\n\t" /* commit */
                         "2: jmp 6f\n\t"
                         "5: xorl %k[obj], %k[obj]\n\t"
                         "6:\n\t"
                         : [obj] "=&r"(obj)
                         : [rs] "r"(__rseq_offset), [max] "i"(MAX_CPUS), [slots] "r"(slots)
                         : "rax", "rcx", "memory", "cc");
    return obj;
}

static void rseq_body(struct bench_pb *pb, void *arg)
{
    (void)arg;
    while (bench_pb_next(pb)) {
        if (!rseq_fill(ITEM)) /* the slot is full: a floor/slot run migrated mid-pair */
            (void)rseq_take();
        (void)rseq_take();
    }
}
#endif /* FLOOR_RSEQ */

static void pool_body(struct bench_pb *pb, void *arg)
{
    gcpool_t *p = arg;
    while (bench_pb_next(pb)) {
        gcpool_put(p, ITEM);
        (void)gcpool_get(p);
    }
}

static void call_body(struct bench_pb *pb, void *arg)
{
    gcpool_t *p = arg;
    while (bench_pb_next(pb)) {
        (gcpool_put)(p, ITEM);
        (void)(gcpool_get)(p);
    }
}

static bool one_thread(struct bench_b *b)
{
    if (b->procs != 1) {
        bench_skip(b, "a floor of one thread: run it with -cpu 1");
        return false;
    }
#ifdef FLOOR_RSEQ
    if (rseq_ok())
        return true;
#endif
    bench_skip(b, "needs glibc's rseq registration on x86-64 Linux");
    return false;
}

static void BenchmarkFloorSlot(struct bench_b *b)
{
#ifdef FLOOR_RSEQ
    if (one_thread(b))
        bench_run_parallel(b, slot_body, NULL);
#else
    one_thread(b);
#endif
}

static void BenchmarkFloorRseq(struct bench_b *b)
{
#ifdef FLOOR_RSEQ
    memset(slots, 0, sizeof slots);
    if (one_thread(b))
        bench_run_parallel(b, rseq_body, NULL);
#else
    one_thread(b);
#endif
}

static gcpool_t *pool;

static void BenchmarkPool(struct bench_b *b)
{
    if (one_thread(b))
        bench_run_parallel(b, pool_body, pool);
}

static void BenchmarkPoolCall(struct bench_b *b)
{
    if (one_thread(b))
        bench_run_parallel(b, call_body, pool);
}

static const struct bench_def benchmarks[] = {
    {"BenchmarkFloor/slot", BenchmarkFloorSlot},
    {"BenchmarkFloor/rseq", BenchmarkFloorRseq},
    {"BenchmarkPool", BenchmarkPool},
    {"BenchmarkPoolCall", BenchmarkPoolCall},
};

int main(int argc, char **argv)
{
    GC_INIT();
    if (!(pool = gcpool_create(NULL))) {
        perror("gcpool_create");
        return 1;
    }
    return bench_main(argc, argv, benchmarks, sizeof benchmarks / sizeof benchmarks[0]);
}
