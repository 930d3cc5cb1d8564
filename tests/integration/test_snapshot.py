"""Snapshots: to a file in `dir` and to MongoDB, restore at start, the save
rules and commands, INFO persistence, and failures (MongoDB killed, slow or
refusing writes in the middle of a snapshot, a corrupted chunk, the server
killed with -9 during a snapshot).

MongoDB: the URI comes from MONGO_URI, so the suite runs against a real
mongod wherever one exists (the tests use database `obentchi_test` and one
collection per test, dropped by pruning).  Without MONGO_URI the session
starts the MongoDB-wire test server of ../shared/mongo-peer/ (README there)
on a free loopback port, installed under tests/.peer/, and stops it by PID at
the end.  MongoDB is driven only through mongo-c-driver: by the server, and
by tools/snapshot (list, verify, damage-chunk, mongo-command for fail points).
Tests that kill MongoDB start a peer of their own and are skipped with
MONGO_URI (the suite never kills a MongoDB it did not start).
"""
import functools
import hashlib
import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import IS_PEER, REPO, OBENTCHI_SERVER, Server, free_port, parse_info, stop_process, wait_for
from conftest import wait_loaded as _wait_loaded

SHARED = Path(os.environ.get("OBENTCHI_SHARED", str(REPO.parent / "shared")))
PEER_DIR = REPO / "tests" / ".peer" / "mongo"
SNAPSHOT_TOOL = os.environ.get("OBENTCHI_SNAPSHOT", str(Path(OBENTCHI_SERVER).parent / "obentchi-snapshot"))
MONGO_DB = "obentchi_test"
N_KEYS = int(os.environ.get("OBENTCHI_TEST_SNAPSHOT_KEYS", "200000"))

obentchi_only = pytest.mark.obentchi_only
# loads of 200,000 keys and more, under the sanitizers too
wait_loaded = functools.partial(_wait_loaded, timeout=120)


# ---------------------------------------------------------------- MongoDB


class MongoPeer:
    """The MongoDB-wire test server, started from ../shared/mongo-peer."""

    def __init__(self, port=None):
        self.port = port or free_port()
        self.proc = None
        self.log = PEER_DIR.parent / "peer.log"  # npm's and the peer's stderr, appended

    @property
    def uri(self):
        return "mongodb://127.0.0.1:%d" % self.port

    def start(self, timeout=300):
        script = SHARED / "mongo-peer" / "start.sh"
        if not script.exists():
            pytest.fail("no MongoDB: MONGO_URI is unset and %s is missing" % script)
        PEER_DIR.mkdir(parents=True, exist_ok=True)
        err = open(self.log, "ab")
        self.proc = subprocess.Popen(["bash", str(script), str(PEER_DIR), str(self.port)], stdout=subprocess.PIPE,
                                     stderr=err, stdin=subprocess.DEVNULL, start_new_session=True)
        err.close()
        ready = []

        def read():
            for line in self.proc.stdout:
                if line.startswith(b"mongo-peer ready"):
                    ready.append(line)
                    break
            for _ in self.proc.stdout:  # keep the pipe drained
                pass

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + timeout
        while not ready:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail("mongo-peer did not start (install: npm, see %s):\n%s"
                            % (self.log, self.log.read_text(errors="replace")[-2000:]))
            time.sleep(0.05)
        return self

    def kill(self):
        """SIGKILL, as a crash."""
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self):
        stop_process(self.proc)


@pytest.fixture(scope="session")
def mongo_uri():
    uri = os.environ.get("MONGO_URI", "").strip()
    if uri:
        yield uri
        return
    peer = MongoPeer().start()
    yield peer.uri
    peer.stop()


@pytest.fixture
def own_peer():
    """A peer this test may kill (not with MONGO_URI: no real mongod is
    ever killed by the suite)."""
    if os.environ.get("MONGO_URI", "").strip():
        pytest.skip("MONGO_URI given: the suite does not kill a MongoDB it did not start")
    peer = MongoPeer().start()
    yield peer
    peer.stop()


