/* fuzz_dispatch.c: libFuzzer target for the command dispatcher fed whole
 * requests: the input is what a client sends (RESP multibulk or inline,
 * pipelined), read by the client's own request reader with the limits a
 * connection has, and every request goes through dispatch_request() into an
 * in-process engine of 2 shards, as conn.c's client_process_input() does.
 * No sockets, no threads: the server is built with port 0 and its workers'
 * loops are pumped here (as protocol/tests/test_features.c does).
 *
 * What is checked: memory safety and UB (ASan/UBSan), that every request
 * gets a reply (or is queued/blocked/paused as the flags say), that the
 * reply buffer always holds whole RESP values, and that the engine is empty
 * after FLUSHALL at the end of each input.
 *
 * Left out because they would stall or leave the process: DEBUG (SLEEP),
 * SHUTDOWN, CONFIG SET/REWRITE (dir, logfile change the process).  Each
 * input starts from an empty engine, a fresh client and only the default
 * user (ACL SETUSER, AUTH and the permission checks are fuzzed too); CLIENT
 * PAUSE is undone between inputs. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "acl.h"
#include "base/alloc.h"
#include "base/config.h"
#include "base/err.h"
#include "base/log.h"
#include "server_int.h"
#include "fuzz.h"

static struct server *S;
static struct eng *E;
static struct cfg *CONF;

static void setup(void)
{
    char err[256];
    log_set_level(LOG_WARNING + 1); /* quiet: failed AUTHs and the like are the norm here */
    CONF = cfg_new();
    struct server_config *sc = server_options_register(CONF);
    CHECK(cfg_defaults(CONF, err, sizeof err) == 0);
    sc->port = 0;
    sc->shards = 2;
    sc->slowlog_log_slower_than = 0; /* every command through the slow log (argument copies) */
    sc->slowlog_max_len = 8;
    /* small values: SETRANGE k 500000000 x must not make each run slow */
    sc->proto_max_bulk_len = 1 << 20;
    sc->maxmemory = 256 << 20;
    struct eng_config ec = {.nshards = 2, .ndb = 16, .maxmemory = sc->maxmemory, .maxmemory_samples = 5};
    E = eng_new(&ec);
    server_options_bind_engine(E);
    S = server_new(sc, CONF, NULL, E, err, sizeof err);
    CHECK(S != NULL);
}

void fuzz_cleanup(void)
{
    if (!S)
        return;
    server_free(S);
    eng_free(E);
    cfg_free(CONF);
    S = NULL;
}

static void pump(void)
{
    for (int i = 0; i < S->nworkers; i++)
        uv_run(&S->workers[i].loop, UV_RUN_NOWAIT);
}

static int denied(int argc, const struct eng_str *argv)
{
    static const char *const names[] = {"debug", "shutdown", "config"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (argv[0].n == strlen(names[i]) && !strncasecmp(argv[0].p, names[i], argv[0].n))
            return !(i == 2 && argc >= 2 && argv[1].n == 3 && !strncasecmp(argv[1].p, "get", 3));
    return 0;
}

/* The replies collected are whole RESP values (RESP3 included). */
static void check_replies(const struct buf *out)
{
    static const struct resp_value_limits lim = {INT64_MAX / 2, INT64_MAX / 2, 64};
    size_t off = 0;
    while (off < out->len) {
        struct resp_value v;
        size_t used;
        int rc = resp_value_read(out->p + off, out->len - off, &lim, &v, &used);
        CHECK(rc == 1);
        resp_value_free(&v);
        off += used;
    }
}

/* The request loop of client_process_input(), minus the socket. */
static void feed(struct client *c, const char *in, size_t n)
{
    size_t pos = 0;
    while (pos < n) {
        if (c->flags & (CL_CLOSE_AFTER_REPLY | CL_CLOSE_ASAP | CL_PAUSED | CL_BLOCKED))
            break;
        int64_t argc;
        size_t used;
        c->rd.lim.max_bulk = 1 << 20;
        c->rd.lim.max_multibulk = 1024;
        int rc = resp_req_read(&c->rd, in + pos, n - pos, &argc, &used);
        if (rc != 1)
            break; /* ERR_AGAIN (half a request) or a protocol error */
        CHECK(used > 0 && used <= n - pos);
        if (argc > 0) {
            if (argc > c->argv_cap) {
                c->argv_cap = (int)argc;
                c->argv = xrealloc(c->argv, sizeof *c->argv * (size_t)argc);
            }
            for (int64_t i = 0; i < argc; i++) {
                size_t len;
                const char *p = resp_req_arg(&c->rd, in + pos, (int)i, &len);
                c->argv[i] = (struct eng_str){p, len};
            }
            if (!denied((int)argc, c->argv)) {
                size_t before = c->obuf.len;
                int blocking = 0;
                const struct cmd_def *container, *cmd = cmd_resolve((int)argc, c->argv, &container);
                blocking = cmd && (cmd->flags & CMD_BLOCKING);
                if (dispatch_request(c, (int)argc, c->argv))
                    break; /* paused */
                /* a reply, unless the command blocked, turned replies off,
                 * is a replica's or subscribed (RESP3 pushes come later) */
                if (!blocking && !(c->flags & (CL_NO_REPLY | CL_REPLY_SKIP | CL_BLOCKED | CL_REPLICA)) &&
                    !(cmd && cmd->fn == cmd_quit))
                    CHECK(c->obuf.len > before || (c->flags & CL_PUBSUB) || (c->flags & CL_MONITOR));
            }
        }
        pos += used;
        pump();
        check_replies(&c->obuf);
        if (c->obuf.len > (1u << 20))
            buf_reset(&c->obuf);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!S)
        setup();
    atomic_store(&S->pause_until_ms, 0);
    struct client *c = client_new(&S->workers[0]);
    c->flags |= CL_CLOSING; /* replies stay in obuf (test_features.c) */
    c->fd = 1000 + (int)c->id;
    client_register(c);
    atomic_fetch_add(&S->nclients, 1);
    /* the reader keeps views into the input: give it its own block */
    char *in = xmalloc(size + 1);
    memcpy(in, data, size);
    in[size] = '\0';
    feed(c, in, size);
    c->flags &= ~CL_CLOSING;
    client_close(c);
    pump();
    xfree(in);
    /* back to an empty keyspace and no users for the next input */
    atomic_store(&S->pause_until_ms, 0);
    acl_reset();
    fuzz_flush(E);
    return 0;
}
