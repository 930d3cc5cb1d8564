"""The HTTP listener (protocol/http.c) and the probes (bot/health.c) on a real
obentchi-server: keep-alive, pipelining, limits (431, 413, idle close,
http-maxclients), 404/405 with Allow, malformed requests, a port in use, and
/healthz and /readyz on a master, on a replica and after its promotion."""
import socket
import time

import pytest

from conftest import free_port, wait_for

pytestmark = pytest.mark.obentchi_only


class HttpConn:
    """A raw HTTP/1.1 connection: exact bytes in, answers parsed out."""

    def __init__(self, port, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def _fill(self):
        d = self.sock.recv(65536)
        if not d:
            raise ConnectionError("closed by the server")
        self.buf += d

    def answer(self):
        """(status, headers dict lower-case, body) of the next answer."""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        assert lines[0].startswith("HTTP/1.1 "), lines[0]
        headers = {}
        for line in lines[1:]:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
        assert "content-length" in headers, "every answer has Content-Length: %r" % head
        n = int(headers["content-length"])
        while len(self.buf) < n:
            self._fill()
        body, self.buf = self.buf[:n], self.buf[n:]
        return status, headers, body

    def closed(self, timeout=3.0):
        """True when the server closes the connection within timeout."""
        self.sock.settimeout(timeout)
        try:
            while True:
                d = self.sock.recv(65536)
                if not d:
                    return True
                self.buf += d
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True


def get(path, extra=""):
    return "GET %s HTTP/1.1\r\nHost: t\r\n%s\r\n" % (path, extra)


@pytest.fixture
def hs(make_server):
    return make_server(**{"http-max-body": "2kb", "http-max-header": "4kb"})


def test_harness_gives_each_server_its_own_port(hs):
    assert hs.http_port and hs.http_port != 8080
    status, headers, body = hs.http("GET", "/healthz")
    assert (status, body) == (200, b"ok\n")
    assert headers["content-type"] == "text/plain"


def test_keep_alive_and_pipelining(hs):
    c = HttpConn(hs.http_port)
    try:
        for _ in range(3):  # one after another on one connection
            c.send(get("/healthz"))
            assert c.answer()[0] == 200
        # pipelined: all sent at once, answered in order
        c.send(get("/healthz") + get("/nope") + "POST /readyz HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc"
               + get("/readyz"))
        answers = [c.answer() for _ in range(4)]
        assert [a[0] for a in answers] == [200, 404, 405, 200]
        assert answers[2][1]["allow"] == "GET"
        assert answers[3][2] == b"ready\n"
        assert not c.closed(timeout=0.3)  # still open
        # Connection: close is honoured: the answer says so and the socket closes
        c.send(get("/healthz", "Connection: close\r\n"))
        status, headers, _ = c.answer()
        assert status == 200 and headers.get("connection") == "close"
        assert c.closed()
    finally:
        c.close()


def test_http10_closes(hs):
    c = HttpConn(hs.http_port)
    c.send("GET /healthz HTTP/1.0\r\n\r\n")
    assert c.answer()[0] == 200
    assert c.closed()
    c.close()


def test_header_too_large_is_431(hs):
    c = HttpConn(hs.http_port)
    c.send("GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: %s\r\n\r\n" % ("a" * 5000))
    status, headers, _ = c.answer()
    assert status == 431 and headers.get("connection") == "close"
    assert c.closed()
    c.close()
    # just under the limit: served
    c = HttpConn(hs.http_port)
    c.send("GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: %s\r\n\r\n" % ("a" * 3000))
    assert c.answer()[0] == 200
    c.close()


def test_body_too_large_is_413_and_closes(hs):
    c = HttpConn(hs.http_port)
    c.send("POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n")
    status, headers, _ = c.answer()
    assert status == 413 and headers.get("connection") == "close"
    assert c.closed()
    c.close()
    # chunked, no length up front: caught while reading
    c = HttpConn(hs.http_port)
    chunk = "a" * 1500
    c.send("POST /healthz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
           "%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(chunk), chunk, len(chunk), chunk))
    assert c.answer()[0] == 413
    assert c.closed()
    c.close()
    # at the limit: read whole, then routed (405: /healthz is GET only)
    c = HttpConn(hs.http_port)
    c.send("POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 2048\r\n\r\n" + "b" * 2048)
    assert c.answer()[0] == 405
    c.close()


def test_malformed_is_400(hs):
    for junk in ["GET /healthz HTTP/1.1\r\nHost t\r\n\r\n", "\x16\x03\x01 not http\r\n\r\n",
                 "GET /healthz HTTP/9.Q\r\n\r\n"]:
        c = HttpConn(hs.http_port)
        c.send(junk)
        assert c.answer()[0] == 400, junk
        assert c.closed()
        c.close()
    # the listener still serves
    assert hs.http("GET", "/healthz")[0] == 200


def test_404_405_allow(hs):
    assert hs.http("GET", "/no/such/path")[0] == 404
    status, headers, _ = hs.http("DELETE", "/metrics")
    assert status == 405 and headers["allow"] == "GET"
    # the query string does not change the route
    assert hs.http("GET", "/healthz?verbose=1")[0] == 200


def test_idle_connections_close(make_server):
    srv = make_server(**{"http-idle-timeout": "1"})
    c = HttpConn(srv.http_port)
    c.send(get("/healthz"))
    assert c.answer()[0] == 200
    t0 = time.monotonic()
    assert c.closed(timeout=5)
    assert time.monotonic() - t0 < 4
    c.close()
    # half a request (slowloris) is closed too
    c = HttpConn(srv.http_port)
    c.send("GET /healthz HTTP/1.1\r\nHost: t\r\n")
    assert c.closed(timeout=5)
    c.close()


def test_maxclients(make_server):
    srv = make_server(**{"http-maxclients": "3"})
    held = [HttpConn(srv.http_port) for _ in range(3)]
    try:
        for c in held:
            c.send(get("/healthz"))
            assert c.answer()[0] == 200
        extra = HttpConn(srv.http_port)
        status, headers, body = extra.answer()
        assert status == 503 and b"too many" in body
        assert extra.closed()
        extra.close()
        held.pop().close()
        # a slot frees once the server sees the close
        wait_for(lambda: _try(srv), 5, what="a free slot")
    finally:
        for c in held:
            c.close()


def _try(srv):
    try:
        return srv.http("GET", "/healthz")[0] == 200
    except (ConnectionError, OSError):
        return False


def test_http_port_in_use_fails_start(make_server):
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    port = blocker.getsockname()[1]
    try:
        srv = make_server(start=False, **{"http-port": str(port)})
        srv.expect_failure = True
        proc = srv.spawn()
        rc = proc.wait(timeout=20)
        assert rc != 0
        out = srv.output() + srv.log()
        assert "HTTP listener" in out and "in use" in out, out[-2000:]
    finally:
        blocker.close()


def test_http_port_zero_means_no_listener(make_server):
    srv = make_server(**{"http-port": "0"})
    assert srv.http_port == 0
    assert srv.client().ping()


def test_probes_master_replica_promotion(make_server):
    master = make_server()
    master.client().set("k", "v")
    replica = make_server(replicaof=["127.0.0.1", str(master.port)], **{"repl-diskless-sync-delay": "0"})
    assert master.http("GET", "/readyz")[:3:2] == (200, b"ready\n")

    def replica_ready_text():
        status, _, body = replica.http("GET", "/readyz")
        assert status == 503
        return body.decode()

    want = "replica of 127.0.0.1:%d, link up\n" % master.port
    wait_for(lambda: replica_ready_text() == want, 15, what="replica readyz: link up")
    assert replica.http("GET", "/healthz")[0] == 200  # alive, just not ready
    # the master goes away: the link is down, still not ready
    master.stop()
    want_down = "replica of 127.0.0.1:%d, link down\n" % master.port
    wait_for(lambda: replica_ready_text() == want_down, 15, what="replica readyz: link down")
    # promotion: ready
    assert replica.client().execute_command("REPLICAOF", "NO", "ONE") in (b"OK", "OK", True)
    wait_for(lambda: replica.http("GET", "/readyz")[0] == 200, 10, what="readyz 200 after promotion")
    assert replica.http("GET", "/readyz")[2] == b"ready\n"
