/* cmd_server.c: connection and server commands that are not families of their
 * own: PING, ECHO, QUIT, RESET, AUTH, HELLO, TIME, SHUTDOWN, DEBUG.  Users and
 * their passwords are acl.c's. */
#include <math.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "acl.h"
#include "base/alloc.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/num.h"
#include "server_int.h"

void cmd_ping(struct call *k)
{
    if (k->argc > 2) {
        reply_error(k, "ERR wrong number of arguments for 'ping' command");
        return;
    }
    if (k->cl && (k->cl->flags & CL_PUBSUB) && k->proto == 2) {
        resp_w_array(k->out, 2);
        resp_w_bulk(k->out, "pong", 4);
        if (k->argc == 2)
            resp_w_bulk(k->out, k->argv[1].p, k->argv[1].n);
        else
            resp_w_bulk(k->out, "", 0);
    } else if (k->argc == 2) {
        resp_w_bulk(k->out, k->argv[1].p, k->argv[1].n);
    } else {
        resp_w_simplen(k->out, "PONG", 4);
    }
}

void cmd_echo(struct call *k) { resp_w_bulk(k->out, k->argv[1].p, k->argv[1].n); }

void cmd_quit(struct call *k)
{
    reply_ok(k);
    k->cl->flags |= CL_CLOSE_AFTER_REPLY;
}

/* AUTH [user] pass and HELLO AUTH user pass: the user named ("default"
 * when none) with that password; acl.c compares hashes in constant time.
 * Returns 1 when accepted (the client is then that user); replies nothing. */
static int authenticate(struct call *k, const struct eng_str *user, const struct eng_str *pass)
{
    struct acl_user *u = user ? acl_authenticate(user->p, user->n, pass->p, pass->n)
                              : acl_authenticate("default", 7, pass->p, pass->n);
    if (!u)
        return 0;
    k->cl->user = u == acl_default_user() ? NULL : u;
    k->cl->authed = 1;
    return 1;
}

void cmd_auth(struct call *k)
{
    if (k->argc > 3) {
        reply_syntax(k);
        return;
    }
    if (k->argc == 2 && acl_default_nopass()) {
        reply_error(k, "ERR AUTH <password> called without any password configured for the default user. Are you "
                       "sure your configuration is correct?");
        return;
    }
    const struct eng_str *user = k->argc == 3 ? &k->argv[1] : NULL, *pass = &k->argv[k->argc - 1];
    if (authenticate(k, user, pass)) {
        reply_ok(k);
    } else {
        log_warn("authentication failed", "id=%llu addr=%s", (unsigned long long)k->cl->id, k->cl->addr);
        reply_error(k, "WRONGPASS invalid username-password pair or user is disabled.");
    }
}

static int valid_client_name(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] < '!' || p[i] > '~')
            return 0;
    return 1;
}

void cmd_hello(struct call *k)
{
    struct client *c = k->cl;
    int64_t ver = c->proto;
    int i = 1;
    if (k->argc >= 2) {
        if (num_parse_i64(k->argv[1].p, k->argv[1].n, &ver) < 0) {
            reply_error(k, "ERR Protocol version is not an integer or out of range");
            return;
        }
        if (ver < 2 || ver > 3) {
            reply_error(k, "NOPROTO unsupported protocol version");
            return;
        }
        i = 2;
    }
    const struct eng_str *user = NULL, *pass = NULL, *name = NULL;
    for (; i < k->argc; i++) {
        int left = k->argc - i - 1;
        if (arg_is(k, i, "AUTH") && left >= 2) {
            user = &k->argv[i + 1], pass = &k->argv[i + 2];
            i += 2;
        } else if (arg_is(k, i, "SETNAME") && left >= 1) {
            name = &k->argv[++i];
            if (!valid_client_name(name->p, name->n)) {
                reply_error(k, "ERR Client names cannot contain spaces, newlines or special characters.");
                return;
            }
        } else {
            reply_error(k, "ERR Syntax error in HELLO option '%.*s'", (int)k->argv[i].n, k->argv[i].p);
            return;
        }
    }
    if (user && !authenticate(k, user, pass)) {
        log_warn("authentication failed", "id=%llu addr=%s", (unsigned long long)c->id, c->addr);
        reply_error(k, "WRONGPASS invalid username-password pair or user is disabled.");
        return;
    }
    if (!c->authed) {
        reply_error(k, "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO "
                       "AUTH <user> <pass> option can be used to authenticate the client and select the "
                       "RESP protocol version at the same time");
        return;
    }
    if (name) {
        char *n = name->n ? xstrndup(name->p, name->n) : NULL;
        pthread_mutex_lock(&k->srv->clients_lock);
        char *old = c->name;
        c->name = n;
        pthread_mutex_unlock(&k->srv->clients_lock);
        xfree(old);
    }
    c->proto = (int)ver;
    k->proto = (int)ver;
    resp_w_map(k->out, k->proto, 7);
    resp_w_bulkstr(k->out, "server");
    resp_w_bulkstr(k->out, "redis");
    resp_w_bulkstr(k->out, "version");
    resp_w_bulkstr(k->out, "7.0.15");
    resp_w_bulkstr(k->out, "proto");
    resp_w_int(k->out, ver);
    resp_w_bulkstr(k->out, "id");
    resp_w_int(k->out, (int64_t)c->id);
    resp_w_bulkstr(k->out, "mode");
    resp_w_bulkstr(k->out, "standalone");
    resp_w_bulkstr(k->out, "role");
    struct server *srv = c->w->srv;
    int replica = (srv->hooks.is_replica && srv->hooks.is_replica(srv->hooks.ud)) ||
                  (srv->repl.is_replica && srv->repl.is_replica(srv->repl.ud));
    resp_w_bulkstr(k->out, replica ? "replica" : "master");
    resp_w_bulkstr(k->out, "modules");
    resp_w_array(k->out, 0);
}

