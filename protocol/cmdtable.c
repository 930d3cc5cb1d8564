/* cmdtable.c: the command table built from commands.def, its subcommands
 * (subcommands.def) and documentation (docs.def), and name lookup.
 * Lookup is on the hot path (every request): names are folded to lower case
 * into a small stack buffer and found in an open-addressing table built once;
 * a container's subcommands (a dozen at most) are searched in order.
 *
 * Ids: the commands of commands.def take 0..NDEFS-1 in row order, then the
 * rows other modules registered (server_register_commands), then the
 * subcommands in subcommands.def's order (cmd_id_count()). */
#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "server_int.h"

static const struct cmd_def def_rows[] = {
#define CMD(name_, fn_, arity_, flags_, first_, last_, step_, group_, args_)                                    \
    {.name = #name_, .fn = fn_, .arity = arity_, .flags = flags_, .first = first_, .last = last_, .step = step_, \
     .group = group_, .args = args_},
/* Keys found by a function (numkeys forms): no first/last/step run. */
#define CMDK(name_, fn_, arity_, flags_, getkeys_, group_, args_)                                  \
    {.name = #name_, .fn = fn_, .arity = arity_, .flags = flags_, .getkeys = getkeys_, .group = group_, \
     .args = args_},
#include "commands.def"
#undef CMDK
#undef CMD
};
#define NDEFS ((int)(sizeof def_rows / sizeof def_rows[0]))

/* The table: commands.def's rows, then the rows of other modules (SAVE,
 * BGSAVE... from replication/, which protocol/ does not know), copied in
 * when the table is built.  A module's row named like a built-in one takes
 * its place and id (LASTSAVE: the built-in answers the start time). */
#define MAX_MODULE_ROWS 32
static struct cmd_def table[NDEFS + MAX_MODULE_ROWS];
static const struct server_cmd *module_rows[MAX_MODULE_ROWS];
static unsigned module_flags[MAX_MODULE_ROWS];
static int nmodule_rows, ncmds;
static _Atomic int table_built;

/* Subcommands; their container's row is found by name when the table is
 * built (sub_parent[i] is the container of subs[i]). */
#define SUB(parent_, name_, fn_, arity_, flags_, first_, last_, step_, args_)                            \
    {.name = name_, .fullname = #parent_ "|" name_, .fn = fn_, .arity = arity_, .flags = flags_, \
     .first = first_, .last = last_, .step = step_, .args = args_},
static struct cmd_def subs[] = {
#include "subcommands.def"
};
#undef SUB
#define SUB(parent_, name_, fn_, arity_, flags_, first_, last_, step_, args_) #parent_,
static const char *const sub_parent[] = {
#include "subcommands.def"
};
#undef SUB
#define NSUBS ((int)(sizeof subs / sizeof subs[0]))

/* Documentation rows, merged into the commands they name. */
struct cmd_doc {
    const char *name, *summary, *since, *complexity;
    unsigned flags;
    const char *deprecated_since, *replaced_by;
};
#define DOC(name_, summary_, since_, complexity_, flags_, deprecated_, replaced_) \
    {name_, summary_, since_, complexity_, flags_, deprecated_, replaced_},
#define HIST(name_, since_, changes_)
static const struct cmd_doc docs[] = {
#include "docs.def"
};
#undef DOC
#undef HIST
#define DOC(name_, summary_, since_, complexity_, flags_, deprecated_, replaced_)
#define HIST(name_, since_, changes_) {since_, changes_},
static const struct cmd_history history[] = {
#include "docs.def"
};
#undef HIST
#define HIST(name_, since_, changes_) name_,
static const char *const history_of[] = {
#include "docs.def"
};
#undef HIST
#undef DOC

#define SLOTS 1024 /* power of two, well above twice the number of commands */
static const struct cmd_def *slots[SLOTS];
static pthread_once_t built = PTHREAD_ONCE_INIT;

static uint32_t name_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static const struct cmd_def *find(const char *low, size_t n)
{
    uint32_t h = name_hash(low, n) & (SLOTS - 1);
    for (const struct cmd_def *c; (c = slots[h]); h = (h + 1) & (SLOTS - 1))
        if (strlen(c->name) == n && memcmp(c->name, low, n) == 0)
            return c;
    return NULL;
}

/* The lookups, for build() and after it. */
static const struct cmd_def *lookup(const char *name, size_t n)
{
    char low[32];
    if (n == 0 || n >= sizeof low)
        return NULL;
    for (size_t i = 0; i < n; i++)
        low[i] = (char)tolower((unsigned char)name[i]);
    return find(low, n);
}

static const struct cmd_def *lookup_full(const char *name, size_t n)
{
    const char *bar = memchr(name, '|', n);
    if (!bar)
        return lookup(name, n);
    const struct cmd_def *p = lookup(name, (size_t)(bar - name));
    return p ? cmd_lookup_sub(p, bar + 1, n - (size_t)(bar - name) - 1) : NULL;
}

