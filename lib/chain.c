/* A chain of rings: Go's poolChain, with rings named by index so that they can
 * be reused instead of freed (ring.h says why). */
#include "lib/ring.h"

static inline uint64_t tail_word(uint32_t version, uint32_t index)
{
    return (uint64_t)version << 32 | index;
}

static inline uint32_t tail_index(uint64_t t) { return (uint32_t)t; }
static inline uint32_t tail_version(uint64_t t) { return (uint32_t)(t >> 32); }

static inline struct gcp_ring *ring_at(struct gcp_chain *c, uint32_t i)
{
    /* Acquire: pairs with the release that published the ring in the table. */
    return atomic_load_explicit(&c->rings[i], memory_order_acquire);
}

void gcp_chain_init(struct gcp_chain *c)
{
    atomic_init(&c->tail, tail_word(0, GCP_RING_NONE));
    c->head = GCP_RING_NONE;
    c->head_ring = NULL;
    atomic_init(&c->retired, 0);
    for (int i = 0; i < GCP_CHAIN_RINGS; i++)
        atomic_init(&c->rings[i], NULL);
    c->budget = NULL;
}

/* ---- the budget (ring.h): slow paths only ---------------------------------- */

/* What b has left.  Relaxed: a stale value only makes a want too large (then
 * budget_take refuses it) or too small (a smaller ring than could have been). */
static uint64_t budget_left(const struct gcp_budget *b)
{
    uint64_t used = atomic_load_explicit(&b->used, memory_order_relaxed);
    return used < b->max ? b->max - used : 0;
}

/* Takes n from b, or nothing and false when b has less left.  A CAS, not an
 * add, so that used never goes past max even for a moment: the bound holds at
 * every instant a reader looks.  Relaxed: b only counts; the ring's own
 * publication (release stores in link_head) orders everything else. */
bool gcp_budget_take(struct gcp_budget *b, uint64_t n)
{
    uint64_t used = atomic_load_explicit(&b->used, memory_order_relaxed);
    do {
        if (used > b->max || n > b->max - used)
            return false;
    } while (!atomic_compare_exchange_weak_explicit(&b->used, &used, used + n, memory_order_relaxed,
                                                    memory_order_relaxed));
    return true;
}

void gcp_budget_give(struct gcp_budget *b, uint64_t n)
{
    /* Relaxed: a count (see gcp_budget_take). */
    atomic_fetch_sub_explicit(&b->used, n, memory_order_relaxed);
}

/* What linking ring r as c's head takes from the budget: its slots, and the
 * owner's private slot with the chain's first ring (head NONE only before it:
 * the head ring is never unlinked). */
static uint64_t link_cost(const struct gcp_chain *c, uint32_t size)
{
    return (uint64_t)size + (c->head == GCP_RING_NONE);
}

/* The largest power of two <= n, or 0. */
static uint32_t floor_pow2(uint64_t n)
{
    if (n == 0)
        return 0;
    if (n >= (uint64_t)1 << 31)
        return (uint32_t)1 << 31;
    return (uint32_t)1 << (31 - __builtin_clz((uint32_t)n));
}

void gcp_chain_destroy(struct gcp_chain *c)
{
    for (int i = 0; i < GCP_CHAIN_RINGS; i++) {
        gcp_ring_free(atomic_load_explicit(&c->rings[i], memory_order_relaxed));
        atomic_store_explicit(&c->rings[i], NULL, memory_order_relaxed);
    }
    gcp_chain_init(c);
}

/* Owner: makes ring i the new head. */
static void link_head(struct gcp_chain *c, uint32_t i)
{
    struct gcp_ring *r = ring_at(c, i);
    atomic_store_explicit(&r->next, GCP_RING_NONE, memory_order_relaxed);
    atomic_store_explicit(&r->prev, c->head, memory_order_relaxed);
    if (c->head == GCP_RING_NONE) {
        /* The chain's first ring: thieves find it through the tail.  Release:
         * they must see the ring's set-up fields. */
        uint64_t t = atomic_load_explicit(&c->tail, memory_order_relaxed);
        atomic_store_explicit(&c->tail, tail_word(tail_version(t) + 1, i), memory_order_release);
    } else {
        /* Release: a thief that follows next to r sees r's next and prev as set
         * here, not as they were in r's previous life. */
        atomic_store_explicit(&ring_at(c, c->head)->next, i, memory_order_release);
    }
    c->head = i;
    c->head_ring = r;
}

