"""String commands: replies and error wording as redis-server 7.0 gives them."""
import time

import pytest

from conftest import skip_unless_command

NOT_INT = "ERR value is not an integer or out of range"
SYNTAX = "ERR syntax error"
WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"


def wrongtype_key(x, key=b"lst"):
    """Makes a non-string key; skips if the server has no list type."""
    skip_unless_command(x, "RPUSH", key, "a")
    return key


# ------------------------------------------------------------------ GET/SET


def test_get_set_basic(r, x):
    assert r.get("nokey") is None
    assert x.call("GET", "nokey") == b"$-1\r\n"
    assert x.call("SET", "k", "v") == b"+OK\r\n"
    assert x.call("GET", "k") == b"$1\r\nv\r\n"
    assert r.set("k", "v2") is True
    assert r.get("k") == b"v2"
    # binary-safe values and keys, including CRLF and NUL
    blob = bytes(range(256)) * 4
    r.set(b"bin\x00\r\nkey", blob)
    assert r.get(b"bin\x00\r\nkey") == blob
    assert r.set("empty", "") and r.get("empty") == b""
    assert x.call("GET", "empty") == b"$0\r\n\r\n"


def test_set_wrong_arity(x):
    assert x.err("SET", "k") == "ERR wrong number of arguments for 'set' command"
    assert x.err("GET") == "ERR wrong number of arguments for 'get' command"
    assert x.err("GET", "a", "b") == "ERR wrong number of arguments for 'get' command"


def test_set_ex_px(r, x):
    assert x.call("SET", "k", "v", "EX", "100") == b"+OK\r\n"
    assert 98 <= r.ttl("k") <= 100
    assert x.call("SET", "k", "v", "PX", "100000") == b"+OK\r\n"
    assert 98000 <= r.pttl("k") <= 100000
    assert x.call("SET", "k", "v", "ex", "50") == b"+OK\r\n"  # options are case-insensitive
    assert 48 <= r.ttl("k") <= 50
    # a plain SET drops the TTL
    r.set("k", "v")
    assert r.ttl("k") == -1


def test_set_exat_pxat(r, x):
    now = int(time.time())
    assert x.call("SET", "k", "v", "EXAT", now + 100) == b"+OK\r\n"
    assert 97 <= r.ttl("k") <= 100
    assert x.call("EXPIRETIME", "k") == b":%d\r\n" % (now + 100)
    nowms = int(time.time() * 1000)
    assert x.call("SET", "k", "v", "PXAT", nowms + 100000) == b"+OK\r\n"
    assert x.call("PEXPIRETIME", "k") == b":%d\r\n" % (nowms + 100000)
    # a time in the past: the key is set and gone at once
    assert x.call("SET", "k", "v", "EXAT", now - 10) == b"+OK\r\n"
    assert r.exists("k") == 0


@pytest.mark.parametrize("opt", ["EX", "PX", "EXAT", "PXAT"])
def test_set_invalid_expire(x, opt):
    assert x.err("SET", "k", "v", opt, "0") == "ERR invalid expire time in 'set' command"
    assert x.err("SET", "k", "v", opt, "-5") == "ERR invalid expire time in 'set' command"
    assert x.err("SET", "k", "v", opt, "abc") == NOT_INT
    assert x.err("SET", "k", "v", opt, "1.5") == NOT_INT
    assert x.err("SET", "k", "v", opt) == SYNTAX
    assert x.call("EXISTS", "k") == b":0\r\n"


def test_set_expire_overflow(x):
    assert x.err("SET", "k", "v", "EX", "9223372036854775807") == "ERR invalid expire time in 'set' command"
    assert x.err("SET", "k", "v", "PX", "9223372036854775807") == "ERR invalid expire time in 'set' command"
    assert x.err("SET", "k", "v", "EX", "9223372036854775808") == NOT_INT


def test_set_nx_xx(r, x):
    assert x.call("SET", "k", "v", "XX") == b"$-1\r\n"
    assert r.exists("k") == 0
    assert x.call("SET", "k", "v1", "NX") == b"+OK\r\n"
    assert x.call("SET", "k", "v2", "NX") == b"$-1\r\n"
    assert r.get("k") == b"v1"
    assert x.call("SET", "k", "v3", "XX") == b"+OK\r\n"
    assert r.get("k") == b"v3"
    assert x.err("SET", "k", "v", "NX", "XX") == SYNTAX
    assert r.get("k") == b"v3"


