"""Master/replica replication on loopback: full copy then the live stream,
partial resynchronisation after a cut, falling out of the backlog, chained
replicas, WAIT, READONLY, INFO replication and ROLE in Redis's format,
promotion (REPLICAOF NO ONE) keeping the history, FAILOVER.

Every test also runs against redis-server (PEER=redis): what is checked is
Redis's behaviour.  Whether a reconnection was a partial resync or a full
copy is told the way a client sees it: a key written locally on a writable
replica survives a partial resync and is gone after a full copy.
"""
import os
import signal
import threading
import time

import pytest
import redis

from conftest import IS_PEER, wait_for

# repl-diskless-sync-delay 0: redis-server would otherwise wait 5 s before a copy.
REPL = {"repl-diskless-sync-delay": "0"}


def info_repl(client):
    return client.info("replication")


def link_up(client):
    i = info_repl(client)
    return i.get("role") == "slave" and i.get("master_link_status") == "up"


def wait_link_up(client, timeout=20):
    wait_for(lambda: link_up(client), timeout=timeout, what="master_link_status:up")


def start_replica(make_server, master, **options):
    opts = dict(REPL)
    opts.update(options)
    opts["replicaof"] = ["127.0.0.1", str(master.port)]
    srv = make_server(**opts)
    wait_link_up(srv.client())
    return srv


def wait_offsets_equal(master_c, replica_c, timeout=10):
    def same():
        m = info_repl(master_c)["master_repl_offset"]
        return info_repl(replica_c).get("slave_repl_offset") == m
    wait_for(same, timeout=timeout, what="replica caught up")


def fill(client, n, prefix="key:", batch=1000, value_len=8):
    p = client.pipeline(transaction=False)
    for start in range(0, n, batch):
        kv = {}
        for i in range(start, min(n, start + batch)):
            kv["%s%d" % (prefix, i)] = ("v%d" % i).ljust(value_len, "x")
        p.mset(kv)
        if len(p.command_stack) >= 20:
            p.execute()
    p.execute()


def all_threads_stopped(pid):
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                if f.read().rsplit(")", 1)[1].split()[0] not in ("T", "t"):
                    return False
    except FileNotFoundError:
        return False
    return True


def sigstop(srv):
    """SIGSTOP, then wait until every thread stopped: kill() returns before
    a busy multi-threaded process has stopped all its threads."""
    os.kill(srv.pid, signal.SIGSTOP)
    wait_for(lambda: all_threads_stopped(srv.pid), timeout=5, what="process stopped")


def local_marker(replica_c):
    """A key only this (writable) replica holds: it survives a partial
    resynchronisation and is flushed by a full copy."""
    replica_c.config_set("replica-read-only", "no")
    replica_c.set("local-marker", "1")
    assert replica_c.get("local-marker") == b"1"


# ---------------------------------------------------------------- full copy, stream


def test_sorted_sets_before_and_after_the_first_replica(make_server):
    """A master with no replica yet builds no replay for its ZADDs (nothing
    keeps it); what it wrote then arrives by the full copy, what it writes
    once a replica is attached by the stream, scores exact, transactions
    whole."""
    master = make_server(**REPL)
    mc = master.client()
    mc.zadd("z", {"a": 0.1, "b": -2.5e-7, "c": 1e300})
    mc.zincrby("z", 0.2, "a")
    p = mc.pipeline(transaction=True)
    p.zadd("z", {"d": 3})
    p.zadd("z2{t}", {"x": 1})
    p.execute()
    replica = start_replica(make_server, master)
    rc = replica.client()
    mc.zadd("z", {"e": 1 / 3}, incr=False)
    mc.zadd("z", {"a": 0.7}, incr=True)
    mc.zincrby("z", -1e-9, "b")
    p = mc.pipeline(transaction=True)
    p.zadd("z", {"f": 2 ** 53 + 1}, nx=True)
    p.zrem("z2{t}", "x")
    p.execute()
    assert mc.wait(1, 5000) == 1
    assert rc.zrange("z", 0, -1, withscores=True) == mc.zrange("z", 0, -1, withscores=True)
    assert [m for m, _ in rc.zrange("z", 0, -1, withscores=True)] == [b"b", b"e", b"a", b"d", b"f", b"c"]
    assert rc.zscore("z", "a") == mc.zscore("z", "a")
    assert rc.exists("z2{t}") == 0


