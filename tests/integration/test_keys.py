"""Key-space commands: DEL, EXISTS, TYPE, RENAME, COPY, expiry commands,
KEYS, SCAN, RANDOMKEY, DBSIZE, FLUSH*, SELECT, OBJECT, MEMORY USAGE."""
import time

from conftest import skip_unless_command

NOT_INT = "ERR value is not an integer or out of range"
SYNTAX = "ERR syntax error"


def test_del_unlink_exists_touch(r, x):
    r.mset({"a": 1, "b": 2, "c": 3})
    assert x.call("EXISTS", "a", "b", "nokey") == b":2\r\n"
    assert x.call("EXISTS", "a", "a", "a") == b":3\r\n"  # duplicates count each time
    assert x.call("TOUCH", "a", "b", "nokey") == b":2\r\n"
    assert x.call("DEL", "a", "nokey", "a") == b":1\r\n"
    assert x.call("UNLINK", "b", "c", "nokey") == b":2\r\n"
    assert x.call("EXISTS", "a", "b", "c") == b":0\r\n"
    assert x.call("DEL", "nokey") == b":0\r\n"
    for cmd in ("DEL", "UNLINK", "EXISTS", "TOUCH"):
        assert x.err(cmd) == "ERR wrong number of arguments for '%s' command" % cmd.lower()


def test_type(r, x):
    r.set("s", "v")
    r.set("n", 1)
    assert x.call("TYPE", "s") == b"+string\r\n"
    assert x.call("TYPE", "n") == b"+string\r\n"
    assert x.call("TYPE", "nokey") == b"+none\r\n"
    assert x.err("TYPE") == "ERR wrong number of arguments for 'type' command"


def test_rename(r, x):
    r.set("a", "1")
    r.expire("a", 100)
    assert x.call("RENAME", "a", "b") == b"+OK\r\n"
    assert r.exists("a") == 0
    assert r.get("b") == b"1"
    assert 98 <= r.ttl("b") <= 100  # the TTL travels with the value
    r.set("c", "3")
    assert x.call("RENAME", "c", "b") == b"+OK\r\n"  # overwrites, and drops b's TTL
    assert r.get("b") == b"3" and r.ttl("b") == -1
    assert x.err("RENAME", "nokey", "x") == "ERR no such key"
    assert x.call("RENAME", "b", "b") == b"+OK\r\n"
    assert r.get("b") == b"3"
    assert x.err("RENAME", "nokey", "nokey") == "ERR no such key"


def test_renamenx(r, x):
    r.set("a", "1")
    r.set("b", "2")
    assert x.call("RENAMENX", "a", "b") == b":0\r\n"
    assert r.mget("a", "b") == [b"1", b"2"]
    assert x.call("RENAMENX", "a", "c") == b":1\r\n"
    assert r.mget("a", "c") == [None, b"1"]
    assert x.err("RENAMENX", "nokey", "d") == "ERR no such key"
    assert x.call("RENAMENX", "c", "c") == b":0\r\n"


def test_copy(server, r, x):
    r.set("src", "v")
    r.expire("src", 100)
    assert x.call("COPY", "src", "dst") == b":1\r\n"
    assert r.get("dst") == b"v" and 98 <= r.ttl("dst") <= 100
    r.set("src", "w")
    assert r.get("dst") == b"v"  # a real copy
    assert x.call("COPY", "src", "dst") == b":0\r\n"
    assert x.call("COPY", "src", "dst", "REPLACE") == b":1\r\n"
    assert r.get("dst") == b"w"
    assert x.call("COPY", "nokey", "dst2") == b":0\r\n"
    assert x.err("COPY", "src", "src") == "ERR source and destination objects are the same"
    assert x.call("COPY", "src", "src", "DB", "1") == b":1\r\n"
    assert server.client(db=1).get("src") == b"w"
    assert x.err("COPY", "src", "x", "DB", "16") == "ERR DB index is out of range"
    assert x.err("COPY", "src", "x", "DB", "-1") == "ERR DB index is out of range"
    assert x.err("COPY", "src", "x", "DB", "abc") == NOT_INT
    assert x.err("COPY", "src", "x", "FOO") == SYNTAX


