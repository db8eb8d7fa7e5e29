/* Memory for the pool's own storage (locals, rings, locked queues).  A pool that
 * holds the collector's objects must keep them where the collector looks, or a
 * collection frees them under the pool: its storage is collector memory, from
 * GC_MALLOC_UNCOLLECTABLE (scanned, freed only by us).  Any other pool's comes
 * from calloc, so that a program of malloc'd objects never starts the
 * collector, and its threads, which the collector does not know, never
 * allocate from it.  Which kind a pool needs is decided once, at its first use
 * (gcp_glue_collector_storage); a block then tells its own kind (the collector
 * knows its blocks), so frees need not be told.  The collector is reached
 * through gc_glue's memory table (glue.h), never directly.  Every allocation can be made
 * to fail, for tests. */
#ifndef GCPOOL_MEM_H
#define GCPOOL_MEM_H

#include <stdbool.h>
#include <stddef.h>

/* Zeroed memory, collector memory when collector is true, or NULL with errno
 * ENOMEM.  Freed by gcp_mem_free, whichever kind it is. */
void *gcp_mem_alloc(bool collector, size_t size);
void gcp_mem_free(void *p);

/* The same, but collector memory that the collector reclaims once nothing
 * points to it (GC_MALLOC), for storage the pool replaces while others may
 * still read the old copy; gcp_mem_free_traced frees a calloc'd block and
 * leaves a collector block to the collector. */
void *gcp_mem_alloc_traced(bool collector, size_t size);
void gcp_mem_free_traced(void *p);

/* Whether p points into the collector's heap (GC_base): false for malloc'd
 * memory, and for anything while the collector is not initialised (this
 * never initialises it). */
bool gcp_mem_is_collectors(const void *p);

/* Plain memory (calloc, strdup) for what holds no pooled object: the pool
 * itself, its name, array headers.  Counted by the same test hook. */
void *gcp_mem_calloc(size_t size);
char *gcp_mem_strdup(const char *s);

/* Test hook: the n-th allocation from now fails (n >= 1), 0 turns failures off.
 * Returns the number of allocations made since the last call. */
long gcp_mem_fail_at(long n);

#endif
