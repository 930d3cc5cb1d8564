/* acl.c: ACL users (acl.h) and the ACL command (SETUSER, DELUSER, GETUSER,
 * LIST, USERS, WHOAMI, CAT, GENPASS, LOG, HELP), in Redis 7's words.
 *
 * Permissions are a bitmap over command ids (subcommands have their own, so
 * +config|get allows CONFIG GET only); categories are derived from the
 * command table's flags and groups once, when first needed (cat_of()).
 * The command rules are also kept as text in the order given ("+@all
 * -debug"), which is what ACL LIST and GETUSER show, as Redis 6 did.
 * What it is not: no selectors, no ACL file, no %R~/%W~ key permissions. */
#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "acl.h"
#include "base/alloc.h"
#include "base/glob.h"
#include "base/log.h"
#include "server_int.h"

#define HASH_LEN 32

/* Redis 7's categories (ACL CAT lists them in this order), then obentchi's
 * @replication: what a replica and a role change need. */
#define CATS(X)                                                                                          \
    X(keyspace) X(read) X(write) X(set) X(sortedset) X(list) X(hash) X(string) X(bitmap) X(hyperloglog) \
    X(geo) X(stream) X(pubsub) X(admin) X(fast) X(slow) X(blocking) X(dangerous) X(connection)          \
    X(transaction) X(scripting) X(replication)
#define CAT_ENUM(n) CAT_##n,
enum { CATS(CAT_ENUM) NCATS };
#define CAT_NAME(n) #n,
static const char *const cat_names[] = {CATS(CAT_NAME)};

struct acl_user {
    char *name;
    _Atomic int allow_all; /* on the fast path: every command, key and channel */
    _Atomic int deleted;
    struct acl_rules {
        int on, nopass;
        unsigned char (*pass)[HASH_LEN];
        int npass;
        uint64_t *cmds; /* bit per command id */
        int allkeys, allchans;
        char **keys, **chans;
        int nkeys, nchans;
        struct buf cmdrules; /* "+@all -debug" */
    } r;
    struct acl_user *next;
};

static pthread_rwlock_t lock = PTHREAD_RWLOCK_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static struct acl_user *users, *graveyard;
static struct acl_user *default_user;
static int nids, nwords;
static uint32_t *cat_mask; /* per command id: bit per category */

/* ---- categories ---------------------------------------------------------------- */

static int name_in(const char *name, const char *const *list)
{
    for (; *list; list++)
        if (!strcmp(name, *list))
            return 1;
    return 0;
}

static uint32_t cat_of(const struct cmd_def *c)
{
    static const char *const dangerous[] = {"flushall", "flushdb", "keys", "debug", "shutdown", "monitor",
                                            "info", "swapdb", "role", "replicaof", "slaveof", "sync", "psync",
                                            "replconf", "config", "client", "acl", "save", "bgsave", "failover",
                                            "lastsave", "latency", "slowlog", "bgrewriteaof", NULL};
    static const char *const keyspace_extra[] = {"dbsize", "flushdb", "flushall", "swapdb", "randomkey", NULL};
    static const char *const replication[] = {"psync", "sync", "replconf", "replicaof", "slaveof", "role",
                                              "failover", "wait", NULL};
    const struct cmd_def *top = c->parent ? c->parent : c;
    const char *g = top->group ? top->group : "";
    uint32_t m = 0;
#define SET(cat) (m |= 1u << CAT_##cat)
    if (c->flags & CMD_READONLY)
        SET(read);
    if (c->flags & CMD_WRITE)
        SET(write);
    if (c->flags & CMD_ADMIN)
        SET(admin), SET(dangerous);
    SET(slow);
    if (c->flags & CMD_FAST)
        m = (m & ~(1u << CAT_slow)) | 1u << CAT_fast;
    if (c->flags & CMD_BLOCKING)
        SET(blocking);
    if (!strcmp(g, "generic") || name_in(top->name, keyspace_extra))
        SET(keyspace);
    if (!strcmp(g, "string"))
        SET(string);
    if (!strcmp(g, "hash"))
        SET(hash);
    if (!strcmp(g, "list"))
        SET(list);
    if (!strcmp(g, "set"))
        SET(set);
    if (!strcmp(g, "sorted-set"))
        SET(sortedset);
    if (!strcmp(g, "pubsub"))
        SET(pubsub);
    if (!strcmp(g, "connection"))
        SET(connection);
    if (!strcmp(g, "transactions"))
        SET(transaction);
    if (!strcmp(g, "scripting"))
        SET(scripting);
    if (!c->parent && name_in(c->name, dangerous))
        SET(dangerous); /* a subcommand is dangerous when admin (CLIENT KILL, not CLIENT SETNAME) */
    if (name_in(top->name, replication))
        SET(replication);
#undef SET
    return m;
}

