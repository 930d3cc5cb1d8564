"""Pub/sub (SUBSCRIBE family, PUBLISH, PUBSUB) and keyspace notifications,
compared byte for byte with redis-server 7.0 where the bytes are fixed.
Subscribers and publishers sit on different connections, hence on different
worker threads with `shards 4`."""
import threading
import time

import pytest
import redis

from conftest import wait_for


def test_subscribe_replies_resp2(server, r):
    with server.raw() as x:
        assert x.call("UNSUBSCRIBE") == b"*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n"
        assert x.call("PUNSUBSCRIBE") == b"*3\r\n$12\r\npunsubscribe\r\n$-1\r\n:0\r\n"
        x.send(b"*4\r\n$9\r\nSUBSCRIBE\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\na\r\n")
        want = (b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n"
                b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:2\r\n")
        assert x.reply_bytes() + x.reply_bytes() + x.reply_bytes() == want
        assert x.call("PSUBSCRIBE", "a*") == b"*3\r\n$10\r\npsubscribe\r\n$2\r\na*\r\n:3\r\n"
        assert x.call("UNSUBSCRIBE", "zz") == b"*3\r\n$11\r\nunsubscribe\r\n$2\r\nzz\r\n:3\r\n"
        assert x.err("GET", "k") == ("ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING "
                                     "/ QUIT / RESET are allowed in this context")
        assert x.err("PUBLISH", "a", "b").startswith("ERR Can't execute 'publish'")
        assert x.call("PING") == b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"
        assert x.call("SSUBSCRIBE", "s") == b"*3\r\n$10\r\nssubscribe\r\n$1\r\ns\r\n:1\r\n"
        assert x.call("RESET") == b"+RESET\r\n"
        assert x.call("PING") == b"+PONG\r\n"
        assert r.pubsub_numsub("a", "b", "s") == [(b"a", 0), (b"b", 0), (b"s", 0)]
        assert r.pubsub_numpat() == 0


def test_message_formats_resp2_and_resp3(server, r):
    """Sentinel reads RESP2 3-element `message` arrays; RESP3 gets pushes,
    and a client publishing to itself sees the push before the count."""
    with server.raw() as s2, server.raw() as s3:
        s2.call("SUBSCRIBE", "__sentinel__:hello")
        s2.call("PSUBSCRIBE", "__sentinel__:*")
        s3.call("HELLO", "3")
        assert s3.call("SUBSCRIBE", "__sentinel__:hello") == \
            b">3\r\n$9\r\nsubscribe\r\n$18\r\n__sentinel__:hello\r\n:1\r\n"
        assert r.publish("__sentinel__:hello", "127.0.0.1,26379,id,0") == 3
        msg = b"$18\r\n__sentinel__:hello\r\n$20\r\n127.0.0.1,26379,id,0\r\n"
        assert s2.read_available(0.3) == (b"*3\r\n$7\r\nmessage\r\n" + msg +
                                          b"*4\r\n$8\r\npmessage\r\n$14\r\n__sentinel__:*\r\n" + msg)
        assert s3.read_available(0.3) == b">3\r\n$7\r\nmessage\r\n" + msg
        s3.send(b"*3\r\n$7\r\nPUBLISH\r\n$18\r\n__sentinel__:hello\r\n$1\r\nx\r\n")
        assert s3.reply_bytes() == b">3\r\n$7\r\nmessage\r\n$18\r\n__sentinel__:hello\r\n$1\r\nx\r\n"
        assert s3.reply_bytes() == b":3\r\n"


def test_fanout_order_across_workers(sharded_server, sr):
    n_subs, n_msgs = 8, 200
    got = {i: [] for i in range(n_subs)}
    conns, threads = [], []
    for i in range(n_subs):
        c = sharded_server.client()
        p = c.pubsub()
        if i % 2:
            p.psubscribe("fan*")
        else:
            p.subscribe("fanout")
        p.get_message(timeout=1)
        conns.append(p)

    def reader(i, p):
        while True:
            m = p.get_message(timeout=5)
            if m is None:
                return
            if m["type"] in ("message", "pmessage"):
                got[i].append(m["data"])
                if m["data"] == b"END":
                    return

    for i, p in enumerate(conns):
        t = threading.Thread(target=reader, args=(i, p), daemon=True)
        t.start()
        threads.append(t)
    assert sr.pubsub_numsub("fanout") == [(b"fanout", n_subs // 2)]
    assert sr.pubsub_numpat() == 1
    assert sr.pubsub_channels() == [b"fanout"]
    assert {sr.publish("fanout", "m%d" % j) for j in range(n_msgs)} == {n_subs}
    sr.publish("fanout", "END")
    for t in threads:
        t.join(10)
    want = [b"m%d" % j for j in range(n_msgs)] + [b"END"]
    assert all(got[i] == want for i in range(n_subs))
    for p in conns:
        p.close()
    wait_for(lambda: sr.pubsub_numsub("fanout") == [(b"fanout", 0)] and sr.pubsub_numpat() == 0,
             what="subscriptions gone with their clients")


def test_pubsub_introspection(server, r, x):
    p = r.pubsub()
    p.subscribe("ch1", "ch2")
    p.psubscribe("p*", "q*")
    p.get_message(timeout=1)
    assert sorted(r.pubsub_channels()) == [b"ch1", b"ch2"]
    assert r.pubsub_channels("*2") == [b"ch2"]
    assert r.pubsub_numpat() == 2
    assert x.call("PUBSUB", "NUMSUB", "ch1", "zz") == b"*4\r\n$3\r\nch1\r\n:1\r\n$2\r\nzz\r\n:0\r\n"
    assert x.call("PUBSUB", "NUMSUB") == b"*0\r\n"
    assert x.err("PUBSUB", "CHANNELS", "a", "b") == \
        "ERR unknown subcommand or wrong number of arguments for 'CHANNELS'. Try PUBSUB HELP."
    assert x.err("PUBSUB", "NUMPAT", "x") == "ERR wrong number of arguments for 'pubsub|numpat' command"
    assert x.err("PUBSUB", "foo") == "ERR unknown subcommand 'foo'. Try PUBSUB HELP."
    assert len(x.call_parsed("PUBSUB", "HELP")) == 14
    assert r.publish("pz", "m") == 1 and r.publish("ch1", "m") == 1 and r.publish("none", "m") == 0
    p.close()


def test_notify_keyspace_events_option(server, r):
    for val, shown in [("KEAn", "AKE"), ("nKg", "gnK"), ("mEK", "KEm"), ("ztx", "zxt"), ("A$", "A"), ("", "")]:
        r.config_set("notify-keyspace-events", val)
        assert r.config_get("notify-keyspace-events") == {"notify-keyspace-events": shown}
    with pytest.raises(redis.ResponseError, match="Invalid event class character. Use 'Ag\\$lshzxeKEtmdn'."):
        r.config_set("notify-keyspace-events", "q")


def collect(p, timeout=0.3):
    out = []
    while True:
        m = p.get_message(timeout=timeout)
        if m is None:
            return out
        if m["type"] == "pmessage":
            out.append((m["channel"].decode(), m["data"].decode()))


def test_keyspace_notifications_and_expiry(server, r):
    r.config_set("notify-keyspace-events", "KEA")
    try:
        p = r.pubsub()
        p.psubscribe("__key*__:*")
        p.get_message(timeout=1)
        r.set("sess:1", "x", px=150)
        r.lpush("L", "a")
        r.rpop("L")
        r.expire("nokey", 10)
        r.incr("n")
        time.sleep(0.5)  # sess:1 expires: active expiry reports it
        got = collect(p)
        assert got == [("__keyspace@0__:sess:1", "set"), ("__keyevent@0__:set", "sess:1"),
                       ("__keyspace@0__:sess:1", "expire"), ("__keyevent@0__:expire", "sess:1"),
                       ("__keyspace@0__:L", "lpush"), ("__keyevent@0__:lpush", "L"),
                       ("__keyspace@0__:L", "rpop"), ("__keyevent@0__:rpop", "L"),
                       ("__keyspace@0__:L", "del"), ("__keyevent@0__:del", "L"),
                       ("__keyspace@0__:n", "incrby"), ("__keyevent@0__:incrby", "n"),
                       ("__keyspace@0__:sess:1", "expired"), ("__keyevent@0__:expired", "sess:1")]
        r.config_set("notify-keyspace-events", "Kx")  # keyspace channel, expired class only
        r.set("s2", "x", px=50)
        r.delete("n")
        time.sleep(0.4)
        assert collect(p) == [("__keyspace@0__:s2", "expired")]
        p.close()
    finally:
        r.config_set("notify-keyspace-events", "")


def test_cli_csv_psubscribe_sees_expiry(server, r):
    """What ops run to watch sessions expire."""
    import subprocess
    from conftest import REDIS_CLI
    r.config_set("notify-keyspace-events", "KEA")
    try:
        proc = subprocess.Popen([REDIS_CLI, "-p", str(server.port), "--csv", "psubscribe", "__key*__:*"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        wait_for(lambda: r.pubsub_numpat() == 1, what="redis-cli subscribed")
        r.set("sess:42", "x", px=100)
        time.sleep(0.6)
        proc.terminate()
        out = proc.communicate(timeout=5)[0].decode().splitlines()
        assert out[-6:] == ['"pmessage","__key*__:*","__keyspace@0__:sess:42","set"',
                            '"pmessage","__key*__:*","__keyevent@0__:set","sess:42"',
                            '"pmessage","__key*__:*","__keyspace@0__:sess:42","expire"',
                            '"pmessage","__key*__:*","__keyevent@0__:expire","sess:42"',
                            '"pmessage","__key*__:*","__keyspace@0__:sess:42","expired"',
                            '"pmessage","__key*__:*","__keyevent@0__:expired","sess:42"']
    finally:
        r.config_set("notify-keyspace-events", "")