def test_set_conflicting_options(x):
    for args in (["EX", "10", "PX", "100"], ["EX", "10", "KEEPTTL"], ["PX", "10", "EXAT", "99999999999"],
                 ["KEEPTTL", "PXAT", "99999999999"], ["FOO"], ["NX", "NX", "XX"], ["GET", "FOO"]):
        assert x.err("SET", "k", "v", *args) == SYNTAX, args
    assert x.call("EXISTS", "k") == b":0\r\n"


def test_set_repeated_option_last_wins(r, x):
    # Redis accepts the same option twice; the last value counts.
    assert x.call("SET", "k", "v", "EX", "10", "EX", "200") == b"+OK\r\n"
    assert 198 <= r.ttl("k") <= 200
    assert x.call("SET", "k", "v2", "GET", "GET") == b"$1\r\nv\r\n"


def test_set_keepttl(r, x):
    r.set("k", "v", ex=100)
    assert x.call("SET", "k", "v2", "KEEPTTL") == b"+OK\r\n"
    assert 98 <= r.ttl("k") <= 100
    assert r.get("k") == b"v2"
    assert x.call("SET", "k", "v3") == b"+OK\r\n"
    assert r.ttl("k") == -1
    assert x.call("SET", "new", "v", "KEEPTTL") == b"+OK\r\n"
    assert r.ttl("new") == -1


def test_set_get_option(r, x):
    assert x.call("SET", "k", "v1", "GET") == b"$-1\r\n"
    assert x.call("SET", "k", "v2", "GET") == b"$2\r\nv1\r\n"
    assert r.get("k") == b"v2"
    assert x.call("SET", "k", "v3", "NX", "GET") == b"$2\r\nv2\r\n"
    assert r.get("k") == b"v2"  # NX prevented the write, GET still replied
    assert x.call("SET", "k", "v4", "XX", "GET", "EX", "100") == b"$2\r\nv2\r\n"
    assert r.get("k") == b"v4" and r.ttl("k") > 90
    assert x.call("SET", "nokey", "v", "XX", "GET") == b"$-1\r\n"
    assert r.exists("nokey") == 0


def test_set_get_wrongtype(r, x):
    key = wrongtype_key(x)
    assert x.err("SET", key, "v", "GET") == WRONGTYPE
    assert x.err("GET", key) == WRONGTYPE
    assert x.call("TYPE", key) == b"+list\r\n"
    # plain SET overwrites any type
    assert x.call("SET", key, "v") == b"+OK\r\n"
    assert x.call("TYPE", key) == b"+string\r\n"


def test_setnx(r, x):
    assert x.call("SETNX", "k", "a") == b":1\r\n"
    assert x.call("SETNX", "k", "b") == b":0\r\n"
    assert r.get("k") == b"a"
    assert x.err("SETNX", "k") == "ERR wrong number of arguments for 'setnx' command"


def test_setex_psetex(r, x):
    assert x.call("SETEX", "k", "100", "v") == b"+OK\r\n"
    assert r.get("k") == b"v" and 98 <= r.ttl("k") <= 100
    assert x.call("PSETEX", "p", "100000", "v") == b"+OK\r\n"
    assert 98000 <= r.pttl("p") <= 100000
    assert x.err("SETEX", "k", "0", "v") == "ERR invalid expire time in 'setex' command"
    assert x.err("SETEX", "k", "-1", "v") == "ERR invalid expire time in 'setex' command"
    assert x.err("PSETEX", "k", "0", "v") == "ERR invalid expire time in 'psetex' command"
    assert x.err("SETEX", "k", "x", "v") == NOT_INT
    assert x.err("SETEX", "k", "10") == "ERR wrong number of arguments for 'setex' command"


def test_getset(r, x):
    assert x.call("GETSET", "k", "a") == b"$-1\r\n"
    assert x.call("GETSET", "k", "b") == b"$1\r\na\r\n"
    r.expire("k", 100)
    assert x.call("GETSET", "k", "c") == b"$1\r\nb\r\n"
    assert r.ttl("k") == -1  # GETSET drops the TTL like SET


