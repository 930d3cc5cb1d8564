/* cmdtable.c: the command table built from commands.def, and name lookup.
 * Lookup is on the hot path (every request): names are folded to lower case
 * into a small stack buffer and found in an open-addressing table built once. */
#include <ctype.h>
#include <string.h>

#include "server_int.h"

static struct cmd_def table[] = {
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
#define NCMDS ((int)(sizeof table / sizeof table[0]))

#define SLOTS 1024 /* power of two, well above twice the number of commands */
static const struct cmd_def *slots[SLOTS];
static int built;

static uint32_t name_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static void build(void)
{
    for (int i = 0; i < NCMDS; i++) {
        table[i].id = i;
        /* commands.def cannot spell a dash: names like "client-kill" don't
         * exist at top level, so the row name is the command name. */
        uint32_t h = name_hash(table[i].name, strlen(table[i].name)) & (SLOTS - 1);
        while (slots[h])
            h = (h + 1) & (SLOTS - 1);
        slots[h] = &table[i];
    }
    built = 1;
}

const struct cmd_def *cmd_lookup(const char *name, size_t n)
{
    char low[32];
    if (n == 0 || n >= sizeof low)
        return NULL;
    if (!built)
        build();
    for (size_t i = 0; i < n; i++)
        low[i] = (char)tolower((unsigned char)name[i]);
    uint32_t h = name_hash(low, n) & (SLOTS - 1);
    for (const struct cmd_def *c; (c = slots[h]); h = (h + 1) & (SLOTS - 1))
        if (strlen(c->name) == n && memcmp(c->name, low, n) == 0)
            return c;
    return NULL;
}

const struct cmd_def *cmd_table(int *n)
{
    if (!built)
        build();
    *n = NCMDS;
    return table;
}

const struct cmd_def *cmd_lookup_sub(const struct cmd_def *parent, const char *name, size_t n)
{
    if (!parent->subs)
        return NULL;
    for (const struct cmd_def *s = parent->subs; s->name; s++)
        if (strlen(s->name) == n && strncasecmp(s->name, name, n) == 0)
            return s;
    return NULL;
}
