/* alloc.c: counted allocation.  See alloc.h for the policy. */
#include "alloc.h"

#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Per-thread counters live in fixed slots so that alloc_used() can read them
 * without a lock.  A block freed by another thread than the one that allocated
 * it makes one slot go down and another up; only the sum means anything. */
#define ALLOC_SLOTS 256
struct slot {
    _Alignas(64) _Atomic int64_t used;
};
static struct slot slots[ALLOC_SLOTS];
static _Atomic int next_slot;
static _Thread_local struct slot *my_slot;
static _Atomic int64_t peak;
static _Atomic long fail_countdown = -1;

static struct slot *slot_get(void)
{
    if (!my_slot)
        my_slot = &slots[atomic_fetch_add(&next_slot, 1) % ALLOC_SLOTS];
    return my_slot;
}

static void count(int64_t delta)
{
    struct slot *s = slot_get();
    atomic_store_explicit(&s->used, atomic_load_explicit(&s->used, memory_order_relaxed) + delta,
                          memory_order_relaxed);
}

static int injected_failure(void)
{
    long n = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
    if (n < 0)
        return 0;
    if (n == 0)
        return 1;
    atomic_store(&fail_countdown, n - 1);
    return 0;
}

static void *oom(size_t n)
{
    if (atomic_load(&fail_countdown) >= 0)
        return NULL;
    fprintf(stderr, "obentchi: out of memory allocating %zu bytes\n", n);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = injected_failure() ? NULL : malloc(n ? n : 1);
    if (!p)
        return oom(n);
    count((int64_t)malloc_usable_size(p));
    return p;
}

void *xcalloc(size_t nmemb, size_t n)
{
    void *p = injected_failure() ? NULL : calloc(nmemb ? nmemb : 1, n ? n : 1);
    if (!p)
        return oom(nmemb * n);
    count((int64_t)malloc_usable_size(p));
    return p;
}

void *xrealloc(void *p, size_t n)
{
    size_t old = p ? malloc_usable_size(p) : 0;
    void *q = injected_failure() ? NULL : realloc(p, n ? n : 1);
    if (!q)
        return oom(n);
    count((int64_t)malloc_usable_size(q) - (int64_t)old);
    return q;
}

void xfree(void *p)
{
    if (!p)
        return;
    count(-(int64_t)malloc_usable_size(p));
    free(p);
}

size_t xmalloc_size(const void *p) { return p ? malloc_usable_size((void *)p) : 0; }

char *xstrndup(const char *s, size_t n)
{
    char *d = xmalloc(n + 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *xstrdup(const char *s) { return xstrndup(s, strlen(s)); }

int64_t alloc_used(void)
{
    int64_t sum = 0;
    int n = atomic_load(&next_slot);
    for (int i = 0; i < n && i < ALLOC_SLOTS; i++)
        sum += atomic_load_explicit(&slots[i].used, memory_order_relaxed);
    return sum;
}

void alloc_note_peak(void)
{
    int64_t u = alloc_used(), p = atomic_load(&peak);
    while (u > p && !atomic_compare_exchange_weak(&peak, &p, u))
        ;
}

int64_t alloc_peak(void)
{
    alloc_note_peak();
    return atomic_load(&peak);
}

void alloc_fail_after(long n) { atomic_store(&fail_countdown, n); }

/* jemalloc answers mallctl("version"); glibc has no mallctl. */
static char allocator[64] = "libc";
static pthread_once_t allocator_once = PTHREAD_ONCE_INIT;

static void find_allocator(void)
{
    int (*mallctl)(const char *, void *, size_t *, void *, size_t);
    *(void **)&mallctl = dlsym(RTLD_DEFAULT, "mallctl");
    const char *v = NULL;
    size_t len = sizeof v;
    if (mallctl && mallctl("version", &v, &len, NULL, 0) == 0 && v)
        snprintf(allocator, sizeof allocator, "jemalloc-%.*s", (int)strcspn(v, "-"), v);
}

const char *alloc_name(void)
{
    pthread_once(&allocator_once, find_allocator);
    return allocator;
}
