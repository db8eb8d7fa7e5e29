/* What counting costs a get+put pair on the private slot (issue: "the overhead
 * of counting is measured in perf, aim <= 10%").  The pool counts a private
 * put by one increment right after the store that fills the slot, and a
 * private get not at all; this runs the library's own sequences (those of
 * gcpool/fastpath.h) against a copy of the put that stores the slot alone, on
 * one thread pinned to one CPU, and prints both.
 *
 *   perf/count-overhead [pairs]      (rseq only: under the lock pin it says so)
 */

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "lib/pin.h"

#ifdef GCP_PIN_RSEQ_POSSIBLE
/* The uncounted baseline: a private slot of 8 bytes, loaded and stored alone. */
static inline void *take_uncounted(struct gcp_locals *_Atomic *role)
{
    void *obj;
    __asm__ __volatile__(GCPOOL_RSEQ_BEGIN_("", "", "5f")
                         "movq %c[priv](%%rdx), %[obj]\n\t"
                         "testq %[obj], %[obj]\n\t"
                         "jz 2f\n\t"
                         "movq $0, %c[priv](%%rdx)\n\t" /* commit */
                         "2: jmp 6f\n\t"
                         "5: xorl %k[obj], %k[obj]\n\t"
                         "6:\n\t"
                         : [obj] "=&r"(obj)
                         : GCPOOL_RSEQ_INPUTS_(gcp_pin_table.cpu_local, role),
                           [priv] "i"(offsetof(struct gcp_local, private_))
                         : "rax", "rcx", "rdx", "memory", "cc");
    return obj;
}

static inline bool fill_uncounted(struct gcp_locals *_Atomic *role, void *obj)
{
    int done;
    __asm__ __volatile__(GCPOOL_RSEQ_BEGIN_("", "", "5f")
                         "xorl %[done], %[done]\n\t"
                         "cmpq $0, %c[priv](%%rdx)\n\t"
                         "jne 2f\n\t"
                         "movl $1, %[done]\n\t"
                         "movq %[obj], %c[priv](%%rdx)\n\t" /* commit */
                         "2: jmp 6f\n\t"
                         "5: xorl %[done], %[done]\n\t"
                         "6:\n\t"
                         : [done] "=&r"(done)
                         : GCPOOL_RSEQ_INPUTS_(gcp_pin_table.cpu_local, role),
                           [priv] "i"(offsetof(struct gcp_local, private_)),
                           [obj] "r"(obj)
                         : "rax", "rcx", "rdx", "memory", "cc");
    return done;
}
#endif

#ifdef GCP_PIN_RSEQ_POSSIBLE
static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}
#endif

int main(int argc, char **argv)
{
    long pairs = argc > 1 ? atol(argv[1]) : 200000000;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu(), &one);
    sched_setaffinity(0, sizeof one, &one);
    gcpool_t *pool = gcpool_create(NULL);
    static int obj;
    gcpool_put(pool, &obj); /* first use: the arrays exist */
    gcpool_get(pool);
    (void)pairs;
    if (!gcp_pin_rseq) {
        printf("count-overhead: the pin is %s; this measures the rseq sequences only\n", gcp_pin_name());
        return 0;
    }
#ifdef GCP_PIN_RSEQ_POSSIBLE
    struct gcp_locals *_Atomic *role = &pool->cur;
    double best[2] = {1e9, 1e9};
    for (int round = 0; round < 5; round++) { /* interleaved, best of 5: a shared machine */
        for (int counted = 0; counted < 2; counted++) {
            double t0 = cpu_seconds();
            for (long i = 0; i < pairs / 5; i++) {
                const size_t *tab = gcp_pin_table.cpu_local;
                if (counted ? !gcpool_fastpath_fill_(tab, role, &obj) : !fill_uncounted(role, &obj))
                    abort();
                if (!(counted ? gcpool_fastpath_take_(tab, role) : take_uncounted(role)))
                    abort();
            }
            double ns = (cpu_seconds() - t0) / (pairs / 5) * 1e9;
            if (ns < best[counted])
                best[counted] = ns;
        }
    }
    printf("private put+get, uncounted: %.2f ns/pair\n", best[0]);
    printf("private put+get, counted:   %.2f ns/pair\n", best[1]);
    printf("counting overhead: %+.1f%%\n", 100.0 * (best[1] - best[0]) / best[0]);
#endif
    return 0;
}
