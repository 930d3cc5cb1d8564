"""Debian's python3-redis (4.3.4, RESP2) against the server: its command
helpers, pipelines of 10,000 commands, many threads on one pool."""
import threading
import time

import pytest
import redis


def test_version_is_debians():
    assert redis.__version__.startswith("4.")


def test_helpers_strings(r):
    assert r.set("k", "v", ex=100, nx=True) is True
    assert r.set("k", "v", nx=True) is None
    assert r.set("k", "w", xx=True, keepttl=True) is True
    assert 98 <= r.ttl("k") <= 100
    assert r.set("k", "z", get=True) == b"w"
    assert r.getex("k", px=50000) == b"z" and r.pttl("k") > 40000
    assert r.getex("k", persist=True) == b"z" and r.ttl("k") == -1
    assert r.getdel("k") == b"z" and r.exists("k") == 0
    assert r.setnx("n", 10) is True and r.setnx("n", 11) is False
    assert r.incr("n") == 11 and r.incrby("n", 5) == 16 and r.decr("n") == 15 and r.decrby("n", 5) == 10
    assert r.incrbyfloat("n", 0.5) == 10.5
    assert r.append("s", "ab") == 2 and r.strlen("s") == 2
    assert r.setrange("s", 1, "XY") == 3 and r.getrange("s", 0, -1) == b"aXY"
    assert r.mset({"a": 1, "b": 2}) is True
    assert r.msetnx({"b": 3, "c": 4}) is False
    assert r.mget("a", "b", "c") == [b"1", b"2", None]
    assert r.getset("a", "9") == b"1"
    assert r.setex("e", 100, "v") is True and r.psetex("pe", 100000, "v") is True


def test_helpers_keys(r):
    r.mset({"a": 1, "b": 2})
    assert r.expire("a", 100, nx=True) is True
    assert r.expire("a", 50, gt=True) is False
    assert r.expire("a", 50, lt=True) is True
    assert r.pexpire("b", 100000) is True
    assert r.persist("b") is True
    assert r.type("a") == b"string"
    assert r.rename("a", "a2") is True
    assert r.renamenx("a2", "b") is False
    assert r.copy("b", "b2") is True
    assert r.touch("b", "b2") == 2
    assert r.unlink("b2") == 1
    assert sorted(r.keys("*")) == [b"a2", b"b"]
    assert sorted(r.scan_iter(match="a*")) == [b"a2"]
    assert r.randomkey() in (b"a2", b"b")
    assert r.dbsize() == 2
    assert r.object("encoding", "b") == b"int"
    assert r.memory_usage("b") > 0
    assert r.delete("a2", "b") == 2
    assert r.flushdb() is True


def test_helpers_server(server, r):
    assert r.ping() is True
    assert r.echo("hi") == b"hi"
    t = r.time()
    assert isinstance(t, tuple) and abs(t[0] - time.time()) < 5
    info = r.info()
    assert info["redis_mode"] == "standalone" and info["role"] == "master"
    assert isinstance(info["connected_clients"], int)
    assert r.info("memory")["used_memory"] > 0
    assert r.config_get("maxmemory*")["maxmemory"] == "0"
    assert r.client_setname("pyclient") is True
    assert r.client_getname() == "pyclient"
    assert any(c["name"] == "pyclient" for c in r.client_list())
    assert isinstance(r.client_id(), int)
    assert r.client_info()["name"] == "pyclient"
    assert r.slowlog_len() >= 0
    assert isinstance(r.command_count(), int)
    assert r.execute_command("DEBUG", "SLEEP", "0") == b"OK"


def test_decode_responses(server, r):
    c = server.client(decode_responses=True)
    c.set("k", "héllo")
    assert c.get("k") == "héllo"
    assert c.mget("k", "nokey") == ["héllo", None]
    assert c.strlen("k") == 6


def test_errors_map_to_exceptions(server, r):
    r.set("s", "abc")
    with pytest.raises(redis.exceptions.ResponseError, match="^value is not an integer or out of range$"):
        r.incr("s")
    with pytest.raises(redis.exceptions.ResponseError, match="^unknown command 'NOSUCH'"):
        r.execute_command("NOSUCH", "x")
    with pytest.raises(redis.exceptions.ResponseError, match="^wrong number of arguments for 'get' command$"):
        r.execute_command("GET")


def test_pipeline_10000(r):
    n = 10_000
    p = r.pipeline(transaction=False)
    for i in range(n):
        p.set("pk:%d" % i, i)
    res = p.execute()
    assert res == [True] * n
    p = r.pipeline(transaction=False)
    for i in range(n):
        p.get("pk:%d" % i)
    assert p.execute() == [str(i).encode() for i in range(n)]
    p = r.pipeline(transaction=False)
    for i in range(n):
        p.incr("pctr")
    assert p.execute() == list(range(1, n + 1))
    assert r.dbsize() == n + 1


def test_pipeline_mixed_with_errors(r):
    r.set("s", "text")
    p = r.pipeline(transaction=False)
    p.set("a", 1)
    p.incr("s")
    p.get("a")
    p.execute_command("NOSUCH")
    p.mget("a", "nokey")
    p.exists("a", "s")
    res = p.execute(raise_on_error=False)
    assert res[0] is True
    assert isinstance(res[1], redis.exceptions.ResponseError)
    assert str(res[1]) == "value is not an integer or out of range"
    assert res[2] == b"1"
    assert isinstance(res[3], redis.exceptions.ResponseError)
    assert res[4] == [b"1", None]
    assert res[5] == 2
    p = r.pipeline(transaction=False)
    p.incr("s")
    p.set("after", 1)
    with pytest.raises(redis.exceptions.ResponseError):
        p.execute()
    assert r.get("after") == b"1"  # no transaction: the rest still ran


def test_threads_share_a_pool(server, r):
    c = server.client(max_connections=16)
    errors = []

    def work():
        try:
            for _ in range(500):
                c.incr("shared")
        except Exception as e:  # pragma: no cover
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert r.get("shared") == b"4000"


def test_big_values_roundtrip(r):
    for size in (0, 1, 1023, 1024, 16 * 1024, 64 * 1024 + 7, 1024 * 1024):
        v = bytes((i * 7) & 0xFF for i in range(size))
        r.set("v%d" % size, v)
        assert r.get("v%d" % size) == v


def test_monitor_helper(server, r):
    c = server.client()
    with c.monitor() as m:
        other = server.client()
        other.set("mon", "1")
        deadline = time.monotonic() + 5
        seen = None
        while time.monotonic() < deadline:
            cmd = m.next_command()
            if "mon" in cmd["command"]:
                seen = cmd
                break
        assert seen is not None
        assert seen["command"] == "SET mon 1"
        assert seen["db"] == 0
