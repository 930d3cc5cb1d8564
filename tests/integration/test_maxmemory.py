"""maxmemory and the eviction policies noeviction, allkeys-lru, volatile-lru,
volatile-ttl.  The limit is set relative to the server's own used_memory so
that the tests do not depend on its baseline."""
import time

import pytest
import redis

OOM = "OOM command not allowed when used memory > 'maxmemory'."
VALUE = b"v" * 1000


def used(c):
    return c.info("memory")["used_memory"]


def limit_above_baseline(c, policy, headroom=2 * 1024 * 1024):
    limit = used(c) + headroom
    assert c.config_set("maxmemory-policy", policy)
    assert c.config_set("maxmemory", str(limit))
    return limit


def state(c):
    """What a failed assertion here needs explained: the limit, the memory,
    the evictions and the keys left."""
    i = c.info("all")
    fields = ("used_memory", "maxmemory", "maxmemory_policy", "used_memory_overhead", "mem_clients_normal",
              "connected_clients", "evicted_keys", "rdb_bgsave_in_progress", "rdb_changes_since_last_save")
    return " ".join("%s=%s" % (f, i.get(f)) for f in fields) + " db0=%s" % i.get("db0")


def is_oom(res):
    # redis-py 4.3 (Debian 12) answers OOM as a plain ResponseError; later
    # versions have OutOfMemoryError, a subclass of it
    return isinstance(res, redis.exceptions.ResponseError) and str(res).startswith("OOM ")


def fill(c, prefix, n, ttl=None, batch=200):
    """Writes n keys of ~1KB in pipelines; returns how many failed with OOM.
    Any other error fails the test, with the server's memory state."""
    ooms = 0
    for start in range(0, n, batch):
        p = c.pipeline(transaction=False)
        for i in range(start, min(n, start + batch)):
            p.set("%s:%d" % (prefix, i), VALUE, ex=ttl)
        for i, res in enumerate(p.execute(raise_on_error=False)):
            if isinstance(res, Exception):
                assert is_oom(res), "SET %s:%d: %r; %s" % (prefix, start + i, res, state(c))
                ooms += 1
    return ooms


def test_noeviction_oom(make_server):
    srv = make_server()
    c = srv.client()
    x = srv.raw()
    assert c.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
    limit = limit_above_baseline(c, "noeviction")
    # fill until refused; bounded by count
    refused_at = None
    for i in range(20000):
        reply = x.call("SET", "k:%d" % i, VALUE)
        if reply != b"+OK\r\n":
            assert reply == b"-" + OOM.encode() + b"\r\n"
            refused_at = i
            break
    assert refused_at is not None, "never refused with maxmemory %d" % limit
    assert refused_at > 100  # 2MB of headroom holds more than 100 KB
    # reads and deletes still work; other growing writes are refused too
    assert x.call("GET", "k:0") == b"$1000\r\n" + VALUE + b"\r\n"
    assert x.err("APPEND", "k:0", "x") == OOM
    assert x.err("INCR", "counter") == OOM
    assert x.err("MSET", "a", "1", "b", "2") == OOM
    assert x.call("EXISTS", "k:0") == b":1\r\n"
    assert c.info("stats")["evicted_keys"] == 0
    assert c.dbsize() == refused_at
    assert x.call("DEL", "k:0") == b":1\r\n"
    # room again once the limit is lifted
    assert x.call("CONFIG", "SET", "maxmemory", "0") == b"+OK\r\n"
    assert x.call("SET", "after", "x") == b"+OK\r\n"


def test_maxmemory_on_command_line(make_server):
    srv = make_server(maxmemory="1mb", **{"maxmemory-policy": "noeviction"})
    c = srv.client()
    assert c.config_get("maxmemory") == {"maxmemory": "1048576"}
    x = srv.raw()
    # used_memory of any real server is already near or above 1MB: fill a bit
    for i in range(5000):
        reply = x.call("SET", "k:%d" % i, VALUE)
        if reply != b"+OK\r\n":
            assert reply == b"-" + OOM.encode() + b"\r\n"
            break
    else:
        pytest.fail("5MB written under maxmemory 1mb without OOM")