static void each_command(void (*fn)(void *ud, const struct cmd_def *c), void *ud)
{
    int n;
    const struct cmd_def *t = cmd_table(&n);
    for (int i = 0; i < n; i++) {
        fn(ud, &t[i]);
        for (int j = 0; j < t[i].nsubs; j++)
            fn(ud, &t[i].subs[j]);
    }
}

static void note_cat(void *ud, const struct cmd_def *c) { cat_mask[c->id] = cat_of(c); }

static int cat_find(const char *p, size_t n)
{
    for (int i = 0; i < NCATS; i++)
        if (strlen(cat_names[i]) == n && !strncasecmp(cat_names[i], p, n))
            return i;
    return -1;
}

/* ---- users ------------------------------------------------------------------------ */

static void rules_init(struct acl_rules *r)
{
    memset(r, 0, sizeof *r);
    r->cmds = xcalloc((size_t)nwords, sizeof *r->cmds);
    buf_init(&r->cmdrules);
    buf_puts(&r->cmdrules, "-@all");
}

static char **strv_copy(char **v, int n)
{
    char **out = n ? xmalloc(sizeof *out * (size_t)n) : NULL;
    for (int i = 0; i < n; i++)
        out[i] = xstrdup(v[i]);
    return out;
}

static void strv_free(char **v, int n)
{
    for (int i = 0; i < n; i++)
        xfree(v[i]);
    xfree(v);
}

static void rules_copy(struct acl_rules *dst, const struct acl_rules *src)
{
    *dst = *src;
    dst->pass = src->npass ? xmalloc(HASH_LEN * (size_t)src->npass) : NULL;
    if (src->npass)
        memcpy(dst->pass, src->pass, HASH_LEN * (size_t)src->npass);
    dst->cmds = xmalloc(sizeof *dst->cmds * (size_t)nwords);
    memcpy(dst->cmds, src->cmds, sizeof *dst->cmds * (size_t)nwords);
    dst->keys = strv_copy(src->keys, src->nkeys);
    dst->chans = strv_copy(src->chans, src->nchans);
    buf_init(&dst->cmdrules);
    buf_append(&dst->cmdrules, src->cmdrules.p, src->cmdrules.len);
}

static void rules_release(struct acl_rules *r)
{
    xfree(r->pass);
    xfree(r->cmds);
    strv_free(r->keys, r->nkeys);
    strv_free(r->chans, r->nchans);
    buf_release(&r->cmdrules);
}

static int all_cmds(const struct acl_rules *r)
{
    for (int i = 0; i < nids; i++)
        if (!(r->cmds[i / 64] >> (i % 64) & 1))
            return 0;
    return 1;
}

static void publish_fast_path(struct acl_user *u)
{
    atomic_store(&u->allow_all, u->r.on && u->r.allkeys && u->r.allchans && all_cmds(&u->r));
}

static struct acl_user *user_new(const char *name, size_t n)
{
    struct acl_user *u = xcalloc(1, sizeof *u);
    u->name = xstrndup(name, n);
    rules_init(&u->r);
    u->next = users;
    users = u;
    return u;
}

static struct acl_user *user_find(const char *name, size_t n)
{
    for (struct acl_user *u = users; u; u = u->next)
        if (strlen(u->name) == n && !memcmp(u->name, name, n))
            return u;
    return NULL;
}

static void hash_password(const char *p, size_t n, unsigned char out[HASH_LEN])
{
    unsigned int len = HASH_LEN;
    EVP_Digest(p, n, out, &len, EVP_sha256(), NULL);
}

static void apply_config(void);

static void init_once(void)
{
    nids = cmd_id_count();
    nwords = (nids + 63) / 64;
    cat_mask = xcalloc((size_t)nids, sizeof *cat_mask);
    each_command(note_cat, NULL);
    default_user = user_new("default", 7);
    struct acl_rules *r = &default_user->r;
    r->on = r->nopass = r->allkeys = r->allchans = 1;
    memset(r->cmds, 0xff, sizeof *r->cmds * (size_t)nwords);
    buf_reset(&r->cmdrules);
    buf_puts(&r->cmdrules, "+@all");
    publish_fast_path(default_user);
    apply_config();
}

static void init(void) { pthread_once(&once, init_once); }

struct acl_user *acl_default_user(void)
{
    init();
    return default_user;
}