@pytest.mark.slow
def test_full_sync_200k_keys_then_stream(make_server):
    master = make_server(**REPL)
    mc = master.client()
    fill(mc, 200000)
    mc.hset("h", mapping={"f%d" % i: i for i in range(100)})
    mc.rpush("l", *range(50))
    mc.sadd("s", *range(30))
    mc.zadd("z", {"m%d" % i: i for i in range(40)})
    mc.set("ttl", "x", px=600000)
    mc.execute_command("SELECT", 0)

    # writes made while the copy is on its way are not lost
    stop = threading.Event()
    written = []

    def writer():
        wc = master.client()
        i = 0
        while not stop.is_set() and i < 200000:
            wc.set("during:%d" % i, i)
            written.append(i)
            i += 1

    t = threading.Thread(target=writer)
    t.start()
    try:
        replica = start_replica(make_server, master)
        time.sleep(0.3)
    finally:
        stop.set()
        t.join(30)
    rc = replica.client()
    mc.set("after", "sync")
    assert mc.wait(1, 5000) == 1
    assert rc.get("after") == b"sync"
    assert rc.dbsize() == mc.dbsize() == 200000 + 5 + len(written) + 1
    for i in (0, 1, 99999, 199999):
        assert rc.get("key:%d" % i) == mc.get("key:%d" % i)
    assert rc.hgetall("h") == mc.hgetall("h")
    assert rc.lrange("l", 0, -1) == mc.lrange("l", 0, -1)
    assert rc.smembers("s") == mc.smembers("s")
    assert rc.zrange("z", 0, -1, withscores=True) == mc.zrange("z", 0, -1, withscores=True)
    assert 590000 < rc.pttl("ttl") <= 600000
    if written:
        assert rc.get("during:%d" % written[-1]) == str(written[-1]).encode()
        assert rc.get("during:0") == b"0"


def test_stream_applies_in_order_across_dbs_and_transactions(make_server):
    master = make_server(**REPL)
    replica = start_replica(make_server, master)
    mc, rc = master.client(), replica.client()
    mc.set("a", "1")
    mc.incrbyfloat("f", 1.5)
    mc.lpush("q", "x", "y")
    mc.rpop("q")
    mc.execute_command("SELECT", 0)
    m3 = master.client(db=3)
    m3.set("in3", "three")
    p = m3.pipeline(transaction=True)
    p.set("t1", "a").incr("t2").sadd("t3", "m")
    p.execute()
    mc.expire("a", 1000)
    mc.delete("missing")
    mc.flushdb()  # db 0 only
    mc.set("b", "2")
    assert mc.wait(1, 5000) == 1
    r3 = replica.client(db=3)
    assert r3.get("in3") == b"three"
    assert r3.mget("t1", "t2") == [b"a", b"1"]
    assert r3.smembers("t3") == {b"m"}
    assert rc.get("a") is None and rc.get("b") == b"2"
    wait_offsets_equal(mc, rc)


def test_publish_reaches_replica_subscribers(make_server):
    master = make_server(**REPL)
    replica = start_replica(make_server, master)
    sub = replica.client().pubsub()
    sub.subscribe("chan")
    wait_for(lambda: sub.get_message(timeout=0.1), what="subscribe confirmation")
    master.client().publish("chan", "hello")
    msg = wait_for(lambda: sub.get_message(timeout=0.1), what="message on the replica")
    assert msg["type"] == "message" and msg["data"] == b"hello"
    sub.close()


def test_expiry_follows_the_master(make_server):
    master = make_server(**REPL)
    replica = start_replica(make_server, master)
    mc, rc = master.client(), replica.client()
    mc.set("short", "x", px=300)
    mc.set("long", "y", ex=100)
    assert mc.wait(1, 5000) == 1
    assert rc.exists("long") == 1
    # the master deletes the key when it expires; the replica follows its DEL
    wait_for(lambda: rc.dbsize() == 1, timeout=10, what="replica drops the expired key")
    assert rc.get("short") is None


# ---------------------------------------------------------------- reconnections


def test_partial_resync_after_cut(make_server):
    master = make_server(**REPL)
    replica = start_replica(make_server, master)
    mc, rc = master.client(), replica.client()
    mc.set("before", "1")
    assert mc.wait(1, 5000) == 1
    local_marker(rc)
    assert mc.client_kill_filter(_type="slave") == 1
    mc.set("during", "2")
    wait_for(lambda: info_repl(mc)["connected_slaves"] == 1 and link_up(rc), timeout=15, what="reconnected")
    assert mc.wait(1, 5000) == 1
    assert rc.get("during") == b"2"
    assert rc.get("local-marker") == b"1", "the replica got a full copy instead of continuing"
    wait_offsets_equal(mc, rc)


