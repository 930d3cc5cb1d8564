/* test_config.c: config.c against a sample table with every option type:
 * defaults, the file syntax (quotes, escapes, errors with line numbers), the
 * command line, the environment, <name>-file secrets, CONFIG SET (immutable,
 * apply failures and rollback), CONFIG GET patterns and CONFIG REWRITE. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/config.h"
#include "base/err.h"
#include "base/num.h"

/* ---- the sample table ---- */

static int64_t port, timeout_, hz, maxmemory, prio, neg;
static int appendonly, policy, loglevel, knob;
static char *dir, *requirepass;

struct save_rule {
    int64_t secs, changes;
};
static struct save_rule saves[16];
static int nsaves, save_calls, save_last_append;
static char events[32];

static int hz_apply_calls, dir_apply_calls, events_apply_calls;
static int64_t hz_applied;

static int save_set(const struct cfg_option *o, int argc, const char *const *argv, int append, char *err,
                    size_t errlen)
{
    struct save_rule tmp[16];
    int n = append ? nsaves : 0;
    memcpy(tmp, saves, sizeof tmp);
    if (argc % 2 || n + argc / 2 > 16)
        goto bad;
    for (int i = 0; i < argc; i += 2, n++) {
        if (num_parse_i64(argv[i], strlen(argv[i]), &tmp[n].secs) < 0 || tmp[n].secs < 1 ||
            num_parse_i64(argv[i + 1], strlen(argv[i + 1]), &tmp[n].changes) < 0 || tmp[n].changes < 0)
            goto bad;
    }
    memcpy(saves, tmp, sizeof tmp);
    nsaves = n;
    save_calls++;
    save_last_append = append;
    return 0;
bad:
    snprintf(err, errlen, "Invalid save parameters");
    return -1;
}

static void save_get(const struct cfg_option *o, struct buf *out)
{
    for (int i = 0; i < nsaves; i++)
        buf_printf(out, "%s%lld %lld", i ? " " : "", (long long)saves[i].secs, (long long)saves[i].changes);
}

/* A one-argument special: letters only; apply refuses 'X'. */
static int events_set(const struct cfg_option *o, int argc, const char *const *argv, int append, char *err,
                      size_t errlen)
{
    if (argc != 1 || strlen(argv[0]) >= sizeof events || strspn(argv[0], "KEAgx$X") != strlen(argv[0])) {
        snprintf(err, errlen, "Invalid event class character");
        return -1;
    }
    strcpy(events, argv[0]);
    return 0;
}

static void events_get(const struct cfg_option *o, struct buf *out) { buf_puts(out, events); }

static int events_apply(const struct cfg_option *o, char *err, size_t errlen)
{
    events_apply_calls++;
    if (strchr(events, 'X')) {
        snprintf(err, errlen, "X is not supported");
        return -1;
    }
    return 0;
}

static int hz_apply(const struct cfg_option *o, char *err, size_t errlen)
{
    hz_apply_calls++;
    if (hz == 13) {
        snprintf(err, errlen, "hz 13 is refused");
        return -1;
    }
    hz_applied = hz;
    return 0;
}

static const char *dir_seen; /* the value the last refused apply read */
static int dir_apply(const struct cfg_option *o, char *err, size_t errlen)
{
    dir_apply_calls++;
    if (!strcmp(dir, "/forbidden")) {
        dir_seen = dir;
        snprintf(err, errlen, "chdir failed");
        return -1;
    }
    return 0;
}

static const char *const policy_names[] = {"noeviction", "allkeys-lru", "volatile-lru", NULL};
static const char *const loglevel_names[] = {"debug", "verbose", "notice", "warning", NULL};

