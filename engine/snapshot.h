/* snapshot.h: the engine's half of point-in-time snapshots: the keyspace as a
 * stream of records, and the stream back into a keyspace.
 *
 * What it is: a cursor over every shard, database and key (the engine is
 * frozen for the walk) that appends self-describing records, type by type,
 * TTL included, to a buffer; and a reader that parses such a stream, fed in
 * slices cut anywhere, and applies each record to an engine.  What it is
 * not: no files, sockets, threads, compression or checksums.  Chunking,
 * framing, lz4 and xxhash live in replication/snap_format.c; the point in
 * time comes from the caller (replication/snapshot_fork.c walks a fork()ed
 * child's frozen copy of the engine).
 *
 * The record stream (format version ENG_SNAP_VERSION; docs/snapshot-format.md
 * has the picture):
 *
 *   record := kind:u8 db:u16 expire_ms:i64 klen:varint key body
 *   kind   := type (enum eng_type, bits 0-2) | ENG_SNAP_CONT (bit 3)
 *   body   := string: vlen:varint bytes
 *             list, set: n:u32 then n x (len:varint bytes)
 *             hash:      n:u32 then n x (flen:varint field vlen:varint value)
 *             zset:      n:u32 then n x (len:varint member score:f64)
 *   end    := 0xFF keys:varint          (the last record; keys = head records)
 *
 * Integers are little-endian, varints LEB128.  expire_ms is the absolute
 * Unix time in ms, 0 for none.  A collection longer than about max_record
 * bytes is cut into one head record and continuation records (kind |
 * ENG_SNAP_CONT) that add elements to the same key, so that no record needs
 * the whole value in memory twice.
 *
 * Thread: the writer needs a context holding every shard lock (eng_lock_all)
 * for its whole walk; the reader locks each record's key by itself. */
#ifndef ENGINE_SNAPSHOT_H
#define ENGINE_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "engine.h"

struct dict_node;

#define ENG_SNAP_VERSION 1
#define ENG_SNAP_CONT 0x08
#define ENG_SNAP_END 0xFF

/* What a stream holds (head records by type; continuation records are not
 * keys). */
struct eng_snap_counts {
    uint64_t keys;                  /* head records */
    uint64_t by_type[ENG_T__COUNT]; /* head records per enum eng_type */
    uint64_t expires;               /* head records with an expiry */
    uint64_t elements;              /* elements of collections */
};

/* ---- writing ------------------------------------------------------------- */

struct eng_snap_writer {
    struct eng_ctx *c;
    /* the cursor: (shard, db), table 0 or 1 of its dict, bucket, next node */
    int shard, db, table;
    uint64_t bucket;
    struct dict_node *node;
    int done;
    size_t max_record;
    struct eng_snap_counts counts;
    /* state kept to restore when released */
    int saved_replica, saved_quiet;
    struct eng_hooks saved_hooks;
};

/* Starts a walk of every key of c's engine.  c must hold every shard lock
 * (eng_lock_all) until eng_snap_writer_release(), and the engine must not
 * change meanwhile.  The walk reads values without side effects on the data:
 * rehashing is paused, hooks are silenced, keys past their time are skipped
 * but not deleted (all undone by release).  max_record: about how many bytes
 * one record of a collection may hold before a continuation record starts
 * (0: 1 MiB).  c->now_ms is the instant keys are judged expired at. */
void eng_snap_writer_init(struct eng_snap_writer *w, struct eng_ctx *c, size_t max_record);
/* Appends whole records to out until out->len >= budget or every key is
 * written; the end record follows the last key.  Returns 1 while keys remain,
 * 0 once the end record is written. */
int eng_snap_write(struct eng_snap_writer *w, struct buf *out, size_t budget);
/* Undoes what init paused; c keeps its locks. */
void eng_snap_writer_release(struct eng_snap_writer *w);

/* ---- versioned snapshots (no fork) ------------------------------------- */

/* The same record stream, taken while clients go on: begin locks every
 * shard for an instant (the snapshot's point in time), flips each shard's
 * parity and returns.  From then on a key is saved (appended to its shard's
 * pending records) before its first access since that instant, by whichever
 * thread touches it, and the walk (eng_vsnap_write, on any one thread) saves
 * the keys nobody touched, locking one shard at a time for short steps.
 * Keys made after the instant carry the new parity and are not saved.  No
 * stop-the-world pause beyond begin's, no copy of the data: the extra memory
 * is the records saved ahead of the walk.  One at a time per engine. */
struct eng_vsnap;
/* at_instant (may be NULL) runs while every shard is locked (the
 * replication offset of the point in time).  *keys_total gets the keys then.
 * 0, or ERR_BUSY when a versioned snapshot is running. */
int eng_vsnap_begin(struct eng *e, size_t max_record, void (*at_instant)(void *ud), void *ud, uint64_t *keys_total,
                    struct eng_vsnap **out);
/* Appends records until out->len >= budget; 1 while keys remain, 0 once the
 * end record is written (the snapshot then no longer hooks anything). */
int eng_vsnap_write(struct eng_vsnap *v, struct buf *out, size_t budget);
/* What was written so far (head records...). */
const struct eng_snap_counts *eng_vsnap_counts(const struct eng_vsnap *v);
/* The extra memory it took: the most record bytes saved ahead of the walk
 * (summed over shards).  Any thread, racy but safe. */
uint64_t eng_vsnap_extra_bytes(const struct eng_vsnap *v);
/* Ends it (finished or not) and frees it.  An unfinished one is walked to
 * the end without saving anything, so that the next one starts clean. */
void eng_vsnap_free(struct eng_vsnap *v);

/* ---- reading ----------------------------------------------------------- */

struct eng_snap_reader {
    struct eng *e; /* NULL: parse and count only (verification, summaries) */
    int64_t now_ms;  /* keys whose expiry is at or before this are skipped */
    struct buf pending; /* the bytes of a record not yet complete */
    int ended;       /* the end record was read */
    int err;         /* sticky: ERR_CORRUPT */
    uint64_t end_keys;  /* what the end record says */
    struct eng_snap_counts counts; /* records read (loaded or skipped) */
    uint64_t loaded, expired; /* head records applied / skipped as expired */
    /* the key of the last skipped head record: its continuations are skipped too */
    struct buf skipped;
    int skipped_db;
};

/* e may be NULL (parse only).  now_ms: the load's instant (ms). */
void eng_snap_reader_init(struct eng_snap_reader *r, struct eng *e, int64_t now_ms);
/* Feeds the next n bytes of the stream (any cut).  Applies every complete
 * record.  0, or ERR_CORRUPT (sticky) on a malformed record, a database
 * outside the engine's, a type mismatch, or bytes after the end record. */
int eng_snap_read(struct eng_snap_reader *r, const void *p, size_t n);
/* 0 when the stream ended with its end record and its key count matches;
 * ERR_CORRUPT otherwise (truncated, or records lost). */
int eng_snap_reader_finish(struct eng_snap_reader *r);
void eng_snap_reader_release(struct eng_snap_reader *r);

/* Keys in every database; c holds every shard lock. */
uint64_t eng_snap_key_total(struct eng_ctx *c);

#endif
