"""MULTI/EXEC/DISCARD/WATCH/UNWATCH: Redis's replies and errors, WATCH
aborts (another client, expiry, FLUSHDB), and atomicity across shards under
concurrent clients (invariants, not timings)."""
import threading
import time

import pytest
import redis

from conftest import wait_for


def test_transaction_replies(x):
    assert x.err("EXEC") == "ERR EXEC without MULTI"
    assert x.err("DISCARD") == "ERR DISCARD without MULTI"
    assert x.call("MULTI") == b"+OK\r\n"
    assert x.err("MULTI") == "ERR MULTI calls can not be nested"
    assert x.err("WATCH", "k") == "ERR WATCH inside MULTI is not allowed"
    assert x.call("SET", "a", "1") == b"+QUEUED\r\n"
    assert x.call("INCR", "a") == b"+QUEUED\r\n"
    assert x.call("LPUSH", "a", "x") == b"+QUEUED\r\n"
    assert x.call("GET", "a") == b"+QUEUED\r\n"
    assert x.call("EXEC") == (b"*4\r\n+OK\r\n:2\r\n-WRONGTYPE Operation against a key holding the wrong kind "
                              b"of value\r\n$1\r\n2\r\n")
    assert x.call("MULTI") == b"+OK\r\n"
    assert x.call("SET", "a", "3") == b"+QUEUED\r\n"
    assert x.call("DISCARD") == b"+OK\r\n"
    assert x.call("GET", "a") == b"$1\r\n2\r\n"
    assert x.call("MULTI") == b"+OK\r\n"
    assert x.err("SET", "a") == "ERR wrong number of arguments for 'set' command"
    assert x.call("SET", "a", "4") == b"+QUEUED\r\n"
    assert x.err("NOSUCH") == "ERR unknown command 'NOSUCH', with args beginning with: "
    assert x.err("EXEC") == "EXECABORT Transaction discarded because of previous errors."
    assert x.call("GET", "a") == b"$1\r\n2\r\n"
    assert x.call("MULTI") == b"+OK\r\n"
    assert x.err("SHUTDOWN") == "ERR Command not allowed inside a transaction"
    assert x.call("DISCARD") == b"+OK\r\n"
    assert x.call("MULTI") == b"+OK\r\n"
    assert x.call("EXEC") == b"*0\r\n"


def test_select_inside_multi(x):
    x.call("MULTI")
    for cmd in (("SELECT", "1"), ("SET", "a", "x"), ("SELECT", "0"), ("GET", "a")):
        assert x.call(*cmd) == b"+QUEUED\r\n"
    assert x.call("EXEC") == b"*4\r\n+OK\r\n+OK\r\n+OK\r\n$-1\r\n"
    assert x.call("SELECT", "1") == b"+OK\r\n"
    assert x.call("GET", "a") == b"$1\r\nx\r\n"
    x.call("FLUSHDB")


def test_watch_aborts(server, r, x):
    other = server.client()
    x.call("WATCH", "w")
    other.set("w", "1")
    x.call("MULTI")
    x.call("GET", "w")
    assert x.call("EXEC") == b"*-1\r\n"
    # the abort clears the watch
    x.call("MULTI")
    x.call("GET", "w")
    assert x.call("EXEC") == b"*1\r\n$1\r\n1\r\n"
    # UNWATCH forgets a change already made
    x.call("WATCH", "w")
    other.set("w", "2")
    x.call("UNWATCH")
    x.call("MULTI")
    assert x.call("EXEC") == b"*0\r\n"
    # a change by the watcher itself counts too; RESP3 gets a null
    x.call("HELLO", "3")
    x.call("WATCH", "w")
    x.call("SET", "w", "3")
    x.call("MULTI")
    assert x.call("EXEC") == b"_\r\n"


def test_watch_flush(server, r, x):
    x.call("WATCH", "absent")
    r.flushall()
    x.call("MULTI")
    assert x.call("EXEC") == b"*0\r\n"  # an absent key did not change
    r.set("e", "1")
    x.call("WATCH", "e")
    r.flushdb()
    x.call("MULTI")
    assert x.call("EXEC") == b"*-1\r\n"
    r.set("e", "1")
    x.call("WATCH", "e")
    r.execute_command("SELECT", "2")
    r.flushdb()  # another db
    r.execute_command("SELECT", "0")
    x.call("MULTI")
    assert x.call("EXEC") == b"*0\r\n"