/* A container's rows are contiguous in subcommands.def: its first row
 * starts the run, each next one extends it. */
static void link_subs(void)
{
    for (int i = 0; i < NSUBS; i++) {
        struct cmd_def *p = (struct cmd_def *)find(sub_parent[i], strlen(sub_parent[i]));
        subs[i].id = ncmds + i;
        if (!p)
            continue; /* its container is not in the table (yet) */
        if (!p->subs)
            p->subs = &subs[i];
        if (p->subs + p->nsubs != &subs[i])
            continue; /* not contiguous: unreachable, as if absent */
        p->nsubs++;
        subs[i].parent = p;
        subs[i].group = p->group;
        if (!subs[i].fn)
            subs[i].fn = p->fn;
    }
}

static void merge_docs(void)
{
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        const struct cmd_doc *d = &docs[i];
        struct cmd_def *c = (struct cmd_def *)lookup_full(d->name, strlen(d->name));
        if (!c)
            continue; /* a Redis command we do not have */
        c->summary = d->summary, c->since = d->since, c->complexity = d->complexity;
        c->doc_flags = d->flags, c->deprecated_since = d->deprecated_since, c->replaced_by = d->replaced_by;
    }
    /* a command's HIST rows follow each other */
    for (size_t i = 0; i < sizeof history / sizeof history[0]; i++) {
        struct cmd_def *c = (struct cmd_def *)lookup_full(history_of[i], strlen(history_of[i]));
        if (!c)
            continue;
        if (!c->history)
            c->history = &history[i];
        if (c->history + c->nhistory == &history[i])
            c->nhistory++;
    }
}

/* A module's handler, called with the request as server.h gives it. */
static void module_call(struct call *k)
{
    const struct server_cmd *m = k->cmd->module;
    struct server_cmd_call a = {k->argc, k->argv, k->out, k->proto};
    if (m->fn(m->ud, &a) < 0)
        k->failed = 1;
}

static void add_module_rows(void)
{
    memcpy(table, def_rows, sizeof def_rows);
    ncmds = NDEFS;
    for (int i = 0; i < nmodule_rows; i++) {
        const struct server_cmd *m = module_rows[i];
        struct cmd_def *row = NULL;
        for (int j = 0; j < NDEFS && !row; j++)
            if (!strcmp(table[j].name, m->name))
                row = &table[j];
        if (!row)
            row = &table[ncmds++];
        *row = (struct cmd_def){.name = m->name, .fn = module_call, .arity = m->arity, .flags = module_flags[i],
                                .group = m->group, .summary = m->summary, .since = m->since, .args = m->args,
                                .module = m};
    }
}

static void build(void)
{
    add_module_rows();
    atomic_store(&table_built, 1);
    for (int i = 0; i < ncmds; i++) {
        table[i].id = i;
        /* commands.def cannot spell a dash: names like "client-kill" don't
         * exist at top level, so the row name is the command name. */
        table[i].fullname = table[i].name;
        uint32_t h = name_hash(table[i].name, strlen(table[i].name)) & (SLOTS - 1);
        while (slots[h])
            h = (h + 1) & (SLOTS - 1);
        slots[h] = &table[i];
    }
    link_subs();
    merge_docs();
}

const struct cmd_def *cmd_lookup(const char *name, size_t n)
{
    pthread_once(&built, build);
    return lookup(name, n);
}

const struct cmd_def *cmd_table(int *n)
{
    pthread_once(&built, build);
    *n = ncmds;
    return table;
}

int cmd_id_count(void)
{
    pthread_once(&built, build);
    return ncmds + NSUBS;
}

/* Flags as Redis modules spell them (RedisModule_CreateCommand). */
static const struct {
    const char *word;
    unsigned flag;
} flag_words[] = {
    {"write", CMD_WRITE},        {"readonly", CMD_READONLY}, {"deny-oom", CMD_DENYOOM},
    {"fast", CMD_FAST},          {"admin", CMD_ADMIN},       {"loading", CMD_LOADING},
    {"stale", CMD_STALE},        {"no-multi", CMD_NOMULTI},  {"noscript", CMD_NOSCRIPT},
    {"no-monitor", CMD_SKIP_MONITOR}, {"no-slowlog", CMD_SKIP_SLOWLOG},
};

static int parse_flags(const char *words, unsigned *out, char *err, size_t errlen)
{
    unsigned flags = CMD_NOLOCK; /* a module's handler takes the locks it needs */
    for (const char *p = words ? words : ""; *p;) {
        size_t n = strcspn(p, " ");
        size_t i = 0, nw = sizeof flag_words / sizeof flag_words[0];
        while (i < nw && !(strlen(flag_words[i].word) == n && !strncmp(flag_words[i].word, p, n)))
            i++;
        if (n && i == nw) {
            snprintf(err, errlen, "unknown command flag '%.*s'", (int)n, p);
            return -1;
        }
        if (n)
            flags |= flag_words[i].flag;
        p += n + (p[n] == ' ');
    }
    *out = flags;
    return 0;
}