/* Owner: takes back the largest retired ring of min_size to max_size slots
 * (and takes its cost from the budget), or returns GCP_RING_NONE. */
static uint32_t reuse_retired(struct gcp_chain *c, uint32_t min_size, uint32_t max_size)
{
    /* Acquire: the thief that retired a ring released its last reads of it. */
    uint32_t bits = atomic_load_explicit(&c->retired, memory_order_acquire);
    uint32_t best = GCP_RING_NONE;
    for (uint32_t i = 0; bits; i++, bits >>= 1)
        if ((bits & 1) && ring_at(c, i)->size >= min_size && ring_at(c, i)->size <= max_size &&
            (best == GCP_RING_NONE || ring_at(c, i)->size > ring_at(c, best)->size))
            best = i;
    if (best == GCP_RING_NONE)
        return best;
    if (c->budget && !gcp_budget_take(c->budget, link_cost(c, ring_at(c, best)->size)))
        return GCP_RING_NONE; /* other locals took what was left meanwhile */
    /* Only the owner clears bits, so the bit is still ours to clear. */
    atomic_fetch_and_explicit(&c->retired, ~(1u << best), memory_order_relaxed);
    return best;
}

/* Owner: whether every entry of the table holds a ring. */
static bool table_full(struct gcp_chain *c)
{
    for (int i = 0; i < GCP_CHAIN_RINGS; i++)
        if (!atomic_load_explicit(&c->rings[i], memory_order_relaxed))
            return false;
    return true;
}

/* Any thread: unlinks ring i, drained, from the tail t it was read at, and
 * retires it.  false when the tail moved meanwhile. */
static bool unlink_tail(struct gcp_chain *c, uint64_t t, uint32_t i, uint32_t next)
{
    /* The version makes the CAS fail if i was unlinked, reused and came back
     * to the tail meanwhile.  Acquire on success orders our reads of the
     * successor after the CAS. */
    if (!atomic_compare_exchange_strong_explicit(&c->tail, &t, tail_word(tail_version(t) + 1, next),
                                                 memory_order_acquire, memory_order_relaxed))
        return false;
    /* Cut the owner's walk at the new tail (racing with a reuse of next is
     * harmless: a wrong prev only ends a walk early). */
    atomic_store_explicit(&ring_at(c, next)->prev, GCP_RING_NONE, memory_order_relaxed);
    /* An unlinked ring holds nothing and gets no push: its slots leave the
     * bound's count (before the retired bit, since the owner may relink it
     * and take them again as soon as the bit is set). */
    if (c->budget)
        gcp_budget_give(c->budget, ring_at(c, i)->size);
    /* Release: our reads of i happen-before the owner reuses it. */
    atomic_fetch_or_explicit(&c->retired, 1u << i, memory_order_release);
    return true;
}

/* Owner: unlinks the drained rings at the tail, as a thief's pop_tail does.
 * Without it the rings the owner emptied would wait for a thief, and where
 * there is none (every thread on one CPU) the table would fill with empty
 * rings.  A ring that is not the head gets no more pushes (only the owner
 * pushes, at the head), so one seen empty stays empty until it is reused. */
static void reclaim_drained(struct gcp_chain *c)
{
    for (;;) {
        /* Acquire: pairs with link_head's release of the first ring. */
        uint64_t t = atomic_load_explicit(&c->tail, memory_order_acquire);
        uint32_t i = tail_index(t);
        if (i == GCP_RING_NONE || i == c->head)
            return;
        struct gcp_ring *r = ring_at(c, i);
        uint32_t next = atomic_load_explicit(&r->next, memory_order_acquire);
        if (gcp_ring_len(r) != 0 || next == GCP_RING_NONE)
            return;
        unlink_tail(c, t, i, next); /* or a thief did: look again */
    }
}

