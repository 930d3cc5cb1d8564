/* cmd_command.c: COMMAND and its subcommands (COUNT, INFO, DOCS, LIST,
 * GETKEYS, HELP), all derived from the command table rows, in Redis 7.0's
 * reply shapes.  COMMAND INFO entries are
 *
 *   [name, arity, flags (set), first key, last key, step,
 *    ACL categories (set), tips (set), key specs (array), subcommands (array)]
 *
 * Flags and ACL categories come from the row's flags and group, as Redis's
 * setImplicitACLCategories() derives them; tips and key specs are empty (our
 * rows describe keys by first/last/step only).  Internal flags (which shards
 * to lock) are not shown. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/alloc.h"
#include "base/glob.h"
#include "server_int.h"

/* Flag names, in the order Redis prints them. */
static const struct {
    unsigned flag;
    const char *name;
} flag_names[] = {
    {CMD_WRITE, "write"},
    {CMD_READONLY, "readonly"},
    {CMD_DENYOOM, "denyoom"},
    {CMD_ADMIN, "admin"},
    {CMD_PUBSUB, "pubsub"},
    {CMD_NOSCRIPT, "noscript"},
    {CMD_BLOCKING, "blocking"},
    {CMD_LOADING, "loading"},
    {CMD_STALE, "stale"},
    {CMD_SKIP_MONITOR, "skip_monitor"},
    {CMD_SKIP_SLOWLOG, "skip_slowlog"},
    {CMD_FAST, "fast"},
    {CMD_NOAUTH, "no_auth"},
    {CMD_NOMULTI, "no_multi"},
};
#define NFLAGS ((int)(sizeof flag_names / sizeof flag_names[0]))

/* ACL categories, in Redis's order (acl.c, ACLCommandCategories). */
enum {
    CAT_KEYSPACE,
    CAT_READ,
    CAT_WRITE,
    CAT_SET,
    CAT_SORTEDSET,
    CAT_LIST,
    CAT_HASH,
    CAT_STRING,
    CAT_BITMAP,
    CAT_HYPERLOGLOG,
    CAT_GEO,
    CAT_STREAM,
    CAT_PUBSUB,
    CAT_ADMIN,
    CAT_FAST,
    CAT_SLOW,
    CAT_BLOCKING,
    CAT_DANGEROUS,
    CAT_CONNECTION,
    CAT_TRANSACTION,
    CAT_SCRIPTING,
    CAT__COUNT
};
static const char *const cat_names[CAT__COUNT] = {
    "keyspace", "read",   "write",       "set",       "sortedset",  "list",        "hash",
    "string",   "bitmap", "hyperloglog", "geo",       "stream",     "pubsub",      "admin",
    "fast",     "slow",   "blocking",    "dangerous", "connection", "transaction", "scripting",
};

/* The category a group implies. */
static const struct {
    const char *group;
    int cat;
} group_cats[] = {
    {"generic", CAT_KEYSPACE},
    {"string", CAT_STRING},
    {"list", CAT_LIST},
    {"hash", CAT_HASH},
    {"set", CAT_SET},
    {"sorted-set", CAT_SORTEDSET},
    {"sorted_set", CAT_SORTEDSET},
    {"bitmap", CAT_BITMAP},
    {"hyperloglog", CAT_HYPERLOGLOG},
    {"geo", CAT_GEO},
    {"stream", CAT_STREAM},
    {"pubsub", CAT_PUBSUB},
    {"connection", CAT_CONNECTION},
    {"transactions", CAT_TRANSACTION},
    {"scripting", CAT_SCRIPTING},
};

static int is_group(const struct cmd_def *c, const char *g) { return c->group && !strcmp(c->group, g); }

/* A help subcommand declares no category of its group, except OBJECT's
 * (@keyspace) and CLIENT's (@connection), as in Redis's JSON files. */
static int is_plain_help(const struct cmd_def *c)
{
    return c->parent && !strcmp(c->name, "help") && !is_group(c, "generic") && !is_group(c, "connection");
}