static const struct cfg_option table[] = {
    {"port", NULL, CFG_INT, CFG_IMMUTABLE, &port, "6379", 0, 65535, NULL, NULL, NULL, NULL},
    {"timeout", NULL, CFG_INT, 0, &timeout_, "0", 0, INT32_MAX, NULL, NULL, NULL, NULL},
    {"hz", NULL, CFG_INT, 0, &hz, "10", 1, 500, NULL, NULL, NULL, hz_apply},
    {"maxmemory", NULL, CFG_MEMORY, 0, &maxmemory, "0", 0, INT64_MAX, NULL, NULL, NULL, NULL},
    {"appendonly", NULL, CFG_BOOL, 0, &appendonly, "no", 0, 0, NULL, NULL, NULL, NULL},
    {"maxmemory-policy", NULL, CFG_ENUM, 0, &policy, "noeviction", 0, 0, policy_names, NULL, NULL, NULL},
    {"loglevel", NULL, CFG_ENUM, 0, &loglevel, "notice", 0, 0, loglevel_names, NULL, NULL, NULL},
    {"dir", NULL, CFG_STRING, 0, &dir, "./", 0, 0, NULL, NULL, NULL, dir_apply},
    {"requirepass", NULL, CFG_STRING, CFG_SECRET | CFG_FILE_OK, &requirepass, "", 0, 0, NULL, NULL, NULL, NULL},
    {"replica-priority", "slave-priority", CFG_INT, 0, &prio, "100", 0, INT32_MAX, NULL, NULL, NULL, NULL},
    {"save", NULL, CFG_SPECIAL, CFG_MULTIARG, NULL, "3600 1 300 100 60 10000", 0, 0, NULL, save_set, save_get,
     NULL},
    {"notify-keyspace-events", NULL, CFG_SPECIAL, 0, NULL, "", 0, 0, NULL, events_set, events_get, events_apply},
    {"debug-knob", NULL, CFG_BOOL, CFG_HIDDEN, &knob, "no", 0, 0, NULL, NULL, NULL, NULL},
    {"negative-ok", NULL, CFG_INT, 0, &neg, "-5", -100, 100, NULL, NULL, NULL, NULL},
};
#define NOPT (sizeof table / sizeof table[0])

/* ---- helpers ---- */

static struct cfg *C;
static char err[1024];
static char tmpdir[PATH_MAX];

static int setup(void **state)
{
    C = cfg_new();
    cfg_register(C, table, NOPT);
    err[0] = '\0';
    if (cfg_defaults(C, err, sizeof err) < 0)
        fail_msg("defaults: %s", err);
    hz_apply_calls = dir_apply_calls = events_apply_calls = save_calls = 0;
    return 0;
}

static int teardown(void **state)
{
    cfg_free(C);
    C = NULL;
    assert_null(dir);
    assert_null(requirepass);
    return 0;
}

static const char *get(const char *name)
{
    static char out[1024];
    struct buf b = BUF_INIT;
    assert_int_equal(cfg_get(C, name, &b), 0);
    snprintf(out, sizeof out, "%s", b.p);
    buf_release(&b);
    return out;
}