def test_expire_family(r, x):
    r.set("k", "v")
    assert x.call("EXPIRE", "k", "100") == b":1\r\n"
    assert 98 <= r.ttl("k") <= 100
    assert x.call("PEXPIRE", "k", "50000") == b":1\r\n"
    assert 48000 <= r.pttl("k") <= 50000
    now = int(time.time())
    assert x.call("EXPIREAT", "k", now + 300) == b":1\r\n"
    assert x.call("EXPIRETIME", "k") == b":%d\r\n" % (now + 300)
    assert x.call("PEXPIRETIME", "k") == b":%d\r\n" % ((now + 300) * 1000)
    assert x.call("PEXPIREAT", "k", (now + 400) * 1000 + 123) == b":1\r\n"
    assert x.call("PEXPIRETIME", "k") == b":%d\r\n" % ((now + 400) * 1000 + 123)
    assert x.call("EXPIRETIME", "k") == b":%d\r\n" % (now + 400)
    assert x.call("EXPIRE", "nokey", "100") == b":0\r\n"
    assert x.call("PEXPIREAT", "nokey", "100") == b":0\r\n"
    assert x.err("EXPIRE", "k", "abc") == NOT_INT
    assert x.err("EXPIRE", "k", "10", "FOO") == "ERR Unsupported option FOO"
    assert x.err("EXPIRE", "k") == "ERR wrong number of arguments for 'expire' command"


def test_expire_overflow(r, x):
    r.set("k", "v")
    assert x.err("EXPIRE", "k", "9223372036854775807") == "ERR invalid expire time in 'expire' command"
    assert x.err("PEXPIRE", "k", "9223372036854775807") == "ERR invalid expire time in 'pexpire' command"
    assert x.err("EXPIREAT", "k", "9223372036854775807") == "ERR invalid expire time in 'expireat' command"
    assert r.ttl("k") == -1


def test_expire_in_past_deletes(r, x):
    for cmd, arg in (("EXPIRE", "-1"), ("EXPIRE", "0"), ("PEXPIRE", "0"), ("EXPIREAT", "1"),
                     ("PEXPIREAT", "1")):
        r.set("k", "v")
        assert x.call(cmd, "k", arg) == b":1\r\n", cmd
        assert r.exists("k") == 0, cmd


def test_expire_nx_xx_gt_lt(r, x):
    r.set("k", "v")
    # no TTL yet
    assert x.call("EXPIRE", "k", "100", "XX") == b":0\r\n"
    assert x.call("EXPIRE", "k", "100", "GT") == b":0\r\n"  # no TTL counts as infinite
    assert r.ttl("k") == -1
    assert x.call("EXPIRE", "k", "100", "NX") == b":1\r\n"
    assert x.call("EXPIRE", "k", "200", "NX") == b":0\r\n"
    assert x.call("EXPIRE", "k", "200", "XX") == b":1\r\n"
    assert 198 <= r.ttl("k") <= 200
    assert x.call("EXPIRE", "k", "100", "GT") == b":0\r\n"
    assert x.call("EXPIRE", "k", "300", "GT") == b":1\r\n"
    assert x.call("EXPIRE", "k", "400", "LT") == b":0\r\n"
    assert x.call("EXPIRE", "k", "50", "LT") == b":1\r\n"
    assert 48 <= r.ttl("k") <= 50
    assert x.call("EXPIRE", "k", "60", "xx", "gt") == b":1\r\n"  # XX with GT is allowed
    r.persist("k")
    assert x.call("PEXPIRE", "k", "100000", "LT") == b":1\r\n"  # infinite > anything
    assert x.call("PEXPIREAT", "k", int(time.time() * 1000) + 500000, "GT") == b":1\r\n"
    assert x.call("EXPIREAT", "k", int(time.time()) + 100, "LT") == b":1\r\n"
    for combo in (["NX", "XX"], ["NX", "GT"], ["NX", "LT"]):
        assert x.err("EXPIRE", "k", "10", *combo) == \
            "ERR NX and XX, GT or LT options at the same time are not compatible", combo
    assert x.err("EXPIRE", "k", "10", "GT", "LT") == "ERR GT and LT options at the same time are not compatible"
    assert x.err("PEXPIRE", "k", "10", "GT", "LT") == "ERR GT and LT options at the same time are not compatible"


def test_ttl_pttl_persist(r, x):
    assert x.call("TTL", "nokey") == b":-2\r\n"
    assert x.call("PTTL", "nokey") == b":-2\r\n"
    assert x.call("EXPIRETIME", "nokey") == b":-2\r\n"
    assert x.call("PEXPIRETIME", "nokey") == b":-2\r\n"
    r.set("k", "v")
    assert x.call("TTL", "k") == b":-1\r\n"
    assert x.call("PTTL", "k") == b":-1\r\n"
    assert x.call("EXPIRETIME", "k") == b":-1\r\n"
    assert x.call("PEXPIRETIME", "k") == b":-1\r\n"
    assert x.call("PERSIST", "k") == b":0\r\n"
    r.expire("k", 100)
    assert x.call("PERSIST", "k") == b":1\r\n"
    assert x.call("TTL", "k") == b":-1\r\n"
    assert x.call("PERSIST", "nokey") == b":0\r\n"
    r.pexpire("k", 1700)
    # TTL rounds to the nearest second (1.7 s left, less a few ms of test)
    assert x.call("TTL", "k") == b":2\r\n"


