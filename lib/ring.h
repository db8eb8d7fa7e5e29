/* The shared part of a local: Go's poolDequeue (ring) and poolChain (chain).
 *
 * A ring is a fixed-size single-producer, multi-consumer queue: its owner pushes
 * and pops at the head, any thread pops at the tail.  head and tail live in one
 * 64-bit word so that one CAS claims a slot against every other popper.
 *
 * A chain links rings from tail (oldest, smallest) to head (newest, twice as
 * large, up to a limit).  When the head ring is full the owner links a new one;
 * thieves unlink a tail ring they find drained, and so does the owner before
 * it links one (with no thief about, nobody else would).
 *
 * Unlike Go we have no collector to free an unlinked ring while a slow thief may
 * still read it, so rings are never freed before the chain is destroyed: they
 * sit in a fixed table, are named by their index, and an unlinked ring is
 * retired for the owner to reuse.  The chain's tail is (version, index) in one
 * word, so a thief that read a ring's successor, slept, and woke after that
 * ring was reused and came round to the tail again fails its CAS instead of
 * linking a retired ring back in (ABA).  A ring's head and tail keep counting
 * across reuse, so a thief's CAS on a reused ring only succeeds for a pop that
 * is correct now.
 *
 * Slots.  A slot is NULL when free.  A tail pop claims its slot by the CAS,
 * then reads it, clears it and counts itself in `done`; until then the owner
 * must not refill it.  The owner's head pop clears its slot right after its
 * commit, and under rseq (gcpool/fastpath.h) that clear may lag: the popper
 * can be preempted between its commit and its clear, and while it is off the
 * CPU its slot, now at the head, holds an object that is nobody's to take.
 * The owner may refill such a slot: the lagging clear happens only if the
 * slot still holds the popper's object (fastpath.h says how).  It tells the
 * two apart by `done`: when every tail pop ever claimed has finished (done ==
 * tail), no thief is reading any slot, so a slot at the head that is not
 * NULL is a lagging clear, or an aborted push's store that its abort handler
 * will undo in the same conditional way - either way the owner's to refill.
 * Otherwise the push fails and the chain uses another ring.
 */
#ifndef GCPOOL_RING_H
#define GCPOOL_RING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GCP_RING_NONE UINT32_MAX
#define GCP_CHAIN_RINGS 32 /* rings a chain may hold: 8, 16, … up to the limit, then more of the limit */

struct gcp_ring {
    _Atomic uint64_t head_tail;    /* head << 32 | tail; both count up forever, modulo 2^32 */
    uint32_t size;                 /* power of two */
    _Atomic uint32_t next;         /* toward the head (newer), or GCP_RING_NONE */
    _Atomic uint32_t prev;         /* toward the tail (older), or GCP_RING_NONE; owner's walk only */
    _Atomic uint32_t done;         /* tail pops that have read and cleared their slot; counts
                                      as tail does, so done == tail: no thief still reading */
    void *_Atomic slots[];         /* NULL: free for the owner to fill */
};

/* Owner only: returns false when the ring is full, or its head slot is a
 * thief's still (see Slots above). */
bool gcp_ring_push_head(struct gcp_ring *r, void *obj);
/* Owner only: the newest object, or NULL. */
void *gcp_ring_pop_head(struct gcp_ring *r);
/* Any thread: the oldest object, or NULL. */
void *gcp_ring_pop_tail(struct gcp_ring *r);
/* Any thread: takes every object in the ring with one CAS (as that many tail
 * pops would), handing each to fn.  Returns how many. */
uint32_t gcp_ring_take_all(struct gcp_ring *r, void (*fn)(void *obj, void *arg), void *arg);
/* Objects in the ring now (a racy snapshot). */
uint32_t gcp_ring_len(const struct gcp_ring *r);

/* A retention bound's budget (gcpool_options_t.max_cached), one per array of
 * locals, shared by its locals' chains: the ring slots they may link, and one
 * for each chain's owner's private slot (taken with the chain's first ring).
 * used only changes on slow paths (a ring linked or retired), never on the
 * hit path.  Objects an array holds <= used + one per local without a ring. */
struct gcp_budget {
    _Atomic uint64_t used;
    uint64_t max; /* 0: no bound (the chain's budget is NULL then) */
};

/* Any thread: takes n from b, or nothing and false when b has less left;
 * gives n back.  Atomic read-modify-writes: slow paths only. */
bool gcp_budget_take(struct gcp_budget *b, uint64_t n);
void gcp_budget_give(struct gcp_budget *b, uint64_t n);

struct gcp_chain {
    struct gcp_ring *head_ring;                  /* owner only: rings[head], or NULL; first, for
                                                    the rseq sequences (gcpool/fastpath.h) */
    _Atomic uint64_t tail;                       /* version << 32 | ring index; GCP_RING_NONE when empty */
    uint32_t head;                               /* owner only: ring index, or GCP_RING_NONE */
    _Atomic uint32_t retired;                    /* bit i: ring i was unlinked and may be reused */
    struct gcp_ring *_Atomic rings[GCP_CHAIN_RINGS]; /* set once, freed with the chain */
    struct gcp_budget *budget;                   /* NULL: unbounded; else every linked ring's
                                                    size is taken from it, and given back when
                                                    the ring is retired */
};

/* Ring allocation, supplied by the caller so that the pool can allocate outside
 * its locks, from collector memory when its storage must be (mem.h). */
struct gcp_ring *gcp_ring_new(uint32_t size, bool collector); /* NULL on failure */
void gcp_ring_free(struct gcp_ring *r);

void gcp_chain_init(struct gcp_chain *c);
/* Frees every ring; the caller guarantees no concurrent use and an empty chain. */
void gcp_chain_destroy(struct gcp_chain *c);

/* Owner: pushes obj.  Returns true, or false when the head ring has no room
 * and no retired ring fits, once the drained rings at the tail have been
 * retired: then the size of the ring the owner should allocate (outside any
 * lock) and offer with gcp_chain_push_ring is in *want - capped to what the
 * chain's budget has left, and 0 when it has none (the bound is reached). */
bool gcp_chain_push_head(struct gcp_chain *c, void *obj, uint32_t *want, uint32_t ring_min,
                         uint32_t ring_max);
/* Owner: links r as the new head and pushes obj into it.  Returns true when r
 * was used; false when the chain cannot take another ring (r is left to the
 * caller, obj was not pushed), and then *over_bound (when not NULL) says
 * whether it was the budget that refused (else the table is full). */
bool gcp_chain_push_ring(struct gcp_chain *c, struct gcp_ring *r, void *obj, bool *over_bound);
/* Owner: the newest object, or NULL. */
void *gcp_chain_pop_head(struct gcp_chain *c);
/* Any thread: the oldest object, or NULL; unlinks drained tail rings. */
void *gcp_chain_pop_tail(struct gcp_chain *c);
/* In a forked child, pins held: tail pops caught between their claim and
 * their done did not follow the fork; counts them done, so that the slots
 * they held are the owner's to refill (see Slots). */
void gcp_chain_after_fork(struct gcp_chain *c);
/* Any thread: takes every object of every ring (a cycle's drop), one CAS per
 * ring rather than one per object.  Drained rings stay linked until a thief,
 * or the owner's next push that needs a ring, unlinks them.  Returns how many. */
uint64_t gcp_chain_take_all(struct gcp_chain *c, void (*fn)(void *obj, void *arg), void *arg);

#endif
