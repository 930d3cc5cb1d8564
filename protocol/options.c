/* options.c: the server's option table (names, types, defaults and limits as
 * redis-server has them, plus obentchi's `shards`).  The machinery that reads
 * files, the environment and the command line is base/config.c; the apply
 * callbacks here push run-time changes into the running modules. */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "acl.h"
#include "base/alloc.h"
#include "base/log.h"
#include "base/num.h"
#include "engine.h"
#include "sendbatch.h"
#include "server_int.h"

static const char *const loglevels[] = {"debug", "verbose", "notice", "warning", NULL};
static const char *const logformats[] = {"logfmt", "json", NULL};
static const char *const appendonly_values[] = {"no", NULL}; /* obentchi persists by snapshots */
/* maxmemory-policy: Redis's names in Redis's order (its error message lists
 * them so), and the engine's policy for each.  The engine has no LFU: the
 * LFU policies evict by LRU, close to what they aim at, rather than refuse a
 * Redis configuration file. */
static const struct {
    const char *name;
    int policy; /* enum eng_policy */
} policies[] = {
    {"volatile-lru", ENG_POLICY_VOLATILE_LRU},     {"volatile-lfu", ENG_POLICY_VOLATILE_LRU},
    {"volatile-random", ENG_POLICY_VOLATILE_RANDOM}, {"volatile-ttl", ENG_POLICY_VOLATILE_TTL},
    {"allkeys-lru", ENG_POLICY_ALLKEYS_LRU},       {"allkeys-lfu", ENG_POLICY_ALLKEYS_LRU},
    {"allkeys-random", ENG_POLICY_ALLKEYS_RANDOM}, {"noeviction", ENG_POLICY_NOEVICTION},
};
#define NPOLICIES ((int)(sizeof policies / sizeof policies[0]))
static int policy_named; /* index in policies[] of the name set, for CONFIG GET */

static struct server_config *the_sc;
static struct eng *the_eng;

void server_options_bind_engine(struct eng *e) { the_eng = e; }

static int apply_memory(const struct cfg_option *o, char *err, size_t errlen)
{
    if (the_eng)
        eng_set_maxmemory(the_eng, the_sc->maxmemory, the_sc->maxmemory_policy, (int)the_sc->maxmemory_samples);
    return 0;
}

static int set_policy(const struct cfg_option *o, int argc, const char *const *argv, int append, char *err,
                      size_t errlen)
{
    struct buf names = BUF_INIT;
    for (int i = 0; i < NPOLICIES; i++) {
        if (!strcasecmp(argv[0], policies[i].name)) {
            policy_named = i;
            *(int *)o->storage = policies[i].policy;
            if (strstr(policies[i].name, "lfu"))
                log_warn("maxmemory-policy: LFU is not implemented, keys are evicted by LRU", "policy=%s",
                         policies[i].name);
            buf_release(&names);
            return 0;
        }
        buf_printf(&names, "%s%s", i ? ", " : "", policies[i].name);
    }
    snprintf(err, errlen, "argument(s) must be one of the following: %s", names.p);
    buf_release(&names);
    return -1;
}

static void get_policy(const struct cfg_option *o, struct buf *out) { buf_puts(out, policies[policy_named].name); }

/* hz: any int is accepted and brought into 1..500, as Redis's updateHZ();
 * the workers' crons follow a change at their next tick (server.c). */
static int set_hz(const struct cfg_option *o, int argc, const char *const *argv, int append, char *err,
                  size_t errlen)
{
    int64_t v;
    if (num_parse_i64(argv[0], strlen(argv[0]), &v) < 0) {
        snprintf(err, errlen, "argument couldn't be parsed into an integer");
        return -1;
    }
    if (v < 0 || v > INT32_MAX) {
        snprintf(err, errlen, "argument must be between 0 and 2147483647 inclusive");
        return -1;
    }
    *(int64_t *)o->storage = v < 1 ? 1 : v > 500 ? 500 : v;
    return 0;
}

static void get_hz(const struct cfg_option *o, struct buf *out)
{
    buf_printf(out, "%lld", (long long)*(const int64_t *)o->storage);
}

static int apply_loglevel(const struct cfg_option *o, char *err, size_t errlen)
{
    log_set_level((enum log_level)the_sc->loglevel);
    log_set_format((enum log_format)the_sc->log_format);
    return 0;
}

static int apply_io_uring(const struct cfg_option *o, char *err, size_t errlen)
{
    sendbatch_enable(the_sc->io_uring);
    return 0;
}

static int apply_logfile(const struct cfg_option *o, char *err, size_t errlen)
{
    int rc = log_open(the_sc->logfile);
    if (rc < 0) {
        snprintf(err, errlen, "can't open the log file: %s", strerror(-rc));
        return -1;
    }
    return 0;
}

static int apply_dir(const struct cfg_option *o, char *err, size_t errlen)
{
    if (the_sc->dir && *the_sc->dir && chdir(the_sc->dir) < 0) {
        snprintf(err, errlen, "No such file or directory: %s", the_sc->dir);
        return -1;
    }
    return 0;
}

