"""GET /metrics on a real obentchi-server: the exposition format (checked by
Debian's `promtool check metrics`), the families of the process, the engine,
the commands (with duration histograms), replication and snapshots, and
values that follow what the server did."""
import re
import shutil
import subprocess

import pytest

from conftest import wait_for

pytestmark = pytest.mark.obentchi_only

PROMTOOL = shutil.which("promtool")


def scrape(srv):
    status, headers, body = srv.http("GET", "/metrics")
    assert status == 200
    assert headers["content-type"] == "text/plain; version=0.0.4"
    return body.decode()


def parse(text):
    """{(name, frozenset(labels.items())): value} and {family: type}."""
    samples, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert name not in types, "family %s declared twice" % name
            types[name] = kind
            continue
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', line)
        assert m, "bad sample line %r" % line
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        samples[(m.group(1), labels)] = float(m.group(4))
    return samples, types


def value(samples, name, **labels):
    return samples[(name, frozenset(labels.items()))]


def test_scrape_is_valid_and_complete(make_server):
    srv = make_server()
    r = srv.client()
    for i in range(50):
        r.set("k%d" % i, i)
    r.set("ttl", 1, ex=100)
    r.get("k1")
    r.select(2)
    r.set("other", 1)
    text = scrape(srv)
    samples, types = parse(text)
    for fam, kind in [("process_cpu_seconds_total", "counter"), ("process_resident_memory_bytes", "gauge"),
                      ("process_open_fds", "gauge"), ("process_start_time_seconds", "gauge"),
                      ("obentchi_db_keys", "gauge"), ("obentchi_expired_keys_total", "counter"),
                      ("obentchi_evicted_keys_total", "counter"), ("obentchi_memory_used_bytes", "gauge"),
                      ("obentchi_commands_processed_total", "counter"),
                      ("obentchi_command_duration_seconds", "histogram"), ("obentchi_connected_clients", "gauge"),
                      ("obentchi_blocked_clients", "gauge"), ("obentchi_rejected_connections_total", "counter"),
                      ("obentchi_replication_role", "gauge"), ("obentchi_replication_offset_bytes", "gauge"),
                      ("obentchi_replication_link_up", "gauge"),
                      ("obentchi_replication_full_syncs_total", "counter"),
                      ("obentchi_replication_partial_syncs_total", "counter"),
                      ("obentchi_snapshot_last_success_time_seconds", "gauge"),
                      ("obentchi_snapshot_last_duration_seconds", "gauge"),
                      ("obentchi_snapshot_last_size_bytes", "gauge"),
                      ("obentchi_snapshot_failures_total", "counter")]:
        assert types.get(fam) == kind, "family %s missing or not a %s" % (fam, kind)
    assert value(samples, "obentchi_db_keys", db="db2") == 1
    assert value(samples, "obentchi_db_keys", db="db0") >= 51
    assert value(samples, "obentchi_db_keys_expiring", db="db0") >= 1
    assert value(samples, "obentchi_commands_processed_total", cmd="set") >= 52
    # the histogram: cumulative buckets, +Inf equals _count equals the calls
    buckets = sorted((float(dict(l)["le"]) if dict(l)["le"] != "+Inf" else float("inf"), v)
                     for (n, l), v in samples.items()
                     if n == "obentchi_command_duration_seconds_bucket" and dict(l).get("cmd") == "set")
    assert len(buckets) == 17 and buckets[-1][0] == float("inf")
    assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:]))
    count = value(samples, "obentchi_command_duration_seconds_count", cmd="set")
    assert buckets[-1][1] == count == value(samples, "obentchi_commands_processed_total", cmd="set")
    assert value(samples, "obentchi_command_duration_seconds_sum", cmd="set") > 0
    assert value(samples, "obentchi_replication_role", role="master") == 1
    assert value(samples, "obentchi_connected_clients") >= 1
    assert value(samples, "process_resident_memory_bytes") > 1e6
    assert 0 < value(samples, "process_open_fds") < 10000
    if PROMTOOL:
        p = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stdout + p.stderr


def test_promtool_accepts_scrape(make_server):
    if not PROMTOOL:
        pytest.skip("promtool not installed (Debian package prometheus)")
    srv = make_server()
    srv.client().set("a", 1)
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=scrape(srv), capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr


def test_counters_follow_the_server(make_server):
    srv = make_server()
    r = srv.client()
    before, _ = parse(scrape(srv))
    for i in range(20):
        r.set("e%d" % i, 1, px=1)
    # the bot's own keys live in db0 too: wait for these ones
    wait_for(lambda: r.exists(*["e%d" % i for i in range(20)]) == 0, 5, what="keys expired")
    r.get("missing")
    after, _ = parse(scrape(srv))
    assert value(after, "obentchi_expired_keys_total") >= value(before, "obentchi_expired_keys_total") + 20
    assert value(after, "obentchi_commands_processed_total", cmd="set") >= 20
    assert value(after, "process_cpu_seconds_total") >= value(before, "process_cpu_seconds_total")
    # snapshots: a SAVE shows in the families
    r.save()
    snap, _ = parse(scrape(srv))
    assert value(snap, "obentchi_snapshots_total") >= 1
    assert value(snap, "obentchi_snapshot_last_ok") == 1
    assert value(snap, "obentchi_snapshot_last_size_bytes") > 0


def test_replication_families(make_server):
    master = make_server(**{"repl-diskless-sync-delay": "0"})
    master.client().set("x", 1)
    replica = make_server(replicaof=["127.0.0.1", str(master.port)])
    wait_for(lambda: value(parse(scrape(replica))[0], "obentchi_replication_link_up") == 1, 15,
             what="replica link up in metrics")
    rs, _ = parse(scrape(replica))
    assert value(rs, "obentchi_replication_role", role="replica") == 1
    assert value(rs, "obentchi_bot_master") == 0

    def lag_rows():
        ms, _ = parse(scrape(master))
        return [(dict(l), v) for (n, l), v in ms.items() if n == "obentchi_replica_lag_seconds"]
    rows = wait_for(lag_rows, 10, what="a replica's lag row")
    assert rows[0][0]["replica"] == "127.0.0.1:%d" % replica.port
    ms, _ = parse(scrape(master))
    assert value(ms, "obentchi_replication_full_syncs_total") >= 1
    # INFO agrees (sync_full counts now)
    assert int(master.client().info("stats")["sync_full"]) >= 1
