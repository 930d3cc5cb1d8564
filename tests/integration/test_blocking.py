"""Blocking pops: argument errors, replies in RESP2 and RESP3, wake-ups by
pushes from other connections (other workers with `shards 4`), arrival
order, timeouts, transactions, disconnections, and a no-loss/no-duplicate
stress."""
import random
import threading
import time

import redis

from conftest import encode_command, wait_for


class later:
    """Runs fn on a timer thread after delay seconds.  done() waits for it and
    raises what it raised: a test must not end (and close its connections)
    while the pusher still reads its reply."""

    def __init__(self, delay, fn):
        self.error = None
        self.timer = threading.Timer(delay, self._run, args=(fn,))
        self.timer.start()

    def _run(self, fn):
        try:
            fn()
        except BaseException as e:
            self.error = e

    def done(self, timeout=10):
        self.timer.join(timeout)
        assert not self.timer.is_alive(), "the delayed push did not finish"
        if self.error:
            raise self.error


def test_argument_errors(x):
    for args, err in [(("BLPOP", "k", "-1"), "ERR timeout is negative"),
                      (("BLPOP", "k", "abc"), "ERR timeout is not a float or out of range"),
                      (("BLPOP", "k", "nan"), "ERR timeout is not a float or out of range"),
                      (("BLPOP", "k", "inf"), "ERR timeout is negative"),
                      (("BLPOP", "k", "1e16"), "ERR timeout is negative"),
                      (("BZPOPMIN", "k", "-1"), "ERR timeout is negative"),
                      (("BLMPOP", "0", "0", "k", "LEFT"), "ERR numkeys should be greater than 0"),
                      (("BLMPOP", "-1", "0", "k", "LEFT"), "ERR numkeys should be greater than 0"),
                      (("BLMPOP", "-1", "1", "k", "LEFT"), "ERR timeout is negative"),
                      (("BLMPOP", "0", "2", "k", "LEFT"), "ERR syntax error"),
                      (("BLMPOP", "0", "1", "k", "UP"), "ERR syntax error"),
                      (("BLMPOP", "0", "1", "k", "LEFT", "COUNT", "0"), "ERR count should be greater than 0"),
                      (("BLMPOP", "0", "1", "k", "LEFT", "COUNT", "1", "COUNT", "2"), "ERR syntax error"),
                      (("BZMPOP", "0", "1", "k", "LEFT"), "ERR syntax error"),
                      (("BLMOVE", "a", "b", "up", "LEFT", "0"), "ERR syntax error"),
                      (("BLMPOP", "0", "1"), "ERR wrong number of arguments for 'blmpop' command")]:
        assert x.err(*args) == err
    x.call("SET", "s", "1")
    assert x.err("BLPOP", "s", "0").startswith("WRONGTYPE")
    assert x.err("BLMOVE", "s", "d", "LEFT", "LEFT", "0").startswith("WRONGTYPE")


def test_immediate_and_timeout_replies(x):
    x.call("RPUSH", "l", "a", "b", "c")
    x.call("ZADD", "z", "1", "a", "2.5", "b", "3", "c")
    assert x.call("BLPOP", "none", "l", "0") == b"*2\r\n$1\r\nl\r\n$1\r\na\r\n"
    assert x.call("BLMPOP", "0", "1", "l", "RIGHT", "COUNT", "5") == b"*2\r\n$1\r\nl\r\n*2\r\n$1\r\nc\r\n$1\r\nb\r\n"
    assert x.call("BZPOPMIN", "z", "0") == b"*3\r\n$1\r\nz\r\n$1\r\na\r\n$1\r\n1\r\n"
    assert x.call("BZMPOP", "0", "1", "z", "MIN") == b"*2\r\n$1\r\nz\r\n*1\r\n*2\r\n$1\r\nb\r\n$3\r\n2.5\r\n"
    t0 = time.monotonic()
    assert x.call("BLPOP", "none", "0.2") == b"*-1\r\n"
    assert x.call("BRPOPLPUSH", "none", "d", "0.01") == b"*-1\r\n"
    assert x.call("BLPOP", "none", "0.0001") == b"*-1\r\n"  # rounds up to 1 ms
    assert time.monotonic() - t0 >= 0.2
    x.call("HELLO", "3")
    assert x.call("BZPOPMAX", "z", "0") == b"*3\r\n$1\r\nz\r\n$1\r\nc\r\n,3\r\n"
    assert x.call("BZPOPMIN", "none", "0.01") == b"_\r\n"
    assert x.call("BLMOVE", "none", "d", "LEFT", "LEFT", "0.01") == b"_\r\n"


