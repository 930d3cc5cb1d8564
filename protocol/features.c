/* features.c: wires transactions (multi.c), pub/sub (pubsub.c) and blocked
 * clients (blocking.c) into the server and the engine.  The engine reports
 * effects through one set of hooks with one user pointer, so the server owns
 * them: keyspace notifications go to pub/sub, modified keys to WATCH, keys
 * that got elements to the blocked clients, and the journal is forwarded to
 * whoever server_set_hooks() named (replication).  Nothing else lives here. */
#include "base/alloc.h"
#include "server_int.h"

static void hook_notify(void *ud, int db, int cls, const char *event, const char *key, size_t klen)
{
    pubsub_notify(ud, db, cls, event, key, klen);
}

static void hook_modified(void *ud, int db, const char *key, size_t klen) { watch_touch(ud, db, key, klen); }

static void hook_ready(void *ud, int db, const char *key, size_t klen) { blocking_ready(ud, db, key, klen); }

static void hook_journal(void *ud, int db, int argc, const struct eng_str *argv)
{
    struct server *s = ud;
    if (s->repl.journal)
        s->repl.journal(s->repl.ud, db, argc, argv);
    else
        s->hooks.journal(s->hooks.ud, db, argc, argv);
}

static int hook_journal_wanted(void *ud)
{
    struct server *s = ud;
    if (s->repl.journal)
        return !s->repl.journal_wanted || s->repl.journal_wanted(s->repl.ud);
    return 1;
}

static void install(struct server *s)
{
    struct eng_hooks h = {
        .ud = s,
        .journal = s->hooks.journal || s->repl.journal ? hook_journal : NULL,
        .journal_wanted = hook_journal_wanted,
        .notify = hook_notify,
        .notify_mask = notify_engine_mask(s->cfg->notify_keyspace_events),
        .modified = hook_modified,
        .ready = hook_ready,
    };
    eng_set_hooks(s->eng, &h);
}

static void client_gone(struct client *c)
{
    blocking_client_gone(c);
    multi_client_gone(c);
    pubsub_client_gone(c);
    repl_client_gone(c);
}

/* RESET: a client that sends it is not blocked (it would not be reading). */
static void client_reset(struct client *c)
{
    multi_client_gone(c);
    pubsub_client_gone(c);
}

void features_init(struct server *s)
{
    s->watch = watch_reg_new();
    s->pubsub = pubsub_new();
    s->blocking = block_reg_new();
    s->waits = wait_reg_new();
    s->hooks_internal.on_close = client_gone;
    s->hooks_internal.on_reset = client_reset;
    install(s);
}

void features_set_journal(struct server *s) { install(s); }

void features_free(struct server *s)
{
    wait_reg_free(s->waits);
    s->waits = NULL;
    block_reg_free(s->blocking);
    pubsub_free(s->pubsub);
    watch_reg_free(s->watch);
    s->blocking = NULL;
    s->pubsub = NULL;
    s->watch = NULL;
}
