/* sink_mongo.c: the MongoDB store, through mongo-c-driver.  One client,
 * owned by the thread that uses the store (the snapshot thread, or a tool).
 *
 *   <collection>.chunks  {_id: "<id>:<seq, 8 digits>", snap: id, seq, data: Binary(C frame),
 *                         xxh3: int64, raw_len}          written first, in order
 *   <collection>         {_id: id, complete: true, created, chunks, checksums: [int64...],
 *                         keys, keys_by_type, bytes, repl_offset, header: Binary(H frame),
 *                         trailer: Binary(T frame), ...}   written last
 *
 * A snapshot exists for readers only through its manifest, written after
 * every chunk was acknowledged with the configured write concern; pruning
 * deletes manifests before chunks.  So a crash, a refused write or a dead
 * server at any moment leaves at worst chunks without a manifest (removed by
 * a later prune: everything older than the oldest kept snapshot goes), never
 * a manifest without its chunks.  Chunk ids sort by snapshot then sequence,
 * so one snapshot's chunks come back in order from the _id index alone.
 *
 * Timeouts: the URI's own when it names them, else 5 s to select a server
 * and 30 s per socket operation, so that a slow or silent server fails a
 * snapshot instead of hanging it. */
#include <errno.h>
#include <mongoc/mongoc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "snap_int.h"

#define WTIMEOUT_MS 30000

struct mongo_store {
    struct snap_store base;
    mongoc_client_t *client;
    mongoc_database_t *db;
    mongoc_collection_t *manifests, *chunks;
    mongoc_write_concern_t *wc;
    bson_t *wopts; /* {writeConcern: ...} */
    /* the snapshot being written */
    char id[SNAP_ID_MAX];
    struct buf header;
    int64_t *sums;
    uint32_t nsums, capsums;
};

/* ---- set-up ---------------------------------------------------------------------- */

/* The driver's own lines: its errors as warnings; its warnings (mostly
 * echoes of a failure the snapshot code already logs) at verbose. */
static void log_handler(mongoc_log_level_t level, const char *domain, const char *message, void *ud)
{
    if (level <= MONGOC_LOG_LEVEL_ERROR)
        log_warn("mongo-c-driver", "domain=%s message=\"%s\"", domain, message);
    else if (level == MONGOC_LOG_LEVEL_WARNING)
        log_verbose("mongo-c-driver", "domain=%s message=\"%s\"", domain, message);
}

/* The handler goes in before mongoc_init(), which may already log (its
 * shared-memory counters warn when a file a killed process left in /dev/shm
 * has this pid's name): with a logfile, nothing may reach stderr. */
static void driver_init(void)
{
    mongoc_log_set_handler(log_handler, NULL);
    mongoc_init();
}

static int failed(struct mongo_store *m, const char *what, const bson_error_t *e)
{
    snprintf(m->base.err, sizeof m->base.err, "%s: %.380s (domain %u code %u)", what, e->message, e->domain, e->code);
    return -EIO;
}

static mongoc_write_concern_t *parse_wc(const char *text, char *err, size_t errlen)
{
    mongoc_write_concern_t *wc = mongoc_write_concern_new();
    char *end;
    long n = strtol(text, &end, 10);
    if (!*text || !strcmp(text, "majority")) {
        mongoc_write_concern_set_wmajority(wc, WTIMEOUT_MS);
    } else if (!*end && n >= 0 && n < 100) {
        mongoc_write_concern_set_w(wc, (int32_t)n);
        if (n > 1)
            mongoc_write_concern_set_wtimeout_int64(wc, WTIMEOUT_MS);
    } else {
        mongoc_write_concern_set_wtag(wc, text); /* a replica set tag */
        mongoc_write_concern_set_wtimeout_int64(wc, WTIMEOUT_MS);
    }
    if (!mongoc_write_concern_is_valid(wc)) {
        snprintf(err, errlen, "invalid mongo-write-concern '%s'", text);
        mongoc_write_concern_destroy(wc);
        return NULL;
    }
    return wc;
}

static const struct snap_store_ops mongo_ops;