int server_register_commands(const struct server_cmd *rows, int n, char *err, size_t errlen)
{
    if (atomic_load(&table_built) || nmodule_rows + n > MAX_MODULE_ROWS) {
        snprintf(err, errlen, "%s", nmodule_rows + n > MAX_MODULE_ROWS ? "too many module commands"
                                                                      : "commands registered after the start");
        return -1;
    }
    for (int i = 0; i < n; i++)
        if (parse_flags(rows[i].flags, &module_flags[nmodule_rows + i], err, errlen) < 0)
            return -1;
    for (int i = 0; i < n; i++)
        module_rows[nmodule_rows++] = &rows[i];
    return 0;
}

const struct cmd_def *cmd_lookup_sub(const struct cmd_def *parent, const char *name, size_t n)
{
    for (int i = 0; i < parent->nsubs; i++)
        if (strlen(parent->subs[i].name) == n && strncasecmp(parent->subs[i].name, name, n) == 0)
            return &parent->subs[i];
    return NULL;
}

const struct cmd_def *cmd_lookup_full(const char *name, size_t n)
{
    pthread_once(&built, build);
    return lookup_full(name, n);
}

/* ---- rename-command ---------------------------------------------------------------------
 * Kept by name (the table is built only after every module registered its
 * commands, well after the configuration is read) and applied where client
 * requests are resolved: the old name is unknown, the new one runs the
 * command.  Internal lookups (COMMAND INFO, MULTI's checks) keep the real
 * names, and so does the master's stream on a replica (cmd_resolve).  Set
 * at start only (the option is immutable). */
#define MAX_RENAMES 64
static struct {
    char from[32], to[32]; /* to[0] == 0: disabled */
} renames[MAX_RENAMES];
static int nrenames;

void cmd_renames_clear(void) { nrenames = 0; }

int cmd_rename_add(const char *from, const char *to, char *err, size_t errlen)
{
    if (nrenames == MAX_RENAMES || !*from || strlen(from) >= sizeof renames[0].from ||
        strlen(to) >= sizeof renames[0].to || strchr(from, '|') || strchr(to, '|')) {
        snprintf(err, errlen, "%s", nrenames == MAX_RENAMES ? "too many rename-command lines"
                                                            : "rename-command needs names of 1 to 31 characters");
        return -1;
    }
    for (int i = 0; i < nrenames; i++)
        if (!strcasecmp(renames[i].from, from)) {
            snprintf(err, errlen, "rename-command: '%s' is renamed twice", from);
            return -1;
        }
    snprintf(renames[nrenames].from, sizeof renames[0].from, "%s", from);
    snprintf(renames[nrenames].to, sizeof renames[0].to, "%s", to);
    nrenames++;
    return 0;
}

void cmd_renames_format(struct buf *out)
{
    for (int i = 0; i < nrenames; i++)
        buf_printf(out, "%s%s \"%s\"", i ? "\nrename-command " : "", renames[i].from, renames[i].to);
}

static const struct cmd_def *lookup_renamed(const char *name, size_t n)
{
    for (int i = 0; i < nrenames; i++)
        if (renames[i].to[0] && strlen(renames[i].to) == n && !strncasecmp(renames[i].to, name, n))
            return cmd_lookup(renames[i].from, strlen(renames[i].from));
    for (int i = 0; i < nrenames; i++)
        if (strlen(renames[i].from) == n && !strncasecmp(renames[i].from, name, n))
            return NULL;
    return cmd_lookup(name, n);
}

static const struct cmd_def *resolve(const struct cmd_def *c, int argc, const struct eng_str *argv,
                                     const struct cmd_def **container);

const struct cmd_def *cmd_resolve_client(int argc, const struct eng_str *argv, const struct cmd_def **container)
{
    if (!nrenames)
        return cmd_resolve(argc, argv, container);
    return resolve(lookup_renamed(argv[0].p, argv[0].n), argc, argv, container);
}

const struct cmd_def *cmd_resolve(int argc, const struct eng_str *argv, const struct cmd_def **container)
{
    return resolve(cmd_lookup(argv[0].p, argv[0].n), argc, argv, container);
}

static const struct cmd_def *resolve(const struct cmd_def *c, int argc, const struct eng_str *argv,
                                     const struct cmd_def **container)
{
    *container = NULL;
    if (!c || argc < 2 || !c->nsubs)
        return c; /* a container alone runs as itself (COMMAND) or fails its arity */
    const struct cmd_def *s = cmd_lookup_sub(c, argv[1].p, argv[1].n);
    if (!s)
        *container = c;
    return s;
}
