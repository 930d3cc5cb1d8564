/* container.c: what the container types (hash, set, list, zset) share: the
 * random numbers of their random picks, the dicts of xmalloc'd nodes behind
 * hash and set tables (free, memory, distinct random nodes), and the first
 * non-empty key of the *MPOP commands, the journal of a command with its
 * key and arguments as given. */
#include <stdint.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "engine_int.h"

uint64_t eng__rand(uint64_t *state)
{
    uint64_t x = *state ? *state : 0x9E3779B97F4A7C15ULL;
    x ^= x >> 12, x ^= x << 25, x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

struct collect {
    struct dict_node **v;
    int64_t n;
};

static int collect_node(void *ud, struct dict_node *n)
{
    struct collect *cl = ud;
    cl->v[cl->n++] = n;
    return 0;
}

static void node_free(struct dict_node *n, void *ud) { xfree(n); }

void eng__dict_free_nodes(struct dict *d) { dict_release(d, node_free, NULL); }

static int add_node_mem(void *ud, struct dict_node *n)
{
    *(size_t *)ud += xmalloc_size(n);
    return 0;
}

size_t eng__dict_mem(struct dict *d)
{
    size_t n = dict_table_bytes(d);
    dict_foreach(d, add_node_mem, &n);
    return n;
}

void eng__dict_pick(struct dict *d, int64_t count, uint64_t *rs, struct dict_node **out)
{
    uint64_t size = dict_size(d);
    if ((uint64_t)count * 3 > size) { /* a good part of the table: shuffle */
        struct collect cl = {xmalloc(sizeof *cl.v * size), 0};
        dict_foreach(d, collect_node, &cl);
        for (int64_t i = 0; i < count; i++) {
            uint64_t j = (uint64_t)i + eng__rand(rs) % (size - (uint64_t)i);
            struct dict_node *t = cl.v[i];
            cl.v[i] = cl.v[j], cl.v[j] = t;
            out[i] = cl.v[i];
        }
        xfree(cl.v);
        return;
    }
    /* A few of many: sample, dropping repeats with a set of pointers. */
    uint64_t cap = 16;
    while (cap < (uint64_t)count * 2)
        cap <<= 1;
    struct dict_node **seen = xcalloc(cap, sizeof *seen);
    int64_t got = 0;
    while (got < count) {
        struct dict_node *n = dict_random(d, eng__rand(rs));
        uint64_t i = (((uintptr_t)n * 0x9E3779B97F4A7C15ULL) >> 20) & (cap - 1);
        while (seen[i] && seen[i] != n)
            i = (i + 1) & (cap - 1);
        if (seen[i])
            continue;
        seen[i] = n;
        out[got++] = n;
    }
    xfree(seen);
}

struct eng_key *eng__first_key(struct eng_ctx *c, const struct eng_str *keys, int nkeys, int type, int *which,
                               int *err)
{
    for (int i = 0; i < nkeys; i++) {
        struct eng_key *k = eng__lookup_type(c, keys[i].p, keys[i].n, type, 0, err);
        if (*err)
            return NULL;
        if (k) {
            *which = i;
            return k;
        }
    }
    *err = ERR_NOKEY;
    return NULL;
}

void eng__journal_args(struct eng_ctx *c, const char *cmd, const char *key, size_t klen, const struct eng_str *args,
                       int n)
{
    if (!eng__journal_wanted(c))
        return;
    struct eng_str stack[34], *argv = stack;
    if (n + 2 > 34)
        argv = xmalloc(sizeof *argv * (size_t)(n + 2));
    argv[0] = (struct eng_str){cmd, strlen(cmd)};
    argv[1] = (struct eng_str){key, klen};
    memcpy(argv + 2, args, sizeof *args * (size_t)n);
    eng__journal(c, n + 2, argv);
    if (argv != stack)
        xfree(argv);
}
