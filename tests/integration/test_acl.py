"""Security (issue 9): ACL users from the config file and from ACL SETUSER,
a read-only user for inspection, a user for replication (a real replica
authenticating with masteruser/masterauth), Sentinel's user, errors in
Redis's words, rename-command, protected-mode, and secrets kept out of
logs, INFO, CONFIG GET, MONITOR and the slow log.

Every test also passes against redis-server 7 (PEER=redis) except those
marked obentchi_only."""
import socket
import subprocess
import time

import pytest
import redis

from conftest import wait_for

NOPERM = "NOPERM this user has no permissions to run the '%s' command"
NOPERM_KEY = "NOPERM this user has no permissions to access one of the keys used as arguments"
WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."

USERS = """
user inspector on >insp-pw ~* &* +@read +@connection -@dangerous +info
user app on >app-pw ~app:* &app:* +@all -@dangerous
user repl on >repl-pw +psync +replconf +ping
"""


def test_config_users_and_read_only_inspection(make_server):
    srv = make_server(config_text=USERS, requirepass="top-secret")
    x = srv.raw()
    assert x.err("GET", "a") == "NOAUTH Authentication required."
    assert x.err("AUTH", "inspector", "nope") == WRONGPASS
    assert x.err("AUTH", "nobody", "insp-pw") == WRONGPASS
    assert x.call_parsed("AUTH", "top-secret") == "OK"
    assert x.call_parsed("SET", "a", "1") == "OK"
    assert x.call_parsed("SET", "app:1", "2") == "OK"
    # the inspector reads everything and changes nothing
    i = srv.client(username="inspector", password="insp-pw")
    assert i.get("a") == b"1"
    assert i.mget("a", "app:1") == [b"1", b"2"]
    assert i.ttl("a") == -1
    assert i.scan(0)[1]
    assert "redis_version" in i.info()
    for args, name in [(("SET", "a", "2"), "set"), (("DEL", "a"), "del"), (("FLUSHALL",), "flushall"),
                       (("CONFIG", "SET", "maxmemory", "1"), "config|set"), (("KEYS", "*"), "keys"),
                       (("CLIENT", "KILL", "ID", "1"), "client|kill"), (("SHUTDOWN",), "shutdown")]:
        with pytest.raises(redis.exceptions.NoPermissionError) as e:
            i.execute_command(*args)
        assert str(e.value) == (NOPERM % name)[len("NOPERM "):]  # redis-py drops the code
    assert x.call_parsed("GET", "a") == b"1"
    # the application's user: its keys only
    a = srv.client(username="app", password="app-pw")
    assert a.set("app:2", "x")
    with pytest.raises(redis.exceptions.NoPermissionError) as e:
        a.set("other", "x")
    assert str(e.value) == NOPERM_KEY[len("NOPERM "):]
    with pytest.raises(redis.exceptions.NoPermissionError):
        a.flushdb()
    assert x.call_parsed("ACL", "WHOAMI") == b"default"


def test_config_user_with_an_unknown_command_stops_the_start(make_server):
    """A user line naming a command that does not exist stops the start, as
    any bad option does, naming the user and the rule (it used to be
    skipped, with a warning, at the first connection)."""
    srv = make_server(config_text="user alice on >pw ~* +get +nosuchcmd\n", start=False)
    srv.expect_failure = True
    srv.spawn()
    try:
        rc = srv.proc.wait(15)
    except subprocess.TimeoutExpired:
        srv.stop()
        raise AssertionError("the server started despite an unknown command in a user line")
    out = srv.output() + srv.log()
    assert rc != 0
    assert "alice" in out and "nosuchcmd" in out, out
    assert "Unknown command or category name in ACL" in out, out