/* client-output-buffer-limit <class> <hard> <soft> <soft seconds> [<class> ...] */
static int set_obuf(const struct cfg_option *o, int argc, const char *const *argv, int append, char *err,
                    size_t errlen)
{
    struct obuf_limit *lims = o->storage;
    if (argc % 4 != 0 || argc == 0) {
        snprintf(err, errlen, "Wrong number of arguments in buffer limit configuration.");
        return -1;
    }
    for (int i = 0; i < argc; i += 4) {
        int cls;
        if (!strcasecmp(argv[i], "normal"))
            cls = OBL_NORMAL;
        else if (!strcasecmp(argv[i], "replica") || !strcasecmp(argv[i], "slave"))
            cls = OBL_REPLICA;
        else if (!strcasecmp(argv[i], "pubsub"))
            cls = OBL_PUBSUB;
        else {
            snprintf(err, errlen, "Invalid client class specified in buffer limit configuration.");
            return -1;
        }
        int64_t hard, soft, secs;
        if (num_parse_memory(argv[i + 1], &hard) < 0 || num_parse_memory(argv[i + 2], &soft) < 0 ||
            num_parse_i64(argv[i + 3], strlen(argv[i + 3]), &secs) < 0 || hard < 0 || soft < 0 || secs < 0) {
            snprintf(err, errlen, "Error in hard, soft or soft_seconds setting in buffer limit configuration.");
            return -1;
        }
        lims[cls] = (struct obuf_limit){hard, soft, secs};
    }
    return 0;
}

static void get_obuf(const struct cfg_option *o, struct buf *out)
{
    const struct obuf_limit *l = o->storage;
    static const char *const names[] = {"normal", "slave", "pubsub"};
    for (int i = 0; i < OBL__COUNT; i++)
        buf_printf(out, "%s%s %lld %lld %lld", i ? " " : "", names[i], (long long)l[i].hard, (long long)l[i].soft,
                   (long long)l[i].soft_seconds);
}

#define OPT_INT(n, field, def, lo, hi, fl, ap)                                                               \
    {.name = n, .type = CFG_INT, .flags = fl, .storage = &sc_.field, .dflt = def, .min = lo, .max = hi, \
     .apply = ap}
#define OPT_MEM(n, field, def, lo, hi, fl, ap)                                                                  \
    {.name = n, .type = CFG_MEMORY, .flags = fl, .storage = &sc_.field, .dflt = def, .min = lo, .max = hi, \
     .apply = ap}
#define OPT_STR(n, field, def, fl, ap) \
    {.name = n, .type = CFG_STRING, .flags = fl, .storage = &sc_.field, .dflt = def, .apply = ap}
#define OPT_ENUM(n, field, def, names, fl, ap) \
    {.name = n, .type = CFG_ENUM, .flags = fl, .storage = &sc_.field, .dflt = def, .enum_names = names, .apply = ap}

/* notify-keyspace-events: Redis's letters (pubsub.c reads and writes them). */
static int set_notify(const struct cfg_option *o, int argc, const char *const *argv, int append, char *err,
                      size_t errlen)
{
    int64_t flags = 0;
    if (argc > 1 || (argc == 1 && notify_flags_parse(argv[0], &flags) < 0)) {
        snprintf(err, errlen, "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.");
        return -1;
    }
    *(int64_t *)o->storage = flags;
    return 0;
}

static void get_notify(const struct cfg_option *o, struct buf *out)
{
    notify_flags_format(*(const int64_t *)o->storage, out);
}

static int apply_notify(const struct cfg_option *o, char *err, size_t errlen)
{
    if (the_eng)
        eng_set_notify_mask(the_eng, notify_engine_mask(the_sc->notify_keyspace_events));
    return 0;
}

/* CONFIG SET requirepass: the default user's password changes at once. */
static int apply_requirepass(const struct cfg_option *o, char *err, size_t errlen)
{
    acl_set_requirepass(the_sc->requirepass);
    return 0;
}

/* `user <name> <rules...>` lines (acl.c keeps them until the ACL starts). */
static int set_user(const struct cfg_option *o, int argc, const char *const *argv, int append, char *err,
                    size_t errlen)
{
    if (!append)
        acl_config_users_clear();
    return argc == 0 ? 0 : acl_config_user(argc, argv, err, errlen);
}

static void get_user(const struct cfg_option *o, struct buf *out) { acl_config_users_format(out); }

/* `rename-command <name> <new name>` ("" disables it): cmdtable.c. */
static int set_rename(const struct cfg_option *o, int argc, const char *const *argv, int append, char *err,
                      size_t errlen)
{
    if (!append)
        cmd_renames_clear();
    if (argc == 0)
        return 0;
    if (argc != 2) {
        snprintf(err, errlen, "wrong number of arguments: rename-command <command> <new name>");
        return -1;
    }
    return cmd_rename_add(argv[0], argv[1], err, errlen);
}

static void get_rename(const struct cfg_option *o, struct buf *out) { cmd_renames_format(out); }