def test_allkeys_lru_evicts_and_keeps_hot_keys(make_server):
    """Cold keys written first, then (a clock tick later; Redis's LRU clock
    has 1s resolution) the hot keys are read and more keys are written: the
    evictions must fall on the old cold keys, not on the recently used."""
    srv = make_server()
    c = srv.client()
    limit = limit_above_baseline(c, "allkeys-lru", headroom=4 * 1024 * 1024)
    hot = ["hot:%d" % i for i in range(100)]
    c.mset({k: VALUE for k in hot})
    assert fill(c, "old", 2500) == 0, state(c)
    assert c.info("stats")["evicted_keys"] == 0
    time.sleep(1.2)
    assert all(v == VALUE for v in c.mget(hot))
    assert fill(c, "new", 2500) == 0, state(c)
    st = c.info("stats")
    assert st["evicted_keys"] > 0
    assert c.dbsize() < 5100
    assert used(c) <= limit * 1.1
    alive = sum(1 for v in c.mget(hot) if v is not None)
    assert alive >= 90, "only %d of 100 hot keys survived allkeys-lru" % alive
    new_alive = sum(1 for v in c.mget(["new:%d" % i for i in range(2500)]) if v is not None)
    assert new_alive >= 2000, "allkeys-lru evicted %d of the newest keys" % (2500 - new_alive)


def test_volatile_lru_only_evicts_keys_with_ttl(make_server):
    srv = make_server()
    c = srv.client()
    persistent = ["p:%d" % i for i in range(300)]
    c.mset({k: VALUE for k in persistent})
    limit_above_baseline(c, "volatile-lru")
    ooms = fill(c, "vol", 8000, ttl=10000)
    assert ooms == 0, state(c)
    assert c.info("stats")["evicted_keys"] > 0
    assert all(v == VALUE for v in c.mget(persistent))
    # with only persistent keys left to write, the server refuses
    x = srv.raw()
    refused = False
    for i in range(20000):
        reply = x.call("SET", "np:%d" % i, VALUE)
        if reply != b"+OK\r\n":
            assert reply == b"-" + OOM.encode() + b"\r\n"
            refused = True
            break
    assert refused
    assert c.info("keyspace")["db0"]["expires"] == 0  # every volatile key was evicted for room
    if not srv.is_peer:  # and the log says why, for ops
        lines = [l for l in srv.log().splitlines() if "maxmemory reached with nothing left to evict" in l]
        assert len(lines) == 1 and "keys_with_ttl=0" in lines[0], lines


def test_volatile_ttl_evicts_nearest_expiry_first(make_server):
    srv = make_server()
    c = srv.client()
    limit_above_baseline(c, "volatile-ttl", headroom=3 * 1024 * 1024)
    long_keys = ["long:%d" % i for i in range(300)]
    p = c.pipeline(transaction=False)
    for k in long_keys:
        p.set(k, VALUE, ex=100000)
    p.execute()
    assert fill(c, "short", 8000, ttl=1000) == 0, state(c)
    assert c.info("stats")["evicted_keys"] > 0
    alive = sum(1 for v in c.mget(long_keys) if v is not None)
    print("volatile-ttl: %d of 300 long-TTL keys survived" % alive)
    assert alive >= 270, "only %d of 300 long-TTL keys survived volatile-ttl" % alive


def test_config_set_maxmemory_policy_values(make_server):
    srv = make_server()
    x = srv.raw()
    for pol in ("noeviction", "allkeys-lru", "volatile-lru", "volatile-ttl"):
        assert x.call("CONFIG", "SET", "maxmemory-policy", pol) == b"+OK\r\n"
        assert x.call("CONFIG", "GET", "maxmemory-policy") == \
            b"*2\r\n$16\r\nmaxmemory-policy\r\n$%d\r\n%s\r\n" % (len(pol), pol.encode())
    # Redis lists its eight policies; a server with fewer lists its own
    e = x.err("CONFIG", "SET", "maxmemory-policy", "bogus")
    prefix = ("ERR CONFIG SET failed (possibly related to argument 'maxmemory-policy') - argument(s) must be one "
              "of the following: ")
    assert e.startswith(prefix), e
    assert {"noeviction", "allkeys-lru", "volatile-lru", "volatile-ttl"} <= set(e[len(prefix):].split(", "))
    assert x.call("CONFIG", "SET", "maxmemory", "10mb") == b"+OK\r\n"
    assert x.call("CONFIG", "GET", "maxmemory") == b"*2\r\n$9\r\nmaxmemory\r\n$8\r\n10485760\r\n"
    assert x.call("CONFIG", "SET", "maxmemory", "1gb") == b"+OK\r\n"
    assert x.call("CONFIG", "GET", "maxmemory") == b"*2\r\n$9\r\nmaxmemory\r\n$10\r\n1073741824\r\n"
    assert x.err("CONFIG", "SET", "maxmemory", "abc") == \
        "ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument must be a memory value"
    info = srv.client().info("memory")
    assert info["maxmemory"] == 1073741824
    assert info["maxmemory_policy"] == "volatile-ttl"