@pytest.mark.parametrize("active", [1, 0])
def test_watched_key_expires(server, r, active):
    r.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", active)
    try:
        r.set("wk", "v", px=100)
        with r.pipeline() as p:
            p.watch("wk")
            time.sleep(0.3)
            p.multi()
            p.ping()
            with pytest.raises(redis.WatchError):
                p.execute()
    finally:
        r.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", 1)


def test_blocking_commands_in_multi_do_not_block(x):
    x.call("MULTI")
    for cmd in (("BLPOP", "l", "0"), ("BRPOP", "l", "m", "0.5"), ("BLMOVE", "a", "b", "LEFT", "RIGHT", "0"),
                ("BZPOPMIN", "z", "0"), ("BLMPOP", "0", "1", "l", "LEFT"), ("RPUSH", "l", "v"), ("BLPOP", "l", "0")):
        assert x.call(*cmd) == b"+QUEUED\r\n"
    assert x.call("EXEC") == b"*7\r\n*-1\r\n*-1\r\n$-1\r\n*-1\r\n*-1\r\n:1\r\n*2\r\n$1\r\nl\r\n$1\r\nv\r\n"


def test_cas_and_transfers_are_atomic(sharded_server, sr):
    """WATCH-based increments racing plain INCRs, and transfers between keys
    on different shards audited by transactional reads."""
    port_client = sharded_server.client
    sr.set("cnt", 0)
    sr.mset({"acct:a": 1000, "acct:b": 1000, "acct:c": 1000})
    iters, ok, bad = 150, [0] * 4, []

    def cas(i):
        c = port_client()
        for _ in range(iters):
            while True:
                with c.pipeline() as p:
                    try:
                        p.watch("cnt")
                        v = int(p.get("cnt"))
                        p.multi()
                        p.set("cnt", v + 1)
                        p.execute()
                        ok[i] += 1
                        break
                    except redis.WatchError:
                        continue

    def incr():
        c = port_client()
        for _ in range(iters):
            c.incr("cnt")

    def transfer(i):
        c = port_client()
        keys = ["acct:a", "acct:b", "acct:c"]
        for j in range(iters):
            c.pipeline().decrby(keys[(i + j) % 3], 7).incrby(keys[(i + j + 1) % 3], 7).execute()

    def audit():
        c = port_client()
        for _ in range(iters * 2):
            vals = c.pipeline().get("acct:a").get("acct:b").get("acct:c").execute()
            if sum(int(v) for v in vals) != 3000:
                bad.append(vals)

    errors = []

    def guarded(fn, *args):
        # a racer that dies would only lower its own count: say it instead
        def run():
            try:
                fn(*args)
            except BaseException as e:
                errors.append("%s%r: %r" % (fn.__name__, args, e))
        return threading.Thread(target=run)

    threads = [guarded(cas, i) for i in range(4)] + [guarded(incr) for _ in range(2)] + \
              [guarded(transfer, i) for i in range(3)] + [guarded(audit)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a racer still runs after 60 s"
    assert errors == []
    assert all(n == iters for n in ok), ok
    assert int(sr.get("cnt")) == sum(ok) + 2 * iters
    assert bad == []
    assert sum(int(v) for v in sr.mget("acct:a", "acct:b", "acct:c")) == 3000


def test_self_locking_commands_keep_exec_whole(sharded_server, sr):
    """Commands that take their own locks (DBSIZE, SCAN, RANDOMKEY, INFO,
    OBJECT, DEBUG SLEEP) inside MULTI: nothing runs between the transaction's
    commands, as in Redis.  A writer races; the two INCRs of each EXEC must
    give consecutive values."""
    port_client = sharded_server.client
    sr.set("a", 0)
    sr.set("b", "x")
    stop, writes = threading.Event(), [0]

    def writer():
        c = port_client()
        while not stop.is_set() and writes[0] < 100000:
            c.set("a", 1000000)
            writes[0] += 1

    t = threading.Thread(target=writer)
    t.start()
    broken = []
    try:
        wait_for(lambda: writes[0] > 10, 5, what="the writer running")
        c = port_client()
        for i in range(40):
            p = c.pipeline(transaction=True)
            p.incr("a")
            p.dbsize()
            p.scan(0)
            p.randomkey()
            p.object("encoding", "b")
            p.execute_command("DEBUG", "SLEEP", "0.005")
            p.info("keyspace")
            p.incr("a")
            res = p.execute()
            if res[-1] != res[0] + 1:
                broken.append((res[0], res[-1]))
    finally:
        stop.set()
        t.join(30)
    assert writes[0] > 10
    assert broken == []
