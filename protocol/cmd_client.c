/* cmd_client.c: CLIENT and its subcommands, and the CLIENT LIST line.
 *
 * Clients belong to their workers, but CLIENT LIST and CLIENT KILL see all of
 * them through the registry (srv->clients, under srv->clients_lock).  Under
 * that lock we only read a client's scalar fields (and its name, which the
 * lock guards); we never touch another worker's client otherwise: a kill is a
 * message to its worker (worker_post MSG_KILL), collected under the lock and
 * posted after it, so the lock is never held across another module's locks.
 *
 * The line format is Redis 7.0's (networking.c, catClientInfoString):
 *
 *   id=3 addr=127.0.0.1:50000 laddr=127.0.0.1:6379 fd=8 name= age=0 idle=0
 *   flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=26 qbuf-free=20448
 *   argv-mem=10 multi-mem=0 rbs=1024 rbp=0 obl=0 oll=0 omem=0 tot-mem=22298
 *   events=r cmd=client|list user=default redir=-1 resp=2
 *
 * Our buffers are not Redis's: rbs is the reply buffer's capacity, obl the
 * replies not yet handed to the kernel, omem those plus the write in flight;
 * oll is always 0 (no reply list). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "acl.h"
#include "base/alloc.h"
#include "base/clock.h"
#include "base/num.h"
#include "server_int.h"

/* Client types as CLIENT LIST TYPE / CLIENT KILL TYPE name them. */
enum { CT_NORMAL, CT_REPLICA, CT_PUBSUB, CT_MASTER };

struct subcmd {
    const char *name;
    int arity; /* counts CLIENT and the subcommand; -N: at least N */
    void (*fn)(struct call *k);
};

/* Redis's getClientType(): a monitor is a "normal" client. */
static int client_type(const struct client *c)
{
    if (c->flags & CL_MASTER)
        return CT_MASTER;
    if ((c->flags & CL_REPLICA) && !(c->flags & CL_MONITOR))
        return CT_REPLICA;
    if (c->flags & CL_PUBSUB)
        return CT_PUBSUB;
    return CT_NORMAL;
}

/* An integer argument in [lo, hi]; otherwise replies "ERR <msg>", which
 * Redis uses for bad text and out-of-range values alike. */
static int arg_int_or(struct call *k, int i, int64_t lo, int64_t hi, const char *msg, int64_t *out)
{
    int64_t v;
    if (num_parse_i64(k->argv[i].p, k->argv[i].n, &v) < 0 || v < lo || v > hi) {
        reply_error(k, "ERR %s", msg);
        return -1;
    }
    *out = v;
    return 0;
}