int acl_default_nopass(void)
{
    init();
    pthread_rwlock_rdlock(&lock);
    int v = default_user->r.on && default_user->r.nopass;
    pthread_rwlock_unlock(&lock);
    return v;
}

const char *acl_user_name(const struct acl_user *u) { return u ? u->name : "default"; }

int acl_user_exists(const char *name, size_t n)
{
    init();
    pthread_rwlock_rdlock(&lock);
    int found = user_find(name, n) != NULL;
    pthread_rwlock_unlock(&lock);
    return found;
}

int acl_allows_all(const struct acl_user *u)
{
    if (!u)
        u = acl_default_user();
    return atomic_load_explicit(&u->allow_all, memory_order_relaxed) &&
           !atomic_load_explicit(&u->deleted, memory_order_relaxed);
}

static void set_requirepass_locked(const char *pass)
{
    struct acl_rules *r = &default_user->r;
    xfree(r->pass);
    r->pass = NULL;
    r->npass = 0;
    r->nopass = !pass || !*pass;
    if (!r->nopass) {
        r->pass = xmalloc(HASH_LEN);
        hash_password(pass, strlen(pass), r->pass[0]);
        r->npass = 1;
    }
}

void acl_set_requirepass(const char *pass)
{
    init();
    pthread_rwlock_wrlock(&lock);
    set_requirepass_locked(pass);
    pthread_rwlock_unlock(&lock);
}

struct acl_user *acl_authenticate(const char *name, size_t nlen, const char *pass, size_t plen)
{
    unsigned char h[HASH_LEN];
    init();
    hash_password(pass, plen, h);
    pthread_rwlock_rdlock(&lock);
    struct acl_user *u = user_find(name, nlen);
    int ok = 0;
    if (u && u->r.on) {
        ok = u->r.nopass;
        for (int i = 0; i < u->r.npass; i++) /* every hash compared: time does not tell which */
            ok |= CRYPTO_memcmp(h, u->r.pass[i], HASH_LEN) == 0;
    }
    pthread_rwlock_unlock(&lock);
    return ok ? u : NULL;
}

/* ---- SETUSER's rules ---------------------------------------------------------------- */

static void set_cmd(struct acl_rules *r, const struct cmd_def *c, int allow)
{
    if (allow)
        r->cmds[c->id / 64] |= 1ull << (c->id % 64);
    else
        r->cmds[c->id / 64] &= ~(1ull << (c->id % 64));
}

struct cat_apply {
    struct acl_rules *r;
    int cat, allow;
};

static void apply_cat(void *ud, const struct cmd_def *c)
{
    struct cat_apply *a = ud;
    if (a->cat < 0 || (cat_mask[c->id] >> a->cat & 1))
        set_cmd(a->r, c, a->allow);
}

static int parse_hex_hash(const char *p, size_t n, unsigned char out[HASH_LEN])
{
    if (n != HASH_LEN * 2)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)p[i]) || isupper((unsigned char)p[i]))
            return -1;
    for (int i = 0; i < HASH_LEN; i++) {
        char two[3] = {p[2 * i], p[2 * i + 1], 0};
        out[i] = (unsigned char)strtoul(two, NULL, 16);
    }
    return 0;
}

static void pass_add(struct acl_rules *r, const unsigned char h[HASH_LEN])
{
    for (int i = 0; i < r->npass; i++)
        if (!memcmp(r->pass[i], h, HASH_LEN))
            return;
    r->pass = xrealloc(r->pass, HASH_LEN * (size_t)(r->npass + 1));
    memcpy(r->pass[r->npass++], h, HASH_LEN);
    r->nopass = 0;
}

static int pass_del(struct acl_rules *r, const unsigned char h[HASH_LEN])
{
    for (int i = 0; i < r->npass; i++)
        if (!memcmp(r->pass[i], h, HASH_LEN)) {
            memmove(r->pass[i], r->pass[i + 1], HASH_LEN * (size_t)(r->npass - i - 1));
            r->npass--;
            return 0;
        }
    return -1;
}

static void strv_add(char ***v, int *n, const char *p, size_t len)
{
    for (int i = 0; i < *n; i++)
        if (strlen((*v)[i]) == len && !memcmp((*v)[i], p, len))
            return;
    *v = xrealloc(*v, sizeof **v * (size_t)(*n + 1));
    (*v)[(*n)++] = xstrndup(p, len);
}

static void cmdrule(struct acl_rules *r, int reset, const char *text, size_t n)
{
    if (reset)
        buf_reset(&r->cmdrules);
    else
        buf_putc(&r->cmdrules, ' ');
    for (size_t i = 0; i < n; i++)
        buf_putc(&r->cmdrules, (char)tolower((unsigned char)text[i]));
}

