/* Go 1.12's shared queue, for GCPOOL_SHARED=locked: a growable array guarded by
 * Go's Mutex (gcpool_mutex_t), owner and thieves alike taking the last item.
 * Kept so that the perf suite can show, on the same benchmarks, what the
 * lock-free chain buys (lib/locked.c). */
#ifndef GCPOOL_LOCKED_H
#define GCPOOL_LOCKED_H

#include <stdbool.h>
#include <stdint.h>

#include "gcpool/sync.h"

struct gcp_locked {
    gcpool_mutex_t mu;
    void **items;  /* traced memory (mem.h), reached from the local; under mu */
    uint32_t len;  /* under mu; read racily for statistics */
    uint32_t cap;  /* under mu */
};

/* Zeroed memory is an empty queue. */
void gcp_locked_destroy(struct gcp_locked *q);
/* Appends obj; false when the array could not grow (the caller drops obj).
 * collector: the array grows in collector memory (the pool's storage kind). */
bool gcp_locked_push(struct gcp_locked *q, void *obj, bool collector);
/* The last item, or NULL.  may_wait false: NULL when the mutex is busy. */
void *gcp_locked_pop(struct gcp_locked *q, bool may_wait);
/* Items now (a racy snapshot). */
uint32_t gcp_locked_len(const struct gcp_locked *q);

#endif
