"""Start-up options, config files, SHUTDOWN, SIGTERM, log file."""
import os
import re
import signal

import pytest

from conftest import IS_PEER, sanitizer_report, wait_for


def test_shutdown_nosave_exits_zero(make_server):
    srv = make_server()
    x = srv.raw()
    x.cmd("SHUTDOWN", "NOSAVE")
    # the connection just closes: no reply
    assert x.read_until_closed(timeout=10) == b""
    assert srv.wait_exit(10) == 0


@pytest.mark.parametrize("args", [[], ["SAVE"]], ids=["plain", "save"])
def test_shutdown_exits_zero(make_server, args):
    srv = make_server()
    srv.client().set("k", "v")
    x = srv.raw()
    x.cmd("SHUTDOWN", *args)
    assert x.read_until_closed(timeout=10) == b""
    assert srv.wait_exit(10) == 0


def test_shutdown_bad_option(make_server):
    srv = make_server()
    x = srv.raw()
    assert x.err("SHUTDOWN", "BOGUS") == "ERR syntax error"
    assert x.err("SHUTDOWN", "SAVE", "NOSAVE") == "ERR syntax error"
    assert srv.alive()


def test_shutdown_needs_auth(make_server):
    srv = make_server(requirepass="pw")
    x = srv.raw()
    assert x.err("SHUTDOWN", "NOSAVE") == "NOAUTH Authentication required."
    assert srv.alive()
    x.call("AUTH", "pw")
    x.cmd("SHUTDOWN", "NOSAVE")
    x.read_until_closed(timeout=10)
    assert srv.wait_exit(10) == 0


def test_sigterm_ends_cleanly(make_server):
    srv = make_server()
    c = srv.client()
    c.set("k", "v")
    idle = srv.raw()
    idle.call("PING")
    os.kill(srv.pid, signal.SIGTERM)
    assert srv.wait_exit(10) == 0
    assert idle.read_until_closed(timeout=5) == b""


def test_sigint_ends_cleanly(make_server):
    srv = make_server()
    os.kill(srv.pid, signal.SIGINT)
    assert srv.wait_exit(10) == 0


def test_pidfile_written_then_removed(make_server, tmp_path):
    pidfile = tmp_path / "server.pid"
    srv = make_server(pidfile=str(pidfile))
    wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), timeout=5, what="the pid file")
    assert pidfile.read_text() == "%d\n" % srv.pid
    os.kill(srv.pid, signal.SIGTERM)
    assert srv.wait_exit(10) == 0
    assert not pidfile.exists()


@pytest.mark.obentchi_only
def test_failed_start_leaves_no_pidfile(make_server, tmp_path):
    first = make_server()
    pidfile = tmp_path / "second.pid"
    second = make_server(start=False, pidfile=str(pidfile), **{"http-port": first.http_port})
    second.expect_failure = True
    second.spawn()
    assert second.proc.wait(15) != 0
    assert not pidfile.exists()


def test_logfile_written(make_server):
    srv = make_server(loglevel="verbose")
    wait_for(lambda: srv.log_path.exists() and srv.log_path.stat().st_size > 0, timeout=5,
             what="log file to be written")
    assert srv.raw().call("CONFIG", "GET", "loglevel") == b"*2\r\n$8\r\nloglevel\r\n$7\r\nverbose\r\n"
    # with a logfile, nothing goes to stdout/stderr
    assert srv.output().strip() == ""


def test_config_file_options(make_server):
    conf = ("# a comment line\n"
            "\n"
            "databases 5\n"
            "   maxmemory 10mb   \n"
            'maxmemory-policy "allkeys-lru"\n'
            "timeout 120\n"
            "MAXCLIENTS 321\n")
    srv = make_server(config_text=conf)
    x = srv.raw()
    got = x.call_parsed("CONFIG", "GET", "databases", "maxmemory", "maxmemory-policy", "timeout", "maxclients")
    d = dict(zip(got[0::2], got[1::2]))
    assert d == {b"databases": b"5", b"maxmemory": b"10485760", b"maxmemory-policy": b"allkeys-lru",
                 b"timeout": b"120", b"maxclients": b"321"}
    assert x.err("SELECT", "5") == "ERR DB index is out of range"
    info = x.call_parsed("INFO", "server").decode()
    assert re.search(r"\r\nconfig_file:%s\r\n" % re.escape(str(srv.dir / "server.conf")), info)