struct snap_store *snap_mongo_open(const char *uri_text, const char *db, const char *collection,
                                   const char *write_concern, char *err, size_t errlen)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, driver_init);
    bson_error_t e;
    mongoc_uri_t *uri = mongoc_uri_new_with_error(uri_text, &e);
    if (!uri) {
        /* the driver's message may quote the URI, credentials included */
        snprintf(err, errlen, "mongo-uri refused by the driver (check its syntax and options)");
        return NULL;
    }
    if (!mongoc_uri_has_option(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS))
        mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 5000);
    if (!mongoc_uri_has_option(uri, MONGOC_URI_CONNECTTIMEOUTMS))
        mongoc_uri_set_option_as_int32(uri, MONGOC_URI_CONNECTTIMEOUTMS, 5000);
    if (!mongoc_uri_has_option(uri, MONGOC_URI_SOCKETTIMEOUTMS))
        mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS, 30000);
    if (!mongoc_uri_has_option(uri, MONGOC_URI_APPNAME))
        mongoc_uri_set_appname(uri, "obentchi-snapshot");
    mongoc_write_concern_t *wc = parse_wc(write_concern ? write_concern : "majority", err, errlen);
    mongoc_client_t *client = wc ? mongoc_client_new_from_uri_with_error(uri, &e) : NULL;
    mongoc_uri_destroy(uri);
    if (!client) {
        if (wc) {
            snprintf(err, errlen, "mongo client: %s", e.message);
            mongoc_write_concern_destroy(wc);
        }
        return NULL;
    }
    mongoc_client_set_error_api(client, MONGOC_ERROR_API_VERSION_2);
    struct mongo_store *m = xcalloc(1, sizeof *m);
    m->base.ops = &mongo_ops;
    m->client = client;
    m->db = mongoc_client_get_database(client, db);
    m->manifests = mongoc_database_get_collection(m->db, collection);
    char chunks[256];
    snprintf(chunks, sizeof chunks, "%s.chunks", collection);
    m->chunks = mongoc_database_get_collection(m->db, chunks);
    m->wc = wc;
    m->wopts = bson_new();
    mongoc_write_concern_append(wc, m->wopts);
    buf_init(&m->header);
    return &m->base;
}

static void mongo_close(struct snap_store *s)
{
    struct mongo_store *m = (struct mongo_store *)s;
    mongoc_collection_destroy(m->chunks);
    mongoc_collection_destroy(m->manifests);
    mongoc_database_destroy(m->db);
    mongoc_client_destroy(m->client);
    mongoc_write_concern_destroy(m->wc);
    bson_destroy(m->wopts);
    buf_release(&m->header);
    xfree(m->sums);
    xfree(m);
}

/* ---- writing ---------------------------------------------------------------------- */

static void chunk_id(char *out, size_t n, const char *id, uint32_t seq)
{
    snprintf(out, n, "%s:%08u", id, seq);
}

/* {_id: {$gte: "<id>:", $lt: "<id>;"}}: the chunks of snapshot lo; with lo
 * NULL, every chunk of the snapshots before hi ({$lt: "<hi>:"}). */
static void chunk_range(bson_t *q, const char *lo, const char *hi)
{
    bson_t r;
    char a[SNAP_ID_MAX + 2], b[SNAP_ID_MAX + 2];
    BSON_APPEND_DOCUMENT_BEGIN(q, "_id", &r);
    if (lo) {
        snprintf(a, sizeof a, "%s:", lo);
        BSON_APPEND_UTF8(&r, "$gte", a);
        snprintf(b, sizeof b, "%s;", lo);
        BSON_APPEND_UTF8(&r, "$lt", b);
    } else {
        snprintf(b, sizeof b, "%s:", hi);
        BSON_APPEND_UTF8(&r, "$lt", b);
    }
    bson_append_document_end(q, &r);
}

/* Every chunk of snapshot id and of the snapshots before it. */
static void chunk_range_through(bson_t *q, const char *id)
{
    bson_t r;
    char hi[SNAP_ID_MAX + 2];
    snprintf(hi, sizeof hi, "%s;", id);
    BSON_APPEND_DOCUMENT_BEGIN(q, "_id", &r);
    BSON_APPEND_UTF8(&r, "$lt", hi);
    bson_append_document_end(q, &r);
}

static int mongo_begin(struct snap_store *s, const struct snap_meta *meta, const void *frame, size_t n)
{
    struct mongo_store *m = (struct mongo_store *)s;
    bson_error_t e;
    bson_t ping = BSON_INITIALIZER;
    BSON_APPEND_INT32(&ping, "ping", 1);
    int ok = mongoc_database_command_simple(m->db, &ping, NULL, NULL, &e);
    bson_destroy(&ping);
    if (!ok)
        return failed(m, "MongoDB unreachable", &e);
    snprintf(m->id, sizeof m->id, "%s", meta->id);
    buf_reset(&m->header);
    buf_append(&m->header, frame, n);
    m->nsums = 0;
    return 0;
}