static struct server_config sc_;
static struct cfg_option table[] = {
    OPT_INT("port", port, "6379", 0, 65535, CFG_IMMUTABLE, NULL),
    OPT_STR("bind", bind, "127.0.0.1", CFG_IMMUTABLE, NULL),
    OPT_STR("requirepass", requirepass, "", CFG_SECRET | CFG_FILE_OK, apply_requirepass),
    {.name = "protected-mode", .type = CFG_BOOL, .storage = &sc_.protected_mode, .dflt = "yes"},
    {.name = "io-uring", .type = CFG_BOOL, .storage = &sc_.io_uring, .dflt = "yes", .apply = apply_io_uring},
    /* ACL users and renamed commands: config-file lines, not CONFIG SET */
    {.name = "user", .type = CFG_SPECIAL, .flags = CFG_MULTIARG | CFG_IMMUTABLE | CFG_HIDDEN | CFG_SECRET,
     .storage = &sc_, .set = set_user, .get = get_user},
    {.name = "rename-command", .type = CFG_SPECIAL, .flags = CFG_MULTIARG | CFG_IMMUTABLE | CFG_HIDDEN,
     .storage = &sc_, .set = set_rename, .get = get_rename},
    OPT_INT("maxclients", maxclients, "10000", 1, 1000000, 0, NULL),
    OPT_MEM("maxmemory", maxmemory, "0", 0, INT64_MAX, 0, apply_memory),
    {.name = "maxmemory-policy", .type = CFG_SPECIAL, .storage = &sc_.maxmemory_policy, .dflt = "noeviction",
     .set = set_policy, .get = get_policy, .apply = apply_memory},
    OPT_INT("maxmemory-samples", maxmemory_samples, "5", 1, 64, 0, apply_memory),
    OPT_STR("dir", dir, "./", 0, apply_dir),
    OPT_STR("logfile", logfile, "", CFG_IMMUTABLE, apply_logfile),
    OPT_ENUM("loglevel", loglevel, "notice", loglevels, 0, apply_loglevel),
    OPT_ENUM("log-format", log_format, "logfmt", logformats, 0, apply_loglevel),
    OPT_INT("databases", databases, "16", 1, 1024, CFG_IMMUTABLE, NULL),
    OPT_INT("shards", shards, "0", 0, ENG_MAX_SHARDS, CFG_IMMUTABLE, NULL),
    OPT_INT("io-threads", io_threads, "0", 0, ENG_MAX_SHARDS, CFG_IMMUTABLE, NULL),
    OPT_MEM("proto-max-bulk-len", proto_max_bulk_len, "512mb", 1024 * 1024, INT64_MAX, 0, NULL),
    OPT_INT("proto-max-multibulk-len", max_multibulk, "4194304", 1, 2147483647, 0, NULL),
    OPT_MEM("client-query-buffer-limit", client_query_buffer_limit, "1gb", 1024 * 1024, INT64_MAX, 0, NULL),
    {.name = "client-output-buffer-limit", .type = CFG_SPECIAL, .flags = CFG_MULTIARG, .storage = &sc_.obuf_limits,
     .dflt = "normal 0 0 0 slave 256mb 64mb 60 pubsub 32mb 8mb 60", .set = set_obuf, .get = get_obuf},
    OPT_ENUM("appendonly", appendonly, "no", appendonly_values, 0, NULL),
    OPT_INT("timeout", timeout, "0", 0, INT32_MAX, 0, NULL),
    OPT_INT("tcp-backlog", tcp_backlog, "511", 0, 65535, CFG_IMMUTABLE, NULL),
    OPT_INT("tcp-keepalive", tcp_keepalive, "300", 0, INT32_MAX, 0, NULL),
    {.name = "hz", .type = CFG_SPECIAL, .storage = &sc_.hz, .dflt = "10", .set = set_hz, .get = get_hz},
    OPT_INT("slowlog-log-slower-than", slowlog_log_slower_than, "10000", -1, INT64_MAX, 0, NULL),
    OPT_INT("slowlog-max-len", slowlog_max_len, "128", 0, 1000000, 0, NULL),
    OPT_INT("busy-reply-threshold", busy_reply_threshold, "5000", 0, INT64_MAX, 0, NULL),
    OPT_INT("busy-poll-us", busy_poll_us, "50", 0, 1000000, 0, NULL),
    OPT_STR("pidfile", pidfile, "", CFG_IMMUTABLE, NULL),
    {.name = "notify-keyspace-events", .type = CFG_SPECIAL, .storage = &sc_.notify_keyspace_events, .dflt = "",
     .set = set_notify, .get = get_notify, .apply = apply_notify},
    /* Only "no": obentchi runs in the foreground, for containers and systemd
     * (server_new() refuses "yes" with the reason). */
    {.name = "daemonize", .type = CFG_BOOL, .flags = CFG_IMMUTABLE, .storage = &sc_.daemonize, .dflt = "no"},
};

struct server_config *server_options_register(struct cfg *c)
{
    the_sc = &sc_;
    acl_bind_requirepass(&sc_.requirepass);
    cfg_register(c, table, sizeof table / sizeof table[0]);
    return &sc_;
}
