"""Real Redis Sentinel (Debian's redis-sentinel 7.0) driving a master and two
replicas on loopback: discovery through INFO, Sentinels finding each other
through hello messages on __sentinel__:hello, automatic failover after the
master is SIGKILLed (3 Sentinels, quorum 2, down-after 3000 ms), the other
replica following the new master, and the old master, restarted, rejoining
as a replica.  Also runs against redis-server (PEER=redis).

Sentinels are started and stopped by PID, on ports 26500-26599.
"""
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis

from conftest import stop_process, wait_for

SENTINEL = os.environ.get("REDIS_SENTINEL", "/usr/bin/redis-sentinel")
REPL = {"repl-diskless-sync-delay": "0"}
NAME = "mymaster"

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not Path(SENTINEL).exists(), reason="redis-sentinel not installed")]


def port_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def sentinel_ports(n, lo=26500, hi=26600):
    """n free ports of the range, starting at a per-process offset so that
    parallel runs rarely meet."""
    out, start = [], lo + (os.getpid() * 7) % (hi - lo)
    for i in range(hi - lo):
        p = lo + (start - lo + i) % (hi - lo)
        if port_free(p):
            out.append(p)
            if len(out) == n:
                return out
    pytest.skip("no free Sentinel port in %d-%d" % (lo, hi))