def test_getdel(r, x):
    assert x.call("GETDEL", "k") == b"$-1\r\n"
    r.set("k", "v")
    assert x.call("GETDEL", "k") == b"$1\r\nv\r\n"
    assert r.exists("k") == 0
    key = wrongtype_key(x)
    assert x.err("GETDEL", key) == WRONGTYPE


def test_getex(r, x):
    assert x.call("GETEX", "nokey") == b"$-1\r\n"
    assert x.call("GETEX", "nokey", "EX", "10") == b"$-1\r\n"
    r.set("k", "v")
    assert x.call("GETEX", "k") == b"$1\r\nv\r\n"
    assert r.ttl("k") == -1
    assert x.call("GETEX", "k", "EX", "100") == b"$1\r\nv\r\n"
    assert 98 <= r.ttl("k") <= 100
    assert x.call("GETEX", "k", "PX", "50000") == b"$1\r\nv\r\n"
    assert 48000 <= r.pttl("k") <= 50000
    now = int(time.time())
    assert x.call("GETEX", "k", "EXAT", now + 200) == b"$1\r\nv\r\n"
    assert r.execute_command("EXPIRETIME", "k") == now + 200
    assert x.call("GETEX", "k", "PXAT", now * 1000 + 300000) == b"$1\r\nv\r\n"
    assert r.execute_command("PEXPIRETIME", "k") == now * 1000 + 300000
    assert x.call("GETEX", "k", "PERSIST") == b"$1\r\nv\r\n"
    assert r.ttl("k") == -1
    assert x.err("GETEX", "k", "EX", "0") == "ERR invalid expire time in 'getex' command"
    assert x.err("GETEX", "k", "EX", "-1") == "ERR invalid expire time in 'getex' command"
    assert x.err("GETEX", "k", "EX", "abc") == NOT_INT
    assert x.err("GETEX", "k", "EX", "10", "PERSIST") == SYNTAX
    assert x.err("GETEX", "k", "EX", "10", "PX", "10") == SYNTAX
    assert x.err("GETEX", "k", "FOO") == SYNTAX
    assert x.err("GETEX", "k", "EX") == SYNTAX
    # an expire time in the past deletes the key and still returns the value
    assert x.call("GETEX", "k", "EXAT", "1") == b"$1\r\nv\r\n"
    assert r.exists("k") == 0


def test_mget_mset(r, x):
    assert x.call("MSET", "a", "1", "b", "2", "c", "3") == b"+OK\r\n"
    assert x.call("MGET", "a", "nokey", "c") == b"*3\r\n$1\r\n1\r\n$-1\r\n$1\r\n3\r\n"
    assert x.err("MSET", "a", "1", "b") == "ERR wrong number of arguments for 'mset' command"
    assert x.err("MSET") == "ERR wrong number of arguments for 'mset' command"
    assert x.err("MGET") == "ERR wrong number of arguments for 'mget' command"
    # a repeated key: the last value wins
    assert x.call("MSET", "d", "x", "d", "y") == b"+OK\r\n"
    assert r.get("d") == b"y"
    # MSET drops TTLs
    r.expire("a", 100)
    r.mset({"a": "9"})
    assert r.ttl("a") == -1


def test_mget_nonstring_is_nil(r, x):
    key = wrongtype_key(x)
    r.set("s", "v")
    assert x.call("MGET", "s", key) == b"*2\r\n$1\r\nv\r\n$-1\r\n"


def test_msetnx(r, x):
    assert x.call("MSETNX", "a", "1", "b", "2") == b":1\r\n"
    assert x.call("MSETNX", "b", "x", "c", "3") == b":0\r\n"
    assert r.mget("a", "b", "c") == [b"1", b"2", None]  # all or nothing
    assert x.err("MSETNX", "a", "1", "b") == "ERR wrong number of arguments for 'msetnx' command"
    assert x.call("MSETNX", "z", "1", "z", "2") == b":1\r\n"
    assert r.get("z") == b"2"


