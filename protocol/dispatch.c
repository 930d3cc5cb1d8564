/* dispatch.c: from a parsed request to a reply.  The checks every command
 * shares (lookup, arity, authentication, pub/sub context, pauses, memory
 * limit, key locking) happen here once, driven by the command table, so that
 * handlers only do their own work.  Also timing, command statistics, the slow
 * log, MONITOR feeding and CLIENT REPLY OFF/SKIP. */
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "acl.h"
#include "base/err.h"
#include "base/log.h"
#include "server_int.h"

#define MAX_STACK_KEYS 64

static void reject(struct client *c, struct call *k)
{
    STAT_ADD(c->w->errors, 1);
    if (k->cmd)
        STAT_ADD(c->w->cmdstats[k->cmd->id].rejected, 1);
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

/* A container (CONFIG...) with an argv[1] none of its subcommands has:
 * Redis 7's words, with the container as typed, in upper case. */
static void unknown_subcommand(struct client *c, struct call *k)
{
    char up[32]; /* the container was found: its name is shorter */
    size_t n = k->argv[0].n < sizeof up ? k->argv[0].n : sizeof up - 1;
    for (size_t i = 0; i < n; i++)
        up[i] = (char)(k->argv[0].p[i] >= 'a' && k->argv[0].p[i] <= 'z' ? k->argv[0].p[i] - 32 : k->argv[0].p[i]);
    up[n] = '\0';
    int sl = k->argv[1].n > 128 ? 128 : (int)k->argv[1].n;
    reply_error(k, "ERR unknown subcommand '%.*s'. Try %s HELP.", sl, k->argv[1].p, up);
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
    struct key_list keys;
    key_list_init(&keys);
    int how = command_keys(k->cmd, k->argc, k->argv, &keys);
    /* the context reads the time once: when it locks, or now when the
     * command locks by itself */
    if (how == CMD_NOLOCK)
        eng_ctx_init(&k->ec, k->srv->eng, db);
    else
        eng_ctx_init_to_lock(&k->ec, k->srv->eng, db);
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
        STAT_ADD(st->calls, 1);
        STAT_ADD(st->usec, (uint64_t)dur);
        STAT_ADD(st->hist[cmd_hist_bucket(dur)], 1);
        if (k->failed) {
            STAT_ADD(st->failed, 1);
            STAT_ADD(w->errors, 1);
        }
        STAT_ADD(w->commands, 1);
    }
    int64_t slower = k->srv->cfg->slowlog_log_slower_than;
    int slow = slower >= 0 && dur >= slower && !(k->cmd->flags & CMD_SKIP_SLOWLOG);
    /* MONITOR sees a command after it ran (a transaction's commands at EXEC,
     * then EXEC), with the db it left the client in (SELECT 3 shows 3), and
     * never admin commands: Redis 7's call(). */
    int mon = atomic_load_explicit(&k->srv->nmonitors, memory_order_relaxed) &&
              !(k->cmd->flags & (CMD_SKIP_MONITOR | CMD_ADMIN));
    if (!slow && !mon)
        return;
    struct eng_str *copy = NULL;
    const struct eng_str *argv = args_for_log(k, &copy); /* passwords redacted */
    if (slow)
        slowlog_push(k->srv, k->cl, k->argc, argv, dur);
    if (mon)
        monitor_feed(k->srv, k->cl, k->argc, argv);
    xfree(copy);
}

/* A command's duration runs from the time its context read (once its locks
 * are taken: waiting for a shard is not the command's own time, as SLOWLOG
 * counts none of a command's I/O either) to its end, on the wall clock as
 * Redis's call() measures: two clock reads a command in all.  A clock stepped
 * back in between counts 0. */
static int64_t since(int64_t t0_us)
{
    int64_t d = clock_wall_us() - t0_us;
    return d > 0 ? d : 0;
}

void call_command(struct call *k)
{
    lock_for_command(k);
    k->cmd->fn(k);
    if (k->ec.nlocked)
        eng_unlock(&k->ec);
    account(k, since(k->ec.now_us));
}

