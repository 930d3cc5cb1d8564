"""Harness for the integration tests in tests/integration/.

Each server under test is started by the harness on a free loopback port with
its own temporary `dir`, waited on until PING answers, and stopped by its own
PID at the end (SIGTERM, then SIGKILL after a timeout).  Nothing the harness
did not start is ever signalled.

Environment:
  OBENTCHI_SERVER  path of the server under test (default build/obentchi-server)
  PEER=redis       run the whole suite against redis-server instead (the
                   tests must pass there too: that keeps them honest);
                   obentchi-only options (`shards`) are dropped and tests
                   marked `obentchi_only` are skipped.
  REDIS_SERVER, REDIS_CLI, REDIS_BENCHMARK  paths of the Redis tools
                   (default /usr/bin/...).
  OBENTCHI_START_TIMEOUT  seconds to wait for PING after start (default 20).

Always run with Debian's interpreter (python3-redis 4.3.4, python3-pytest):
  /usr/bin/python3 -m pytest tests -q
  PEER=redis /usr/bin/python3 -m pytest tests -q
"""
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis

REPO = Path(__file__).resolve().parent.parent
# mongo-c-driver initialises itself when the binary loads, before main(), and
# keeps counters in /dev/shm/mongoc-<pid>.  The servers this suite SIGKILLs
# leave their files behind; a later server given a reused pid then warns on
# stderr before its logfile is open.  The counters serve only mongoc-stat.
os.environ.setdefault("MONGOC_DISABLE_SHM", "1")

PEER = os.environ.get("PEER", "").strip().lower()
IS_PEER = PEER == "redis"
REDIS_SERVER = os.environ.get("REDIS_SERVER", "/usr/bin/redis-server")
REDIS_CLI = os.environ.get("REDIS_CLI", "/usr/bin/redis-cli")
REDIS_BENCHMARK = os.environ.get("REDIS_BENCHMARK", "/usr/bin/redis-benchmark")
OBENTCHI_SERVER = os.environ.get("OBENTCHI_SERVER", str(REPO / "build" / "obentchi-server"))
SERVER_BIN = REDIS_SERVER if IS_PEER else OBENTCHI_SERVER
START_TIMEOUT = float(os.environ.get("OBENTCHI_START_TIMEOUT", "20"))
STOP_TIMEOUT = 10.0
# Any of these in a server's output or log fails the test that owned it (the
# sanitizer build runs this same suite).
SANITIZER_PATTERNS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                      "WARNING: ThreadSanitizer", "ERROR: MemorySanitizer")

def sanitizer_report(text):
    """The first sanitizer report in a server's output and log, with some
    context, or None."""
    for pat in SANITIZER_PATTERNS:
        i = text.find(pat)
        if i >= 0:
            return text[max(0, i - 200):i + 3000]
    return None


# Options redis-server does not know: passed only to obentchi.
OBENTCHI_ONLY_OPTIONS = {"shards", "io-threads", "http-port", "http-bind", "http-max-body", "http-max-header",
                         "http-idle-timeout", "http-maxclients"}
# Options passed only to redis-server so that it leaves no dump.rdb behind and
# saves nothing on SHUTDOWN (obentchi has no persistence of that kind), and
# so that DEBUG (refused by default since Redis 7) is allowed.
PEER_ONLY_ARGS = ["--save", "", "--appendonly", "no", "--enable-debug-command", "local"]


def pytest_configure(config):
    config.addinivalue_line("markers", "obentchi_only: runs only against obentchi-server (skipped with PEER=redis)")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


def pytest_collection_modifyitems(config, items):
    if not IS_PEER:
        return
    skip = pytest.mark.skip(reason="obentchi-only (PEER=redis)")
    for item in items:
        if "obentchi_only" in item.keywords:
            item.add_marker(skip)


def pytest_report_header(config):
    return "server under test: %s%s" % (SERVER_BIN, " (PEER=redis)" if IS_PEER else "")


# ---------------------------------------------------------------- helpers


