"""Lazy and active expiry."""
import time

from conftest import parse_info, parse_kv, wait_for


def stats(c):
    return c.info("stats")


def test_lazy_expiry_on_access(r, x):
    base = stats(r)["expired_keys"]
    r.set("k", "v", px=50)
    r.set("keep", "v", ex=1000)
    assert r.get("k") == b"v"
    time.sleep(0.12)
    assert x.call("GET", "k") == b"$-1\r\n"
    assert x.call("EXISTS", "k") == b":0\r\n"
    assert x.call("TTL", "k") == b":-2\r\n"
    assert r.get("keep") == b"v"
    assert stats(r)["expired_keys"] >= base + 1


def test_expired_key_invisible_to_every_command(r, x):
    r.set("k", "5", px=30)
    r.set("n", "1", px=30)
    time.sleep(0.08)
    assert x.call("STRLEN", "k") == b":0\r\n"
    assert x.call("INCR", "k") == b":1\r\n"  # starts from nothing
    assert r.ttl("k") == -1
    assert x.call("SETNX", "n", "new") == b":1\r\n"
    r.set("a", "x", px=30)
    time.sleep(0.08)
    assert x.call("APPEND", "a", "y") == b":1\r\n"
    r.set("b", "x", px=30)
    time.sleep(0.08)
    assert x.err("RENAME", "b", "c") == "ERR no such key"
    assert x.call("MGET", "b", "a") == b"*2\r\n$-1\r\n$1\r\ny\r\n"


def test_active_expiry_reclaims_untouched_keys(r):
    """Keys with a short TTL that nobody touches are reclaimed by the server
    on its own: DBSIZE drops and expired_keys rises within a bounded wait."""
    base = stats(r)["expired_keys"]
    n = 2000
    p = r.pipeline(transaction=False)
    for i in range(n):
        p.set("vol:%d" % i, "x", px=100)
    for i in range(50):
        p.set("persist:%d" % i, "x")
    p.execute()
    info = r.info("keyspace")
    assert info["db0"]["keys"] in range(50, n + 51)
    wait_for(lambda: r.dbsize() == 50, timeout=15, interval=0.1, what="active expiry to reclaim %d keys" % n)
    assert stats(r)["expired_keys"] >= base + n
    assert r.info("keyspace")["db0"]["expires"] == 0
    assert r.mget(["persist:%d" % i for i in range(50)]) == [b"x"] * 50


def test_active_expiry_other_db(server, r):
    c5 = server.client(db=5)
    c5.flushdb()
    p = c5.pipeline(transaction=False)
    for i in range(300):
        p.set("k%d" % i, "x", px=50)
    p.execute()
    wait_for(lambda: "db5" not in r.info("keyspace"), timeout=15, interval=0.1, what="db5 to empty")


def test_keyspace_info_expires_and_avg_ttl(r, x):
    r.set("a", 1)
    r.set("b", 1, ex=1000)
    r.set("c", 1, ex=2000)

    def db0():
        return parse_kv(parse_info(x.call_parsed("INFO", "keyspace"))["keyspace"]["db0"])

    kv = db0()
    assert list(kv) == ["keys", "expires", "avg_ttl"]
    assert kv["keys"] == "3" and kv["expires"] == "2"
    # avg_ttl is an estimate in ms refreshed by the active cycle; bounded wait
    wait_for(lambda: int(db0()["avg_ttl"]) > 0, timeout=5, interval=0.1, what="avg_ttl > 0")
    assert 900_000 <= int(db0()["avg_ttl"]) <= 2_000_000


def test_persist_stops_expiry(r):
    r.set("k", "v", px=100)
    assert r.persist("k") is True
    time.sleep(0.3)
    assert r.get("k") == b"v"


def test_scan_with_expiring_keys_still_returns_stable_keys(r):
    p = r.pipeline(transaction=False)
    for i in range(500):
        p.set("stable:%d" % i, "x")
        p.set("fleeting:%d" % i, "x", px=20 + i % 50)
    p.execute()
    seen, cursor = set(), 0
    for _ in range(10000):
        cursor, keys = r.scan(cursor, count=20)
        seen.update(keys)
        if cursor == 0:
            break
    assert cursor == 0
    assert {("stable:%d" % i).encode() for i in range(500)} <= seen
