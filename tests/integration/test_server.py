"""Connection and server commands: PING, ECHO, QUIT, RESET, AUTH, HELLO,
SELECT, CLIENT *, INFO, CONFIG, TIME, SLOWLOG, MONITOR, DEBUG SLEEP, COMMAND."""
import fnmatch
import re
import subprocess
import time

import pytest
import redis

from conftest import encode_command, parse_info, parse_kv, wait_for

NOAUTH = "NOAUTH Authentication required."
WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."

# ------------------------------------------------------------ PING ECHO QUIT


def test_ping_echo(x):
    assert x.call("PING") == b"+PONG\r\n"
    assert x.call("PING", "hello world") == b"$11\r\nhello world\r\n"
    assert x.call("ping") == b"+PONG\r\n"
    assert x.call("PiNg") == b"+PONG\r\n"
    assert x.err("PING", "a", "b") == "ERR wrong number of arguments for 'ping' command"
    assert x.call("ECHO", "") == b"$0\r\n\r\n"
    assert x.call("ECHO", b"\x00\r\n") == b"$3\r\n\x00\r\n\r\n"
    assert x.err("ECHO") == "ERR wrong number of arguments for 'echo' command"
    assert x.err("ECHO", "a", "b") == "ERR wrong number of arguments for 'echo' command"


def test_unknown_command_wording(x):
    assert x.err("FOO", "a") == "ERR unknown command 'FOO', with args beginning with: 'a' "
    assert x.err("foo", "a", "b") == "ERR unknown command 'foo', with args beginning with: 'a' 'b' "
    assert x.err("nosuch") == "ERR unknown command 'nosuch', with args beginning with: "
    # the command name is cut at 128 bytes; each argument is cut to what is
    # left of 128 bytes of quoted list, and listing stops past 128
    assert x.err("C" * 200) == "ERR unknown command '%s', with args beginning with: " % ("C" * 128)
    assert x.err("FOO", "a" * 200, "b") == "ERR unknown command 'FOO', with args beginning with: '%s' " % ("a" * 128)
    assert x.err("FOO", "a" * 100, "b" * 100, "c") == \
        "ERR unknown command 'FOO', with args beginning with: '%s' '%s' " % ("a" * 100, "b" * 25)
    # the connection stays usable
    assert x.call("PING") == b"+PONG\r\n"


def test_quit(server, r):
    x = server.raw()
    x.cmd("QUIT")
    assert x.read_until_closed(timeout=5) == b"+OK\r\n"


def test_quit_pipelined_discards_the_rest(server, r):
    x = server.raw()
    x.send(encode_command("SET", "quitkey", "1") + encode_command("QUIT") + encode_command("SET", "quitkey", "2"))
    assert x.read_until_closed(timeout=5) == b"+OK\r\n+OK\r\n"
    assert server.client().get("quitkey") == b"1"


def test_reset(server, r):
    x = server.raw()
    assert x.call("SELECT", "3") == b"+OK\r\n"
    assert x.call("CLIENT", "SETNAME", "named") == b"+OK\r\n"
    x.call("HELLO", "3")
    assert x.call("RESET") == b"+RESET\r\n"
    assert x.call("CLIENT", "GETNAME") == b"$-1\r\n"  # RESP2 null again
    info = x.call_parsed("CLIENT", "INFO").decode()
    assert " db=0 " in info and " resp=2" in info and " name= " in info
    assert x.err("RESET", "x") == "ERR wrong number of arguments for 'reset' command"


# ------------------------------------------------------------ AUTH / HELLO


def test_auth_without_password(x):
    assert x.err("AUTH", "x") == ("ERR AUTH <password> called without any password configured for the default "
                                  "user. Are you sure your configuration is correct?")
    # the default user has `nopass`: any password is accepted
    assert x.call("AUTH", "default", "x") == b"+OK\r\n"
    assert x.err("AUTH", "someone", "x") == WRONGPASS
    assert x.err("AUTH") == "ERR wrong number of arguments for 'auth' command"
    assert x.err("AUTH", "a", "b", "c") == "ERR syntax error"


