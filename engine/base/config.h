/* config.h: the configuration machinery, driven by tables of options that
 * each module owns (mimalloc's options table, nginx's ngx_command_t).  This
 * file knows no option by name; modules register their tables.
 *
 * Sources, in the order they are applied (later wins):
 *   1. each option's default (the `dflt` text, parsed like a file value);
 *   2. the config file, Redis's syntax: `name arg arg...`, '#' comments,
 *      arguments quoted "..." (with \n \t \xHH escapes) or '...';
 *   3. environment variables OBENTCHI_<NAME> (dashes become underscores,
 *      upper case), e.g. OBENTCHI_PORT=6380, OBENTCHI_MAXMEMORY=1gb;
 *   4. the command line: `--name arg arg ...` (args up to the next --option).
 *   Options with CFG_FILE_OK may be given as `name-file PATH`: the value is
 *   read from that file (first line, trailing newline dropped) for secrets.
 * Any unknown or malformed option stops with a message naming the option and
 * where it was (file and line, env variable, or command-line position).
 *
 * At run time CONFIG SET goes through cfg_set(); CONFIG GET through
 * cfg_get_matching(); CONFIG REWRITE through cfg_rewrite().
 * Thread: configuration changes happen on one thread at a time (the caller
 * serialises); readers of plain int64/int values may race benignly. */
#ifndef BASE_CONFIG_H
#define BASE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

enum cfg_type {
    CFG_BOOL,    /* int storage; yes/no */
    CFG_INT,     /* int64_t storage; decimal, checked against [min, max] */
    CFG_MEMORY,  /* int64_t storage; 100, 1k, 1kb, 2mb, 3gb (num_parse_memory) */
    CFG_STRING,  /* char * storage (xmalloc'ed, owned by the config); "" allowed */
    CFG_ENUM,    /* int storage; index into enum_names */
    CFG_SPECIAL, /* parse/format by callbacks (save rules, buffer limits...) */
};

enum cfg_flags {
    CFG_IMMUTABLE = 1 << 0, /* cannot be changed by CONFIG SET */
    CFG_SECRET = 1 << 1,    /* never shown by CONFIG GET (shown as "") nor logged */
    CFG_FILE_OK = 1 << 2,   /* also settable as <name>-file PATH */
    CFG_MULTIARG = 1 << 3,  /* takes several arguments (CFG_SPECIAL only) */
    CFG_HIDDEN = 1 << 4,    /* not listed by CONFIG GET * */
};

struct cfg_option;
/* CFG_SPECIAL: parse argv into storage. `append` is set when the option is
 * repeated within one source (e.g. several `save` lines). Return 0 or -1 with
 * a message in err. */
typedef int cfg_set_fn(const struct cfg_option *o, int argc, const char *const *argv, int append, char *err,
                       size_t errlen);
/* CFG_SPECIAL: write the current value as CONFIG GET shows it. */
typedef void cfg_get_fn(const struct cfg_option *o, struct buf *out);
/* Called after a run-time change (CONFIG SET) was stored, to apply it (resize,
 * reopen the log...). Return 0 or -1 with err; on -1 the old value is restored. */
typedef int cfg_apply_fn(const struct cfg_option *o, char *err, size_t errlen);

struct cfg_option {
    const char *name;
    const char *alias; /* e.g. "slaveof" for "replicaof"; NULL if none */
    enum cfg_type type;
    unsigned flags;
    void *storage;
    const char *dflt;
    int64_t min, max;                /* CFG_INT, CFG_MEMORY */
    const char *const *enum_names;   /* CFG_ENUM: NULL-terminated */
    cfg_set_fn *set;                 /* CFG_SPECIAL */
    cfg_get_fn *get;                 /* CFG_SPECIAL */
    cfg_apply_fn *apply;             /* optional */
};

struct cfg; /* opaque */

struct cfg *cfg_new(void);
void cfg_free(struct cfg *c); /* frees CFG_STRING storage it allocated */
/* Borrows the table (it must outlive c).  Names must be unique. */
void cfg_register(struct cfg *c, const struct cfg_option *table, size_t n);
/* Applies every default. 0 or -1 with err. */
int cfg_defaults(struct cfg *c, char *err, size_t errlen);
/* argv as main() receives it.  If argv[1] does not start with "--" it is the
 * config file path: loaded before the environment and the options.
 * *conf_path (may be NULL) receives the file path (absolute) or NULL. */
int cfg_load_all(struct cfg *c, int argc, char **argv, char **environ_, char **conf_path, char *err,
                 size_t errlen);
int cfg_load_file(struct cfg *c, const char *path, char *err, size_t errlen);
int cfg_load_string(struct cfg *c, const char *text, const char *origin, char *err, size_t errlen);
/* Run-time change (CONFIG SET name value): refuses CFG_IMMUTABLE; calls apply.
 * err gets Redis-like text, e.g. "Unknown option or number of arguments for
 * CONFIG SET - 'foo'" or "argument couldn't be parsed into an integer". */
int cfg_set(struct cfg *c, const char *name, const char *value, char *err, size_t errlen);
/* Calls fn for every option whose name (or alias) matches the glob pattern,
 * in table order; secrets are given as "". */
void cfg_get_matching(struct cfg *c, const char *pattern,
                      void (*fn)(void *ud, const char *name, const char *value), void *ud);
/* The option's current value as text (into out).  0, or -1 if unknown. */
int cfg_get(struct cfg *c, const char *name, struct buf *out);
const struct cfg_option *cfg_find(struct cfg *c, const char *name);
/* Rewrites the file in place as Redis does: options already in the file keep
 * their line (value updated), comments stay, changed options missing from the
 * file are appended; written to a temporary file, fsynced, renamed. */
int cfg_rewrite(struct cfg *c, const char *path, char *err, size_t errlen);
/* Splits a line as the file syntax does (quotes, escapes).  Returns argc or -1
 * (unbalanced quotes); argv entries are xmalloc'ed, free with cfg_split_free. */
int cfg_split_line(const char *line, char ***argv);
void cfg_split_free(int argc, char **argv);

#endif
