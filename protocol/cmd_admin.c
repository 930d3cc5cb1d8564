/* cmd_admin.c: the observation commands: SLOWLOG (and the slow log itself),
 * MONITOR (and the feed of monitor lines), LATENCY, LASTSAVE.
 *
 * The slow log is one list for the whole server, newest first, in
 * srv->slowlog[0 .. slowlog_len) under srv->slowlog_lock, at most
 * slowlog-max-len entries (trimmed at each push, as Redis does).  Entries are
 * built outside the lock; the lock covers only the insertion, a memmove of
 * slowlog_len small structs, which is fine for a log of slow commands.
 * (srv->slowlog_head is not used.)
 *
 * MONITOR lines go to each monitor's own worker as a MSG_WRITE message:
 *
 *   +1700000000.123456 [0 127.0.0.1:50000] "set" "k" "v"\r\n
 *
 * the time, the db and address of the client that ran the command, then its
 * arguments quoted as Redis's sdscatrepr() does.  The dispatcher feeds a
 * command after it ran (dispatch.c, account()), with passwords redacted
 * (args_for_log()).
 *
 * LATENCY: no latency monitor here, so its reports are empty. */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/config.h"
#include "base/num.h"
#include "server_int.h"

#define SLOWLOG_MAX_ARGC 32
#define SLOWLOG_MAX_ARGLEN 128

struct subcmd {
    const char *name;
    int arity; /* counts the command and the subcommand; -N: at least N */
    void (*fn)(struct call *k);
};

/* Finds argv[1] in table and runs it, with Redis 7's errors for a wrong
 * number of arguments or an unknown subcommand. */
static void run_subcmd(struct call *k, const char *cmd, const struct subcmd *table, size_t n)
{
    const struct eng_str *s = &k->argv[1];
    for (size_t i = 0; i < n; i++) {
        if (s->n != strlen(table[i].name) || strncasecmp(s->p, table[i].name, s->n))
            continue;
        int arity = table[i].arity;
        if ((arity > 0 && k->argc != arity) || k->argc < -arity) {
            reply_error(k, "ERR wrong number of arguments for '%s|%s' command", k->cmd->name, table[i].name);
            return;
        }
        table[i].fn(k);
        return;
    }
    reply_error(k, "ERR unknown subcommand '%.*s'. Try %s HELP.", s->n > 128 ? 128 : (int)s->n, s->p, cmd);
}

/* ---- the slow log ------------------------------------------------------------- */

static struct eng_str str_dup(const char *p, size_t n) { return (struct eng_str){xstrndup(p, n), n}; }

static struct eng_str str_printf(const char *fmt, unsigned long long v, const char *prefix, size_t plen)
{
    char tail[64];
    int tn = snprintf(tail, sizeof tail, fmt, v);
    char *s = xmalloc(plen + (size_t)tn + 1);
    memcpy(s, prefix, plen);
    memcpy(s + plen, tail, (size_t)tn + 1);
    return (struct eng_str){s, plen + (size_t)tn};
}

/* Redis's slowlogCreateEntry(): at most 32 arguments, the last of them saying
 * how many more there were; each clipped to 128 bytes plus a note. */
static void slowlog_fill(struct slowlog_entry *e, int argc, const struct eng_str *argv)
{
    int n = argc > SLOWLOG_MAX_ARGC ? SLOWLOG_MAX_ARGC : argc;
    e->argc = n;
    e->argv = xmalloc(sizeof *e->argv * (size_t)(n ? n : 1));
    for (int j = 0; j < n; j++) {
        if (n != argc && j == n - 1)
            e->argv[j] = str_printf("... (%llu more arguments)", (unsigned long long)(argc - n + 1), "", 0);
        else if (argv[j].n > SLOWLOG_MAX_ARGLEN)
            e->argv[j] = str_printf("... (%llu more bytes)", (unsigned long long)(argv[j].n - SLOWLOG_MAX_ARGLEN),
                                    argv[j].p, SLOWLOG_MAX_ARGLEN);
        else
            e->argv[j] = str_dup(argv[j].p, argv[j].n);
    }
}

