"""tools/failover-drill, the tool ops rehearse failovers with, in a short run
of both drills: Sentinel's failover after a SIGKILL, and a planned FAILOVER.
No acknowledged write may be lost, the old master must come back as a
replica, and a drill that cannot measure says so with exit status 2."""
import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import IS_PEER, OBENTCHI_SERVER, REPO

DRILL = str(REPO / "tools" / "failover-drill")


def drill(*args, timeout=240):
    argv = ["/usr/bin/python3", DRILL] + (["--peer", "redis"] if IS_PEER else ["--server", OBENTCHI_SERVER])
    return subprocess.run(argv + list(args), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def test_failover_drill_both_modes():
    if os.environ.get("OBENTCHI_SANITIZED"):
        # test_sentinel.py runs Sentinel's failover on the sanitized server;
        # this is the tool's own check, a minute of the suite saved
        pytest.skip("the drill's run on the optimised build is enough")
    p = drill("--mode", "both", "--duration", "3", "--json")
    assert p.returncode == 0, (p.stdout + p.stderr)[-4000:]
    kill, planned = json.loads(p.stdout)
    assert kill["mode"] == "kill" and planned["mode"] == "planned"
    for r in (kill, planned):
        assert r["acked"] > 1000 and r["acked_lost"] == 0, r
        assert r["writes"] == r["acked"] + r["failed"], r
        assert 0 < r["downtime_s"] < 30, r
    # Sentinel's failover: promotion after down-after (1 s) and the election
    # (the load may write to the new master a moment before the Sentinel the
    # drill asks names it: the two figures are not ordered)
    assert 1.0 <= kill["promotion_s"] < 30, kill
    assert kill["failovers"] >= 1, kill
    assert kill["other_replica_follows"] and kill["rejoined"], kill
    assert planned["old_master_is_replica"], planned
    assert planned["switch_s"] < 5, planned


def test_failover_drill_refuses_a_load_too_small_to_measure():
    """A load that has made all its writes before the kill measures nothing:
    the drill says which option to change, at once, with status 2."""
    p = drill("--mode", "planned", "--writes", "50", "--kill-after", "2", timeout=120)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "raise --writes or lower --kill-after" in p.stderr, p.stderr
    kept = re.search(r"\(logs in (\S*failover-drill-\w+)\)", p.stderr)  # kept for a person; not here
    assert kept, p.stderr
    shutil.rmtree(kept.group(1), ignore_errors=True)