static unsigned categories(const struct cmd_def *c)
{
    unsigned m = 0;
    /* a container (CONFIG...) declares no category: its subcommands do */
    for (size_t i = 0; i < sizeof group_cats / sizeof group_cats[0] && !c->nsubs && !is_plain_help(c); i++)
        if (is_group(c, group_cats[i].group))
            m |= 1u << group_cats[i].cat;
    if (c->flags & CMD_WRITE)
        m |= 1u << CAT_WRITE;
    if (c->flags & CMD_READONLY)
        m |= 1u << CAT_READ;
    if (c->flags & CMD_ADMIN)
        m |= 1u << CAT_ADMIN | 1u << CAT_DANGEROUS;
    /* DBSIZE, FLUSHDB...: server commands on the keyspace (not MEMORY
     * USAGE); a command that needs every shard (KEYS, FLUSHALL) is one
     * Redis calls dangerous */
    if (is_group(c, "server") && !c->parent && (c->flags & (CMD_WRITE | CMD_READONLY)))
        m |= 1u << CAT_KEYSPACE;
    if (c->flags & CMD_LOCKALL)
        m |= 1u << CAT_DANGEROUS;
    if (c->flags & CMD_BLOCKING)
        m |= 1u << CAT_BLOCKING;
    m |= 1u << ((c->flags & CMD_FAST) ? CAT_FAST : CAT_SLOW);
    return m;
}

/* Our CMD_PUBSUB means "allowed in RESP2 subscribe mode" (PING, QUIT...);
 * Redis's "pubsub" flag marks the pub/sub commands themselves: the pubsub
 * group (PUBLISH, PUBSUB CHANNELS... too), not its container nor HELP. */
static int shows_flag(const struct cmd_def *c, int i)
{
    if (flag_names[i].flag == CMD_PUBSUB)
        return is_group(c, "pubsub") && !c->nsubs && !is_plain_help(c);
    return (c->flags & flag_names[i].flag) != 0;
}


/* ---- COMMAND INFO ---------------------------------------------------------- */

static void info_entry(struct call *k, const struct cmd_def *c)
{
    unsigned cats = categories(c);
    int nflags = 0, ncats = 0;
    for (int i = 0; i < NFLAGS; i++)
        nflags += shows_flag(c, i);
    for (int i = 0; i < CAT__COUNT; i++)
        ncats += (cats >> i) & 1;
    resp_w_array(k->out, 10);
    resp_w_bulkstr(k->out, c->fullname);
    resp_w_int(k->out, c->arity);
    resp_w_set(k->out, k->proto, nflags + (c->getkeys != NULL));
    for (int i = 0; i < NFLAGS; i++)
        if (shows_flag(c, i))
            resp_w_simple(k->out, flag_names[i].name);
    if (c->getkeys)
        resp_w_simple(k->out, "movablekeys");
    resp_w_int(k->out, c->first);
    resp_w_int(k->out, c->last);
    resp_w_int(k->out, c->step);
    resp_w_set(k->out, k->proto, ncats);
    for (int i = 0; i < CAT__COUNT; i++) {
        char cat[32];
        if (!((cats >> i) & 1))
            continue;
        snprintf(cat, sizeof cat, "@%s", cat_names[i]);
        resp_w_simple(k->out, cat);
    }
    resp_w_set(k->out, k->proto, 0); /* tips */
    resp_w_array(k->out, 0);         /* key specs */
    resp_w_array(k->out, c->nsubs);
    for (int i = 0; i < c->nsubs; i++)
        info_entry(k, &c->subs[i]);
}

static void command_info(struct call *k)
{
    int n;
    const struct cmd_def *t = cmd_table(&n);
    if (k->argc <= 2) { /* COMMAND, COMMAND INFO: every command */
        resp_w_array(k->out, n);
        for (int i = 0; i < n; i++)
            info_entry(k, &t[i]);
        return;
    }
    resp_w_array(k->out, k->argc - 2);
    for (int i = 2; i < k->argc; i++) {
        const struct cmd_def *c = cmd_lookup_full(k->argv[i].p, k->argv[i].n);
        if (c)
            info_entry(k, c);
        else
            resp_w_null(k->out, k->proto);
    }
}

