/* Go's sync.Mutex (mutex.go) on a futex-backed semaphore with a wait queue.
 *
 * m->state packs the lock: bit 0 locked, bit 1 woken (a thread is awake and
 * competing, so unlock need not wake another), bit 2 starving, bits 3..31
 * the number of threads waiting on the semaphore.  The algorithm over state
 * is Go's; see <gcpool/sync.h> for the two modes.
 *
 * The semaphore (m->sema and the queue) stands in for the Go runtime's
 * semacquire/semrelease.  Starvation mode needs a real queue: unlock must hand
 * the lock to the first waiter, not to whichever sleeper the kernel wakes.
 * So each blocked thread puts a node on its own stack into a doubly linked
 * list and sleeps on the futex word inside that node; release wakes exactly
 * the head.  A woken waiter that lost the lock requeues at the head (LIFO),
 * everyone else at the tail (FIFO).
 *
 * Memory order: unlock's decrement of state is a release, and every path that
 * takes the lock reads state (or the semaphore, on handoff) with acquire, so
 * unlock happens before the next lock.  Other read-modify-writes of state
 * may be relaxed: being RMWs, they continue the release sequence of the
 * unlock before them, so a later acquire still synchronises with that unlock.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* syscall, sched_yield */
#endif
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>

#include "gcpool/sync.h"
#include "lib/futex.h"
#include "lib/sync/runtime.h"

enum {
    MUTEX_LOCKED = 1u << 0,
    MUTEX_WOKEN = 1u << 1,
    MUTEX_STARVING = 1u << 2,
    MUTEX_WAITER_SHIFT = 3,
    MUTEX_WAITER = 1u << MUTEX_WAITER_SHIFT,
};

/* Go's starvationThresholdNs. */
#define STARVATION_NS 1000000

/* A thread blocked in sema_acquire; lives on that thread's stack. */
struct gcpool_mutex_waiter {
    struct gcpool_mutex_waiter *prev, *next;
    uint32_t wake;  /* futex word: 0 asleep, 1 dequeued and woken */
    bool ticket;    /* set before wake: the releaser handed us its permit */
};

/* ---- the semaphore ---------------------------------------------------------- */

/* Takes one permit if there is one (Go's cansemacquire).  Seq_cst: in
 * sema_acquire this read of sema must not pass the increment of nwait before
 * it (the mirror of sema_release's increment of sema, then read of nwait);
 * otherwise both sides could miss each other and a wake-up be lost. */
