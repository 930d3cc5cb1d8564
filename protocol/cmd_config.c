/* cmd_config.c: CONFIG GET / SET / RESETSTAT / REWRITE / HELP over the option
 * registry (base/config.h), with Redis 7.0's replies and error texts.
 *
 * CONFIG SET of several options is all or nothing, as in Redis 7: names are
 * all checked first (unknown, immutable, given twice), then the values are
 * set one by one, and when one is refused the ones already set get their old
 * values back, in reverse order.
 *
 * One CONFIG command runs at a time (config_lock); other readers of the
 * option values (handlers reading srv->cfg) are not covered by it.
 *
 * Not for: the options themselves (options.c and each module's table), nor
 * applying them (their apply callbacks). */
#include <string.h>
#include <strings.h>

#include "base/alloc.h"
#include "base/log.h"
#include "server_int.h"

/* CONFIG runs on whichever worker its client belongs to, and the registry
 * does not lock (config.h: "the caller serialises"): CONFIG subcommands take
 * turns on this lock.  It belongs in struct server; it lives here until the
 * registry or the server carries one. */
static pthread_mutex_t config_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- CONFIG GET ------------------------------------------------------------- */

struct get_pairs {
    char **v; /* name, value, name, value... (xmalloc'ed) */
    int n, cap;
    const char *as; /* the name to show, for a pattern without glob characters */
};

static void get_collect(void *ud, const char *name, const char *value)
{
    struct get_pairs *g = ud;
    if (g->as)
        name = g->as;
    /* a name matched by an earlier pattern is listed once, as Redis's
     * case-insensitive dictionary of matches does */
    for (int i = 0; i < g->n; i += 2)
        if (!strcasecmp(g->v[i], name))
            return;
    if (g->n + 2 > g->cap) {
        g->cap = g->cap ? 2 * g->cap : 32;
        g->v = xrealloc(g->v, sizeof *g->v * (size_t)g->cap);
    }
    g->v[g->n++] = xstrdup(name);
    g->v[g->n++] = xstrdup(value);
}

/* Redis answers an exact name (no glob character) with the name as asked,
 * "CONFIG GET MAXMEMORY" -> MAXMEMORY, and a pattern with the options' own
 * names, aliases included. */
static void config_get(struct call *k)
{
    struct get_pairs g = {0};
    for (int i = 2; i < k->argc; i++) {
        char *pat = arg_strdup(k, i);
        g.as = strpbrk(pat, "[*?") ? NULL : pat;
        cfg_get_matching(k->srv->conf, pat, get_collect, &g);
        xfree(pat);
    }
    resp_w_map(k->out, k->proto, g.n / 2);
    for (int i = 0; i < g.n; i++) {
        resp_w_bulkstr(k->out, g.v[i]);
        xfree(g.v[i]);
    }
    xfree(g.v);
}

/* ---- CONFIG SET ------------------------------------------------------------- */

struct set_item {
    char *name, *value, *old;
    const struct cfg_option *o;
};

static void set_items_free(struct set_item *it, int n)
{
    for (int i = 0; i < n; i++) {
        xfree(it[i].name);
        xfree(it[i].value);
        xfree(it[i].old);
    }
    xfree(it);
}

/* Redis's first pass: the first name in argument order that is unknown,
 * immutable or given twice is reported, and nothing is set. */
static int set_check(struct call *k, struct set_item *it, int n)
{
    for (int i = 0; i < n; i++) {
        const char *why = NULL;
        it[i].o = cfg_find(k->srv->conf, it[i].name);
        if (!it[i].o) {
            reply_error(k, "ERR Unknown option or number of arguments for CONFIG SET - '%s'", it[i].name);
            return -1;
        }
        if (it[i].o->flags & CFG_IMMUTABLE)
            why = "can't set immutable config";
        for (int j = 0; j < i && !why; j++)
            if (it[j].o == it[i].o)
                why = "duplicate parameter";
        if (why) {
            reply_error(k, "ERR CONFIG SET failed (possibly related to argument '%s') - %s", it[i].name, why);
            return -1;
        }
    }
    return 0;
}

/* Sets every value; on a refusal puts back the ones already set. */
static int set_apply(struct call *k, struct set_item *it, int n)
{
    char err[512] = "";
    for (int i = 0; i < n; i++) {
        struct buf old = BUF_INIT;
        cfg_get(k->srv->conf, it[i].name, &old);
        it[i].old = buf_detach(&old, NULL);
        if (cfg_set(k->srv->conf, it[i].name, it[i].value, err, sizeof err) == 0)
            continue;
        reply_error(k, "ERR CONFIG SET failed (possibly related to argument '%s') - %s", it[i].name, err);
        while (--i >= 0) {
            char ignored[512];
            if (cfg_set(k->srv->conf, it[i].name, it[i].old, ignored, sizeof ignored) < 0)
                log_warn("CONFIG SET could not restore an option", "option=%s err=\"%s\"", it[i].name, ignored);
        }
        return -1;
    }
    return 0;
}

