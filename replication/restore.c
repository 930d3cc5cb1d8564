/* restore.c: reading a snapshot back, checked all the way: frame checksums,
 * chunk order and count, the trailer's digest of every chunk checksum, the
 * records themselves (engine/snapshot.c), and the key count.  Used by the
 * restore at start (newest complete snapshot first, the previous one when it
 * is refused) and by tools/snapshot's verify and summary (no engine).
 *
 * Not for: where the frames come from (the stores), when to restore
 * (snapshot.c). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "snap_int.h"

void snap_check_init(struct snap_check *c, struct eng *e, int64_t now_ms)
{
    memset(c, 0, sizeof *c);
    c->digest = XXH3_createState();
    XXH3_64bits_reset(c->digest);
    buf_init(&c->raw);
    eng_snap_reader_init(&c->rd, e, now_ms);
}

void snap_check_release(struct snap_check *c)
{
    XXH3_freeState(c->digest);
    buf_release(&c->raw);
    eng_snap_reader_release(&c->rd);
}

static int refuse(struct snap_check *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int refuse(struct snap_check *c, const char *fmt, ...)
{
    if (!c->err[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err, sizeof c->err, fmt, ap);
        va_end(ap);
    }
    return ERR_CORRUPT;
}

static int check_chunk(struct snap_check *c, const struct snap_frame *f)
{
    if (f->seq != c->next_seq)
        return refuse(c, "chunk %u where chunk %u was due", f->seq, c->next_seq);
    unsigned char le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (unsigned char)(f->checksum >> (8 * i));
    XXH3_64bits_update(c->digest, le, sizeof le);
    if (snap_frame_raw(f, &c->raw) < 0)
        return refuse(c, "chunk %u: lz4 payload does not decompress", f->seq);
    if (eng_snap_read(&c->rd, c->raw.p, c->raw.len) < 0)
        return refuse(c, "chunk %u: malformed records", f->seq);
    c->next_seq++;
    return 0;
}

static int check_trailer(struct snap_check *c, const struct snap_frame *f)
{
    struct snap_meta t = {0};
    if (snap_frame_raw(f, &c->raw) < 0 || snap_meta_parse(&t, c->raw.p, c->raw.len, 1) < 0)
        return refuse(c, "unreadable trailer");
    if (strcmp(t.id, c->meta.id) != 0)
        return refuse(c, "trailer of snapshot %s", t.id);
    if (t.chunks != c->next_seq)
        return refuse(c, "%u chunks where the trailer names %u", c->next_seq, t.chunks);
    if (XXH3_64bits_digest(c->digest) != t.digest)
        return refuse(c, "chunk checksums do not match the trailer's digest");
    if (eng_snap_reader_finish(&c->rd) < 0)
        return refuse(c, "record stream truncated");
    if (c->rd.counts.keys != t.counts.keys)
        return refuse(c, "%llu keys where the trailer names %llu", (unsigned long long)c->rd.counts.keys,
                      (unsigned long long)t.counts.keys);
    t.created_ms = c->meta.created_ms;
    c->meta = t;
    c->state = 2;
    return 0;
}

int snap_check_frame(struct snap_check *c, const void *frame, size_t n)
{
    struct snap_frame f;
    size_t total;
    const char *why = "truncated frame";
    if (c->err[0])
        return ERR_CORRUPT;
    int rc = snap_frame_parse(frame, n, &f, &total, &why);
    if (rc < 0 || total != n)
        return refuse(c, "%s %u: %s", c->state == 0 ? "header" : "chunk", c->next_seq,
                      rc < 0 ? why : "bytes after the frame");
    c->frame_bytes += n;
    if (c->state == 0) {
        if (f.kind != SNAP_K_HEADER || snap_frame_raw(&f, &c->raw) < 0 ||
            snap_meta_parse(&c->meta, c->raw.p, c->raw.len, 0) < 0)
            return refuse(c, "no readable header frame");
        c->state = 1;
        return 0;
    }
    if (c->state == 2)
        return refuse(c, "frames after the trailer");
    if (f.kind == SNAP_K_CHUNK)
        return check_chunk(c, &f);
    if (f.kind == SNAP_K_TRAILER)
        return check_trailer(c, &f);
    return refuse(c, "a second header frame");
}

int snap_check_finish(struct snap_check *c)
{
    if (c->err[0])
        return ERR_CORRUPT;
    if (c->state != 2)
        return refuse(c, "%s", c->state == 0 ? "empty" : "no trailer: the snapshot was cut short");
    return 0;
}

void snap_list_release(struct snap_list *l)
{
    xfree(l->v);
    l->v = NULL;
    l->n = 0;
}

/* ---- the restore at start ----------------------------------------------------- */