def test_requirepass(make_server):
    srv = make_server(requirepass="s3cret")
    x = srv.raw()
    assert x.err("GET", "k") == NOAUTH
    assert x.err("PING") == NOAUTH
    assert x.err("SELECT", "1") == NOAUTH
    assert x.err("HELLO", "3") == (
        "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> "
        "<pass> option can be used to authenticate the client and select the RESP protocol version at the same "
        "time")
    # command lookup and arity come before the auth check
    assert x.err("NOSUCHCMD") == "ERR unknown command 'NOSUCHCMD', with args beginning with: "
    assert x.err("GET") == "ERR wrong number of arguments for 'get' command"
    assert x.err("AUTH", "wrong") == WRONGPASS
    assert x.err("AUTH", "default", "wrong") == WRONGPASS
    assert x.err("AUTH", "someone", "s3cret") == WRONGPASS
    assert x.call("AUTH", "s3cret") == b"+OK\r\n"
    assert x.call("SET", "k", "v") == b"+OK\r\n"
    y = srv.raw()
    assert y.call("AUTH", "default", "s3cret") == b"+OK\r\n"
    assert y.call("GET", "k") == b"$1\r\nv\r\n"
    # RESET deauthenticates
    assert y.call("RESET") == b"+RESET\r\n"
    assert y.err("GET", "k") == NOAUTH
    # a wrong AUTH after a good one: Redis keeps the connection authenticated
    assert x.err("AUTH", "bad") == WRONGPASS
    assert x.call("GET", "k") == b"$1\r\nv\r\n"
    # redis-py with a password
    assert srv.client(password="s3cret").get("k") == b"v"
    with pytest.raises((redis.exceptions.AuthenticationError, redis.exceptions.ResponseError)) as ei:
        srv.client(password="nope").ping()
    assert "invalid username-password pair" in str(ei.value)
    # QUIT needs no auth
    z = srv.raw()
    z.cmd("QUIT")
    assert z.read_until_closed() == b"+OK\r\n"
    # HELLO with AUTH and SETNAME in one go
    h = srv.raw()
    reply = h.call_parsed("HELLO", "3", "AUTH", "default", "s3cret", "SETNAME", "helloname")
    assert isinstance(reply, dict) and reply[b"proto"] == 3
    assert h.call("CLIENT", "GETNAME") == b"$9\r\nhelloname\r\n"
    h2 = srv.raw()
    assert h2.err("HELLO", "3", "AUTH", "default", "bad") == WRONGPASS
    assert h2.err("GET", "k") == NOAUTH


def test_requirepass_config_set(make_server):
    srv = make_server()
    x = srv.raw()
    assert x.call("CONFIG", "SET", "requirepass", "pw") == b"+OK\r\n"
    # the connection that set it stays authenticated; new ones do not
    assert x.call("PING") == b"+PONG\r\n"
    y = srv.raw()
    assert y.err("PING") == NOAUTH
    assert y.call("AUTH", "pw") == b"+OK\r\n"
    assert y.call("CONFIG", "SET", "requirepass", "") == b"+OK\r\n"
    assert srv.raw().call("PING") == b"+PONG\r\n"


HELLO_FIELDS = [b"server", b"version", b"proto", b"id", b"mode", b"role", b"modules"]


def test_hello_resp2(x):
    reply = x.call_parsed("HELLO", "2")
    assert isinstance(reply, list) and len(reply) == 14
    assert reply[0::2] == HELLO_FIELDS
    d = dict(zip(reply[0::2], reply[1::2]))
    assert d[b"proto"] == 2
    assert re.fullmatch(rb"\d+\.\d+\.\d+", d[b"version"])
    assert d[b"mode"] == b"standalone" and d[b"role"] == b"master" and d[b"modules"] == []
    assert d[b"id"] == x.call_parsed("CLIENT", "ID")
    # HELLO with no version: the current protocol, no switch
    reply = x.call_parsed("HELLO")
    assert isinstance(reply, list) and dict(zip(reply[0::2], reply[1::2]))[b"proto"] == 2


def test_hello_errors(x):
    assert x.err("HELLO", "4") == "NOPROTO unsupported protocol version"
    assert x.err("HELLO", "1") == "NOPROTO unsupported protocol version"
    assert x.err("HELLO", "abc") == "ERR Protocol version is not an integer or out of range"
    assert x.err("HELLO", "3", "FOO") == "ERR Syntax error in HELLO option 'FOO'"
    assert x.err("HELLO", "3", "AUTH", "default") == "ERR Syntax error in HELLO option 'AUTH'"
    assert x.err("HELLO", "3", "SETNAME", "a b") == \
        "ERR Client names cannot contain spaces, newlines or special characters."
    # after errors the protocol is unchanged
    assert x.call("GET", "nokey") == b"$-1\r\n"


def test_hello_setname(x):
    x.call("HELLO", "2", "SETNAME", "myname")
    assert x.call("CLIENT", "GETNAME") == b"$6\r\nmyname\r\n"


# ------------------------------------------------------------ SELECT


def test_select_is_per_connection(server, r):
    a, b = server.raw(), server.raw()
    assert a.call("SELECT", "7") == b"+OK\r\n"
    a.call("SET", "k", "seven")
    assert b.call("GET", "k") == b"$-1\r\n"
    assert b.call("SELECT", "7") == b"+OK\r\n"
    assert b.call("GET", "k") == b"$5\r\nseven\r\n"
    info = a.call_parsed("CLIENT", "INFO").decode()
    assert " db=7 " in info


# ------------------------------------------------------------ CLIENT


CLIENT_FIELDS = ["id", "addr", "laddr", "fd", "name", "age", "idle", "flags", "db", "sub", "psub", "multi",
                 "qbuf", "obl", "oll", "omem", "tot-mem", "events", "cmd", "user", "resp"]


def parse_client_line(line):
    out = {}
    for part in line.split(" "):
        k, v = part.split("=", 1)
        out[k] = v
    return out