/* ---- COMMAND DOCS ------------------------------------------------------------ */

/* The "arguments" of COMMAND DOCS, derived from the row's argument text
 * ("key value [NX|XX] [EX seconds|PX milliseconds] [key value ...]"):
 *   [x]          optional x            a|b        oneof
 *   x ...        x repeats (multiple)  TOKEN x    x introduced by TOKEN
 *   UPPER        a pure token          x y        a block when not the above
 * and "k [k ...]" folds into one repeated k, as Redis documents it.  Types
 * come from the names (key, integer, unix-time, pattern, string). */
enum { ARG_OPTIONAL = 1, ARG_MULTIPLE = 2 };

struct arg_node {
    char name[48], token[48];
    const char *type;
    unsigned flags;
    int key_index; /* -1 unless a key */
    int nsub;
    struct arg_node *sub;
};

struct arg_parser {
    const char *s;
    size_t i, n;
    int nkeys;
};

struct arg_list {
    struct arg_node *v;
    int n, cap;
};

static struct arg_node *arg_push(struct arg_list *l)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 4;
        l->v = xrealloc(l->v, sizeof *l->v * (size_t)l->cap);
    }
    memset(&l->v[l->n], 0, sizeof l->v[0]);
    l->v[l->n].key_index = -1;
    return &l->v[l->n++];
}

static void arg_free(struct arg_node *v, int n)
{
    for (int i = 0; i < n; i++)
        arg_free(v[i].sub, v[i].nsub);
    xfree(v);
}

static const char *arg_type(const char *name)
{
    static const char *const ints[] = {"seconds",        "milliseconds", "count",    "index",  "offset",  "increment",
                                       "decrement",      "start",        "end",      "cursor", "timeout", "numkeys",
                                       "destination-db", "port",         "protover", NULL};
    size_t n = strlen(name);
    if (!strcmp(name, "source") || !strcmp(name, "destination") || (n >= 3 && !strcmp(name + n - 3, "key")))
        return "key";
    if (!strncmp(name, "unix-time", 9))
        return "unix-time";
    if (!strcmp(name, "pattern"))
        return "pattern";
    for (int i = 0; ints[i]; i++)
        if (!strcmp(name, ints[i]))
            return "integer";
    return "string";
}

static int is_upper_word(const char *w, size_t n)
{
    int letters = 0;
    for (size_t i = 0; i < n; i++) {
        if (w[i] >= 'a' && w[i] <= 'z')
            return 0;
        letters += w[i] >= 'A' && w[i] <= 'Z';
    }
    return letters > 0;
}

static void arg_word(struct arg_parser *p, struct arg_node *a, const char *w, size_t n)
{
    if (n >= sizeof a->name)
        n = sizeof a->name - 1;
    memcpy(a->name, w, n);
    if (is_upper_word(w, n)) {
        memcpy(a->token, w, n);
        for (size_t i = 0; i < n; i++)
            a->name[i] = (char)(a->name[i] >= 'A' && a->name[i] <= 'Z' ? a->name[i] + 32 : a->name[i]);
        a->type = "pure-token";
        return;
    }
    a->type = arg_type(a->name);
    if (!strcmp(a->type, "key"))
        a->key_index = p->nkeys++;
}

static int arg_same(const struct arg_node *a, const struct arg_node *b)
{
    return !strcmp(a->name, b->name) && !strcmp(a->type, b->type) && !strcmp(a->token, b->token);
}

static void arg_alts(struct arg_parser *p, struct arg_list *alts);