struct loading {
    struct snap_check chk;
    const struct snap_restore_ctl *ctl;
    const struct snap_entry *entry;
    int64_t t0_us, last_log_us;
};

static int on_frame(void *ud, const void *frame, size_t n)
{
    struct loading *l = ud;
    if (l->ctl->stop && atomic_load(l->ctl->stop))
        return -ECANCELED;
    int rc = snap_check_frame(&l->chk, frame, n);
    if (l->ctl->progress)
        l->ctl->progress(l->ctl->ud, l->chk.frame_bytes, l->chk.rd.loaded);
    int64_t now = clock_mono_us();
    if (now - l->last_log_us >= 2000000) {
        double secs = (double)(now - l->t0_us) / 1e6, mb = (double)l->chk.frame_bytes / 1048576.0;
        log_info("loading snapshot", "id=%s keys_loaded=%llu mb=%.1f mb_per_s=%.1f", l->entry->id,
                 (unsigned long long)l->chk.rd.loaded, mb, secs > 0 ? mb / secs : 0.0);
        l->last_log_us = now;
    }
    return rc;
}

static void flush_all(struct eng *e)
{
    struct eng_ctx c;
    eng_ctx_init(&c, e, 0);
    c.quiet = 1;
    eng_lock_all(&c);
    eng_flush(&c, -1);
    eng_unlock(&c);
}

/* Loads one snapshot: 1 loaded, 0 refused (logged; the engine is emptied
 * again), -1 the store failed (st->err). */
static int load_one(struct snap_store *st, struct eng *e, const struct snap_entry *ent,
                    const struct snap_restore_ctl *ctl, struct snap_restore_result *res)
{
    struct loading l = {.ctl = ctl, .entry = ent};
    l.t0_us = l.last_log_us = clock_mono_us();
    snap_check_init(&l.chk, e, clock_wall_ms());
    log_info("loading snapshot", "store=%s id=%s name=%s bytes=%llu", st->ops->name, ent->id, ent->name,
             (unsigned long long)ent->size);
    if (ctl->begin)
        ctl->begin(ctl->ud, ent->size);
    st->err[0] = '\0';
    int rc = st->ops->read(st, ent, on_frame, &l);
    if (rc == 0)
        rc = snap_check_finish(&l.chk);
    int out;
    if (rc == 0) {
        double secs = (double)(clock_mono_us() - l.t0_us) / 1e6, mb = (double)l.chk.frame_bytes / 1048576.0;
        log_info("snapshot loaded", "store=%s id=%s keys_loaded=%llu keys_expired=%llu mb=%.1f seconds=%.3f mb_per_s=%.1f",
                 st->ops->name, ent->id, (unsigned long long)l.chk.rd.loaded, (unsigned long long)l.chk.rd.expired,
                 mb, secs, secs > 0 ? mb / secs : 0.0);
        res->meta = l.chk.meta;
        res->keys_loaded = l.chk.rd.loaded;
        res->keys_expired = l.chk.rd.expired;
        res->seconds = secs;
        out = 1;
    } else if (rc == ERR_CORRUPT) {
        log_warn("snapshot skipped: corrupt or incomplete", "store=%s id=%s name=%s reason=\"%s\"", st->ops->name,
                 ent->id, ent->name, l.chk.err[0] ? l.chk.err : st->err);
        res->skipped++;
        out = 0;
    } else {
        if (!st->err[0])
            snprintf(st->err, sizeof st->err, "%s", rc == -ECANCELED ? "stopped" : err_msg(rc));
        out = -1;
    }
    snap_check_release(&l.chk);
    if (out != 1)
        flush_all(e);
    return out;
}

int snap_restore(struct snap_store *st, struct eng *e, const struct snap_restore_ctl *ctl,
                 struct snap_restore_result *res)
{
    struct snap_list list = {0};
    memset(res, 0, sizeof *res);
    st->err[0] = '\0';
    if (st->ops->list(st, &list) < 0)
        return -1;
    int rc = 0;
    for (int i = 0; i < list.n && rc == 0; i++)
        rc = load_one(st, e, &list.v[i], ctl, res);
    if (rc == 0)
        log_info(list.n ? "no usable snapshot: starting empty" : "no snapshot found: starting empty",
                 "store=%s skipped=%d", st->ops->name, res->skipped);
    snap_list_release(&list);
    return rc;
}