static int client_type_by_name(const struct eng_str *s)
{
    static const struct {
        const char *name;
        int type;
    } names[] = {{"normal", CT_NORMAL},
                 {"slave", CT_REPLICA},
                 {"replica", CT_REPLICA},
                 {"pubsub", CT_PUBSUB},
                 {"master", CT_MASTER}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (s->n == strlen(names[i].name) && !strncasecmp(s->p, names[i].name, s->n))
            return names[i].type;
    return -1;
}

static void flags_letters(const struct client *c, char *p)
{
    char *start = p;
    if (c->flags & CL_MONITOR)
        *p++ = 'O';
    else if (c->flags & CL_REPLICA)
        *p++ = 'S';
    if (c->flags & CL_MASTER)
        *p++ = 'M';
    if (c->flags & CL_PUBSUB)
        *p++ = 'P';
    if (c->flags & CL_MULTI)
        *p++ = 'x';
    if (c->flags & CL_BLOCKED)
        *p++ = 'b';
    if (c->flags & CL_DIRTY_CAS)
        *p++ = 'd';
    if (c->flags & CL_CLOSE_AFTER_REPLY)
        *p++ = 'c';
    if (c->flags & CL_CLOSE_ASAP)
        *p++ = 'A';
    if (p == start)
        *p++ = 'N';
    *p = '\0';
}

/* The line for c, with srv->clients_lock held (it guards c->name and keeps c
 * alive).  self is the call asking when c is its client (its argv counts in
 * argv-mem); cmdname overrides the last command's name ("client|list" for
 * the asker).  Another worker may be changing c's counters as we read them:
 * each is read once, so the line is consistent with itself. */
static void describe(struct server *srv, struct client *c, const struct call *self, const char *cmdname,
                     struct buf *out)
{
    char flags[16];
    int64_t now = clock_wall_ms();
    size_t qlen = c->qbuf.len, qpos = c->qpos, qcap = c->qbuf.cap;
    size_t olen = c->obuf.len, ocap = c->obuf.cap, wlen = c->wbuf.len, wpos = c->wpos;
    uint64_t argv_mem = 0;
    if (self)
        for (int i = 0; i < self->argc; i++)
            argv_mem += self->argv[i].n;
    uint64_t tot = sizeof *c + qcap + ocap + c->wbuf.cap + (uint64_t)c->argv_cap * sizeof *c->argv + argv_mem;
    if (!cmdname)
        cmdname = c->last_cmd ? c->last_cmd->fullname : "NULL";
    flags_letters(c, flags);
    buf_printf(out, "id=%llu addr=%s laddr=%s fd=%d name=%s age=%lld idle=%lld flags=%s db=%d sub=0 psub=0 ssub=0 ",
               (unsigned long long)c->id, c->addr, c->laddr, c->fd, c->name ? c->name : "",
               (long long)((now - c->ctime_ms) / 1000), (long long)((now - c->last_ms) / 1000), flags, c->db);
    buf_printf(out, "multi=%d qbuf=%zu qbuf-free=%zu argv-mem=%llu multi-mem=0 rbs=%zu rbp=%zu obl=%zu oll=0 ",
               (c->flags & CL_MULTI) ? 0 : -1, qlen >= qpos ? qlen - qpos : 0, qcap > qlen ? qcap - qlen : 0,
               (unsigned long long)argv_mem, ocap, olen, olen);
    buf_printf(out, "omem=%zu tot-mem=%llu events=r%s cmd=%s user=%s redir=-1 resp=%d\n",
               olen + (wlen >= wpos ? wlen - wpos : 0), (unsigned long long)tot, c->writing ? "w" : "", cmdname,
               acl_user_name(c->user), c->proto);
}

/* CLIENT LIST line of c; call with srv->clients_lock held. */
void client_describe(struct server *srv, struct client *c, struct buf *out) { describe(srv, c, NULL, NULL, out); }

/* ---- CLIENT ID / GETNAME / SETNAME / INFO ----------------------------------- */

static void client_id(struct call *k) { resp_w_int(k->out, (int64_t)k->cl->id); }

static void client_getname(struct call *k)
{
    /* Only this client's own worker writes its name: no lock needed to read. */
    if (k->cl->name)
        resp_w_bulkstr(k->out, k->cl->name);
    else
        resp_w_null(k->out, k->proto);
}

static void client_setname(struct call *k)
{
    const struct eng_str *s = &k->argv[2];
    for (size_t i = 0; i < s->n; i++) {
        unsigned char ch = (unsigned char)s->p[i];
        if (ch < '!' || ch > '~') {
            reply_error(k, "ERR Client names cannot contain spaces, newlines or special characters.");
            return;
        }
    }
    char *name = s->n ? arg_strdup(k, 2) : NULL, *old;
    pthread_mutex_lock(&k->srv->clients_lock);
    old = k->cl->name;
    k->cl->name = name;
    pthread_mutex_unlock(&k->srv->clients_lock);
    xfree(old);
    reply_ok(k);
}

static void reply_text(struct call *k, const struct buf *b)
{
    resp_w_verbatim(k->out, k->proto, "txt", b->p ? b->p : "", b->len);
}

static void client_info(struct call *k)
{
    struct buf b = BUF_INIT;
    pthread_mutex_lock(&k->srv->clients_lock);
    describe(k->srv, k->cl, k, "client|info", &b);
    pthread_mutex_unlock(&k->srv->clients_lock);
    reply_text(k, &b);
    buf_release(&b);
}

/* ---- CLIENT LIST ---------------------------------------------------------- */

static void list_one(struct call *k, struct client *c, struct buf *b)
{
    if (c == k->cl)
        describe(k->srv, c, k, "client|list", b);
    else
        describe(k->srv, c, NULL, NULL, b);
}

/* CLIENT LIST ID id...: in the order asked, as Redis. */
static void list_ids(struct call *k, const int64_t *ids, int n, struct buf *b)
{
    for (int i = 0; i < n; i++)
        for (struct client *c = k->srv->clients; c; c = c->next)
            if (c->id == (uint64_t)ids[i]) {
                list_one(k, c, b);
                break;
            }
}

static int parse_ids(struct call *k, int from, int64_t **ids)
{
    int n = k->argc - from;
    *ids = xmalloc(sizeof **ids * (size_t)n);
    for (int i = 0; i < n; i++)
        if (arg_int_or(k, from + i, 1, INT64_MAX, "Invalid client ID", &(*ids)[i]) < 0) {
            xfree(*ids);
            return -1;
        }
    return n;
}

static void client_list(struct call *k)
{
    int type = -1, nids = 0;
    int64_t *ids = NULL;
    struct buf b = BUF_INIT;
    if (k->argc == 4 && arg_is(k, 2, "type")) {
        if ((type = client_type_by_name(&k->argv[3])) < 0) {
            reply_error(k, "ERR Unknown client type '%.*s'", (int)k->argv[3].n, k->argv[3].p);
            return;
        }
    } else if (k->argc > 3 && arg_is(k, 2, "id")) {
        if ((nids = parse_ids(k, 3, &ids)) < 0)
            return;
    } else if (k->argc != 2) {
        reply_syntax(k);
        return;
    }
    pthread_mutex_lock(&k->srv->clients_lock);
    if (ids) {
        list_ids(k, ids, nids, &b);
    } else {
        /* New clients go first in the registry; Redis lists oldest first. */
        struct client *c = k->srv->clients;
        while (c && c->next)
            c = c->next;
        for (; c; c = c->prev)
            if (type < 0 || client_type(c) == type)
                list_one(k, c, &b);
    }
    pthread_mutex_unlock(&k->srv->clients_lock);
    reply_text(k, &b);
    buf_release(&b);
    xfree(ids);
}

/* ---- CLIENT KILL ------------------------------------------------------------ */

struct kill_filter {
    uint64_t id; /* 0: any */
    int type;    /* -1: any */
    const struct eng_str *addr, *laddr, *user;
    int skipme;
};

struct kill_target {
    struct worker *w;
    uint64_t id;
};

static int str_is(const struct eng_str *s, const char *z) { return s->n == strlen(z) && !memcmp(s->p, z, s->n); }

static int kill_matches(const struct call *k, const struct kill_filter *f, const struct client *c)
{
    if (f->addr && !str_is(f->addr, c->addr))
        return 0;
    if (f->laddr && !str_is(f->laddr, c->laddr))
        return 0;
    if (f->user && !str_is(f->user, acl_user_name(c->user)))
        return 0;
    if (f->type >= 0 && client_type(c) != f->type)
        return 0;
    if (f->id && c->id != f->id)
        return 0;
    return !(c == k->cl && f->skipme);
}

/* The new form: pairs of ID/TYPE/ADDR/LADDR/USER/SKIPME and a value. */
static int kill_parse(struct call *k, struct kill_filter *f)
{
    for (int i = 2; i < k->argc; i += 2) {
        if (i + 1 >= k->argc) {
            reply_syntax(k);
            return -1;
        }
        const struct eng_str *v = &k->argv[i + 1];
        int64_t id;
        if (arg_is(k, i, "id")) {
            if (arg_int_or(k, i + 1, 1, INT64_MAX, "client-id should be greater than 0", &id) < 0)
                return -1;
            f->id = (uint64_t)id;
        } else if (arg_is(k, i, "type")) {
            if ((f->type = client_type_by_name(v)) < 0) {
                reply_error(k, "ERR Unknown client type '%.*s'", (int)v->n, v->p);
                return -1;
            }
        } else if (arg_is(k, i, "addr")) {
            f->addr = v;
        } else if (arg_is(k, i, "laddr")) {
            f->laddr = v;
        } else if (arg_is(k, i, "user")) {
            if (!acl_user_exists(v->p, v->n)) {
                reply_error(k, "ERR No such user '%.*s'", (int)v->n, v->p);
                return -1;
            }
            f->user = v;
        } else if (arg_is(k, i, "skipme") && (arg_is(k, i + 1, "yes") || arg_is(k, i + 1, "no"))) {
            f->skipme = arg_is(k, i + 1, "yes");
        } else {
            reply_syntax(k);
            return -1;
        }
    }
    return 0;
}

/* Kills the matching clients: the asker after its reply, the others through
 * their workers' mailboxes.  Returns how many. */
static int kill_matching(struct call *k, const struct kill_filter *f)
{
    struct kill_target *t = NULL;
    int n = 0, cap = 0, self = 0;
    pthread_mutex_lock(&k->srv->clients_lock);
    for (struct client *c = k->srv->clients; c; c = c->next) {
        if (!kill_matches(k, f, c))
            continue;
        if (c == k->cl) {
            self = 1;
            continue;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 8;
            t = xrealloc(t, sizeof *t * (size_t)cap);
        }
        t[n++] = (struct kill_target){c->w, c->id};
    }
    pthread_mutex_unlock(&k->srv->clients_lock);
    for (int i = 0; i < n; i++)
        worker_post(t[i].w, MSG_KILL, t[i].id, NULL, 0);
    xfree(t);
    if (self)
        k->cl->flags |= CL_CLOSE_AFTER_REPLY;
    return n + self;
}

static void client_kill(struct call *k)
{
    struct kill_filter f = {.type = -1, .skipme = 1};
    if (k->argc == 3) { /* old form: CLIENT KILL addr:port, may kill the asker */
        f.addr = &k->argv[2];
        f.skipme = 0;
        if (kill_matching(k, &f))
            reply_ok(k);
        else
            reply_error(k, "ERR No such client");
        return;
    }
    if (kill_parse(k, &f) < 0)
        return;
    resp_w_int(k->out, kill_matching(k, &f));
}

/* ---- CLIENT UNBLOCK --------------------------------------------------------- */

static void client_unblock(struct call *k)
{
    if (k->argc > 4) {
        reply_error(k, "ERR unknown subcommand or wrong number of arguments for 'unblock'. Try CLIENT HELP.");
        return;
    }
    int64_t id;
    if (arg_int_or(k, 2, INT64_MIN, INT64_MAX, "value is not an integer or out of range", &id) < 0)
        return;
    int error = 0;
    if (k->argc == 4) {
        if (arg_is(k, 3, "error"))
            error = 1;
        else if (!arg_is(k, 3, "timeout")) {
            reply_error(k, "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR");
            return;
        }
    }
    resp_w_int(k->out, id > 0 && blocking_unblock(k->srv, (uint64_t)id, error));
}

/* ---- CLIENT PAUSE / UNPAUSE ------------------------------------------------- */

static void client_pause(struct call *k)
{
    struct server *srv = k->srv;
    int64_t ms, now = clock_wall_ms();
    int all = 1;
    if (k->argc > 4) {
        reply_error(k, "ERR unknown subcommand or wrong number of arguments for '%.*s'. Try CLIENT HELP.",
                    (int)k->argv[1].n, k->argv[1].p);
        return;
    }
    if (k->argc == 4) {
        if (arg_is(k, 3, "write")) {
            all = 0;
        } else if (!arg_is(k, 3, "all")) {
            reply_error(k, "ERR CLIENT PAUSE mode must be WRITE or ALL");
            return;
        }
    }
    if (arg_int_or(k, 2, INT64_MIN, INT64_MAX, "timeout is not an integer or out of range", &ms) < 0)
        return;
    if (ms < 0) {
        reply_error(k, "ERR timeout is negative");
        return;
    }
    if (ms > INT64_MAX - now) {
        reply_error(k, "ERR timeout is out of range");
        return;
    }
    /* A pause in force is only extended, and ALL wins over WRITE (Redis's
     * pauseClients keeps the latest end and the strictest type). */
    int64_t until = atomic_load(&srv->pause_until_ms), end = ms ? now + ms : 0;
    if (until > now) {
        if (atomic_load(&srv->pause_all))
            all = 1;
        if (until > end)
            end = until;
    }
    atomic_store(&srv->pause_all, all);
    atomic_store(&srv->pause_until_ms, end);
    reply_ok(k);
}

static void client_unpause(struct call *k)
{
    struct server *srv = k->srv;
    atomic_store(&srv->pause_until_ms, 0);
    atomic_store(&srv->pause_all, 0);
    for (int i = 0; i < srv->nworkers; i++)
        worker_post(&srv->workers[i], MSG_RESUME, 0, NULL, 0);
    reply_ok(k);
}

/* ---- CLIENT REPLY / NO-EVICT / TRACKING ------------------------------------- */

/* The flags only; the dispatcher cuts the replies (dispatch.c). */
static void client_reply(struct call *k)
{
    if (arg_is(k, 2, "on")) {
        k->cl->flags &= ~(CL_NO_REPLY | CL_REPLY_SKIP);
        reply_ok(k);
    } else if (arg_is(k, 2, "off")) {
        k->cl->flags |= CL_NO_REPLY; /* no reply, this one included */
    } else if (arg_is(k, 2, "skip")) {
        if (!(k->cl->flags & CL_NO_REPLY))
            k->cl->flags |= CL_REPLY_SKIP_NEXT; /* this one has no reply either */
    } else {
        reply_syntax(k);
    }
}

static void client_no_evict(struct call *k)
{
    /* Clients are never evicted here (no maxmemory-clients): accept both. */
    if (arg_is(k, 2, "on") || arg_is(k, 2, "off"))
        reply_ok(k);
    else
        reply_syntax(k);
}

static void client_tracking(struct call *k) { reply_error(k, "ERR CLIENT TRACKING is not supported"); }

static void client_getredir(struct call *k) { resp_w_int(k->out, -1); }

/* Tracking is never on: Redis's answers for a client without it. */
static void client_trackinginfo(struct call *k)
{
    resp_w_map(k->out, k->proto, 3);
    resp_w_bulkstr(k->out, "flags");
    resp_w_set(k->out, k->proto, 1);
    resp_w_bulkstr(k->out, "off");
    resp_w_bulkstr(k->out, "redirect");
    resp_w_int(k->out, -1);
    resp_w_bulkstr(k->out, "prefixes");
    resp_w_array(k->out, 0);
}

static void client_caching(struct call *k)
{
    reply_error(k, "ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT "
                   "mode enabled");
}

/* ---- dispatch ------------------------------------------------------------- */

static void client_help(struct call *k);

static const struct subcmd subcmds[] = {
    {"id", 2, client_id},
    {"getname", 2, client_getname},
    {"setname", 3, client_setname},
    {"info", 2, client_info},
    {"list", -2, client_list},
    {"kill", -3, client_kill},
    {"pause", -3, client_pause},
    {"unpause", 2, client_unpause},
    {"unblock", -3, client_unblock},
    {"reply", 3, client_reply},
    {"no-evict", 3, client_no_evict},
    {"tracking", -3, client_tracking},
    {"getredir", 2, client_getredir},
    {"trackinginfo", 2, client_trackinginfo},
    {"caching", 3, client_caching},
    {"help", 2, client_help},
};

static const char *const help[] = {
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CACHING (YES|NO)",
    "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
    "GETREDIR",
    "    Return the client ID we are redirecting to when tracking is enabled.",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "UNBLOCK <clientid> [TIMEOUT|ERROR]",
    "    Unblock the specified blocked client.",
    "UNPAUSE",
    "    Stop the current client pause, resuming traffic.",
    "PAUSE <timeout> [WRITE|ALL]",
    "    Suspend all, or just write, clients for <timeout> milliseconds.",
    "REPLY (ON|OFF|SKIP)",
    "    Control the replies sent to the current connection.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
    "         [OPTIN] [OPTOUT] [NOLOOP]",
    "    Control server assisted client side caching.",
    "TRACKINGINFO",
    "    Report tracking status for the current connection.",
    "NO-EVICT (ON|OFF)",
    "    Protect current client connection from eviction.",
    "HELP",
    "    Prints this help.",
};

static void client_help(struct call *k)
{
    reply_help(k, help, sizeof help / sizeof help[0]);
}

void cmd_client(struct call *k)
{
    const struct eng_str *s = &k->argv[1];
    for (size_t i = 0; i < sizeof subcmds / sizeof subcmds[0]; i++) {
        const struct subcmd *sc = &subcmds[i];
        if (s->n != strlen(sc->name) || strncasecmp(s->p, sc->name, s->n))
            continue;
        if ((sc->arity > 0 && k->argc != sc->arity) || k->argc < -sc->arity) {
            reply_error(k, "ERR wrong number of arguments for 'client|%s' command", sc->name);
            return;
        }
        sc->fn(k);
        return;
    }
    reply_error(k, "ERR unknown subcommand '%.*s'. Try CLIENT HELP.", s->n > 128 ? 128 : (int)s->n, s->p);
}