static int mongo_chunk(struct snap_store *s, uint32_t seq, uint64_t checksum, uint32_t raw_len, const void *frame,
                       size_t n)
{
    struct mongo_store *m = (struct mongo_store *)s;
    char cid[SNAP_ID_MAX + 16];
    chunk_id(cid, sizeof cid, m->id, seq);
    bson_t doc = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&doc, "_id", cid);
    BSON_APPEND_UTF8(&doc, "snap", m->id);
    BSON_APPEND_INT32(&doc, "seq", (int32_t)seq);
    BSON_APPEND_BINARY(&doc, "data", BSON_SUBTYPE_BINARY, frame, (uint32_t)n);
    BSON_APPEND_INT64(&doc, "xxh3", (int64_t)checksum);
    BSON_APPEND_INT32(&doc, "raw_len", (int32_t)raw_len);
    bson_error_t e;
    int ok = mongoc_collection_insert_one(m->chunks, &doc, m->wopts, NULL, &e);
    bson_destroy(&doc);
    if (!ok) {
        char what[96];
        snprintf(what, sizeof what, "writing chunk %u", seq);
        return failed(m, what, &e);
    }
    if (m->nsums == m->capsums) {
        m->capsums = m->capsums ? 2 * m->capsums : 64;
        m->sums = xrealloc(m->sums, sizeof *m->sums * m->capsums);
    }
    m->sums[m->nsums++] = (int64_t)checksum;
    return 0;
}

static const char *const type_keys[ENG_T__COUNT] = {"string", "list", "set", "zset", "hash"};

static int mongo_commit(struct snap_store *s, const struct snap_meta *meta, const void *frame, size_t n)
{
    struct mongo_store *m = (struct mongo_store *)s;
    bson_t doc = BSON_INITIALIZER, arr, types;
    BSON_APPEND_UTF8(&doc, "_id", m->id);
    BSON_APPEND_BOOL(&doc, "complete", true);
    BSON_APPEND_INT32(&doc, "format", SNAP_VERSION);
    BSON_APPEND_DATE_TIME(&doc, "created", meta->created_ms);
    BSON_APPEND_INT32(&doc, "chunks", (int32_t)meta->chunks);
    BSON_APPEND_ARRAY_BEGIN(&doc, "checksums", &arr);
    for (uint32_t i = 0; i < m->nsums; i++) {
        char key[16];
        const char *k;
        bson_uint32_to_string(i, &k, key, sizeof key);
        bson_append_int64(&arr, k, -1, m->sums[i]);
    }
    bson_append_array_end(&doc, &arr);
    BSON_APPEND_INT64(&doc, "keys", (int64_t)meta->counts.keys);
    BSON_APPEND_DOCUMENT_BEGIN(&doc, "keys_by_type", &types);
    for (int t = 0; t < ENG_T__COUNT; t++)
        BSON_APPEND_INT64(&types, type_keys[t], (int64_t)meta->counts.by_type[t]);
    bson_append_document_end(&doc, &types);
    BSON_APPEND_INT64(&doc, "raw_bytes", (int64_t)meta->raw_bytes);
    BSON_APPEND_INT64(&doc, "stored_bytes", (int64_t)meta->stored_bytes);
    BSON_APPEND_INT64(&doc, "repl_offset", (int64_t)meta->repl_offset);
    BSON_APPEND_INT64(&doc, "duration_ms", meta->duration_ms);
    BSON_APPEND_BINARY(&doc, "header", BSON_SUBTYPE_BINARY, (const uint8_t *)m->header.p, (uint32_t)m->header.len);
    BSON_APPEND_BINARY(&doc, "trailer", BSON_SUBTYPE_BINARY, frame, (uint32_t)n);
    bson_error_t e;
    int ok = mongoc_collection_insert_one(m->manifests, &doc, m->wopts, NULL, &e);
    bson_destroy(&doc);
    return ok ? 0 : failed(m, "writing the manifest", &e);
}

/* Best effort: the chunks of a snapshot that will have no manifest. */
static void mongo_abort(struct snap_store *s)
{
    struct mongo_store *m = (struct mongo_store *)s;
    if (!m->id[0])
        return;
    bson_t q = BSON_INITIALIZER;
    chunk_range(&q, m->id, NULL);
    bson_error_t e;
    mongoc_collection_delete_many(m->chunks, &q, NULL, NULL, &e);
    bson_destroy(&q);
    m->id[0] = '\0';
}