static const char *tmp_path(const char *name)
{
    static char p[2][PATH_MAX + 64];
    static int k;
    k ^= 1;
    snprintf(p[k], sizeof p[k], "%s/%s", tmpdir, name);
    return p[k];
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static char *slurp(const char *path)
{
    static char text[8192];
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    return text;
}

static int load(const char *text)
{
    err[0] = '\0';
    return cfg_load_string(C, text, "config file /x/y.conf", err, sizeof err);
}

static void load_ok(const char *text)
{
    if (load(text) < 0)
        fail_msg("load failed: %s", err);
}

static void load_err(const char *text, const char *want)
{
    assert_int_equal(load(text), -1);
    assert_string_equal(err, want);
}

static int load_all(int argc, const char **argv, const char **env, char **conf)
{
    err[0] = '\0';
    return cfg_load_all(C, argc, (char **)argv, (char **)env, conf, err, sizeof err);
}

/* ---- defaults and lookup ---- */

static void test_defaults(void **state)
{
    assert_int_equal(port, 6379);
    assert_string_equal(get("port"), "6379");
    assert_string_equal(get("timeout"), "0");
    assert_string_equal(get("maxmemory"), "0");
    assert_string_equal(get("appendonly"), "no");
    assert_string_equal(get("maxmemory-policy"), "noeviction");
    assert_int_equal(loglevel, 2);
    assert_string_equal(get("dir"), "./");
    assert_string_equal(dir, "./");
    assert_non_null(requirepass);
    assert_string_equal(get("requirepass"), "");
    assert_string_equal(get("slave-priority"), "100");
    assert_string_equal(get("save"), "3600 1 300 100 60 10000");
    assert_string_equal(get("notify-keyspace-events"), "");
    assert_string_equal(get("negative-ok"), "-5");
    assert_ptr_equal(cfg_find(C, "PORT"), &table[0]);
    assert_ptr_equal(cfg_find(C, "Slave-Priority"), &table[9]);
    assert_null(cfg_find(C, "nope"));
    struct buf b = BUF_INIT;
    assert_int_equal(cfg_get(C, "nope", &b), -1);
    buf_release(&b);
}

static void test_bad_default(void **state)
{
    static int64_t x;
    static const struct cfg_option bad[] = {
        {"bad", NULL, CFG_INT, 0, &x, "12x", 0, 100, NULL, NULL, NULL, NULL},
    };
    struct cfg *c = cfg_new();
    cfg_register(c, bad, 1);
    assert_int_equal(cfg_defaults(c, err, sizeof err), -1);
    assert_string_equal(err, "default of 'bad': argument couldn't be parsed into an integer");
    cfg_free(c);
}

/* ---- the line syntax ---- */

static void check_split(const char *line, int want, ...)
{
    char **argv;
    int argc = cfg_split_line(line, &argv);
    assert_int_equal(argc, want);
    if (argc < 0)
        return;
    va_list ap;
    va_start(ap, want);
    for (int i = 0; i < argc; i++)
        assert_string_equal(argv[i], va_arg(ap, const char *));
    va_end(ap);
    assert_null(argv[argc]);
    cfg_split_free(argc, argv);
}

static void test_split_line(void **state)
{
    check_split("", 0);
    check_split(" \t  ", 0);
    check_split("set a b", 3, "set", "a", "b");
    check_split("  a \t b  ", 2, "a", "b");
    check_split("\"a b\" c", 2, "a b", "c");
    check_split("\"\\n\\r\\t\\b\\a\\\\\\\"\"", 1, "\n\r\t\b\a\\\"");
    check_split("\"\\x41\\x6a\\x7E\"", 1, "Aj~");
    check_split("\"\\x4\"", 1, "x4"); /* not two hex digits: \x is just x */
    check_split("\"\\xZZ\"", 1, "xZZ");
    check_split("\"\\q\"", 1, "q");
    check_split("'a\\'b'", 1, "a'b");
    check_split("'a\\nb\\\\x'", 1, "a\\nb\\\\x"); /* no other escape in '...' */
    check_split("'a\\\\'", -1); /* \\' is a backslash and an escaped quote: unterminated */
    check_split("'a\"b'", 1, "a\"b");
    check_split("a\"b c\"", 1, "ab c");
    check_split("\"\"", 1, "");
    check_split("'' x", 2, "", "x");
    check_split("\"a\"\tb", 2, "a", "b");
    check_split("a\\ b", 2, "a\\", "b");
    check_split("\"a\"b", -1);
    check_split("'a'b", -1);
    check_split("\"abc", -1);
    check_split("'abc", -1);
    check_split("\"a\\\"", -1);
    check_split("x \"unterminated", -1);
}

/* ---- the file ---- */

static void test_file_parse(void **state)
{
    load_ok("# comment\n"
            "\n"
            "   # indented comment\n"
            "PORT 7000\r\n"
            "MaxMemory 1gb\n"
            "appendonly YES\n"
            "maxmemory-policy ALLKEYS-LRU\n"
            "dir \"/var/lib/obentchi data\"\n"
            "requirepass 'p\\'w d'\n"
            "slave-priority 5\n"
            "save 900 1\n"
            "save 300 10\n"
            "notify-keyspace-events KEA\n"
            "\t  hz 20   \n"
            "negative-ok -1\n"
            "timeout 1\n"
            "\v\f\n"
            "timeout 2");
    assert_int_equal(port, 7000);
    assert_int_equal(maxmemory, 1073741824);
    assert_string_equal(get("maxmemory"), "1073741824");
    assert_int_equal(appendonly, 1);
    assert_int_equal(policy, 1);
    assert_string_equal(dir, "/var/lib/obentchi data");
    assert_string_equal(requirepass, "p'w d");
    assert_int_equal(prio, 5);
    assert_string_equal(get("save"), "900 1 300 10");
    assert_int_equal(save_calls, 2);
    assert_int_equal(save_last_append, 1);
    assert_string_equal(events, "KEA");
    assert_int_equal(hz, 20);
    assert_int_equal(neg, -1);
    assert_int_equal(timeout_, 2); /* the last one wins */
    assert_int_equal(hz_apply_calls, 0); /* apply is for CONFIG SET only */

    /* A new source replaces the list instead of appending to it. */
    load_ok("save 60 10000\n");
    assert_string_equal(get("save"), "60 10000");
    assert_int_equal(save_last_append, 0);
    load_ok("save \"\"\n");
    assert_string_equal(get("save"), "");
    load_ok("save \"900 1 300 10\"\n"); /* one argument is split, as Redis does */
    assert_string_equal(get("save"), "900 1 300 10");
    load_ok("save\n");
    assert_int_equal(nsaves, 0);
}

static void test_file_errors(void **state)
{
    load_err("port 6379\nfoo bar\n", "config file /x/y.conf line 2: unknown option 'foo'");
    load_err("port 70000", "config file /x/y.conf line 1: port: argument must be between 0 and 65535 inclusive");
    load_err("port abc", "config file /x/y.conf line 1: port: argument couldn't be parsed into an integer");
    load_err("port 01", "config file /x/y.conf line 1: port: argument couldn't be parsed into an integer");
    load_err("port 1 2", "config file /x/y.conf line 1: port: wrong number of arguments");
    load_err("port", "config file /x/y.conf line 1: port: wrong number of arguments");
    load_err("port 6379 # comment", "config file /x/y.conf line 1: port: wrong number of arguments");
    load_err("appendonly maybe", "config file /x/y.conf line 1: appendonly: argument must be 'yes' or 'no'");
    load_err("maxmemory 1tb", "config file /x/y.conf line 1: maxmemory: argument must be a memory value");
    load_err("maxmemory -1",
             "config file /x/y.conf line 1: maxmemory: argument must be between 0 and 9223372036854775807 inclusive");
    load_err("MAXMEMORY-policy lfu", "config file /x/y.conf line 1: MAXMEMORY-policy: argument(s) must be one of "
                                     "the following: noeviction, allkeys-lru, volatile-lru");
    load_err("\n\ndir \"abc\n", "config file /x/y.conf line 3: unbalanced quotes");
    load_err("dir \"a\"b", "config file /x/y.conf line 1: unbalanced quotes");
    load_err("save 900", "config file /x/y.conf line 1: save: Invalid save parameters");
    load_err("save \"900 'x\"", "config file /x/y.conf line 1: save: unbalanced quotes");
    load_err("include /etc/x.conf", "config file /x/y.conf line 1: unknown option 'include'");
    load_err("appendonly-file /x", "config file /x/y.conf line 1: unknown option 'appendonly-file'");
    /* Values never appear in messages: they may be secrets. */
    load_err("hz s3cr3t", "config file /x/y.conf line 1: hz: argument couldn't be parsed into an integer");
}

static void test_load_file(void **state)
{
    const char *p = tmp_path("a.conf");
    write_file(p, "port 7001\nhz 42\n");
    assert_int_equal(cfg_load_file(C, p, err, sizeof err), 0);
    assert_int_equal(port, 7001);
    assert_int_equal(hz, 42);

    write_file(p, "hz 42\nhz 0\n");
    assert_int_equal(cfg_load_file(C, p, err, sizeof err), -1);
    char want[PATH_MAX + 128];
    snprintf(want, sizeof want, "config file %s line 2: hz: argument must be between 1 and 500 inclusive", p);
    assert_string_equal(err, want);

    p = tmp_path("missing.conf");
    assert_int_equal(cfg_load_file(C, p, err, sizeof err), -1);
    snprintf(want, sizeof want, "can't open config file '%s': No such file or directory", p);
    assert_string_equal(err, want);
}

/* ---- command line and environment ---- */

static void test_argv(void **state)
{
    char cwd[PATH_MAX], want[PATH_MAX + 16], real[PATH_MAX];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(tmpdir), 0);
    write_file("b.conf", "port 7000\nhz 20\nsave 900 1\nrequirepass filepw\n");
    const char *argv[] = {"obentchi-server", "b.conf",   "--hz",     "30",       "--negative-ok", "-7",
                          "--save",          "60",       "5",        "--save",   "10",            "1",
                          "--maxmemory",     "2mb",      "--requirepass", "--dash-pass", "--appendonly yes",
                          "--MAXMEMORY-POLICY", "volatile-lru"};
    const char *env[] = {"OBENTCHI_HZ=25", "OBENTCHI_TIMEOUT=9", "PATH=/bin", NULL};
    char *conf = NULL;
    int rc = load_all(sizeof argv / sizeof argv[0], argv, env, &conf);
    assert_int_equal(chdir(cwd), 0);
    if (rc < 0)
        fail_msg("%s", err);
    assert_non_null(realpath(tmpdir, real));
    snprintf(want, sizeof want, "%s/b.conf", real);
    assert_string_equal(conf, want);
    xfree(conf);
    assert_int_equal(port, 7000);              /* file */
    assert_int_equal(timeout_, 9);             /* environment */
    assert_int_equal(hz, 30);                  /* command line beats environment beats file */
    assert_int_equal(neg, -7);                 /* a single dash is an argument */
    assert_string_equal(get("save"), "60 5 10 1"); /* replaces the file's list, then appends */
    assert_int_equal(maxmemory, 2 * 1024 * 1024);
    assert_string_equal(requirepass, "--dash-pass"); /* first argument taken whatever it looks like */
    assert_int_equal(appendonly, 1);           /* name and value in one token */
    assert_int_equal(policy, 2);
}

