/* Re-entrant calls: a public function called while its own thread is already
 * inside the library — from a free_fn or new_fn, which pools call, or from a
 * signal handler that interrupted a pool call — must never wait for what that
 * same thread holds: it would wait for ever.  So each thread records here what
 * it is in the middle of, and a re-entrant call can tell "this thread would
 * wait for itself" from "another thread holds it".  <gcpool.h> says, function
 * by function, what a re-entrant call does: it works, it is deferred, or it is
 * refused with errno EDEADLK and one warning line.
 *
 *   busy        library sections in progress on this thread that a re-entrant
 *               call must not enter: a local's pin or the first use's lock held,
 *               a mutex of the library's, the library's own allocation or free,
 *               a report being printed.  Callbacks never run inside one (free_fn
 *               and new_fn are called with none held), so a call that finds
 *               busy > 0 comes from a signal handler that interrupted a pool
 *               call: its get or put then touches nothing the interrupted code
 *               may hold — it acts as an empty pool's (new_fn; free_fn at once)
 *               — and the calls that cannot do without locks or allocation are
 *               refused.
 *   frames      the pools this thread is inside a call of that will use the
 *               pool again after a callback returns: a get or put past its
 *               fast path, a destroy, a drain, the callback itself.
 *               gcpool_destroy refuses such a pool (it would free what that
 *               call still uses).
 *   drain_held  this thread holds drain_mutex (cycle.c): free_fn runs under
 *               it during a cycle's drain.  A re-entrant gcpool_collect is then
 *               deferred to the end of the drain; a report's walk of the
 *               registry, and a pool leaving it, go on without taking the
 *               mutex again (the drain is paused inside a callback, between
 *               two pools, where neither disturbs it).
 *
 * Every field is the thread's own: only it writes them, and a signal handler
 * that runs on the thread leaves each as it found it.  So plain accesses do,
 * with compiler barriers (atomic_signal_fence: no instruction) where a
 * handler must see them in program order. */
#ifndef GCPOOL_REENTRY_H
#define GCPOOL_REENTRY_H

#include <stdatomic.h>
#include <stdbool.h>

struct gcpool;

/* One call on a pool in progress on this thread; lives on that call's stack. */
struct gcp_frame {
    struct gcpool *pool;
    struct gcp_frame *outer;
};

struct gcp_reentry {
    unsigned busy;            /* library sections in progress */
    struct gcp_frame *frames; /* innermost first */
    bool drain_held;          /* drain_mutex is this thread's */
    bool cycle_deferred;      /* gcpool_collect called during our drain: run it when it ends */
};

/* initial-exec: one %fs-relative access, no __tls_get_addr call (which is
 * neither cheap nor async-signal-safe). */
extern __thread struct gcp_reentry gcp_self __attribute__((tls_model("initial-exec")));

/* Around a library section: entered before its lock is taken (or its
 * allocation begun), left after it is released, so that a handler arriving in
 * between sees it.  A handler's own sections leave the count as they found it. */
static inline void gcp_busy_enter(void)
{
    gcp_self.busy++;
    atomic_signal_fence(memory_order_seq_cst);
}

static inline void gcp_busy_leave(void)
{
    atomic_signal_fence(memory_order_seq_cst);
    gcp_self.busy--;
}

/* True when this call interrupted a library section of its own thread. */
static inline bool gcp_reentered(void)
{
    return __builtin_expect(gcp_self.busy != 0, 0);
}

static inline void gcp_frame_enter(struct gcp_frame *f, struct gcpool *p)
{
    f->pool = p;
    f->outer = gcp_self.frames;
    atomic_signal_fence(memory_order_seq_cst); /* filled before a handler can see it */
    gcp_self.frames = f;
}

static inline void gcp_frame_leave(struct gcp_frame *f)
{
    gcp_self.frames = f->outer;
    atomic_signal_fence(memory_order_seq_cst);
}

/* Whether this thread is inside a call of p (a frame names it). */
bool gcp_in_call_of(const struct gcpool *p);

/* A call refused because it would wait for, or free, what its own thread is
 * in the middle of: one line "gcpool: <call>: <why>; refused (EDEADLK)", and
 * errno EDEADLK. */
void gcp_refuse(const char *call, const char *why);

#endif