def test_client_id_name(server, r, x):
    cid = x.call_parsed("CLIENT", "ID")
    assert isinstance(cid, int) and cid > 0
    other = server.raw().call_parsed("CLIENT", "ID")
    assert other > cid  # ids only grow
    assert x.call("CLIENT", "GETNAME") == b"$-1\r\n"
    assert x.call("CLIENT", "SETNAME", "worker-1") == b"+OK\r\n"
    assert x.call("CLIENT", "GETNAME") == b"$8\r\nworker-1\r\n"
    for bad in ["a b", "a\nb", "caf\xe9"]:
        assert x.err("CLIENT", "SETNAME", bad) == \
            "ERR Client names cannot contain spaces, newlines or special characters.", bad
    assert x.call("CLIENT", "SETNAME", "") == b"+OK\r\n"  # clears it
    assert x.call("CLIENT", "GETNAME") == b"$-1\r\n"
    assert x.err("CLIENT", "SETNAME") == "ERR wrong number of arguments for 'client|setname' command"
    assert x.err("CLIENT", "FOO") == "ERR unknown subcommand 'FOO'. Try CLIENT HELP."
    assert x.err("CLIENT") == "ERR wrong number of arguments for 'client' command"


def test_client_list_and_info(server, r, x):
    x.call("CLIENT", "SETNAME", "lister")
    cid = x.call_parsed("CLIENT", "ID")
    text = x.call_parsed("CLIENT", "LIST").decode()
    assert text.endswith("\n")
    lines = [parse_client_line(l) for l in text.rstrip("\n").split("\n")]
    mine = [l for l in lines if l["id"] == str(cid)]
    assert len(mine) == 1
    me = mine[0]
    for f in CLIENT_FIELDS:
        assert f in me, "CLIENT LIST lacks %s" % f
    assert list(me)[:9] == ["id", "addr", "laddr", "fd", "name", "age", "idle", "flags", "db"]
    assert me["name"] == "lister"
    assert me["laddr"] == "127.0.0.1:%d" % server.port
    assert re.fullmatch(r"127\.0\.0\.1:\d+", me["addr"])
    assert me["cmd"] == "client|list"
    assert me["db"] == "0" and me["resp"] == "2" and me["flags"] == "N"
    info = x.call_parsed("CLIENT", "INFO").decode()
    assert info.endswith("\n") and info.count("\n") == 1
    d = parse_client_line(info.rstrip("\n"))
    assert d["id"] == str(cid) and d["cmd"] == "client|info" and d["addr"] == me["addr"]
    # CLIENT LIST ID
    one = x.call_parsed("CLIENT", "LIST", "ID", cid).decode()
    assert one.count("\n") == 1 and parse_client_line(one.rstrip("\n"))["id"] == str(cid)
    assert x.call_parsed("CLIENT", "LIST", "ID", "999999") == b""
    assert x.err("CLIENT", "LIST", "ID", "abc") == "ERR Invalid client ID"
    typ = x.call_parsed("CLIENT", "LIST", "TYPE", "normal").decode()
    assert "id=%d " % cid in typ
    assert x.err("CLIENT", "LIST", "TYPE", "bogus") == "ERR Unknown client type 'bogus'"


def test_client_kill_by_id(server, r, x):
    victim = server.raw()
    vid = victim.call_parsed("CLIENT", "ID")
    assert x.call("CLIENT", "KILL", "ID", vid) == b":1\r\n"
    assert victim.read_until_closed(timeout=5) == b""
    assert x.call("CLIENT", "KILL", "ID", vid) == b":0\r\n"
    assert x.err("CLIENT", "KILL", "ID", "abc") == "ERR client-id should be greater than 0"
    wait_for(lambda: ("id=%d " % vid) not in x.call_parsed("CLIENT", "LIST").decode(), timeout=5,
             what="killed client to leave CLIENT LIST")


def test_client_kill_by_addr(server, r, x):
    victim = server.raw()
    addr = parse_client_line(victim.call_parsed("CLIENT", "INFO").decode().strip())["addr"]
    assert x.call("CLIENT", "KILL", "ADDR", addr) == b":1\r\n"
    assert victim.read_until_closed(timeout=5) == b""
    # old form: CLIENT KILL ip:port replies +OK or an error
    v2 = server.raw()
    addr2 = parse_client_line(v2.call_parsed("CLIENT", "INFO").decode().strip())["addr"]
    assert x.call("CLIENT", "KILL", addr2) == b"+OK\r\n"
    assert v2.read_until_closed(timeout=5) == b""
    assert x.err("CLIENT", "KILL", "1.2.3.4:5") == "ERR No such client"
    assert x.call("CLIENT", "KILL", "ADDR", "1.2.3.4:5") == b":0\r\n"
    assert x.err("CLIENT", "KILL", "FOO", "bar") == "ERR syntax error"


def test_client_kill_self_skipme(server, r, x):
    me = parse_client_line(x.call_parsed("CLIENT", "INFO").decode().strip())["addr"]
    assert x.call("CLIENT", "KILL", "ADDR", me, "SKIPME", "yes") == b":0\r\n"
    assert x.call("PING") == b"+PONG\r\n"
    x.cmd("CLIENT", "KILL", "ADDR", me, "SKIPME", "no")
    # the reply may or may not arrive before the close
    assert x.read_until_closed(timeout=5) in (b"", b":1\r\n")


