/* acl.h: users and their permissions, as Redis 7's ACL has them (protocol/
 * internal).  A user has a state (on/off), passwords (kept as SHA-256, as
 * Redis keeps them) or nopass, the commands it may run (by command id:
 * +cmd, -cmd, +cmd|sub, +@category, -@category), the keys (~pattern,
 * allkeys) and the pub/sub channels (&pattern, allchannels) it may touch.
 * The "default" user always exists: nopass and every permission unless
 * requirepass or a `user default ...` line says otherwise.
 *
 * Thread: any worker.  The registry is guarded by a rwlock; acl_check()
 * takes it only for a restricted user (a user allowed everything is known
 * by an atomic flag, so the common case costs one load).  User structs are
 * never freed while the process runs (a deleted user is marked and kept),
 * so a client may hold its user's pointer for as long as it lives. */
#ifndef PROTOCOL_ACL_H
#define PROTOCOL_ACL_H

#include <stddef.h>

#include "base/buf.h"
#include "engine.h"

struct acl_user;
struct cmd_def;

/* Sets the default user's password (requirepass): NULL or "" = nopass. */
void acl_set_requirepass(const char *pass);
/* The default user. */
struct acl_user *acl_default_user(void);
/* 1 when a new connection is authenticated as "default" without AUTH. */
int acl_default_nopass(void);
/* The user named, enabled, whose password matches (constant time), or NULL.
 * A nopass user accepts any password. */
struct acl_user *acl_authenticate(const char *name, size_t nlen, const char *pass, size_t plen);
/* ACL SETUSER name rules...: creates the user when missing; the rules
 * apply all or none.  0, or -1 with Redis's message in err. */
int acl_setuser(const char *name, size_t nlen, int nrules, const struct eng_str *rules, char *err, size_t errlen);
/* Config file `user name rules...` lines.  The command table is built only
 * after every module registered its commands, so lines are kept here and
 * applied when the ACL is first used (the first connection); a line that
 * fails then is logged and skipped.  What can be checked without the table
 * (syntax, passwords, patterns, categories) is checked now: 0, or -1 with
 * the reason in err. */
int acl_config_user(int argc, const char *const *argv, char *err, size_t errlen);
/* Forgets the lines kept (a source that repeats `user` starts over). */
void acl_config_users_clear(void);
/* Applies the configuration's user lines, once the command table is whole
 * (command names are checked only then): -1 and err naming the user and the
 * rule when one cannot be applied, which stops the start as any bad option
 * does. */
int acl_load_config(char *err, size_t errlen);
/* The `user` lines kept, for CONFIG REWRITE: "a on ...\nuser b on ..." (the
 * rewrite puts "user " in front).  ACL SETUSER's changes are not in it. */
void acl_config_users_format(struct buf *out);
/* Where requirepass lives: applied to "default" when the ACL starts, after
 * the `user` lines (requirepass wins), and by CONFIG SET requirepass. */
void acl_bind_requirepass(char *const *requirepass);

enum acl_verdict { ACL_OK, ACL_DENIED_CMD, ACL_DENIED_KEY, ACL_DENIED_CHANNEL, ACL_USER_GONE };
/* May u (NULL: default) run cmd with these arguments?  keys: the command's
 * key arguments (the dispatcher's command_keys()), n of them. */
int acl_check(struct acl_user *u, const struct cmd_def *cmd, int argc, const struct eng_str *argv,
              const struct eng_str *keys, int nkeys);
const char *acl_user_name(const struct acl_user *u); /* NULL: "default" */
/* 1 when a user of that name exists (CLIENT KILL USER). */
int acl_user_exists(const char *name, size_t n);
/* 1 when u (NULL: default) may run anything on anything: acl_check would
 * say ACL_OK whatever the arguments, so the caller need not list keys. */
int acl_allows_all(const struct acl_user *u);

/* Back to the start: only "default", nopass with every permission; frees
 * deleted users too.  For tests and fuzzing: no client may hold a user. */
void acl_reset(void);

#endif
