/* test_repl_backlog.c: replication/repl_backlog.c.  The ring keeps exactly
 * the last `size` bytes through wrap-arounds and appends larger than itself,
 * and hands back any tail of them in order; the journal's commands encode
 * as Redis propagates them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "repl_int.h"

/* The model: everything ever appended. */
static void check_tail(const struct repl_backlog *b, const char *all, size_t total)
{
    size_t held = total < b->size ? total : b->size;
    assert_int_equal(b->histlen, held);
    for (size_t n = 0; n <= held; n += 1 + n / 3) {
        struct buf out = BUF_INIT;
        repl_backlog_tail(b, n, &out);
        assert_int_equal(out.len, n);
        if (n)
            assert_memory_equal(out.p, all + total - n, n);
        buf_release(&out);
    }
}

static void test_ring_wraps(void **state)
{
    struct repl_backlog b;
    repl_backlog_init(&b, 100);
    char all[5000];
    size_t total = 0;
    unsigned seed = 7;
    while (total < 4000) {
        size_t n = (size_t)(rand_r(&seed) % 60) + 1;
        for (size_t i = 0; i < n; i++)
            all[total + i] = (char)('a' + (total + i) % 26);
        repl_backlog_append(&b, all + total, n);
        total += n;
        check_tail(&b, all, total);
    }
    repl_backlog_release(&b);
}

static void test_append_larger_than_ring(void **state)
{
    struct repl_backlog b;
    repl_backlog_init(&b, 64);
    char big[1000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)i;
    repl_backlog_append(&b, "xyz", 3);
    repl_backlog_append(&b, big, sizeof big);
    check_tail(&b, big, sizeof big);
    repl_backlog_append(&b, big, 10);
    char all[1010];
    memcpy(all, big, sizeof big);
    memcpy(all + sizeof big, big, 10);
    check_tail(&b, all, sizeof all);
    repl_backlog_release(&b);
}

static void test_encode(void **state)
{
    struct buf out = BUF_INIT;
    struct eng_str argv[3] = {{"SET", 3}, {"k", 1}, {"", 0}};
    repl_encode(&out, 3, argv);
    assert_string_equal(out.p, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
    buf_reset(&out);
    repl_encode_select(&out, 12);
    assert_string_equal(out.p, "*2\r\n$6\r\nSELECT\r\n$2\r\n12\r\n");
    buf_release(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ring_wraps),
        cmocka_unit_test(test_append_larger_than_ring),
        cmocka_unit_test(test_encode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
