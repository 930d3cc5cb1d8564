/* test_buf.c: buf.c's invariants (len < cap, p[len] == '\0', p NULL only
 * while cap is 0) through append, putc, printf growth, consume, reset and
 * detach, and that releasing gives back every byte alloc.c counted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"

static void check_inv(const struct buf *b)
{
    assert_true(b->len <= b->cap);
    if (b->cap == 0) {
        assert_null(b->p);
    } else {
        assert_non_null(b->p);
        assert_true(b->len < b->cap);
        assert_int_equal(b->p[b->len], '\0');
    }
}

static void test_init_release(void **state)
{
    struct buf a = BUF_INIT, b;
    buf_init(&b);
    assert_null(a.p);
    assert_int_equal(a.len, 0);
    assert_int_equal(a.cap, 0);
    assert_memory_equal(&a, &b, sizeof a);
    buf_release(&a); /* releasing an empty buffer is fine */
    check_inv(&a);
    buf_puts(&a, "x");
    buf_release(&a);
    check_inv(&a);
    buf_release(&a); /* and twice */
}

static void test_append(void **state)
{
    int64_t before = alloc_used();
    struct buf b = BUF_INIT;
    buf_append(&b, "hello", 5);
    check_inv(&b);
    assert_string_equal(b.p, "hello");
    buf_append(&b, "\0wor\0ld", 7); /* binary safe */
    check_inv(&b);
    assert_int_equal(b.len, 12);
    assert_memory_equal(b.p, "hello\0wor\0ld", 12);
    buf_append(&b, "", 0);
    assert_int_equal(b.len, 12);
    buf_puts(&b, "!");
    assert_int_equal(b.len, 13);
    check_inv(&b);

    struct buf e = BUF_INIT;
    buf_append(&e, "", 0); /* appending nothing still makes a string */
    check_inv(&e);
    assert_non_null(e.p);
    assert_string_equal(e.p, "");
    buf_release(&e);

    for (int i = 0; i < 100000; i++)
        buf_putc(&b, (char)('a' + i % 26));
    check_inv(&b);
    assert_int_equal(b.len, 13 + 100000);
    assert_int_equal(b.p[13], 'a');
    assert_int_equal(b.p[13 + 99999], 'a' + 99999 % 26);

    /* Past 1 MiB growth is linear; the content must survive every step. */
    static char big[3 << 20];
    memset(big, 'z', sizeof big);
    buf_append(&b, big, sizeof big);
    check_inv(&b);
    assert_int_equal(b.len, 13 + 100000 + sizeof big);
    assert_int_equal(b.p[13], 'a');
    assert_int_equal(b.p[b.len - 1], 'z');
    buf_release(&b);
    assert_int_equal(alloc_used(), before);
}

static void test_grow(void **state)
{
    struct buf b = BUF_INIT;
    buf_grow(&b, 100);
    check_inv(&b); /* terminated even though nothing was appended yet */
    assert_true(b.cap >= 101);
    assert_int_equal(b.len, 0);
    char *p = b.p;
    size_t cap = b.cap;
    buf_append(&b, "0123456789", 10);
    assert_ptr_equal(b.p, p); /* room was reserved */
    buf_grow(&b, cap - 11);  /* still fits: no change */
    assert_int_equal(b.cap, cap);
    buf_grow(&b, cap - 10);  /* one more byte than fits */
    assert_true(b.cap > cap);
    assert_string_equal(b.p, "0123456789");
    buf_release(&b);

    buf_grow(&b, 10); /* only grown, then detached: still a string */
    char *d = buf_detach(&b, NULL);
    assert_string_equal(d, "");
    xfree(d);
}

static void test_printf(void **state)
{
    int64_t before = alloc_used();
    struct buf b = BUF_INIT;
    buf_printf(&b, "%s", "");
    check_inv(&b);
    assert_non_null(b.p);
    assert_int_equal(b.len, 0);
    buf_printf(&b, "%d-%s", 42, "x");
    check_inv(&b);
    assert_string_equal(b.p, "42-x");

    /* Exactly filling the room left, then one byte more than it. */
    size_t room = b.cap - b.len - 1;
    char *p = b.p;
    buf_printf(&b, "%*s", (int)room, "");
    check_inv(&b);
    assert_ptr_equal(b.p, p);
    assert_int_equal(b.len, b.cap - 1);
    size_t len = b.len;
    buf_printf(&b, "%s", "yz");
    check_inv(&b);
    assert_int_equal(b.len, len + 2);
    assert_memory_equal(b.p, "42-x", 4);
    assert_string_equal(b.p + len, "yz");

    /* Far past the capacity, onto a non-empty buffer. */
    static char big[50000];
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    buf_printf(&b, "[%s]", big);
    check_inv(&b);
    assert_int_equal(b.len, len + 2 + 2 + sizeof big - 1);
    assert_int_equal(b.p[len + 2], '[');
    assert_int_equal(b.p[b.len - 1], ']');
    assert_int_equal(b.p[b.len - 2], 'q');
    assert_memory_equal(b.p + len, "yz[", 3);
    buf_release(&b);

    struct buf c = BUF_INIT; /* growth from nothing */
    buf_printf(&c, "%s%s", big, big);
    check_inv(&c);
    assert_int_equal(c.len, 2 * (sizeof big - 1));
    buf_release(&c);
    assert_int_equal(alloc_used(), before);
}

static void test_consume_reset(void **state)
{
    struct buf b = BUF_INIT;
    buf_consume(&b, 0);
    buf_consume(&b, 5);
    check_inv(&b);
    buf_puts(&b, "abcdef");
    buf_consume(&b, 0);
    assert_string_equal(b.p, "abcdef");
    buf_consume(&b, 2);
    check_inv(&b);
    assert_int_equal(b.len, 4);
    assert_string_equal(b.p, "cdef");
    buf_consume(&b, 4);
    check_inv(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.p, "");
    buf_puts(&b, "xyz");
    buf_consume(&b, 100);
    check_inv(&b);
    assert_int_equal(b.len, 0);
    buf_append(&b, "a\0b", 3);
    buf_consume(&b, 1);
    assert_int_equal(b.len, 2);
    assert_memory_equal(b.p, "\0b", 3);
    size_t cap = b.cap;
    buf_reset(&b);
    check_inv(&b);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, cap); /* reset keeps the memory */
    buf_release(&b);
    struct buf e = BUF_INIT;
    buf_reset(&e);
    check_inv(&e);
}

static void test_detach(void **state)
{
    int64_t before = alloc_used();
    struct buf b = BUF_INIT;
    buf_puts(&b, "hello");
    size_t len = 0;
    char *p = b.p;
    char *d = buf_detach(&b, &len);
    assert_ptr_equal(d, p);
    assert_int_equal(len, 5);
    assert_string_equal(d, "hello");
    check_inv(&b);
    assert_null(b.p);
    assert_int_equal(b.len, 0);
    buf_puts(&b, "again"); /* usable after */
    assert_string_equal(b.p, "again");
    buf_release(&b);
    xfree(d);

    d = buf_detach(&b, &len); /* an empty buffer gives "" */
    assert_non_null(d);
    assert_int_equal(len, 0);
    assert_string_equal(d, "");
    xfree(d);
    d = buf_detach(&b, NULL);
    xfree(d);
    assert_int_equal(alloc_used(), before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_release), cmocka_unit_test(test_append),        cmocka_unit_test(test_grow),
        cmocka_unit_test(test_printf),       cmocka_unit_test(test_consume_reset), cmocka_unit_test(test_detach),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