static int is(const char *p, size_t n, const char *word)
{
    return strlen(word) == n && !strncasecmp(p, word, n);
}

/* One rule; NULL when applied, else why not. */
static const char *apply_rule(struct acl_rules *r, const char *p, size_t n)
{
    unsigned char h[HASH_LEN];
    if (is(p, n, "on") || is(p, n, "off")) {
        r->on = is(p, n, "on");
    } else if (is(p, n, "nopass")) {
        r->nopass = 1;
        xfree(r->pass), r->pass = NULL, r->npass = 0;
    } else if (is(p, n, "resetpass")) {
        r->nopass = 0;
        xfree(r->pass), r->pass = NULL, r->npass = 0;
    } else if (n && (p[0] == '>' || p[0] == '<')) {
        hash_password(p + 1, n - 1, h);
        if (p[0] == '>')
            pass_add(r, h);
        else if (pass_del(r, h) < 0)
            return "The password you are trying to remove from the user does not exist";
    } else if (n && (p[0] == '#' || p[0] == '!')) {
        if (parse_hex_hash(p + 1, n - 1, h) < 0)
            return "The password hash must be exactly 64 characters and contain only lowercase hexadecimal "
                   "characters";
        if (p[0] == '#')
            pass_add(r, h);
        else if (pass_del(r, h) < 0)
            return "The password you are trying to remove from the user does not exist";
    } else if (is(p, n, "allkeys") || (n == 2 && !memcmp(p, "~*", 2))) {
        r->allkeys = 1;
        strv_free(r->keys, r->nkeys), r->keys = NULL, r->nkeys = 0;
    } else if (is(p, n, "resetkeys")) {
        r->allkeys = 0;
        strv_free(r->keys, r->nkeys), r->keys = NULL, r->nkeys = 0;
    } else if (n && p[0] == '~') {
        if (r->allkeys)
            return "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have "
                   "any effect. Try 'resetkeys' to start with an empty list of patterns";
        strv_add(&r->keys, &r->nkeys, p + 1, n - 1);
    } else if (n && p[0] == '%') {
        return "Key permissions by read/write (%R~, %W~) are not supported";
    } else if (is(p, n, "allchannels") || (n == 2 && !memcmp(p, "&*", 2))) {
        r->allchans = 1;
        strv_free(r->chans, r->nchans), r->chans = NULL, r->nchans = 0;
    } else if (is(p, n, "resetchannels")) {
        r->allchans = 0;
        strv_free(r->chans, r->nchans), r->chans = NULL, r->nchans = 0;
    } else if (n && p[0] == '&') {
        if (r->allchans)
            return "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not "
                   "have any effect. Try 'resetchannels' to start with an empty list of channels";
        strv_add(&r->chans, &r->nchans, p + 1, n - 1);
    } else if (is(p, n, "allcommands") || is(p, n, "+@all")) {
        memset(r->cmds, 0xff, sizeof *r->cmds * (size_t)nwords);
        cmdrule(r, 1, "+@all", 5);
    } else if (is(p, n, "nocommands") || is(p, n, "-@all")) {
        memset(r->cmds, 0, sizeof *r->cmds * (size_t)nwords);
        cmdrule(r, 1, "-@all", 5);
    } else if (n > 2 && (p[0] == '+' || p[0] == '-') && p[1] == '@') {
        struct cat_apply a = {r, cat_find(p + 2, n - 2), p[0] == '+'};
        if (a.cat < 0)
            return "Unknown command or category name in ACL";
        each_command(apply_cat, &a);
        cmdrule(r, 0, p, n);
    } else if (n > 1 && (p[0] == '+' || p[0] == '-')) {
        const struct cmd_def *c = cmd_lookup_full(p + 1, n - 1);
        if (!c)
            return "Unknown command or category name in ACL";
        set_cmd(r, c, p[0] == '+');
        for (int i = 0; i < c->nsubs; i++) /* a container: all its subcommands */
            set_cmd(r, &c->subs[i], p[0] == '+');
        cmdrule(r, 0, p, n);
    } else if (is(p, n, "reset")) {
        rules_release(r);
        rules_init(r);
    } else {
        return "Syntax error";
    }
    return NULL;
}