def test_acl_setuser_getuser_list_deluser(make_server):
    srv = make_server()
    r = srv.client()
    assert r.execute_command("ACL", "SETUSER", "bob", "on", ">pw1", ">pw2", "~bob:*", "+get", "+set") == b"OK"
    assert sorted(r.execute_command("ACL", "USERS")) == [b"bob", b"default"]
    line = [l for l in r.execute_command("ACL", "LIST") if l.startswith(b"user bob")][0].decode()
    assert line.startswith("user bob on #") and "~bob:*" in line and "pw1" not in line
    assert "-@all" in line and "+get" in line and "+set" in line
    got = r.execute_command("ACL", "GETUSER", "bob")
    d = dict(zip(got[0::2], got[1::2]))
    assert b"on" in d[b"flags"] and len(d[b"passwords"]) == 2 and d[b"keys"] == b"~bob:*"
    assert r.execute_command("ACL", "GETUSER", "nobody") is None
    b = srv.raw()
    assert b.call_parsed("AUTH", "bob", "pw2") == "OK"
    assert b.call_parsed("SET", "bob:1", "v") == "OK"
    assert b.err("SET", "x", "v") == NOPERM_KEY
    assert b.err("INCR", "bob:1") == NOPERM % "incr"
    with pytest.raises(redis.ResponseError) as e:
        r.execute_command("ACL", "SETUSER", "bob", "nonsense")
    assert str(e.value) == "Error in ACL SETUSER modifier 'nonsense': Syntax error"
    with pytest.raises(redis.ResponseError) as e:
        r.execute_command("ACL", "DELUSER", "default")
    assert "The 'default' user cannot be removed" in str(e.value)
    # disabled: no new AUTH; deleted: its connections are closed
    assert r.execute_command("ACL", "SETUSER", "bob", "off") == b"OK"
    assert srv.raw().err("AUTH", "bob", "pw1") == WRONGPASS
    assert r.execute_command("ACL", "DELUSER", "bob") == 1
    b.send(b"*2\r\n$3\r\nGET\r\n$5\r\nbob:1\r\n")
    assert b.read_until_closed(timeout=5) == b""
    cats = r.execute_command("ACL", "CAT")
    for c in (b"read", b"write", b"admin", b"dangerous", b"keyspace", b"connection", b"pubsub"):
        assert c in cats
    assert b"get" in r.execute_command("ACL", "CAT", "read")


def test_hello_auth(make_server):
    srv = make_server(config_text=USERS)
    x = srv.raw()
    assert x.err("HELLO", "3", "AUTH", "app", "bad") == WRONGPASS
    reply = x.call_parsed("HELLO", "2", "AUTH", "app", "app-pw")
    assert reply[reply.index(b"proto") + 1] == 2
    assert x.call_parsed("ACL", "WHOAMI") == b"app"


@pytest.mark.obentchi_only  # @replication is obentchi's category
def test_replication_category(make_server):
    srv = make_server()
    r = srv.client()
    names = r.execute_command("ACL", "CAT", "replication")
    for n in (b"psync", b"replconf", b"replicaof", b"role"):
        assert n in names


@pytest.mark.slow
def test_replica_authenticates_as_replication_user(make_server):
    master = make_server(config_text=USERS, requirepass="top-secret")
    m = master.client(password="top-secret")
    m.set("k", "v1")
    replica = make_server(masteruser="repl", masterauth="repl-pw", replicaof=["127.0.0.1", str(master.port)])
    rr = replica.client()
    wait_for(lambda: rr.info("replication").get("master_link_status") == "up", timeout=30,
             what="replica link up with the replication user")
    m.set("k", "v2")
    wait_for(lambda: rr.get("k") == b"v2", timeout=10, what="write replicated")
    # the replication user can do nothing else
    p = master.raw()
    assert p.call_parsed("AUTH", "repl", "repl-pw") == "OK"
    assert p.err("GET", "k") == NOPERM % "get"
    # and a wrong masterauth leaves the link down
    bad = make_server(masteruser="repl", masterauth="wrong", replicaof=["127.0.0.1", str(master.port)])
    time.sleep(2)
    assert bad.client().info("replication").get("master_link_status") == "down"
    assert "repl-pw" not in replica.log() and "wrong" not in bad.log().replace("wrong number", "")


def test_sentinel_user(make_server):
    srv = make_server(config_text=USERS, requirepass="top-secret")
    r = srv.client(password="top-secret")
    assert r.execute_command(
        "ACL", "SETUSER", "sentinel", "on", ">sent-pw", "allchannels", "+multi", "+slaveof", "+ping", "+exec",
        "+subscribe", "+config|rewrite", "+role", "+publish", "+info", "+client|setname", "+client|kill",
        "+script|kill") == b"OK"
    s = srv.raw()
    assert s.call_parsed("AUTH", "sentinel", "sent-pw") == "OK"
    assert s.call_parsed("PING") == "PONG"
    assert s.call_parsed("ROLE")[0] == b"master"
    assert b"role:master" in s.call_parsed("INFO", "replication")
    assert s.call_parsed("CLIENT", "SETNAME", "sentinel-x") == "OK"
    assert s.call_parsed("PUBLISH", "__sentinel__:hello", "x") == 0
    assert s.call_parsed("MULTI") == "OK"
    assert s.call_parsed("PING") == "QUEUED"
    assert s.call_parsed("EXEC") == ["PONG"]
    assert s.err("SET", "a", "1") == NOPERM % "set"
    assert s.err("CONFIG", "GET", "requirepass") == NOPERM % "config|get"