static void test_argv_lists(void **state)
{
    const char *a1[] = {"x", "--save", "--port", "1"};
    assert_int_equal(load_all(4, a1, NULL, NULL), 0);
    assert_int_equal(nsaves, 0);
    assert_int_equal(port, 1);
    const char *a2[] = {"x", "--hz", "5", "--save"};
    load_ok("save 900 1");
    assert_int_equal(load_all(4, a2, NULL, NULL), 0);
    assert_int_equal(nsaves, 0);
    const char *a3[] = {"x", "--save", "900 1 300 10", "--save", "60", "1"};
    assert_int_equal(load_all(6, a3, NULL, NULL), 0);
    assert_string_equal(get("save"), "900 1 300 10 60 1");
    const char *a6[] = {"x", "--save 900 1", "300", "10", "--hz", "9"}; /* Redis: later tokens join in */
    assert_int_equal(load_all(6, a6, NULL, NULL), 0);
    assert_string_equal(get("save"), "900 1 300 10");
    assert_int_equal(hz, 9);
    const char *a4[] = {"x", "--save", ""};
    assert_int_equal(load_all(3, a4, NULL, NULL), 0);
    assert_int_equal(nsaves, 0);
    char *conf = (char *)"untouched";
    const char *a5[] = {"x"};
    assert_int_equal(load_all(1, a5, NULL, &conf), 0);
    assert_null(conf);
}

