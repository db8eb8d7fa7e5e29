/* gcpool/sync.h — Go's sync.Mutex and sync.WaitGroup for C, on Linux futexes.
 *
 * Both types are plain structs: zero-initialised (static storage, memset,
 * GCPOOL_*_INIT) means an unlocked mutex and an empty wait group, so they
 * need no init or destroy call.  Their fields are private: touch them only
 * through the functions below.  Neither may be copied after first use, nor
 * shared between processes (the futexes are process-private).
 *
 * Misuse stops the process: a message on stderr, then abort(), as Go's
 * throw and panic do.
 *
 * Fork.  A child gets a copy of each mutex and wait group as it was at the
 * fork, and only the thread that forked.  So, as with a pthread mutex, what
 * other threads were doing with one is frozen in the child's copy: a mutex
 * another thread held stays locked for ever; and the threads waiting for it
 * are still recorded there (their count, the starving bit, a queue of nodes
 * on their stacks) although the child does not have them, so an unlock in
 * the child may hand the mutex to one of them, and the child's next lock
 * then waits for ever.  A wait group likewise still counts the parent's
 * pending tasks and its waiters.  Neither is safe to use in the child as it
 * is unless no other thread was using it at the fork.  To use one there,
 * reset it first (assign GCPOOL_MUTEX_INIT or GCPOOL_WAITGROUP_INIT), before
 * the child starts threads of its own; and to keep what a mutex guards
 * consistent across the fork, lock it in a pthread_atfork prepare handler,
 * unlock it in the parent's handler, and reset it - not unlock it - in the
 * child's.  gcpool does exactly that for the locks of its own pools, so
 * every pool works in the child, in every mode.
 */
#ifndef GCPOOL_SYNC_H
#define GCPOOL_SYNC_H

#include <stdbool.h>
#include <stdint.h>

#include <gcpool.h> /* GCPOOL_API */

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Mutex ------------------------------------------------------------------
 * Go's two modes.  Normal: waiters queue FIFO, but a woken waiter competes
 * with running threads for the lock (which usually win, being on a CPU); a
 * waiter that loses goes back to the head of the queue.  A waiter kept out
 * over 1 ms switches the mutex to starvation mode: unlock then hands the lock
 * straight to the first waiter, and newcomers neither spin nor grab it but
 * queue at the tail.  Starvation ends when the waiter handed the lock is the
 * last one, or waited under 1 ms.
 *
 * Unlocking a mutex not locked stops the process ("unlock of unlocked mutex").
 * A locked mutex belongs to no thread: one thread may lock it and another
 * unlock it.  Each unlock synchronises with (happens before) the next lock. */

struct gcpool_mutex_waiter; /* private, defined in lib/mutex.c */

typedef struct gcpool_mutex {
    uint32_t state;                    /* locked, woken, starving bits; waiters above */
    uint32_t sema;                     /* wake-up permits, Go's Mutex.sema */
    uint32_t qlock;                    /* guards the queue below */
    uint32_t nwait;                    /* threads queued */
    struct gcpool_mutex_waiter *head;  /* wait queue: threads blocked in lock */
    struct gcpool_mutex_waiter *tail;
} gcpool_mutex_t;

/* Every field spelled out: C++ -Wextra warns about a bare {0}. */
#define GCPOOL_MUTEX_INIT {0, 0, 0, 0, 0, 0}

GCPOOL_API void gcpool_mutex_lock(gcpool_mutex_t *m);
/* True when it acquired the lock; never waits.  A failed trylock establishes
 * no ordering with other threads. */
GCPOOL_API bool gcpool_mutex_trylock(gcpool_mutex_t *m);
GCPOOL_API void gcpool_mutex_unlock(gcpool_mutex_t *m);

/* For tests and diagnostics only: whether m is in starvation mode now.  The
 * answer may be stale by the time it is returned. */
GCPOOL_API bool gcpool_mutex_starving(const gcpool_mutex_t *m);

/* ---- WaitGroup --------------------------------------------------------------
 * A counter of pending tasks: add(n) before starting n tasks, done() as each
 * finishes, wait() blocks until the counter is zero.  Every done() happens
 * before the return of the wait() it releases.
 *
 * As in Go: add() with a positive delta while the counter is zero must happen
 * before wait(); a wait group reused for a new batch needs every wait() of the
 * previous batch to have returned first.  Misuse stops the process with Go's
 * messages ("sync: negative WaitGroup counter", "sync: WaitGroup misuse: Add
 * called concurrently with Wait", "sync: WaitGroup is reused before previous
 * Wait has returned"). */

typedef struct gcpool_waitgroup {
#if defined(__GNUC__)
    __attribute__((aligned(8))) /* 64-bit atomics need it; i386 aligns to 4 */
#endif
    uint64_t state; /* counter in the high 32 bits, waiters in the low 32 */
    uint32_t sema;  /* wake-up permits (futexes wait on 32-bit words) */
} gcpool_waitgroup_t;

#define GCPOOL_WAITGROUP_INIT {0, 0}

GCPOOL_API void gcpool_waitgroup_add(gcpool_waitgroup_t *wg, int64_t delta);
GCPOOL_API void gcpool_waitgroup_done(gcpool_waitgroup_t *wg); /* add(wg, -1) */
GCPOOL_API void gcpool_waitgroup_wait(gcpool_waitgroup_t *wg);

#ifdef __cplusplus
}
#endif

#endif
