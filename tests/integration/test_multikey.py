"""Multi-key commands stay atomic whatever the shard count: each test runs
with `shards 1` and `shards 4` (plain Redis twice under PEER=redis).
Concurrent readers must never see a multi-key write half done."""
import threading
import time

from conftest import RawConn

KEYS = ["mk:%d:{x}" % i if i % 2 else "mk:%d" % i for i in range(64)]


def run_concurrently(writer, reader, readers=3, timeout=20):
    """Runs writer() once and reader() in loops on other threads until the
    writer is done; returns the number of reader checks made."""
    stop = threading.Event()
    errors, checks = [], [0]

    def read_loop():
        try:
            while not stop.is_set():
                reader()
                checks[0] += 1
        except BaseException as e:
            errors.append(e)
            stop.set()

    threads = [threading.Thread(target=read_loop, daemon=True) for _ in range(readers)]
    for t in threads:
        t.start()
    try:
        writer(stop)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout)
    if errors:
        raise errors[0]
    return checks[0]


def test_mset_is_atomic(sharded_server, sr):
    port = sharded_server.port
    sr.mset({k: "0" for k in KEYS})
    local = threading.local()

    def conn():
        if not hasattr(local, "c"):
            local.c = RawConn(port, timeout=10)
        return local.c

    def reader():
        vals = conn().call_parsed("MGET", *KEYS)
        assert len(set(vals)) == 1, "MGET saw a half-done MSET: %r" % sorted(set(vals))

    def writer(stop):
        w = RawConn(port, timeout=10)
        deadline = time.monotonic() + 8
        for i in range(1, 400):
            if stop.is_set() or time.monotonic() > deadline:
                break
            args = []
            for k in KEYS:
                args += [k, str(i)]
            assert w.call("MSET", *args) == b"+OK\r\n"
        w.close()

    checks = run_concurrently(writer, reader)
    assert checks > 10


def test_msetnx_all_or_nothing_under_contention(sharded_server, sr):
    port = sharded_server.port
    rounds = 100
    for rnd in range(rounds):
        keys = ["nx:%d:%d" % (rnd, i) for i in range(16)]
        # two clients race on overlapping key sets
        a_keys, b_keys = keys[:10], keys[6:]
        results = {}

        def go(name, ks):
            c = RawConn(port, timeout=10)
            args = []
            for k in ks:
                args += [k, name]
            results[name] = c.call_parsed("MSETNX", *args)
            c.close()

        ta = threading.Thread(target=go, args=("A", a_keys))
        tb = threading.Thread(target=go, args=("B", b_keys))
        ta.start(); tb.start(); ta.join(10); tb.join(10)
        assert sorted(results.values()) == [0, 1], results
        winner = "A" if results["A"] == 1 else "B"
        wk = a_keys if winner == "A" else b_keys
        vals = sr.mget(keys)
        for k, v in zip(keys, vals):
            assert v == (winner.encode() if k in wk else None), (rnd, k, v, winner)


def test_rename_is_atomic(sharded_server, sr):
    port = sharded_server.port
    pairs = [("ra:%d" % i, "rb:%d" % i) for i in range(8)]
    for a, b in pairs:
        sr.set(a, "payload-" + a)
    local = threading.local()

    def reader():
        if not hasattr(local, "c"):
            local.c = RawConn(port, timeout=10)
        for a, b in pairs:
            vals = local.c.call_parsed("MGET", a, b)
            present = [v for v in vals if v is not None]
            assert present == [b"payload-" + a.encode()], "RENAME seen half done: %r" % vals

    def writer(stop):
        w = RawConn(port, timeout=10)
        deadline = time.monotonic() + 6
        for i in range(300):
            if stop.is_set() or time.monotonic() > deadline:
                break
            for a, b in pairs:
                src, dst = (a, b) if i % 2 == 0 else (b, a)
                assert w.call("RENAME", src, dst) == b"+OK\r\n"
        w.close()

    assert run_concurrently(writer, reader) > 10
    assert sr.dbsize() == len(pairs)


def test_renamenx_and_copy_across_keys(sharded_server, sr):
    for i in range(50):
        sr.set("src:%d" % i, "v%d" % i, ex=1000)
    for i in range(50):
        assert sr.copy("src:%d" % i, "copy:%d" % i) is True
        assert sr.renamenx("src:%d" % i, "moved:%d" % i) is True
    assert sr.mget(["copy:%d" % i for i in range(50)]) == [b"v%d" % i for i in range(50)]
    assert sr.mget(["moved:%d" % i for i in range(50)]) == [b"v%d" % i for i in range(50)]
    assert sr.exists(*["src:%d" % i for i in range(50)]) == 0
    assert all(900 < sr.ttl("moved:%d" % i) <= 1000 for i in range(0, 50, 7))
    assert all(900 < sr.ttl("copy:%d" % i) <= 1000 for i in range(0, 50, 7))
    assert sr.dbsize() == 100