static void argv_err(int argc, const char **argv, const char *want)
{
    char *conf = (char *)"untouched";
    assert_int_equal(load_all(argc, argv, NULL, &conf), -1);
    assert_string_equal(err, want);
    assert_string_equal(conf, "untouched");
}

static void test_argv_errors(void **state)
{
    argv_err(3, (const char *[]){"x", "--nope", "1"}, "command line: unknown option '--nope'");
    argv_err(3, (const char *[]){"x", "--port", "99999"},
             "command line: --port: argument must be between 0 and 65535 inclusive");
    argv_err(2, (const char *[]){"x", "--port"}, "command line: --port: wrong number of arguments");
    argv_err(4, (const char *[]){"x", "--hz", "5", "6"}, "command line: --hz: wrong number of arguments");
    argv_err(2, (const char *[]){"x", "--hz 5 6"}, "command line: --hz: wrong number of arguments");
    argv_err(2, (const char *[]){"x", "--"}, "command line: unknown option '--'");
    argv_err(2, (const char *[]){"x", "--dir \"a"}, "command line: argument 1: unbalanced quotes");

    const char *p = tmp_path("c.conf");
    write_file(p, "hz 7\n");
    char want[PATH_MAX + 128];
    argv_err(3, (const char *[]){"x", p, "extra"},
             "command line: argument 2 is not an option (options start with \"--\")");
    p = tmp_path("none.conf");
    snprintf(want, sizeof want, "can't open config file '%s': No such file or directory", p);
    argv_err(2, (const char *[]){"x", p}, want);
}

static void test_env(void **state)
{
    const char *argv[] = {"x"};
    const char *env[] = {"OBENTCHI_PORT=6380",
                         "OBENTCHI_MAXMEMORY=1gb",
                         "OBENTCHI_MAXMEMORY_POLICY=volatile-lru",
                         "OBENTCHI_SLAVE_PRIORITY=7",
                         "OBENTCHI_TEST_WHATEVER=1",
                         "HOME=/root",
                         "OBENTCHI_SAVE=900 1 300 10",
                         "OBENTCHI_DIR=a b",
                         "OBENTCHI_NEGATIVE_OK=-3",
                         NULL};
    assert_int_equal(load_all(1, argv, env, NULL), 0);
    assert_int_equal(port, 6380);
    assert_int_equal(maxmemory, 1LL << 30);
    assert_int_equal(policy, 2);
    assert_int_equal(prio, 7);
    assert_string_equal(get("save"), "900 1 300 10");
    assert_string_equal(dir, "a b");
    assert_int_equal(neg, -3);

    const char *e2[] = {"OBENTCHI_SAVE=", NULL};
    assert_int_equal(load_all(1, argv, e2, NULL), 0);
    assert_int_equal(nsaves, 0);

    const char *e3[] = {"OBENTCHI_MAXMEMROY=1", NULL};
    assert_int_equal(load_all(1, argv, e3, NULL), -1);
    assert_string_equal(err, "environment OBENTCHI_MAXMEMROY: unknown option 'maxmemroy'");
    const char *e4[] = {"OBENTCHI_PORT=x", NULL};
    assert_int_equal(load_all(1, argv, e4, NULL), -1);
    assert_string_equal(err, "environment OBENTCHI_PORT: argument couldn't be parsed into an integer");
    const char *e5[] = {"OBENTCHI_REPLICA_PRIORITY=1", "OBENTCHI_SLAVE_PRIORITY=2", NULL};
    assert_int_equal(load_all(1, argv, e5, NULL), -1);
    assert_string_equal(err, "environment OBENTCHI_SLAVE_PRIORITY: option 'replica-priority' is set by another "
                             "OBENTCHI_ variable too");
    const char *e6[] = {"OBENTCHI_=1", NULL};
    assert_int_equal(load_all(1, argv, e6, NULL), -1);
    assert_string_equal(err, "environment OBENTCHI_: unknown option ''");
}