bool gcp_chain_push_head(struct gcp_chain *c, void *obj, uint32_t *want, uint32_t ring_min,
                         uint32_t ring_max)
{
    uint32_t size = ring_min;
    if (c->head != GCP_RING_NONE) {
        struct gcp_ring *r = ring_at(c, c->head);
        if (gcp_ring_push_head(r, obj))
            return true;
        /* Full: the next ring is twice as large.  Else its head slot is a
         * thief's still, and one as large will do. */
        size = gcp_ring_len(r) < r->size ? r->size : r->size * 2 > ring_max ? ring_max : r->size * 2;
        reclaim_drained(c);
    }
    /* A retired ring smaller than that only while the table has no room for
     * a new one: reusing the small rings a head ring's overflow drained would
     * keep the chain from growing to what it holds, and every pop past the
     * head ring takes the slow path.  A retired ring is empty but for slots a
     * slow thief has claimed and not yet cleared; then the push fails and we
     * look again. */
    uint32_t max_size = UINT32_MAX;
    if (c->budget) {
        /* The bound: no ring larger than the budget has left (a power of
         * two, possibly below ring_min, so that one thread fills it
         * exactly); none at all when it has nothing left. */
        uint64_t left = budget_left(c->budget);
        left = left > link_cost(c, 0) ? left - link_cost(c, 0) : 0;
        max_size = floor_pow2(left);
        if (size > max_size)
            size = max_size;
        if (size == 0) {
            *want = 0;
            return false;
        }
    }
    uint32_t min_size = table_full(c) ? 0 : size;
    for (uint32_t i; (i = reuse_retired(c, min_size, max_size)) != GCP_RING_NONE;) {
        link_head(c, i);
        if (gcp_ring_push_head(ring_at(c, i), obj))
            return true;
    }
    *want = size;
    return false;
}

bool gcp_chain_push_ring(struct gcp_chain *c, struct gcp_ring *r, void *obj, bool *over_bound)
{
    if (over_bound)
        *over_bound = false;
    for (uint32_t i = 0; i < GCP_CHAIN_RINGS; i++) {
        if (atomic_load_explicit(&c->rings[i], memory_order_relaxed) == NULL) {
            if (c->budget && !gcp_budget_take(c->budget, link_cost(c, r->size))) {
                if (over_bound)
                    *over_bound = true;
                return false;
            }
            /* Release: thieves that reach index i see an initialised ring. */
            atomic_store_explicit(&c->rings[i], r, memory_order_release);
            link_head(c, i);
            return gcp_ring_push_head(r, obj); /* a fresh ring always has room */
        }
    }
    return false;
}

void *gcp_chain_pop_head(struct gcp_chain *c)
{
    /* Walk from the newest ring to older ones.  A thief's unlinking may leave a
     * stale prev link behind for a moment, so the walk is bounded: stopping
     * early only misses objects that thieves and cycles still reach. */
    uint32_t i = c->head;
    for (int steps = 0; i != GCP_RING_NONE && steps < GCP_CHAIN_RINGS; steps++) {
        struct gcp_ring *r = ring_at(c, i);
        void *obj = gcp_ring_pop_head(r);
        if (obj)
            return obj;
        i = atomic_load_explicit(&r->prev, memory_order_relaxed);
    }
    return NULL;
}

void *gcp_chain_pop_tail(struct gcp_chain *c)
{
    for (;;) {
        /* Acquire: pairs with link_head's release of the first ring. */
        uint64_t t = atomic_load_explicit(&c->tail, memory_order_acquire);
        uint32_t i = tail_index(t);
        if (i == GCP_RING_NONE)
            return NULL;
        struct gcp_ring *r = ring_at(c, i);
        /* Read next before popping, as Go does: if r is empty and had no
         * successor when we looked, the chain was empty; reading next after the
         * pop could see a ring pushed after it, and unlink r while it refills. */
        uint32_t next = atomic_load_explicit(&r->next, memory_order_acquire);
        void *obj = gcp_ring_pop_tail(r);
        if (obj)
            return obj;
        if (next == GCP_RING_NONE)
            return NULL;
        unlink_tail(c, t, i, next); /* r is drained and not the head */
    }
}

uint64_t gcp_chain_take_all(struct gcp_chain *c, void (*fn)(void *obj, void *arg), void *arg)
{
    /* Every object lives in a ring of the table (retired rings are empty), so
     * taking from each ring takes everything, whatever the links say now. */
    uint64_t n = 0;
    for (int i = 0; i < GCP_CHAIN_RINGS; i++) {
        struct gcp_ring *r = ring_at(c, (uint32_t)i);
        if (r)
            n += gcp_ring_take_all(r, fn, arg);
    }
    return n;
}

void gcp_chain_after_fork(struct gcp_chain *c)
{
    for (int i = 0; i < GCP_CHAIN_RINGS; i++) {
        struct gcp_ring *r = ring_at(c, (uint32_t)i);
        if (!r)
            continue;
        /* One thread now: relaxed.  The tail is head_tail's low half. */
        uint64_t ht = atomic_load_explicit(&r->head_tail, memory_order_relaxed);
        atomic_store_explicit(&r->done, (uint32_t)ht, memory_order_relaxed);
    }
}