static void config_set(struct call *k)
{
    if (k->argc % 2) {
        reply_syntax(k);
        return;
    }
    int n = (k->argc - 2) / 2;
    struct set_item *it = xcalloc((size_t)n, sizeof *it);
    for (int i = 0; i < n; i++) {
        it[i].name = arg_strdup(k, 2 + 2 * i);
        it[i].value = arg_strdup(k, 3 + 2 * i);
    }
    if (set_check(k, it, n) == 0 && set_apply(k, it, n) == 0)
        reply_ok(k);
    set_items_free(it, n);
}

/* ---- CONFIG RESETSTAT / REWRITE ------------------------------------------- */

/* Zeroes the counters INFO reports.  Other workers' counters are zeroed from
 * here: an increment racing with it may survive, which a reset tolerates. */
static void config_resetstat(struct call *k)
{
    struct server *srv = k->srv;
    int ncmds = cmd_id_count(); /* subcommands included */
    for (int i = 0; i < srv->nworkers; i++) {
        struct worker *w = &srv->workers[i];
        for (int c = 0; c < ncmds; c++) {
            struct cmd_stat *st = &w->cmdstats[c];
            STAT_SET(st->calls, 0);
            STAT_SET(st->usec, 0);
            STAT_SET(st->rejected, 0);
            STAT_SET(st->failed, 0);
            for (int b = 0; b <= CMD_HIST_NB; b++)
                STAT_SET(st->hist[b], 0);
        }
        STAT_SET(w->commands, 0);
        STAT_SET(w->conns_received, 0);
        STAT_SET(w->rejected_conns, 0);
        STAT_SET(w->net_in, 0);
        STAT_SET(w->net_out, 0);
        STAT_SET(w->errors, 0);
        STAT_SET(w->ops_sample_cmds, 0);
    }
    atomic_store(&srv->stat_kills, 0);
    eng_stats_reset(srv->eng);
    reply_ok(k);
}

static void config_rewrite(struct call *k)
{
    char err[512] = "";
    if (!k->srv->conf_path) {
        reply_error(k, "ERR The server is running without a config file");
        return;
    }
    if (cfg_rewrite(k->srv->conf, k->srv->conf_path, err, sizeof err) < 0) {
        log_warn("CONFIG REWRITE failed", "path=%s err=\"%s\"", k->srv->conf_path, err);
        reply_error(k, "ERR Rewriting config file: %s", err);
        return;
    }
    log_info("CONFIG REWRITE executed with success.", "path=%s", k->srv->conf_path);
    reply_ok(k);
}

/* ---- dispatch ------------------------------------------------------------- */

static const char *const help[] = {
    "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET <pattern>",
    "    Return parameters matching the glob-like <pattern> and their values.",
    "SET <directive> <value>",
    "    Set the configuration <directive> to <value>.",
    "RESETSTAT",
    "    Reset statistics reported by the INFO command.",
    "REWRITE",
    "    Rewrite the configuration file.",
    "HELP",
    "    Prints this help.",
};

static void config_help(struct call *k)
{
    reply_help(k, help, sizeof help / sizeof help[0]);
}

static const struct {
    const char *name;
    int arity; /* counts CONFIG and the subcommand; -N: at least N */
    void (*fn)(struct call *k);
} subcmds[] = {
    {"get", -3, config_get},        {"set", -4, config_set},  {"resetstat", 2, config_resetstat},
    {"rewrite", 2, config_rewrite}, {"help", 2, config_help},
};

void cmd_config(struct call *k)
{
    const struct eng_str *s = &k->argv[1];
    for (size_t i = 0; i < sizeof subcmds / sizeof subcmds[0]; i++) {
        if (s->n != strlen(subcmds[i].name) || strncasecmp(s->p, subcmds[i].name, s->n))
            continue;
        int arity = subcmds[i].arity;
        if ((arity > 0 && k->argc != arity) || k->argc < -arity) {
            reply_error(k, "ERR wrong number of arguments for 'config|%s' command", subcmds[i].name);
            return;
        }
        pthread_mutex_lock(&config_lock);
        subcmds[i].fn(k);
        pthread_mutex_unlock(&config_lock);
        return;
    }
    reply_error(k, "ERR unknown subcommand '%.*s'. Try CONFIG HELP.", s->n > 128 ? 128 : (int)s->n, s->p);
}