def test_copy_is_atomic(sharded_server, sr):
    port = sharded_server.port
    big = "x" * 5000
    local = threading.local()

    def reader():
        if not hasattr(local, "c"):
            local.c = RawConn(port, timeout=10)
        for i in range(8):
            v = local.c.call_parsed("GET", "cdst:%d" % i)
            assert v is None or v in (b"A" + big.encode(), b"B" + big.encode()), (v or b"")[:20]

    def writer(stop):
        w = RawConn(port, timeout=10)
        w.call("SET", "csrcA", "A" + big)
        w.call("SET", "csrcB", "B" + big)
        deadline = time.monotonic() + 6
        for i in range(200):
            if stop.is_set() or time.monotonic() > deadline:
                break
            for j in range(8):
                assert w.call("COPY", "csrc" + "AB"[i % 2], "cdst:%d" % j, "REPLACE") == b":1\r\n"
        w.close()

    assert run_concurrently(writer, reader) > 10


def test_del_exists_count_across_keys(sharded_server, sr):
    keys = ["dk:%d" % i for i in range(200)]
    sr.mset({k: 1 for k in keys})
    assert sr.exists(*keys) == 200
    assert sr.touch(*keys) == 200
    assert sr.delete(*keys[:150], "nokey") == 150
    assert sr.unlink(*keys) == 50
    assert sr.dbsize() == 0


def test_scan_full_iteration_returns_every_stable_key(sharded_server, sr):
    """Keys present for the whole iteration must all be returned, while other
    keys are added and deleted concurrently."""
    port = sharded_server.port
    stable = {("stable:%d" % i).encode() for i in range(3000)}
    p = sr.pipeline(transaction=False)
    for k in stable:
        p.set(k, 1)
    p.execute()
    seen = set()
    done = threading.Event()

    def churn():
        c = RawConn(port, timeout=10)
        i = 0
        while not done.is_set() and i < 20000:
            c.call("SET", "churn:%d" % i, "1")
            if i >= 50:
                c.call("DEL", "churn:%d" % (i - 50))
            i += 1
        c.close()

    t = threading.Thread(target=churn, daemon=True)
    t.start()
    try:
        cursor, calls = 0, 0
        while True:
            cursor, keys = sr.scan(cursor, count=25)
            seen.update(keys)
            calls += 1
            assert calls < 100000
            if cursor == 0:
                break
    finally:
        done.set()
        t.join(20)
    missing = stable - seen
    assert not missing, "%d stable keys never returned, e.g. %r" % (len(missing), sorted(missing)[:5])


def test_scan_match_type_across_shards(sharded_server, sr):
    sr.mset({"user:%d" % i: i for i in range(500)})
    sr.mset({"item:%d" % i: i for i in range(500)})
    got, cursor = [], 0
    for _ in range(100000):
        cursor, keys = sr.scan(cursor, match="user:*", count=30, _type="string")
        got += keys
        if cursor == 0:
            break
    assert set(got) == {("user:%d" % i).encode() for i in range(500)}


def test_keys_dbsize_randomkey_flush_across_shards(sharded_server, sr):
    sr.mset({"k%d" % i: i for i in range(1000)})
    assert sr.dbsize() == 1000
    assert len(sr.keys("*")) == 1000
    assert sorted(sr.keys("k99?")) == [("k99%d" % i).encode() for i in range(10)]
    assert all(sr.randomkey() is not None for _ in range(20))
    c1 = sharded_server.client(db=1)
    c1.mset({"o%d" % i: i for i in range(100)})
    assert sr.flushdb() is True
    assert sr.dbsize() == 0 and c1.dbsize() == 100
    assert sr.flushall() is True
    assert c1.dbsize() == 0


def test_mget_order_across_shards(sharded_server, sr):
    keys = ["order:%d" % i for i in range(500)]
    sr.mset({k: k for k in keys[::2]})
    vals = sr.mget(keys)
    assert vals == [k.encode() if i % 2 == 0 else None for i, k in enumerate(keys)]


def test_pipeline_across_shards_keeps_order(sharded_server, sr):
    p = sr.pipeline(transaction=False)
    for i in range(5000):
        p.incr("ctr:%d" % (i % 37))
    res = p.execute()
    counts = {}
    for i, v in enumerate(res):
        k = i % 37
        counts[k] = counts.get(k, 0) + 1
        assert v == counts[k]