static int setuser_locked(const char *name, size_t nlen, int nrules, const struct eng_str *rules, char *err,
                          size_t errlen)
{
    if (!nlen || memchr(name, ' ', nlen) || memchr(name, '\0', nlen)) {
        snprintf(err, errlen, "ERR Usernames can't contain spaces or null characters");
        return -1;
    }
    struct acl_user *u = user_find(name, nlen);
    struct acl_rules work;
    if (u)
        rules_copy(&work, &u->r);
    else
        rules_init(&work);
    for (int i = 0; i < nrules; i++) {
        const char *why = apply_rule(&work, rules[i].p, rules[i].n);
        if (why) {
            rules_release(&work);
            snprintf(err, errlen, "ERR Error in ACL SETUSER modifier '%.*s': %s",
                     (int)(rules[i].n > 128 ? 128 : rules[i].n), rules[i].p, why);
            return -1;
        }
    }
    if (!u)
        u = user_new(name, nlen);
    rules_release(&u->r);
    u->r = work;
    publish_fast_path(u);
    return 0;
}

int acl_setuser(const char *name, size_t nlen, int nrules, const struct eng_str *rules, char *err, size_t errlen)
{
    init();
    pthread_rwlock_wrlock(&lock);
    int rc = setuser_locked(name, nlen, nrules, rules, err, errlen);
    pthread_rwlock_unlock(&lock);
    return rc;
}

/* ---- `user` lines of the configuration ------------------------------------------- */

struct pending {
    int argc;
    char **argv;
    struct pending *next;
};
static struct pending *pending, **pending_tail = &pending;
static char *const *bound_requirepass;

void acl_bind_requirepass(char *const *requirepass) { bound_requirepass = requirepass; }

/* A rule that needs no command table is checked on a scratch user. */
static const char *precheck(const char *rule)
{
    size_t n = strlen(rule);
    if (n > 1 && (rule[0] == '+' || rule[0] == '-') && rule[1] != '@')
        return NULL; /* a command name: known only once modules registered theirs */
    if (n > 2 && (rule[0] == '+' || rule[0] == '-'))
        return !strcasecmp(rule, "+@all") || !strcasecmp(rule, "-@all") || cat_find(rule + 2, n - 2) >= 0
                   ? NULL
                   : "Unknown command or category name in ACL";
    struct acl_rules r = {0};
    buf_init(&r.cmdrules);
    uint64_t none = 0;
    r.cmds = &none; /* nwords may still be 0: no command rule reaches it */
    const char *why = apply_rule(&r, rule, n);
    r.cmds = NULL;
    rules_release(&r);
    return why;
}

int acl_config_user(int argc, const char *const *argv, char *err, size_t errlen)
{
    if (argc < 1 || !*argv[0] || strchr(argv[0], ' ')) {
        snprintf(err, errlen, "a user line needs a name (without spaces), then its rules");
        return -1;
    }
    for (int i = 1; i < argc; i++) {
        const char *why = precheck(argv[i]);
        if (why) {
            snprintf(err, errlen, "Error in user declaration '%s': %s", argv[i][0] == '>' || argv[i][0] == '<'
                                                                            ? "(password)" : argv[i], why);
            return -1;
        }
    }
    struct pending *p = xcalloc(1, sizeof *p);
    p->argc = argc;
    p->argv = xmalloc(sizeof *p->argv * (size_t)argc);
    for (int i = 0; i < argc; i++)
        p->argv[i] = xstrdup(argv[i]);
    *pending_tail = p;
    pending_tail = &p->next;
    return 0;
}

void acl_config_users_clear(void)
{
    while (pending) {
        struct pending *p = pending;
        pending = p->next;
        strv_free(p->argv, p->argc);
        xfree(p);
    }
    pending_tail = &pending;
}

void acl_config_users_format(struct buf *out)
{
    for (struct pending *p = pending; p; p = p->next) {
        for (int i = 0; i < p->argc; i++)
            buf_printf(out, "%s%s", i ? " " : "", p->argv[i]);
        if (p->next)
            buf_puts(out, "\nuser "); /* CONFIG REWRITE writes "user " + this: one line each */
    }
}

/* The first user line init could not apply ("" when none): acl_load_config()
 * stops the start with it. */
static char config_err[640];

/* At init: the kept lines, then requirepass.  No lock: init runs once,
 * before anyone else can see the users. */
static void apply_config(void)
{
    for (struct pending *p = pending; p; p = p->next) {
        struct eng_str v[64];
        char err[512];
        int n = p->argc < 64 ? p->argc : 64;
        for (int i = 0; i < n; i++)
            v[i] = (struct eng_str){p->argv[i], strlen(p->argv[i])};
        if (setuser_locked(v[0].p, v[0].n, n - 1, v + 1, err, sizeof err) < 0 && !config_err[0])
            snprintf(config_err, sizeof config_err, "Error in user declaration '%s': %s", p->argv[0],
                     strncmp(err, "ERR ", 4) ? err : err + 4);
    }
    if (bound_requirepass && *bound_requirepass && **bound_requirepass)
        set_requirepass_locked(*bound_requirepass);
}