/* One sequence as one node: itself, TOKEN value, or a block. */
static void arg_seq_node(struct arg_list *seq, int repeats, struct arg_node *out)
{
    if (seq->n == 1) {
        *out = seq->v[0];
        xfree(seq->v);
    } else if (seq->n == 2 && !strcmp(seq->v[0].type, "pure-token") && strcmp(seq->v[1].type, "pure-token") &&
               !seq->v[1].flags && !seq->v[1].nsub) {
        *out = seq->v[1];
        strcpy(out->token, seq->v[0].token);
        xfree(seq->v);
    } else {
        memset(out, 0, sizeof *out);
        out->key_index = -1;
        strcpy(out->name, seq->n ? seq->v[seq->n > 1 && seq->v[0].token[0] ? 1 : 0].name : "arg");
        out->type = "block";
        out->sub = seq->v, out->nsub = seq->n;
    }
    if (repeats)
        out->flags |= ARG_MULTIPLE;
}

static int arg_count_keys(const struct arg_node *v, int n)
{
    int keys = 0;
    for (int i = 0; i < n; i++)
        keys += (v[i].key_index >= 0) + arg_count_keys(v[i].sub, v[i].nsub);
    return keys;
}

/* "[k ...]" after k: k becomes repeated.  "[k v ...]" after k v: the two
 * become one repeated block.  Returns 1 when opt was folded (and consumed). */
static int arg_fold_repeat(struct arg_parser *p, struct arg_list *l, struct arg_node *opt)
{
    int block = !strcmp(opt->type, "block"), k = block ? opt->nsub : 1;
    const struct arg_node *shape = block ? opt->sub : opt;
    if (!(opt->flags & ARG_MULTIPLE) || l->n < k)
        return 0;
    for (int i = 0; i < k; i++)
        if (!arg_same(&l->v[l->n - k + i], &shape[i]))
            return 0;
    p->nkeys -= arg_count_keys(shape, k); /* the repeat's keys are the preceding ones */
    if (!block) {
        l->v[l->n - 1].flags |= ARG_MULTIPLE;
        arg_free(opt->sub, opt->nsub);
        return 1;
    }
    arg_free(opt->sub, opt->nsub);
    opt->sub = xmalloc(sizeof *opt->sub * (size_t)k);
    memcpy(opt->sub, &l->v[l->n - k], sizeof *opt->sub * (size_t)k);
    opt->flags = ARG_MULTIPLE;
    l->n -= k;
    *arg_push(l) = *opt;
    return 1;
}

/* Elements up to ']' or '|' or the end. */
static void arg_seq(struct arg_parser *p, struct arg_list *l, int *repeats)
{
    *repeats = 0;
    while (p->i < p->n) {
        char ch = p->s[p->i];
        if (ch == ' ') {
            p->i++;
        } else if (ch == ']' || ch == '|') {
            return;
        } else if (ch == '[') {
            struct arg_list alts = {0};
            struct arg_node node;
            p->i++;
            arg_alts(p, &alts);
            p->i += p->i < p->n; /* ']' */
            if (alts.n == 1) {
                node = alts.v[0];
                xfree(alts.v);
            } else {
                memset(&node, 0, sizeof node);
                node.key_index = -1;
                strcpy(node.name, alts.n ? alts.v[0].name : "arg");
                node.type = "oneof", node.sub = alts.v, node.nsub = alts.n;
            }
            node.flags |= ARG_OPTIONAL;
            if (!arg_fold_repeat(p, l, &node))
                *arg_push(l) = node;
        } else {
            size_t b = p->i;
            while (p->i < p->n && !strchr(" []|", p->s[p->i]))
                p->i++;
            if (p->i - b == 3 && !memcmp(p->s + b, "...", 3))
                *repeats = l->n > 0;
            else
                arg_word(p, arg_push(l), p->s + b, p->i - b);
        }
    }
}

