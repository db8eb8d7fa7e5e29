/* A small futex lock guarding one local's owner operations (the lock pin).
 * States: 0 free, 1 held, 2 held with sleepers (Drepper, "Futexes Are Tricky").
 * Held only for a few dozen instructions that never allocate nor call user code,
 * so a short spin before sleeping wins almost always.  Holding one is a busy
 * section of the thread (reentry.h): a signal handler's pool call that finds
 * it does not wait for the lock its own thread holds. */
#ifndef GCPOOL_LOCK_H
#define GCPOOL_LOCK_H

#include <linux/futex.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "reentry.h"

typedef struct { _Atomic int state; } gcp_lock_t;

static inline void gcp_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static inline void gcp_lock_wait(gcp_lock_t *l)
{
    syscall(SYS_futex, &l->state, FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0);
}

static inline bool gcp_trylock_raw(gcp_lock_t *l)
{
    int expected = 0;
    /* Acquire: pairs with the release in gcp_unlock. */
    return atomic_compare_exchange_strong_explicit(&l->state, &expected, 1, memory_order_acquire,
                                                   memory_order_relaxed);
}

/* true when acquired; never waits. */
static inline bool gcp_trylock(gcp_lock_t *l)
{
    gcp_busy_enter(); /* before the CAS: a handler must never see it held and us not busy */
    bool got = gcp_trylock_raw(l);
    if (!got)
        gcp_busy_leave();
    return got;
}

static inline void gcp_lock_slow(gcp_lock_t *l)
{
    for (int spin = 0; spin < 100; spin++) {
        gcp_cpu_relax();
        if (atomic_load_explicit(&l->state, memory_order_relaxed) == 0 && gcp_trylock_raw(l))
            return;
    }
    /* Mark sleepers (2) so the holder's unlock wakes one.  Acquire: pairs with the
     * release in gcp_unlock. */
    while (atomic_exchange_explicit(&l->state, 2, memory_order_acquire) != 0)
        gcp_lock_wait(l);
}

static inline void gcp_lock(gcp_lock_t *l)
{
    gcp_busy_enter();
    if (__builtin_expect(!gcp_trylock_raw(l), 0))
        gcp_lock_slow(l);
}

static inline void gcp_unlock(gcp_lock_t *l)
{
    /* Release: our writes under the lock happen-before the next holder's reads. */
    if (atomic_exchange_explicit(&l->state, 0, memory_order_release) == 2)
        syscall(SYS_futex, &l->state, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    gcp_busy_leave();
}

/* In a forked child only, on a lock its one thread holds: frees it without
 * waking anyone, for the sleepers it may record did not follow the fork. */
static inline void gcp_lock_reset(gcp_lock_t *l)
{
    atomic_store_explicit(&l->state, 0, memory_order_relaxed); /* one thread: no ordering */
}

#endif
