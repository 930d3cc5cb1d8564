/* repl_backlog.c: the replication backlog, a ring of the last
 * repl-backlog-size bytes of the stream, from which a replica that lost its
 * connection continues (PSYNC) without a full copy; and the encoding of the
 * journal's commands into that stream (RESP multibulks, as Redis propagates
 * them).
 *
 *   buf: [ ....older.... | head -> ....oldest kept.... ]
 *          the last histlen bytes end just before head
 *
 * Not for: offsets and replicas (repl_master.c keeps them, under its lock;
 * this file has no lock of its own). */
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "repl_int.h"

void repl_backlog_init(struct repl_backlog *b, size_t size)
{
    b->buf = xmalloc(size);
    b->size = size;
    b->head = 0;
    b->histlen = 0;
}

void repl_backlog_release(struct repl_backlog *b)
{
    xfree(b->buf);
    memset(b, 0, sizeof *b);
}

void repl_backlog_append(struct repl_backlog *b, const void *p, size_t n)
{
    const char *s = p;
    if (!b->size)
        return;
    if (n >= b->size) { /* only the last size bytes can stay */
        memcpy(b->buf, s + (n - b->size), b->size);
        b->head = 0;
        b->histlen = b->size;
        return;
    }
    size_t first = b->size - b->head < n ? b->size - b->head : n;
    memcpy(b->buf + b->head, s, first);
    memcpy(b->buf, s + first, n - first);
    b->head = (b->head + n) % b->size;
    b->histlen = b->histlen + n > b->size ? b->size : b->histlen + n;
}

void repl_backlog_tail(const struct repl_backlog *b, uint64_t n, struct buf *out)
{
    if (n > b->histlen)
        n = b->histlen;
    if (!n)
        return;
    size_t start = (b->head + b->size - (size_t)n) % b->size;
    size_t first = b->size - start < n ? b->size - start : (size_t)n;
    buf_append(out, b->buf + start, first);
    buf_append(out, b->buf, (size_t)n - first);
}

void repl_encode(struct buf *out, int argc, const struct eng_str *argv)
{
    resp_w_array(out, argc);
    for (int i = 0; i < argc; i++)
        resp_w_bulk(out, argv[i].p, argv[i].n);
}

void repl_encode_select(struct buf *out, int db)
{
    char num[16];
    int n = snprintf(num, sizeof num, "%d", db);
    struct eng_str argv[2] = {{"SELECT", 6}, {num, (size_t)n}};
    repl_encode(out, 2, argv);
}