def test_client_pause_write(server, r, x):
    w = server.raw()
    reader = server.raw()
    r.set("k", "before")
    assert x.call("CLIENT", "PAUSE", "600", "WRITE") == b"+OK\r\n"
    t0 = time.monotonic()
    assert reader.call("GET", "k") == b"$6\r\nbefore\r\n"  # reads pass
    assert time.monotonic() - t0 < 0.4
    t0 = time.monotonic()
    assert w.call("SET", "k", "after") == b"+OK\r\n"
    waited = time.monotonic() - t0
    assert 0.3 <= waited <= 5, "write waited %.3fs under CLIENT PAUSE 600 WRITE" % waited
    assert r.get("k") == b"after"


def test_client_pause_unpause(server, r, x):
    w = server.raw()
    assert x.call("CLIENT", "PAUSE", "20000", "WRITE") == b"+OK\r\n"
    w.cmd("SET", "k", "v")
    assert w.read_available(timeout=0.3) == b""
    assert x.call("CLIENT", "UNPAUSE") == b"+OK\r\n"
    t0 = time.monotonic()
    assert w.reply_bytes() == b"+OK\r\n"
    assert time.monotonic() - t0 < 2
    assert x.err("CLIENT", "PAUSE", "abc") == "ERR timeout is not an integer or out of range"
    assert x.err("CLIENT", "PAUSE", "10", "FOO") == "ERR CLIENT PAUSE mode must be WRITE or ALL"


def test_client_pause_all(server, r, x):
    """PAUSE ALL holds every command of every client, the pausing client's
    own included (in Redis 7.0 even CLIENT UNPAUSE waits), until it ends."""
    other = server.raw()
    assert x.call("CLIENT", "PAUSE", "500") == b"+OK\r\n"
    t0 = time.monotonic()
    assert other.call("PING") == b"+PONG\r\n"
    assert 0.3 <= time.monotonic() - t0 <= 5
    assert x.call("PING") == b"+PONG\r\n"


# ------------------------------------------------------------ INFO

SECTIONS = {
    "server": ["redis_version", "redis_mode", "os", "arch_bits", "process_id", "tcp_port", "uptime_in_seconds",
               "uptime_in_days", "hz", "executable", "config_file"],
    "clients": ["connected_clients", "blocked_clients", "maxclients"],
    "memory": ["used_memory", "used_memory_human", "used_memory_rss", "used_memory_peak", "maxmemory",
               "maxmemory_human", "maxmemory_policy", "mem_fragmentation_ratio"],
    "persistence": ["loading", "rdb_changes_since_last_save", "aof_enabled"],
    "stats": ["total_connections_received", "total_commands_processed", "instantaneous_ops_per_sec",
              "total_net_input_bytes", "total_net_output_bytes", "rejected_connections", "expired_keys",
              "evicted_keys", "keyspace_hits", "keyspace_misses"],
    "replication": ["role", "connected_slaves", "master_replid", "master_repl_offset"],
    "cpu": ["used_cpu_sys", "used_cpu_user"],
}
HEADERS = {"server": "Server", "clients": "Clients", "memory": "Memory", "persistence": "Persistence",
           "stats": "Stats", "replication": "Replication", "cpu": "CPU", "commandstats": "Commandstats",
           "keyspace": "Keyspace"}


def info_text(x, *sections):
    data = x.call_parsed("INFO", *sections)
    assert isinstance(data, bytes)
    return data.decode()


def test_info_format(server, r, x):
    text = info_text(x)
    assert text.endswith("\r\n")
    headers = [l[2:] for l in text.split("\r\n") if l.startswith("# ")]
    for name in ("Server", "Clients", "Memory", "Persistence", "Stats", "Replication", "CPU", "Keyspace"):
        assert name in headers, "default INFO lacks # %s" % name
    assert "Commandstats" not in headers
    info = parse_info(text)
    for sec, fields in SECTIONS.items():
        for f in fields:
            assert f in info[sec], "INFO %s lacks %s" % (sec, f)
    assert info["server"]["process_id"] == str(server.pid)
    assert info["server"]["tcp_port"] == str(server.port)
    assert info["server"]["redis_mode"] == "standalone"
    assert re.fullmatch(r"\d+\.\d+\.\d+", info["server"]["redis_version"])
    assert info["replication"]["role"] == "master"
    assert int(info["memory"]["used_memory"]) > 0
    assert info["memory"]["maxmemory_policy"] == "noeviction"
    # the allocator the binary runs on: jemalloc (linked) or glibc's malloc
    linked = "libjemalloc" in subprocess.run(["ldd", server.binary], capture_output=True, text=True).stdout
    allocator = info["memory"]["mem_allocator"]
    assert re.fullmatch(r"jemalloc-\d+\.\d+\.\d+", allocator) if linked else allocator == "libc", allocator
    assert float(info["cpu"]["used_cpu_user"]) >= 0
    assert info["persistence"]["loading"] == "0"


