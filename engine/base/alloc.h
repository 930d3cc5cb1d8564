/* alloc.h: the one allocation policy of the process, and memory accounting.
 *
 * Every module allocates through xmalloc() and friends.  They count the usable
 * size of every block so that `used_memory` (INFO, maxmemory, eviction) is the
 * memory our data really holds.  Counting is per thread (no shared cache line on
 * the hot path); alloc_used() sums the threads' counters.
 *
 * Out of memory: the policy is Redis's, log and abort, since a half-applied
 * write is worse than a restart from the replica or snapshot.  Tests can inject
 * failures with alloc_fail_after(): then xmalloc() returns NULL instead of
 * aborting, and the callers that can report NOMEM are exercised. */
#ifndef BASE_ALLOC_H
#define BASE_ALLOC_H

#include <stddef.h>
#include <stdint.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t n);
void *xrealloc(void *p, size_t n);
void xfree(void *p);
char *xstrndup(const char *s, size_t n);
char *xstrdup(const char *s);
/* Usable size of a block from xmalloc (for memory estimates). */
size_t xmalloc_size(const void *p);

/* Bytes currently allocated through x*alloc, all threads together. */
int64_t alloc_used(void);
/* The malloc this process runs on, as INFO's mem_allocator names it:
 * "jemalloc-5.3.0" when jemalloc is linked (or preloaded), else "libc". */
const char *alloc_name(void);
/* Highest alloc_used() seen at a call of alloc_note_peak(). */
int64_t alloc_peak(void);
void alloc_note_peak(void);

/* Tests only: the n-th next allocation (0 = the next) and all after it fail by
 * returning NULL; n < 0 turns injection off. */
void alloc_fail_after(long n);

#endif