void cmd_reset(struct call *k)
{
    struct client *c = k->cl;
    if (k->srv->hooks_internal.on_reset)
        k->srv->hooks_internal.on_reset(c); /* transactions, subscriptions, blocking */
    if (c->flags & CL_MONITOR) {
        c->flags &= ~CL_MONITOR;
        atomic_fetch_sub(&k->srv->nmonitors, 1);
    }
    c->flags &= ~(CL_NO_REPLY | CL_REPLY_SKIP_NEXT); /* not CL_REPLY_SKIP: a SKIP before RESET skips its reply */
    c->db = 0;
    c->proto = 2;
    k->proto = 2;
    c->user = NULL;
    c->authed = acl_default_nopass();
    pthread_mutex_lock(&k->srv->clients_lock);
    char *old = c->name;
    c->name = NULL;
    pthread_mutex_unlock(&k->srv->clients_lock);
    xfree(old);
    resp_w_simple(k->out, "RESET");
}

void cmd_time(struct call *k)
{
    int64_t us = clock_wall_us();
    resp_w_array(k->out, 2);
    resp_w_bulk_i64(k->out, us / 1000000);
    resp_w_bulk_i64(k->out, us % 1000000);
}

void cmd_shutdown(struct call *k)
{
    struct server *srv = k->srv;
    int nosave = 0, save = 0, force = 0;
    for (int i = 1; i < k->argc; i++) {
        if (arg_is(k, i, "NOSAVE"))
            nosave = 1;
        else if (arg_is(k, i, "SAVE"))
            save = 1;
        else if (arg_is(k, i, "NOW"))
            ;
        else if (arg_is(k, i, "FORCE"))
            force = 1;
        else if (arg_is(k, i, "ABORT")) {
            reply_error(k, "ERR No shutdown in progress.");
            return;
        } else {
            reply_syntax(k);
            return;
        }
    }
    if (nosave && save) {
        reply_syntax(k);
        return;
    }
    log_info("user requested shutdown", "id=%llu addr=%s", (unsigned long long)k->cl->id, k->cl->addr);
    if (!nosave && srv->hooks.save_on_shutdown && srv->hooks.save_on_shutdown(srv->hooks.ud, save) < 0 && !force) {
        reply_error(k, "ERR Errors trying to SHUTDOWN. Check logs.");
        return;
    }
    atomic_store(&srv->shutdown_asked, 1);
    uv_async_send(&srv->main_wake);
    /* No reply: the connection closes as the server stops, as in Redis. */
}

void cmd_debug(struct call *k)
{
    if (arg_is(k, 1, "SLEEP") && k->argc == 3) {
        long double secs;
        if (arg_double(k, 2, &secs) < 0)
            return;
        if (secs > 0)
            usleep((useconds_t)(secs * 1000000));
        reply_ok(k);
    } else if (arg_is(k, 1, "SLEEP-LOCKED") && k->argc == 4) {
        /* Holds key's shard lock while it sleeps: whatever else needs that
         * shard (another worker, the bot's threads) waits, as behind a slow
         * command.  For tests of stall detection (/healthz). */
        long double secs;
        if (arg_double(k, 3, &secs) < 0)
            return;
        eng_lock_keys(&k->ec, &k->argv[2], 1);
        if (secs > 0)
            usleep((useconds_t)(secs * 1000000));
        eng_unlock(&k->ec);
        reply_ok(k);
    } else if (arg_is(k, 1, "SET-ACTIVE-EXPIRE") && k->argc == 3) {
        eng_set_active_expire(k->srv->eng, arg_is(k, 2, "1"));
        reply_ok(k);
    } else if (arg_is(k, 1, "OBJECT") && k->argc == 3) {
        eng_lock_keys(&k->ec, &k->argv[2], 1);
        const char *enc = eng_object_encoding(&k->ec, k->argv[2].p, k->argv[2].n);
        if (!enc) {
            reply_error(k, "ERR no such key");
            return;
        }
        char line[256];
        int64_t mem = eng_memory_usage(&k->ec, k->argv[2].p, k->argv[2].n);
        snprintf(line, sizeof line, "Value at:0x0 refcount:1 encoding:%s serializedlength:%lld lru:0 lru_seconds_idle:%lld",
                 enc, (long long)mem, (long long)eng_object_idletime(&k->ec, k->argv[2].p, k->argv[2].n));
        resp_w_simple(k->out, line);
    } else if (arg_is(k, 1, "HELP")) {
        static const char *const help[] = {"DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                                           "OBJECT <key>", "    Show low level info about the key and associated value.",
                                           "SET-ACTIVE-EXPIRE <0|1>",
                                           "    Setting it to 0 disables expiring keys in background when they are not accessed.",
                                           "SLEEP <seconds>", "    Stop the server for <seconds>. Decimals allowed.",
                                           "SLEEP-LOCKED <key> <seconds>",
                                           "    Sleep holding the lock of <key>'s shard: what needs that shard waits.",
                                           "HELP", "    Print this help."};
        reply_help(k, help, sizeof help / sizeof help[0]);
    } else {
        reply_error(k, "ERR unknown subcommand '%.*s'. Try DEBUG HELP.", (int)k->argv[1].n, k->argv[1].p);
    }
}