/* Alternatives separated by '|', each a node. */
static void arg_alts(struct arg_parser *p, struct arg_list *alts)
{
    for (;;) {
        struct arg_list seq = {0};
        int repeats;
        arg_seq(p, &seq, &repeats);
        if (seq.n)
            arg_seq_node(&seq, repeats && seq.n > 1, arg_push(alts));
        else
            xfree(seq.v);
        if (repeats && seq.n == 1)
            alts->v[alts->n - 1].flags |= ARG_MULTIPLE;
        if (p->i >= p->n || p->s[p->i] != '|')
            return;
        p->i++;
    }
}

static void arg_reply(struct call *k, const struct arg_node *v, int n)
{
    resp_w_array(k->out, n);
    for (int i = 0; i < n; i++) {
        const struct arg_node *a = &v[i];
        int nf = !!(a->flags & ARG_OPTIONAL) + !!(a->flags & ARG_MULTIPLE);
        resp_w_map(k->out, k->proto, 2 + (a->key_index >= 0) + !!a->token[0] + !!nf + (a->nsub > 0));
        resp_w_bulkstr(k->out, "name");
        resp_w_bulkstr(k->out, a->name);
        resp_w_bulkstr(k->out, "type");
        resp_w_bulkstr(k->out, a->type);
        if (a->key_index >= 0) {
            resp_w_bulkstr(k->out, "key_spec_index");
            resp_w_int(k->out, a->key_index);
        }
        if (a->token[0]) {
            resp_w_bulkstr(k->out, "token");
            resp_w_bulkstr(k->out, a->token);
        }
        if (nf) {
            resp_w_bulkstr(k->out, "flags");
            resp_w_set(k->out, k->proto, nf);
            if (a->flags & ARG_OPTIONAL)
                resp_w_simple(k->out, "optional");
            if (a->flags & ARG_MULTIPLE)
                resp_w_simple(k->out, "multiple");
        }
        if (a->nsub) {
            resp_w_bulkstr(k->out, "arguments");
            arg_reply(k, a->sub, a->nsub);
        }
    }
}

/* The top-level arguments of a row (a top-level a|b is one oneof). */
static void arg_parse(const char *text, struct arg_list *out)
{
    struct arg_parser p = {.s = text ? text : "", .n = text ? strlen(text) : 0};
    struct arg_list alts = {0};
    arg_alts(&p, &alts);
    memset(out, 0, sizeof *out);
    if (alts.n <= 1) {
        struct arg_node *only = alts.n ? &alts.v[0] : NULL;
        if (only && !strcmp(only->type, "block") && !(only->flags & ARG_MULTIPLE)) {
            out->v = only->sub, out->n = out->cap = only->nsub; /* a plain sequence */
            xfree(alts.v);
        } else {
            *out = alts;
        }
        return;
    }
    struct arg_node *one = arg_push(out);
    strcpy(one->name, alts.v[0].name);
    one->type = "oneof", one->sub = alts.v, one->nsub = alts.n;
}

static void put_field(struct call *k, const char *name, const char *value)
{
    resp_w_bulkstr(k->out, name);
    resp_w_bulkstr(k->out, value);
}