class Sentinel:
    # down-after 3000, not less: after +switch-master a Sentinel reconnects to
    # the new master only a second after its last try at the dead one, while
    # its down-after clock starts at the switch.  With 1000 the new master's
    # first PONG had from 0 to 100 ms to arrive, and on a loaded machine a
    # second failover followed the first (seen here and in CI).
    def __init__(self, workdir, port, master_port, down_after=3000, failover_timeout=10000):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port
        self.conf = self.dir / "sentinel.conf"
        self.conf.write_text(
            "port %d\nbind 127.0.0.1\ndaemonize no\ndir %s\nlogfile %s\n"
            "sentinel monitor %s 127.0.0.1 %d 2\n"
            "sentinel down-after-milliseconds %s %d\n"
            "sentinel failover-timeout %s %d\n"
            "sentinel parallel-syncs %s 1\n"
            % (port, self.dir, self.dir / "sentinel.log", NAME, master_port, NAME, down_after, NAME,
               failover_timeout, NAME))
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([SENTINEL, str(self.conf)], cwd=str(self.dir), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_for(self.ping, timeout=10, what="sentinel %d up" % self.port)
        return self

    def client(self):
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5, decode_responses=True)

    def ping(self):
        try:
            return self.client().ping()
        except redis.exceptions.ConnectionError:
            return False

    def master_port(self):
        addr = self.client().execute_command("SENTINEL", "get-master-addr-by-name", NAME)
        return int(addr[1]) if addr else None

    def replicas(self):
        return self.client().execute_command("SENTINEL", "replicas", NAME)

    def sentinels(self):
        return self.client().execute_command("SENTINEL", "sentinels", NAME)

    def log(self):
        try:
            return (self.dir / "sentinel.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self):
        stop_process(self.proc)


@pytest.fixture
def sentinels(tmp_path):
    started = []

    def make(master_port, n=3, **kw):
        for i, port in enumerate(sentinel_ports(n)):
            started.append(Sentinel(tmp_path / ("sentinel%d" % i), port, master_port, **kw).start())
        return started

    yield make
    for s in started:
        s.stop()


def role(srv):
    try:
        return srv.client(socket_timeout=2).info("replication")
    except redis.exceptions.RedisError:
        return {}


def link_up(srv, master_port):
    i = role(srv)
    return i.get("role") == "slave" and i.get("master_port") == master_port and i.get("master_link_status") == "up"


def dump_state(ss, *servers):
    """Prints what a failed wait needs explained: each Sentinel's view and log
    tail, each server's INFO replication and log tail."""
    for s in ss:
        try:
            print("sentinel %d replicas: %r" % (s.port, s.replicas()))
            print("sentinel %d master: %r" % (s.port, s.client().execute_command("SENTINEL", "master", NAME)))
        except redis.exceptions.RedisError as e:
            print("sentinel %d: %r" % (s.port, e))
        print("---- sentinel %d log (tail)\n%s" % (s.port, "\n".join(s.log().splitlines()[-40:])))
    for srv in servers:
        print("server %d INFO replication: %r" % (srv.port, role(srv)))
        print("---- server %d log (tail)\n%s" % (srv.port, "\n".join(srv.log().splitlines()[-40:])))


def sentinel_view_of(s, port):
    """One line: how Sentinel s sees the instance on port, and whether it has
    been in TILT mode."""
    try:
        entries = [dict(zip(r[::2], r[1::2])) for r in s.replicas()]
        entry = next((e for e in entries if int(e["port"]) == port), None)
    except redis.exceptions.RedisError as e:
        return "sentinel %d: %r" % (s.port, e)
    keys = ("flags", "role-reported", "role-reported-time", "info-refresh", "last-ok-ping-reply", "down-after-milliseconds")
    seen = " ".join("%s=%s" % (k, entry.get(k)) for k in keys) if entry else "not among its replicas"
    return "sentinel %d: %s tilt=%s" % (s.port, seen, "+tilt" in s.log())


def test_sentinel_discovers_and_fails_over(make_server, sentinels):
    master = make_server(**REPL)
    opts = dict(REPL, replicaof=["127.0.0.1", str(master.port)])
    r1 = make_server(**opts)
    r2 = make_server(**dict(opts, **{"replica-priority": "50"}))  # the preferred one
    for r in (r1, r2):
        wait_for(lambda: link_up(r, master.port), timeout=20, what="replica link up")
    ss = sentinels(master.port)
    # discovery: replicas through the master's INFO, Sentinels through hello messages
    for s in ss:
        wait_for(lambda: len(s.replicas()) == 2 and len(s.sentinels()) == 2, timeout=30,
                 what="sentinel %d sees 2 replicas and 2 sentinels" % s.port)
    # client names Sentinel gave its links
    names = [c.get("name", "") for c in master.client().client_list()]
    assert any(n.startswith("sentinel-") and n.endswith("-cmd") for n in names), names
    assert any(n.startswith("sentinel-") and n.endswith("-pubsub") for n in names), names

    mc = master.client()
    for i in range(200):
        mc.set("k%d" % i, i)
    assert mc.wait(2, 5000) == 2

    t0 = time.monotonic()
    os.kill(master.pid, signal.SIGKILL)
    master.proc.wait(5)
    master.expect_failure = True
    new_port = wait_for(lambda: (lambda p: p if p and p != master.port else None)(ss[0].master_port()),
                        timeout=30, what="Sentinel's promotion")
    promoted_s = time.monotonic() - t0
    new = r2 if new_port == r2.port else r1
    other = r1 if new is r2 else r2
    assert new is r2, "the replica with the lower replica-priority is promoted"
    wait_for(lambda: role(new).get("role") == "master", timeout=10, what="new master reports role:master")
    nc = new.client()
    wait_for(lambda: nc.set("after", "failover"), timeout=10, what="new master takes writes")
    assert nc.get("k199") == b"199" and nc.dbsize() >= 200
    wait_for(lambda: link_up(other, new.port), timeout=30, what="other replica follows the new master")
    assert nc.wait(1, 5000) >= 1
    assert other.client().get("after") == b"failover"
    for s in ss:
        wait_for(lambda: s.master_port() == new.port, timeout=15, what="every Sentinel agrees")
    print("promotion after %.2fs" % promoted_s)

    # the old master comes back: Sentinel turns it into a replica of the new one
    old = make_server(port=master.port, **REPL)
    by_port = {r1.port: r1, r2.port: r2}

    def follows_current_master():
        """The master every Sentinel names now, once the old master replicates
        from it.  That is r2, unless Sentinel failed over again (its right:
        a stalled machine looks like a dead master)."""
        try:
            ports = {s.master_port() for s in ss}
        except redis.exceptions.RedisError:
            return None
        cur = by_port.get(ports.pop()) if len(ports) == 1 else None
        return cur if cur and link_up(old, cur.port) else None

    try:
        cur = wait_for(follows_current_master, timeout=60, what="old master rejoins as a replica")
    except AssertionError:
        dump_state(ss, old, r1, r2)
        if "REPLICAOF enabled" in old.log() or any("+convert-to-slave" in s.log() for s in ss):
            raise  # Sentinel told it to follow the new master and it did not: ours to fix
        # Sentinel never sent the REPLICAOF: its own rules (8 s of the instance
        # up and reporting master, the master looking sane, no TILT) held it
        # back, which this server cannot make happen.  Say what it saw.
        pytest.xfail("no Sentinel reconfigured the returning old master within 60 s; their view: %s"
                     % "; ".join(sentinel_view_of(s, old.port) for s in ss))
    if cur is not new:
        print("Sentinel failed over again, to %d; what it logged:\n%s" % (cur.port, "\n".join(
            l for s in ss for l in s.log().splitlines() if "sdown" in l or "odown" in l or "switch-master" in l)))
    wait_for(lambda: old.client().get("after") == b"failover", timeout=10, what="old master has the new writes")
    assert old.client().dbsize() == cur.client().dbsize()