int acl_load_config(char *err, size_t errlen)
{
    init();
    if (!config_err[0])
        return 0;
    snprintf(err, errlen, "%s", config_err);
    return -1;
}

/* ---- the check ---------------------------------------------------------------------- */

static int match_any(char **pats, int n, const char *s, size_t len)
{
    for (int i = 0; i < n; i++)
        if (glob_match(pats[i], strlen(pats[i]), s, len, 0))
            return 1;
    return 0;
}

/* PSUBSCRIBE's patterns must be among the user's literally, as in Redis. */
static int chan_allowed(const struct acl_rules *r, const struct eng_str *ch, int literal)
{
    if (r->allchans)
        return 1;
    if (!literal)
        return match_any(r->chans, r->nchans, ch->p, ch->n);
    for (int i = 0; i < r->nchans; i++)
        if (strlen(r->chans[i]) == ch->n && !memcmp(r->chans[i], ch->p, ch->n))
            return 1;
    return 0;
}

static int channels_check(const struct acl_rules *r, const struct cmd_def *cmd, int argc, const struct eng_str *argv)
{
    const char *nm = cmd->name;
    int first = 1, last = argc - 1, literal = 0;
    if (!strcmp(nm, "publish") || !strcmp(nm, "spublish"))
        last = 1;
    else if (!strcmp(nm, "psubscribe"))
        literal = 1;
    else if (strcmp(nm, "subscribe") && strcmp(nm, "ssubscribe"))
        return 1;
    for (int i = first; i <= last && i < argc; i++)
        if (!chan_allowed(r, &argv[i], literal))
            return 0;
    return 1;
}

int acl_check(struct acl_user *u, const struct cmd_def *cmd, int argc, const struct eng_str *argv,
              const struct eng_str *keys, int nkeys)
{
    if (!u)
        u = acl_default_user();
    if (atomic_load_explicit(&u->deleted, memory_order_relaxed))
        return ACL_USER_GONE;
    if (atomic_load_explicit(&u->allow_all, memory_order_relaxed) || (cmd->flags & CMD_NOAUTH))
        return ACL_OK;
    int v = ACL_OK;
    pthread_rwlock_rdlock(&lock);
    const struct acl_rules *r = &u->r;
    if (!(r->cmds[cmd->id / 64] >> (cmd->id % 64) & 1))
        v = ACL_DENIED_CMD;
    for (int i = 0; v == ACL_OK && !r->allkeys && i < nkeys; i++)
        if (!match_any(r->keys, r->nkeys, keys[i].p, keys[i].n))
            v = ACL_DENIED_KEY;
    if (v == ACL_OK && !channels_check(r, cmd->parent ? cmd->parent : cmd, argc, argv))
        v = ACL_DENIED_CHANNEL;
    pthread_rwlock_unlock(&lock);
    return v;
}

static void user_free(struct acl_user *u)
{
    rules_release(&u->r);
    xfree(u->name);
    xfree(u);
}

void acl_reset(void)
{
    init();
    pthread_rwlock_wrlock(&lock);
    for (struct acl_user *u = users, *next; u; u = next) {
        next = u->next;
        if (u != default_user)
            user_free(u);
    }
    for (struct acl_user *u = graveyard, *next; u; u = next) {
        next = u->next;
        user_free(u);
    }
    users = default_user, graveyard = NULL;
    default_user->next = NULL;
    struct acl_rules *r = &default_user->r;
    rules_release(r);
    rules_init(r);
    r->on = r->nopass = r->allkeys = r->allchans = 1;
    memset(r->cmds, 0xff, sizeof *r->cmds * (size_t)nwords);
    buf_reset(&r->cmdrules);
    buf_puts(&r->cmdrules, "+@all");
    publish_fast_path(default_user);
    pthread_rwlock_unlock(&lock);
}

/* ---- the ACL command ------------------------------------------------------------------ */

static void describe(const struct acl_user *u, struct buf *b)
{
    const struct acl_rules *r = &u->r;
    buf_printf(b, "user %s %s", u->name, r->on ? "on" : "off");
    if (r->nopass)
        buf_puts(b, " nopass");
    for (int i = 0; i < r->npass; i++) {
        buf_puts(b, " #");
        for (int j = 0; j < HASH_LEN; j++)
            buf_printf(b, "%02x", r->pass[i][j]);
    }
    if (r->allkeys)
        buf_puts(b, " ~*");
    for (int i = 0; i < r->nkeys; i++)
        buf_printf(b, " ~%s", r->keys[i]);
    if (r->allchans)
        buf_puts(b, " &*");
    else if (!r->nchans)
        buf_puts(b, " resetchannels");
    for (int i = 0; i < r->nchans; i++)
        buf_printf(b, " &%s", r->chans[i]);
    buf_putc(b, ' ');
    buf_append(b, r->cmdrules.p, r->cmdrules.len);
}