/* Redis's addReplyCommandDocs(): fields in its order, absent when empty. */
static void docs_entry(struct call *k, const struct cmd_def *c)
{
    struct arg_list args;
    int nsubs = c->nsubs;
    arg_parse(c->args, &args);
    int fields = 1 + !!c->summary + !!c->since + !!c->complexity + !!c->doc_flags + !!c->deprecated_since +
                 !!c->replaced_by + (c->nhistory > 0) + (args.n > 0) + (nsubs > 0);
    resp_w_bulkstr(k->out, c->fullname);
    resp_w_map(k->out, k->proto, fields);
    if (c->summary)
        put_field(k, "summary", c->summary);
    if (c->since)
        put_field(k, "since", c->since);
    put_field(k, "group", c->group ? c->group : "server");
    if (c->complexity)
        put_field(k, "complexity", c->complexity);
    if (c->doc_flags) {
        resp_w_bulkstr(k->out, "doc_flags");
        resp_w_set(k->out, k->proto, !!(c->doc_flags & CMD_DOC_DEPRECATED) + !!(c->doc_flags & CMD_DOC_SYSCMD));
        if (c->doc_flags & CMD_DOC_DEPRECATED)
            resp_w_simple(k->out, "deprecated");
        if (c->doc_flags & CMD_DOC_SYSCMD)
            resp_w_simple(k->out, "syscmd");
    }
    if (c->deprecated_since)
        put_field(k, "deprecated_since", c->deprecated_since);
    if (c->replaced_by)
        put_field(k, "replaced_by", c->replaced_by);
    if (c->nhistory) {
        resp_w_bulkstr(k->out, "history");
        resp_w_set(k->out, k->proto, c->nhistory);
        for (int i = 0; i < c->nhistory; i++) {
            resp_w_array(k->out, 2);
            resp_w_bulkstr(k->out, c->history[i].since);
            resp_w_bulkstr(k->out, c->history[i].changes);
        }
    }
    if (args.n) {
        resp_w_bulkstr(k->out, "arguments");
        arg_reply(k, args.v, args.n);
    }
    arg_free(args.v, args.n);
    if (nsubs) {
        resp_w_bulkstr(k->out, "subcommands");
        resp_w_map(k->out, k->proto, nsubs);
        for (int i = 0; i < nsubs; i++)
            docs_entry(k, &c->subs[i]);
    }
}

static void command_docs(struct call *k)
{
    int n, found = 0;
    const struct cmd_def *t = cmd_table(&n);
    if (k->argc == 2) {
        resp_w_map(k->out, k->proto, n);
        for (int i = 0; i < n; i++)
            docs_entry(k, &t[i]);
        return;
    }
    /* unknown names are left out, so count first */
    for (int pass = 0; pass < 2; pass++) {
        if (pass)
            resp_w_map(k->out, k->proto, found);
        for (int i = 2; i < k->argc; i++) {
            const struct cmd_def *c = cmd_lookup_full(k->argv[i].p, k->argv[i].n);
            if (c && pass)
                docs_entry(k, c);
            found += c && !pass;
        }
    }
}

/* ---- COMMAND COUNT / LIST ---------------------------------------------------- */

static void command_count(struct call *k)
{
    int n;
    cmd_table(&n);
    resp_w_int(k->out, n);
}

enum list_filter { LF_NONE, LF_MODULE, LF_ACLCAT, LF_PATTERN };

static int list_keep(const struct cmd_def *c, int filter, const struct eng_str *arg)
{
    switch (filter) {
    case LF_MODULE:
        return 0; /* no modules */
    case LF_ACLCAT:
        for (int i = 0; i < CAT__COUNT; i++)
            if (arg->n == strlen(cat_names[i]) && !strncasecmp(arg->p, cat_names[i], arg->n))
                return (categories(c) >> i) & 1;
        return 0;
    case LF_PATTERN:
        return glob_match(arg->p, arg->n, c->fullname, strlen(c->fullname), 1);
    }
    return 1;
}

/* Appends the matching names (subcommands after their container) to names
 * as bulk strings; returns how many. */
static int list_names(const struct cmd_def *c, int filter, const struct eng_str *arg, struct buf *names)
{
    int n = 0;
    if (list_keep(c, filter, arg)) {
        resp_w_bulkstr(names, c->fullname);
        n++;
    }
    for (int i = 0; i < c->nsubs; i++)
        n += list_names(&c->subs[i], filter, arg, names);
    return n;
}

static void command_list(struct call *k)
{
    static const char *const filters[] = {"module", "aclcat", "pattern"};
    int filter = LF_NONE, n, count = 0;
    const struct cmd_def *t = cmd_table(&n);
    struct buf names = BUF_INIT;
    if (k->argc == 5 && arg_is(k, 2, "filterby")) {
        for (int i = 0; i < 3; i++)
            if (arg_is(k, 3, filters[i]))
                filter = LF_MODULE + i;
    }
    if (k->argc != 2 && filter == LF_NONE) {
        reply_syntax(k);
        return;
    }
    for (int i = 0; i < n; i++)
        count += list_names(&t[i], filter, k->argc == 5 ? &k->argv[4] : NULL, &names);
    resp_w_array(k->out, count);
    buf_append(k->out, names.p, names.len);
    buf_release(&names);
}

