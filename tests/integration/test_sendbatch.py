"""Replies of many connections written together (protocol/sendbatch.c).

A worker and the HTTP listener write the replies of every connection served
in a loop turn at its end, in one io_uring submission when there are two or
more.  Here 40 RESP clients and 20 HTTP clients each send a whole pipeline
at once, so that turns have many connections to answer, and every reply must
arrive whole and in order: with `io-uring yes` (the default), with `no`, and
after switching it at run time.  With yes the server holds an io_uring ring
(unless the kernel refused one, which the log then says); with no it never
opens one.  Every loop is bounded in count and in time."""
import os
import socket
import time

import pytest

from conftest import parse_info

pytestmark = pytest.mark.obentchi_only  # io-uring is our option

NCLIENTS = 40
DEPTH = 200


def rings(pid):
    n = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            if "io_uring" in os.readlink("/proc/%d/fd/%s" % (pid, fd)):
                n += 1
        except OSError:
            pass
    return n


def refused(srv):
    return "io_uring is not available" in srv.log_path.read_text(errors="replace")


def uring_stats(x):
    st = parse_info(x.call_parsed("INFO", "stats"))["stats"]
    return st["io_uring"], int(st["io_uring_batches"]), int(st["io_uring_batched_sends"])


def read_exactly(sock, n, deadline):
    data = b""
    while len(data) < n and time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def resp_burst(srv, tag):
    """NCLIENTS connections each send DEPTH INCRs in one write, all before
    any reads; each must get 1..DEPTH in order."""
    socks = [socket.create_connection((srv.host, srv.port), timeout=10) for _ in range(NCLIENTS)]
    try:
        for i, s in enumerate(socks):
            key = b"%s:%d" % (tag.encode(), i)
            s.sendall(b"*2\r\n$4\r\nINCR\r\n$%d\r\n%s\r\n" % (len(key), key) * DEPTH)
        expected = b"".join(b":%d\r\n" % n for n in range(1, DEPTH + 1))
        deadline = time.monotonic() + 20
        for s in socks:
            assert read_exactly(s, len(expected), deadline) == expected
    finally:
        for s in socks:
            s.close()


def http_burst(srv, n=20, depth=10):
    socks = [socket.create_connection((srv.host, srv.http_port), timeout=10) for _ in range(n)]
    try:
        req = b"GET /no-such-page HTTP/1.1\r\nHost: t\r\n\r\n"
        for s in socks:
            s.sendall(req * depth)
        deadline = time.monotonic() + 20
        for s in socks:
            data = b""
            while data.count(b"HTTP/1.1 404 ") < depth and time.monotonic() < deadline:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            assert data.count(b"HTTP/1.1 404 ") == depth
            assert data.startswith(b"HTTP/1.1 404 ")
    finally:
        for s in socks:
            s.close()


def test_bursts_with_io_uring(make_server):
    srv = make_server()
    x = srv.raw()
    assert x.call_parsed("CONFIG", "GET", "io-uring") == [b"io-uring", b"yes"]
    for round_ in range(3):
        resp_burst(srv, "u%d" % round_)
        http_burst(srv)
    if refused(srv):
        assert uring_stats(x)[0] == "unavailable"
        pytest.skip("the kernel refused io_uring here; the one-send path served everything")
    assert rings(srv.proc.pid) >= 1
    state, batches, sends = uring_stats(x)
    assert state == "on"
    assert batches >= 1 and sends >= batches


def test_bursts_without_io_uring(make_server):
    srv = make_server(**{"io-uring": "no"})
    x = srv.raw()
    assert x.call_parsed("CONFIG", "GET", "io-uring") == [b"io-uring", b"no"]
    for round_ in range(3):
        resp_burst(srv, "n%d" % round_)
        http_burst(srv)
    assert rings(srv.proc.pid) == 0
    assert not refused(srv)  # it was not refused: it was never asked for
    assert uring_stats(x) == ("off", 0, 0)


def test_switched_at_run_time(make_server):
    srv = make_server(**{"io-uring": "no"})
    x = srv.raw()
    resp_burst(srv, "a")
    assert rings(srv.proc.pid) == 0
    assert x.call_parsed("CONFIG", "SET", "io-uring", "yes") == "OK"
    resp_burst(srv, "b")
    http_burst(srv)
    if not refused(srv):
        assert rings(srv.proc.pid) >= 1
    assert x.call_parsed("CONFIG", "SET", "io-uring", "no") == "OK"
    resp_burst(srv, "c")  # served one send each again, the rings kept idle
    assert x.call_parsed("GET", "c:0") == b"200"
    assert x.err("CONFIG", "SET", "io-uring", "maybe").startswith("ERR")
    assert x.call_parsed("CONFIG", "GET", "io-uring") == [b"io-uring", b"no"]