/* ---- listing, pruning, reading --------------------------------------------------------- */

static int mongo_list(struct snap_store *s, struct snap_list *out)
{
    struct mongo_store *m = (struct mongo_store *)s;
    bson_t q = BSON_INITIALIZER, opts = BSON_INITIALIZER, sort, proj;
    BSON_APPEND_BOOL(&q, "complete", true);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
    BSON_APPEND_INT32(&sort, "_id", -1);
    bson_append_document_end(&opts, &sort);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
    BSON_APPEND_INT32(&proj, "stored_bytes", 1);
    bson_append_document_end(&opts, &proj);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(m->manifests, &q, &opts, NULL);
    const bson_t *doc;
    int cap = 0;
    while (mongoc_cursor_next(cur, &doc)) {
        bson_iter_t it;
        if (!bson_iter_init_find(&it, doc, "_id") || !BSON_ITER_HOLDS_UTF8(&it))
            continue;
        const char *id = bson_iter_utf8(&it, NULL);
        if (!snap_id_valid(id))
            continue;
        if (out->n == cap) {
            cap = cap ? 2 * cap : 16;
            out->v = xrealloc(out->v, sizeof *out->v * (size_t)cap);
        }
        struct snap_entry *e = &out->v[out->n++];
        memset(e, 0, sizeof *e);
        snprintf(e->id, sizeof e->id, "%s", id);
        snprintf(e->name, sizeof e->name, "%s", id);
        if (bson_iter_init_find(&it, doc, "stored_bytes"))
            e->size = (uint64_t)bson_iter_as_int64(&it);
    }
    bson_error_t e;
    int rc = mongoc_cursor_error(cur, &e) ? failed(m, "listing snapshots", &e) : 0;
    mongoc_cursor_destroy(cur);
    bson_destroy(&q);
    bson_destroy(&opts);
    if (rc < 0)
        snap_list_release(out);
    return rc;
}

static int mongo_prune(struct snap_store *s, int keep)
{
    struct mongo_store *m = (struct mongo_store *)s;
    struct snap_list l = {0};
    if (mongo_list(s, &l) < 0)
        return -EIO;
    bson_error_t e;
    int rc = 0;
    for (int i = keep; i < l.n && rc == 0; i++) {
        bson_t q = BSON_INITIALIZER;
        BSON_APPEND_UTF8(&q, "_id", l.v[i].id);
        if (!mongoc_collection_delete_one(m->manifests, &q, m->wopts, NULL, &e))
            rc = failed(m, "removing an old manifest", &e);
        bson_destroy(&q);
    }
    if (rc == 0 && l.n > 0) {
        /* chunks of what was just removed, and of snapshots that never got
         * a manifest, older than the oldest snapshot kept (keep 0, for
         * tools: the chunks of the newest one too) */
        bson_t q = BSON_INITIALIZER;
        if (keep > 0)
            chunk_range(&q, NULL, l.v[(keep < l.n ? keep : l.n) - 1].id);
        else
            chunk_range_through(&q, l.v[0].id);
        if (!mongoc_collection_delete_many(m->chunks, &q, m->wopts, NULL, &e))
            rc = failed(m, "removing old chunks", &e);
        bson_destroy(&q);
    }
    snap_list_release(&l);
    return rc;
}

static int binary_field(const bson_t *doc, const char *name, const uint8_t **p, uint32_t *n)
{
    bson_iter_t it;
    bson_subtype_t sub;
    if (!bson_iter_init_find(&it, doc, name) || !BSON_ITER_HOLDS_BINARY(&it))
        return -1;
    bson_iter_binary(&it, &sub, n, p);
    return 0;
}