def test_command_line_overrides_config_file(make_server):
    srv = make_server(config_text="maxclients 111\ntimeout 7\n", maxclients=222)
    got = srv.raw().call_parsed("CONFIG", "GET", "maxclients", "timeout")
    assert dict(zip(got[0::2], got[1::2])) == {b"maxclients": b"222", b"timeout": b"7"}


def _failed_start(srv):
    srv.expect_failure = True
    srv.spawn()
    try:
        rc = srv.proc.wait(15)
    except Exception:
        srv.stop()
        raise AssertionError("server started despite a bad option")
    return rc, srv.output() + srv.log()


def test_unknown_option_in_config_file_fails(make_server):
    conf = "# line 1\nloglevel notice\nno-such-option-xyz 42\n"
    srv = make_server(config_text=conf, start=False)
    rc, out = _failed_start(srv)
    assert rc != 0
    assert "no-such-option-xyz" in out, out
    assert re.search(r"\b3\b", out), "line number 3 not mentioned: %r" % out
    if not IS_PEER:
        assert re.search(r"line 3|:3\b", out), out


def test_bad_value_in_config_file_fails(make_server):
    srv = make_server(config_text="maxmemory lots\n", start=False)
    rc, out = _failed_start(srv)
    assert rc != 0
    assert "maxmemory" in out, out


def test_unknown_option_on_command_line_fails(make_server):
    srv = make_server(start=False, **{"no-such-option-xyz": "1"})
    rc, out = _failed_start(srv)
    assert rc != 0
    assert "no-such-option-xyz" in out, out


def test_port_in_use_fails(make_server):
    first = make_server()
    second = make_server(start=False)
    second.expect_failure = True
    second.spawn(port=first.port)
    try:
        rc = second.proc.wait(15)
    except Exception:
        raise AssertionError("a second server on port %d kept running instead of failing" % first.port)
    assert rc != 0
    assert first.raw().call("PING") == b"+PONG\r\n"
    assert_no_sanitizer_report(second)


def assert_no_sanitizer_report(srv):
    """A start that fails (a port in use is an ordinary failure) leaves
    nothing behind: under the sanitizer build, no leak report."""
    report = sanitizer_report(srv.output() + srv.log())
    assert report is None, report


@pytest.mark.obentchi_only
def test_http_port_in_use_fails_cleanly(make_server):
    first = make_server()
    second = make_server(start=False, **{"http-port": first.http_port})
    second.expect_failure = True
    second.spawn()
    try:
        rc = second.proc.wait(15)
    except Exception:
        raise AssertionError("a second server on HTTP port %d kept running instead of failing" % first.http_port)
    assert rc != 0
    out = second.output() + second.log()
    assert "Could not create the HTTP listener on 127.0.0.1:%d: address already in use" % first.http_port in out, out
    assert first.raw().call("PING") == b"+PONG\r\n"
    assert_no_sanitizer_report(second)


@pytest.mark.obentchi_only
def test_shards_option(make_server):
    srv = make_server(shards=4)
    c = srv.client()
    c.mset({"k%d" % i: i for i in range(1000)})
    assert c.dbsize() == 1000
    assert sorted(c.keys("*")) == sorted(("k%d" % i).encode() for i in range(1000))


@pytest.mark.obentchi_only
def test_io_threads_default_and_option(make_server):
    # default: one worker per shard, leaving one core (of those online) free
    srv = make_server()
    info = srv.client().info("server")
    cores = os.sysconf("SC_NPROCESSORS_ONLN")
    assert info["shards"] == cores
    assert info["io_threads"] == min(info["shards"], max(1, cores - 1))
    assert info["io_threads_active"] == (1 if info["io_threads"] > 1 else 0)
    # explicit: any number of workers over any number of shards, and every
    # worker serves (connections land on all of them through SO_REUSEPORT)
    srv = make_server(shards=2, **{"io-threads": 3})
    info = srv.client().info("server")
    assert (info["shards"], info["io_threads"]) == (2, 3)
    clients = [srv.client() for _ in range(24)]
    for i, c in enumerate(clients):
        c.set("k%d" % i, i)
    assert clients[0].dbsize() == 24
    assert clients[0].config_get("io-threads") == {"io-threads": "3"}
    assert "io_threads=3" in srv.log_path.read_text()


@pytest.mark.obentchi_only
def test_bad_shards_value_fails(make_server):
    srv = make_server(start=False, shards="many")
    rc, out = _failed_start(srv)
    assert rc != 0
    assert "shards" in out, out