@pytest.mark.parametrize("section", sorted(HEADERS))
def test_info_single_section(server, r, x, section):
    r.set("k", "v")
    r.get("k")
    text = info_text(x, section)
    headers = [l for l in text.split("\r\n") if l.startswith("# ")]
    assert headers == ["# " + HEADERS[section]]
    if section in SECTIONS:
        info = parse_info(text)[section]
        for f in SECTIONS[section]:
            assert f in info
    # case-insensitive section names
    assert info_text(x, section.upper()).split("\r\n")[0] == "# " + HEADERS[section]


def test_info_all_and_multiple(x, r):
    r.get("k")
    text = info_text(x, "all")
    assert "# Commandstats" in text and "# Keyspace" in text
    text = info_text(x, "everything")
    assert "# Commandstats" in text
    text = info_text(x, "server", "clients")
    assert [l for l in text.split("\r\n") if l.startswith("# ")] == ["# Server", "# Clients"]
    assert info_text(x, "nosuchsection") == ""


def test_info_counters(server, r, x):
    before = parse_info(info_text(x, "stats"))["stats"]
    r.set("k", "v")
    r.get("k")
    r.get("k")
    r.get("missing")
    after = parse_info(info_text(x, "stats"))["stats"]
    assert int(after["keyspace_hits"]) - int(before["keyspace_hits"]) == 2
    assert int(after["keyspace_misses"]) - int(before["keyspace_misses"]) == 1
    assert int(after["total_commands_processed"]) - int(before["total_commands_processed"]) >= 5
    c1 = int(parse_info(info_text(x, "clients"))["clients"]["connected_clients"])
    extra = [server.raw() for _ in range(3)]
    for e in extra:
        e.call("PING")
    c2 = int(parse_info(info_text(x, "clients"))["clients"]["connected_clients"])
    assert c2 - c1 == 3
    for e in extra:
        e.close()
    wait_for(lambda: int(parse_info(info_text(x, "clients"))["clients"]["connected_clients"]) == c1, timeout=5,
             what="connected_clients to drop back")
    conns = int(parse_info(info_text(x, "stats"))["stats"]["total_connections_received"])
    assert conns >= 4


def test_info_keyspace_and_commandstats(r, x):
    assert info_text(x, "keyspace") == "# Keyspace\r\n"
    r.set("a", 1)
    r.set("b", 1, ex=100)
    x.call("SELECT", "2")
    x.call("SET", "c", "1")
    ks = parse_info(info_text(x, "keyspace"))["keyspace"]
    assert list(ks) == ["db0", "db2"]
    assert re.fullmatch(r"keys=2,expires=1,avg_ttl=\d+", ks["db0"])
    assert ks["db2"] == "keys=1,expires=0,avg_ttl=0"
    assert x.call("CONFIG", "RESETSTAT") == b"+OK\r\n"
    for _ in range(3):
        x.call("GET", "c")
    cs = parse_info(info_text(x, "commandstats"))["commandstats"]
    kv = parse_kv(cs["cmdstat_get"])
    assert list(kv)[:3] == ["calls", "usec", "usec_per_call"]
    assert kv["calls"] == "3"
    assert kv["rejected_calls"] == "0" and kv["failed_calls"] == "0"
    assert all(k.startswith("cmdstat_") for k in cs)
    x.call("GET")  # arity error: rejected
    cs = parse_info(info_text(x, "commandstats"))["commandstats"]
    assert parse_kv(cs["cmdstat_get"])["rejected_calls"] == "1"


def test_config_resetstat(r, x):
    r.get("missing")
    assert x.call("CONFIG", "RESETSTAT") == b"+OK\r\n"
    st = parse_info(info_text(x, "stats"))["stats"]
    assert st["keyspace_misses"] == "0" and st["keyspace_hits"] == "0"
    assert st["expired_keys"] == "0"
    assert int(st["total_commands_processed"]) <= 2
    cs = parse_info(info_text(x, "commandstats"))["commandstats"]
    # subcommands are counted apart, as cmdstat_<cmd>|<sub>
    assert set(cs) <= {"cmdstat_config|resetstat", "cmdstat_info"}


# ------------------------------------------------------------ CONFIG

ISSUE_OPTIONS = ["port", "bind", "requirepass", "maxclients", "maxmemory", "maxmemory-policy", "dir", "logfile",
                 "loglevel", "databases", "proto-max-bulk-len", "client-query-buffer-limit",
                 "client-output-buffer-limit", "timeout"]


def config_get(x, *patterns):
    reply = x.call_parsed("CONFIG", "GET", *patterns)
    assert isinstance(reply, list) and len(reply) % 2 == 0
    d = dict(zip(reply[0::2], reply[1::2]))
    assert len(d) == len(reply) // 2, "a name twice in CONFIG GET"
    return {k.decode(): v.decode() for k, v in d.items()}