/* ---- <name>-file ---- */

static void test_file_secret(void **state)
{
    const char *pw = tmp_path("pw");
    write_file(pw, "s3cret\nsecond line\n");
    char text[PATH_MAX + 64];
    snprintf(text, sizeof text, "requirepass-file %s\n", pw);
    load_ok(text);
    assert_string_equal(requirepass, "s3cret");
    assert_string_equal(get("requirepass"), "s3cret");

    write_file(pw, "crlf\r\n");
    const char *env[] = {NULL, NULL};
    char var[PATH_MAX + 64];
    snprintf(var, sizeof var, "OBENTCHI_REQUIREPASS_FILE=%s", pw);
    env[0] = var;
    const char *a1[] = {"x"};
    assert_int_equal(load_all(1, a1, env, NULL), 0);
    assert_string_equal(requirepass, "crlf");

    write_file(pw, "no newline");
    const char *a2[] = {"x", "--requirepass-file", pw};
    assert_int_equal(load_all(3, a2, NULL, NULL), 0);
    assert_string_equal(requirepass, "no newline");

    write_file(pw, "");
    load_ok(text);
    assert_string_equal(requirepass, "");

    load_err("requirepass-file /nonexistent/pw",
             "config file /x/y.conf line 1: requirepass-file: can't read '/nonexistent/pw': No such file or "
             "directory");
    load_err("requirepass-file", "config file /x/y.conf line 1: requirepass-file: wrong number of arguments");
    load_err("dir-file /x", "config file /x/y.conf line 1: unknown option 'dir-file'");
    assert_int_equal(cfg_set(C, "requirepass-file", pw, err, sizeof err), ERR_NOKEY);
}

/* ---- CONFIG SET ---- */

static int set(const char *name, const char *value)
{
    err[0] = '\0';
    return cfg_set(C, name, value, err, sizeof err);
}

static void set_err(const char *name, const char *value, int rc, const char *want)
{
    assert_int_equal(set(name, value), rc);
    assert_string_equal(err, want);
}

/* A thread that loaded a string option before a CONFIG SET (the Bot API
 * sender reading its URL, say) may still read it after: the replaced string
 * lives until cfg_free() (under ASan a freed one fails this test), the value
 * of a refused CONFIG SET too. */
static void test_set_string_outlives(void **state)
{
    (void)state;
    assert_int_equal(set("requirepass", "first-secret"), 0);
    const char *seen = requirepass;
    assert_int_equal(set("requirepass", "second-secret"), 0);
    assert_string_equal(requirepass, "second-secret");
    assert_string_equal(seen, "first-secret");
    const char *dir_before = dir;
    assert_int_equal(set("dir", "/forbidden"), ERR_CONFIG); /* applied, refused, undone */
    assert_string_equal(dir_seen, "/forbidden");
    assert_ptr_equal(dir, dir_before);
    assert_int_equal(set("requirepass", ""), 0);
    assert_string_equal(seen, "first-secret");
}

static void test_set(void **state)
{
    assert_int_equal(set("hz", "50"), 0);
    assert_int_equal(hz, 50);
    assert_int_equal(hz_apply_calls, 1);
    assert_int_equal(set("HZ", "50"), 0); /* unchanged: not applied again */
    assert_int_equal(hz_apply_calls, 1);
    assert_int_equal(set("maxmemory", "1gb"), 0);
    assert_string_equal(get("maxmemory"), "1073741824");
    assert_int_equal(set("appendonly", "yes"), 0);
    assert_int_equal(appendonly, 1);
    assert_int_equal(set("maxmemory-policy", "allkeys-lru"), 0);
    assert_string_equal(get("maxmemory-policy"), "allkeys-lru");
    assert_int_equal(set("dir", "/data"), 0);
    assert_string_equal(dir, "/data");
    assert_int_equal(set("slave-priority", "3"), 0);
    assert_int_equal(prio, 3);
    assert_int_equal(set("save", "900 1 300 10"), 0);
    assert_int_equal(nsaves, 2);
    assert_int_equal(save_last_append, 0);
    assert_int_equal(set("save", ""), 0);
    assert_int_equal(nsaves, 0);
    assert_int_equal(set("requirepass", "new secret"), 0);
    assert_string_equal(requirepass, "new secret");
    assert_int_equal(set("negative-ok", "-100"), 0);
    assert_int_equal(neg, -100);

    set_err("nope", "1", ERR_NOKEY, "Unknown option or number of arguments for CONFIG SET - 'nope'");
    set_err("port", "1", ERR_CONFIG, "can't set immutable config");
    assert_int_equal(port, 6379);
    set_err("hz", "abc", ERR_CONFIG, "argument couldn't be parsed into an integer");
    set_err("hz", "0", ERR_CONFIG, "argument must be between 1 and 500 inclusive");
    set_err("appendonly", "1", ERR_CONFIG, "argument must be 'yes' or 'no'");
    set_err("maxmemory", "lots", ERR_CONFIG, "argument must be a memory value");
    set_err("save", "900", ERR_CONFIG, "Invalid save parameters");
    set_err("save", "900 1 ", ERR_CONFIG, "Invalid save parameters"); /* single-space split, as Redis */
    set_err("notify-keyspace-events", "KQ", ERR_CONFIG, "Invalid event class character");
    assert_int_equal(hz, 50);
    assert_int_equal(nsaves, 0);
}

