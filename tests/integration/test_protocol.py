"""The wire: malformed requests, limits (proto-max-bulk-len,
client-query-buffer-limit, client-output-buffer-limit, maxclients), inline
commands, pipelining of any depth."""
import socket
import threading
import time

import pytest

from conftest import RawConn, encode_command, parse_info, wait_for


def closes_with(server, data, expected_reply, timeout=5):
    c = server.raw()
    c.send(data)
    got = c.read_until_closed(timeout=timeout)
    assert got == expected_reply
    # the server is fine afterwards
    assert server.raw().call("PING") == b"+PONG\r\n"


@pytest.mark.parametrize("data,reply", [
    (b"*1\r\nxx\r\n", b"-ERR Protocol error: expected '$', got 'x'\r\n"),
    (b"*2\r\n$3\r\nGET\r\n:1\r\n", b"-ERR Protocol error: expected '$', got ':'\r\n"),
    (b"*abc\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
    (b"*2147483648\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
    (b"*1\r\n$abc\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
    (b"*1\r\n$-1\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
    (b"*1\r\n$2147483648\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
    (b'SET k "unbalanced\r\n', b"-ERR Protocol error: unbalanced quotes in request\r\n"),
    (b"SET k 'x\r\n", b"-ERR Protocol error: unbalanced quotes in request\r\n"),
    (b"PING\r\n*1\r\nxx\r\nPING\r\n", b"+PONG\r\n-ERR Protocol error: expected '$', got 'x'\r\n"),
], ids=["expected-dollar", "expected-dollar-colon", "mbulk-nan", "mbulk-too-big", "bulk-nan", "bulk-negative",
        "bulk-too-big", "unbalanced-dq", "unbalanced-sq", "after-good-command"])
def test_protocol_errors_close_connection(server, r, data, reply):
    closes_with(server, data, reply)


def test_too_big_inline_request(server, r):
    closes_with(server, b"x" * (70 * 1024), b"-ERR Protocol error: too big inline request\r\n")


def test_bulk_over_proto_max_bulk_len(make_server):
    srv = make_server(**{"proto-max-bulk-len": "1mb"})
    x = srv.raw()
    assert x.call("CONFIG", "GET", "proto-max-bulk-len") == \
        b"*2\r\n$18\r\nproto-max-bulk-len\r\n$7\r\n1048576\r\n"
    # just under the limit: accepted
    assert x.call("SET", "k", b"x" * (1024 * 1024)) == b"+OK\r\n"
    # over it: refused from the header alone, then closed
    c = srv.raw()
    c.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n" % (1024 * 1024 + 1))
    assert c.read_until_closed() == b"-ERR Protocol error: invalid bulk length\r\n"
    assert srv.client().strlen("k") == 1024 * 1024
    # the value limit also bounds APPEND and SETRANGE
    assert x.err("APPEND", "k", "y") == "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
    assert x.err("SETRANGE", "k", "1048576", "y") == \
        "ERR string exceeds maximum allowed size (proto-max-bulk-len)"


def test_unauthenticated_limits(make_server):
    """Before AUTH, Redis 7.0 takes at most 10 arguments of at most 16384
    bytes each (so that a stranger cannot make it allocate much)."""
    srv = make_server(requirepass="pw")
    ok = srv.raw()
    ok.send(b"*10\r\n" + b"$1\r\nx\r\n" * 10)
    assert ok.reply_bytes() == b"-ERR unknown command 'x', with args beginning with: 'x' 'x' 'x' 'x' 'x' 'x' 'x' 'x' 'x' \r\n"
    assert ok.err("GET", "k" * 16384) == "NOAUTH Authentication required."
    c = srv.raw()
    c.send(b"*11\r\n")
    assert c.read_until_closed() == b"-ERR Protocol error: unauthenticated multibulk length\r\n"
    c = srv.raw()
    c.send(b"*2\r\n$3\r\nGET\r\n$16385\r\n")
    assert c.read_until_closed() == b"-ERR Protocol error: unauthenticated bulk length\r\n"
    # after AUTH the limits are the configured ones
    assert ok.call("AUTH", "pw") == b"+OK\r\n"
    assert ok.call("MSET", *(["k", "v"] * 20)) == b"+OK\r\n"
    assert ok.call("SET", "big", "x" * 100000) == b"+OK\r\n"


def test_query_buffer_limit_closes_client(make_server):
    srv = make_server(**{"client-query-buffer-limit": "1mb", "proto-max-bulk-len": "16mb"})
    x = srv.raw()
    # a command within the limit is fine
    assert x.call("SET", "ok", b"x" * (900 * 1024)) == b"+OK\r\n"
    c = srv.raw()
    c.call("CLIENT", "SETNAME", "bigquery")
    payload = b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%d\r\n" % (3 * 1024 * 1024) + b"x" * (3 * 1024 * 1024) + b"\r\n"
    try:
        c.send(payload)
    except (ConnectionResetError, BrokenPipeError):
        pass
    try:
        got = c.read_until_closed(timeout=10)
    except (ConnectionResetError, BrokenPipeError):
        got = b""
    assert got == b"" or got.startswith(b"-ERR"), got[:200]
    assert x.call("EXISTS", "big") == b":0\r\n"
    wait_for(lambda: b"name=bigquery" not in x.call_parsed("CLIENT", "LIST"), timeout=5,
             what="bigquery client to be gone")


def test_slow_reader_hits_output_buffer_limit(make_server):
    srv = make_server(**{"client-output-buffer-limit": "normal 1mb 0 0"})
    x = srv.raw()
    c = srv.client()
    c.set("big", b"v" * (1024 * 1024))
    slow = srv.raw(rcvbuf=4096)
    assert slow.call("CLIENT", "SETNAME", "slowreader") == b"+OK\r\n"
    sid = slow.call_parsed("CLIENT", "ID")
    # ask for 64MB of replies and never read them
    try:
        slow.send(encode_command("GET", "big") * 64)
    except (ConnectionResetError, BrokenPipeError):
        pass
    wait_for(lambda: ("id=%d " % sid).encode() not in x.call_parsed("CLIENT", "LIST"), timeout=15,
             interval=0.05, what="slow reader to be disconnected")
    assert x.call("PING") == b"+PONG\r\n"
    assert c.strlen("big") == 1024 * 1024
    # the slow client eventually sees the connection end
    slow.sock.settimeout(10)
    total = 0
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            d = slow.sock.recv(1 << 20)
        except (ConnectionResetError, socket.timeout):
            break
        if not d:
            break
        total += len(d)
    assert total < 64 * 1024 * 1024


def test_output_buffer_unlimited_by_default(server, r):
    """With the default `normal 0 0 0`, a client that reads late still gets
    every reply."""
    r.set("big", b"v" * (256 * 1024))
    c = server.raw(rcvbuf=4096, timeout=15)
    n = 40
    c.send(encode_command("GET", "big") * n)
    time.sleep(0.3)
    for _ in range(n):
        assert len(c.reply_bytes()) == 256 * 1024 + len(b"$262144\r\n\r\n")


def test_maxclients(make_server):
    srv = make_server(maxclients=4)
    conns = [srv.raw() for _ in range(4)]
    for c in conns:
        assert c.call("PING") == b"+PONG\r\n"
    extra = srv.raw()
    assert extra.read_until_closed(timeout=5) == b"-ERR max number of clients reached\r\n"
    st = parse_info(conns[0].call_parsed("INFO", "stats"))["stats"]
    assert int(st["rejected_connections"]) >= 1
    conns[3].close()
    # a slot frees up once a client leaves
    def can_connect():
        c = srv.raw()
        try:
            return c.call("PING") == b"+PONG\r\n"
        except (ConnectionError, OSError):
            return False
        finally:
            c.close()
    wait_for(can_connect, timeout=5, interval=0.1, what="a free client slot")


def test_inline_commands(server, r):
    x = server.raw()
    x.send(b"SET ik hello\r\n")
    assert x.reply_bytes() == b"+OK\r\n"
    x.send(b"GET ik\r\n")
    assert x.reply_bytes() == b"$5\r\nhello\r\n"
    # quotes and escapes, bare LF, empty lines ignored
    x.send(b'SET "a key" "c\\x41d\\n"\n\r\n\nGET "a key"\n' + b"EXISTS 'a key' ik\r\n")
    assert x.reply_bytes() == b"+OK\r\n"
    assert x.reply_bytes() == b"$4\r\ncAd\n\r\n"
    assert x.reply_bytes() == b":2\r\n"
    x.send(b"ping\r\n")
    assert x.reply_bytes() == b"+PONG\r\n"
    # inline and multibulk mixed in one packet
    x.send(b"PING\r\n" + encode_command("ECHO", "x") + b"PING x\r\n")
    assert x.reply_bytes() == b"+PONG\r\n"
    assert x.reply_bytes() == b"$1\r\nx\r\n"
    assert x.reply_bytes() == b"$1\r\nx\r\n"
    x.send(b"GET\r\n")
    assert x.reply_bytes() == b"-ERR wrong number of arguments for 'get' command\r\n"
    # empty multibulk headers are skipped
    x.send(b"*0\r\n*-1\r\nPING\r\n")
    assert x.reply_bytes() == b"+PONG\r\n"


def test_request_split_byte_by_byte(server, r):
    x = server.raw()
    x.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    data = encode_command("SET", "frag", "a\r\nb") + encode_command("GET", "frag") + b"PING\r\n"
    for i in range(len(data)):
        x.send(data[i:i + 1])
        if i % 16 == 0:
            time.sleep(0.001)
    assert x.reply_bytes() == b"+OK\r\n"
    assert x.reply_bytes() == b"$4\r\na\r\nb\r\n"
    assert x.reply_bytes() == b"+PONG\r\n"


def _send_in_thread(conn, data):
    err = []

    def run():
        try:
            conn.sock.sendall(data)
        except OSError as e:
            err.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, err


@pytest.mark.parametrize("depth", [1, 10, 1000, 50000])
def test_pipeline_depth(server, r, depth):
    x = server.raw(timeout=30)
    cmds = []
    for i in range(depth):
        cmds.append(encode_command("INCR", "ctr") if i % 2 == 0 else encode_command("PING"))
    t, err = _send_in_thread(x, b"".join(cmds))
    n = 0
    for i in range(depth):
        rep = x.reply_bytes()
        if i % 2 == 0:
            n += 1
            assert rep == b":%d\r\n" % n
        else:
            assert rep == b"+PONG\r\n"
    t.join(10)
    assert not err
    assert r.get("ctr") == str(n).encode()


def test_inline_pipeline(server, r):
    x = server.raw(timeout=30)
    data = b"".join(b"SET k%d v%d\r\n" % (i, i) for i in range(5000)) + b"DBSIZE\r\n"
    t, err = _send_in_thread(x, data)
    for i in range(5000):
        assert x.reply_bytes() == b"+OK\r\n"
    assert x.reply_bytes() == b":5000\r\n"
    t.join(10)
    assert not err


def test_client_that_disconnects_midcommand(server, r):
    for _ in range(20):
        c = RawConn(server.port)
        c.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\nabc")
        c.close()
    x = server.raw()
    assert x.call("EXISTS", "k") == b":0\r\n"
    assert x.call("PING") == b"+PONG\r\n"
