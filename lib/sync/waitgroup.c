/* Go's sync.WaitGroup (waitgroup.go).
 *
 * wg->state holds the counter (high 32 bits, signed) and the number of
 * waiters (low 32) in one word, so that "counter reached zero" and "who is
 * waiting" are read together by one atomic operation.  Waiters sleep on
 * wg->sema, a counting semaphore: the add() that brings the counter to zero
 * resets state to 0 and releases one permit per waiter.
 *
 * Why the misuse checks hold: once the counter reaches zero with waiters, no
 * correct program changes state until those waiters return (adds from zero
 * must happen before wait(); a wait() seeing zero does not count itself).  So
 * a change seen in that window, or a non-zero state seen by a waiter just
 * released, can only be misuse.  The checks are cheap, not exhaustive.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* syscall */
#endif
#include <limits.h>
#include <stdint.h>

#include "gcpool/sync.h"
#include "lib/futex.h"
#include "lib/sync/runtime.h"

/* Takes one permit, sleeping while there is none. */
static void sema_acquire(uint32_t *sema)
{
    for (;;) {
        uint32_t v = __atomic_load_n(sema, __ATOMIC_RELAXED);
        /* Acquire: pairs with sema_release, whose caller's state (and the
         * done()s before it) must be visible once we return. */
        while (v != 0)
            if (__atomic_compare_exchange_n(sema, &v, v - 1, 1, __ATOMIC_ACQUIRE,
                                            __ATOMIC_RELAXED))
                return;
        /* The kernel re-checks *sema == 0 atomically, so a release between
         * our load and the sleep makes the wait return at once. */
        gcp_futex_wait(sema, 0);
    }
}

static void sema_release(uint32_t *sema, uint32_t n)
{
    __atomic_fetch_add(sema, n, __ATOMIC_RELEASE);
    /* Wake them all: any n threads taking the n permits are all waiters of
     * this batch, so it does not matter which ones the kernel picks. */
    gcp_futex_wake(sema, n > INT_MAX ? INT_MAX : (int)n);
}

void gcpool_waitgroup_add(gcpool_waitgroup_t *wg, int64_t delta)
{
    /* Acq_rel: release so this add (a done()) happens before a wait() that
     * sees its result; acquire so that, if it brings the counter to zero, the
     * earlier done()s (in this word's release sequence) happen before the
     * permits we release below, and through them before the waiters return. */
    uint64_t state = __atomic_add_fetch(&wg->state, (uint64_t)delta << 32, __ATOMIC_ACQ_REL);
    int32_t v = (int32_t)(state >> 32);
    uint32_t w = (uint32_t)state;
    if (v < 0)
        gcp_sync_fatal("sync: negative WaitGroup counter");
    /* Raised the counter from zero while threads wait: their wait() began
     * before this add, so the add was not ordered before the wait(). */
    if (w != 0 && delta > 0 && v == (int32_t)delta)
        gcp_sync_fatal("sync: WaitGroup misuse: Add called concurrently with Wait");
    if (v > 0 || w == 0)
        return;
    /* We brought the counter to zero with waiters: nothing else may touch
     * state now (see the top of the file), so check that cheaply, then reset
     * it for reuse before releasing the waiters.  Relaxed: the permits'
     * release orders the reset before the waiters' check of state. */
    if (__atomic_load_n(&wg->state, __ATOMIC_RELAXED) != state)
        gcp_sync_fatal("sync: WaitGroup misuse: Add called concurrently with Wait");
    __atomic_store_n(&wg->state, 0, __ATOMIC_RELAXED);
    sema_release(&wg->sema, w);
}

void gcpool_waitgroup_done(gcpool_waitgroup_t *wg)
{
    gcpool_waitgroup_add(wg, -1);
}

void gcpool_waitgroup_wait(gcpool_waitgroup_t *wg)
{
    /* Acquire: a zero counter means every done() happens before our return. */
    uint64_t state = __atomic_load_n(&wg->state, __ATOMIC_ACQUIRE);
    for (;;) {
        if ((int32_t)(state >> 32) == 0)
            return;
        /* Count ourselves as a waiter.  On failure state is reloaded, with
         * acquire for the zero check above. */
        if (__atomic_compare_exchange_n(&wg->state, &state, state + 1, 1, __ATOMIC_ACQUIRE,
                                        __ATOMIC_ACQUIRE)) {
            sema_acquire(&wg->sema);
            /* The releasing add() reset state to 0 before giving our permit;
             * anything else means a new batch began before we returned. */
            if (__atomic_load_n(&wg->state, __ATOMIC_RELAXED) != 0)
                gcp_sync_fatal("sync: WaitGroup is reused before previous Wait has returned");
            return;
        }
    }
}
