/* snap_int.h: what the snapshot files of replication/ share: the frame
 * format (snap_format.c), the fork()ed writer (snapshot_fork.c), the sinks
 * and sources (sink_file.c, sink_mongo.c), and the checked reading of a
 * snapshot (restore.c).  Other modules include snapshot.h.
 *
 * A snapshot is a sequence of frames (docs/snapshot-format.md):
 *
 *   H (header: what, when, where)  C seq 0, C seq 1, ... C seq n-1  T (trailer)
 *
 * Every frame carries its own XXH3-64 checksum over its header and payload;
 * C payloads are lz4 blocks of the engine's record stream (engine/snapshot.h)
 * cut every snapshot-chunk-size bytes; H and T payloads are "key=value\n"
 * lines.  The trailer names the chunk count and a digest of every chunk's
 * checksum in order, so a lost, repeated or reordered chunk is seen. */
#ifndef REPLICATION_SNAP_INT_H
#define REPLICATION_SNAP_INT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "base/buf.h"
#include "engine.h"
#include "snapshot.h"

/* ---- frames (snap_format.c) ------------------------------------------------- */

#define SNAP_MAGIC "OBSNAP"
#define SNAP_VERSION 1
#define SNAP_HDR 32
#define SNAP_MAX_PAYLOAD (64u << 20) /* a frame claiming more is corrupt */
#define SNAP_ID_MAX 48

enum snap_kind { SNAP_K_HEADER = 'H', SNAP_K_CHUNK = 'C', SNAP_K_TRAILER = 'T' };
enum snap_codec { SNAP_CODEC_NONE = 0, SNAP_CODEC_LZ4 = 1 };

/* A frame's header, parsed. */
struct snap_frame {
    int kind, codec, version;
    uint32_t seq, raw_len, stored_len;
    uint64_t checksum;
    const unsigned char *payload; /* stored_len bytes, borrowed */
};

/* Appends one frame holding raw[0..n) to out: lz4-compressed when
 * compress is set and it saves room.  Returns the frame's checksum. */
uint64_t snap_frame_build(struct buf *out, int kind, uint32_t seq, const void *raw, size_t n, int compress);
/* Parses the header at p (n bytes there).  0 with *f and *total (header
 * plus payload) when the whole frame is there and its checksum holds;
 * ERR_AGAIN with *total = bytes needed when it is not all there yet;
 * ERR_CORRUPT (magic, version, kind, codec, sizes or checksum) with a
 * reason in why (may be NULL). */
int snap_frame_parse(const void *p, size_t n, struct snap_frame *f, size_t *total, const char **why);
/* The frame's raw bytes into out (replacing its content).  0 or ERR_CORRUPT. */
int snap_frame_raw(const struct snap_frame *f, struct buf *out);

