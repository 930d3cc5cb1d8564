/* fuzz_resp.c: libFuzzer target for the RESP readers (resp_reader.c).
 *
 * The request reader is run twice over the input: once with all of it in one
 * buffer, once in slices whose sizes are drawn from a hash of the input, the
 * bytes moved to a fresh block before every call (as a connection's buffer is
 * realloc'd).  Both runs must return the same requests and stop the same way;
 * ASan/UBSan catch the rest.  The value reader then reads the input as a
 * sequence of replies; each value read must need every one of its bytes.
 *
 * Built by meson (protocol/fuzz/meson.build): with -Dfuzz=true against
 * libFuzzer (`make fuzz`), otherwise with replay.c as a test that feeds it
 * every file of corpus/resp (`make test`, under the sanitizer build too). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "resp.h"
#include "fuzz.h"

/* Small limits so that inputs of a few KiB reach them. */
static const struct resp_limits req_lim = {512, 16, 256};
static const struct resp_value_limits val_lim = {512, 16, 8};

static void render(struct buf *out, const struct resp_req_reader *r, const char *buf, size_t used, int64_t argc)
{
    buf_printf(out, "%lld:", (long long)argc);
    for (int64_t i = 0; i < argc; i++) {
        size_t n;
        const char *p = resp_req_arg(r, buf, i, &n);
        if (r->in_scratch)
            CHECK(r->args[i].off + n <= r->scratch_cap);
        else
            CHECK(r->args[i].off + n <= used);
        buf_printf(out, "%zu[", n);
        buf_append(out, p, n);
        buf_putc(out, ']');
    }
    buf_putc(out, '|');
}

/* Runs the request reader over data; sliced when seed != 0.  The outcome is
 * appended to out: the requests, then "E:<msg>" or "A<leftover>". */
static void run_requests(const uint8_t *data, size_t size, uint64_t seed, struct buf *out)
{
    struct resp_req_reader r;
    char *cur = NULL;
    size_t have = 0, given = 0;

    resp_req_reader_init(&r, &req_lim);
    for (;;) {
        int64_t argc;
        size_t used;
        int rc = resp_req_read(&r, cur ? cur : "", have, &argc, &used);
        if (rc == 1) {
            /* inline requests have no argument limit (Redis has none either) */
            CHECK(used > 0 && used <= have && argc >= 0 && (size_t)argc <= used);
            render(out, &r, cur, used, argc);
            memmove(cur, cur + used, have - used);
            have -= used;
            continue;
        }
        if (rc == ERR_PROTO) {
            buf_printf(out, "E:%s", r.err);
            break;
        }
        CHECK(rc == ERR_AGAIN);
        if (given == size) {
            buf_printf(out, "A%zu", have);
            break;
        }
        size_t n = seed ? fuzz_next_slice(&seed, 5, 300) : size;
        n = n < size - given ? n : size - given;
        char *moved = malloc(have + n);
        if (have)
            memcpy(moved, cur, have);
        memcpy(moved + have, data + given, n);
        free(cur);
        cur = moved, have += n, given += n;
    }
    free(cur);
    resp_req_reader_release(&r);
}

/* Both runs agree.  Only the wording of an over-long count line may differ:
 * whole, its CR is found far away ("invalid ... length"); sliced, 64 KiB pile
 * up first ("too big ... count string"), as in Redis. */
static void fuzz_requests(const uint8_t *data, size_t size)
{
    struct buf whole = BUF_INIT, sliced = BUF_INIT;
    run_requests(data, size, 0, &whole);
    run_requests(data, size, fuzz_seed(data, size), &sliced);
    if (!(whole.len == sliced.len && memcmp(whole.p, sliced.p, whole.len) == 0)) {
        int too_big = strstr(whole.p, "E:too big") || strstr(sliced.p, "E:too big");
        if (!too_big) {
            fprintf(stderr, "whole:  %s\nsliced: %s\n", whole.p, sliced.p);
            abort();
        }
    }
    buf_release(&whole);
    buf_release(&sliced);
}

static void check_value(const struct resp_value *v, int depth)
{
    CHECK(depth <= val_lim.max_depth);
    size_t count = v->n * (v->type == RESP_MAP || v->type == RESP_ATTR ? 2 : 1);
    if (v->str)
        CHECK(v->str[v->len] == '\0' && (int64_t)v->len <= val_lim.max_bulk);
    CHECK((int64_t)v->n <= val_lim.max_elems && (count == 0) == (v->elems == NULL));
    for (size_t i = 0; i < count; i++)
        check_value(&v->elems[i], depth + 1);
}

static void fuzz_values(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    size_t off = 0;
    while (off < size) {
        struct resp_value v;
        size_t used;
        int rc = resp_value_read(p + off, size - off, &val_lim, &v, &used);
        if (rc != 1) {
            CHECK(rc == ERR_AGAIN || rc == ERR_PROTO);
            break;
        }
        CHECK(used > 0 && used <= size - off);
        check_value(&v, 0);
        resp_value_free(&v);
        /* a value needs all its bytes: one fewer is incomplete */
        struct resp_value w;
        size_t u;
        CHECK(resp_value_read(p + off, used - 1, &val_lim, &w, &u) == ERR_AGAIN);
        off += used;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_requests(data, size);
    fuzz_values(data, size);
    return 0;
}