def wait_for(pred, timeout=5.0, interval=0.02, what="condition"):
    """Polls pred() until it returns a truthy value; fails after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def wait_loaded(r, timeout=20):
    """After a (re)start: until the snapshot is in.  Probed with a command
    that answers -LOADING meanwhile (PING and INFO are answered while
    loading); a server not accepting yet counts as not loaded."""
    def loaded():
        try:
            r.exists("wait-loaded-probe")
            return True
        except (redis.exceptions.BusyLoadingError, redis.exceptions.ConnectionError):
            return False
    wait_for(loaded, timeout=timeout, interval=0.05, what="the snapshot loaded")


def stop_process(proc, sig=signal.SIGTERM, timeout=10):
    """Stops a child this test started (a subprocess.Popen, or None), by its
    PID: sig, then SIGKILL when it has not exited within timeout seconds."""
    if proc is None or proc.poll() is not None:
        return
    os.kill(proc.pid, sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def encode_command(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        elif isinstance(a, int):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def parse_info(text):
    """INFO text -> {section: {field: value}} (values as strings; keyspace and
    commandstats values stay as their raw `k=v,...` strings)."""
    if isinstance(text, bytes):
        text = text.decode()
    sections, cur = {}, None
    for line in text.split("\r\n"):
        if not line:
            continue
        if line.startswith("# "):
            cur = sections.setdefault(line[2:].strip().lower(), {})
            continue
        assert ":" in line, "INFO line not field:value: %r" % line
        k, v = line.split(":", 1)
        assert cur is not None, "INFO field before any section header: %r" % line
        cur[k] = v
    return sections


def parse_kv(s):
    """'keys=1,expires=0,avg_ttl=0' -> dict."""
    return dict(p.split("=", 1) for p in s.split(","))


class RespError(Exception):
    pass


class RawConn:
    """A plain socket speaking RESP, for checking exact bytes."""

    def __init__(self, port, host="127.0.0.1", timeout=5.0, rcvbuf=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.timeout = timeout
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # sending
    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def cmd(self, *args):
        self.send(encode_command(*args))

    def call(self, *args):
        """Sends one command, returns the exact bytes of its reply."""
        self.cmd(*args)
        return self.reply_bytes()

    def call_parsed(self, *args):
        self.cmd(*args)
        return self.reply()

    def err(self, *args):
        """Sends a command that must fail; returns the exact error text
        without the leading '-' (redis-py would strip the 'ERR ' prefix)."""
        data = self.call(*args)
        assert data.startswith(b"-"), "%r did not fail: %r" % (args, data)
        return data[1:-2].decode()

    # receiving
    def _fill(self):
        d = self.sock.recv(1 << 16)
        if not d:
            raise ConnectionError("connection closed by server (buffered %r)" % self.buf[:200])
        self.buf += d

    def _line(self, pos):
        while True:
            i = self.buf.find(b"\r\n", pos)
            if i >= 0:
                return i
            self._fill()

    def _need(self, n):
        while len(self.buf) < n:
            self._fill()

    def _skip(self, pos):
        """Returns the end offset of the reply starting at pos."""
        i = self._line(pos)
        t, body = self.buf[pos:pos + 1], self.buf[pos + 1:i]
        end = i + 2
        if t in b"+-:_,#(":
            return end
        if t in b"$!=":
            n = int(body)
            if n < 0:
                return end
            self._need(end + n + 2)
            assert self.buf[end + n:end + n + 2] == b"\r\n", "bulk not followed by CRLF"
            return end + n + 2
        if t in b"*~>%|":
            n = int(body)
            if n < 0:
                return end
            if t in b"%|":
                n *= 2
            for _ in range(n):
                end = self._skip(end)
            if t == b"|":  # an attribute precedes the real reply
                end = self._skip(end)
            return end
        raise AssertionError("bad RESP type byte %r in %r" % (t, self.buf[pos:pos + 80]))

    def reply_bytes(self):
        end = self._skip(0)
        out, self.buf = self.buf[:end], self.buf[end:]
        return out

    def reply(self):
        """Parses one reply: simple -> str, bulk -> bytes, error -> RespError
        (returned, not raised), int, None, list, dict (map), set (as list),
        float (double), bool."""
        data = self.reply_bytes()
        v, _ = _parse(data, 0)
        return v

    def read_available(self, timeout=0.3):
        """Whatever arrives within timeout (plus what is buffered)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                d = self.sock.recv(1 << 16)
                if not d:
                    break
                self.buf += d
        except (socket.timeout, BlockingIOError):
            pass
        finally:
            self.sock.settimeout(self.timeout)
        out, self.buf = self.buf, b""
        return out

    def read_until_closed(self, timeout=5.0):
        """Reads until the server closes the connection; returns everything
        read.  Fails if it stays open past timeout."""
        deadline = time.monotonic() + timeout
        data = self.buf
        self.buf = b""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("connection still open after %.1fs; got %r" % (timeout, data[:300]))
            self.sock.settimeout(min(left, 0.5))
            try:
                d = self.sock.recv(1 << 16)
            except socket.timeout:
                continue
            except (ConnectionResetError, BrokenPipeError):
                return data
            if not d:
                return data
            data += d

    def is_closed(self, timeout=0.2):
        self.sock.settimeout(timeout)
        try:
            d = self.sock.recv(1 << 16)
            if d:
                self.buf += d
                return False
            return True
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True
        finally:
            self.sock.settimeout(self.timeout)