@pytest.mark.slow
def test_out_of_backlog_gets_full_copy(make_server):
    master = make_server(**dict(REPL, **{"repl-backlog-size": "16kb"}))
    replica = start_replica(make_server, master)
    mc, rc = master.client(), replica.client()
    mc.set("before", "1")
    assert mc.wait(1, 5000) == 1
    local_marker(rc)
    sigstop(replica)
    try:
        mc.client_kill_filter(_type="slave")
        fill(mc, 2000, prefix="gap:", value_len=100)  # ~200 KB: far past the backlog
    finally:
        os.kill(replica.pid, signal.SIGCONT)
    def synced():
        try:
            return rc.get("gap:1999") is not None and link_up(rc)
        except redis.exceptions.BusyLoadingError:
            return False
    wait_for(synced, timeout=20, what="full copy")
    assert rc.get("local-marker") is None, "the replica continued although the backlog could not cover it"
    assert rc.dbsize() == mc.dbsize()


def test_chained_replicas(make_server):
    master = make_server(**REPL)
    r1 = start_replica(make_server, master)
    m3 = master.client(db=3)
    m3.set("before", "x")  # the stream is in db 3 when r2 takes its copy from r1
    assert m3.wait(1, 5000) == 1
    r2 = start_replica(make_server, r1)
    m3.set("after", "y")  # no SELECT comes: r2 must know the stream's db
    mc = master.client()
    for i in range(100):
        mc.set("k%d" % i, i)
    mc.hset("h", "f", "v")
    c2 = r2.client()
    wait_for(lambda: c2.hget("h", "f") == b"v", timeout=10, what="chained replica caught up")
    assert c2.get("k99") == b"99"
    assert r2.client(db=3).mget("before", "after") == [b"x", b"y"]
    assert c2.get("after") is None
    assert info_repl(r1.client())["connected_slaves"] == 1
    assert info_repl(r1.client())["master_replid"] == info_repl(mc)["master_replid"]
    wait_offsets_equal(mc, c2)


# ---------------------------------------------------------------- WAIT, READONLY


def test_wait(make_server):
    master = make_server(**REPL)
    mc = master.client()
    mc.set("x", "1")
    assert mc.wait(0, 0) == 0
    t0 = time.monotonic()
    assert mc.wait(1, 300) == 0  # no replica: the timeout
    assert time.monotonic() - t0 >= 0.25
    r1 = start_replica(make_server, master)
    r2 = start_replica(make_server, master)
    mc.set("x", "2")
    assert mc.wait(2, 5000) == 2
    assert r1.client().get("x") == b"2" and r2.client().get("x") == b"2"
    sigstop(r2)
    try:
        mc.set("x", "3")
        t0 = time.monotonic()
        assert mc.wait(2, 500) == 1
        assert 0.4 < time.monotonic() - t0 < 5
    finally:
        os.kill(r2.pid, signal.SIGCONT)
    assert mc.wait(2, 5000) == 2
    rc = r1.client()
    with pytest.raises(Exception) as e:
        rc.wait(1, 100)
    assert "WAIT cannot be used with replica instances" in str(e.value)


def test_readonly_replica(make_server):
    master = make_server(**REPL)
    replica = start_replica(make_server, master)
    x = replica.raw()
    assert x.err("SET", "k", "v") == "READONLY You can't write against a read only replica."
    assert x.call("GET", "k") == b"$-1\r\n"
    x.call("MULTI")
    assert x.err("SET", "k", "v").startswith("READONLY")
    assert x.err("EXEC").startswith("EXECABORT")
    # PUBLISH, reads and admin commands are fine on a replica
    assert x.call("PUBLISH", "c", "m") == b":0\r\n"
    rc = replica.client()
    rc.config_set("replica-read-only", "no")
    assert rc.set("k", "v")
    rc.config_set("replica-read-only", "yes")
    assert x.err("DEL", "k").startswith("READONLY")


# ---------------------------------------------------------------- INFO, ROLE