static void slowlog_entry_release(struct slowlog_entry *e)
{
    for (int j = 0; j < e->argc; j++)
        xfree((void *)e->argv[j].p);
    xfree(e->argv);
}

/* Called from c's worker (dispatch decided the command was slow enough);
 * c may be NULL for commands run on no client's behalf. */
void slowlog_push(struct server *srv, struct client *c, int argc, const struct eng_str *argv, int64_t usec)
{
    struct slowlog_entry e = {.time = clock_wall_ms() / 1000, .usec = usec}, *old = NULL;
    int max = (int)(srv->cfg->slowlog_max_len > 0 ? srv->cfg->slowlog_max_len : 0), nold = 0;
    if (max > 0) {
        slowlog_fill(&e, argc, argv);
        if (c) {
            /* only c's own worker writes c->name: readable without the lock */
            snprintf(e.addr, sizeof e.addr, "%s", c->addr);
            snprintf(e.name, sizeof e.name, "%s", c->name ? c->name : "");
        }
    }
    pthread_mutex_lock(&srv->slowlog_lock);
    if (max > 0) {
        e.id = srv->slowlog_next_id++;
        srv->slowlog = xrealloc(srv->slowlog, sizeof *srv->slowlog * (size_t)(srv->slowlog_len + 1));
        memmove(srv->slowlog + 1, srv->slowlog, sizeof *srv->slowlog * (size_t)srv->slowlog_len);
        srv->slowlog[0] = e;
        srv->slowlog_len++;
    }
    if (srv->slowlog_len > max) { /* over the limit, maybe lowered since */
        nold = srv->slowlog_len - max;
        old = xmalloc(sizeof *old * (size_t)nold);
        memcpy(old, srv->slowlog + max, sizeof *old * (size_t)nold);
        srv->slowlog_len = max;
    }
    pthread_mutex_unlock(&srv->slowlog_lock);
    for (int i = 0; i < nold; i++)
        slowlog_entry_release(&old[i]);
    xfree(old);
}

static void slowlog_reply_entry(struct call *k, const struct slowlog_entry *e)
{
    resp_w_array(k->out, 6);
    resp_w_int(k->out, (int64_t)e->id);
    resp_w_int(k->out, e->time);
    resp_w_int(k->out, e->usec);
    resp_w_array(k->out, e->argc);
    for (int j = 0; j < e->argc; j++)
        resp_w_bulk(k->out, e->argv[j].p, e->argv[j].n);
    resp_w_bulkstr(k->out, e->addr);
    resp_w_bulkstr(k->out, e->name);
}

static void slowlog_get(struct call *k)
{
    struct server *srv = k->srv;
    int64_t count = 10;
    if (k->argc > 3) {
        reply_error(k, "ERR unknown subcommand or wrong number of arguments for '%.*s'. Try SLOWLOG HELP.",
                    (int)k->argv[1].n, k->argv[1].p);
        return;
    }
    if (k->argc == 3 && (num_parse_i64(k->argv[2].p, k->argv[2].n, &count) < 0 || count < -1)) {
        reply_error(k, "ERR count should be greater than or equal to -1");
        return;
    }
    pthread_mutex_lock(&srv->slowlog_lock);
    int n = srv->slowlog_len;
    if (count >= 0 && count < n)
        n = (int)count;
    resp_w_array(k->out, n);
    for (int i = 0; i < n; i++)
        slowlog_reply_entry(k, &srv->slowlog[i]);
    pthread_mutex_unlock(&srv->slowlog_lock);
}

static void slowlog_len(struct call *k)
{
    pthread_mutex_lock(&k->srv->slowlog_lock);
    int n = k->srv->slowlog_len;
    pthread_mutex_unlock(&k->srv->slowlog_lock);
    resp_w_int(k->out, n);
}

static void slowlog_reset(struct call *k)
{
    struct server *srv = k->srv;
    pthread_mutex_lock(&srv->slowlog_lock);
    struct slowlog_entry *old = srv->slowlog;
    int n = srv->slowlog_len;
    srv->slowlog = NULL;
    srv->slowlog_len = 0;
    pthread_mutex_unlock(&srv->slowlog_lock);
    for (int i = 0; i < n; i++)
        slowlog_entry_release(&old[i]);
    xfree(old);
    reply_ok(k);
}