def _parse(data, pos):
    i = data.index(b"\r\n", pos)
    t, body = data[pos:pos + 1], data[pos + 1:i]
    end = i + 2
    if t == b"+":
        return body.decode(), end
    if t == b"-":
        return RespError(body.decode()), end
    if t == b":":
        return int(body), end
    if t == b"_":
        return None, end
    if t == b",":
        return float(body), end
    if t == b"#":
        return body == b"t", end
    if t == b"(":
        return int(body), end
    if t in b"$!=":
        n = int(body)
        if n < 0:
            return None, end
        return data[end:end + n], end + n + 2
    if t in b"*~>":
        n = int(body)
        if n < 0:
            return None, end
        out = []
        for _ in range(n):
            v, end = _parse(data, end)
            out.append(v)
        return out, end
    if t == b"%":
        out = {}
        for _ in range(int(body)):
            k, end = _parse(data, end)
            v, end = _parse(data, end)
            out[k if not isinstance(k, list) else tuple(k)] = v
        return out, end
    if t == b"|":
        for _ in range(int(body) * 2):
            _, end = _parse(data, end)
        return _parse(data, end)
    raise AssertionError("bad RESP type %r" % t)


# ---------------------------------------------------------------- servers


def server_env():
    """The server's environment: ours without OBENTCHI_* variables, which
    obentchi-server reads as options (OBENTCHI_SERVER, OBENTCHI_SANITIZED...
    are the harness's, not the server's)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("OBENTCHI_")}


def options_to_argv(options):
    """{'maxmemory': '1mb', 'client-output-buffer-limit': 'normal 0 0 0'} ->
    ['--maxmemory', '1mb', ...].  A list or tuple value gives several
    arguments; a string value is one argument (Redis splits command-line
    values on spaces itself).  Obentchi-only options are dropped for PEER."""
    argv = []
    for name, value in options.items():
        name = name.replace("_", "-")
        if IS_PEER and name in OBENTCHI_ONLY_OPTIONS:
            continue
        argv.append("--" + name)
        if isinstance(value, (list, tuple)):
            argv.extend(str(v) for v in value)
        else:
            argv.append(str(value))
    return argv


class Server:
    """One server process started by the harness."""

    def __init__(self, workdir, options=None, config_text=None, binary=None):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.options = dict(options or {})
        self.config_text = config_text
        self.binary = binary or SERVER_BIN
        self.host = "127.0.0.1"
        self.port = None
        self.proc = None
        self.log_path = self.dir / "server.log"
        self.out_path = self.dir / "server.out"
        self._clients = []
        self._raws = []
        self.returncode = None
        self.expect_failure = False  # set by start-up tests that expect an error exit
        self.killed = False
        self.http_port = None  # the HTTP listener's port (obentchi only; 0 = none)

    def _http_port_given(self):
        return "http-port" in self.options or "http_port" in self.options

    def _pick_http_port(self):
        if IS_PEER:
            self.http_port = None
        elif self._http_port_given():
            self.http_port = int(self.options.get("http-port", self.options.get("http_port")))
        else:
            # two free_port() calls can name the same port: never the RESP one
            self.http_port = free_port()
            while self.http_port == self.port:
                self.http_port = free_port()

    def http(self, method, path, body=None, headers=None, timeout=5.0):
        """One HTTP request to the server's listener (a new connection):
        returns (status, headers as a dict with lower-case names, body bytes)."""
        import http.client
        assert self.http_port, "this server has no HTTP listener"
        conn = http.client.HTTPConnection(self.host, self.http_port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        finally:
            conn.close()

    @property
    def is_peer(self):
        return IS_PEER

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def argv(self, port):
        argv = [self.binary]
        if self.config_text is not None:
            conf = self.dir / "server.conf"
            conf.write_text(self.config_text)
            argv.append(str(conf))
        opts = {"port": port, "bind": "127.0.0.1", "dir": str(self.dir), "logfile": str(self.log_path)}
        # every obentchi gets its own HTTP port (never the default 8080:
        # servers started in parallel would collide there)
        if not IS_PEER and self.http_port is not None and not self._http_port_given():
            opts["http-port"] = self.http_port
        opts.update(self.options)
        # A test that asks for N shards means N workers as well, whatever the
        # cores here (the server's default leaves one core free): the
        # cross-worker paths (blocking pops, pub/sub, WATCH) are what it tests.
        if "shards" in opts and "io-threads" not in opts and str(opts["shards"]).isdigit():
            opts["io-threads"] = opts["shards"]
        argv += options_to_argv(opts)
        if IS_PEER:
            argv += PEER_ONLY_ARGS
        return argv

    def spawn(self, port=None):
        """Starts the process without waiting for it (for start-up tests)."""
        if not Path(self.binary).exists():
            pytest.fail("server binary not found: %s (build it, or set OBENTCHI_SERVER / PEER=redis)" % self.binary)
        self.port = port or self.options.get("port") or free_port()
        self._pick_http_port()
        out = open(self.out_path, "ab")
        try:
            self.proc = subprocess.Popen(self.argv(self.port), cwd=str(self.dir), stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                         env=server_env())
        finally:
            out.close()
        return self.proc

    def start(self):
        for attempt in range(3):
            self.spawn(None if attempt else self.options.get("port"))
            if self._wait_ready():
                return self
            if "in use" not in self.output() and "in use" not in self.log():
                break
        rc = self.proc.poll()
        self.stop()
        raise AssertionError("server did not answer PING (exit %s)\nargv: %s\noutput:\n%s\nlog:\n%s"
                             % (rc, self.argv(self.port), self.output()[-3000:], self.log()[-3000:]))

    def _wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as s:
                    s.sendall(b"*1\r\n$4\r\nPING\r\n")
                    s.settimeout(2)
                    d = s.recv(100)
                    if d.startswith(b"+PONG") or d.startswith(b"-NOAUTH"):
                        return True
            except OSError:
                pass
            time.sleep(0.02)
        return False

    def output(self):
        try:
            return self.out_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_exit(self, timeout=10.0):
        """Waits for the process to end by itself; returns its exit status."""
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("server pid %d still running after %.1fs" % (self.proc.pid, timeout))
        return self.returncode

    def close_clients(self):
        """Closes every client and raw connection made through this handle."""
        for c in self._clients:
            try:
                c.close()
                c.connection_pool.disconnect()
            except Exception:
                pass
        self._clients.clear()
        for raw in self._raws:
            raw.close()
        self._raws.clear()

    def stop(self):
        for c in self._clients:
            try:
                c.close()
                c.connection_pool.disconnect()
            except Exception:
                pass
        self._clients.clear()
        for raw in self._raws:
            raw.close()
        self._raws.clear()
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                try:
                    os.kill(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.killed = True
                self.proc.wait(STOP_TIMEOUT)
        self.returncode = self.proc.returncode
        return self.returncode

    def exit_problems(self):
        """After stop(): what was wrong with the way the server ended (it did
        not end on SIGTERM, exited non-zero, or a sanitizer reported), as a
        list of strings; [] when it ended cleanly."""
        if self.proc is None or self.expect_failure:
            return []
        problems = []
        if self.killed:
            problems.append("did not exit within %.0fs of SIGTERM (SIGKILLed)" % STOP_TIMEOUT)
        elif self.returncode != 0:
            problems.append("exit status %s" % self.returncode)
        report = sanitizer_report(self.output() + self.log())
        if report:
            problems.append("sanitizer report: %s" % report)
        if problems:
            problems.insert(0, "server pid %d (port %s, dir %s):" % (self.proc.pid, self.port, self.dir))
        return problems

    # clients
    def client(self, **kw):
        """A redis-py client (RESP2; redis-py 4.3.4 has no RESP3)."""
        kw.setdefault("socket_timeout", 15)
        kw.setdefault("socket_connect_timeout", 5)
        c = redis.Redis(host=self.host, port=self.port, **kw)
        self._clients.append(c)
        return c

    def raw(self, timeout=5.0, rcvbuf=None):
        conn = RawConn(self.port, self.host, timeout=timeout, rcvbuf=rcvbuf)
        self._raws.append(conn)
        return conn

    def cli(self, *args, input=None, timeout=60, check=False):
        """Runs redis-cli against this server; returns CompletedProcess with
        text stdout/stderr (bytes if input is bytes)."""
        argv = [REDIS_CLI, "-h", self.host, "-p", str(self.port)] + [str(a) for a in args]
        env = dict(os.environ, REDISCLI_HISTFILE="/dev/null")
        env.pop("REDISCLI_AUTH", None)
        text = not isinstance(input, bytes)
        return subprocess.run(argv, input=input, capture_output=True, timeout=timeout, text=text, env=env,
                              check=check)


@pytest.fixture(scope="session")
def server_binary():
    return SERVER_BIN


@pytest.fixture
def make_server(tmp_path_factory):
    """Factory: make_server(maxmemory='1mb', requirepass='x', shards=4,
    config_text=..., start=True) -> Server.  Stopped after the test."""
    started = []

    def make(config_text=None, start=True, **options):
        srv = Server(tmp_path_factory.mktemp("srv"), options, config_text=config_text)
        started.append(srv)
        return srv.start() if start else srv

    yield make
    problems = []
    for srv in started:
        srv.stop()
        problems += srv.exit_problems()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def stop_checked(srv):
    srv.stop()
    problems = srv.exit_problems()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A server with default options shared by the tests of one module.
    Tests that change its configuration use make_server instead."""
    srv = Server(tmp_path_factory.mktemp("shared")).start()
    yield srv
    stop_checked(srv)


