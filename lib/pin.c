/* Pinning: the choice of method, the lock pin's private-slot operations, and
 * the fence a cycle needs under rseq.  The sequences themselves are inline in
 * gcpool/fastpath.h (pin.h wraps them), on the hot path. */
#include "lib/pin.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#if __has_include(<linux/membarrier.h>)
#include <linux/membarrier.h> /* its commands are an enum: test the header, not a macro */
#define GCP_HAVE_MEMBARRIER 1
#endif

#include "lib/env.h"
#include "lib/report.h"

bool gcp_pin_rseq;

bool gcp_pin_fast;

/* Exported (gcpool/fastpath.h), and written by the library through the GOT
 * like any program: a program that refers to it may hold the one copy (a copy
 * relocation), so no hidden alias may stand in for it here.  All zero, no
 * local for any CPU, until gcp_pin_fast_on copies the library's table in. */
struct gcpool_fastpath gcpool_fastpath_v3;

#ifdef GCP_PIN_RSEQ_POSSIBLE
/* Zero, as gcpool_fastpath_v3, until choose() fills it. */
struct gcpool_fastpath gcp_pin_table;
#endif

/* Why this process cannot use rseq, or NULL when it can. */
static const char *rseq_impossible(void)
{
#ifndef GCP_PIN_RSEQ_POSSIBLE
#if defined(GCPOOL_FASTPATH_TSAN_)
    return "built with ThreadSanitizer, which cannot see inside a sequence";
#else
    return "not built for x86-64 with <sys/rseq.h>";
#endif
#else
    if (__rseq_size == 0)
        return "glibc did not register rseq (valgrind, glibc.pthread.rseq=0 or an old kernel)";
    if ((int)gcp_pin_rseq_area()->cpu_id < 0)
        return "this thread's rseq area is not registered";
#ifdef GCP_HAVE_MEMBARRIER
    /* Cycles fence running sequences with membarrier; without it they could
     * not take objects out of private slots safely. */
    if (syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ, 0, 0) != 0)
        return "membarrier has no rseq fence here (Linux < 5.10)";
    return NULL;
#else
    return "built without <linux/membarrier.h>";
#endif
#endif
}

static void choose(void)
{
    long want = gcp_env_long(GCP_ENV_PIN);
    if (want == GCP_PIN_LOCK)
        return;
    const char *why = rseq_impossible();
    if (why) {
        if (want == GCP_PIN_RSEQ)
            gcp_warn("gcpool: GCPOOL_PIN=rseq is not possible: %s; using the lock pin", why);
        return;
    }
#ifdef GCP_PIN_RSEQ_POSSIBLE
    /* One to one: a CPU the topology gives no local of its own (not allowed at
     * start, hot-plugged later) gets none here, and its threads take the slow
     * paths, which fence the sequences of the local they borrow. */
    const struct gcp_topology *t = gcp_topology();
    size_t stride = gcp_local_stride();
    for (unsigned cpu = 0; cpu < GCP_PIN_MAX_CPUS; cpu++)
        gcp_pin_table.cpu_local[cpu] =
            cpu < t->ncpu_table && t->cpu_to_local[cpu] >= 0
                ? sizeof(struct gcp_locals) + (size_t)t->cpu_to_local[cpu] * stride
                : GCP_PIN_NO_LOCAL;
    gcp_pin_rseq = true;
#endif
}

static void fast_on(void)
{
#ifdef GCP_PIN_RSEQ_POSSIBLE
    /* Plain stores, before the pool whose creation asked for them is
     * returned: programs' sequences see them through whatever hands them
     * that pool (fastpath.h). */
    memcpy(gcpool_fastpath_v3.cpu_local, gcp_pin_table.cpu_local, sizeof gcp_pin_table.cpu_local);
    /* Relaxed: as the stores above; the library's own paths test it. */
    __atomic_store_n(&gcp_pin_fast, true, __ATOMIC_RELAXED);
#endif
}

void gcp_pin_fast_on(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, fast_on);
}

void gcp_pin_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, choose);
}

const char *gcp_pin_name(void)
{
    gcp_pin_init();
    return gcp_pin_rseq ? "rseq" : "lock";
}

