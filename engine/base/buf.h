/* buf.h: a growable byte buffer (git's strbuf, Redis's sds without the header
 * tricks).  Binary safe; p[len] is always '\0' once anything was appended so a
 * buffer holding text can be passed to libc.
 *
 * Invariants: len <= cap; p is NULL only while cap == 0.
 * Ownership: the struct is the caller's (init/release); the bytes belong to it
 * until buf_detach() hands them over. */
#ifndef BASE_BUF_H
#define BASE_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

struct buf {
    char *p;
    size_t len, cap;
};

#define BUF_INIT {NULL, 0, 0}

static inline void buf_init(struct buf *b) { b->p = NULL, b->len = b->cap = 0; }
void buf_release(struct buf *b);
/* Make room for n more bytes (plus the terminating NUL). */
void buf_grow(struct buf *b, size_t n);
void buf_append(struct buf *b, const void *p, size_t n);
static inline void buf_putc(struct buf *b, char c)
{
    if (b->len + 2 > b->cap)
        buf_grow(b, 1);
    b->p[b->len++] = c;
    b->p[b->len] = '\0';
}
static inline void buf_puts(struct buf *b, const char *s);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/* Drop the first n bytes (a consumed prefix). */
void buf_consume(struct buf *b, size_t n);
static inline void buf_reset(struct buf *b)
{
    b->len = 0;
    if (b->p)
        b->p[0] = '\0';
}
/* Emptied for reuse: the capacity is kept for the next contents, unless it
 * grew past BUF_RECYCLE_MAX (one big request or reply), then freed. */
#define BUF_RECYCLE_MAX (1u << 20)
static inline void buf_recycle(struct buf *b)
{
    if (b->cap > BUF_RECYCLE_MAX)
        buf_release(b);
    else
        buf_reset(b);
}
/* Give up the bytes to the caller (free with xfree); the buffer is empty after. */
char *buf_detach(struct buf *b, size_t *len);

#include <string.h>
static inline void buf_puts(struct buf *b, const char *s) { buf_append(b, s, strlen(s)); }

#endif
