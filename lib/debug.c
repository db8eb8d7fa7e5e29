/* Checked mode (GCPOOL_DEBUG=1): see debug.h for what it checks.
 *
 * What the pools hold: one set of (pool, object) pairs for all pools, split
 * into SHARDS independent open-addressing hash tables, each under its own
 * mutex, so that threads working on different objects seldom wait for each
 * other.  An object is in the set from the moment a put accepts it until it
 * leaves the pool: a get returns it (gcp_debug_get) or the pool drops it
 * (gcp_debug_dropped).  The put hook runs before the object is cached and the
 * get hook after it was taken, so for a correctly used object the set is never
 * behind the pool; a put that finds its object in the set is a double put.
 *
 * A random drop is one more way to hold an object: the put accepts it into
 * the set but, instead of caching it, keeps it on the pool's held list, out
 * of the gets' reach, until the next drain (or GCP_DEBUG_HELD_MAX of them, or
 * destroy) hands it to free_fn.  Handing it over at once would leave no trace
 * of it, and a second put of the same object would be taken for a new one:
 * cached, and dropped to free_fn a second time.
 *
 * Poison: for pools that know their objects' size, the put copies the object
 * aside and fills it with POISON; the get (or the drop) checks the pattern,
 * reports the first byte someone wrote after the put, and copies the object
 * back.  So a correct program sees its objects exactly as it put them, free_fn
 * included (it may follow pointers inside the object), while a thread that
 * still reads an object it put finds 0xdbdb... (not a valid pointer on x86-64).
 *
 * A collector object's copy must stay visible to the collector: the poisoned
 * object no longer holds its pointers, and what they point to must survive
 * while the object is cached.  So such copies come from
 * GC_MALLOC_UNCOLLECTABLE (whatever the cycle source: the object says), and
 * since a drop may run inside the collector (its start callback, allocation
 * lock held), where GC_FREE would deadlock, dropped copies wait in a per-shard
 * graveyard until a hook outside the collector frees them.
 *
 * Locks: a shard's mutex is a leaf.  Nothing under it takes another lock,
 * allocates collector memory, or calls user code; so the collector's callback
 * (which drops objects) may take it while any thread holds it, and fork can
 * take them all after every other lock of the pools (fork_prepare below).
 * The bookkeeping itself is plain malloc: it must not keep objects alive, and
 * malloc takes no collector lock. */
#include "lib/debug.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gc_glue/glue.h"
#include "lib/env.h"
#include "lib/mem.h"
#include "lib/reentry.h"
#include "lib/report.h"

/* A power of two.  Few enough that fork_prepare, which holds them all at once,
 * stays under ThreadSanitizer's limit of 64 locks held by one thread. */
#define SHARDS 16
#define POISON 0xdb

bool gcp_debug;

struct entry {
    struct gcpool *pool; /* or BUFFERS: a buffer a buffer pool handed out */
    void *obj;   /* NULL: an empty slot */
    void *saved; /* the object's bytes as put, or NULL (size unknown, or no memory) */
    unsigned gen; /* fork_generation when added */
    /* BUFFERS entries: the capacity the buffer was handed out with, and
     * whether it was put back since. */
    size_t capacity;
    bool back;
};

/* The key of buffers' entries (gcp_debug_buf_*): an address no pool has. */
static char buffers_key;
#define BUFFERS ((struct gcpool *)&buffers_key)

struct shard {
    pthread_mutex_t lock;
    struct entry *tab; /* cap slots, linear probing, at most half full */
    size_t cap, n;
    /* Boehm: copies waiting for GC_FREE, linked through their first word.
     * Written under the lock; atomic only for bury_dead's peek without it. */
    void *_Atomic grave;
};

static struct shard shards[SHARDS] = {[0 ... SHARDS - 1] = {.lock = PTHREAD_MUTEX_INITIALIZER}};

/* 1 in drop_one_in puts dropped at random (Go's race mode: 1 in 4); 0: none.
 * Relaxed: a tuning knob, set by tests before the scenario. */
static _Atomic unsigned drop_one_in = 4;
static _Atomic bool out_of_memory_said;
/* Forks this process descends from.  An entry of an earlier generation may be
 * an object a thread the child does not have was putting: not a loss if it
 * never leaves the child's pool.  Written in the child's fork handler, alone. */
static unsigned fork_generation;

/* ---- hashing and the per-shard table ---------------------------------------- */

