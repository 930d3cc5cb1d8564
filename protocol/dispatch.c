/* dispatch.c: from a parsed request to a reply.  The checks every command
 * shares (lookup, arity, authentication, pub/sub context, pauses, memory
 * limit, key locking) happen here once, driven by the command table, so that
 * handlers only do their own work.  Also timing, command statistics, the slow
 * log and MONITOR feeding. */
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/err.h"
#include "server_int.h"

#define MAX_STACK_KEYS 64

static void reject(struct client *c, struct call *k)
{
    c->w->errors++;
    if (k->cmd)
        c->w->cmdstats[k->cmd->id].rejected++;
    if (c->flags & CL_MULTI)
        c->flags |= CL_DIRTY_EXEC;
}

static void unknown_command(struct client *c, struct call *k)
{
    char args[256];
    size_t n = 0;
    args[0] = '\0';
    for (int i = 1; i < k->argc && n < 128; i++) {
        int room = 128 - (int)n;
        int len = (int)k->argv[i].n < room ? (int)k->argv[i].n : room;
        n += (size_t)snprintf(args + n, sizeof args - n, "'%.*s' ", len, k->argv[i].p);
    }
    int cl = k->argv[0].n > 128 ? 128 : (int)k->argv[0].n;
    reply_error(k, "ERR unknown command '%.*s', with args beginning with: %s", cl, k->argv[0].p, args);
    reject(c, k);
}

void lock_for_command(struct call *k)
{
    const struct cmd_def *cmd = k->cmd;
    int db = k->cl ? k->cl->db : 0;
    eng_ctx_init(&k->ec, k->srv->eng, db);
    if (cmd->flags & CMD_NOLOCK)
        return;
    if (cmd->flags & CMD_LOCKALL) {
        eng_lock_all(&k->ec);
        return;
    }
    struct eng_str stack[MAX_STACK_KEYS], *keys = stack;
    int n = 0;
    if (cmd->getkeys) {
        int pos[MAX_STACK_KEYS * 4];
        int got = cmd->getkeys(k->argc, k->argv, pos, MAX_STACK_KEYS * 4);
        if (got > MAX_STACK_KEYS)
            keys = xmalloc(sizeof *keys * (size_t)got);
        for (int i = 0; i < got; i++)
            keys[n++] = k->argv[pos[i]];
    } else if (cmd->first > 0 && cmd->first < k->argc) {
        int last = cmd->last < 0 ? k->argc + cmd->last : cmd->last;
        if (last >= k->argc)
            last = k->argc - 1;
        int count = (last - cmd->first) / cmd->step + 1;
        if (count > MAX_STACK_KEYS)
            keys = xmalloc(sizeof *keys * (size_t)count);
        for (int i = cmd->first; i <= last; i += cmd->step)
            keys[n++] = k->argv[i];
    }
    eng_lock_keys(&k->ec, keys, n);
    if (keys != stack)
        xfree(keys);
}

void call_command(struct call *k)
{
    struct server *srv = k->srv;
    int64_t t0 = clock_mono_us();
    lock_for_command(k);
    k->cmd->fn(k);
    if (k->ec.nlocked)
        eng_unlock(&k->ec);
    int64_t dur = clock_mono_us() - t0;
    if (k->cl) {
        struct worker *w = k->cl->w;
        struct cmd_stat *st = &w->cmdstats[k->cmd->id];
        st->calls++;
        st->usec += (uint64_t)dur;
        if (k->failed)
            st->failed++, w->errors++;
        w->commands++;
    }
    int64_t slower = srv->cfg->slowlog_log_slower_than;
    if (slower >= 0 && dur >= slower && !(k->cmd->flags & CMD_SKIP_SLOWLOG))
        slowlog_push(srv, k->cl, k->argc, k->argv, dur);
}

static int is_paused_for(struct server *srv, const struct cmd_def *cmd)
{
    int64_t until = atomic_load_explicit(&srv->pause_until_ms, memory_order_relaxed);
    if (!until)
        return 0;
    if (clock_wall_ms() >= until) {
        atomic_store(&srv->pause_until_ms, 0);
        return 0;
    }
    if (atomic_load(&srv->pause_all))
        return 1;
    return (cmd->flags & CMD_WRITE) != 0;
}

/* Returns 0 when the request was consumed, 1 when it must wait (pause). */
int dispatch_request(struct client *c, int argc, const struct eng_str *argv)
{
    struct server *srv = c->w->srv;
    struct call k = {.srv = srv, .cl = c, .argc = argc, .argv = argv, .out = &c->obuf, .proto = c->proto};
    const struct cmd_def *cmd = cmd_lookup(argv[0].p, argv[0].n);
    k.cmd = cmd;
    if (!cmd) {
        unknown_command(c, &k);
        return 0;
    }
    c->last_cmd = cmd;
    if ((cmd->arity > 0 && argc != cmd->arity) || argc < -cmd->arity) {
        reply_error(&k, "ERR wrong number of arguments for '%s' command", cmd->name);
        reject(c, &k);
        return 0;
    }
    if (!c->authed && !(cmd->flags & CMD_NOAUTH)) {
        reply_error(&k, "NOAUTH Authentication required.");
        reject(c, &k);
        return 0;
    }
    if ((c->flags & CL_PUBSUB) && c->proto == 2 && !(cmd->flags & CMD_PUBSUB)) {
        reply_error(&k,
                    "ERR Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are "
                    "allowed in this context",
                    cmd->name);
        reject(c, &k);
        return 0;
    }
    if (is_paused_for(srv, cmd)) {
        c->flags |= CL_PAUSED;
        return 1;
    }
    if ((cmd->flags & CMD_DENYOOM) && srv->cfg->maxmemory > 0 && eng_make_room(srv->eng) == ERR_OOM) {
        reply_errcode(&k, ERR_OOM);
        reject(c, &k);
        return 0;
    }
    if (atomic_load_explicit(&srv->nmonitors, memory_order_relaxed) && !(cmd->flags & CMD_SKIP_MONITOR))
        monitor_feed(srv, c, argc, argv);
    call_command(&k);
    return 0;
}
