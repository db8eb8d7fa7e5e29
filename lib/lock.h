/* A pool's lock: the futex lock (futex.h) held as a busy section of the thread
 * (reentry.h), guarding one local's owner operations under the lock pin and a
 * pool's first use.  A signal handler's pool call that finds its own thread
 * busy does not wait for the lock that thread holds. */
#ifndef GCPOOL_LOCK_H
#define GCPOOL_LOCK_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/futex.h"
#include "lib/reentry.h"

typedef struct { uint32_t word; } gcp_lock_t; /* GCP_FUTEX_*: free, held, sleepers */

/* true when acquired; never waits. */
static inline bool gcp_trylock(gcp_lock_t *l)
{
    gcp_busy_enter(); /* before the CAS: a handler must never see it held and us not busy */
    bool got = gcp_futex_trylock(&l->word);
    if (!got)
        gcp_busy_leave();
    return got;
}

static inline void gcp_lock(gcp_lock_t *l)
{
    gcp_busy_enter(); /* before taking it, as in gcp_trylock */
    gcp_futex_lock(&l->word);
}

static inline void gcp_unlock(gcp_lock_t *l)
{
    gcp_futex_unlock(&l->word);
    gcp_busy_leave();
}

/* In a forked child only, on a lock its one thread holds: frees it without
 * waking anyone, for the sleepers it may record did not follow the fork. */
static inline void gcp_lock_reset(gcp_lock_t *l)
{
    __atomic_store_n(&l->word, GCP_FUTEX_FREE, __ATOMIC_RELAXED); /* one thread: no ordering */
}

#endif