static int mongo_read(struct snap_store *s, const struct snap_entry *ent, snap_frame_fn *fn, void *ud)
{
    struct mongo_store *m = (struct mongo_store *)s;
    bson_t q = BSON_INITIALIZER, opts = BSON_INITIALIZER, sort;
    BSON_APPEND_UTF8(&q, "_id", ent->id);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(m->manifests, &q, NULL, NULL);
    const bson_t *doc;
    bson_t *manifest = mongoc_cursor_next(cur, &doc) ? bson_copy(doc) : NULL;
    bson_error_t e;
    int rc = mongoc_cursor_error(cur, &e) ? failed(m, "reading the manifest", &e) : 0;
    mongoc_cursor_destroy(cur);
    bson_reinit(&q);
    const uint8_t *hdr = NULL, *trl = NULL;
    uint32_t hn = 0, tn = 0;
    if (rc == 0 && (!manifest || binary_field(manifest, "header", &hdr, &hn) < 0 ||
                    binary_field(manifest, "trailer", &trl, &tn) < 0)) {
        snprintf(m->base.err, sizeof m->base.err, "manifest without its header or trailer frame");
        rc = ERR_CORRUPT;
    }
    if (rc == 0)
        rc = fn(ud, hdr, hn);
    if (rc == 0) {
        chunk_range(&q, ent->id, NULL);
        BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
        BSON_APPEND_INT32(&sort, "_id", 1);
        bson_append_document_end(&opts, &sort);
        cur = mongoc_collection_find_with_opts(m->chunks, &q, &opts, NULL);
        while (rc == 0 && mongoc_cursor_next(cur, &doc)) {
            const uint8_t *p = NULL;
            uint32_t n = 0;
            binary_field(doc, "data", &p, &n); /* none: an empty frame, refused by the checker */
            rc = fn(ud, p ? p : (const uint8_t *)"", n);
        }
        if (rc == 0 && mongoc_cursor_error(cur, &e))
            rc = failed(m, "reading chunks", &e);
        mongoc_cursor_destroy(cur);
    }
    if (rc == 0)
        rc = fn(ud, trl, tn);
    if (manifest)
        bson_destroy(manifest);
    bson_destroy(&q);
    bson_destroy(&opts);
    return rc;
}

/* ---- tools --------------------------------------------------------------------------- */

int snap_mongo_command(struct snap_store *s, const char *json, struct buf *out)
{
    struct mongo_store *m = (struct mongo_store *)s;
    bson_error_t e;
    bson_t *cmd = bson_new_from_json((const uint8_t *)json, -1, &e);
    if (!cmd) {
        snprintf(m->base.err, sizeof m->base.err, "not JSON: %.400s", e.message);
        return -1;
    }
    bson_t reply;
    int ok = mongoc_client_command_simple(m->client, "admin", cmd, NULL, &reply, &e);
    char *text = bson_as_relaxed_extended_json(&reply, NULL);
    if (text)
        buf_puts(out, text);
    bson_free(text);
    bson_destroy(&reply);
    bson_destroy(cmd);
    return ok ? 0 : failed(m, "command", &e);
}

int snap_mongo_damage_chunk(struct snap_store *s, const char *id, uint32_t seq)
{
    struct mongo_store *m = (struct mongo_store *)s;
    char cid[SNAP_ID_MAX + 16];
    chunk_id(cid, sizeof cid, id, seq);
    bson_t q = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&q, "_id", cid);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(m->chunks, &q, NULL, NULL);
    const bson_t *doc;
    bson_t *copy = mongoc_cursor_next(cur, &doc) ? bson_copy(doc) : NULL;
    mongoc_cursor_destroy(cur);
    const uint8_t *p;
    uint32_t n;
    int rc = -1;
    if (copy && binary_field(copy, "data", &p, &n) == 0 && n > SNAP_HDR) {
        uint8_t *bad = xmalloc(n);
        memcpy(bad, p, n);
        bad[SNAP_HDR + (n - SNAP_HDR) / 2] ^= 0x5A;
        bson_t set = BSON_INITIALIZER, fields;
        BSON_APPEND_DOCUMENT_BEGIN(&set, "$set", &fields);
        BSON_APPEND_BINARY(&fields, "data", BSON_SUBTYPE_BINARY, bad, n);
        bson_append_document_end(&set, &fields);
        bson_error_t e;
        rc = mongoc_collection_update_one(m->chunks, &q, &set, NULL, NULL, &e) ? 0 : failed(m, "update", &e);
        bson_destroy(&set);
        xfree(bad);
    } else {
        snprintf(m->base.err, sizeof m->base.err, "no chunk %s", cid);
    }
    if (copy)
        bson_destroy(copy);
    bson_destroy(&q);
    return rc;
}

static const struct snap_store_ops mongo_ops = {
    .name = "mongo",
    .begin = mongo_begin,
    .chunk = mongo_chunk,
    .commit = mongo_commit,
    .abort = mongo_abort,
    .prune = mongo_prune,
    .list = mongo_list,
    .read = mongo_read,
    .close = mongo_close,
};
