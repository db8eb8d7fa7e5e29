/* The pool's own memory; see mem.h. */
#include "lib/mem.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "gc_glue/glue.h"
#include "lib/reentry.h"

/* Test hook state.  Relaxed: tests set it from one thread before the scenario. */
static _Atomic long fail_at, allocations;

static bool should_fail(void)
{
    long n = atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed) + 1;
    long at = atomic_load_explicit(&fail_at, memory_order_relaxed);
    return at > 0 && n == at;
}

/* Each allocation and free is a busy section (reentry.h): a signal handler
 * that interrupted one must not allocate in turn. */
void *gcp_mem_alloc(bool collector, size_t size)
{
    void *p = NULL;
    gcp_busy_enter();
    if (!should_fail())
        p = collector ? gcp_glue_memory()->alloc_untraced(size) : calloc(1, size);
    gcp_busy_leave();
    if (!p)
        errno = ENOMEM;
    return p;
}

bool gcp_mem_is_collectors(const void *p)
{
    return gcp_glue_memory()->is_collectors(p);
}

void gcp_mem_free(void *p)
{
    if (!p)
        return;
    gcp_busy_enter();
    if (gcp_mem_is_collectors(p))
        gcp_glue_memory()->free(p);
    else
        free(p);
    gcp_busy_leave();
}

void *gcp_mem_alloc_traced(bool collector, size_t size)
{
    void *p = NULL;
    gcp_busy_enter();
    if (!should_fail())
        p = collector ? gcp_glue_memory()->alloc_traced(size) : calloc(1, size);
    gcp_busy_leave();
    if (!p)
        errno = ENOMEM;
    return p;
}

void gcp_mem_free_traced(void *p)
{
    gcp_busy_enter();
    if (!gcp_mem_is_collectors(p))
        free(p);
    gcp_busy_leave();
}

void *gcp_mem_calloc(size_t size)
{
    gcp_busy_enter();
    void *p = should_fail() ? NULL : calloc(1, size);
    gcp_busy_leave();
    if (!p)
        errno = ENOMEM;
    return p;
}

char *gcp_mem_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = gcp_mem_calloc(n);
    return d ? memcpy(d, s, n) : NULL;
}

long gcp_mem_fail_at(long n)
{
    atomic_store_explicit(&fail_at, n, memory_order_relaxed);
    return atomic_exchange_explicit(&allocations, 0, memory_order_relaxed);
}