def test_woken_by_pushes_from_other_connections(sharded_server, sr):
    mk, pushes = sharded_server.client, []
    pushes.append(later(0.1, lambda: mk().rpush("l1", "a", "b")))
    assert sr.blpop(["l0", "l1"], 5) == (b"l1", b"a")
    assert sr.lrange("l1", 0, -1) == [b"b"]
    pushes.append(later(0.1, lambda: mk().lpush("src", "x")))
    assert sr.brpoplpush("src", "dst", 5) == b"x"
    pushes.append(later(0.1, lambda: mk().rpush("src", "y", "z")))
    assert sr.blmove("src", "dst", 5, "RIGHT", "LEFT") == b"z"
    assert sr.lrange("dst", 0, -1) == [b"z", b"x"] and sr.lrange("src", 0, -1) == [b"y"]
    pushes.append(later(0.1, lambda: mk().zadd("z", {"m1": 1.5, "m2": 0.5})))
    assert sr.bzpopmin(["z0", "z"], 5) == (b"z", b"m2", 0.5)
    pushes.append(later(0.1, lambda: mk().rpush("m", 1, 2, 3)))
    assert sr.execute_command("BLMPOP", 5, 2, "mm", "m", "RIGHT", "COUNT", 2) == [b"m", [b"3", b"2"]]
    pushes.append(later(0.1, lambda: mk().zadd("zz", {"a": 1, "b": 2, "c": 3})))
    assert sr.execute_command("BZMPOP", 5, 1, "zz", "MAX", "COUNT", 2) == [b"zz", [[b"c", b"3"], [b"b", b"2"]]]
    # a push inside a transaction wakes after EXEC; what it popped itself is gone
    pushes.append(later(0.1, lambda: mk().pipeline().lpush("tx", "v1").lpop("tx").lpush("tx", "v2").execute()))
    assert sr.blpop(["tx"], 5) == (b"tx", b"v2")
    assert sr.llen("tx") == 0
    for p in pushes:
        p.done()


def test_arrival_order(sharded_server, sr):
    res, threads = {}, []

    def waiter(i):
        res[i] = sharded_server.client().blpop(["fifo"], 10)

    for i in range(5):
        t = threading.Thread(target=waiter, args=(i,))
        t.start()
        threads.append(t)
        wait_for(lambda: sr.info("clients")["blocked_clients"] == i + 1, what="waiter %d blocked" % i)
    sr.rpush("fifo", "e0", "e1", "e2")
    wait_for(lambda: sr.info("clients")["blocked_clients"] == 2, what="three served")
    sr.rpush("fifo", "e3", "e4")
    for t in threads:
        t.join(10)
    assert [res[i][1] for i in range(5)] == [b"e0", b"e1", b"e2", b"e3", b"e4"]


def test_disconnect_and_kill_leave_nothing(server, r):
    c = server.client(socket_timeout=0.2)
    try:
        c.blpop(["gone"], 0)
    except redis.TimeoutError:
        pass
    c.connection_pool.disconnect()
    wait_for(lambda: r.info("clients")["blocked_clients"] == 0, what="blocked client gone")
    r.rpush("gone", "keep")
    time.sleep(0.1)
    assert r.lrange("gone", 0, -1) == [b"keep"]
    with server.raw() as b:
        b.send(encode_command("BLPOP", "killed", "0"))
        wait_for(lambda: r.info("clients")["blocked_clients"] == 1, what="client blocked")
        cid = [c["id"] for c in r.client_list() if c["cmd"] == "blpop"][0]
        assert r.client_kill_filter(_id=cid) == 1
        wait_for(lambda: r.info("clients")["blocked_clients"] == 0, what="killed client gone")
    r.rpush("killed", "keep")
    time.sleep(0.1)
    assert r.llen("killed") == 1