static uint64_t mix(uint64_t x)
{
    /* MurmurHash3's finaliser: objects are aligned, so the low bits of the
     * address alone would crowd a few shards and slots. */
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static uint64_t hash(const struct gcpool *p, const void *obj)
{
    return mix((uint64_t)(uintptr_t)obj ^ ((uint64_t)(uintptr_t)p << 29 | (uintptr_t)p >> 35));
}

static struct shard *shard_of(uint64_t h)
{
    return &shards[h & (SHARDS - 1)];
}

/* The home slot: other bits than the shard's. */
static size_t home(const struct shard *s, uint64_t h)
{
    return (size_t)(h >> 8) & (s->cap - 1);
}

/* The slot holding (p, obj), or cap when absent.  Shard lock held. */
static size_t find(const struct shard *s, const struct gcpool *p, const void *obj, uint64_t h)
{
    if (!s->cap)
        return 0;
    for (size_t i = home(s, h);; i = (i + 1) & (s->cap - 1)) {
        if (!s->tab[i].obj)
            return s->cap;
        if (s->tab[i].obj == obj && s->tab[i].pool == p)
            return i;
    }
}

static struct entry *place(struct shard *s, struct entry e)
{
    size_t i = home(s, hash(e.pool, e.obj));
    while (s->tab[i].obj)
        i = (i + 1) & (s->cap - 1);
    s->tab[i] = e;
    return &s->tab[i];
}

/* Adds (p, obj), known absent.  Shard lock held; NULL when out of memory. */
static struct entry *insert(struct shard *s, struct gcpool *p, void *obj)
{
    if ((s->n + 1) * 2 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        struct entry *old = s->tab, *tab = calloc(cap, sizeof *tab);
        if (!tab)
            return NULL;
        size_t old_cap = s->cap;
        s->tab = tab;
        s->cap = cap;
        for (size_t i = 0; i < old_cap; i++)
            if (old[i].obj)
                place(s, old[i]);
        free(old);
    }
    s->n++;
    return place(s, (struct entry){.pool = p, .obj = obj, .gen = fork_generation});
}

/* Empties slot i, shifting later entries of its probe run back (no tombstones,
 * so lookups never slow down however many objects came and went).  Shard lock
 * held. */
static void remove_at(struct shard *s, size_t i)
{
    size_t mask = s->cap - 1;
    for (size_t j = (i + 1) & mask; s->tab[j].obj; j = (j + 1) & mask) {
        size_t k = home(s, hash(s->tab[j].pool, s->tab[j].obj));
        /* Entry j may move to the hole at i unless its home lies cyclically in
         * (i, j]: then it would become unreachable from its home. */
        bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (!stays) {
            s->tab[i] = s->tab[j];
            i = j;
        }
    }
    s->tab[i] = (struct entry){0};
    s->n--;
}

/* ---- copies of poisoned objects ---------------------------------------------- */

/* A copy of obj: collector memory when obj is the collector's, else malloc'd.
 * At least a pointer's worth, so a dead copy can link the graveyard. */
static void *copy_alloc(const void *obj, size_t size)
{
    if (size < sizeof(void *))
        size = sizeof(void *);
    return gcp_mem_is_collectors(obj) ? gcp_glue_memory()->alloc_untraced(size) : malloc(size);
}

static void copy_free(void *saved)
{
    if (!saved)
        return;
    if (gcp_mem_is_collectors(saved))
        gcp_glue_memory()->free(saved);
    else
        free(saved);
}

/* Frees the graveyards' copies.  Never called inside the collector: from the
 * put and get hooks and from destroy, which run in user threads. */
static void bury_dead(void)
{
    if (!gcp_glue_memory()->initialised())
        return; /* no collector, no collector copies */
    for (int k = 0; k < SHARDS; k++) {
        struct shard *s = &shards[k];
        /* Relaxed peek without the lock: a stale view only delays a free to a
         * later hook; the exchange under the lock is what hands the list over. */
        if (!atomic_load_explicit(&s->grave, memory_order_relaxed))
            continue;
        pthread_mutex_lock(&s->lock);
        void *dead = atomic_exchange_explicit(&s->grave, NULL, memory_order_relaxed);
        pthread_mutex_unlock(&s->lock);
        while (dead) {
            void *next = *(void **)dead;
            gcp_glue_memory()->free(dead);
            dead = next;
        }
    }
}

/* ---- reports ----------------------------------------------------------------- */

/* Checks the poison of obj, reports a write after put, and puts the object's
 * bytes back as they were put.  Outside any lock (only the caller owns obj). */
static void check_and_restore(struct gcpool *p, void *obj, const void *saved, const char *when)
{
    const unsigned char *b = obj;
    size_t first = p->obj_size, changed = 0;
    for (size_t i = 0; i < p->obj_size; i++) {
        if (b[i] != POISON) {
            if (!changed++)
                first = i;
        }
    }
    if (changed) {
        char buf[32];
        gcp_warn("gcpool: checked mode: pool \"%s\": write after put to object %p at offset %zu "
               "(%zu of %zu bytes changed; found %s)",
               gcp_pool_name(p, buf, sizeof buf), obj, first, changed, p->obj_size, when);
    }
    memcpy(obj, saved, p->obj_size);
}

/* ---- the hooks ---------------------------------------------------------------- */

static void read_env(void)
{
    gcp_debug = gcp_env_long(GCP_ENV_DEBUG) != 0;
}

void gcp_debug_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, read_env);
}

