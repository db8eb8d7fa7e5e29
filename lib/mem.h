/* Memory for the pool's own storage (locals, rings).  Under Boehm it must be
 * visible to the collector, or cached objects would be reclaimed under the pool:
 * it comes from GC_MALLOC_UNCOLLECTABLE (scanned, freed only by us).  Otherwise
 * from calloc.  Every allocation can be made to fail, for tests. */
#ifndef GCPOOL_MEM_H
#define GCPOOL_MEM_H

#include <stddef.h>

/* Zeroed memory, or NULL with errno ENOMEM. */
void *gcp_mem_alloc(size_t size);
void gcp_mem_free(void *p);

/* Memory the collector reclaims once nothing points to it (GC_MALLOC under
 * Boehm), for storage the pool replaces while others may still read the old
 * copy; calloc otherwise, freed by gcp_mem_free_traced (a no-op under Boehm). */
void *gcp_mem_alloc_traced(size_t size);
void gcp_mem_free_traced(void *p);

/* Plain memory (calloc, strdup) for what holds no pooled object: the pool
 * itself, its name, array headers.  Counted by the same test hook. */
void *gcp_mem_calloc(size_t size);
char *gcp_mem_strdup(const char *s);

/* Test hook: the n-th allocation from now fails (n >= 1), 0 turns failures off.
 * Returns the number of allocations made since the last call. */
long gcp_mem_fail_at(long n);

#endif
