"""Job queues over RESP (JOB.*): a Python worker claiming and completing
jobs, idempotent adds, retries with exponential backoff, dead letters and
re-drive, lease expiry, and the self-scaling pool growing under a burst and
shrinking when idle (no-op handler with a delay, short scale interval)."""
import json
import re
import threading
import time

import pytest
import redis

from conftest import wait_for

pytestmark = pytest.mark.obentchi_only


def stats(r, q):
    v = r.execute_command("JOB.STATS", q)
    return {v[i].decode() if isinstance(v[i], bytes) else v[i]: v[i + 1] for i in range(0, len(v), 2)} \
        if isinstance(v, list) else {k.decode(): x for k, x in v.items()}


def claim(r, q, *args):
    v = r.execute_command("JOB.CLAIM", q, *args)
    if v is None:
        return None
    d = dict(zip(v[::2], v[1::2])) if isinstance(v, list) else v
    return {k.decode(): (x.decode() if isinstance(x, bytes) else x) for k, x in d.items()}


@pytest.fixture(scope="module")
def qserver(tmp_path_factory):
    from conftest import Server
    srv = Server(tmp_path_factory.mktemp("queue"), {"save": "", "queue-backoff-ms": 100,
                                                      "queue-backoff-max-ms": 2000}).start()
    yield srv
    srv.stop()
    assert srv.exit_problems() == []


@pytest.fixture
def qr(qserver):
    c = redis.Redis(host="127.0.0.1", port=qserver.port, socket_timeout=10)
    yield c
    c.close()


def test_python_worker_claims_and_completes(qr):
    ids = [qr.execute_command("JOB.ADD", "emails", json.dumps({"to": "u%d@example.com" % i})) for i in range(25)]
    assert len(set(ids)) == 25
    # the same idempotency key gives the same job back
    a = qr.execute_command("JOB.ADD", "emails", "{}", "IDEM", "order-7")
    assert qr.execute_command("JOB.ADD", "emails", "{}", "IDEM", "order-7") == a
    done = []

    def worker():
        c = redis.Redis(host="127.0.0.1", port=qr.connection_pool.connection_kwargs["port"])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            job = claim(c, "emails", "LEASE", 5000)
            if job is None:
                if stats(c, "emails")["waiting"] == 0:
                    break
                continue
            payload = json.loads(job["payload"])
            result = json.dumps({"sent": payload.get("to", "")})
            assert c.execute_command("JOB.DONE", "emails", job["id"], result, "TOKEN", job["token"]) == 1
            done.append(job["id"])
        c.close()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(done) == sorted(x.decode() for x in ids + [a])  # each job exactly once
    st = stats(qr, "emails")
    assert st["completed_total"] == 26 and st["waiting"] == 0 and st["active"] == 0
    job = json.loads(qr.execute_command("JOB.GET", "emails", ids[0]))
    assert job["state"] == "done" and job["result"] == {"sent": "u0@example.com"} and job["attempts"] == 1
    assert b"emails" in qr.execute_command("JOB.QUEUES")
    # the documented keys are plain Redis types
    assert qr.type("queue:{q:emails}:completed") == b"list"
    assert qr.hget("job:{q:emails}:%s" % ids[0].decode(), "state") == b"done"


def test_bad_input_gets_clear_errors(qr):
    with pytest.raises(redis.ResponseError, match="not valid JSON"):
        qr.execute_command("JOB.ADD", "emails", "{nope")
    with pytest.raises(redis.ResponseError, match="invalid queue name"):
        qr.execute_command("JOB.ADD", "bad name", "{}")
    with pytest.raises(redis.ResponseError, match="syntax"):
        qr.execute_command("JOB.ADD", "emails", "{}", "DELAY")
    with pytest.raises(redis.ResponseError, match="integer"):
        qr.execute_command("JOB.CLAIM", "emails", "LEASE", "soon")
    assert qr.execute_command("JOB.DONE", "emails", "99999") == 0
    assert qr.execute_command("JOB.FAIL", "emails", "99999", "x") is None