def test_incr_decr(r, x):
    assert x.call("INCR", "n") == b":1\r\n"
    assert x.call("INCRBY", "n", "10") == b":11\r\n"
    assert x.call("DECR", "n") == b":10\r\n"
    assert x.call("DECRBY", "n", "20") == b":-10\r\n"
    assert x.call("INCRBY", "n", "-5") == b":-15\r\n"
    assert r.get("n") == b"-15"
    assert x.call("DECR", "neg") == b":-1\r\n"
    r.set("s", "  12")
    assert x.err("INCR", "s") == NOT_INT
    for bad in ["abc", "1.5", "", "12a", " 1", "1 ", "+1", "01x", "99999999999999999999"]:
        r.set("s", bad)
        assert x.err("INCR", "s") == NOT_INT, bad
    assert x.err("INCRBY", "n", "x") == NOT_INT
    assert x.err("INCRBY", "n", "1.0") == NOT_INT
    assert x.err("DECRBY", "n", "") == NOT_INT
    # INCR keeps the TTL
    r.set("t", "5", ex=100)
    r.incr("t")
    assert r.ttl("t") > 90 and r.get("t") == b"6"


def test_incr_overflow(r, x):
    r.set("n", "9223372036854775807")
    assert x.err("INCR", "n") == "ERR increment or decrement would overflow"
    assert x.err("INCRBY", "n", "1") == "ERR increment or decrement would overflow"
    r.set("n", "-9223372036854775808")
    assert x.err("DECR", "n") == "ERR increment or decrement would overflow"
    assert r.get("n") == b"-9223372036854775808"
    r.set("m", "0")
    assert x.err("DECRBY", "m", "-9223372036854775808") == "ERR decrement would overflow"
    assert x.call("INCRBY", "m", "-9223372036854775808") == b":-9223372036854775808\r\n"


def test_incr_wrongtype(x):
    key = wrongtype_key(x)
    for cmd in (["INCR", key], ["INCRBY", key, "1"], ["DECR", key], ["DECRBY", key, "1"],
                ["INCRBYFLOAT", key, "1"], ["APPEND", key, "x"], ["STRLEN", key],
                ["GETRANGE", key, "0", "1"], ["SETRANGE", key, "0", "x"], ["GETSET", key, "x"],
                ["GETEX", key]):
        assert x.err(*cmd) == WRONGTYPE, cmd


def test_incrbyfloat(r, x):
    assert x.call("INCRBYFLOAT", "f", "10.5") == b"$4\r\n10.5\r\n"
    assert x.call("INCRBYFLOAT", "f", "0.1") == b"$4\r\n10.6\r\n"
    assert x.call("INCRBYFLOAT", "f", "-5") == b"$3\r\n5.6\r\n"
    r.set("e", "5.0e3")
    assert x.call("INCRBYFLOAT", "e", "2.0e2") == b"$4\r\n5200\r\n"
    r.set("i", "3")
    assert x.call("INCRBYFLOAT", "i", "1") == b"$1\r\n4\r\n"
    assert x.call("INCRBYFLOAT", "z", "-0.25") == b"$5\r\n-0.25\r\n"
    assert x.err("INCRBYFLOAT", "f", "abc") == "ERR value is not a valid float"
    r.set("s", "hello")
    assert x.err("INCRBYFLOAT", "s", "1") == "ERR value is not a valid float"
    r.set("big", "1e4932")
    assert x.err("INCRBYFLOAT", "big", "1e4932") == "ERR increment would produce NaN or Infinity"
    assert r.get("big") == b"1e4932"
    for bad in [" 1", "1 ", "1e", "nan", ""]:
        assert x.err("INCRBYFLOAT", "f", bad) == "ERR value is not a valid float", bad
    assert x.err("INCRBYFLOAT", "f", "inf") == "ERR increment would produce NaN or Infinity"
    # INCRBYFLOAT keeps the TTL
    r.set("t", "1", ex=100)
    r.incrbyfloat("t", 1.5)
    assert r.ttl("t") > 90 and r.get("t") == b"2.5"


