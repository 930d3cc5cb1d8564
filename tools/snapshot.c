/* obentchi-snapshot (run as tools/snapshot): lists the snapshots of a
 * directory or of a MongoDB database, verifies them (every frame checksum,
 * chunk order, the trailer's digest, every record), and prints a summary:
 * keys per type, sizes, when, how long it took, the replication offset.
 *
 *   tools/snapshot list    SOURCE
 *   tools/snapshot verify  SOURCE [ID]      every snapshot when no ID; exit 1 if any fails
 *   tools/snapshot summary SOURCE [ID]      the newest when no ID
 *   tools/snapshot damage-chunk SOURCE ID SEQ   flips one byte of a chunk (drills, tests)
 *   tools/snapshot mongo-command URI JSON       runs a command on admin (fail points)
 *
 * SOURCE is a directory (snapshots named <base>.<id>, --base, default
 * obentchi.snap) or a mongodb:// URI (--database obentchi, --collection
 * snapshots, as the server's options).  Reads only, except damage-chunk.
 * Exit status: 0 ok, 1 a snapshot failed verification, 2 usage or the
 * source could not be read. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/log.h"
#include "snap_int.h"

struct opts {
    const char *base, *database, *collection;
    const char *source;
};

static void usage(void)
{
    fprintf(stderr,
            "usage: obentchi-snapshot [--base NAME] [--database DB] [--collection C] COMMAND SOURCE [ARGS]\n"
            "  list SOURCE              the complete snapshots, newest first\n"
            "  verify SOURCE [ID]       check every snapshot (or ID): exit 1 if any fails\n"
            "  summary SOURCE [ID]      verify and describe the newest (or ID)\n"
            "  damage-chunk SOURCE ID SEQ   flip one byte inside chunk SEQ (drills)\n"
            "  mongo-command URI JSON   run a command on the admin database\n"
            "SOURCE: a directory, or a mongodb:// URI\n");
}

static int is_mongo(const char *s) { return !strncmp(s, "mongodb://", 10) || !strncmp(s, "mongodb+srv://", 14); }

static struct snap_store *open_store(const struct opts *o)
{
    if (!is_mongo(o->source))
        return snap_file_open(o->source, o->base);
    char err[512];
    struct snap_store *st = snap_mongo_open(o->source, o->database, o->collection, "1", err, sizeof err);
    if (!st)
        fprintf(stderr, "obentchi-snapshot: %s\n", err);
    return st;
}

static void fmt_time(int64_t ms, char *out, size_t n)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

static int on_frame(void *ud, const void *frame, size_t n) { return snap_check_frame(ud, frame, n); }

/* Verifies one snapshot; 0 ok, 1 refused (reason in c->err), 2 unreadable. */
static int check_one(struct snap_store *st, const struct snap_entry *e, struct snap_check *c)
{
    snap_check_init(c, NULL, 0);
    st->err[0] = '\0';
    int rc = st->ops->read(st, e, on_frame, c);
    if (rc == 0)
        rc = snap_check_finish(c);
    if (rc == ERR_CORRUPT && !c->err[0])
        snprintf(c->err, sizeof c->err, "%.250s", st->err);
    return rc == 0 ? 0 : rc == ERR_CORRUPT ? 1 : 2;
}

static int find(struct snap_list *l, const char *id)
{
    for (int i = 0; i < l->n; i++)
        if (!id || !strcmp(l->v[i].id, id))
            return i;
    return -1;
}

static void print_summary(const struct snap_entry *e, const struct snap_check *c)
{
    static const char *const names[ENG_T__COUNT] = {"string", "list", "set", "zset", "hash"};
    const struct snap_meta *m = &c->meta;
    char when[64];
    fmt_time(m->created_ms, when, sizeof when);
    printf("id:           %s\n", m->id);
    printf("name:         %s\n", e->name);
    printf("created:      %s (%lld)\n", when, (long long)m->created_ms);
    printf("took:         %.3f s\n", (double)m->duration_ms / 1000.0);
    printf("keys:         %llu (%llu with a TTL; %llu elements in collections)\n", (unsigned long long)m->counts.keys,
           (unsigned long long)m->counts.expires, (unsigned long long)m->counts.elements);
    for (int t = 0; t < ENG_T__COUNT; t++)
        printf("  %-10s  %llu\n", names[t], (unsigned long long)c->rd.counts.by_type[t]);
    printf("chunks:       %u\n", m->chunks);
    printf("size:         %llu bytes stored, %llu bytes of records (%.2fx)\n", (unsigned long long)c->frame_bytes,
           (unsigned long long)m->raw_bytes, c->frame_bytes ? (double)m->raw_bytes / (double)c->frame_bytes : 0.0);
    printf("repl_offset:  %llu\n", (unsigned long long)m->repl_offset);
    printf("verified:     ok (checksums, order, digest %016llx, records)\n", (unsigned long long)m->digest);
}

static int cmd_list(struct snap_store *st)
{
    struct snap_list l = {0};
    if (st->ops->list(st, &l) < 0) {
        fprintf(stderr, "obentchi-snapshot: %s\n", st->err);
        return 2;
    }
    for (int i = 0; i < l.n; i++)
        printf("%s  %12llu  %s\n", l.v[i].id, (unsigned long long)l.v[i].size, l.v[i].name);
    snap_list_release(&l);
    return 0;
}

