/* test_acl.c: ACL users (acl.c), AUTH/HELLO against them, the dispatcher's
 * permission checks (commands, subcommands, categories, keys, channels),
 * rename-command, and the redaction of secrets in what the slow log keeps.
 * Driven through the dispatcher with RESP replies compared byte for byte;
 * no sockets (the set-up of test_features.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "acl.h"
#include "base/alloc.h"
#include "base/config.h"
#include "server_int.h"

static struct server *S;
static struct eng *E;
static struct cfg *CONF;

static int setup(void **state)
{
    char err[256];
    CONF = cfg_new();
    struct server_config *sc = server_options_register(CONF);
    if (cfg_defaults(CONF, err, sizeof err) < 0)
        return -1;
    /* as a config file would say them, before the table exists */
    if (cfg_load_string(CONF,
                        "user inspector on >insp ~* &* +@read +@connection -@dangerous\n"
                        "user repl on >rp +psync +replconf +ping\n"
                        "rename-command FLUSHALL \"\"\n"
                        "rename-command DEBUG secret-debug\n",
                        "test", err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    sc->port = 0;
    sc->shards = 2;
    sc->slowlog_log_slower_than = 0; /* every command is kept: redaction is visible */
    struct eng_config ec = {.nshards = 2, .ndb = 16, .maxmemory_samples = 5};
    E = eng_new(&ec);
    server_options_bind_engine(E);
    S = server_new(sc, CONF, NULL, E, err, sizeof err);
    return S ? 0 : -1;
}

static int teardown(void **state)
{
    server_free(S);
    eng_free(E);
    cfg_free(CONF);
    return 0;
}

static struct client *fake(void)
{
    struct client *c = client_new(&S->workers[0]);
    c->flags |= CL_CLOSING; /* replies stay in obuf */
    c->fd = 1000 + (int)c->id;
    client_register(c);
    atomic_fetch_add(&S->nclients, 1);
    return c;
}

static void done(struct client *c)
{
    c->flags &= ~CL_CLOSING;
    client_close(c);
    for (int i = 0; i < S->nworkers; i++)
        uv_run(&S->workers[i].loop, UV_RUN_NOWAIT);
}

/* One command, arguments split on spaces. */
static const char *run(struct client *c, const char *line)
{
    static char out[8192];
    char copy[1024];
    struct eng_str argv[32];
    int argc = 0;
    snprintf(copy, sizeof copy, "%s", line);
    for (char *p = copy, *bar;; p = bar + 1) {
        bar = strchr(p, ' ');
        if (bar)
            *bar = '\0';
        argv[argc++] = (struct eng_str){p, strlen(p)};
        if (!bar)
            break;
    }
    dispatch_request(c, argc, argv);
    snprintf(out, sizeof out, "%.*s", (int)c->obuf.len, c->obuf.p ? c->obuf.p : "");
    buf_reset(&c->obuf);
    return out;
}

#define NOPERM_CMD(x) "-NOPERM this user has no permissions to run the '" x "' command\r\n"
#define NOPERM_KEY "-NOPERM this user has no permissions to access one of the keys used as arguments\r\n"
#define NOPERM_CHAN "-NOPERM this user has no permissions to access one of the channels used as arguments\r\n"
#define WRONGPASS "-WRONGPASS invalid username-password pair or user is disabled.\r\n"

static void test_default_user(void **state)
{
    struct client *c = fake();
    assert_true(c->authed);
    assert_string_equal(run(c, "ACL WHOAMI"), "$7\r\ndefault\r\n");
    assert_string_equal(run(c, "SET a 1"), "+OK\r\n");
    assert_string_equal(run(c, "ACL GETUSER nobody"), "$-1\r\n");
    assert_string_equal(run(c, "ACL DELUSER default"), "-ERR The 'default' user cannot be removed\r\n");
    assert_string_equal(run(c, "ACL USERS"), "*3\r\n$7\r\ndefault\r\n$9\r\ninspector\r\n$4\r\nrepl\r\n");
    done(c);
}

static void test_config_users(void **state)
{
    struct client *c = fake();
    assert_string_equal(run(c, "AUTH inspector wrong"), WRONGPASS);
    assert_string_equal(run(c, "AUTH inspector insp"), "+OK\r\n");
    assert_string_equal(run(c, "ACL WHOAMI"), NOPERM_CMD("acl|whoami")); /* @slow only, as in Redis */
    assert_string_equal(run(c, "GET a"), "$1\r\n1\r\n");
    assert_string_equal(run(c, "SET a 2"), NOPERM_CMD("set"));
    assert_string_equal(run(c, "FLUSHDB"), NOPERM_CMD("flushdb"));
    assert_string_equal(run(c, "KEYS *"), NOPERM_CMD("keys")); /* read, but dangerous */
    assert_string_equal(run(c, "CONFIG GET maxmemory"), NOPERM_CMD("config|get"));
    assert_string_equal(run(c, "PING"), "+PONG\r\n");
    assert_string_equal(run(c, "MULTI"), NOPERM_CMD("multi")); /* @transaction: not given */
    done(c);

    struct client *r = fake();
    assert_string_equal(run(r, "AUTH repl rp"), "+OK\r\n");
    assert_string_equal(run(r, "PING"), "+PONG\r\n");
    assert_string_equal(run(r, "GET a"), NOPERM_CMD("get"));
    assert_string_equal(run(r, "REPLCONF listening-port 6380"), "+OK\r\n");
    done(r);
}

static void test_setuser_rules(void **state)
{
    struct client *c = fake();
    assert_string_equal(run(c, "ACL SETUSER app on >s3cret ~app:* &news +@all -@dangerous -del"), "+OK\r\n");
    assert_string_equal(run(c, "ACL SETUSER app bogus"),
                        "-ERR Error in ACL SETUSER modifier 'bogus': Syntax error\r\n");
    assert_string_equal(run(c, "ACL SETUSER app +nosuchcmd"),
                        "-ERR Error in ACL SETUSER modifier '+nosuchcmd': Unknown command or category name in "
                        "ACL\r\n");
    assert_string_equal(run(c, "ACL SETUSER app +@nosuchcat"),
                        "-ERR Error in ACL SETUSER modifier '+@nosuchcat': Unknown command or category name in "
                        "ACL\r\n");
    /* a failed SETUSER changes nothing: the password still works */
    struct client *a = fake();
    assert_non_null(strstr(run(a, "HELLO 3 AUTH app s3cret"), "$5\r\nproto\r\n:3\r\n"));
    assert_string_equal(run(a, "ACL WHOAMI"), "$3\r\napp\r\n");
    assert_string_equal(run(a, "SET app:1 x"), "+OK\r\n");
    assert_string_equal(run(a, "SET other x"), NOPERM_KEY);
    assert_string_equal(run(a, "MSET app:2 x other y"), NOPERM_KEY);
    assert_string_equal(run(a, "DEL app:1"), NOPERM_CMD("del"));
    assert_string_equal(run(a, "FLUSHALL"), "-ERR unknown command 'FLUSHALL', with args beginning with: \r\n");
    assert_string_equal(run(a, "PUBLISH news hi"), ":0\r\n");
    assert_string_equal(run(a, "PUBLISH sports hi"), NOPERM_CHAN);
    assert_string_equal(run(a, "SUBSCRIBE sports"), NOPERM_CHAN);
    /* changed rules reach a connection already authenticated */
    assert_string_equal(run(c, "ACL SETUSER app allkeys"), "+OK\r\n");
    assert_string_equal(run(a, "SET other x"), "+OK\r\n");
    /* off: no new AUTH, the existing connection keeps working (Redis) */
    assert_string_equal(run(c, "ACL SETUSER app off"), "+OK\r\n");
    struct client *b = fake();
    assert_string_equal(run(b, "AUTH app s3cret"), WRONGPASS);
    assert_string_equal(run(a, "GET other"), "$1\r\nx\r\n");
    /* deleted: its connections are closed at their next command */
    assert_string_equal(run(c, "ACL DELUSER app nobody"), ":1\r\n");
    assert_string_equal(run(a, "GET other"), "");
    assert_true(a->flags & CL_CLOSE_AFTER_REPLY);
    done(a);
    done(b);
    done(c);
}

static void test_getuser_list(void **state)
{
    struct client *c = fake();
    assert_string_equal(run(c, "ACL SETUSER v on >pw ~k* +get"), "+OK\r\n");
    /* sha256("pw") */
    const char *h = "30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4";
    char want[512];
    snprintf(want, sizeof want, "user v on #%s ~k* resetchannels -@all +get", h);
    const char *list = run(c, "ACL LIST");
    assert_non_null(strstr(list, want));
    assert_non_null(strstr(list, "user default on nopass ~* &* +@all"));
    assert_null(strstr(list, ">pw"));
    const char *g = run(c, "ACL GETUSER v");
    assert_non_null(strstr(g, "$5\r\nflags\r\n*1\r\n$2\r\non\r\n"));
    assert_non_null(strstr(g, h));
    assert_non_null(strstr(g, "$4\r\nkeys\r\n$3\r\n~k*\r\n"));
    assert_non_null(strstr(g, "$8\r\ncommands\r\n$10\r\n-@all +get\r\n"));
    /* a password given as its hash works the same */
    snprintf(want, sizeof want, "ACL SETUSER w on #%s +@all allkeys", h);
    assert_string_equal(run(c, want), "+OK\r\n");
    assert_string_equal(run(c, "ACL SETUSER w #abc"),
                        "-ERR Error in ACL SETUSER modifier '#abc': The password hash must be exactly 64 characters "
                        "and contain only lowercase hexadecimal characters\r\n");
    struct client *w = fake();
    assert_string_equal(run(w, "AUTH w pw"), "+OK\r\n");
    done(w);
    assert_string_equal(run(c, "ACL DELUSER v w"), ":2\r\n");
    done(c);
}

static void test_categories(void **state)
{
    struct client *c = fake();
    const char *cats = run(c, "ACL CAT");
    const char *const want[] = {"read", "write", "admin", "dangerous", "keyspace", "connection", "pubsub",
                                "replication", "fast", "slow"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char needle[64];
        snprintf(needle, sizeof needle, "\r\n%s\r\n", want[i]);
        assert_non_null(strstr(cats, needle));
    }
    const char *rd = run(c, "ACL CAT read");
    assert_non_null(strstr(rd, "\r\nget\r\n"));
    assert_null(strstr(rd, "\r\nset\r\n"));
    const char *rp = run(c, "ACL CAT replication");
    assert_non_null(strstr(rp, "\r\npsync\r\n"));
    assert_non_null(strstr(rp, "\r\nreplconf\r\n"));
    assert_string_equal(run(c, "ACL CAT nope"), "-ERR Unknown category 'nope'\r\n");
    /* Sentinel's user, as the Redis documentation writes it */
    assert_string_equal(run(c, "ACL SETUSER sentinel on >sp allchannels +multi +slaveof +ping +exec +subscribe "
                               "+config|rewrite +role +publish +info +client|setname +client|kill +script|kill"),
                        "+OK\r\n");
    struct client *s = fake();
    assert_string_equal(run(s, "AUTH sentinel sp"), "+OK\r\n");
    assert_non_null(strstr(run(s, "ROLE"), "master"));
    assert_string_equal(run(s, "CLIENT SETNAME sentinel-1"), "+OK\r\n");
    assert_string_equal(run(s, "CLIENT LIST"), NOPERM_CMD("client|list"));
    assert_string_equal(run(s, "SET a 1"), NOPERM_CMD("set"));
    assert_string_equal(run(s, "PUBLISH __sentinel__:hello x"), ":0\r\n");
    done(s);
    done(c);
}

static void test_auth_errors_and_reset(void **state)
{
    struct client *c = fake();
    assert_string_equal(run(c, "AUTH x"), "-ERR AUTH <password> called without any password configured for the "
                                          "default user. Are you sure your configuration is correct?\r\n");
    assert_string_equal(run(c, "AUTH default anything"), "+OK\r\n"); /* nopass accepts any */
    assert_string_equal(run(c, "AUTH nobody x"), WRONGPASS);
    /* requirepass: the default user's password; new connections must AUTH */
    assert_string_equal(run(c, "CONFIG SET requirepass hunter2"), "+OK\r\n");
    struct client *d = fake();
    assert_false(d->authed);
    assert_string_equal(run(d, "GET a"), "-NOAUTH Authentication required.\r\n");
    assert_string_equal(run(d, "AUTH wrong"), WRONGPASS);
    assert_string_equal(run(d, "AUTH hunter2"), "+OK\r\n");
    assert_string_equal(run(d, "AUTH inspector insp"), "+OK\r\n");
    assert_string_equal(run(d, "RESET"), "+RESET\r\n");
    assert_false(d->authed);
    assert_null(d->user);
    assert_string_equal(run(c, "CONFIG SET requirepass "), "+OK\r\n");
    done(d);
    /* the slow log holds no secret */
    const char *slow = run(c, "SLOWLOG GET 100");
    assert_null(strstr(slow, "hunter2"));
    assert_null(strstr(slow, "insp\r\n"));
    assert_null(strstr(slow, "s3cret"));
    assert_non_null(strstr(slow, "(redacted)"));
    /* CONFIG GET never shows it */
    assert_string_equal(run(c, "CONFIG SET requirepass p4ss"), "+OK\r\n");
    assert_null(strstr(run(c, "CONFIG GET requirepass"), "p4ss"));
    assert_string_equal(run(c, "AUTH p4ss"), "+OK\r\n");
    assert_string_equal(run(c, "CONFIG SET requirepass "), "+OK\r\n");
    done(c);
}

static void test_rename_command(void **state)
{
    struct client *c = fake();
    assert_string_equal(run(c, "flushall"), "-ERR unknown command 'flushall', with args beginning with: \r\n");
    assert_string_equal(run(c, "DEBUG HELP"), "-ERR unknown command 'DEBUG', with args beginning with: 'HELP' \r\n");
    assert_string_equal(run(c, "SECRET-DEBUG SET-ACTIVE-EXPIRE 1"), "+OK\r\n");
    char err[128];
    assert_int_equal(cmd_rename_add("get", "a|b", err, sizeof err), -1);
    done(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_user),   cmocka_unit_test(test_config_users),
        cmocka_unit_test(test_setuser_rules),  cmocka_unit_test(test_getuser_list),
        cmocka_unit_test(test_categories),     cmocka_unit_test(test_auth_errors_and_reset),
        cmocka_unit_test(test_rename_command),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