/* A per-thread xorshift64*, each thread seeded from a counter: reproducible in a
 * single-threaded test, independent across threads, no shared state per put. */
static bool drop_at_random(void)
{
    static _Atomic uint64_t seeds;
    static _Thread_local uint64_t x;
    unsigned one_in = atomic_load_explicit(&drop_one_in, memory_order_relaxed);
    if (one_in == 0)
        return false;
    if (!x) /* Relaxed: only distinct values matter. */
        x = mix(atomic_fetch_add_explicit(&seeds, 1, memory_order_relaxed) + 1) | 1;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    return (x * 0x2545F4914F6CDD1DULL >> 32) % one_in == 0;
}

/* A random drop's object, held for p until the next drain (a Treiber stack:
 * pushes by CAS, and only gcp_debug_release_held takes, all at once, so no
 * ABA).  Under Boehm the node is collector memory that the collector scans:
 * an object the pool holds stays alive, so its address cannot come back as a
 * new object and be taken for a double put. */
struct gcp_debug_held {
    struct gcp_debug_held *next;
    void *obj;
};

/* Collector memory when obj is the collector's, as its copy (copy_alloc):
 * the node is then what keeps obj alive. */
static struct gcp_debug_held *held_alloc(const void *obj)
{
    return gcp_mem_is_collectors(obj)
               ? gcp_glue_memory()->alloc_untraced(sizeof(struct gcp_debug_held))
               : malloc(sizeof(struct gcp_debug_held));
}

static void held_free(struct gcp_debug_held *h)
{
    if (gcp_mem_is_collectors(h))
        gcp_glue_memory()->free(h); /* never inside the collector: releases run in user threads */
    else
        free(h);
}

/* Returns the number of objects p holds now, this one included. */
static unsigned hold(struct gcpool *p, struct gcp_debug_held *h, void *obj)
{
    h->obj = obj;
    h->next = atomic_load_explicit(&p->debug_held, memory_order_relaxed);
    /* Release: the releaser's acquire exchange sees the node's fields. */
    while (!atomic_compare_exchange_weak_explicit(&p->debug_held, &h->next, h, memory_order_release,
                                                  memory_order_relaxed))
        ;
    /* Relaxed: a count for the bound only; the list is what hands objects over. */
    return atomic_fetch_add_explicit(&p->debug_held_n, 1, memory_order_relaxed) + 1;
}