static void test_set_rollback(void **state)
{
    assert_int_equal(set("hz", "50"), 0);
    hz_apply_calls = 0;
    set_err("hz", "13", ERR_CONFIG, "hz 13 is refused");
    assert_int_equal(hz, 50);
    assert_int_equal(hz_apply_calls, 2); /* the refused value, then the old one again */
    assert_int_equal(hz_applied, 50);

    assert_int_equal(set("dir", "/ok"), 0);
    set_err("dir", "/forbidden", ERR_CONFIG, "chdir failed");
    assert_string_equal(dir, "/ok");
    assert_string_equal(get("dir"), "/ok");

    assert_int_equal(set("notify-keyspace-events", "KEA"), 0);
    set_err("notify-keyspace-events", "KX", ERR_CONFIG, "X is not supported");
    assert_string_equal(events, "KEA");
    assert_int_equal(events_apply_calls, 3);
}

/* ---- CONFIG GET ---- */

static void collect(void *ud, const char *name, const char *value)
{
    buf_printf(ud, "%s=%s;", name, value);
}

static void check_get(const char *pattern, const char *want)
{
    struct buf b = BUF_INIT;
    buf_puts(&b, "");
    cfg_get_matching(C, pattern, collect, &b);
    assert_string_equal(b.p, want);
    buf_release(&b);
}

static void test_get_matching(void **state)
{
    assert_int_equal(set("requirepass", "hidden"), 0);
    check_get("*", "port=6379;timeout=0;hz=10;maxmemory=0;appendonly=no;maxmemory-policy=noeviction;"
                   "loglevel=notice;dir=./;requirepass=;replica-priority=100;slave-priority=100;"
                   "save=3600 1 300 100 60 10000;notify-keyspace-events=;negative-ok=-5;");
    check_get("max*", "maxmemory=0;maxmemory-policy=noeviction;");
    check_get("MAXMEMORY", "maxmemory=0;");
    check_get("debug-knob", "debug-knob=no;");
    check_get("debug-*", "");
    check_get("slave*", "slave-priority=100;");
    check_get("slaveof", "");
    check_get("*priority", "replica-priority=100;slave-priority=100;");
    check_get("requirepass", "requirepass=;");
    check_get("[mp]o*", "port=6379;");
    check_get("h?", "hz=10;");
    check_get("nomatch", "");
    check_get("po\\rt", "");
}

/* ---- CONFIG REWRITE ---- */

static char *snapshot(void)
{
    struct buf b = BUF_INIT;
    for (size_t i = 0; i < NOPT; i++) {
        buf_printf(&b, "%s=", table[i].name);
        cfg_get(C, table[i].name, &b);
        buf_putc(&b, '\n');
    }
    return buf_detach(&b, NULL);
}

/* Loads path in a fresh registry and checks every value against `before`. */
static void check_reload(const char *path, const char *before)
{
    cfg_free(C);
    setup(NULL);
    const char *argv[] = {"x", path};
    if (load_all(2, argv, NULL, NULL) < 0)
        fail_msg("reload: %s", err);
    char *after = snapshot();
    assert_string_equal(after, before);
    xfree(after);
}

