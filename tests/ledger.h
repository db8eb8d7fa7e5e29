/* The objects a conservation test hands out: made by new_fn, each carrying
 * how many users hold it and how often free_fn saw it, so that the test can
 * check that no object reaches two users or free_fn while held, and after
 * gcpool_destroy that every object made reached free_fn exactly once.
 * Shared by test_conservation and test_threads. */
#ifndef GCPOOL_TEST_LEDGER_H
#define GCPOOL_TEST_LEDGER_H

#include <stdatomic.h>

#include "tests/testutil.h"

struct object {
    _Atomic int users; /* 1 while handed out */
    _Atomic int freed; /* free_fn calls */
    long id;
};

struct ledger {
    struct object **made; /* every object new_fn returned, to check at the end */
    _Atomic long nmade;
    long capacity;
    bool boehm;
};

static inline void ledger_init(struct ledger *l, long capacity, bool boehm)
{
    l->capacity = capacity;
    l->boehm = boehm;
    atomic_init(&l->nmade, 0);
    l->made = calloc((size_t)capacity, sizeof *l->made);
    ck_assert_ptr_nonnull(l->made);
}

/* new_fn; arg: the ledger. */
static inline void *ledger_make(void *arg)
{
    struct ledger *l = arg;
    long id = atomic_fetch_add(&l->nmade, 1);
    ck_assert_msg(id < l->capacity, "new_fn called more than the test allows");
    /* Under Boehm: uncollectable, so only free_fn's bookkeeping decides its fate
     * and the test can read it after the pool let go. */
    struct object *o = l->boehm ? GC_MALLOC_UNCOLLECTABLE(sizeof *o) : calloc(1, sizeof *o);
    ck_assert_ptr_nonnull(o);
    o->id = id;
    l->made[id] = o;
    return o;
}

/* free_fn. */
static inline void ledger_release(void *obj, void *arg)
{
    (void)arg;
    struct object *o = obj;
    ck_assert_msg(atomic_load(&o->users) == 0, "object %ld dropped while in use", o->id);
    ck_assert_msg(atomic_fetch_add(&o->freed, 1) == 0, "object %ld freed twice", o->id);
}

/* A get returned o: it must be nobody else's and not yet freed. */
static inline struct object *ledger_take(struct object *o)
{
    ck_assert_ptr_nonnull(o);
    ck_assert_msg(atomic_fetch_add(&o->users, 1) == 0, "object %ld handed to two users", o->id);
    ck_assert_msg(atomic_load(&o->freed) == 0, "object %ld handed out after free_fn", o->id);
    return o;
}

/* o is about to be put back. */
static inline void ledger_give(struct object *o)
{
    atomic_store(&o->users, 0);
}

/* After gcpool_destroy: every object made reached free_fn exactly once.
 * Frees them all; returns how many were made. */
static inline long ledger_settle(struct ledger *l)
{
    long made = atomic_load(&l->nmade);
    for (long i = 0; i < made; i++) {
        int f = atomic_load(&l->made[i]->freed);
        ck_assert_msg(f == 1, "object %ld reached free_fn %d times", i, f);
        if (l->boehm)
            GC_FREE(l->made[i]);
        else
            free(l->made[i]);
    }
    free(l->made);
    return made;
}

#endif