def test_config_get_values(server, x):
    d = config_get(x, "*")
    for name in ISSUE_OPTIONS:
        assert name in d, "CONFIG GET * lacks %s" % name
    assert d["port"] == str(server.port)
    assert d["bind"] == "127.0.0.1"
    assert d["dir"] == str(server.dir.resolve())
    assert d["logfile"] == str(server.log_path)
    assert d["databases"] == "16"
    assert d["maxclients"] == "10000"
    assert d["maxmemory"] == "0"
    assert d["maxmemory-policy"] == "noeviction"
    assert d["loglevel"] == "notice"
    assert d["timeout"] == "0"
    assert d["proto-max-bulk-len"] == "536870912"
    assert d["client-query-buffer-limit"] == "1073741824"
    assert d["client-output-buffer-limit"] == \
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"


def test_config_get_globs(x):
    d = config_get(x, "max*")
    assert {"maxmemory", "maxmemory-policy", "maxclients"} <= set(d)
    assert all(fnmatch.fnmatchcase(k, "max*") for k in d)
    d = config_get(x, "*memory*")
    assert {"maxmemory", "maxmemory-policy"} <= set(d)
    assert all("memory" in k for k in d)
    d = config_get(x, "maxmemory-polic?")
    assert d == {"maxmemory-policy": "noeviction"}
    assert set(config_get(x, "[pd]ort")) == {"port"}
    assert config_get(x, "nosuchoption*") == {}
    assert config_get(x, "nosuchoption") == {}
    # case-insensitive; a plain name (no glob) is echoed as given
    assert config_get(x, "MAXMEMORY") == {"MAXMEMORY": "0"}
    assert config_get(x, "MAXMEMORY-POLIC?") == {"maxmemory-policy": "noeviction"}
    # several patterns at once (7.0), each name once
    d = config_get(x, "port", "databases", "data*")
    assert set(d) == {"port", "databases"}
    assert x.err("CONFIG", "GET") == "ERR wrong number of arguments for 'config|get' command"


def test_config_set(make_server):
    srv = make_server()
    x = srv.raw()
    assert x.call("CONFIG", "SET", "maxclients", "500") == b"+OK\r\n"
    assert config_get(x, "maxclients") == {"maxclients": "500"}
    assert x.call("CONFIG", "SET", "timeout", "300") == b"+OK\r\n"
    assert config_get(x, "timeout") == {"timeout": "300"}
    assert x.call("CONFIG", "SET", "loglevel", "warning") == b"+OK\r\n"
    assert config_get(x, "loglevel") == {"loglevel": "warning"}
    assert x.call("CONFIG", "SET", "maxmemory", "1mb", "maxclients", "400") == b"+OK\r\n"
    assert config_get(x, "maxmemory", "maxclients") == {"maxmemory": "1048576", "maxclients": "400"}
    assert x.call("CONFIG", "SET", "client-output-buffer-limit", "normal 1mb 0 0") == b"+OK\r\n"
    assert config_get(x, "client-output-buffer-limit")["client-output-buffer-limit"].startswith(
        "normal 1048576 0 0 ")
    assert x.call("CONFIG", "SET", "MAXMEMORY", "0") == b"+OK\r\n"
    assert x.err("CONFIG", "SET", "nosuch", "1") == "ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'"
    assert x.err("CONFIG", "SET", "maxclients", "abc") == \
        "ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument couldn't be parsed into an integer"
    assert x.err("CONFIG", "SET", "databases", "3") == \
        "ERR CONFIG SET failed (possibly related to argument 'databases') - can't set immutable config"
    assert x.err("CONFIG", "SET", "loglevel", "loud") == \
        "ERR CONFIG SET failed (possibly related to argument 'loglevel') - argument(s) must be one of the following: debug, verbose, notice, warning"
    assert x.err("CONFIG", "SET", "maxmemory", "1mb", "maxmemory", "2mb") == \
        "ERR CONFIG SET failed (possibly related to argument 'maxmemory') - duplicate parameter"
    # a failing pair leaves the others unchanged (all or nothing)
    assert x.err("CONFIG", "SET", "maxclients", "300", "timeout", "x").startswith(
        "ERR CONFIG SET failed (possibly related to argument 'timeout')")
    assert config_get(x, "maxclients") == {"maxclients": "400"}
    assert x.err("CONFIG", "SET", "maxclients") == "ERR wrong number of arguments for 'config|set' command"
    assert x.err("CONFIG", "FOO") == "ERR unknown subcommand 'FOO'. Try CONFIG HELP."


def test_config_set_timeout_closes_idle_clients(make_server):
    srv = make_server(timeout=1)
    idle = srv.raw()
    assert idle.call("PING") == b"+PONG\r\n"
    t0 = time.monotonic()
    assert idle.read_until_closed(timeout=8) == b""
    assert time.monotonic() - t0 >= 0.5


# ------------------------------------------------------------ TIME, DEBUG


def test_time(x):
    secs, usecs = x.call_parsed("TIME")
    assert isinstance(secs, bytes) and secs.isdigit() and usecs.isdigit()
    assert abs(int(secs) - time.time()) < 5
    assert 0 <= int(usecs) < 1_000_000
    assert x.err("TIME", "x") == "ERR wrong number of arguments for 'time' command"


