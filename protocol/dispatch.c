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

void key_list_init(struct key_list *l)
{
    l->v = l->stack;
    l->n = 0;
    l->cap = (int)(sizeof l->stack / sizeof l->stack[0]);
}

void key_list_push(struct key_list *l, struct eng_str key)
{
    if (l->n == l->cap) {
        l->cap *= 2;
        if (l->v == l->stack) {
            l->v = xmalloc(sizeof *l->v * (size_t)l->cap);
            memcpy(l->v, l->stack, sizeof l->stack);
        } else {
            l->v = xrealloc(l->v, sizeof *l->v * (size_t)l->cap);
        }
    }
    l->v[l->n++] = key;
}

void key_list_release(struct key_list *l)
{
    if (l->v != l->stack)
        xfree(l->v);
    key_list_init(l);
}

int command_keys(const struct cmd_def *cmd, int argc, const struct eng_str *argv, struct key_list *out)
{
    if (cmd->flags & CMD_NOLOCK)
        return CMD_NOLOCK;
    if (cmd->flags & CMD_LOCKALL)
        return CMD_LOCKALL;
    if (cmd->getkeys) {
        /* Room for every argument, so that getkeys can always list them all
         * (EXEC locks a transaction's keys at once: no handler may relock). */
        int stack[MAX_STACK_KEYS * 4], *pos = argc > MAX_STACK_KEYS * 4 ? xmalloc(sizeof *pos * (size_t)argc) : stack;
        int got = cmd->getkeys(argc, argv, pos, argc > MAX_STACK_KEYS * 4 ? argc : MAX_STACK_KEYS * 4);
        for (int i = 0; i < got; i++)
            key_list_push(out, argv[pos[i]]);
        if (pos != stack)
            xfree(pos);
    } else if (cmd->first > 0 && cmd->first < argc) {
        int last = cmd->last < 0 ? argc + cmd->last : cmd->last;
        if (last >= argc)
            last = argc - 1;
        for (int i = cmd->first; i <= last; i += cmd->step)
            key_list_push(out, argv[i]);
    }
    return 0;
}

void lock_for_command(struct call *k)
{
    int db = k->cl ? k->cl->db : 0;
    eng_ctx_init(&k->ec, k->srv->eng, db);
    struct key_list keys;
    key_list_init(&keys);
    int how = command_keys(k->cmd, k->argc, k->argv, &keys);
    if (how == CMD_LOCKALL)
        eng_lock_all(&k->ec);
    else if (how == 0)
        eng_lock_keys(&k->ec, keys.v, keys.n);
    key_list_release(&keys);
}

static void account(struct call *k, int64_t dur)
{
    if (k->cl) {
        struct worker *w = k->cl->w;
        struct cmd_stat *st = &w->cmdstats[k->cmd->id];
        st->calls++;
        st->usec += (uint64_t)dur;
        if (k->failed)
            st->failed++, w->errors++;
        w->commands++;
    }
    int64_t slower = k->srv->cfg->slowlog_log_slower_than;
    if (slower >= 0 && dur >= slower && !(k->cmd->flags & CMD_SKIP_SLOWLOG))
        slowlog_push(k->srv, k->cl, k->argc, k->argv, dur);
}

void call_command(struct call *k)
{
    int64_t t0 = clock_mono_us();
    lock_for_command(k);
    k->cmd->fn(k);
    if (k->ec.nlocked)
        eng_unlock(&k->ec);
    account(k, clock_mono_us() - t0);
}

void call_locked(struct call *k)
{
    int64_t t0 = clock_mono_us();
    k->cmd->fn(k);
    account(k, clock_mono_us() - t0);
}

static _Thread_local struct client *current_client;

struct client *client_current(void) { return current_client; }

static int is_paused_for(struct server *srv, struct client *c, const struct cmd_def *cmd)
{
    unsigned flags = cmd->flags | (cmd->fn == cmd_exec ? multi_queued_flags(c) : 0);
    int64_t until = atomic_load_explicit(&srv->pause_until_ms, memory_order_relaxed);
    if (!until)
        return 0;
    if (clock_wall_ms() >= until) {
        atomic_store(&srv->pause_until_ms, 0);
        return 0;
    }
    if (atomic_load(&srv->pause_all))
        return 1;
    return (flags & CMD_WRITE) != 0;
}

/* Redis's OOM rule: deny-oom commands, and in MULTI anything queued (queues
 * grow memory too), and EXEC of a transaction holding a deny-oom command. */
static int oom_checked(struct client *c, const struct cmd_def *cmd)
{
    if (cmd->flags & CMD_DENYOOM)
        return 1;
    if (cmd->fn == cmd_exec)
        return (multi_queued_flags(c) & CMD_DENYOOM) != 0;
    return (c->flags & CL_MULTI) && cmd->fn != cmd_discard && cmd->fn != cmd_quit && cmd->fn != cmd_reset;
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
    if ((c->flags & CL_MULTI) && (cmd->flags & CMD_NOMULTI) && !multi_is_control(cmd)) {
        reply_error(&k, "ERR Command not allowed inside a transaction");
        reject(c, &k);
        return 0;
    }
    if (is_paused_for(srv, c, cmd)) {
        c->flags |= CL_PAUSED;
        return 1;
    }
    if (srv->cfg->maxmemory > 0 && oom_checked(c, cmd) && eng_make_room(srv->eng) == ERR_OOM) {
        reply_errcode(&k, ERR_OOM);
        reject(c, &k);
        return 0;
    }
    /* In MULTI everything but the transaction's own commands is queued
     * (multi.c); MONITOR sees it when EXEC runs it, as in Redis. */
    if ((c->flags & CL_MULTI) && !multi_is_control(cmd)) {
        multi_queue(c, cmd, argc, argv);
        resp_w_simplen(&c->obuf, "QUEUED", 6);
        return 0;
    }
    if (atomic_load_explicit(&srv->nmonitors, memory_order_relaxed) && !(cmd->flags & CMD_SKIP_MONITOR))
        monitor_feed(srv, c, argc, argv);
    current_client = c;
    call_command(&k);
    current_client = NULL;
    /* Clients blocked on keys this command pushed to are served now, after
     * it, as Redis does after each command (blocking.c). */
    if (cmd->flags & CMD_WRITE || cmd->fn == cmd_exec)
        blocking_serve_ready(srv);
    return 0;
}