static void test_rewrite(void **state)
{
    const char *pw = tmp_path("rw-pw");
    write_file(pw, "filepw\n");
    const char *p = tmp_path("rw.conf");
    char text[2048], want[4096];
    snprintf(text, sizeof text,
             "# Obentchi config\n"
             "port 7000\n"
             "\n"
             "# memory\n"
             "maxmemory 100mb\n"
             "slave-priority 50\n"
             "save 900 1\n"
             "save 300 10\n"
             "\n"
             "hz 20\n"
             "hz 30\n"
             "requirepass-file %s\n"
             "  # trailing comment\n",
             pw);
    write_file(p, text);
    chmod(p, 0640);
    const char *argv[] = {"x", p};
    assert_int_equal(load_all(2, argv, NULL, NULL), 0);
    assert_string_equal(requirepass, "filepw");
    assert_int_equal(set("maxmemory", "2gb"), 0);
    assert_int_equal(set("appendonly", "yes"), 0);
    assert_int_equal(set("dir", "/data dir"), 0);
    assert_int_equal(set("hz", "40"), 0);
    assert_int_equal(set("save", "60 5"), 0);
    assert_int_equal(set("timeout", "0"), 0); /* the default: stays out of the file */
    assert_int_equal(cfg_rewrite(C, p, err, sizeof err), 0);
    snprintf(want, sizeof want,
             "# Obentchi config\n"
             "port 7000\n"
             "\n"
             "# memory\n"
             "maxmemory 2gb\n"
             "replica-priority 50\n"
             "save 60 5\n"
             "\n"
             "hz 40\n"
             "\n"
             "requirepass-file \"%s\"\n"
             "# trailing comment\n"
             "# Generated by CONFIG REWRITE\n"
             "appendonly yes\n"
             "dir \"/data dir\"\n",
             pw);
    assert_string_equal(slurp(p), want);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);

    /* A second rewrite changes nothing. */
    assert_int_equal(cfg_rewrite(C, p, err, sizeof err), 0);
    assert_string_equal(slurp(p), want);

    char *before = snapshot();
    check_reload(p, before);
    xfree(before);

    /* A secret changed by CONFIG SET is written in place of the -file line;
     * awkward strings, memory units, lists and specials read back the same. */
    assert_int_equal(set("requirepass", "new \"pw\"\\"), 0);
    assert_int_equal(set("dir", "a\tb\nc\x01"), 0);
    assert_int_equal(set("maxmemory", "3072"), 0);
    assert_int_equal(set("save", ""), 0);
    assert_int_equal(set("notify-keyspace-events", "KEA"), 0);
    assert_int_equal(set("maxmemory-policy", "volatile-lru"), 0);
    assert_int_equal(set("negative-ok", "-1"), 0);
    assert_int_equal(cfg_rewrite(C, p, err, sizeof err), 0);
    const char *now = slurp(p);
    assert_non_null(strstr(now, "\nrequirepass \"new \\\"pw\\\"\\\\\"\n"));
    assert_non_null(strstr(now, "\ndir \"a\\tb\\nc\\x01\"\n"));
    assert_non_null(strstr(now, "\nmaxmemory 3kb\n"));
    assert_non_null(strstr(now, "\nsave \"\"\n"));
    assert_non_null(strstr(now, "\nnotify-keyspace-events \"KEA\"\n"));
    assert_null(strstr(now, "-file"));
    before = snapshot();
    check_reload(p, before);
    xfree(before);
}

static void test_rewrite_new_and_unknown(void **state)
{
    const char *p = tmp_path("new.conf");
    unlink(p);
    assert_int_equal(set("hz", "99"), 0);
    assert_int_equal(cfg_rewrite(C, p, err, sizeof err), 0);
    assert_string_equal(slurp(p), "# Generated by CONFIG REWRITE\nhz 99\n");
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600); /* new files may hold secrets */

    /* A line nobody knows any more is kept as a comment, as Redis does. */
    write_file(p, "bogus-option 1\nport 6379\nhz 5 \"unbalanced\n");
    assert_int_equal(cfg_rewrite(C, p, err, sizeof err), 0);
    assert_string_equal(slurp(p), "# ??? bogus-option 1\nport 6379\n# ??? hz 5 \"unbalanced\n"
                                  "# Generated by CONFIG REWRITE\nhz 99\n");

    assert_int_equal(cfg_rewrite(C, "/nonexistent/dir/x.conf", err, sizeof err), -ENOENT);
    assert_string_equal(err, "Rewriting config file: No such file or directory");
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_config.XXXXXX");
    if (!mkdtemp(tmpdir))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
        cmocka_unit_test(test_bad_default),
        cmocka_unit_test(test_split_line),
        cmocka_unit_test_setup_teardown(test_file_parse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_argv, setup, teardown),
        cmocka_unit_test_setup_teardown(test_argv_lists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_argv_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_secret, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_string_outlives, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_rollback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_matching, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rewrite, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rewrite_new_and_unknown, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        rc = rc ? rc : 1;
    return rc;
}