static const char *const slowlog_help_lines[] = {
    "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
    "HELP",
    "    Prints this help.",
};

static void slowlog_help(struct call *k)
{
    reply_help(k, slowlog_help_lines, sizeof slowlog_help_lines / sizeof slowlog_help_lines[0]);
}

void cmd_slowlog(struct call *k)
{
    static const struct subcmd subs[] = {
        {"get", -2, slowlog_get},
        {"len", 2, slowlog_len},
        {"reset", 2, slowlog_reset},
        {"help", 2, slowlog_help},
    };
    run_subcmd(k, "SLOWLOG", subs, sizeof subs / sizeof subs[0]);
}

/* ---- MONITOR ------------------------------------------------------------------ */

void cmd_monitor(struct call *k)
{
    struct client *c = k->cl;
    /* Redis ignores MONITOR from a replica or a client already monitoring:
     * no reply at all. */
    if (c->flags & (CL_MONITOR | CL_REPLICA))
        return;
    pthread_mutex_lock(&k->srv->clients_lock);
    c->flags |= CL_MONITOR;
    pthread_mutex_unlock(&k->srv->clients_lock);
    atomic_fetch_add(&k->srv->nmonitors, 1);
    reply_ok(k);
}

/* Redis's sdscatrepr(): "..." with \\ \" \n \r \t \a \b and \xHH escapes. */
static void append_repr(struct buf *b, const char *p, size_t n)
{
    static const char from[] = "\\\"\n\r\t\a\b", to[] = "\\\"nrtab";
    buf_putc(b, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        const char *e = ch ? strchr(from, ch) : NULL;
        if (e) {
            buf_putc(b, '\\');
            buf_putc(b, to[e - from]);
        } else if (ch >= 0x20 && ch < 0x7f) {
            buf_putc(b, (char)ch);
        } else {
            buf_printf(b, "\\x%02x", ch);
        }
    }
    buf_putc(b, '"');
}

/* Which arguments Redis 7 redacts, as its handlers do while parsing: AUTH
 * all of them (unless a syntax error stops it first), HELLO the two after
 * each AUTH it gets to, ACL SETUSER everything after the subcommand, CONFIG
 * SET the values of secret options (requirepass, masterauth...).  Sets
 * redact[i]; returns how many. */
static int redacted_positions(const struct call *k, char *redact)
{
    int n = 0;
    if (k->cmd->fn == cmd_acl && !strcmp(k->cmd->fullname, "acl|setuser")) {
        for (int i = 2; i < k->argc; i++)
            redact[i] = 1, n++;
    } else if (k->cmd->fn == cmd_config && !strcmp(k->cmd->fullname, "config|set")) {
        for (int i = 2; i + 1 < k->argc; i += 2) {
            char name[128];
            snprintf(name, sizeof name, "%.*s", (int)(k->argv[i].n < 127 ? k->argv[i].n : 127), k->argv[i].p);
            const struct cfg_option *o = cfg_find(k->srv->conf, name);
            if (o && (o->flags & CFG_SECRET))
                redact[i + 1] = 1, n++;
        }
    } else if (k->cmd->fn == cmd_auth && k->argc <= 3) {
        for (int i = 1; i < k->argc; i++)
            redact[i] = 1, n++;
    } else if (k->cmd->fn == cmd_hello && k->argc >= 2) {
        int64_t ver;
        if (num_parse_i64(k->argv[1].p, k->argv[1].n, &ver) < 0 || ver < 2 || ver > 3)
            return 0;
        for (int i = 2; i < k->argc; i++) {
            int left = k->argc - i - 1;
            if (arg_is(k, i, "AUTH") && left >= 2)
                redact[i + 1] = redact[i + 2] = 1, n += 2, i += 2;
            else if (arg_is(k, i, "SETNAME") && left >= 1)
                i++;
            else
                break;
        }
    }
    return n;
}