static enum gcp_debug_verdict put_hook(struct gcpool *p, void *obj)
{
    bury_dead();
    /* Drawn first, and allocated outside the shard lock (under Boehm the node
     * is collector memory, and the collector's callback may need the lock).
     * A dropped object is not handed to free_fn now: it stays in the set,
     * held, until the next drain, so that a second put of it is still a put
     * of an object the pool holds (and it reaches free_fn once). */
    struct gcp_debug_held *h = !p->destroying && drop_at_random() ? held_alloc(obj) : NULL;
    uint64_t hsh = hash(p, obj);
    struct shard *s = shard_of(hsh);
    pthread_mutex_lock(&s->lock);
    if (find(s, p, obj, hsh) != s->cap) {
        pthread_mutex_unlock(&s->lock);
        if (h)
            held_free(h);
        char buf[32];
        gcp_warn("gcpool: checked mode: pool \"%s\": put of object %p, which the pool already caches "
               "(double put); ignored",
               gcp_pool_name(p, buf, sizeof buf), obj);
        return GCP_DEBUG_IGNORE;
    }
    /* In the set before it is cached or held, and before it is poisoned: a
     * racing second put of the same object (a misuse) then finds it. */
    bool tracked = insert(s, p, obj) != NULL;
    pthread_mutex_unlock(&s->lock);
    if (!tracked) {
        if (!atomic_exchange_explicit(&out_of_memory_said, true, memory_order_relaxed))
            gcp_warn("gcpool: checked mode: out of memory; some objects are not checked");
        if (h)
            held_free(h); /* untracked, it could not be told from a new object: cache it */
        return GCP_DEBUG_CACHE;
    }
    void *saved = NULL;
    /* Copy and poison outside the lock: the copy may come from the collector,
     * whose callback may need this shard's lock. */
    if (p->obj_size && (saved = copy_alloc(obj, p->obj_size))) {
        memcpy(saved, obj, p->obj_size);
        memset(obj, POISON, p->obj_size);
        pthread_mutex_lock(&s->lock);
        /* Still there: the object is neither cached nor held yet, so no get or
         * drop can have removed it; only a destroy racing with this put (a
         * misuse) could. */
        size_t i = find(s, p, obj, hsh);
        bool found = i != s->cap;
        if (found)
            s->tab[i].saved = saved;
        pthread_mutex_unlock(&s->lock);
        if (!found) {
            memcpy(obj, saved, p->obj_size);
            copy_free(saved);
        }
    }
    if (!h)
        return GCP_DEBUG_CACHE;
    /* Last, once poisoned: from here a drain may hand it to free_fn. */
    return hold(p, h, obj) >= GCP_DEBUG_HELD_MAX ? GCP_DEBUG_HELD_FULL : GCP_DEBUG_HELD;
}

uint64_t gcp_debug_release_held(struct gcpool *p, void (*fn)(void *obj, void *pool))
{
    /* Acquire: pairs with hold's release, so the nodes are seen whole. */
    struct gcp_debug_held *h = atomic_exchange_explicit(&p->debug_held, NULL, memory_order_acquire);
    uint64_t n = 0;
    while (h) {
        struct gcp_debug_held *next = h->next;
        void *obj = h->obj;
        gcp_busy_enter();
        held_free(h);
        gcp_busy_leave();
        fn(obj, p); /* gcp_debug_dropped: out of the set, poison checked, then free_fn */
        n++;
        h = next;
    }
    atomic_fetch_sub_explicit(&p->debug_held_n, (unsigned)n, memory_order_relaxed);
    return n;
}

/* Removes (p, obj) from the set; returns whether it was there, and its copy. */
static bool forget(struct gcpool *p, void *obj, void **saved)
{
    uint64_t h = hash(p, obj);
    struct shard *s = shard_of(h);
    pthread_mutex_lock(&s->lock);
    size_t i = find(s, p, obj, h);
    bool found = i != s->cap;
    *saved = found ? s->tab[i].saved : NULL;
    if (found)
        remove_at(s, i);
    pthread_mutex_unlock(&s->lock);
    return found;
}

static void get_hook(struct gcpool *p, void *obj)
{
    bury_dead();
    void *saved;
    /* Absent: new_fn made it, or it was cached before tracking could start. */
    if (forget(p, obj, &saved) && saved) {
        check_and_restore(p, obj, saved, "at get");
        copy_free(saved);
    }
}

static void dropped_hook(struct gcpool *p, void *obj)
{
    void *saved;
    /* A buffer leaves its class pool for good: it is no buffer of ours now. */
    void *unused;
    forget(BUFFERS, obj, &unused);
    if (!forget(p, obj, &saved) || !saved)
        return;
    /* free_fn may read the object: it gets it as it was put. */
    check_and_restore(p, obj, saved, "at drop");
    if (!gcp_mem_is_collectors(saved)) {
        free(saved);
        return;
    }
    /* Perhaps inside the collector: GC_FREE would wait for the lock we hold. */
    struct shard *s = shard_of(hash(p, saved));
    pthread_mutex_lock(&s->lock);
    *(void **)saved = atomic_load_explicit(&s->grave, memory_order_relaxed);
    atomic_store_explicit(&s->grave, saved, memory_order_relaxed); /* the lock orders it */
    pthread_mutex_unlock(&s->lock);
}