def test_keys_glob(r, x):
    names = ["hello", "hallo", "hxllo", "hllo", "heeeello", "hbllo", "h[llo", "h*llo", "other"]
    r.mset({n: 1 for n in names})

    def keys(p):
        return sorted(r.keys(p))

    assert keys("h?llo") == sorted([b"hello", b"hallo", b"hxllo", b"hbllo", b"h[llo", b"h*llo"])
    assert keys("h*llo") == sorted(n.encode() for n in names if n != "other")
    assert keys("h[ae]llo") == [b"hallo", b"hello"]
    assert keys("h[^e]llo") == sorted([b"hallo", b"hxllo", b"hbllo", b"h[llo", b"h*llo"])
    assert keys("h[a-b]llo") == [b"hallo", b"hbllo"]
    assert keys("h\\*llo") == [b"h*llo"]
    assert keys("h\\[llo") == [b"h[llo"]
    assert keys("*") == sorted(n.encode() for n in names)
    assert keys("nomatch*") == []
    assert x.call("KEYS", "nomatch") == b"*0\r\n"
    assert keys("OTHER") == []  # case-sensitive


def test_keys_skips_expired(r):
    r.set("live", 1)
    r.set("dead", 1, px=1)
    time.sleep(0.02)
    assert r.keys("*") == [b"live"]
    assert r.dbsize() in (1, 2)  # DBSIZE may still count a key not yet reclaimed


def test_scan_basic(r, x):
    assert x.call("SCAN", "0") == b"*2\r\n$1\r\n0\r\n*0\r\n"
    r.mset({"key:%d" % i: i for i in range(100)})
    r.mset({"other:%d" % i: i for i in range(20)})
    seen, cursor, calls = set(), "0", 0
    while True:
        cursor, keys = x.call_parsed("SCAN", cursor, "MATCH", "key:*", "COUNT", "10")
        calls += 1
        assert isinstance(cursor, bytes) and cursor.isdigit()
        seen.update(keys)
        if cursor == b"0":
            break
        assert calls < 1000
    assert seen == {("key:%d" % i).encode() for i in range(100)}
    assert x.err("SCAN", "abc") == "ERR invalid cursor"
    assert x.err("SCAN", "1.5") == "ERR invalid cursor"
    assert x.err("SCAN", "18446744073709551616") == "ERR invalid cursor"
    assert x.err("SCAN", "0", "COUNT", "0") == SYNTAX
    assert x.err("SCAN", "0", "COUNT", "abc") == NOT_INT
    assert x.err("SCAN", "0", "FOO") == SYNTAX
    assert x.err("SCAN", "0", "MATCH") == SYNTAX


def test_scan_type(r, x):
    r.mset({"s%d" % i: i for i in range(30)})
    got, cursor = set(), "0"
    for _ in range(1000):
        cursor, keys = x.call_parsed("SCAN", cursor, "TYPE", "string", "COUNT", "7")
        got.update(keys)
        if cursor == b"0":
            break
    assert len(got) == 30
    cursor, keys = "0", []
    for _ in range(1000):
        cursor, k = x.call_parsed("SCAN", cursor, "TYPE", "list")
        keys += k
        if cursor == b"0":
            break
    assert keys == []
    # an unknown type name is not an error in 7.0: it just matches nothing
    cursor, k = x.call_parsed("SCAN", "0", "TYPE", "nosuchtype", "COUNT", "1000")
    assert k == []


def test_scan_count_is_a_hint(r, x):
    r.mset({"k%d" % i: i for i in range(50)})
    cursor, keys = x.call_parsed("SCAN", "0", "COUNT", "1000")
    assert cursor == b"0" and len(keys) == 50


def test_randomkey_dbsize(r, x):
    assert x.call("RANDOMKEY") == b"$-1\r\n"
    assert x.call("DBSIZE") == b":0\r\n"
    r.mset({"a": 1, "b": 2, "c": 3})
    assert x.call("DBSIZE") == b":3\r\n"
    for _ in range(20):
        assert r.randomkey() in (b"a", b"b", b"c")
    assert x.err("DBSIZE", "x") == "ERR wrong number of arguments for 'dbsize' command"


