/* Go 1.12's shared queue: see locked.h. */
#include "lib/locked.h"

#include <string.h>

#include "lib/mem.h"
#include "lib/reentry.h"

/* Copies the queue into a bigger array one word at a time, through volatile
 * so that the compiler cannot turn it into memcpy or vector moves.  memcpy
 * leaves the last few dozen object pointers in the vector registers, and the
 * next thing that saves them - a lazily bound PLT call (the dynamic linker's
 * resolver xsaves every vector register onto the stack), a signal - writes
 * them to stack memory that Boehm later scans conservatively: a third of the
 * objects of Go's TestPoolGC stayed reachable for several collections after
 * they left the pool.  LD_BIND_NOW=1 made them go too.  A scalar copy leaves
 * one pointer in one general register, soon overwritten. */
static void copy_items(void **to, void *const *from, uint32_t n)
{
    void *volatile *dst = (void *volatile *)to;
    void *const volatile *src = (void *const volatile *)from;
    for (uint32_t i = 0; i < n; i++)
        dst[i] = src[i];
}

void gcp_locked_destroy(struct gcp_locked *q)
{
    gcp_mem_free_traced(q->items);
    memset(q, 0, sizeof *q);
}

bool gcp_locked_push(struct gcp_locked *q, void *obj, bool collector)
{
    void **grown = NULL; /* a bigger array, allocated outside the mutex */
    uint32_t grown_cap = 0;
    for (;;) {
        gcp_busy_enter(); /* the queue's mutex held: a busy section (reentry.h) */
        gcpool_mutex_lock(&q->mu);
        if (q->len < q->cap || grown_cap > q->len) {
            void **old = NULL;
            if (q->len == q->cap) { /* full: swap our bigger array in */
                copy_items(grown, q->items, q->len);
                old = q->items;
                q->items = grown;
                q->cap = grown_cap;
                grown = NULL;
            }
            q->items[q->len] = obj;
            /* Relaxed atomic store: statistics read len without the mutex. */
            __atomic_store_n(&q->len, q->len + 1, __ATOMIC_RELAXED);
            gcpool_mutex_unlock(&q->mu);
            gcp_busy_leave();
            gcp_mem_free_traced(old);
            gcp_mem_free_traced(grown); /* another thread grew it first */
            return true;
        }
        uint32_t want = q->cap ? q->cap * 2 : 8;
        gcpool_mutex_unlock(&q->mu);
        gcp_busy_leave();
        /* Allocate outside the mutex: under Boehm an allocation may wait for
         * the collector, whose callback may want this mutex. */
        gcp_mem_free_traced(grown);
        grown_cap = 0;
        /* Traced: under Boehm an array swapped out is reclaimed by the
         * collector once unreachable (gcp_mem_free_traced is a no-op there). */
        if (!(grown = gcp_mem_alloc_traced(collector, want * sizeof *grown)))
            return false;
        grown_cap = want;
    }
}

void *gcp_locked_pop(struct gcp_locked *q, bool may_wait)
{
    gcp_busy_enter();
    if (may_wait) {
        gcpool_mutex_lock(&q->mu);
    } else if (!gcpool_mutex_trylock(&q->mu)) {
        gcp_busy_leave();
        return NULL;
    }
    void *obj = NULL;
    if (q->len > 0) {
        uint32_t last = q->len - 1;
        obj = q->items[last];
        q->items[last] = NULL; /* keep no pointer we no longer hand out */
        __atomic_store_n(&q->len, last, __ATOMIC_RELAXED);
    }
    gcpool_mutex_unlock(&q->mu);
    gcp_busy_leave();
    return obj;
}

uint32_t gcp_locked_len(const struct gcp_locked *q)
{
    return __atomic_load_n(&q->len, __ATOMIC_RELAXED);
}