def test_debug_sleep(x):
    assert x.call("DEBUG", "SLEEP", "0") == b"+OK\r\n"
    t0 = time.monotonic()
    assert x.call("DEBUG", "SLEEP", "0.3") == b"+OK\r\n"
    assert time.monotonic() - t0 >= 0.28


def test_debug_sleep_holds_the_caller(server, x):
    # Redis sleeps its whole (single) command thread; a threaded server may
    # keep serving others, so only the caller's wait is checked here.
    other = server.raw()
    t0 = time.monotonic()
    x.cmd("DEBUG", "SLEEP", "0.5")
    assert other.call("PING") == b"+PONG\r\n"
    assert x.reply_bytes() == b"+OK\r\n"
    assert time.monotonic() - t0 >= 0.45
    assert x.call("PING") == b"+PONG\r\n"


# ------------------------------------------------------------ SLOWLOG


def test_slowlog(make_server):
    srv = make_server()
    x = srv.raw()
    x.call("CLIENT", "SETNAME", "slowpoke")
    assert x.call("CONFIG", "SET", "slowlog-log-slower-than", "0") == b"+OK\r\n"
    assert x.call("SLOWLOG", "RESET") == b"+OK\r\n"
    assert x.call("SET", "slowkey", "v") == b"+OK\r\n"
    n = x.call_parsed("SLOWLOG", "LEN")
    assert isinstance(n, int) and n >= 1
    entries = x.call_parsed("SLOWLOG", "GET", "100")
    sets = [e for e in entries if e[3][:1] == [b"SET"]]
    assert len(sets) == 1
    eid, ts, dur, args, addr, name = sets[0]
    assert isinstance(eid, int) and isinstance(dur, int) and dur >= 0
    assert abs(ts - time.time()) < 10
    assert args == [b"SET", b"slowkey", b"v"]
    assert re.fullmatch(rb"127\.0\.0\.1:\d+", addr)
    assert name == b"slowpoke"
    # newest first
    ids = [e[0] for e in entries]
    assert ids == sorted(ids, reverse=True)
    assert len(x.call_parsed("SLOWLOG", "GET", "1")) == 1
    assert x.call("SLOWLOG", "RESET") == b"+OK\r\n"
    assert x.call_parsed("SLOWLOG", "LEN") <= 1
    # long arguments are cut
    x.call("SET", "k", "v" * 200)
    e = [e for e in x.call_parsed("SLOWLOG", "GET") if e[3][:1] == [b"SET"]][0]
    assert e[3][2] == b"v" * 128 + b"... (72 more bytes)"
    assert x.call("CONFIG", "SET", "slowlog-log-slower-than", "-1") == b"+OK\r\n"
    x.call("SLOWLOG", "RESET")
    x.call("SET", "a", "b")
    assert x.call_parsed("SLOWLOG", "LEN") == 0
    assert x.err("SLOWLOG", "FOO") == "ERR unknown subcommand 'FOO'. Try SLOWLOG HELP."


# ------------------------------------------------------------ MONITOR


def test_monitor_sees_other_clients(server, r):
    mon = server.raw()
    assert mon.call("MONITOR") == b"+OK\r\n"
    other = server.raw()
    other.call("SELECT", "3")
    other.call("SET", "mon key", 'va"l\x01')
    got = b""
    deadline = time.monotonic() + 5
    while b'"mon key"' not in got and time.monotonic() < deadline:
        got += mon.read_available(timeout=0.2)
    lines = [l for l in got.split(b"\r\n") if b"mon key" in l]
    assert lines, got
    assert re.fullmatch(rb'\+\d+\.\d{6} \[3 127\.0\.0\.1:\d+\] "SET" "mon key" "va\\"l\\x01"', lines[0]), lines[0]


# ------------------------------------------------------------ COMMAND

SUPPORTED = ("get set setnx setex psetex getset getdel getex mget mset msetnx incr incrby incrbyfloat decr decrby "
             "append strlen getrange setrange del unlink exists touch type rename renamenx copy expire pexpire "
             "expireat pexpireat expiretime pexpiretime ttl pttl persist keys scan randomkey dbsize flushdb "
             "flushall select object memory ping echo quit reset auth hello client info config time slowlog "
             "monitor shutdown debug command").split()

ARITY = {"get": 2, "set": -3, "setnx": 3, "setex": 4, "psetex": 4, "getset": 3, "getdel": 2, "getex": -2,
         "mget": -2, "mset": -3, "msetnx": -3, "incr": 2, "incrby": 3, "incrbyfloat": 3, "decr": 2, "decrby": 3,
         "append": 3, "strlen": 2, "getrange": 4, "setrange": 4, "del": -2, "unlink": -2, "exists": -2,
         "touch": -2, "type": 2, "rename": 3, "renamenx": 3, "copy": -3, "expire": -3, "pexpire": -3,
         "expireat": -3, "pexpireat": -3, "expiretime": 2, "pexpiretime": 2, "ttl": 2, "pttl": 2, "persist": 2,
         "keys": 2, "scan": -2, "randomkey": 1, "dbsize": 1, "flushdb": -1, "flushall": -1, "select": 2,
         "object": -2, "memory": -2, "ping": -1, "echo": 2, "quit": -1, "reset": 1, "auth": -2, "hello": -1,
         "client": -2, "info": -1, "config": -2, "time": 1, "slowlog": -2, "monitor": 1, "shutdown": -1,
         "debug": -2, "command": -1}