def snapshot_tool(*args, check=True, timeout=120):
    if not Path(SNAPSHOT_TOOL).exists():
        pytest.fail("obentchi-snapshot not built: %s (set OBENTCHI_SNAPSHOT)" % SNAPSHOT_TOOL)
    r = subprocess.run([SNAPSHOT_TOOL] + [str(a) for a in args], capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError("tools/snapshot %s: exit %d\n%s%s" % (" ".join(map(str, args)), r.returncode, r.stdout,
                                                                   r.stderr))
    return r


def mongo_command(uri, cmd):
    return snapshot_tool("mongo-command", uri, json.dumps(cmd))


def fail_point(uri, mode, **data):
    mongo_command(uri, {"configureFailPoint": "failCommand", "mode": mode, "data": data})


def mongo_opts(uri, collection, **more):
    opts = {"mongo-uri": uri, "mongo-database": MONGO_DB, "mongo-collection": collection}
    opts.update(more)
    return opts


def mongo_list(uri, collection):
    r = snapshot_tool("--database", MONGO_DB, "--collection", collection, "list", uri)
    return [line.split()[0] for line in r.stdout.splitlines() if line.strip()]


def unique_collection(request):
    return "t%d_%s" % (os.getpid(), re.sub(r"[^A-Za-z0-9]", "", request.node.name)[:40])


# ---------------------------------------------------------------- servers


@pytest.fixture
def servers(tmp_path):
    """start(dir=..., wait=True, **options) -> Server, once its snapshot is
    loaded (wait=False: as soon as PING answers).  A server may be started
    again in the same dir (restart).  Stopped after the test; kill9() marks
    one as killed on purpose."""
    started = []

    def start(workdir=None, wait=True, **options):
        srv = Server(workdir or (tmp_path / "data"), options)
        started.append(srv)
        srv.start()  # PING answers while a snapshot loads: wait for the load too
        if wait:
            wait_loaded(srv.client())
        return srv

    yield start
    problems = []
    for srv in started:
        srv.stop()
        if not getattr(srv, "killed9", False):
            problems += srv.exit_problems()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def kill9(srv):
    os.kill(srv.pid, signal.SIGKILL)
    srv.proc.wait(10)
    srv.killed9 = True


def info(c, section="persistence"):
    """One INFO section as text fields (redis-py would parse the values)."""
    c.set_response_callback("INFO", lambda r, **kw: r)
    return parse_info(c.execute_command("INFO", section))[section]


def wait_saved(c, saves_before, timeout=120):
    """Waits for rdb_saves to pass saves_before; returns the section."""
    def done():
        p = info(c)
        if int(p["rdb_saves"]) > saves_before and p["rdb_bgsave_in_progress"] == "0":
            return p
        if p["rdb_bgsave_in_progress"] == "0" and p["rdb_last_bgsave_status"] == "err":
            raise AssertionError("snapshot failed: %s" % p.get("snapshot_last_error"))
        return None
    return wait_for(done, timeout=timeout, interval=0.05, what="a snapshot to complete")


def bgsave_and_wait(c, timeout=120):
    before = int(info(c)["rdb_saves"])
    assert c.bgsave() in (True, b"Background saving started", "Background saving started")
    return wait_saved(c, before, timeout)


def kill_peer_mid_snapshot(c, srv, peer, chunks):
    """BGSAVE, and the MongoDB peer killed once more than chunks chunks are
    stored: the snapshot fails, is counted and logged, and nothing else."""
    before = int(info(c)["snapshot_failures"])
    c.bgsave()
    wait_for(lambda: int(info(c)["snapshot_current_chunks"]) > chunks, timeout=60, interval=0.005,
             what="the snapshot to be under way")
    peer.kill()
    wait_for(lambda: info(c)["rdb_bgsave_in_progress"] == "0", timeout=90, what="the snapshot to fail")
    p = info(c)
    assert p["rdb_last_bgsave_status"] == "err"
    assert int(p["snapshot_failures"]) == before + 1
    assert "snapshot failed" in srv.log()


# ---------------------------------------------------------------- data


def fill(c, n, seed=1, dbs=(0, 1)):
    """n mixed keys: strings (some with TTLs, some integers), session-like
    hashes, lists, sets, sorted sets, spread over dbs."""
    now_ms = int(time.time() * 1000)
    per_db = n // len(dbs)
    for db in dbs:
        c.execute_command("SELECT", db)
        p = c.pipeline(transaction=False)
        for i in range(per_db):
            k = "k:%d:%d:%d" % (seed, db, i)
            kind = i % 10
            if kind < 5:
                if i % 7 == 0:
                    p.execute_command("SET", k, i * 13, "PXAT", now_ms + 3600000 + i)
                else:
                    p.execute_command("SET", k, "value-%d-%s" % (i, "x" * (i % 50)))
            elif kind < 7:
                p.execute_command("HSET", "{sess:%d}:%d:%d" % (i, seed, db), "user", i, "state", "menu",
                                  "lang", "en", "balance", "%d.%02d" % (i, i % 100), "ts", now_ms)
            elif kind == 7:
                p.execute_command("RPUSH", k, *["item-%d" % j for j in range(i % 12 + 1)])
            elif kind == 8:
                p.execute_command("SADD", k, *[str(j * i % 1000) for j in range(i % 9 + 1)])
            else:
                args = []
                for j in range(i % 6 + 1):
                    args += [str((j * 1.25) - i % 3), "m%d" % j]
                p.execute_command("ZADD", k, *args)
            if i % 2000 == 1999:
                p.execute()
        p.execute()
    c.execute_command("SELECT", 0)


def dump_digest(c, dbs=(0, 1)):
    """A digest of the whole content: every key's type, absolute expiry and
    value (sets and hashes sorted), SCANned in every db given."""
    h = hashlib.sha256()
    count = 0
    for db in dbs:
        c.execute_command("SELECT", db)
        keys = sorted(c.scan_iter(count=1000))
        for start in range(0, len(keys), 1000):
            batch = keys[start:start + 1000]
            p = c.pipeline(transaction=False)
            for k in batch:
                p.type(k)
                p.execute_command("PEXPIRETIME", k)
            meta = p.execute()
            p = c.pipeline(transaction=False)
            for i, k in enumerate(batch):
                t = meta[2 * i]
                t = t.decode() if isinstance(t, bytes) else t
                if t == "string":
                    p.get(k)
                elif t == "hash":
                    p.hgetall(k)
                elif t == "list":
                    p.lrange(k, 0, -1)
                elif t == "set":
                    p.smembers(k)
                elif t == "zset":
                    p.zrange(k, 0, -1, withscores=True)
                else:
                    p.type(k)
            vals = p.execute()
            for i, k in enumerate(batch):
                v = vals[i]
                if isinstance(v, dict):
                    v = sorted(v.items())
                elif isinstance(v, set):
                    v = sorted(v)
                h.update(repr((db, k, meta[2 * i], meta[2 * i + 1], v)).encode())
                count += 1
    c.execute_command("SELECT", 0)
    return h.hexdigest(), count


def dbsize_all(c, dbs=(0, 1)):
    total = 0
    for db in dbs:
        c.execute_command("SELECT", db)
        total += c.dbsize()
    c.execute_command("SELECT", 0)
    return total


def snap_files(d):
    return sorted(p.name for p in Path(d).glob("obentchi.snap.*") if not p.name.endswith(".tmp"))


# ---------------------------------------------------------------- commands and INFO


def test_commands_and_info_fields(make_server):
    """SAVE, BGSAVE [SCHEDULE], LASTSAVE and the INFO fields, as Redis."""
    srv = make_server()
    c = srv.client()
    x = srv.raw()
    before = c.lastsave()
    c.set("a", "1")
    assert x.call("SAVE") == b"+OK\r\n"
    assert c.lastsave() >= before
    p = info(c)
    for field in ("loading", "rdb_changes_since_last_save", "rdb_bgsave_in_progress", "rdb_last_save_time",
                  "rdb_last_bgsave_status", "rdb_last_bgsave_time_sec", "rdb_current_bgsave_time_sec",
                  "rdb_saves", "rdb_last_cow_size", "current_cow_size"):
        assert field in p
    assert p["rdb_changes_since_last_save"] == "0"
    assert p["rdb_last_bgsave_status"] == "ok"
    assert x.err("BGSAVE", "NOW") == "ERR syntax error"
    assert x.err("SAVE", "x") == "ERR wrong number of arguments for 'save' command"
    assert x.call("BGSAVE") == b"+Background saving started\r\n"
    # a second one at once: refused, or scheduled
    r = x.call("BGSAVE")
    assert r in (b"-ERR Background save already in progress\r\n", b"+Background saving started\r\n")
    # SCHEDULE waits only for another kind of child (an AOF rewrite in Redis)
    r = x.call("BGSAVE", "SCHEDULE")
    assert r in (b"-ERR Background save already in progress\r\n", b"+Background saving started\r\n")
    wait_for(lambda: info(c)["rdb_bgsave_in_progress"] == "0", timeout=30, what="bgsave")
    c.set("b", "2")
    assert info(c)["rdb_changes_since_last_save"] == "1"


@obentchi_only
def test_config_save_rules(make_server):
    srv = make_server()
    c = srv.client()
    assert c.config_get("save") == {"save": "3600 1 300 100 60 10000"}
    c.config_set("save", "")
    assert c.config_get("save") == {"save": ""}
    c.config_set("save", "100 10 200 20")
    assert c.config_get("save") == {"save": "100 10 200 20"}
    with pytest.raises(Exception):
        c.config_set("save", "100")
    assert c.config_get("save") == {"save": "100 10 200 20"}
    assert c.config_get("snapshot-keep") == {"snapshot-keep": "3"}
    assert c.config_get("dbfilename") == {"dbfilename": "obentchi.snap"}
    with pytest.raises(Exception):
        c.config_set("dbfilename", "a/b")
    assert c.config_get("mongo-uri") == {"mongo-uri": ""}
    assert c.config_get("restore-from") == {"restore-from": "auto"}


@obentchi_only
def test_save_rule_triggers(servers):
    srv = servers(save="1 3")
    c = srv.client()
    c.set("a", "1")
    time.sleep(1.5)
    assert info(c)["rdb_saves"] == "0"  # one change is not three
    c.set("b", "2")
    c.set("c", "3")
    wait_for(lambda: info(c)["rdb_saves"] == "1", timeout=10, what="the rule to save")
    assert len(snap_files(srv.dir)) == 1
    assert info(c)["rdb_changes_since_last_save"] == "0"


@obentchi_only
def test_shutdown_save_and_nosave(servers, tmp_path):
    d = tmp_path / "d"
    srv = servers(d, save="")
    srv.client().set("k", "v")
    x = srv.raw()
    x.cmd("SHUTDOWN", "NOSAVE")
    assert srv.wait_exit(20) == 0
    assert snap_files(d) == []
    srv = servers(d, save="")
    srv.client().set("k", "v")
    x = srv.raw()
    x.cmd("SHUTDOWN", "SAVE")
    assert srv.wait_exit(20) == 0
    assert len(snap_files(d)) == 1
    # SIGTERM with save rules: saved; restart finds the key
    srv = servers(d)
    c = srv.client()
    assert c.get("k") == b"v"
    c.set("k2", "v2")
    srv.stop()
    assert len(snap_files(d)) == 2
    srv = servers(d, save="")
    assert srv.client().get("k2") == b"v2"


# ---------------------------------------------------------------- file snapshots


@obentchi_only
@pytest.mark.slow
@pytest.mark.parametrize("method", ["versioned", "fork"])
def test_file_snapshot_restart_identical(servers, tmp_path, method):
    d = tmp_path / "d"
    srv = servers(d, save="", shards=4, **{"snapshot-method": method})
    c = srv.client()
    fill(c, N_KEYS)
    want = dump_digest(c)
    assert want[1] == N_KEYS
    last = c.lastsave()
    p = bgsave_and_wait(c)
    assert p["rdb_last_bgsave_status"] == "ok"
    assert int(p["snapshot_last_keys"]) == N_KEYS
    assert p["snapshot_method"] == method
    if method == "fork":
        assert int(p["rdb_last_cow_size"]) > 0  # the child's own pages at least
    assert c.lastsave() >= last
    assert len(snap_files(d)) == 1
    r = snapshot_tool("summary", d)
    assert "keys:         %d" % N_KEYS in r.stdout
    srv.stop()
    srv = servers(d, save="", shards=2)  # another shard count: the format does not care
    c = srv.client()
    wait_loaded(c)
    assert dump_digest(c) == want
    p = info(c)
    assert p["rdb_last_load_keys_loaded"] == str(N_KEYS)
    assert p["rdb_changes_since_last_save"] == "0"
    assert "snapshot loaded" in srv.log()


@obentchi_only
@pytest.mark.slow
def test_versioned_snapshot_is_point_in_time_under_writes(servers, tmp_path):
    """Transactions keep writing while the versioned walk runs: each one
    overwrites a key and records its sequence number in `seq`, atomically.
    The snapshot must hold exactly the keyspace after transaction `seq`,
    nothing older and nothing newer, for every key, whichever came first,
    the walk or the write.  Then the pause clients saw is small."""
    d = tmp_path / "d"
    n = 60000
    srv = servers(d, save="", shards=4, **{"snapshot-chunk-size": "4kb"})
    c = srv.client()
    pipe = c.pipeline(transaction=False)
    for i in range(n):
        pipe.set("k:%d" % i, "orig-%d-" % i + "x" * 200)
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()
    c.set("seq", 0)
    keys_at_instant = c.dbsize()  # the bot's own keys (schedules) included
    w = srv.client()
    before = int(info(c)["rdb_saves"])
    assert c.bgsave() in (True, b"Background saving started", "Background saving started")
    seq, deadline = 0, time.monotonic() + 60
    while time.monotonic() < deadline:
        seq += 1
        tx = w.pipeline(transaction=True)
        tx.set("k:%d" % ((seq * 7919) % n), "new-%d" % seq)
        tx.set("seq", seq)
        tx.execute()
        if seq % 50 == 0 and int(info(c)["rdb_saves"]) > before:
            break
    p = wait_saved(c, before)
    assert p["rdb_last_bgsave_status"] == "ok"
    assert p["snapshot_method"] == "versioned"
    assert int(p["snapshot_last_keys"]) == keys_at_instant
    assert int(p["snapshot_last_pause_usec"]) < 200000
    srv.stop()
    srv = servers(d, save="")
    c = srv.client()
    s = int(c.get("seq"))
    assert 0 <= s < seq, "the snapshot must be older than the last write"
    want = {}
    for i in range(1, s + 1):
        want[(i * 7919) % n] = "new-%d" % i
    pipe = c.pipeline(transaction=False)
    for i in range(n):
        pipe.get("k:%d" % i)
    got = pipe.execute()
    for i, v in enumerate(got):
        exp = want.get(i, "orig-%d-" % i + "x" * 200)
        assert v is not None and v.decode() == exp, "k:%d is %r, want %r (snapshot seq %d)" % (i, v, exp, s)
    # the loop checks for the end every 50 writes: at least 50 ran while the walk did
    assert seq - s >= 50


@obentchi_only
def test_file_keep_and_tmp(servers, tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    stale = d / "obentchi.snap.20200101T000000000Z-00000000.tmp"
    stale.write_bytes(b"left by a crash")
    srv = servers(d, save="", **{"snapshot-keep": 2})
    c = srv.client()
    for i in range(4):
        c.set("round", i)
        bgsave_and_wait(c)
    files = snap_files(d)
    assert len(files) == 2
    assert not stale.exists()
    assert snapshot_tool("verify", d).stdout.count("ok ") == 2
    assert int(info(c)["rdb_saves"]) == 4


@obentchi_only
def test_file_corrupt_newest_falls_back(servers, tmp_path):
    d = tmp_path / "d"
    srv = servers(d, save="", **{"snapshot-chunk-size": "4kb"})
    c = srv.client()
    fill(c, 4000, dbs=(0,))
    bgsave_and_wait(c)
    want = dump_digest(c, dbs=(0,))
    fill(c, 2000, seed=2, dbs=(0,))
    bgsave_and_wait(c)
    newest = snap_files(d)[-1]
    snap_id = newest[len("obentchi.snap."):]
    snapshot_tool("damage-chunk", d, snap_id, 3)
    r = snapshot_tool("verify", d, check=False)
    assert r.returncode == 1 and "CORRUPT" in r.stdout and snap_id in r.stdout
    srv.stop()
    srv = servers(d, save="")
    c = srv.client()
    wait_loaded(c)
    assert dump_digest(c, dbs=(0,)) == want
    log = srv.log()
    assert "snapshot skipped: corrupt or incomplete" in log and snap_id in log
    assert "chunk 3" in log


@obentchi_only
@pytest.mark.slow
def test_kill9_during_file_snapshot_keeps_previous(servers, tmp_path):
    d = tmp_path / "d"
    srv = servers(d, save="", **{"snapshot-chunk-size": "4kb"})
    c = srv.client()
    fill(c, 20000, dbs=(0,))
    bgsave_and_wait(c)
    want = dump_digest(c, dbs=(0,))
    fill(c, N_KEYS // 2, seed=3, dbs=(0,))
    c.bgsave()
    wait_for(lambda: int(info(c)["snapshot_current_chunks"]) > 3, timeout=60, interval=0.005,
             what="the snapshot to be under way")
    kill9(srv)
    assert len(snap_files(d)) == 1  # the one in flight never got its name
    srv = servers(d, save="")
    c = srv.client()
    wait_loaded(c)
    assert dump_digest(c, dbs=(0,)) == want


# ---------------------------------------------------------------- MongoDB snapshots


@obentchi_only
@pytest.mark.slow
def test_mongo_snapshot_restart_identical(servers, tmp_path, mongo_uri, request):
    coll = unique_collection(request)
    srv = servers(tmp_path / "a", save="", shards=4, **mongo_opts(mongo_uri, coll))
    c = srv.client()
    fill(c, N_KEYS)
    want = dump_digest(c)
    p = bgsave_and_wait(c)
    assert p["snapshot_store"] == "mongo"
    assert p["rdb_last_bgsave_status"] == "ok"
    ids = mongo_list(mongo_uri, coll)
    assert ids == [p["snapshot_last_id"]]
    r = snapshot_tool("--database", MONGO_DB, "--collection", coll, "summary", mongo_uri)
    assert "keys:         %d" % N_KEYS in r.stdout
    assert snap_files(tmp_path / "a") == []  # nothing to the file store
    srv.stop()
    # a new node, another dir, same MongoDB: starts warm
    srv = servers(tmp_path / "b", save="", **mongo_opts(mongo_uri, coll))
    c = srv.client()
    wait_loaded(c)
    assert dump_digest(c) == want
    assert info(c)["rdb_last_load_keys_loaded"] == str(N_KEYS)


@obentchi_only
def test_mongo_keep_prunes(servers, tmp_path, mongo_uri, request):
    coll = unique_collection(request)
    srv = servers(tmp_path / "a", save="", **mongo_opts(mongo_uri, coll, **{"snapshot-keep": 2}))
    c = srv.client()
    seen = []
    for i in range(4):
        c.set("round", i)
        seen.append(bgsave_and_wait(c)["snapshot_last_id"])
    assert mongo_list(mongo_uri, coll) == [seen[3], seen[2]]
    r = snapshot_tool("--database", MONGO_DB, "--collection", coll, "verify", mongo_uri)
    assert r.stdout.count("ok ") == 2


@obentchi_only
def test_mongo_corrupt_chunk_falls_back(servers, tmp_path, mongo_uri, request):
    coll = unique_collection(request)
    opts = mongo_opts(mongo_uri, coll, **{"snapshot-chunk-size": "4kb"})
    srv = servers(tmp_path / "a", save="", **opts)
    c = srv.client()
    fill(c, 4000, dbs=(0,))
    first = bgsave_and_wait(c)["snapshot_last_id"]
    want = dump_digest(c, dbs=(0,))
    c.set("later", "x")
    second = bgsave_and_wait(c)["snapshot_last_id"]
    snapshot_tool("--database", MONGO_DB, "--collection", coll, "damage-chunk", mongo_uri, second, 2)
    srv.stop()
    srv = servers(tmp_path / "b", save="", **opts)
    c = srv.client()
    wait_loaded(c)
    assert dump_digest(c, dbs=(0,)) == want
    assert c.get("later") is None
    log = srv.log()
    assert re.search(r"snapshot skipped: corrupt or incomplete.*id=%s.*chunk 2" % second, log)
    assert "id=%s" % first in log


@obentchi_only
def test_mongo_refusing_writes(servers, tmp_path, mongo_uri, request):
    """A write refused in the middle: the snapshot fails with a clear line,
    INFO says err, no manifest names it, the previous one stays whole, and
    the next try succeeds once MongoDB accepts writes again."""
    coll = unique_collection(request)
    srv = servers(tmp_path / "a", save="", **mongo_opts(mongo_uri, coll, **{"snapshot-chunk-size": "4kb"}))
    c = srv.client()
    fill(c, 4000, dbs=(0,))
    good = bgsave_and_wait(c)["snapshot_last_id"]
    fail_point(mongo_uri, {"times": 1}, failCommands=["insert"], errorCode=91)
    try:
        c.bgsave()
        wait_for(lambda: info(c)["rdb_bgsave_in_progress"] == "0", timeout=60, what="the snapshot to end")
    finally:
        fail_point(mongo_uri, "off")
    p = info(c)
    assert p["rdb_last_bgsave_status"] == "err"
    assert int(p["snapshot_failures"]) == 1
    assert "writing chunk" in p["snapshot_last_error"]
    assert "snapshot failed" in srv.log()
    assert c.ping() and c.set("still", "serving")
    assert mongo_list(mongo_uri, coll) == [good]
    snapshot_tool("--database", MONGO_DB, "--collection", coll, "verify", mongo_uri)
    bgsave_and_wait(c)
    assert info(c)["rdb_last_bgsave_status"] == "ok"


@obentchi_only
def test_mongo_slow_fails_and_retries(servers, tmp_path, mongo_uri, request):
    """A MongoDB that does not answer in time fails the snapshot; the save
    rules retry it with backoff and succeed once it answers again."""
    coll = unique_collection(request)
    sep = "&" if "?" in mongo_uri else "/?"
    uri = mongo_uri + sep + "socketTimeoutMS=1000"
    srv = servers(tmp_path / "a", save="1 1", **mongo_opts(uri, coll))
    c = srv.client()
    fail_point(mongo_uri, "alwaysOn", failCommands=["insert"], blockConnection=True, blockTimeMS=2500)
    try:
        c.set("k", "v")
        wait_for(lambda: info(c)["rdb_last_bgsave_status"] == "err", timeout=30, what="the snapshot to fail")
        p = info(c)
        assert int(p["snapshot_consecutive_failures"]) >= 1
        assert int(p["snapshot_retry_in_sec"]) >= 0
        assert c.get("k") == b"v"
    finally:
        fail_point(mongo_uri, "off")
    wait_for(lambda: info(c)["rdb_last_bgsave_status"] == "ok", timeout=60, what="a retry to succeed")
    assert len(mongo_list(mongo_uri, coll)) == 1


@obentchi_only
@pytest.mark.slow
def test_mongo_killed_mid_snapshot(servers, tmp_path, own_peer, request):
    coll = unique_collection(request)
    opts = mongo_opts(own_peer.uri, coll, **{"snapshot-chunk-size": "4kb"})
    srv = servers(tmp_path / "a", save="", **opts)
    c = srv.client()
    fill(c, N_KEYS)
    assert int(info(c)["snapshot_failures"]) == 0
    kill_peer_mid_snapshot(c, srv, own_peer, 5)
    assert c.set("still", "serving") and c.get("still") == b"serving"
    # MongoDB back (empty: the peer keeps nothing): the rules retry and succeed
    own_peer.start()
    c.config_set("save", "1 1")
    wait_for(lambda: info(c)["rdb_last_bgsave_status"] == "ok", timeout=90, what="a retry to succeed")
    want = dump_digest(c)
    ids = mongo_list(own_peer.uri, coll)
    assert len(ids) == 1
    srv.stop()
    srv = servers(tmp_path / "b", save="", **opts)
    c = srv.client()
    wait_loaded(c)
    assert dump_digest(c) == want


@obentchi_only
@pytest.mark.slow
def test_kill9_during_mongo_snapshot_keeps_previous(servers, tmp_path, mongo_uri, request):
    coll = unique_collection(request)
    opts = mongo_opts(mongo_uri, coll, **{"snapshot-chunk-size": "4kb"})
    srv = servers(tmp_path / "a", save="", **opts)
    c = srv.client()
    fill(c, 20000, dbs=(0,))
    first = bgsave_and_wait(c)["snapshot_last_id"]
    want = dump_digest(c, dbs=(0,))
    fill(c, N_KEYS // 2, seed=3, dbs=(0,))
    c.bgsave()
    wait_for(lambda: int(info(c)["snapshot_current_chunks"]) > 3, timeout=60, interval=0.005,
             what="the snapshot to be under way")
    kill9(srv)
    assert mongo_list(mongo_uri, coll) == [first]  # chunks without a manifest are no snapshot
    srv = servers(tmp_path / "b", save="", **opts)
    c = srv.client()
    wait_loaded(c)
    assert dump_digest(c, dbs=(0,)) == want
    # the orphan chunks go with the next snapshot's pruning
    bgsave_and_wait(c)
    snapshot_tool("--database", MONGO_DB, "--collection", coll, "verify", mongo_uri)


@obentchi_only
def test_loading_answers(servers, tmp_path, mongo_uri, request):
    """While a snapshot loads: INFO says loading:1, PING answers, the rest
    gets -LOADING."""
    coll = unique_collection(request)
    opts = mongo_opts(mongo_uri, coll)
    srv = servers(tmp_path / "a", save="", **opts)
    c = srv.client()
    fill(c, 2000, dbs=(0,))
    bgsave_and_wait(c)
    srv.stop()
    # hold the chunk reads for a while: the load stays in progress
    fail_point(mongo_uri, "alwaysOn", failCommands=["find"], blockConnection=True, blockTimeMS=1500)
    try:
        srv = servers(tmp_path / "b", wait=False, save="", **opts)
        x = srv.raw()
        assert x.call("PING") == b"+PONG\r\n"
        assert x.err("GET", "k:1:0:1") == "LOADING Redis is loading the dataset in memory"
        assert x.err("BGSAVE") == "LOADING Redis is loading the dataset in memory"
        text = x.call_parsed("INFO", "persistence").decode()
        assert "loading:1" in text and "loading_loaded_perc" in text
    finally:
        fail_point(mongo_uri, "off")
    c = srv.client()
    wait_loaded(c)
    assert c.dbsize() == 2000