/* ---- COMMAND GETKEYS ------------------------------------------------------- */

/* Key positions by the row's first/last/step, as Redis's legacy range spec:
 * none when the arguments do not reach them.  Returns how many. */
static int range_keys(const struct cmd_def *c, int argc, int *pos, int max)
{
    int last = c->last < 0 ? argc + c->last : c->last, step = c->step > 0 ? c->step : 1, n = 0;
    for (int j = c->first; j <= last && n < max; j += step) {
        if (j >= argc || j < c->first)
            return 0;
        pos[n++] = j;
    }
    return n;
}

static void command_getkeys(struct call *k)
{
    const struct eng_str *argv = k->argv + 2;
    int argc = k->argc - 2, n;
    const struct cmd_def *container, *c = cmd_resolve(argc, argv, &container); /* OBJECT ENCODING k: object|encoding */
    if (!c) {
        reply_error(k, "ERR Invalid command specified");
        return;
    }
    if (!c->getkeys && c->first <= 0) {
        reply_error(k, "ERR The command has no key arguments");
        return;
    }
    if ((c->arity > 0 && c->arity != argc) || argc < -c->arity) {
        reply_error(k, "ERR Invalid number of arguments specified for command");
        return;
    }
    int *pos = xmalloc(sizeof *pos * (size_t)argc);
    n = c->getkeys ? c->getkeys(argc, argv, pos, argc) : range_keys(c, argc, pos, argc);
    if (n <= 0) {
        reply_error(k, "ERR Invalid arguments specified for command");
    } else {
        resp_w_array(k->out, n);
        for (int i = 0; i < n; i++)
            resp_w_bulk(k->out, argv[pos[i]].p, argv[pos[i]].n);
    }
    xfree(pos);
}

/* ---- dispatch ------------------------------------------------------------- */

static const char *const help[] = {
    "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "(no subcommand)",
    "    Return details about all Redis commands.",
    "COUNT",
    "    Return the total number of commands in this Redis server.",
    "LIST",
    "    Return a list of all commands in this Redis server.",
    "INFO [<command-name> ...]",
    "    Return details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "DOCS [<command-name> ...]",
    "    Return documentation details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "GETKEYS <full-command>",
    "    Return the keys from a full Redis command.",
    "HELP",
    "    Prints this help.",
};

static void command_help(struct call *k)
{
    reply_help(k, help, sizeof help / sizeof help[0]);
}

static const struct {
    const char *name;
    int arity; /* counts COMMAND and the subcommand; -N: at least N */
    void (*fn)(struct call *k);
} subcmds[] = {
    {"count", 2, command_count},
    {"info", -2, command_info},
    {"docs", -2, command_docs},
    {"list", -2, command_list},
    /* Redis 7.0.15 wants a command and at least one argument after it */
    {"getkeys", -4, command_getkeys},
    {"help", 2, command_help},
};

void cmd_command(struct call *k)
{
    if (k->argc == 1) {
        command_info(k);
        return;
    }
    const struct eng_str *s = &k->argv[1];
    for (size_t i = 0; i < sizeof subcmds / sizeof subcmds[0]; i++) {
        if (s->n != strlen(subcmds[i].name) || strncasecmp(s->p, subcmds[i].name, s->n))
            continue;
        int arity = subcmds[i].arity;
        if ((arity > 0 && k->argc != arity) || k->argc < -arity) {
            reply_error(k, "ERR wrong number of arguments for 'command|%s' command", subcmds[i].name);
            return;
        }
        subcmds[i].fn(k);
        return;
    }
    reply_error(k, "ERR unknown subcommand '%.*s'. Try COMMAND HELP.", s->n > 128 ? 128 : (int)s->n, s->p);
}
