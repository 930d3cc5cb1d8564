/* fuzz_repl_stream.c: libFuzzer target for the replica side's decoder of
 * what its master sends (repl_replica.c): the handshake replies
 * (+FULLRESYNC, +CONTINUE, errors), the full copy (a $<len> or $EOF:<mark>
 * payload of snapshot frames loaded through the checked reader) and the
 * command stream (RESP commands applied through the master client,
 * transactions held until EXEC, REPLCONF GETACK), each fed in slices cut
 * where a hash of the input says, as reads would deliver them.
 *
 * The file includes repl_replica.c to reach its static state machine
 * (STYLE.md section 9); the link's socket is a TCP handle that is never
 * connected, so what the replica would send fails quietly.  No threads.
 *
 * Input: one mode byte, then the bytes from the master.  mode % 3 picks the
 * state the link starts in: 0 waiting for PONG (the whole handshake), 1
 * waiting for the PSYNC reply (then a full copy or +CONTINUE), 2 connected
 * (the command stream alone).  Each input starts from an empty engine. */
#include "../repl_replica.c"

#include <stdint.h>
#include <stdlib.h>

#include "base/config.h"
#include "repl.h"
#include "fuzz.h"

static struct cfg *CONF;
static struct eng *E;
static struct server *S;
static struct repl *R;

static void setup(void)
{
    char err[256];
    log_set_level(LOG_WARNING + 1); /* quiet: a fuzzer makes every link fail */
    CONF = cfg_new();
    struct server_config *sc = server_options_register(CONF);
    struct repl_config *rc = repl_config_register(CONF);
    CHECK(cfg_defaults(CONF, err, sizeof err) == 0);
    sc->port = 0;
    sc->shards = 2;
    struct eng_config ec = {.nshards = 2, .ndb = 16, .maxmemory_samples = 5, .replica = 1};
    E = eng_new(&ec);
    server_options_bind_engine(E);
    S = server_new(sc, CONF, NULL, E, err, sizeof err);
    CHECK(S != NULL);
    R = repl_new(E, rc);
    struct server_repl_ops ops;
    repl_ops(R, &ops);
    server_set_repl_ops(S, &ops);
    /* what repl_start() does, without its thread */
    R->srv = S;
    R->sc = sc;
    R->master_client = server_pseudo_new(S);
    CHECK(uv_loop_init(&R->loop) == 0);
    R->is_replica = 1;
    R->link_state = LINK_CONNECT;
    snprintf(R->master_host, sizeof R->master_host, "127.0.0.1");
    R->master_port = 1;
}

void fuzz_cleanup(void)
{
    if (!R)
        return;
    uv_run(&R->loop, UV_RUN_NOWAIT);
    CHECK(uv_loop_close(&R->loop) == 0);
    server_pseudo_free(R->master_client);
    R->master_client = NULL;
    repl_free(R); /* not running: frees only */
    server_free(S);
    eng_free(E);
    cfg_free(CONF);
    R = NULL;
}

static struct repl_link *new_link(int state)
{
    struct repl_link *l = xcalloc(1, sizeof *l);
    l->r = R;
    snprintf(l->host, sizeof l->host, "127.0.0.1");
    l->port = 1;
    struct resp_limits lim = {INT64_MAX / 2, INT64_MAX / 2, 64 * 1024};
    resp_req_reader_init(&l->rd, &lim);
    uv_tcp_init(&R->loop, &l->tcp);
    l->tcp.data = l;
    l->last_io_ms = clock_wall_ms();
    R->link = l;
    R->link_gen = R->master_gen;
    l->state = state;
    R->link_state = state;
    return l;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int starts[] = {LINK_RECV_PONG, LINK_RECV_PSYNC, LINK_CONNECTED};
    if (!R)
        setup();
    if (size < 1)
        return 0;
    uint64_t seed = fuzz_seed(data, size);
    struct repl_link *l = new_link(starts[data[0] % 3]);
    if (l->state == LINK_CONNECTED)
        server_pseudo_select(R->master_client, 0);
    for (size_t off = 1; off < size && !l->closing;) {
        size_t n = fuzz_next_slice(&seed, 9, 700);
        n = n < size - off ? n : size - off;
        buf_append(&l->in, data + off, n); /* on_read's part, without the socket */
        l->in.p[l->in.len] = '\0';
        off += n;
        CHECK(apply_begin(R));
        process(l, (ssize_t)n);
        apply_end(R);
        CHECK(!server_is_loading(S) || l->state == LINK_TRANSFER);
    }
    if (!l->closing)
        link_drop(R, l, "end of input");
    CHECK(R->link == NULL && !server_is_loading(S));
    uv_run(&R->loop, UV_RUN_NOWAIT); /* on_link_closed frees the link */
    /* back to a replica with nothing, for the next input */
    server_pseudo_reset(R->master_client);
    fuzz_flush(E);
    return 0;
}
