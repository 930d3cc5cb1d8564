/* json_mem.c: cJSON's allocation hooks (json_mem.h).  Every block carries a
 * 16-byte header: HEAP blocks are malloc'd and freed one by one, ARENA
 * blocks are bumped from the calling thread's open arena and freed only with
 * it.  cJSON_free() of an arena block does nothing (cJSON_Delete() of such a
 * tree would be a no-op walk; json_arena_free() is the way). */
#include <stdint.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "json_mem.h"

#define HDR 16 /* keeps malloc's alignment for what follows */
#define TAG_HEAP 0x6865617068656170ull  /* "heapheap" */
#define TAG_ARENA 0x6172656e61726e61ull /* "arenarna" */
#define MIN_BLOCK 4096 /* blocks after the first */

struct block {
    struct block *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

struct json_arena {
    struct block *head;
    size_t bytes;
    _Alignas(16) unsigned char first[]; /* the first block, in the same allocation */
};

static _Thread_local struct json_arena *open_arena;

/* Puts b (room for cap bytes) at the head of a's chain. */
static struct block *block_link(struct json_arena *a, struct block *b, size_t cap)
{
    b->next = a->head, b->used = 0, b->cap = cap;
    a->head = b;
    a->bytes += sizeof *b + cap;
    return b;
}

static struct block *block_new(struct json_arena *a, size_t need)
{
    size_t cap = need < MIN_BLOCK ? MIN_BLOCK : need;
    struct block *b = malloc(sizeof *b + cap);
    return b ? block_link(a, b, cap) : NULL;
}

static void *jm_malloc(size_t n)
{
    size_t need = (n + HDR + 15) & ~(size_t)15;
    unsigned char *p;
    uint64_t tag;
    struct json_arena *a = open_arena;
    if (a) {
        struct block *b = a->head;
        if (!b || b->cap - b->used < need) {
            /* a new block for it; the old one stays in the chain */
            if (!(b = block_new(a, need)))
                return NULL;
        }
        p = b->data + b->used;
        b->used += need;
        tag = TAG_ARENA;
    } else {
        if (!(p = malloc(n + HDR)))
            return NULL;
        tag = TAG_HEAP;
    }
    *(uint64_t *)p = tag;
    return p + HDR;
}

static void jm_free(void *q)
{
    if (!q)
        return;
    unsigned char *p = (unsigned char *)q - HDR;
    if (*(uint64_t *)p == TAG_HEAP)
        free(p);
    /* TAG_ARENA: goes with its arena */
}

__attribute__((constructor)) static void json_mem_install(void)
{
    cJSON_Hooks h = {jm_malloc, jm_free};
    cJSON_InitHooks(&h);
}

struct json_arena *json_arena_open(size_t hint)
{
    /* a tree takes about six times its text (an 80-byte node with its
     * header per value, and its strings); one allocation for the arena and
     * its first block */
    size_t cap = hint * 6 + 1024;
    struct json_arena *a = malloc(sizeof *a + sizeof(struct block) + cap);
    if (!a)
        abort(); /* the process's policy on running out (base/alloc.h) */
    a->head = NULL;
    a->bytes = sizeof *a;
    block_link(a, (struct block *)a->first, cap);
    open_arena = a;
    return a;
}

void json_arena_close(struct json_arena *a)
{
    if (open_arena == a)
        open_arena = NULL;
}

void json_arena_free(struct json_arena *a)
{
    if (!a)
        return;
    json_arena_close(a);
    for (struct block *b = a->head, *n; b; b = n) {
        n = b->next;
        if (b != (struct block *)a->first)
            free(b);
    }
    free(a);
}

size_t json_arena_bytes(const struct json_arena *a) { return a ? a->bytes : 0; }
