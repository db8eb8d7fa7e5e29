/* Go 1.12's shared queue: see locked.h. */
#include "locked.h"

#include <string.h>

#include "mem.h"

void gcp_locked_destroy(struct gcp_locked *q)
{
    gcp_mem_free_traced(q->items);
    memset(q, 0, sizeof *q);
}

bool gcp_locked_push(struct gcp_locked *q, void *obj)
{
    void **grown = NULL; /* a bigger array, allocated outside the mutex */
    uint32_t grown_cap = 0;
    for (;;) {
        gcpool_mutex_lock(&q->mu);
        if (q->len < q->cap || grown_cap > q->len) {
            void **old = NULL;
            if (q->len == q->cap) { /* full: swap our bigger array in */
                if (q->len) /* memcpy from NULL is undefined, even for 0 bytes */
                    memcpy(grown, q->items, q->len * sizeof *grown);
                old = q->items;
                q->items = grown;
                q->cap = grown_cap;
                grown = NULL;
            }
            q->items[q->len] = obj;
            /* Relaxed atomic store: statistics read len without the mutex. */
            __atomic_store_n(&q->len, q->len + 1, __ATOMIC_RELAXED);
            gcpool_mutex_unlock(&q->mu);
            gcp_mem_free_traced(old);
            gcp_mem_free_traced(grown); /* another thread grew it first */
            return true;
        }
        uint32_t want = q->cap ? q->cap * 2 : 8;
        gcpool_mutex_unlock(&q->mu);
        /* Allocate outside the mutex: under Boehm an allocation may wait for
         * the collector, whose callback may want this mutex. */
        gcp_mem_free_traced(grown);
        grown_cap = 0;
        /* Traced, not uncollectable: under Boehm an array swapped out is
         * reclaimed once unreachable, and never scanned again (a freed
         * uncollectable block was seen to keep its old pointers alive). */
        if (!(grown = gcp_mem_alloc_traced(want * sizeof *grown)))
            return false;
        grown_cap = want;
    }
}

void *gcp_locked_pop(struct gcp_locked *q, bool may_wait)
{
    if (may_wait)
        gcpool_mutex_lock(&q->mu);
    else if (!gcpool_mutex_trylock(&q->mu))
        return NULL;
    void *obj = NULL;
    if (q->len > 0) {
        uint32_t last = q->len - 1;
        obj = q->items[last];
        q->items[last] = NULL; /* keep no pointer we no longer hand out */
        __atomic_store_n(&q->len, last, __ATOMIC_RELAXED);
    }
    gcpool_mutex_unlock(&q->mu);
    return obj;
}

uint32_t gcp_locked_len(const struct gcp_locked *q)
{
    return __atomic_load_n(&q->len, __ATOMIC_RELAXED);
}
