/* options.c: the snapshot options (replication.h), registered by main.c like
 * the server's.  `save` keeps Redis's syntax: pairs of "<seconds> <changes>",
 * several lines or several pairs on one line, `save ""` for none; CONFIG GET
 * save answers "3600 1 300 100 60 10000" as redis-server 7 does (and as
 * redis-benchmark asks).
 *
 * The snapshot thread reads the rules and dbfilename while CONFIG SET may
 * replace them, so both are read through copies taken under a lock. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/num.h"
#include "replication.h"
#include "snap_int.h"

static struct repl_snap_config rc_;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char *dbfilename_copy;

static const char *const restore_names[] = {"auto", "mongo", "file", "none", NULL};
static const char *const method_names[] = {"versioned", "fork", NULL};

static int apply_method(const struct cfg_option *o, char *err, size_t errlen)
{
    atomic_store(&snap_method, rc_.snapshot_method);
    return 0;
}

static int set_save(const struct cfg_option *o, int argc, const char *const *argv, int append, char *err,
                    size_t errlen)
{
    struct repl_save_rule rules[REPL_MAX_SAVE_RULES];
    int n = 0;
    if (append) {
        pthread_mutex_lock(&lock);
        n = rc_.nsave;
        memcpy(rules, rc_.save, sizeof rules);
        pthread_mutex_unlock(&lock);
    }
    if (argc % 2) {
        snprintf(err, errlen, "Invalid save parameters");
        return -1;
    }
    for (int i = 0; i < argc; i += 2) {
        int64_t secs, changes;
        if (num_parse_i64(argv[i], strlen(argv[i]), &secs) < 0 ||
            num_parse_i64(argv[i + 1], strlen(argv[i + 1]), &changes) < 0 || secs < 1 || changes < 0) {
            snprintf(err, errlen, "Invalid save parameters");
            return -1;
        }
        if (n == REPL_MAX_SAVE_RULES) {
            snprintf(err, errlen, "Too many save parameters (at most %d)", REPL_MAX_SAVE_RULES);
            return -1;
        }
        rules[n++] = (struct repl_save_rule){secs, changes};
    }
    pthread_mutex_lock(&lock);
    memcpy(rc_.save, rules, sizeof rules);
    rc_.nsave = n;
    pthread_mutex_unlock(&lock);
    return 0;
}

static void get_save(const struct cfg_option *o, struct buf *out)
{
    pthread_mutex_lock(&lock);
    for (int i = 0; i < rc_.nsave; i++)
        buf_printf(out, "%s%lld %lld", i ? " " : "", (long long)rc_.save[i].seconds, (long long)rc_.save[i].changes);
    pthread_mutex_unlock(&lock);
}

static int apply_dbfilename(const struct cfg_option *o, char *err, size_t errlen)
{
    const char *name = rc_.dbfilename ? rc_.dbfilename : "";
    if (!*name || strchr(name, '/')) {
        snprintf(err, errlen, "dbfilename can't be a path, just a filename");
        return -1;
    }
    char *copy = xstrdup(name);
    pthread_mutex_lock(&lock);
    char *old = dbfilename_copy;
    dbfilename_copy = copy;
    pthread_mutex_unlock(&lock);
    xfree(old);
    return 0;
}

int repl_options_check(char *err, size_t errlen)
{
    atomic_store(&snap_method, rc_.snapshot_method);
    if (apply_dbfilename(NULL, err, errlen) < 0)
        return -1;
    if (rc_.restore_from == REPL_RESTORE_MONGO && !(rc_.mongo_uri && *rc_.mongo_uri)) {
        snprintf(err, errlen, "restore-from mongo needs mongo-uri");
        return -1;
    }
    return 0;
}

int repl_options_rules(struct repl_save_rule out[REPL_MAX_SAVE_RULES])
{
    pthread_mutex_lock(&lock);
    int n = rc_.nsave;
    memcpy(out, rc_.save, sizeof rc_.save);
    pthread_mutex_unlock(&lock);
    return n;
}

char *repl_options_dbfilename(void)
{
    pthread_mutex_lock(&lock);
    char *copy = xstrdup(dbfilename_copy ? dbfilename_copy : "obentchi.snap");
    pthread_mutex_unlock(&lock);
    return copy;
}

#define OPT_STR(n, field, def, fl, ap) \
    {.name = n, .type = CFG_STRING, .flags = fl, .storage = &rc_.field, .dflt = def, .apply = ap}

static struct cfg_option table[] = {
    {.name = "save", .type = CFG_SPECIAL, .flags = CFG_MULTIARG, .storage = &rc_.save,
     .dflt = "3600 1 300 100 60 10000", .set = set_save, .get = get_save},
    OPT_STR("dbfilename", dbfilename, "obentchi.snap", 0, apply_dbfilename),
    {.name = "snapshot-keep", .type = CFG_INT, .storage = &rc_.snapshot_keep, .dflt = "3", .min = 1, .max = 10000},
    {.name = "snapshot-chunk-size", .type = CFG_MEMORY, .storage = &rc_.snapshot_chunk_size, .dflt = "4mb",
     .min = 4096, .max = 8 << 20},
    OPT_STR("mongo-uri", mongo_uri, "", CFG_SECRET | CFG_FILE_OK | CFG_IMMUTABLE, NULL),
    OPT_STR("mongo-database", mongo_database, "obentchi", CFG_IMMUTABLE, NULL),
    OPT_STR("mongo-collection", mongo_collection, "snapshots", CFG_IMMUTABLE, NULL),
    OPT_STR("mongo-write-concern", mongo_write_concern, "majority", CFG_IMMUTABLE, NULL),
    {.name = "restore-from", .type = CFG_ENUM, .flags = CFG_IMMUTABLE, .storage = &rc_.restore_from,
     .dflt = "auto", .enum_names = restore_names},
    {.name = "snapshot-method", .type = CFG_ENUM, .storage = &rc_.snapshot_method, .dflt = "versioned",
     .enum_names = method_names, .apply = apply_method},
};

struct repl_snap_config *repl_options_register(struct cfg *c)
{
    cfg_register(c, table, sizeof table / sizeof table[0]);
    return &rc_;
}
