/* cmd_keys.c: key-space commands (generic group) and database selection. */
#include <math.h>
#include <string.h>
#include <strings.h>

#include "base/alloc.h"
#include "base/err.h"
#include "base/num.h"
#include "server_int.h"

#define K(i) k->argv[i].p, k->argv[i].n

void cmd_del(struct call *k)
{
    int64_t n = 0;
    for (int i = 1; i < k->argc; i++)
        n += eng_del(&k->ec, K(i));
    resp_w_int(k->out, n);
}

void cmd_exists(struct call *k)
{
    int64_t n = 0;
    for (int i = 1; i < k->argc; i++)
        n += eng_exists(&k->ec, K(i));
    resp_w_int(k->out, n);
}

void cmd_touch(struct call *k)
{
    int64_t n = 0;
    for (int i = 1; i < k->argc; i++)
        n += eng_touch(&k->ec, K(i));
    resp_w_int(k->out, n);
}

void cmd_type(struct call *k) { resp_w_simple(k->out, eng_type_name(eng_type(&k->ec, K(1)))); }

static void rename_generic(struct call *k, int nx)
{
    int rc = eng_rename(&k->ec, K(1), K(2), nx);
    if (rc < 0)
        reply_errcode(k, rc);
    else if (nx)
        resp_w_int(k->out, rc);
    else
        reply_ok(k);
}

void cmd_rename(struct call *k) { rename_generic(k, 0); }
void cmd_renamenx(struct call *k) { rename_generic(k, 1); }

void cmd_copy(struct call *k)
{
    int64_t db = k->ec.db;
    int replace = 0;
    for (int i = 3; i < k->argc; i++) {
        if (arg_is(k, i, "REPLACE"))
            replace = 1;
        else if (arg_is(k, i, "DB") && i + 1 < k->argc) {
            if (arg_i64(k, ++i, &db) < 0)
                return;
            if (db < 0 || db >= k->srv->cfg->databases) {
                reply_error(k, "ERR DB index is out of range");
                return;
            }
        } else {
            reply_syntax(k);
            return;
        }
    }
    if (db == k->ec.db && k->argv[1].n == k->argv[2].n && !memcmp(k->argv[1].p, k->argv[2].p, k->argv[1].n)) {
        reply_error(k, "ERR source and destination objects are the same");
        return;
    }
    resp_w_int(k->out, eng_copy(&k->ec, K(1), K(2), (int)db, replace));
}

/* EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT: Redis's expireGenericCommand. */
static void expire_generic(struct call *k, int64_t base_ms, int unit_s)
{
    int64_t when;
    if (arg_i64(k, 2, &when) < 0)
        return;
    int flags = 0;
    for (int i = 3; i < k->argc; i++) {
        if (arg_is(k, i, "NX"))
            flags |= ENG_EXP_NX;
        else if (arg_is(k, i, "XX"))
            flags |= ENG_EXP_XX;
        else if (arg_is(k, i, "GT"))
            flags |= ENG_EXP_GT;
        else if (arg_is(k, i, "LT"))
            flags |= ENG_EXP_LT;
        else {
            reply_error(k, "ERR Unsupported option %.*s", (int)k->argv[i].n, k->argv[i].p);
            return;
        }
    }
    if ((flags & ENG_EXP_NX) && (flags & (ENG_EXP_XX | ENG_EXP_GT | ENG_EXP_LT))) {
        reply_error(k, "ERR NX and XX, GT or LT options at the same time are not compatible");
        return;
    }
    if ((flags & ENG_EXP_GT) && (flags & ENG_EXP_LT)) {
        reply_error(k, "ERR GT and LT options at the same time are not compatible");
        return;
    }
    if (unit_s) {
        if (when > INT64_MAX / 1000 || when < INT64_MIN / 1000) {
            reply_error(k, "ERR invalid expire time in '%s' command", k->cmd->name);
            return;
        }
        when *= 1000;
    }
    if (when > INT64_MAX - base_ms) {
        reply_error(k, "ERR invalid expire time in '%s' command", k->cmd->name);
        return;
    }
    when += base_ms;
    /* A non-positive absolute time deletes (eng_expire_at treats the past so). */
    resp_w_int(k->out, eng_expire_at(&k->ec, K(1), when <= 0 ? 1 : when, flags));
}