static void destroyed_hook(struct gcpool *p)
{
    /* Every object the pool cached left it by a get or a drop (destroy drains
     * all): an entry still here is an object the pool lost, unless it is
     * from before a fork (see fork_generation). */
    size_t lost = 0;
    void *copies = NULL;
    for (int k = 0; k < SHARDS; k++) {
        struct shard *s = &shards[k];
        pthread_mutex_lock(&s->lock);
        /* remove_at refills slot i from later slots: look at i again. */
        for (size_t i = 0; i < s->cap;) {
            struct entry e = s->tab[i];
            if (e.obj && e.pool == p) {
                lost += e.gen == fork_generation;
                if (e.saved) {
                    memcpy(e.obj, e.saved, p->obj_size);
                    *(void **)e.saved = copies;
                    copies = e.saved;
                }
                remove_at(s, i);
            } else {
                i++;
            }
        }
        pthread_mutex_unlock(&s->lock);
    }
    if (lost) {
        char buf[32];
        gcp_warn("gcpool: checked mode: pool \"%s\" destroyed with %zu cached objects that never "
               "left it (neither got nor dropped)",
               gcp_pool_name(p, buf, sizeof buf), lost);
    }
    while (copies) {
        void *next = *(void **)copies;
        copy_free(copies);
        copies = next;
    }
    bury_dead();
}

/* ---- buffers ---------------------------------------------------------------------
 * A buffer pool's put trusts the capacity it is given: the class it goes to,
 * and the poison, which fills that many bytes.  So checked mode remembers, for
 * every buffer a get hands out, the capacity it said, and checks the put
 * against it.  The entry lives while the buffer is out or cached: a get sets
 * it, a put marks it back, and a drop (gcp_debug_dropped) or a release
 * removes it. */

static void buf_out_hook(void *buf, size_t capacity)
{
    uint64_t h = hash(BUFFERS, buf);
    struct shard *s = shard_of(h);
    pthread_mutex_lock(&s->lock);
    size_t i = find(s, BUFFERS, buf, h);
    struct entry *e = i != s->cap ? &s->tab[i] : insert(s, BUFFERS, buf);
    if (e) {
        e->capacity = capacity;
        e->back = false;
    }
    pthread_mutex_unlock(&s->lock);
    if (!e && !atomic_exchange_explicit(&out_of_memory_said, true, memory_order_relaxed))
        gcp_warn("gcpool: checked mode: out of memory; some objects are not checked");
}

static enum gcp_debug_buf_verdict buf_back_hook(const char *bp_name, void *buf, size_t capacity)
{
    uint64_t h = hash(BUFFERS, buf);
    struct shard *s = shard_of(h);
    pthread_mutex_lock(&s->lock);
    size_t i = find(s, BUFFERS, buf, h);
    if (i == s->cap) {
        pthread_mutex_unlock(&s->lock);
        /* Or checked mode had no memory to track it: then it trusts the put. */
        if (atomic_load_explicit(&out_of_memory_said, memory_order_relaxed))
            return GCP_DEBUG_BUF_POOL;
        gcp_warn("gcpool: checked mode: buffer pool \"%s\": put of buffer %p, which no buffer pool "
                 "handed out (or which was released since); ignored: neither pooled nor freed",
                 bp_name, buf);
        return GCP_DEBUG_BUF_IGNORE;
    }
    struct entry *e = &s->tab[i];
    if (e->back) {
        pthread_mutex_unlock(&s->lock);
        gcp_warn("gcpool: checked mode: buffer pool \"%s\": put of buffer %p, which was already put "
                 "back (double put); ignored",
                 bp_name, buf);
        return GCP_DEBUG_BUF_IGNORE;
    }
    size_t handed = e->capacity;
    if (capacity > handed) {
        remove_at(s, i);
        pthread_mutex_unlock(&s->lock);
        gcp_warn("gcpool: checked mode: buffer pool \"%s\": put of buffer %p with capacity %zu, but "
                 "it was handed out with capacity %zu; not pooled: released",
                 bp_name, buf, capacity, handed);
        return GCP_DEBUG_BUF_RELEASE;
    }
    e->back = true;
    pthread_mutex_unlock(&s->lock);
    return GCP_DEBUG_BUF_POOL;
}

static void buf_released_hook(void *buf)
{
    void *unused;
    forget(BUFFERS, buf, &unused);
}

