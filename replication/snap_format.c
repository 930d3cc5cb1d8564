/* snap_format.c: the snapshot's frames (snap_int.h, docs/snapshot-format.md):
 * building and parsing frame headers, lz4 payloads, checksums, the
 * "key=value" payloads of the header and trailer frames, and snapshot ids.
 *
 *    0      6   7   8          12         16         20  21     24         32
 *   +------+---+---+----------+----------+----------+---+------+----------+--------------+
 *   |OBSNAP|ver|knd| seq u32  | raw_len  |stored_len|cdc| 0 0 0| xxh3 u64 | payload ...  |
 *   +------+---+---+----------+----------+----------+---+------+----------+--------------+
 *   xxh3 = XXH3-64 of bytes 0..23 followed by the stored payload (little-endian)
 *
 * Not for: I/O of any kind. */
#include <lz4.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "snap_int.h"

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const unsigned char *p) { return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32; }

static uint64_t frame_sum(const unsigned char *hdr, const void *payload, size_t n)
{
    XXH3_state_t st;
    XXH3_64bits_reset(&st);
    XXH3_64bits_update(&st, hdr, 24);
    XXH3_64bits_update(&st, payload, n);
    return XXH3_64bits_digest(&st);
}

uint64_t snap_frame_build(struct buf *out, int kind, uint32_t seq, const void *raw, size_t n, int compress)
{
    size_t at = out->len;
    int bound = compress ? LZ4_compressBound((int)n) : 0;
    buf_grow(out, SNAP_HDR + (n > (size_t)bound ? n : (size_t)bound));
    unsigned char *h = (unsigned char *)out->p + at, *pay = h + SNAP_HDR;
    int stored = 0, codec = SNAP_CODEC_NONE;
    if (compress && n > 0) {
        stored = LZ4_compress_default(raw, (char *)pay, (int)n, bound);
        if (stored > 0 && (size_t)stored < n)
            codec = SNAP_CODEC_LZ4;
    }
    if (codec == SNAP_CODEC_NONE) {
        memcpy(pay, raw, n);
        stored = (int)n;
    }
    memcpy(h, SNAP_MAGIC, 6);
    h[6] = SNAP_VERSION;
    h[7] = (unsigned char)kind;
    put32(h + 8, seq);
    put32(h + 12, (uint32_t)n);
    put32(h + 16, (uint32_t)stored);
    h[20] = (unsigned char)codec;
    h[21] = h[22] = h[23] = 0;
    uint64_t sum = frame_sum(h, pay, (size_t)stored);
    put64(h + 24, sum);
    out->len = at + SNAP_HDR + (size_t)stored;
    out->p[out->len] = '\0';
    return sum;
}

static int corrupt(const char **why, const char *reason)
{
    if (why)
        *why = reason;
    return ERR_CORRUPT;
}

int snap_frame_parse(const void *p, size_t n, struct snap_frame *f, size_t *total, const char **why)
{
    const unsigned char *h = p;
    if (n < SNAP_HDR) {
        if (n && memcmp(h, SNAP_MAGIC, n < 6 ? n : 6) != 0)
            return corrupt(why, "bad magic");
        *total = SNAP_HDR;
        return ERR_AGAIN;
    }
    if (memcmp(h, SNAP_MAGIC, 6) != 0)
        return corrupt(why, "bad magic");
    if (h[6] != SNAP_VERSION)
        return corrupt(why, "unknown format version");
    if (h[7] != SNAP_K_HEADER && h[7] != SNAP_K_CHUNK && h[7] != SNAP_K_TRAILER)
        return corrupt(why, "unknown frame kind");
    uint32_t raw = get32(h + 12), stored = get32(h + 16);
    int codec = h[20];
    if (codec > SNAP_CODEC_LZ4 || h[21] || h[22] || h[23])
        return corrupt(why, "bad codec");
    if (stored > SNAP_MAX_PAYLOAD || raw > SNAP_MAX_PAYLOAD || (codec == SNAP_CODEC_NONE && raw != stored))
        return corrupt(why, "bad sizes");
    if (n < SNAP_HDR + (size_t)stored) {
        *total = SNAP_HDR + (size_t)stored;
        return ERR_AGAIN;
    }
    uint64_t sum = get64(h + 24);
    if (frame_sum(h, h + SNAP_HDR, stored) != sum)
        return corrupt(why, "checksum mismatch");
    *f = (struct snap_frame){.kind = h[7], .codec = codec, .version = h[6], .seq = get32(h + 8),
                             .raw_len = raw, .stored_len = stored, .checksum = sum, .payload = h + SNAP_HDR};
    *total = SNAP_HDR + (size_t)stored;
    return 0;
}

int snap_frame_raw(const struct snap_frame *f, struct buf *out)
{
    buf_reset(out);
    buf_grow(out, f->raw_len);
    if (f->codec == SNAP_CODEC_NONE) {
        memcpy(out->p, f->payload, f->raw_len);
    } else {
        int got = LZ4_decompress_safe((const char *)f->payload, out->p, (int)f->stored_len, (int)f->raw_len);
        if (got != (int)f->raw_len)
            return ERR_CORRUPT;
    }
    out->len = f->raw_len;
    out->p[out->len] = '\0';
    return 0;
}

/* ---- key=value payloads ----------------------------------------------------------- */

void snap_kv_add(struct buf *b, const char *key, const char *fmt, ...)
{
    va_list ap;
    buf_puts(b, key);
    buf_putc(b, '=');
    va_start(ap, fmt);
    buf_vprintf(b, fmt, ap);
    va_end(ap);
    buf_putc(b, '\n');
}