def test_incrbyfloat_long_double_format(r, x):
    # Redis computes in long double and prints with 17 significant digits,
    # never in exponent form, trailing zeros dropped.
    r.set("a", "0.1")
    assert x.call("INCRBYFLOAT", "a", "0.2") == b"$3\r\n0.3\r\n"
    assert x.call("INCRBYFLOAT", "c", "1e20") == b"$21\r\n100000000000000000000\r\n"
    assert x.call("INCRBYFLOAT", "d", "3.0e-5") == b"$7\r\n0.00003\r\n"
    assert x.call("INCRBYFLOAT", "e", "1.23456789012345678901") == b"$19\r\n1.23456789012345679\r\n"
    assert x.call("INCRBYFLOAT", "g", "5e-320") == b"$1\r\n0\r\n"
    assert x.call("INCRBYFLOAT", "h", "0x10") == b"$2\r\n16\r\n"  # strtold takes hex
    # beyond double range but within long double: no error
    r.set("big", "1.7e308")
    v = r.incrbyfloat("big", "1.7e308")
    assert v == 3.4e308 or str(v) == "inf"  # redis-py's float() of the reply
    raw = r.get("big")
    assert len(raw) == 309 and raw.startswith(b"3400000000000000000")


def test_append_strlen(r, x):
    assert x.call("APPEND", "k", "Hello") == b":5\r\n"
    assert x.call("APPEND", "k", " World") == b":11\r\n"
    assert r.get("k") == b"Hello World"
    assert x.call("STRLEN", "k") == b":11\r\n"
    assert x.call("STRLEN", "nokey") == b":0\r\n"
    r.set("n", "12345")
    assert x.call("STRLEN", "n") == b":5\r\n"
    assert x.call("APPEND", "n", "6") == b":6\r\n"
    assert r.incr("n") == 123457
    r.set("t", "a", ex=100)
    r.append("t", "b")
    assert r.ttl("t") > 90


def test_getrange(r, x):
    r.set("k", "This is a string")
    assert x.call("GETRANGE", "k", "0", "3") == b"$4\r\nThis\r\n"
    assert x.call("GETRANGE", "k", "-3", "-1") == b"$3\r\ning\r\n"
    assert x.call("GETRANGE", "k", "0", "-1") == b"$16\r\nThis is a string\r\n"
    assert x.call("GETRANGE", "k", "10", "100") == b"$6\r\nstring\r\n"
    assert x.call("GETRANGE", "k", "100", "200") == b"$0\r\n\r\n"
    assert x.call("GETRANGE", "k", "5", "3") == b"$0\r\n\r\n"
    assert x.call("GETRANGE", "k", "-100", "2") == b"$3\r\nThi\r\n"
    assert x.call("GETRANGE", "nokey", "0", "-1") == b"$0\r\n\r\n"
    r.set("n", "1234")
    assert x.call("GETRANGE", "n", "1", "2") == b"$2\r\n23\r\n"
    assert x.err("GETRANGE", "k", "a", "1") == NOT_INT
    assert x.err("GETRANGE", "k", "0") == "ERR wrong number of arguments for 'getrange' command"


def test_setrange(r, x):
    r.set("k", "Hello World")
    assert x.call("SETRANGE", "k", "6", "Redis") == b":11\r\n"
    assert r.get("k") == b"Hello Redis"
    assert x.call("SETRANGE", "pad", "5", "x") == b":6\r\n"
    assert r.get("pad") == b"\x00\x00\x00\x00\x00x"
    assert x.call("SETRANGE", "none", "0", "") == b":0\r\n"
    assert r.exists("none") == 0
    assert x.call("SETRANGE", "k", "100", "") == b":11\r\n"
    assert r.get("k") == b"Hello Redis"
    assert x.err("SETRANGE", "k", "-1", "x") == "ERR offset is out of range"
    assert x.err("SETRANGE", "k", "x", "x") == NOT_INT
    assert x.err("SETRANGE", "k", "536870911", "xx") == \
        "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
    r.set("n", "123")
    assert x.call("SETRANGE", "n", "1", "9") == b":3\r\n"
    assert r.incr("n") == 194


def test_big_value(r):
    big = b"x" * (5 * 1024 * 1024)
    r.set("big", big)
    assert r.strlen("big") == len(big)
    assert r.get("big") == big
    r.append("big", "y")
    assert r.getrange("big", -2, -1) == b"xy"
