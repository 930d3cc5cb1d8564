/* fuzz_snapshot.c: libFuzzer target for the snapshot decoder: the engine's
 * record reader (engine/snapshot.c) loading into a real engine, and the
 * checked frame reader of replication/ (snap_format.c, restore.c) that every
 * restore and every replica's full copy goes through.
 *
 * Input: one mode byte, then the payload.
 *   always      the payload is a record stream, fed to eng_snap_read in
 *               slices cut where a hash of the input says, into an engine;
 *               when it loads and ends cleanly, the engine is written back
 *               (eng_snap_writer) and that stream must read back with the
 *               same key count (a round trip through both halves);
 *   mode & 1    the payload is a sequence of stored frames, checked as a
 *               restore checks them (checksums hold only for seed inputs:
 *               this exercises the frame and header parsing);
 *   mode & 2    the payload is wrapped into valid H, C..., T frames (chunks
 *               of 1 + (mode >> 2) * 16 bytes, lz4 on odd chunks) and
 *               checked: the verdict must agree with the direct load.
 * Each input starts from an empty engine. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "snap_int.h"
#include "fuzz.h"

#define NOW_MS 1700000000000LL /* fixed: a verdict never depends on the clock */

static struct eng *E;

void fuzz_cleanup(void)
{
    eng_free(E);
    E = NULL;
}

/* Loads p[0..n) into E in slices; 0 when it loaded and ended cleanly. */
static int load_sliced(const uint8_t *p, size_t n, uint64_t seed, uint64_t *keys)
{
    struct eng_snap_reader r;
    int rc = 0;
    eng_snap_reader_init(&r, E, NOW_MS);
    for (size_t off = 0; off < n && rc == 0;) {
        size_t k = fuzz_next_slice(&seed, 7, 500);
        k = k < n - off ? k : n - off;
        rc = eng_snap_read(&r, p + off, k);
        off += k;
    }
    if (rc == 0)
        rc = eng_snap_reader_finish(&r);
    *keys = r.loaded;
    eng_snap_reader_release(&r);
    return rc;
}

/* Writes E out as a record stream and reads it back (parse only). */
static void round_trip(void)
{
    struct eng_ctx c;
    struct eng_snap_writer w;
    struct buf out = BUF_INIT;
    eng_ctx_init(&c, E, 0);
    c.now_ms = NOW_MS;
    eng_lock_all(&c);
    eng_snap_writer_init(&w, &c, 64);
    while (eng_snap_write(&w, &out, 4096))
        ;
    uint64_t written = w.counts.keys;
    eng_snap_writer_release(&w);
    eng_unlock(&c);
    struct eng_snap_reader r;
    eng_snap_reader_init(&r, NULL, NOW_MS);
    CHECK(eng_snap_read(&r, out.p, out.len) == 0);
    CHECK(eng_snap_reader_finish(&r) == 0);
    CHECK(r.counts.keys == written);
    eng_snap_reader_release(&r);
    buf_release(&out);
}

/* Stored frames, one after the other, as a restore reads them. */
static void check_frames(const uint8_t *p, size_t n)
{
    struct snap_check c;
    snap_check_init(&c, NULL, NOW_MS);
    size_t off = 0;
    while (off < n) {
        struct snap_frame f;
        size_t total;
        const char *why = NULL;
        int rc = snap_frame_parse(p + off, n - off, &f, &total, &why);
        if (rc < 0) {
            CHECK(rc == ERR_AGAIN || (rc == ERR_CORRUPT && why));
            break;
        }
        CHECK(total >= SNAP_HDR && total <= n - off);
        if (snap_check_frame(&c, p + off, total) < 0) {
            CHECK(c.err[0]);
            break;
        }
        off += total;
    }
    snap_check_finish(&c);
    snap_check_release(&c);
}

/* The payload wrapped in valid frames; returns the checked verdict. */
static int check_wrapped(const uint8_t *p, size_t n, size_t chunk)
{
    struct buf frames = BUF_INIT, meta = BUF_INIT;
    struct snap_meta m = {.created_ms = NOW_MS};
    snap_make_id(m.id, NOW_MS);
    snap_meta_header(&m, &meta);
    snap_frame_build(&frames, SNAP_K_HEADER, 0, meta.p, meta.len, 0);
    XXH3_state_t *dg = XXH3_createState();
    XXH3_64bits_reset(dg);
    /* the record count the trailer must name: a parse-only pass */
    struct eng_snap_reader r;
    eng_snap_reader_init(&r, NULL, NOW_MS);
    eng_snap_read(&r, p, n);
    m.counts = r.counts;
    eng_snap_reader_release(&r);
    for (size_t off = 0; off < n; off += chunk, m.chunks++) {
        size_t k = chunk < n - off ? chunk : n - off;
        uint64_t sum = snap_frame_build(&frames, SNAP_K_CHUNK, m.chunks, p + off, k, m.chunks & 1);
        unsigned char le[8];
        for (int i = 0; i < 8; i++)
            le[i] = (unsigned char)(sum >> (8 * i));
        XXH3_64bits_update(dg, le, sizeof le);
    }
    m.digest = XXH3_64bits_digest(dg);
    XXH3_freeState(dg);
    buf_reset(&meta);
    snap_meta_trailer(&m, &meta);
    snap_frame_build(&frames, SNAP_K_TRAILER, 0, meta.p, meta.len, 0);

    struct snap_check c;
    snap_check_init(&c, E, NOW_MS);
    int rc = 0;
    for (size_t off = 0; off < frames.len && rc == 0;) {
        struct snap_frame f;
        size_t total;
        CHECK(snap_frame_parse(frames.p + off, frames.len - off, &f, &total, NULL) == 0);
        rc = snap_check_frame(&c, frames.p + off, total);
        off += total;
    }
    if (rc == 0)
        rc = snap_check_finish(&c);
    snap_check_release(&c);
    buf_release(&frames);
    buf_release(&meta);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!E) {
        struct eng_config ec = {.nshards = 2, .ndb = 16, .maxmemory_samples = 5};
        E = eng_new(&ec);
    }
    if (size < 1)
        return 0;
    unsigned mode = data[0];
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    uint64_t keys = 0;
    int direct = load_sliced(p, n, fuzz_seed(data, size), &keys);
    if (direct == 0)
        round_trip();
    fuzz_flush(E);
    if (mode & 1)
        check_frames(p, n);
    if (mode & 2) {
        int wrapped = check_wrapped(p, n, 1 + (size_t)(mode >> 2) * 16);
        /* same records, same verdict (the key count check is the trailer's) */
        CHECK((wrapped == 0) == (direct == 0));
        fuzz_flush(E);
    }
    return 0;
}