int snap_kv_get(const char *p, size_t n, const char *key, char *out, size_t outlen)
{
    size_t kl = strlen(key);
    const char *end = p + n;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        if ((size_t)(le - p) > kl && !memcmp(p, key, kl) && p[kl] == '=') {
            size_t vl = (size_t)(le - p) - kl - 1;
            if (vl >= outlen)
                vl = outlen - 1;
            memcpy(out, p + kl + 1, vl);
            out[vl] = '\0';
            return 0;
        }
        p = le + 1;
    }
    return -1;
}

int snap_kv_u64(const char *p, size_t n, const char *key, uint64_t *v)
{
    char tmp[32], *end;
    if (snap_kv_get(p, n, key, tmp, sizeof tmp) < 0 || !tmp[0])
        return -1;
    unsigned long long x = strtoull(tmp, &end, 10);
    if (*end)
        return -1;
    *v = x;
    return 0;
}

static const char *const type_keys[ENG_T__COUNT] = {"strings", "lists", "sets", "zsets", "hashes"};

void snap_meta_header(const struct snap_meta *m, struct buf *b)
{
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    snap_kv_add(b, "format", "%d", SNAP_VERSION);
    snap_kv_add(b, "records", "%d", ENG_SNAP_VERSION);
    snap_kv_add(b, "id", "%s", m->id);
    snap_kv_add(b, "created_ms", "%lld", (long long)m->created_ms);
    snap_kv_add(b, "repl_offset", "%llu", (unsigned long long)m->repl_offset);
    snap_kv_add(b, "host", "%s", host);
    snap_kv_add(b, "pid", "%d", (int)getpid());
    snap_kv_add(b, "server", "obentchi %s", OBENTCHI_VERSION);
}

void snap_meta_trailer(const struct snap_meta *m, struct buf *b)
{
    snap_kv_add(b, "id", "%s", m->id);
    snap_kv_add(b, "chunks", "%u", m->chunks);
    snap_kv_add(b, "keys", "%llu", (unsigned long long)m->counts.keys);
    for (int t = 0; t < ENG_T__COUNT; t++)
        snap_kv_add(b, type_keys[t], "%llu", (unsigned long long)m->counts.by_type[t]);
    snap_kv_add(b, "expires", "%llu", (unsigned long long)m->counts.expires);
    snap_kv_add(b, "elements", "%llu", (unsigned long long)m->counts.elements);
    snap_kv_add(b, "raw_bytes", "%llu", (unsigned long long)m->raw_bytes);
    snap_kv_add(b, "stored_bytes", "%llu", (unsigned long long)m->stored_bytes);
    snap_kv_add(b, "digest", "%016llx", (unsigned long long)m->digest);
    snap_kv_add(b, "repl_offset", "%llu", (unsigned long long)m->repl_offset);
    snap_kv_add(b, "duration_ms", "%lld", (long long)m->duration_ms);
}

int snap_meta_parse(struct snap_meta *m, const char *p, size_t n, int trailer)
{
    uint64_t v;
    if (snap_kv_get(p, n, "id", m->id, sizeof m->id) < 0 || !snap_id_valid(m->id))
        return -1;
    if (snap_kv_u64(p, n, "repl_offset", &m->repl_offset) < 0)
        return -1;
    if (!trailer) {
        if (snap_kv_u64(p, n, "format", &v) < 0 || v != SNAP_VERSION || snap_kv_u64(p, n, "records", &v) < 0 ||
            v != ENG_SNAP_VERSION || snap_kv_u64(p, n, "created_ms", &v) < 0)
            return -1;
        m->created_ms = (int64_t)v;
        return 0;
    }
    char hex[32], *end;
    if (snap_kv_u64(p, n, "chunks", &v) < 0 || v > UINT32_MAX)
        return -1;
    m->chunks = (uint32_t)v;
    if (snap_kv_u64(p, n, "keys", &m->counts.keys) < 0 || snap_kv_get(p, n, "digest", hex, sizeof hex) < 0)
        return -1;
    m->digest = strtoull(hex, &end, 16);
    if (*end || !hex[0])
        return -1;
    for (int t = 0; t < ENG_T__COUNT; t++)
        snap_kv_u64(p, n, type_keys[t], &m->counts.by_type[t]);
    snap_kv_u64(p, n, "expires", &m->counts.expires);
    snap_kv_u64(p, n, "elements", &m->counts.elements);
    snap_kv_u64(p, n, "raw_bytes", &m->raw_bytes);
    snap_kv_u64(p, n, "stored_bytes", &m->stored_bytes);
    if (snap_kv_u64(p, n, "duration_ms", &v) == 0)
        m->duration_ms = (int64_t)v;
    return 0;
}

/* ---- ids ------------------------------------------------------------------------ */

void snap_make_id(char out[SNAP_ID_MAX], int64_t now_ms)
{
    time_t secs = (time_t)(now_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y%m%dT%H%M%S", &tm);
    uint64_t r = XXH3_64bits_withSeed(&now_ms, sizeof now_ms, (uint64_t)getpid() ^ (uint64_t)clock());
    snprintf(out, SNAP_ID_MAX, "%s%03dZ-%08x", when, (int)(now_ms % 1000), (unsigned)(r & 0xFFFFFFFFu));
}

int snap_id_valid(const char *s)
{
    /* d: a digit, x: a lower-case hex digit, anything else: itself */
    static const char shape[] = "ddddddddTdddddddddZ-xxxxxxxx";
    if (strlen(s) != sizeof shape - 1)
        return 0;
    for (size_t i = 0; i < sizeof shape - 1; i++) {
        char c = s[i], want = shape[i];
        int ok = want == 'd' ? (c >= '0' && c <= '9')
                 : want == 'x' ? ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))
                               : c == want;
        if (!ok)
            return 0;
    }
    return 1;
}