def test_retries_backoff_dead_and_redrive(qr):
    jid = qr.execute_command("JOB.ADD", "flaky", "{}", "MAXATTEMPTS", 3).decode()
    claimed_at, failed_at = [], []
    for attempt in (1, 2, 3):
        job = wait_for(lambda: claim(qr, "flaky"), timeout=10, interval=0.005, what="attempt %d" % attempt)
        claimed_at.append(time.monotonic())
        assert job["id"] == jid and job["attempts"] == attempt
        if attempt > 1:
            assert job["last_error"] == "boom %d" % (attempt - 1)
            # backoff 100 ms doubled per attempt, half of it jitter
            gap = claimed_at[-1] - failed_at[-1]
            low = 0.05 * 2 ** (attempt - 2)
            assert gap >= low * 0.9, (attempt, gap)
        outcome = qr.execute_command("JOB.FAIL", "flaky", jid, "boom %d" % attempt)
        failed_at.append(time.monotonic())
        assert outcome == (b"dead" if attempt == 3 else b"delayed")
        if attempt < 3:
            assert claim(qr, "flaky") is None  # not before its time
    dead = json.loads(qr.execute_command("JOB.DEAD", "flaky"))
    assert [j["id"] for j in dead] == [jid]
    assert dead[0]["error"] == "boom 3" and dead[0]["state"] == "dead"
    st = stats(qr, "flaky")
    assert st["dead"] == 1 and st["failed_total"] == 3 and st["retried_total"] == 2
    assert qr.execute_command("JOB.REDRIVE", "flaky", jid) == 1
    job = claim(qr, "flaky")
    assert job["id"] == jid and job["attempts"] == 1
    assert qr.execute_command("JOB.FAIL", "flaky", jid, "bad input", "PERMANENT") == b"dead"
    assert qr.execute_command("JOB.REDRIVE", "flaky", "ALL") == 1
    assert qr.execute_command("JOB.DONE", "flaky", claim(qr, "flaky")["id"]) == 1
    assert stats(qr, "flaky")["dead"] == 0


def test_lease_expiry_puts_job_back_counting_the_attempt(qr):
    jid = qr.execute_command("JOB.ADD", "lease", "{}").decode()
    first = claim(qr, "lease", "LEASE", 200)
    assert first["id"] == jid
    # the worker "crashed": the lease timer puts the job back
    wait_for(lambda: stats(qr, "lease")["waiting"] == 1, timeout=5, what="lease expiry")
    second = claim(qr, "lease")
    assert second["id"] == jid and second["attempts"] == 2 and second["last_error"] == "lease expired"
    # the first worker comes back late: its token is stale
    assert qr.execute_command("JOB.DONE", "lease", jid, "TOKEN", first["token"]) == 0
    assert qr.execute_command("JOB.RENEW", "lease", jid, "LEASE", 60000) == 1
    assert qr.execute_command("JOB.DONE", "lease", jid, "TOKEN", second["token"]) == 1
    assert json.loads(qr.execute_command("JOB.GET", "lease", jid))["state"] == "done"


def test_delayed_job(qr):
    jid = qr.execute_command("JOB.ADD", "later", "{}", "DELAY", 300)
    assert claim(qr, "later") is None
    assert stats(qr, "later")["delayed"] == 1
    time.sleep(0.35)
    assert claim(qr, "later")["id"] == jid.decode()


def test_pool_scales_up_under_burst_and_down_when_idle(make_server):
    srv = make_server(save="", queue_noop_queues="burst", queue_noop_delay_ms=100,
                      queue_scale_interval="200ms", queue_scale_wait_ms=100)
    r = srv.client()
    assert stats(r, "burst")["workers"] == 1
    r.execute_command("JOB.BENCHADD", "burst", 3000)
    seen = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        st = stats(r, "burst")
        seen.append(st["workers"])
        if st["completed_total"] == 3000:
            break
        time.sleep(0.05)
    assert stats(r, "burst")["completed_total"] == 3000
    assert max(seen) == 100  # grew to queue-max-workers (100 for queues without options)
    # idle: halves per interval down to the minimum
    wait_for(lambda: stats(r, "burst")["workers"] == 1, timeout=10, what="shrink to 1")
    log = srv.log()
    ups = re.findall(r'msg="pool scaled" queue=burst from=(\d+) to=(\d+) reason="backlog', log)
    downs = re.findall(r'msg="pool scaled" queue=burst from=(\d+) to=(\d+) reason="idle', log)
    assert ups and downs
    assert all(int(b) > int(a) for a, b in ups) and all(int(b) < int(a) for a, b in downs)
    status, _, body = srv.http("GET", "/metrics")
    if status == 200:
        text = body.decode()
        assert 'obentchi_queue_jobs{queue="withdrawal",state="waiting"}' in text
        assert 'obentchi_queue_workers{queue="burst"} 1' in text
        assert 'obentchi_queue_completed_total{queue="burst"} 3000' in text