def test_rename_command(make_server):
    srv = make_server(config_text='rename-command FLUSHALL ""\nrename-command CONFIG obentchi-config\n'
                                  'rename-command DEBUG ""\n')
    x = srv.raw()
    x.call_parsed("SET", "a", "1")
    assert x.err("FLUSHALL").startswith("ERR unknown command 'FLUSHALL'")
    assert x.err("DEBUG", "SLEEP", "0").startswith("ERR unknown command 'DEBUG'")
    assert x.err("CONFIG", "GET", "port").startswith("ERR unknown command 'CONFIG'")
    assert x.call_parsed("OBENTCHI-CONFIG", "GET", "maxclients") == [b"maxclients", b"10000"]
    assert x.call_parsed("GET", "a") == b"1"


def non_loopback_ipv4():
    try:
        out = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=5).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    for a in out:
        if "." in a and not a.startswith("127."):
            return a
    return None


def test_protected_mode(make_server):
    addr = non_loopback_ipv4()
    if not addr:
        pytest.skip("no non-loopback IPv4 address on this machine")
    srv = make_server(bind="127.0.0.1 " + addr)
    with socket.create_connection((addr, srv.port), timeout=5) as s:
        data = b""  # nothing sent: the answer comes unasked, then the close
        s.settimeout(5)
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    assert data.startswith(b"-DENIED Redis is running in protected mode because protected mode is enabled and no "
                           b"password is set for the default user.")
    assert data.endswith(b"order for the server to start accepting connections from the outside.\r\n")
    # loopback is served; with a password (or protected-mode no) the outside is too
    x = srv.raw()
    assert x.call_parsed("PING") == "PONG"
    assert x.call_parsed("CONFIG", "SET", "requirepass", "pw") == "OK"
    r = redis.Redis(host=addr, port=srv.port, password="pw", socket_timeout=5)
    assert r.ping()
    r.close()


@pytest.mark.obentchi_only  # redis-server shows requirepass to CONFIG GET
def test_secrets_never_shown(make_server):
    srv = make_server(config_text=USERS, requirepass="top-secret", masterauth="mauth-secret")
    x = srv.raw()
    x.call_parsed("AUTH", "top-secret")
    x.call_parsed("CONFIG", "SET", "slowlog-log-slower-than", "0")
    mon = srv.raw()
    mon.call_parsed("AUTH", "top-secret")
    mon.send(b"*1\r\n$7\r\nMONITOR\r\n")
    assert mon.reply() == "OK"
    y = srv.raw()
    y.call_parsed("AUTH", "app", "app-pw")
    y.call_parsed("HELLO", "2", "AUTH", "app", "app-pw")
    x.call_parsed("ACL", "SETUSER", "carol", "on", ">carol-secret", "+get")
    x.call_parsed("CONFIG", "SET", "requirepass", "new-secret")
    x.call_parsed("AUTH", "new-secret")
    y.call_parsed("PING")
    seen = b""
    deadline = time.monotonic() + 5
    while b'"PING"' not in seen and time.monotonic() < deadline:
        seen += mon.read_available(0.3)
    assert b'"AUTH" "(redacted)" "(redacted)"' in seen
    assert b'"HELLO" "2" "AUTH" "(redacted)" "(redacted)"' in seen
    slow = repr(x.call_parsed("SLOWLOG", "GET", "128")).encode()
    info = x.call_parsed("INFO", "all")
    conf = repr(x.call_parsed("CONFIG", "GET", "*")).encode()
    for secret in (b"top-secret", b"app-pw", b"carol-secret", b"new-secret", b"mauth-secret"):
        for where, text in (("MONITOR", seen), ("SLOWLOG", slow), ("INFO", info), ("CONFIG GET", conf)):
            assert secret not in text, "%s shows %s" % (where, secret)
    log = srv.log() + srv.output()
    for secret in ("top-secret", "app-pw", "carol-secret", "new-secret", "mauth-secret"):
        assert secret not in log


def test_client_list_and_kill_by_user(make_server):
    srv = make_server(config_text=USERS)
    a = srv.raw()
    assert a.call_parsed("AUTH", "app", "app-pw") == "OK"
    x = srv.raw()
    listing = x.call_parsed("CLIENT", "LIST").decode()
    assert " user=app " in listing and " user=default " in listing
    assert x.err("CLIENT", "KILL", "USER", "nobody") == "ERR No such user 'nobody'"
    assert x.call_parsed("CLIENT", "KILL", "USER", "app") == 1
    assert a.read_until_closed() == b""
    assert x.call_parsed("PING") == "PONG"