static bool sema_try(uint32_t *sema)
{
    uint32_t v = __atomic_load_n(sema, __ATOMIC_SEQ_CST);
    while (v != 0)
        if (__atomic_compare_exchange_n(sema, &v, v - 1, 1, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
            return true;
    return false;
}

/* Caller holds qlock. */
static void queue_push(gcpool_mutex_t *m, struct gcpool_mutex_waiter *w, bool lifo)
{
    if (lifo) {
        w->prev = NULL;
        w->next = m->head;
        if (m->head)
            m->head->prev = w;
        else
            m->tail = w;
        m->head = w;
    } else {
        w->next = NULL;
        w->prev = m->tail;
        if (m->tail)
            m->tail->next = w;
        else
            m->head = w;
        m->tail = w;
    }
}

/* Caller holds qlock. */
static struct gcpool_mutex_waiter *queue_pop(gcpool_mutex_t *m)
{
    struct gcpool_mutex_waiter *w = m->head;
    if (w) {
        m->head = w->next;
        if (m->head)
            m->head->prev = NULL;
        else
            m->tail = NULL;
    }
    return w;
}

/* Go's semacquire1: blocks until it takes a permit, or is handed one. */
static void sema_acquire(gcpool_mutex_t *m, bool lifo)
{
    if (sema_try(&m->sema))
        return;
    struct gcpool_mutex_waiter w;
    for (;;) {
        gcp_futex_lock(&m->qlock);
        /* Count ourselves first so a release from now on takes the slow path
         * and finds us; then look for a permit released before that. */
        __atomic_fetch_add(&m->nwait, 1, __ATOMIC_SEQ_CST);
        if (sema_try(&m->sema)) {
            __atomic_fetch_sub(&m->nwait, 1, __ATOMIC_RELAXED);
            gcp_futex_unlock(&m->qlock);
            return;
        }
        w.ticket = false;
        __atomic_store_n(&w.wake, 0, __ATOMIC_RELAXED); /* published by qlock's release */
        queue_push(m, &w, lifo);
        gcp_futex_unlock(&m->qlock);
        /* Acquire: pairs with the release store in sema_release, so w.ticket
         * and, on handoff, the previous holder's critical section are ours. */
        while (__atomic_load_n(&w.wake, __ATOMIC_ACQUIRE) == 0)
            gcp_futex_wait(&w.wake, 0);
        /* Without a ticket the permit was left in sema and a thread not yet
         * queued may have taken it.  Then sleep again, at the head: we were
         * first in line, and the thief took our turn, not our place. */
        if (w.ticket || sema_try(&m->sema))
            return;
        lifo = true;
    }
}

/* Go's semrelease1: adds a permit and wakes the first waiter.  With handoff
 * the permit goes straight to that waiter (its ticket), and we yield so that
 * it, the new owner, runs soon. */
static void sema_release(gcpool_mutex_t *m, bool handoff)
{
    __atomic_fetch_add(&m->sema, 1, __ATOMIC_SEQ_CST);
    /* Seq_cst, after the increment: see sema_try. */
    if (__atomic_load_n(&m->nwait, __ATOMIC_SEQ_CST) == 0)
        return;
    gcp_futex_lock(&m->qlock);
    struct gcpool_mutex_waiter *w = NULL;
    /* Another waiter may have consumed the permit and left meanwhile. */
    if (__atomic_load_n(&m->nwait, __ATOMIC_RELAXED) != 0) {
        w = queue_pop(m);
        if (w)
            __atomic_fetch_sub(&m->nwait, 1, __ATOMIC_RELAXED);
    }
    gcp_futex_unlock(&m->qlock);
    if (!w)
        return;
    bool ticket = handoff && sema_try(&m->sema);
    w->ticket = ticket;
    /* Release: publishes w->ticket.  After this store w may return and its
     * stack frame vanish: touch w only for the futex address below (a stray
     * wake of whatever reuses it is harmless: futex sleepers re-check). */
    __atomic_store_n(&w->wake, 1, __ATOMIC_RELEASE);
    gcp_futex_wake(&w->wake, 1);
    if (ticket)
        sched_yield();
}

/* ---- the mutex ---------------------------------------------------------------- */

/* Go's runtime_canSpin: spin a little on a multicore machine, hoping the
 * holder, running on another CPU, unlocks soon.  Go also checks that other
 * processors are busy; a C library cannot see whether the holder is on a CPU,
 * so the bound (4 rounds of 30 pauses, a microsecond or so) is what keeps a
 * descheduled holder from costing much. */
static bool can_spin(int iter)
{
    static int ncpu; /* 0: not read yet; races only store the same value */
    int n = __atomic_load_n(&ncpu, __ATOMIC_RELAXED);
    if (n == 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c > 0 ? (int)c : 1;
        __atomic_store_n(&ncpu, n, __ATOMIC_RELAXED);
    }
    return iter < 4 && n > 1;
}

static void do_spin(void)
{
    for (int i = 0; i < 30; i++)
        gcp_cpu_relax();
}

static bool cas_state(gcpool_mutex_t *m, uint32_t *old, uint32_t new_, int success_order)
{
    return __atomic_compare_exchange_n(&m->state, old, new_, 0, success_order, __ATOMIC_RELAXED);
}

__attribute__((noinline)) static void lock_slow(gcpool_mutex_t *m)
{
    int64_t wait_start = 0;
    bool starving = false, awoke = false;
    int iter = 0;
    uint32_t old = __atomic_load_n(&m->state, __ATOMIC_RELAXED);
    for (;;) {
        /* Spin only while locked in normal mode: in starvation mode the lock
         * goes to the queue's head, so spinning could never win it. */
        if ((old & (MUTEX_LOCKED | MUTEX_STARVING)) == MUTEX_LOCKED && can_spin(iter)) {
            /* Set woken so that unlock does not wake a sleeper needlessly:
             * we are awake and will take the lock. */
            if (!awoke && !(old & MUTEX_WOKEN) && (old >> MUTEX_WAITER_SHIFT) != 0 &&
                cas_state(m, &old, old | MUTEX_WOKEN, __ATOMIC_RELAXED))
                awoke = true;
            do_spin();
            iter++;
            old = __atomic_load_n(&m->state, __ATOMIC_RELAXED);
            continue;
        }
        uint32_t new_ = old;
        /* A starving mutex belongs to the queue: newcomers must queue. */
        if (!(old & MUTEX_STARVING))
            new_ |= MUTEX_LOCKED;
        if (old & (MUTEX_LOCKED | MUTEX_STARVING))
            new_ += MUTEX_WAITER;
        /* Enter starvation mode, but only if locked: unlock expects waiters
         * in a starving mutex, and we are about to take an unlocked one. */
        if (starving && (old & MUTEX_LOCKED))
            new_ |= MUTEX_STARVING;
        if (awoke) {
            /* We were woken (or claimed woken while spinning): clear the flag,
             * whether we take the lock or sleep again. */
            if (!(new_ & MUTEX_WOKEN))
                gcp_sync_fatal("sync: inconsistent mutex state");
            new_ &= ~(uint32_t)MUTEX_WOKEN;
        }
        /* Acquire: when this takes the lock, the last unlock happens before. */
        if (!cas_state(m, &old, new_, __ATOMIC_ACQUIRE))
            continue; /* old now holds the current state */
        if (!(old & (MUTEX_LOCKED | MUTEX_STARVING)))
            return; /* locked it with the CAS */
        /* Queued before: back to the head, so a woken loser keeps its place. */
        bool lifo = wait_start != 0;
        if (!wait_start)
            wait_start = gcp_nanotime();
        sema_acquire(m, lifo);
        starving = starving || gcp_nanotime() - wait_start > STARVATION_NS;
        old = __atomic_load_n(&m->state, __ATOMIC_RELAXED);
        if (old & MUTEX_STARVING) {
            /* Handed the lock: locked is clear and we still count as a
             * waiter.  The handoff (sema_acquire's acquire) already ordered
             * the previous holder before us, so relaxed suffices. */
            if ((old & (MUTEX_LOCKED | MUTEX_WOKEN)) || (old >> MUTEX_WAITER_SHIFT) == 0)
                gcp_sync_fatal("sync: inconsistent mutex state");
            uint32_t delta = MUTEX_LOCKED - MUTEX_WAITER;
            /* Leave starvation mode here, judging by our own wait: otherwise
             * two threads could hand the lock back and forth forever, each
             * queuing behind the other, in the slow mode. */
            if (!starving || (old >> MUTEX_WAITER_SHIFT) == 1)
                delta -= MUTEX_STARVING;
            __atomic_fetch_add(&m->state, delta, __ATOMIC_RELAXED);
            return;
        }
        awoke = true;
        iter = 0;
    }
}

void gcpool_mutex_lock(gcpool_mutex_t *m)
{
    uint32_t unlocked = 0;
    /* Fast path: one CAS on a free mutex.  Acquire pairs with unlock's release. */
    if (__builtin_expect(cas_state(m, &unlocked, MUTEX_LOCKED, __ATOMIC_ACQUIRE), 1))
        return;
    lock_slow(m);
}

bool gcpool_mutex_trylock(gcpool_mutex_t *m)
{
    uint32_t old = __atomic_load_n(&m->state, __ATOMIC_RELAXED);
    if (old & (MUTEX_LOCKED | MUTEX_STARVING))
        return false;
    /* Waiters may be queued, but we run now and may take the lock before a
     * woken one does, as in normal mode.  Acquire: as in lock. */
    return cas_state(m, &old, old | MUTEX_LOCKED, __ATOMIC_ACQUIRE);
}

__attribute__((noinline)) static void unlock_slow(gcpool_mutex_t *m, uint32_t new_)
{
    if (!((new_ + MUTEX_LOCKED) & MUTEX_LOCKED))
        gcp_sync_fatal("sync: unlock of unlocked mutex");
    if (new_ & MUTEX_STARVING) {
        /* Hand the lock to the first waiter.  Locked stays clear until it
         * sets it, but starving keeps newcomers out meanwhile. */
        sema_release(m, true);
        return;
    }
    uint32_t old = new_;
    for (;;) {
        /* Nobody to wake; or a thread is already awake (woken) or holds the
         * lock; or the mutex went starving after our decrement, when the
         * lock goes by handoff, a chain we are not part of. */
        if ((old >> MUTEX_WAITER_SHIFT) == 0 ||
            (old & (MUTEX_LOCKED | MUTEX_WOKEN | MUTEX_STARVING)))
            return;
        /* Take the right to wake one: remove it from the count, set woken. */
        if (cas_state(m, &old, (old - MUTEX_WAITER) | MUTEX_WOKEN, __ATOMIC_RELAXED)) {
            sema_release(m, false);
            return;
        }
    }
}

void gcpool_mutex_unlock(gcpool_mutex_t *m)
{
    /* Release: our critical section happens before the next lock. */
    uint32_t new_ = __atomic_sub_fetch(&m->state, MUTEX_LOCKED, __ATOMIC_RELEASE);
    if (__builtin_expect(new_ != 0, 0))
        unlock_slow(m, new_);
}

bool gcpool_mutex_starving(const gcpool_mutex_t *m)
{
    return __atomic_load_n(&m->state, __ATOMIC_RELAXED) & MUTEX_STARVING;
}