def test_info_and_role_format(make_server):
    master = make_server(**REPL)
    replica = start_replica(make_server, master, **{"replica-priority": "42"})
    mc, rc = master.client(), replica.client()
    mc.set("k", "v")
    assert mc.wait(1, 5000) == 1
    mi = master.raw().call("INFO", "replication").decode()
    lines = [l for l in mi.split("\r\n")[1:] if ":" in l]
    fields = [l.split(":", 1)[0] for l in lines]
    assert fields == ["role", "connected_slaves", "slave0", "master_failover_state", "master_replid",
                      "master_replid2", "master_repl_offset", "second_repl_offset", "repl_backlog_active",
                      "repl_backlog_size", "repl_backlog_first_byte_offset", "repl_backlog_histlen"]
    m = info_repl(mc)
    assert m["role"] == "master" and m["connected_slaves"] == 1
    s0 = m["slave0"]
    assert s0["ip"] == "127.0.0.1" and s0["port"] == replica.port and s0["state"] == "online"
    assert len(m["master_replid"]) == 40
    ri = replica.raw().call("INFO", "replication").decode()
    fields = [l.split(":", 1)[0] for l in ri.split("\r\n")[1:] if ":" in l]
    assert fields[:12] == ["role", "master_host", "master_port", "master_link_status", "master_last_io_seconds_ago",
                           "master_sync_in_progress", "slave_read_repl_offset", "slave_repl_offset",
                           "slave_priority", "slave_read_only", "replica_announced", "connected_slaves"]
    r = info_repl(rc)
    assert r["role"] == "slave" and r["master_port"] == master.port and r["slave_priority"] == 42
    assert r["replica_announced"] == 1 and r["master_replid"] == m["master_replid"]
    wait_offsets_equal(mc, rc)
    off = info_repl(mc)["master_repl_offset"]
    role = mc.execute_command("ROLE")
    assert role[0] == b"master" and role[1] == off
    wait_for(lambda: mc.execute_command("ROLE")[2] == [[b"127.0.0.1", str(replica.port).encode(), str(off).encode()]],
             timeout=5, what="ROLE lists the replica with its acknowledged offset")
    role = rc.execute_command("ROLE")
    assert role == [b"slave", b"127.0.0.1", master.port, b"connected", off]
    # a replica whose master is gone
    master.stop()
    wait_for(lambda: info_repl(rc)["master_link_status"] == "down", timeout=10, what="link down")
    r = info_repl(rc)
    assert 0 <= r["master_link_down_since_seconds"] < 10
    assert r["master_last_io_seconds_ago"] == -1
    assert rc.execute_command("ROLE")[3] in (b"connect", b"connecting")


def test_replicaof_errors_and_no_op(make_server):
    master = make_server(**REPL)
    replica = start_replica(make_server, master)
    x = replica.raw()
    assert x.call("REPLICAOF", "127.0.0.1", str(master.port)) == b"+OK Already connected to specified master\r\n"
    assert x.err("REPLICAOF", "127.0.0.1", "notaport") == "ERR Invalid master port"
    assert x.err("REPLICAOF", "127.0.0.1", "70000") == "ERR Invalid master port"
    m = master.raw()
    assert m.call("REPLICAOF", "NO", "ONE") == b"+OK\r\n"  # already a master
    assert m.call("SCRIPT", "KILL") == b"-NOTBUSY No scripts in execution right now.\r\n"


# ---------------------------------------------------------------- promotion, FAILOVER


def test_promotion_keeps_history(make_server):
    master = make_server(**REPL)
    r1 = start_replica(make_server, master)
    r2 = start_replica(make_server, master)
    mc = master.client()
    for i in range(50):
        mc.set("k%d" % i, i)
    assert mc.wait(2, 5000) == 2
    c1, c2 = r1.client(), r2.client()
    local_marker(c2)
    master.stop()
    assert c1.execute_command("SLAVEOF", "NO", "ONE") in (b"OK", True)
    i1 = info_repl(c1)
    assert i1["role"] == "master" and i1["second_repl_offset"] > 0
    assert c1.set("new", "write")
    assert c2.execute_command("SLAVEOF", "127.0.0.1", r1.port) in (b"OK", True)
    wait_link_up(c2)
    assert c1.wait(1, 5000) == 1
    assert c2.get("new") == b"write"
    assert c2.get("local-marker") == b"1", "the other replica needed a full copy from the promoted one"


def test_failover_command(make_server):
    master = make_server(**REPL)
    replica = start_replica(make_server, master)
    mc, rc = master.client(), replica.client()
    x = master.raw()
    assert x.err("FAILOVER", "ABORT") == "ERR No failover in progress."
    assert x.err("FAILOVER", "TO", "127.0.0.1", "1") == "ERR FAILOVER target HOST and PORT is not a replica."
    assert x.err("FAILOVER", "FORCE") == \
        "ERR FAILOVER with force option requires both a timeout and target HOST and IP."
    assert replica.raw().err("FAILOVER") == "ERR FAILOVER is not valid when server is a replica."
    for i in range(1000):
        mc.set("k%d" % i, i)
    assert x.call("FAILOVER", "TO", "127.0.0.1", str(replica.port), "TIMEOUT", "5000") == b"+OK\r\n"
    wait_for(lambda: info_repl(rc)["role"] == "master" and link_up(mc), timeout=15, what="roles switched")
    assert info_repl(mc)["master_failover_state"] == "no-failover"
    assert rc.get("k999") == b"999" and rc.dbsize() == 1000
    assert rc.set("after", "failover")
    assert rc.wait(1, 5000) == 1
    assert mc.get("after") == b"failover"
    with pytest.raises(redis.exceptions.ReadOnlyError):
        mc.set("x", "y")