static int by_name(const void *a, const void *b)
{
    return strcmp((*(struct acl_user *const *)a)->name, (*(struct acl_user *const *)b)->name);
}

/* The users sorted by name (rdlock held by the caller); xfree the array. */
static struct acl_user **sorted_users(int *n)
{
    int count = 0;
    for (struct acl_user *u = users; u; u = u->next)
        count++;
    struct acl_user **v = xmalloc(sizeof *v * (size_t)(count ? count : 1));
    count = 0;
    for (struct acl_user *u = users; u; u = u->next)
        v[count++] = u;
    qsort(v, (size_t)count, sizeof *v, by_name);
    *n = count;
    return v;
}

static void acl_list(struct call *k, int names_only)
{
    int n;
    pthread_rwlock_rdlock(&lock);
    struct acl_user **v = sorted_users(&n);
    resp_w_array(k->out, n);
    for (int i = 0; i < n; i++) {
        if (names_only) {
            resp_w_bulkstr(k->out, v[i]->name);
            continue;
        }
        struct buf b = BUF_INIT;
        describe(v[i], &b);
        resp_w_bulk(k->out, b.p, b.len);
        buf_release(&b);
    }
    pthread_rwlock_unlock(&lock);
    xfree(v);
}

static void patterns(struct buf *b, char prefix, int all, char **v, int n)
{
    if (all)
        buf_printf(b, "%c*", prefix);
    for (int i = 0; i < n; i++)
        buf_printf(b, "%s%c%s", i || all ? " " : "", prefix, v[i]);
}

static void acl_getuser(struct call *k)
{
    pthread_rwlock_rdlock(&lock);
    struct acl_user *u = user_find(k->argv[2].p, k->argv[2].n);
    if (!u) {
        pthread_rwlock_unlock(&lock);
        resp_w_null(k->out, k->proto);
        return;
    }
    const struct acl_rules *r = &u->r;
    struct buf b = BUF_INIT;
    resp_w_map(k->out, k->proto, 6);
    resp_w_bulkstr(k->out, "flags");
    int nflags = 1 + r->nopass + r->allkeys + r->allchans;
    resp_w_set(k->out, k->proto, nflags);
    resp_w_bulkstr(k->out, r->on ? "on" : "off");
    if (r->allkeys)
        resp_w_bulkstr(k->out, "allkeys");
    if (r->allchans)
        resp_w_bulkstr(k->out, "allchannels");
    if (r->nopass)
        resp_w_bulkstr(k->out, "nopass");
    resp_w_bulkstr(k->out, "passwords");
    resp_w_array(k->out, r->npass);
    for (int i = 0; i < r->npass; i++) {
        buf_reset(&b);
        for (int j = 0; j < HASH_LEN; j++)
            buf_printf(&b, "%02x", r->pass[i][j]);
        resp_w_bulk(k->out, b.p, b.len);
    }
    resp_w_bulkstr(k->out, "commands");
    resp_w_bulk(k->out, r->cmdrules.p, r->cmdrules.len);
    resp_w_bulkstr(k->out, "keys");
    buf_reset(&b);
    patterns(&b, '~', r->allkeys, r->keys, r->nkeys);
    resp_w_bulk(k->out, b.p ? b.p : "", b.len);
    resp_w_bulkstr(k->out, "channels");
    buf_reset(&b);
    patterns(&b, '&', r->allchans, r->chans, r->nchans);
    resp_w_bulk(k->out, b.p ? b.p : "", b.len);
    resp_w_bulkstr(k->out, "selectors");
    resp_w_array(k->out, 0);
    pthread_rwlock_unlock(&lock);
    buf_release(&b);
}

static void acl_deluser(struct call *k)
{
    for (int i = 2; i < k->argc; i++)
        if (is(k->argv[i].p, k->argv[i].n, "default") && k->argv[i].n == 7 && !memcmp(k->argv[i].p, "default", 7)) {
            reply_error(k, "ERR The 'default' user cannot be removed");
            return;
        }
    int64_t deleted = 0;
    pthread_rwlock_wrlock(&lock);
    for (int i = 2; i < k->argc; i++) {
        for (struct acl_user **pp = &users; *pp; pp = &(*pp)->next) {
            struct acl_user *u = *pp;
            if (strlen(u->name) == k->argv[i].n && !memcmp(u->name, k->argv[i].p, k->argv[i].n)) {
                *pp = u->next;
                atomic_store(&u->deleted, 1); /* its clients are closed at their next command */
                u->next = graveyard;
                graveyard = u;
                deleted++;
                break;
            }
        }
    }
    pthread_rwlock_unlock(&lock);
    resp_w_int(k->out, deleted);
}