@pytest.fixture
def r(server):
    """A redis-py client on the shared server, on an empty db 0.  Every
    connection the test opened through `server` is closed afterwards."""
    server.close_clients()
    c = server.client()
    c.flushall()
    yield c
    server.close_clients()


@pytest.fixture(scope="module", params=[1, 4], ids=["shards1", "shards4"])
def sharded_server(request, tmp_path_factory):
    """The shared server started with `shards 1` and `shards 4` in turn
    (redis-server gets no shards option, so both runs are plain Redis)."""
    srv = Server(tmp_path_factory.mktemp("shards%d" % request.param), {"shards": request.param}).start()
    yield srv
    stop_checked(srv)


@pytest.fixture
def sr(sharded_server):
    sharded_server.close_clients()
    c = sharded_server.client()
    c.flushall()
    yield c
    sharded_server.close_clients()


@pytest.fixture
def x(server, r):
    """A raw RESP connection on the shared server (db 0 flushed by `r`)."""
    c = server.raw()
    yield c
    c.close()


def skip_unless_command(conn, name, *args):
    """Skips the test if the server does not know a command (e.g. LPUSH,
    needed only to make a non-string key for WRONGTYPE checks)."""
    data = conn.call(name, *args)
    if data.startswith(b"-ERR unknown command"):
        pytest.skip("server has no %s" % name)
    return data


@pytest.fixture
def cli_bin():
    return REDIS_CLI


@pytest.fixture
def benchmark_bin():
    return REDIS_BENCHMARK
