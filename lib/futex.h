/* Internal helpers shared by mutex.c and waitgroup.c: Linux futex calls, a
 * CPU pause, a tiny queue lock, a monotonic clock and the fatal-error exit.
 *
 * The public structs in <gcpool/sync.h> hold plain integers (not _Atomic) so
 * the header stays usable from C++ and zero-initialisable; every access to
 * them therefore goes through GCC's __atomic builtins, never a plain load or
 * store.  Futexes are process-private (FUTEX_*_PRIVATE): like Go's, these
 * primitives do not work across processes in shared memory. */
#ifndef GCPOOL_FUTEX_H
#define GCPOOL_FUTEX_H

#include <linux/futex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Sleeps while *addr == expected.  Returns early on a wake, a signal, or when
 * *addr already differs; callers re-check their condition in a loop, so the
 * reason does not matter. */
static inline void gcp_futex_wait(uint32_t *addr, uint32_t expected)
{
    syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

/* Wakes up to n sleepers on addr.  Waking an address nobody sleeps on is
 * harmless; every waiter here tolerates spurious wakes. */
static inline void gcp_futex_wake(uint32_t *addr, int n)
{
    syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

/* One spin-wait hint: frees pipeline resources for the sibling hyperthread. */
static inline void gcp_sync_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* The queue lock: one word, 0 free, 1 held, 2 held with sleepers (Drepper's
 * "Futexes Are Tricky", mutex 2).  It guards a few pointer updates only, so a
 * short spin wins almost always; sleeping covers a holder preempted inside
 * (likely when threads outnumber cores), where pure spinning would burn the
 * holder's whole time slice. */
static inline void gcp_qlock_slow(uint32_t *l)
{
    for (int spin = 0; spin < 100; spin++) {
        gcp_sync_pause();
        uint32_t expected = 0;
        /* Acquire: the previous holder's queue updates happen-before ours. */
        if (__atomic_load_n(l, __ATOMIC_RELAXED) == 0 &&
            __atomic_compare_exchange_n(l, &expected, 1, 1, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
            return;
    }
    /* Mark sleepers (2) so the release wakes one; acquire as above. */
    while (__atomic_exchange_n(l, 2, __ATOMIC_ACQUIRE) != 0)
        gcp_futex_wait(l, 2);
}

static inline void gcp_qlock_acquire(uint32_t *l)
{
    uint32_t expected = 0;
    /* Acquire: pairs with the release in gcp_qlock_release. */
    if (__builtin_expect(__atomic_compare_exchange_n(l, &expected, 1, 0, __ATOMIC_ACQUIRE,
                                                     __ATOMIC_RELAXED),
                         1))
        return;
    gcp_qlock_slow(l);
}

static inline void gcp_qlock_release(uint32_t *l)
{
    /* Release: our queue updates happen-before the next holder's reads. */
    if (__atomic_exchange_n(l, 0, __ATOMIC_RELEASE) == 2)
        gcp_futex_wake(l, 1);
}

/* Monotonic nanoseconds, for the mutex's starvation threshold. */
static inline int64_t gcp_nanotime(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Go throws or panics on misuse of its sync types; a C caller cannot recover
 * from a broken lock either, so print the same message and abort. */
__attribute__((noreturn, cold)) static inline void gcp_sync_fatal(const char *msg)
{
    fprintf(stderr, "fatal error: %s\n", msg);
    abort();
}

#endif
