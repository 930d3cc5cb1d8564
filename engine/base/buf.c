/* buf.c: see buf.h. */
#include "buf.h"

#include <stdio.h>
#include <string.h>

#include "alloc.h"

void buf_release(struct buf *b)
{
    xfree(b->p);
    buf_init(b);
}

void buf_grow(struct buf *b, size_t n)
{
    size_t need = b->len + n + 1;
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 16;
    while (cap < need)
        cap = cap < (1u << 20) ? cap * 2 : cap + (1u << 20);
    b->p = xrealloc(b->p, cap);
    b->cap = cap;
    /* A fresh block holds garbage: terminate it, or a buffer that was only
     * grown would be detached (or printed) without its '\0'. */
    b->p[b->len] = '\0';
}

void buf_append(struct buf *b, const void *p, size_t n)
{
    buf_grow(b, n);
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
    va_list cp;
    va_copy(cp, ap);
    int n = vsnprintf(b->p ? b->p + b->len : NULL, b->cap ? b->cap - b->len : 0, fmt, cp);
    va_end(cp);
    if (n < 0) { /* the failed attempt may have overwritten the terminator */
        if (b->p)
            b->p[b->len] = '\0';
        return;
    }
    if (b->len + (size_t)n + 1 > b->cap) {
        buf_grow(b, (size_t)n);
        vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    }
    b->len += (size_t)n;
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void buf_consume(struct buf *b, size_t n)
{
    if (n >= b->len) {
        buf_reset(b);
        return;
    }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
    b->p[b->len] = '\0';
}

char *buf_detach(struct buf *b, size_t *len)
{
    if (!b->p)
        buf_grow(b, 0), b->p[0] = '\0';
    char *p = b->p;
    if (len)
        *len = b->len;
    buf_init(b);
    return p;
}
