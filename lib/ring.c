/* One ring: Go's poolDequeue.  See ring.h for the shape. */
#include "lib/ring.h"

#include "lib/mem.h"

static inline uint64_t pack(uint32_t head, uint32_t tail)
{
    return (uint64_t)head << 32 | tail;
}

static inline uint32_t head_of(uint64_t ht) { return (uint32_t)(ht >> 32); }
static inline uint32_t tail_of(uint64_t ht) { return (uint32_t)ht; }

bool gcp_ring_push_head(struct gcp_ring *r, void *obj)
{
    /* done first, then head_tail (acquire keeps them in that order): every
     * tail pop counted in done made its claim before, so it is in the tail we
     * read; done == tail then means none we can see is still reading, and one
     * that claims after cannot claim the head's slot (the ring is not full).
     * Acquire also pairs with the thieves' release of done: their reads of
     * their slots happen-before we refill one. */
    uint32_t done = atomic_load_explicit(&r->done, memory_order_acquire);
    /* Relaxed: only the owner moves the head, and a stale tail only makes the
     * ring look fuller than it is; the slot check below is what protects. */
    uint64_t ht = atomic_load_explicit(&r->head_tail, memory_order_relaxed);
    uint32_t head = head_of(ht), tail = tail_of(ht);
    if ((uint32_t)(tail + r->size) == head)
        return false;
    void *_Atomic *slot = &r->slots[head & (r->size - 1)];
    /* Acquire: a tail popper that claimed this slot releases it by storing NULL
     * after reading its object; until then the slot is not ours to overwrite.
     * Not NULL with no thief reading: a head pop's clear still to come, or an
     * aborted push's store still to be undone, each conditional on the slot
     * still holding its object (ring.h): ours to refill. */
    if (atomic_load_explicit(slot, memory_order_acquire) != NULL && done != tail)
        return false;
    /* Relaxed: the head's release below publishes it.  A store, not a CAS:
     * against the lagging clears' CAS it is atomic, and their plain stores
     * cannot interleave (they run in a sequence that checks the pin we hold). */
    atomic_store_explicit(slot, obj, memory_order_relaxed);
    /* Release: publishes the slot's content to whoever claims it by a CAS on
     * head_tail (pop_tail's acquire). */
    atomic_fetch_add_explicit(&r->head_tail, (uint64_t)1 << 32, memory_order_release);
    return true;
}

void *gcp_ring_pop_head(struct gcp_ring *r)
{
    uint64_t ht = atomic_load_explicit(&r->head_tail, memory_order_relaxed);
    for (;;) {
        uint32_t head = head_of(ht), tail = tail_of(ht);
        if (head == tail)
            return NULL;
        /* The CAS decides between us and a tail popper for the last object;
         * relaxed suffices, the slot was written by this thread. */
        if (atomic_compare_exchange_weak_explicit(&r->head_tail, &ht, pack(head - 1, tail),
                                                  memory_order_relaxed, memory_order_relaxed)) {
            void *_Atomic *slot = &r->slots[(head - 1) & (r->size - 1)];
            void *obj = atomic_load_explicit(slot, memory_order_relaxed);
            /* Cleared so the pool keeps no pointer it no longer hands out. */
            atomic_store_explicit(slot, NULL, memory_order_relaxed);
            return obj;
        }
    }
}

void *gcp_ring_pop_tail(struct gcp_ring *r)
{
    uint64_t ht = atomic_load_explicit(&r->head_tail, memory_order_relaxed);
    for (;;) {
        uint32_t head = head_of(ht), tail = tail_of(ht);
        if (head == tail)
            return NULL;
        /* Acquire: pairs with push_head's release, so the slot's object is
         * visible once the CAS has made the slot ours. */
        if (atomic_compare_exchange_weak_explicit(&r->head_tail, &ht, pack(head, tail + 1),
                                                  memory_order_acquire, memory_order_relaxed)) {
            void *_Atomic *slot = &r->slots[tail & (r->size - 1)];
            void *obj = atomic_load_explicit(slot, memory_order_relaxed);
            /* Release: our read above happens-before the owner refills the slot. */
            atomic_store_explicit(slot, NULL, memory_order_release);
            /* Release, for the owner's acquire of done: as the store above. */
            atomic_fetch_add_explicit(&r->done, 1, memory_order_release);
            return obj;
        }
    }
}

uint32_t gcp_ring_take_all(struct gcp_ring *r, void (*fn)(void *obj, void *arg), void *arg)
{
    uint64_t ht = atomic_load_explicit(&r->head_tail, memory_order_relaxed);
    uint32_t head, tail;
    for (;;) {
        head = head_of(ht), tail = tail_of(ht);
        if (head == tail)
            return 0;
        /* tail := head claims every slot in [tail, head) at once.  Acquire:
         * pairs with push_head's release, as in pop_tail. */
        if (atomic_compare_exchange_weak_explicit(&r->head_tail, &ht, pack(head, head),
                                                  memory_order_acquire, memory_order_relaxed))
            break;
    }
    for (uint32_t i = tail; i != head; i++) {
        void *_Atomic *slot = &r->slots[i & (r->size - 1)];
        void *obj = atomic_load_explicit(slot, memory_order_relaxed);
        /* Release: as pop_tail's, our read happens-before the owner refills it. */
        atomic_store_explicit(slot, NULL, memory_order_release);
        fn(obj, arg);
    }
    /* Release: as pop_tail's.  Once for the lot, one atomic a ring; until then
     * the owner only refills the slots we cleared. */
    atomic_fetch_add_explicit(&r->done, head - tail, memory_order_release);
    return head - tail;
}

uint32_t gcp_ring_len(const struct gcp_ring *r)
{
    uint64_t ht = atomic_load_explicit(&r->head_tail, memory_order_relaxed);
    return head_of(ht) - tail_of(ht);
}

struct gcp_ring *gcp_ring_new(uint32_t size, bool collector)
{
    struct gcp_ring *r = gcp_mem_alloc(collector, sizeof *r + (size_t)size * sizeof(void *));
    if (!r)
        return NULL;
    r->size = size;
    atomic_init(&r->done, 0); /* with head and tail (the block is zeroed): no thief yet */
    atomic_init(&r->next, GCP_RING_NONE);
    atomic_init(&r->prev, GCP_RING_NONE);
    return r;
}

void gcp_ring_free(struct gcp_ring *r)
{
    gcp_mem_free(r);
}