const struct eng_str *args_for_log(const struct call *k, struct eng_str **copy)
{
    static const char shown[] = "(redacted)";
    *copy = NULL;
    if (k->cmd->fn != cmd_auth && k->cmd->fn != cmd_hello && k->cmd->fn != cmd_acl && k->cmd->fn != cmd_config)
        return k->argv;
    char *redact = xcalloc((size_t)k->argc, 1);
    if (redacted_positions(k, redact)) {
        *copy = xmalloc(sizeof **copy * (size_t)k->argc);
        for (int i = 0; i < k->argc; i++)
            (*copy)[i] = redact[i] ? (struct eng_str){shown, sizeof shown - 1} : k->argv[i];
    }
    xfree(redact);
    return *copy ? *copy : k->argv;
}

struct monitor_target {
    struct worker *w;
    uint64_t id;
};

void monitor_feed(struct server *srv, struct client *c, int argc, const struct eng_str *argv)
{
    struct buf line = BUF_INIT;
    struct monitor_target *t = NULL;
    struct timeval tv;
    int n = 0, cap = 0;
    if (!atomic_load_explicit(&srv->nmonitors, memory_order_relaxed))
        return;
    gettimeofday(&tv, NULL);
    buf_printf(&line, "+%ld.%06ld [%d %s] ", (long)tv.tv_sec, (long)tv.tv_usec, c ? c->db : 0,
               c ? c->addr : "internal");
    for (int j = 0; j < argc; j++) {
        if (j)
            buf_putc(&line, ' ');
        append_repr(&line, argv[j].p, argv[j].n);
    }
    buf_puts(&line, "\r\n");
    /* Posting happens after the registry lock is released. */
    pthread_mutex_lock(&srv->clients_lock);
    for (struct client *m = srv->clients; m; m = m->next) {
        if (!(m->flags & CL_MONITOR))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 4;
            t = xrealloc(t, sizeof *t * (size_t)cap);
        }
        t[n++] = (struct monitor_target){m->w, m->id};
    }
    pthread_mutex_unlock(&srv->clients_lock);
    for (int i = 0; i < n; i++)
        worker_post(t[i].w, MSG_WRITE, t[i].id, line.p, line.len);
    xfree(t);
    buf_release(&line);
}

/* ---- LATENCY ------------------------------------------------------------------ */

static void latency_empty_array(struct call *k) { resp_w_array(k->out, 0); }

static void latency_reset(struct call *k) { resp_w_int(k->out, 0); }

static void latency_histogram(struct call *k) { resp_w_map(k->out, k->proto, 0); }

static void latency_graph(struct call *k)
{
    reply_error(k, "ERR No samples available for event '%.*s'", (int)k->argv[2].n, k->argv[2].p);
}

static void latency_doctor(struct call *k)
{
    static const char report[] = "No latency data: this server keeps no latency samples.\n";
    resp_w_verbatim(k->out, k->proto, "txt", report, sizeof report - 1);
}

static const char *const latency_help_lines[] = {
    "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    Return a human readable latency analysis report.",
    "GRAPH <event>",
    "    Return an ASCII latency graph for the <event> class.",
    "HISTORY <event>",
    "    Return time-latency samples for the <event> class.",
    "LATEST",
    "    Return the latest latency samples for all events.",
    "RESET [<event> ...]",
    "    Reset latency data of one or more <event> classes.",
    "    (default: reset all data for all event classes)",
    "HISTOGRAM [COMMAND ...]",
    "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
    "    If no commands are specified then all histograms are replied.",
    "HELP",
    "    Prints this help.",
};

static void latency_help(struct call *k)
{
    reply_help(k, latency_help_lines, sizeof latency_help_lines / sizeof latency_help_lines[0]);
}

void cmd_latency(struct call *k)
{
    static const struct subcmd subs[] = {
        {"latest", 2, latency_empty_array}, {"history", 3, latency_empty_array},
        {"reset", -2, latency_reset},       {"histogram", -2, latency_histogram},
        {"graph", 3, latency_graph},        {"doctor", 2, latency_doctor},
        {"help", 2, latency_help},
    };
    run_subcmd(k, "LATENCY", subs, sizeof subs / sizeof subs[0]);
}

/* ---- LASTSAVE ----------------------------------------------------------------- */

/* No snapshot yet: the start time, as Redis reports before its first save. */
void cmd_lastsave(struct call *k) { resp_w_int(k->out, k->srv->start_ms / 1000); }