void gcp_pin_fence(void)
{
#if defined(GCP_PIN_RSEQ_POSSIBLE) && defined(GCP_HAVE_MEMBARRIER)
    if (gcp_pin_rseq && syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ, 0, 0) != 0) {
        /* Registered at start, so this cannot fail; if it did, a cycle could
         * hand one object to two users: stop rather than corrupt. */
        perror("gcpool: membarrier(PRIVATE_EXPEDITED_RSEQ)");
        abort();
    }
#endif
}

void gcp_pin_after_fork(void)
{
#if defined(GCP_PIN_RSEQ_POSSIBLE) && defined(GCP_HAVE_MEMBARRIER)
    /* membarrier registrations belong to the address space, and the child has
     * a new one.  If the child cannot register, it must not use rseq. */
    if (gcp_pin_rseq &&
        syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ, 0, 0) != 0) {
        gcp_pin_rseq = false;
        /* Relaxed, plain: the child has one thread yet. */
        __atomic_store_n(&gcp_pin_fast, false, __ATOMIC_RELAXED);
        memset(gcpool_fastpath_v3.cpu_local, 0, sizeof gcpool_fastpath_v3.cpu_local);
    }
#endif
}

uint64_t gcp_pin_restarts(void)
{
#ifdef GCP_PIN_RSEQ_POSSIBLE
    /* Relaxed: the abort handlers' locked increments make it untorn. */
    return __atomic_load_n(&gcp_pin_table.restarts, __ATOMIC_RELAXED) +
           __atomic_load_n(&gcpool_fastpath_v3.restarts, __ATOMIC_RELAXED);
#else
    return 0;
#endif
}

/* Whether cpu has a local of its own that its sequences use. */
static bool cpu_has_own_local(int cpu)
{
#ifdef GCP_PIN_RSEQ_POSSIBLE
    return cpu >= 0 && cpu < GCP_PIN_MAX_CPUS && gcp_pin_table.cpu_local[cpu] != GCP_PIN_NO_LOCAL;
#else
    (void)cpu;
    return false;
#endif
}

struct gcp_local *gcp_pin_owner(struct gcp_locals *a, unsigned *self)
{
    const struct gcp_topology *t = gcp_topology();
    for (;;) {
        int cpu = gcp_current_cpu();
        *self = gcp_topology_local_of(t, cpu);
        struct gcp_local *l = gcp_pin(a, *self);
        if (!gcp_pin_rseq)
            return l;
        if (!cpu_has_own_local(cpu)) {
            /* We borrow another CPU's local: abort that CPU's sequences (they
             * restart, see the pin held and take the slow path).  Rare. */
            gcp_pin_fence();
            return l;
        }
        /* Still on cpu after taking its lock: any sequence that saw the lock
         * free has since been preempted by us, so it committed or restarts. */
        if (gcp_current_cpu() == cpu)
            return l;
        gcp_unpin(l); /* migrated meanwhile: the new CPU's local then */
    }
}

void *gcp_pin_lock_take_private(struct gcp_locals *_Atomic *role)
{
    /* Acquire: pairs with the release stores of first use and of a cycle. */
    struct gcp_locals *a = gcp_locals_real(atomic_load_explicit(role, memory_order_acquire));
    if (!a)
        return NULL;
    struct gcp_local *l = gcp_pin(a, gcp_current_local(gcp_topology()));
    /* Relaxed: the pin orders these; atomic only for the statistics' racy reads. */
    void *obj = atomic_load_explicit(&l->private_, memory_order_relaxed);
    atomic_store_explicit(&l->private_, NULL, memory_order_relaxed);
    gcp_unpin(l);
    return obj;
}

bool gcp_pin_lock_fill_private(struct gcp_locals *_Atomic *role, void *obj)
{
    struct gcp_locals *a = gcp_locals_real(atomic_load_explicit(role, memory_order_acquire));
    if (!a)
        return false;
    struct gcp_local *l = gcp_pin(a, gcp_current_local(gcp_topology()));
    bool done = atomic_load_explicit(&l->private_, memory_order_relaxed) == NULL;
    if (done) {
        atomic_store_explicit(&l->private_, obj, memory_order_relaxed);
        gcp_count(&l->fills, 1);
    }
    gcp_unpin(l);
    return done;
}