void cmd_expire(struct call *k) { expire_generic(k, k->ec.now_ms, 1); }
void cmd_pexpire(struct call *k) { expire_generic(k, k->ec.now_ms, 0); }
void cmd_expireat(struct call *k) { expire_generic(k, 0, 1); }
void cmd_pexpireat(struct call *k) { expire_generic(k, 0, 0); }

void cmd_ttl(struct call *k)
{
    int64_t t = eng_pttl(&k->ec, K(1));
    resp_w_int(k->out, t < 0 ? t : (t + 500) / 1000);
}

void cmd_pttl(struct call *k) { resp_w_int(k->out, eng_pttl(&k->ec, K(1))); }

void cmd_expiretime(struct call *k)
{
    int64_t t = eng_pexpiretime(&k->ec, K(1));
    resp_w_int(k->out, t < 0 ? t : t / 1000);
}

void cmd_pexpiretime(struct call *k) { resp_w_int(k->out, eng_pexpiretime(&k->ec, K(1))); }
void cmd_persist(struct call *k) { resp_w_int(k->out, eng_persist(&k->ec, K(1))); }

/* Keys collected under the locks, replied after. */
void cmd_keys(struct call *k)
{
    struct bulklist l = BULKLIST_INIT;
    eng_keys(&k->ec, K(1), bulklist_add, &l);
    reply_bulklist(k, &l);
}

void cmd_scan(struct call *k)
{
    uint64_t cursor;
    if (arg_scan_cursor(k, 1, &cursor) < 0)
        return;
    const char *pat;
    size_t plen;
    int64_t count;
    int type;
    if (arg_scan_opts(k, 2, &pat, &plen, &count, &type) < 0)
        return;
    struct bulklist l = BULKLIST_INIT;
    uint64_t next = eng_scan(k->srv->eng, k->cl ? k->cl->db : 0, cursor, pat, plen, type, count, bulklist_add, &l);
    reply_scan(k, next, &l);
}

void cmd_randomkey(struct call *k)
{
    struct buf key = BUF_INIT;
    if (eng_randomkey(k->srv->eng, k->ec.db, &key))
        resp_w_bulk(k->out, key.p, key.len);
    else
        resp_w_null(k->out, k->proto);
    buf_release(&key);
}

void cmd_dbsize(struct call *k) { resp_w_int(k->out, (int64_t)eng_dbsize(k->srv->eng, k->ec.db)); }

static int flush_args(struct call *k)
{
    if (k->argc > 2 || (k->argc == 2 && !arg_is(k, 1, "ASYNC") && !arg_is(k, 1, "SYNC"))) {
        reply_syntax(k);
        return -1;
    }
    return 0;
}

void cmd_flushdb(struct call *k)
{
    if (flush_args(k) < 0)
        return;
    eng_flush(&k->ec, k->ec.db);
    reply_ok(k);
}

void cmd_flushall(struct call *k)
{
    if (flush_args(k) < 0)
        return;
    eng_flush(&k->ec, -1);
    reply_ok(k);
}

void cmd_select(struct call *k)
{
    int64_t db;
    if (arg_i64(k, 1, &db) < 0)
        return;
    if (db < 0 || db >= k->srv->cfg->databases) {
        reply_error(k, "ERR DB index is out of range");
        return;
    }
    k->cl->db = (int)db;
    reply_ok(k);
}