def test_command_count_and_list(x):
    n = x.call_parsed("COMMAND", "COUNT")
    cmds = x.call_parsed("COMMAND")
    assert isinstance(n, int) and n == len(cmds)
    names = {c[0] for c in cmds}
    for name in SUPPORTED:
        assert name.encode() in names, "COMMAND lacks %s" % name
    for c in cmds:
        assert isinstance(c[0], bytes) and c[0] == c[0].lower()
        assert isinstance(c[1], int)


def test_command_info(x):
    reply = x.call_parsed("COMMAND", "INFO", *ARITY)
    assert len(reply) == len(ARITY)
    for name, info in zip(ARITY, reply):
        assert info is not None, name
        assert info[0] == name.encode()
        assert info[1] == ARITY[name], "%s arity %s" % (name, info[1])
    get = reply[0]
    assert set(get[2]) >= {"readonly", "fast"}
    assert get[3:6] == [1, 1, 1]
    s = reply[1]
    assert set(s[2]) >= {"write", "denyoom"}
    mset = dict(zip(ARITY, reply))["mset"]
    assert mset[3:6] == [1, -1, 2]
    assert x.call_parsed("COMMAND", "INFO", "nosuchcmd") == [None]
    assert x.call_parsed("COMMAND", "INFO", "GET")[0][0] == b"get"


def test_command_docs(x):
    reply = x.call_parsed("COMMAND", "DOCS", "get", "set")
    d = dict(zip(reply[0::2], reply[1::2]))
    assert set(d) == {b"get", b"set"}
    get = d[b"get"]
    doc = dict(zip(get[0::2], get[1::2]))
    assert doc[b"summary"] and doc[b"since"] == b"1.0.0" and doc[b"group"] == b"string"
    assert b"arguments" in doc
    args = [dict(zip(a[0::2], a[1::2])) for a in doc[b"arguments"]]
    assert args[0][b"name"] == b"key" and args[0][b"type"] == b"key"
    assert x.call_parsed("COMMAND", "DOCS", "nosuchcmd") == []
    assert x.err("COMMAND", "FOO") == "ERR unknown subcommand 'FOO'. Try COMMAND HELP."


# ------------------------------------------------------------ busy polling


def cpu_seconds(pid):
    """utime + stime of a process, all threads, in seconds (from /proc)."""
    import os
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_busy_poll_spins_after_work_then_sleeps(make_server):
    """busy-poll-us: after a turn that served a client the worker polls
    without sleeping for that long (CPU is spent), then sleeps again (an idle
    server spends none); not with more than 4 connections on the worker;
    CONFIG SET 0 turns it off."""
    assert config_get(make_server().raw(), "busy-poll-us") == {"busy-poll-us": "50"}
    srv = make_server(**{"busy-poll-us": "400000", "io-threads": "1"})
    x = srv.raw()
    assert config_get(x, "busy-poll-us") == {"busy-poll-us": "400000"}
    time.sleep(0.6)  # start-up's own turns are behind it
    c0 = cpu_seconds(srv.pid)
    assert x.call("PING") == b"+PONG\r\n"
    time.sleep(0.3)
    busy = cpu_seconds(srv.pid) - c0
    time.sleep(0.4)  # the window is over
    c1 = cpu_seconds(srv.pid)
    time.sleep(0.6)
    idle = cpu_seconds(srv.pid) - c1
    assert idle < 0.06, "an idle server kept spinning: %.2f s of CPU in 0.6 s" % idle
    assert busy > idle + 0.08, "no polling after a request: %.2f s of CPU in 0.3 s (idle %.2f)" % (busy, idle)

    # past 4 connections on the worker, turns batch their clients: no polling
    others = [srv.raw() for _ in range(5)]
    for o in others:
        assert o.call("PING") == b"+PONG\r\n"
    time.sleep(0.5)
    c3 = cpu_seconds(srv.pid)
    for o in others:
        assert o.call("PING") == b"+PONG\r\n"
    time.sleep(0.3)
    many = cpu_seconds(srv.pid) - c3
    assert many < 0.06, "polled with 6 connections: %.2f s of CPU in 0.3 s" % many
    for o in others:
        o.close()

    assert x.call("CONFIG", "SET", "busy-poll-us", "0") == b"+OK\r\n"
    c2 = cpu_seconds(srv.pid)
    for _ in range(3):
        assert x.call("PING") == b"+PONG\r\n"
    time.sleep(0.3)
    assert cpu_seconds(srv.pid) - c2 < 0.06, "still polling with busy-poll-us 0"
    assert x.err("CONFIG", "SET", "busy-poll-us", "-1").startswith("ERR CONFIG SET failed")