void call_locked(struct call *k)
{
    int64_t t0 = clock_wall_us();
    k->cmd->fn(k);
    account(k, since(t0));
}

static _Thread_local struct client *current_client;

struct client *client_current(void) { return current_client; }

static int is_paused_for(struct server *srv, struct client *c, const struct cmd_def *cmd)
{
    unsigned flags = cmd->flags | (cmd->fn == cmd_exec ? multi_queued_flags(c) : 0);
    if (c->flags & (CL_MASTER | CL_REPLICA))
        return 0; /* replication goes on through a pause (FAILOVER pauses writes) */
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

/* ACL (acl.c): the command, its keys and its channels against the client's
 * user, before anything runs or is queued.  Keys are listed only for a
 * restricted user, from the key positions even of commands that lock by
 * themselves.  Replies and returns 1 when denied. */
static int acl_denied(struct client *c, struct call *k)
{
    static const char *const why[] = {
        [ACL_DENIED_KEY] = "NOPERM this user has no permissions to access one of the keys used as arguments",
        [ACL_DENIED_CHANNEL] = "NOPERM this user has no permissions to access one of the channels used as arguments",
    };
    if ((c->flags & CL_MASTER) || acl_allows_all(c->user))
        return 0;
    const struct cmd_def *cmd = k->cmd;
    struct key_list keys;
    key_list_init(&keys);
    if (cmd->getkeys || !(cmd->flags & (CMD_NOLOCK | CMD_LOCKALL))) {
        command_keys(cmd, k->argc, k->argv, &keys);
    } else if (cmd->first > 0 && cmd->first < k->argc) {
        int last = cmd->last < 0 ? k->argc + cmd->last : cmd->last;
        for (int i = cmd->first; i <= last && i < k->argc; i += cmd->step)
            key_list_push(&keys, k->argv[i]);
    }
    int v = acl_check(c->user, cmd, k->argc, k->argv, keys.v, keys.n);
    key_list_release(&keys);
    if (v == ACL_OK)
        return 0;
    if (v == ACL_USER_GONE) /* ACL DELUSER: its connections go, as in Redis */
        c->flags |= CL_CLOSE_AFTER_REPLY;
    else if (v == ACL_DENIED_CMD)
        reply_error(k, "NOPERM this user has no permissions to run the '%s' command", cmd->fullname);
    else
        reply_error(k, "%s", why[v]);
    reject(c, k);
    return 1;
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

/* An evicting policy that still refuses a write has nothing left to evict
 * (volatile-* with no key holding a TTL) or memory that is not in keys: ops
 * need to know which, so say it, at most once every 10 s. */
static void oom_warn(struct server *srv)
{
    static _Atomic int64_t last_ms;
    int64_t now = clock_mono_ms(), last = atomic_load_explicit(&last_ms, memory_order_relaxed);
    if (srv->cfg->maxmemory_policy == ENG_POLICY_NOEVICTION || now - last < 10000 ||
        !atomic_compare_exchange_strong(&last_ms, &last, now))
        return;
    unsigned long long keys = 0, volatile_keys = 0;
    for (int db = 0; db < (int)srv->cfg->databases; db++) {
        struct eng_db_info d;
        eng_db_info(srv->eng, db, &d);
        keys += d.keys, volatile_keys += d.expires;
    }
    log_warn("maxmemory reached with nothing left to evict",
             "used_memory=%lld maxmemory=%lld keys=%llu keys_with_ttl=%llu", (long long)eng_used_memory(),
             (long long)srv->cfg->maxmemory, keys, volatile_keys);
}

/* Returns 0 when the request was consumed, 1 when it must wait (pause). */
static int dispatch(struct client *c, int argc, const struct eng_str *argv)
{
    struct server *srv = c->w->srv;
    struct call k = {.srv = srv, .cl = c, .argc = argc, .argv = argv, .out = &c->obuf, .proto = c->proto};
    /* CONFIG GET runs as the subcommand config|get: its own arity, flags,
     * keys and statistics (Redis 7's lookupCommand). */
    const struct cmd_def *container, *cmd = c->flags & CL_MASTER ? cmd_resolve(argc, argv, &container)
                                                                 : cmd_resolve_client(argc, argv, &container);
    k.cmd = cmd;
    c->last_cmd = cmd; /* NULL when unknown: CLIENT LIST shows cmd=NULL, as Redis */
    if (!cmd) {
        if (container)
            unknown_subcommand(c, &k);
        else
            unknown_command(c, &k);
        return 0;
    }
    if ((cmd->arity > 0 && argc != cmd->arity) || argc < -cmd->arity) {
        reply_error(&k, "ERR wrong number of arguments for '%s' command", cmd->fullname);
        reject(c, &k);
        return 0;
    }
    if (!c->authed && !(cmd->flags & CMD_NOAUTH)) {
        reply_error(&k, "NOAUTH Authentication required.");
        reject(c, &k);
        return 0;
    }
    if (acl_denied(c, &k))
        return 0;
    if ((c->flags & CL_PUBSUB) && c->proto == 2 && !(cmd->flags & CMD_PUBSUB)) {
        reply_error(&k,
                    "ERR Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are "
                    "allowed in this context",
                    cmd->fullname);
        reject(c, &k);
        return 0;
    }
    if (atomic_load_explicit(&srv->loading, memory_order_relaxed) && !(cmd->flags & CMD_LOADING)) {
        reply_error(&k, "LOADING Redis is loading the dataset in memory");
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
    if (srv->cfg->maxmemory > 0 && !(c->flags & CL_MASTER) && oom_checked(c, cmd) &&
        eng_make_room(srv->eng) == ERR_OOM) {
        oom_warn(srv);
        reply_errcode(&k, ERR_OOM);
        reject(c, &k);
        return 0;
    }
    /* A read-only replica takes writes only from its master (Redis's check
     * comes before queueing too: the transaction is then aborted). */
    if (atomic_load_explicit(&srv->read_only, memory_order_relaxed) && !(c->flags & CL_MASTER) &&
        ((cmd->flags & CMD_WRITE) || (cmd->fn == cmd_exec && (multi_queued_flags(c) & CMD_WRITE)))) {
        reply_error(&k, "READONLY You can't write against a read only replica.");
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
    current_client = c; /* MONITOR is fed after the command (account()) */
    call_command(&k);
    current_client = NULL;
    /* Clients blocked on keys this command pushed to are served now, after
     * it, as Redis does after each command (blocking.c). */
    if (cmd->flags & CMD_WRITE || cmd->fn == cmd_exec) {
        blocking_serve_ready(srv);
        /* WAIT waits for the replication stream up to here (Redis's woff) */
        if (srv->repl.offset)
            c->woff = srv->repl.offset(srv->repl.ud);
    }
    return 0;
}

/* CLIENT REPLY OFF / SKIP (Redis's CLIENT_REPLY_OFF and _SKIP): the command
 * runs and replies as usual, then its reply, errors included, is cut off
 * here.  A SKIP asked by this command applies to the next one. */
static void reply_mode_after(struct client *c, size_t mark)
{
    if ((c->flags & (CL_NO_REPLY | CL_REPLY_SKIP)) && c->obuf.len >= mark) {
        c->obuf.len = mark;
        if (c->obuf.p)
            c->obuf.p[mark] = '\0';
    }
    c->flags &= ~CL_REPLY_SKIP;
    if (c->flags & CL_REPLY_SKIP_NEXT)
        c->flags = (c->flags & ~CL_REPLY_SKIP_NEXT) | CL_REPLY_SKIP;
}

void server_set_loading(struct server *s, int on) { atomic_store(&s->loading, on); }

int dispatch_request(struct client *c, int argc, const struct eng_str *argv)
{
    size_t mark = c->obuf.len;
    int rc = dispatch(c, argc, argv);
    if (rc == 0) /* a paused request runs later: its reply mode too */
        reply_mode_after(c, mark);
    return rc;
}
