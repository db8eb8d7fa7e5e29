/* The futex lock, and the Linux futex calls under it: one word, 0 free, 1 held,
 * 2 held with sleepers (Drepper, "Futexes Are Tricky", mutex 2).
 *
 * Two users: a pool's lock pin and first-use lock (lock.h adds the thread's
 * busy section around it) and the wait queue of Go's Mutex (sync/mutex.c).
 * Each guards a few dozen instructions that never allocate nor call user code,
 * so a short spin before sleeping wins almost always; sleeping covers a holder
 * preempted inside (likely when threads outnumber cores), where pure spinning
 * would burn the holder's whole time slice.
 *
 * The word is a plain uint32_t reached only through GCC's __atomic builtins:
 * the public structs of <gcpool/sync.h> hold plain integers so that header
 * stays usable from C++ and zero-initialisable.  Futexes are process-private
 * (FUTEX_*_PRIVATE): nothing here works across processes in shared memory. */
#ifndef GCPOOL_FUTEX_H
#define GCPOOL_FUTEX_H

#include <linux/futex.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/syscall.h>
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
static inline void gcp_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

enum { GCP_FUTEX_FREE = 0, GCP_FUTEX_HELD = 1, GCP_FUTEX_SLEEPERS = 2 };

/* true when acquired; never waits. */
static inline bool gcp_futex_trylock(uint32_t *word)
{
    uint32_t expected = GCP_FUTEX_FREE;
    /* Acquire: pairs with the release in gcp_futex_unlock, so the previous
     * holder's writes happen-before ours. */
    return __atomic_compare_exchange_n(word, &expected, GCP_FUTEX_HELD, false, __ATOMIC_ACQUIRE,
                                       __ATOMIC_RELAXED);
}

static inline void gcp_futex_lock_slow(uint32_t *word)
{
    for (int spin = 0; spin < 100; spin++) {
        gcp_cpu_relax();
        if (__atomic_load_n(word, __ATOMIC_RELAXED) == GCP_FUTEX_FREE && gcp_futex_trylock(word))
            return;
    }
    /* Mark sleepers so the holder's unlock wakes one.  Acquire as in trylock.
     * Once a sleeper marked the word, every later taker keeps it marked: an
     * extra wake is cheap, a lost one is a hang. */
    while (__atomic_exchange_n(word, GCP_FUTEX_SLEEPERS, __ATOMIC_ACQUIRE) != GCP_FUTEX_FREE)
        gcp_futex_wait(word, GCP_FUTEX_SLEEPERS);
}

static inline void gcp_futex_lock(uint32_t *word)
{
    if (__builtin_expect(!gcp_futex_trylock(word), 0))
        gcp_futex_lock_slow(word);
}

static inline void gcp_futex_unlock(uint32_t *word)
{
    /* Release: our writes under the lock happen-before the next holder's reads. */
    if (__atomic_exchange_n(word, GCP_FUTEX_FREE, __ATOMIC_RELEASE) == GCP_FUTEX_SLEEPERS)
        gcp_futex_wake(word, 1);
}

#endif