struct cat_list {
    struct bulklist l;
    int cat;
};

static void list_cat(void *ud, const struct cmd_def *c)
{
    struct cat_list *a = ud;
    if (cat_mask[c->id] >> a->cat & 1)
        bulklist_add(&a->l, c->fullname, strlen(c->fullname));
}

static void acl_cat(struct call *k)
{
    if (k->argc == 2) {
        resp_w_array(k->out, NCATS);
        for (int i = 0; i < NCATS; i++)
            resp_w_bulkstr(k->out, cat_names[i]);
        return;
    }
    struct cat_list a = {BULKLIST_INIT, cat_find(k->argv[2].p, k->argv[2].n)};
    if (a.cat < 0) {
        reply_error(k, "ERR Unknown category '%.*s'", (int)(k->argv[2].n > 64 ? 64 : k->argv[2].n), k->argv[2].p);
        return;
    }
    each_command(list_cat, &a);
    reply_bulklist(k, &a.l);
}

static void acl_genpass(struct call *k)
{
    int64_t bits = 256;
    if (k->argc == 3 && arg_i64_range(k, 2, 1, 4096, "ACL GENPASS argument", &bits) < 0)
        return;
    size_t bytes = (size_t)(bits + 7) / 8;
    unsigned char *rnd = xmalloc(bytes);
    char *hex = xmalloc(bytes * 2 + 1);
    if (getrandom(rnd, bytes, 0) != (ssize_t)bytes) {
        reply_error(k, "ERR no random bytes available");
    } else {
        for (size_t i = 0; i < bytes; i++)
            snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
        resp_w_bulk(k->out, hex, (size_t)(bits + 3) / 4);
    }
    xfree(rnd);
    xfree(hex);
}

void cmd_acl(struct call *k)
{
    init();
    const char *sub = k->cmd->name;
    if (!strcmp(sub, "setuser")) {
        char err[512];
        if (acl_setuser(k->argv[2].p, k->argv[2].n, k->argc - 3, k->argv + 3, err, sizeof err) < 0)
            reply_error(k, "%s", err);
        else
            reply_ok(k);
    } else if (!strcmp(sub, "deluser")) {
        acl_deluser(k);
    } else if (!strcmp(sub, "getuser")) {
        acl_getuser(k);
    } else if (!strcmp(sub, "list") || !strcmp(sub, "users")) {
        acl_list(k, !strcmp(sub, "users"));
    } else if (!strcmp(sub, "whoami")) {
        resp_w_bulkstr(k->out, acl_user_name(k->cl ? k->cl->user : NULL));
    } else if (!strcmp(sub, "cat")) {
        acl_cat(k);
    } else if (!strcmp(sub, "genpass")) {
        acl_genpass(k);
    } else if (!strcmp(sub, "log")) {
        if (k->argc == 3 && arg_is(k, 2, "RESET"))
            reply_ok(k);
        else
            resp_w_array(k->out, 0); /* denials are not logged (yet) */
    } else if (!strcmp(sub, "save") || !strcmp(sub, "load")) {
        reply_error(k, "ERR This Redis instance is not configured to use an ACL file. You may want to specify users "
                       "via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis "
                       "configuration file set) in order to store users in the Redis configuration.");
    } else {
        static const char *const help[] = {
            "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "CAT [<category>]", "    List all commands that belong to <category>, or all command categories",
            "    when no category is specified.",
            "DELUSER <username> [<username> ...]", "    Delete a list of users.",
            "GETUSER <username>", "    Get the user's details.",
            "GENPASS [<bits>]", "    Generate a secure 256-bit user password. The optional `bits` argument can",
            "    be used to specify a different size.",
            "LIST", "    Show users details in config file format.",
            "LOG [<count> | RESET]", "    Show the ACL log entries.",
            "SETUSER <username> <attribute> [<attribute> ...]", "    Create or modify a user with the specified attributes.",
            "USERS", "    List all the registered usernames.",
            "WHOAMI", "    Return the current connection username.",
            "HELP", "    Print this help."};
        reply_help(k, help, sizeof help / sizeof help[0]);
    }
}