static int cmd_verify(struct snap_store *st, const char *id, int summary)
{
    struct snap_list l = {0};
    if (st->ops->list(st, &l) < 0) {
        fprintf(stderr, "obentchi-snapshot: %s\n", st->err);
        return 2;
    }
    int worst = 0, seen = 0;
    for (int i = id || summary ? find(&l, id) : 0; i >= 0 && i < l.n; i++) {
        struct snap_check c;
        int rc = check_one(st, &l.v[i], &c);
        seen++;
        if (rc == 0 && summary)
            print_summary(&l.v[i], &c);
        else if (rc == 0)
            printf("ok       %s  keys=%llu chunks=%u\n", l.v[i].id, (unsigned long long)c.meta.counts.keys,
                   c.meta.chunks);
        else
            printf("%s  %s  %s\n", rc == 1 ? "CORRUPT " : "UNREADABLE", l.v[i].id, rc == 1 ? c.err : st->err);
        snap_check_release(&c);
        worst = rc > worst ? rc : worst;
        if (id || summary)
            break;
    }
    if (!seen) {
        fprintf(stderr, "obentchi-snapshot: %s\n", id ? "no such snapshot" : "no snapshot");
        worst = 2;
    }
    snap_list_release(&l);
    return worst;
}

/* A file snapshot: flips a byte in the middle of chunk seq's payload. */
static int damage_file(const struct opts *o, const char *id, uint32_t seq)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.%s", o->source, o->base, id);
    int fd = open(path, O_RDWR);
    if (fd < 0) {
        fprintf(stderr, "obentchi-snapshot: %s: %s\n", path, strerror(errno));
        return 2;
    }
    off_t off = 0;
    unsigned char h[SNAP_HDR];
    while (pread(fd, h, sizeof h, off) == (ssize_t)sizeof h) {
        uint32_t stored = (uint32_t)h[16] | (uint32_t)h[17] << 8 | (uint32_t)h[18] << 16 | (uint32_t)h[19] << 24;
        uint32_t fseq = (uint32_t)h[8] | (uint32_t)h[9] << 8 | (uint32_t)h[10] << 16 | (uint32_t)h[11] << 24;
        if (h[7] == SNAP_K_CHUNK && fseq == seq && stored > 0) {
            off_t at = off + SNAP_HDR + stored / 2;
            unsigned char b;
            int ok = pread(fd, &b, 1, at) == 1 && (b ^= 0x5A, pwrite(fd, &b, 1, at) == 1);
            close(fd);
            return ok ? 0 : 2;
        }
        off += SNAP_HDR + (off_t)stored;
    }
    close(fd);
    fprintf(stderr, "obentchi-snapshot: no chunk %u in %s\n", seq, path);
    return 2;
}

int main(int argc, char **argv)
{
    struct opts o = {.base = "obentchi.snap", .database = "obentchi", .collection = "snapshots"};
    int i = 1;
    for (; i + 1 < argc && !strncmp(argv[i], "--", 2); i += 2) {
        if (!strcmp(argv[i], "--base"))
            o.base = argv[i + 1];
        else if (!strcmp(argv[i], "--database"))
            o.database = argv[i + 1];
        else if (!strcmp(argv[i], "--collection"))
            o.collection = argv[i + 1];
        else
            break;
    }
    if (argc - i < 2) {
        usage();
        return 2;
    }
    log_set_level(LOG_WARNING);
    const char *cmd = argv[i];
    o.source = argv[i + 1];
    const char *a1 = argc - i > 2 ? argv[i + 2] : NULL, *a2 = argc - i > 3 ? argv[i + 3] : NULL;
    if (!strcmp(cmd, "damage-chunk") && a1 && a2 && !is_mongo(o.source))
        return damage_file(&o, a1, (uint32_t)strtoul(a2, NULL, 10));
    struct snap_store *st = open_store(&o);
    if (!st)
        return 2;
    int rc;
    if (!strcmp(cmd, "list")) {
        rc = cmd_list(st);
    } else if (!strcmp(cmd, "verify")) {
        rc = cmd_verify(st, a1, 0);
    } else if (!strcmp(cmd, "summary")) {
        rc = cmd_verify(st, a1, 1);
    } else if (!strcmp(cmd, "damage-chunk") && a1 && a2) {
        rc = snap_mongo_damage_chunk(st, a1, (uint32_t)strtoul(a2, NULL, 10)) < 0 ? 2 : 0;
        if (rc)
            fprintf(stderr, "obentchi-snapshot: %s\n", st->err);
    } else if (!strcmp(cmd, "mongo-command") && a1 && is_mongo(o.source)) {
        struct buf out = BUF_INIT;
        rc = snap_mongo_command(st, a1, &out) < 0 ? 2 : 0;
        if (rc)
            fprintf(stderr, "obentchi-snapshot: %s\n", st->err);
        else
            printf("%s\n", out.p ? out.p : "");
        buf_release(&out);
    } else {
        usage();
        rc = 2;
    }
    st->ops->close(st);
    return rc;
}