def test_select_flushdb_flushall(server, r, x):
    assert x.call("SET", "k", "db0") == b"+OK\r\n"
    assert x.call("SELECT", "1") == b"+OK\r\n"
    assert x.call("GET", "k") == b"$-1\r\n"
    assert x.call("SET", "k", "db1") == b"+OK\r\n"
    assert x.call("SET", "k2", "db1") == b"+OK\r\n"
    assert x.call("DBSIZE") == b":2\r\n"
    assert x.call("SELECT", "15") == b"+OK\r\n"
    assert x.err("SELECT", "16") == "ERR DB index is out of range"
    assert x.err("SELECT", "-1") == "ERR DB index is out of range"
    assert x.err("SELECT", "abc") == NOT_INT
    assert x.call("SELECT", "1") == b"+OK\r\n"
    assert x.call("FLUSHDB") == b"+OK\r\n"
    assert x.call("DBSIZE") == b":0\r\n"
    assert r.get("k") == b"db0"  # db 0 untouched
    assert x.call("SET", "k", "db1") == b"+OK\r\n"
    assert x.call("FLUSHALL") == b"+OK\r\n"
    assert x.call("DBSIZE") == b":0\r\n"
    assert r.dbsize() == 0
    r.set("a", 1)
    assert x.call("FLUSHALL", "ASYNC") == b"+OK\r\n"
    assert r.dbsize() == 0
    r.set("a", 1)
    assert x.call("SELECT", "0") == b"+OK\r\n"
    assert x.call("FLUSHDB", "SYNC") == b"+OK\r\n"
    assert r.dbsize() == 0
    assert x.err("FLUSHDB", "FOO") == SYNTAX
    assert x.err("FLUSHALL", "FOO") == SYNTAX


def test_databases_option(make_server):
    srv = make_server(databases=4)
    x = srv.raw()
    assert x.call("SELECT", "3") == b"+OK\r\n"
    assert x.err("SELECT", "4") == "ERR DB index is out of range"
    assert x.call("CONFIG", "GET", "databases") == b"*2\r\n$9\r\ndatabases\r\n$1\r\n4\r\n"
    c = srv.client()
    c.set("a", 1)
    x.call("SET", "a", "3")
    assert c.get("a") == b"1"
    info = c.info("keyspace")
    assert info["db0"]["keys"] == 1 and info["db3"]["keys"] == 1


def test_keys_per_db(r, x):
    r.set("a", 1)
    x.call("SELECT", "2")
    x.call("SET", "b", "1")
    assert x.call_parsed("KEYS", "*") == [b"b"]
    assert r.keys("*") == [b"a"]


def test_object_encoding(r, x):
    r.set("i", "12345")
    r.set("neg", "-7")
    r.set("e", "hello")
    r.set("r", "x" * 45)
    r.set("e44", "x" * 44)
    assert x.call("OBJECT", "ENCODING", "i") == b"$3\r\nint\r\n"
    assert x.call("OBJECT", "ENCODING", "neg") == b"$3\r\nint\r\n"
    assert x.call("OBJECT", "ENCODING", "e") == b"$6\r\nembstr\r\n"
    assert x.call("OBJECT", "ENCODING", "e44") == b"$6\r\nembstr\r\n"
    assert x.call("OBJECT", "ENCODING", "r") == b"$3\r\nraw\r\n"
    assert x.call("OBJECT", "ENCODING", "nokey") == b"$-1\r\n"
    r.append("e", "!")  # an appended string is raw
    assert x.call("OBJECT", "ENCODING", "e") == b"$3\r\nraw\r\n"
    r.incr("i")
    assert x.call("OBJECT", "ENCODING", "i") == b"$3\r\nint\r\n"
    r.set("lead0", "0123")  # not a canonical integer
    assert x.call("OBJECT", "ENCODING", "lead0") == b"$6\r\nembstr\r\n"
    assert x.err("OBJECT", "FOO", "i") == "ERR unknown subcommand 'FOO'. Try OBJECT HELP."
    assert x.err("OBJECT", "ENCODING") == "ERR wrong number of arguments for 'object|encoding' command"


def test_memory_usage(r, x):
    r.set("small", "x")
    r.set("big", "x" * 10000)
    small = r.memory_usage("small")
    big = r.memory_usage("big")
    assert isinstance(small, int) and 0 < small < 200
    assert big >= 10000 and big < 20000
    assert x.call("MEMORY", "USAGE", "nokey") == b"$-1\r\n"
    assert r.execute_command("MEMORY", "USAGE", "big", "SAMPLES", "0") == big
    assert x.err("MEMORY", "USAGE") == "ERR wrong number of arguments for 'memory|usage' command"


def test_wrongtype_key_commands_still_work(r, x):
    skip_unless_command(x, "RPUSH", "l", "a")
    assert x.call("TYPE", "l") == b"+list\r\n"
    assert x.call("EXPIRE", "l", "100") == b":1\r\n"
    assert x.call("RENAME", "l", "l2") == b"+OK\r\n"
    assert x.call("COPY", "l2", "l3") == b":1\r\n"
    assert x.call("TYPE", "l3") == b"+list\r\n"
    assert x.call("DEL", "l2", "l3") == b":2\r\n"