/* "key=value\n" payloads of H and T frames. */
void snap_kv_add(struct buf *b, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Copies the value of key into out (NUL-terminated, cut to outlen); 0 or -1. */
int snap_kv_get(const char *p, size_t n, const char *key, char *out, size_t outlen);
int snap_kv_u64(const char *p, size_t n, const char *key, uint64_t *v);

/* What the header and trailer say. */
struct snap_meta {
    char id[SNAP_ID_MAX];
    int64_t created_ms;
    uint64_t repl_offset;
    /* trailer */
    uint32_t chunks;
    struct eng_snap_counts counts;
    uint64_t raw_bytes, stored_bytes;
    uint64_t digest; /* XXH3-64 over the chunks' checksums, little-endian, in order */
    int64_t duration_ms;
};
void snap_meta_header(const struct snap_meta *m, struct buf *payload);
void snap_meta_trailer(const struct snap_meta *m, struct buf *payload);
/* Reads what an H (trailer = 0) or T payload says into m; 0 or -1. */
int snap_meta_parse(struct snap_meta *m, const char *p, size_t n, int trailer);

/* A new snapshot id for a snapshot taken at now_ms: UTC time to the ms,
 * then random hex, so that ids sort by time: 20261125T191245123Z-9f3a01bc. */
void snap_make_id(char out[SNAP_ID_MAX], int64_t now_ms);
/* 1 when s looks like an id of snap_make_id. */
int snap_id_valid(const char *s);

/* ---- checked reading (restore.c) -------------------------------------------- */

/* Follows a snapshot's frames in order, verifying everything, and feeds the
 * records to an engine (or only parses them when e is NULL). */
struct snap_check {
    int state; /* 0 before H, 1 in chunks, 2 after T */
    uint32_t next_seq;
    XXH3_state_t *digest;
    struct buf raw;
    struct eng_snap_reader rd;
    struct snap_meta meta;    /* from H, then T */
    uint64_t frame_bytes;     /* bytes of frames seen */
    char err[256];            /* why the snapshot was refused */
};
void snap_check_init(struct snap_check *c, struct eng *e, int64_t now_ms);
/* One frame, as stored (header and payload).  0, or ERR_CORRUPT with c->err. */
int snap_check_frame(struct snap_check *c, const void *frame, size_t n);
/* After the last frame: 0 when the trailer came and everything matched. */
int snap_check_finish(struct snap_check *c);
void snap_check_release(struct snap_check *c);

/* The restore at start. */
struct snap_restore_ctl {
    void *ud;
    void (*begin)(void *ud, uint64_t total_bytes);        /* a snapshot starts loading */
    void (*progress)(void *ud, uint64_t bytes, uint64_t keys); /* after each frame */
    _Atomic int *stop;                                     /* set: give up (-1) */
};
struct snap_restore_result {
    struct snap_meta meta;
    uint64_t keys_loaded, keys_expired;
    double seconds;
    int skipped; /* snapshots refused (corrupt or incomplete) before it */
};
struct snap_store;
/* Loads the newest snapshot of st that passes every check into e (empty),
 * each refused one logged with its id and reason.  1 loaded, 0 none usable
 * (e left empty), -1 the store failed (st->err: unreachable...). */
int snap_restore(struct snap_store *st, struct eng *e, const struct snap_restore_ctl *ctl,
                 struct snap_restore_result *res);

/* ---- sinks and sources ------------------------------------------------------- */

/* One snapshot as listed by a source, newest first. */
struct snap_entry {
    char id[SNAP_ID_MAX];
    char name[512]; /* file name, or the id for MongoDB */
    uint64_t size;  /* bytes stored (0 when the source does not know) */
};
struct snap_list {
    struct snap_entry *v;
    int n;
};
void snap_list_release(struct snap_list *l);

typedef int snap_frame_fn(void *ud, const void *frame, size_t n);

struct snap_store;
struct snap_store_ops {
    const char *name; /* "file", "mongo" */
    /* Writing one snapshot: begin with its header frame, chunk frames in
     * order, then commit with its trailer frame (the snapshot exists for
     * readers only once commit returned 0), or abort. */
    int (*begin)(struct snap_store *s, const struct snap_meta *m, const void *frame, size_t n);
    int (*chunk)(struct snap_store *s, uint32_t seq, uint64_t checksum, uint32_t raw_len, const void *frame,
                 size_t n);
    int (*commit)(struct snap_store *s, const struct snap_meta *m, const void *frame, size_t n);
    void (*abort)(struct snap_store *s);
    /* Keeps the keep newest complete snapshots, removes the others and the
     * leftovers of failed ones. */
    int (*prune)(struct snap_store *s, int keep);
    /* Complete snapshots, newest first. */
    int (*list)(struct snap_store *s, struct snap_list *out);
    /* Calls fn with each frame of snapshot id in order (H, C..., T); stops
     * at fn's first non-zero return and returns it.  ERR_CORRUPT with err
     * set when the stored data cannot even be framed. */
    int (*read)(struct snap_store *s, const struct snap_entry *e, snap_frame_fn *fn, void *ud);
    void (*close)(struct snap_store *s);
};
struct snap_store {
    const struct snap_store_ops *ops;
    char err[512]; /* the last failure, for the log and INFO */
};

/* The local file store: dir (may be NULL: the working directory) and the
 * base name (snapshots are base.<id>, written as base.<id>.tmp first). */
struct snap_store *snap_file_open(const char *dir, const char *base);
/* The MongoDB store: manifests in collection, chunks in collection.chunks.
 * NULL with a message in err when the URI or write concern is refused. */
struct snap_store *snap_mongo_open(const char *uri, const char *db, const char *collection,
                                   const char *write_concern, char *err, size_t errlen);
/* Runs one command on the MongoDB store's database (tools, tests: fail
 * points).  json in, reply as JSON into out.  0 or -1 with s->err. */
int snap_mongo_command(struct snap_store *s, const char *json, struct buf *out);
/* Flips one byte inside a stored chunk (drills and tests). 0 or -1. */
int snap_mongo_damage_chunk(struct snap_store *s, const char *id, uint32_t seq);

/* ---- the fork()ed writer (snapshot_fork.c) ------------------------------------ */

/* What parent and child share while the child runs (a MAP_SHARED page). */
struct snap_progress {
    _Atomic uint64_t keys_done;
    _Atomic uint64_t cow_bytes; /* the child's Private_Dirty, sampled */
};

/* How the point in time is taken (snapshot-method): a versioned walk by a
 * thread of this process (engine/snapshot.h: eng_vsnap_*; no fork, no pause
 * beyond flipping a bit per shard), or a fork()ed child.  The versioned walk
 * runs one at a time; a second snapshot meanwhile (a replica's full copy
 * during a BGSAVE) forks. */
enum snap_method { SNAP_VERSIONED, SNAP_FORK };
extern _Atomic int snap_method;

struct snap_child {
    struct eng *e;
    pid_t pid;             /* the fork()ed child, 0 for the versioned thread */
    struct snap_thread *thread; /* the versioned walk's thread, NULL for a child */
    int fd;                /* read end of the frame pipe */
    struct snap_progress *progress;
    int64_t fork_us;       /* how long every shard was locked */
    uint64_t keys_total;   /* keys at the instant */
    uint64_t dirty_before; /* eng_dirty() just before the instant */
    int64_t cpu_us;        /* the child's CPU time (user + system), once waited for */
};

/* Takes the point in time: locks every shard, calls offset_fn (may be NULL)
 * for the replication offset, fork()s, unlocks.  The child writes m's
 * header, the chunks and the trailer to the pipe, then exits.  0, or
 * -errno. */
int snap_fork_start(struct eng *e, struct snap_meta *m, size_t chunk_size, uint64_t (*offset_fn)(void *),
                    void *offset_ud, struct snap_child *out);
/* Asks the writer to stop (SIGKILL to a child, a flag to the thread).  Any
 * thread, while the writer runs. */
void snap_child_cancel(struct snap_child *c);
/* Waits for the child, killing it first when kill_it.  0 when it exited
 * with status 0; -1 with a reason in err. */
int snap_child_wait(struct snap_child *c, int kill_it, char *err, size_t errlen);
/* Now and then while the frames come: a versioned walk starved at idle
 * priority too long gets a share (snapshot_fork.c). */
void snap_child_tick(struct snap_child *c);

/* Hands the child's frames to a store: begin() with the header, chunk()
 * with each chunk in order; the trailer is kept for commit(), which the
 * caller makes once the child exited well. */
struct snap_pump {
    struct snap_store *st;
    struct snap_meta *meta;   /* in: id, created, offset; out: chunks, stored_bytes */
    struct snap_meta trailer; /* what the child's trailer says */
    struct buf in, tframe;    /* bytes read; the trailer frame */
    int began, got_trailer;
    void (*on_chunk)(void *ud); /* after each chunk stored (may be NULL) */
    void *ud;
    struct snap_child *child;   /* ticked while frames are awaited (may be NULL) */
    char err[600];
};
/* Reads frames from fd until the child closes it.  0 when the trailer came
 * last; -1 with p->err (the store refused, or the child sent bad frames). */
int snap_pump_run(struct snap_pump *p, int fd);
void snap_pump_release(struct snap_pump *p);

/* One whole snapshot from the calling thread (tests, tools): fork, frames to
 * st, wait, commit.  *m gets its id and trailer.  0 or -1 with err. */
int snap_take(struct eng *e, struct snap_store *st, size_t chunk_size, struct snap_meta *m, char *err,
              size_t errlen);

/* Reads the child's Private_Dirty from /proc (bytes), 0 when unknown. */
uint64_t snap_private_dirty(pid_t pid);
void snap_child_release(struct snap_child *c);

#endif