def test_client_unblock(sharded_server, sr):
    """CLIENT UNBLOCK id [TIMEOUT|ERROR] ends a blocking pop as its timeout
    would, or with the UNBLOCKED error; 1 when the client was blocked, 0
    otherwise; the keys it waited on keep what is pushed after."""
    srv, r = sharded_server, sr
    for reason, proto, want in [(None, 2, b"*-1\r\n"), ("TIMEOUT", 3, b"_\r\n"),
                                ("error", 2, b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n")]:
        with srv.raw() as b:
            if proto == 3:
                b.call("HELLO", "3")
            cid = int(b.call("CLIENT", "ID")[1:-2])
            b.send(encode_command("BRPOP", "ub:a", "ub:b", "0") + encode_command("PING"))
            wait_for(lambda: r.info("clients")["blocked_clients"] == 1, what="client blocked")
            args = ["CLIENT", "UNBLOCK", cid] + ([reason] if reason else [])
            assert r.execute_command(*args) == 1
            assert b.reply_bytes() == want
            assert b.reply_bytes() == (b"+PONG\r\n")  # reads its next request again
            assert r.info("clients")["blocked_clients"] == 0
            assert r.execute_command("CLIENT", "UNBLOCK", cid) == 0  # not blocked any more
        r.lpush("ub:a", "kept")
        time.sleep(0.05)
        assert r.lrange("ub:a", 0, -1) == [b"kept"]  # nobody waits: nothing taken
        r.delete("ub:a")
    assert r.execute_command("CLIENT", "UNBLOCK", 999999999) == 0
    x = srv.raw()
    assert x.err("CLIENT", "UNBLOCK", "abc") == "ERR value is not an integer or out of range"
    assert x.err("CLIENT", "UNBLOCK", "1", "SOON") == "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR"
    assert x.err("CLIENT", "UNBLOCK") == "ERR wrong number of arguments for 'client|unblock' command"


def test_blocked_client_runs_pipelined_commands_after(server, r):
    with server.raw() as b:
        b.send(encode_command("BLPOP", "pl", "0") + encode_command("PING"))
        wait_for(lambda: r.info("clients")["blocked_clients"] == 1, what="client blocked")
        assert b.read_available(0.1) == b""
        r.rpush("pl", "v")
        assert b.reply_bytes() == b"*2\r\n$2\r\npl\r\n$1\r\nv\r\n"
        assert b.reply_bytes() == b"+PONG\r\n"


def test_no_element_lost_or_duplicated(sharded_server, sr):
    producers, per, consumers = 3, 300, 5
    got, lock, stop = [], threading.Lock(), threading.Event()
    mk = sharded_server.client

    def produce(i):
        c = mk()
        for j in range(per):
            k = "q%d" % random.randrange(3)
            if j % 50 == 0:
                c.pipeline().rpush(k, "p%d-%d" % (i, j)).execute()
            else:
                c.rpush(k, "p%d-%d" % (i, j))

    def consume():
        c = mk()
        while not stop.is_set():
            kind = random.randrange(4)
            if kind == 0:
                v = c.blpop(["q0", "q1", "q2"], 0.05)
                vals = [v[1]] if v else []
            elif kind == 1:
                v = c.execute_command("BLMPOP", 0.05, 3, "q2", "q1", "q0", "RIGHT", "COUNT", 3)
                vals = v[1] if v else []
            elif kind == 2:
                c.blmove("q1", "mid", 0.05, "LEFT", "RIGHT")
                vals = []
            else:
                v = c.brpop(["mid"], 0.05)
                vals = [v[1]] if v else []
            with lock:
                got.extend(vals)

    ts = [threading.Thread(target=consume) for _ in range(consumers)]
    ps = [threading.Thread(target=produce, args=(i,)) for i in range(producers)]
    for t in ts + ps:
        t.start()
    for t in ps:
        t.join(60)
    time.sleep(0.5)
    stop.set()
    for t in ts:
        t.join(10)
    left = []
    for k in ("q0", "q1", "q2", "mid"):
        left += sr.lrange(k, 0, -1)
    everything = got + left
    assert len(everything) == producers * per
    assert len(set(everything)) == producers * per
    assert sr.info("clients")["blocked_clients"] == 0
