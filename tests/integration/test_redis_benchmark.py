"""redis-benchmark 7.0 against the server: short runs that must end cleanly."""
import csv
import io
import re
import subprocess

import pytest

from conftest import IS_PEER, OBENTCHI_SERVER, REDIS_BENCHMARK, REDIS_SERVER, REPO, parse_info, parse_kv

TESTS = "set,get,incr,mset,ping"


def bench(server, *args, timeout=120):
    argv = [REDIS_BENCHMARK, "-h", "127.0.0.1", "-p", str(server.port)] + [str(a) for a in args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def check_clean(p):
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-2000:]
    assert "ERR" not in out and "Error" not in out, out[-2000:]
    # redis-benchmark reads `CONFIG GET save` and `CONFIG GET appendonly`
    # at start and warns when they do not answer a name/value pair
    assert "Could not fetch server CONFIG" not in out, out[-2000:]


def test_benchmark_quick_run(server, r):
    r.config_resetstat()
    p = bench(server, "-n", 20000, "-c", 20, "-t", TESTS, "-r", 1000, "-q")
    check_clean(p)
    # -q prints "NAME: N requests per second, p50=X msec" after \r progress
    lines = [l.split("\r")[-1].strip() for l in p.stdout.split("\n") if "requests per second" in l]
    names = [l.split(":")[0] for l in lines]
    assert names == ["PING_INLINE", "PING_MBULK", "SET", "GET", "INCR", "MSET (10 keys)"], lines
    for l in lines:
        rps = float(l.split(":")[1].split()[0])
        assert rps > 0
    cs = parse_info(server.raw().call_parsed("INFO", "commandstats"))["commandstats"]
    for cmd, n in (("set", 20000), ("get", 20000), ("incr", 20000), ("mset", 20000), ("ping", 40000)):
        assert int(parse_kv(cs["cmdstat_" + cmd])["calls"]) >= n, cmd
    # -r 1000: keys are key:000000000123 (SET, GET, MSET) and
    # counter:000000000123 (INCR), at most 1000 of each
    nkeys = len(r.keys("key:*"))
    ncounters = len(r.keys("counter:*"))
    assert 500 < nkeys <= 1000 and 500 < ncounters <= 1000
    assert r.dbsize() == nkeys + ncounters
    assert sum(int(v) for v in r.mget(r.keys("counter:*"))) == 20000


def test_benchmark_pipelined_csv(server, r):
    p = bench(server, "-n", 20000, "-c", 10, "-P", 16, "-t", "set,get", "-r", 100000, "--csv")
    check_clean(p)
    rows = list(csv.reader(io.StringIO(p.stdout)))
    assert rows[0] == ["test", "rps", "avg_latency_ms", "min_latency_ms", "p50_latency_ms", "p95_latency_ms",
                       "p99_latency_ms", "max_latency_ms"]
    assert [row[0] for row in rows[1:]] == ["SET", "GET"]
    for row in rows[1:]:
        assert float(row[1]) > 0
        assert float(row[4]) <= float(row[6]) <= float(row[7])


def test_benchmark_single_client_with_values(server, r):
    p = bench(server, "-n", 3000, "-c", 1, "-d", 1000, "-t", "set,get", "-q")
    check_clean(p)
    assert r.strlen("key:__rand_int__") == 1000


def test_benchmark_with_password(make_server):
    srv = make_server(requirepass="benchpw")
    p = bench(srv, "-a", "benchpw", "-n", 2000, "-c", 5, "-t", "set,get", "-q")
    check_clean(p)


def test_bench_tool_with_control():
    """tools/bench, the tool behind the closing notes' ratios, in a tiny
    run: both tables and the memory section come out, and --control adds
    a third server whose row of ratios is read from real runs."""
    if IS_PEER:
        pytest.skip("compares obentchi with Redis")
    argv = ["/usr/bin/python3", str(REPO / "tools" / "bench"), "--obentchi", OBENTCHI_SERVER, "--redis", REDIS_SERVER,
            "-n", "2000", "--rounds", "2", "--tests", "PING_MBULK,SET", "--points", "5:1", "--memory-keys", "2000",
            "--control"]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    out = p.stdout
    # every server ran every test in both rounds
    for rnd in (1, 2):
        for test in ("PING_MBULK", "SET"):
            for label in ("obentchi", "redis", "control"):
                assert re.search(r"round %d  %s +c5 P1 +%s +\d+ ops/s" % (rnd, test, label), out), out
    results = out.split("== results")[1]
    control = out.split("== control")[1]
    for test in ("PING_MBULK", "SET"):
        row = re.search(r"^%s +c5 P1 +(\d+) +(\d+) +([\d.]+) " % test, results, re.M)
        assert row and int(row.group(1)) > 0 and int(row.group(2)) > 0, results
        # ops, p99 and cpu: A/B and B'/B each as median [lowest-highest]
        cells = re.findall(r"([\d.]+) \[([\d.]+)-([\d.]+)\]", re.search(r"^%s .*$" % test, control, re.M).group(0))
        assert len(cells) == 6, control
        for med, lo, hi in cells:
            assert float(lo) <= float(med) <= float(hi), control
        # a verdict per metric, each the one its A/B and B'/B cells call for
        verdicts = re.search(r"^%s .*\]\s+(above|>= 1\.0|parity|below)\s+(better|<= 1\.0|parity|worse)"
                             r"\s+(better|<= 1\.0|parity|worse)$" % test, control, re.M)
        assert verdicts, control
        for (med, lo, hi), (cmed, clo, chi), got, higher in zip(cells[0::2], cells[1::2], verdicts.groups(),
                                                                  (True, False, False)):
            m, clo, chi = float(med), float(clo), float(chi)
            if min(abs(m - 1), abs(m - clo), abs(m - chi)) < 0.01:
                continue  # printed to 2 decimals: too close to a boundary to tell
            if higher:
                want = "above" if m >= 1 and m > chi else ">= 1.0" if m >= 1 else "parity" if m >= clo else "below"
            else:
                want = "better" if m <= 1 and m < clo else "<= 1.0" if m <= 1 else "parity" if m <= chi else "worse"
            assert got == want, (test, cells, verdicts.groups(), control)
    assert re.search(r"^used_memory +\S+ +\S+ +[\d.]+$", out, re.M), out


def test_bench_tool_memory_of_20_field_sessions():
    """The memory section with sessions of 20 fields (--memory-fields), the
    top of the issue's 5 to 20: both servers hold every hash, and a ratio
    comes out."""
    if IS_PEER:
        pytest.skip("compares obentchi with Redis")
    argv = ["/usr/bin/python3", str(REPO / "tools" / "bench"), "--obentchi", OBENTCHI_SERVER, "--redis", REDIS_SERVER,
            "-n", "1000", "--rounds", "1", "--tests", "PING_MBULK", "--points", "5:1", "--memory-keys", "2000",
            "--memory-kind", "hash", "--memory-fields", "20"]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    out = p.stdout
    assert "memory: 2000 x HSET session:{u:N} + 20 short fields" in out, out
    row = re.search(r"^used_memory +(\S+) +(\S+) +([\d.]+)$", out, re.M)
    assert row and 0 < float(row.group(3)) < 10, out