void cmd_object(struct call *k)
{
    if (arg_is(k, 1, "HELP") && k->argc == 2) {
        static const char *const help[] = {
            "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "ENCODING <key>",
            "    Return the kind of internal representation used in order to store the value",
            "    associated with a <key>.",
            "FREQ <key>",
            "    Return the access frequency index of the <key>. The returned integer is",
            "    proportional to the logarithm of the recent access frequency of the key.",
            "IDLETIME <key>",
            "    Return the idle time of the <key>, that is the approximated number of",
            "    seconds elapsed since the last access to the key.",
            "REFCOUNT <key>",
            "    Return the number of references of the value associated with the specified",
            "    <key>.",
            "HELP",
            "    Prints this help."};
        reply_help(k, help, sizeof help / sizeof help[0]);
        return;
    }
    if (k->argc != 3) {
        reply_error(k, "ERR unknown subcommand or wrong number of arguments for '%.*s'. Try OBJECT HELP.",
                    (int)k->argv[1].n, k->argv[1].p);
        return;
    }
    if (arg_is(k, 1, "ENCODING")) {
        const char *enc = eng_object_encoding(&k->ec, K(2));
        if (enc)
            resp_w_bulkstr(k->out, enc);
        else
            resp_w_null(k->out, k->proto);
    } else if (arg_is(k, 1, "IDLETIME")) {
        int64_t t = eng_object_idletime(&k->ec, K(2));
        if (t < 0)
            resp_w_null(k->out, k->proto);
        else
            resp_w_int(k->out, t);
    } else if (arg_is(k, 1, "REFCOUNT")) {
        if (eng_exists(&k->ec, K(2)))
            resp_w_int(k->out, 1);
        else
            resp_w_null(k->out, k->proto);
    } else if (arg_is(k, 1, "FREQ")) {
        reply_error(k, "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note "
                       "that when switching between policies at runtime LRU and LFU data will take some time "
                       "to adjust.");
    } else {
        reply_error(k, "ERR unknown subcommand or wrong number of arguments for '%.*s'. Try OBJECT HELP.",
                    (int)k->argv[1].n, k->argv[1].p);
    }
}

void cmd_memory(struct call *k)
{
    if (arg_is(k, 1, "USAGE") && k->argc < 3) {
        reply_error(k, "ERR wrong number of arguments for 'memory|usage' command");
    } else if (arg_is(k, 1, "USAGE") && (k->argc == 3 || k->argc == 5)) {
        if (k->argc == 5 && !arg_is(k, 3, "SAMPLES")) {
            reply_syntax(k);
            return;
        }
        int64_t n = eng_memory_usage(&k->ec, K(2)); /* memory|usage's row locked the key */
        if (n < 0)
            resp_w_null(k->out, k->proto);
        else
            resp_w_int(k->out, n);
    } else if (arg_is(k, 1, "STATS") && k->argc == 2) {
        int64_t used = eng_used_memory();
        resp_w_map(k->out, k->proto, 4);
        resp_w_bulkstr(k->out, "peak.allocated");
        resp_w_int(k->out, alloc_peak());
        resp_w_bulkstr(k->out, "total.allocated");
        resp_w_int(k->out, used);
        resp_w_bulkstr(k->out, "keys.count");
        int64_t keys = 0;
        for (int db = 0; db < k->srv->cfg->databases; db++)
            keys += (int64_t)eng_dbsize(k->srv->eng, db);
        resp_w_int(k->out, keys);
        resp_w_bulkstr(k->out, "keys.bytes-per-key");
        resp_w_int(k->out, keys ? used / keys : 0);
    } else if (arg_is(k, 1, "DOCTOR") && k->argc == 2) {
        static const char doctor[] = "Hi Sam, I can't find any memory issue in your instance. I can only "
                                     "account for what occurs on this base.";
        resp_w_verbatim(k->out, k->proto, "txt", doctor, sizeof doctor - 1);
    } else if (arg_is(k, 1, "PURGE") && k->argc == 2) {
        reply_ok(k); /* nothing to give back: Redis's answer without jemalloc */
    } else if (arg_is(k, 1, "MALLOC-STATS") && k->argc == 2) {
        static const char none[] = "Stats not supported for the current allocator";
        resp_w_verbatim(k->out, k->proto, "txt", none, sizeof none - 1);
    } else if (arg_is(k, 1, "HELP") && k->argc == 2) {
        static const char *const help[] = {
            "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "DOCTOR",
            "    Return memory problems reports.",
            "MALLOC-STATS",
            "    Return internal statistics report from the memory allocator.",
            "PURGE",
            "    Attempt to purge dirty pages for reclamation by the allocator.",
            "STATS",
            "    Return information about the memory usage of the server.",
            "USAGE <key> [SAMPLES <count>]",
            "    Return memory in bytes used by <key> and its value. Nested values are",
            "    sampled up to <count> times (default: 5, 0 means sample all).",
            "HELP",
            "    Prints this help."};
        reply_help(k, help, sizeof help / sizeof help[0]);
    } else {
        reply_error(k, "ERR unknown subcommand or wrong number of arguments for '%.*s'. Try MEMORY HELP.",
                    (int)k->argv[1].n, k->argv[1].p);
    }
}