/* ---- destroyed handles ------------------------------------------------------------
 * A destroyed pool's (or buffer pool's) own struct is kept, marked, so that a
 * later call through the handle finds the mark instead of freed memory, and
 * its address cannot be given to a new pool meanwhile.  The newest
 * GCP_DEBUG_SHELLS_MAX are kept; the oldest beyond them are freed. */

static struct {
    void *shell;
    void (*release)(void *);
} shells[GCP_DEBUG_SHELLS_MAX];
static size_t shells_next, shells_n; /* under shells_lock */
static pthread_mutex_t shells_lock = PTHREAD_MUTEX_INITIALIZER;

static void keep_shell_hook(void *shell, void (*release)(void *))
{
    pthread_mutex_lock(&shells_lock);
    void *old = NULL;
    void (*old_release)(void *) = NULL;
    if (shells_n == GCP_DEBUG_SHELLS_MAX) {
        old = shells[shells_next].shell;
        old_release = shells[shells_next].release;
    } else {
        shells_n++;
    }
    shells[shells_next].shell = shell;
    shells[shells_next].release = release;
    shells_next = (shells_next + 1) % GCP_DEBUG_SHELLS_MAX;
    pthread_mutex_unlock(&shells_lock);
    if (old)
        old_release(old);
}

void gcp_debug_after_destroy(struct gcpool *p, const char *call, const char *outcome)
{
    char buf[32];
    gcp_warn("gcpool: checked mode: %s: pool \"%s\" (%p) was destroyed; %s", call,
             gcp_pool_name(p, buf, sizeof buf), (void *)p, outcome);
}

/* ---- the hooks as the pool calls them ------------------------------------------
 * Each is a busy section of its thread (reentry.h): it takes shard locks and
 * allocates, so a signal handler that interrupted one must not enter another. */

enum gcp_debug_verdict gcp_debug_put(struct gcpool *p, void *obj)
{
    gcp_busy_enter();
    enum gcp_debug_verdict v = put_hook(p, obj);
    gcp_busy_leave();
    return v;
}

void gcp_debug_get(struct gcpool *p, void *obj)
{
    gcp_busy_enter();
    get_hook(p, obj);
    gcp_busy_leave();
}

void gcp_debug_dropped(struct gcpool *p, void *obj)
{
    gcp_busy_enter();
    dropped_hook(p, obj);
    gcp_busy_leave();
}

void gcp_debug_destroyed(struct gcpool *p)
{
    gcp_busy_enter();
    destroyed_hook(p);
    gcp_busy_leave();
}

void gcp_debug_buf_out(void *buf, size_t capacity)
{
    gcp_busy_enter();
    buf_out_hook(buf, capacity);
    gcp_busy_leave();
}

enum gcp_debug_buf_verdict gcp_debug_buf_back(const char *bp_name, void *buf, size_t capacity)
{
    gcp_busy_enter();
    enum gcp_debug_buf_verdict v = buf_back_hook(bp_name, buf, capacity);
    gcp_busy_leave();
    return v;
}

void gcp_debug_buf_released(void *buf)
{
    gcp_busy_enter();
    buf_released_hook(buf);
    gcp_busy_leave();
}

void gcp_debug_keep_shell(void *shell, void (*release)(void *))
{
    gcp_busy_enter();
    keep_shell_hook(shell, release);
    gcp_busy_leave();
}

/* ---- fork (fork.c says when) ------------------------------------------------------ */

void gcp_debug_fork_lock(bool take)
{
    if (take) {
        pthread_mutex_lock(&shells_lock);
        for (int k = 0; k < SHARDS; k++)
            pthread_mutex_lock(&shards[k].lock);
    } else {
        for (int k = SHARDS - 1; k >= 0; k--)
            pthread_mutex_unlock(&shards[k].lock);
        pthread_mutex_unlock(&shells_lock);
    }
}

void gcp_debug_fork_child(void)
{
    fork_generation++; /* objects the parent's other threads held are gone for us */
    gcp_debug_fork_lock(false);
}

/* ---- test hooks ------------------------------------------------------------------ */

void gcp_debug_set_drop_rate(unsigned one_in)
{
    atomic_store_explicit(&drop_one_in, one_in, memory_order_relaxed);
}

void gcp_debug_force(bool on)
{
    gcp_debug_init(); /* so that a later first pool does not read GCPOOL_DEBUG over us */
    gcp_debug = on;
}
