"""The operator API's look-up answers byte for byte (bot/api.c writes them
straight into a reused buffer, without printf or cJSON, for throughput):
JSON string escaping, 64-bit integers at their limits, the three-decimal
oldest_wait_s, and many answers of different sizes on one keep-alive
connection (a big dead-letter list, then small answers: nothing of an
earlier answer may show in a later one).  test_api.py checks the same
routes against docs/openapi.yaml; this file checks the exact values."""
import http.client
import json
import re
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from conftest import wait_for  # noqa: E402

pytestmark = pytest.mark.obentchi_only

TOKEN = "lookups-tok"
AUTH = {"Authorization": "Bearer " + TOKEN}
I64_MIN, I64_MAX = -(2 ** 63), 2 ** 63 - 1


@pytest.fixture
def srv(make_server):
    return make_server(**{"api-token": TOKEN, "save": ""})


def get(conn, path):
    conn.request("GET", path, headers=AUTH)
    resp = conn.getresponse()
    return resp.status, resp.read()


def test_user_answer_exact(srv):
    r = srv.client()
    name = 'q"b\\s\x01\x1f\t\n\u00e9\u4e2d/'
    r.hset("user:{u:77}", mapping={"id": 77, "lang": "de", "name": name, "created": I64_MAX,
                                   "referrer": I64_MIN, "active": 0, "balance": I64_MIN, "held": I64_MAX})
    entries = [{"amount": -(10 ** 15) + i, "kind": 'k"\\%d' % i, "ref": "r\x02\u00fc%d" % i,
                "time": 1700000000000 + i, "balance": 10 ** 15 - i} for i in range(3)]
    for e in entries:
        r.lpush("ledger:{u:77}", json.dumps(e))
    conn = http.client.HTTPConnection(srv.host, srv.http_port, timeout=5)
    st, body = get(conn, "/api/v1/users/77")
    assert st == 200, body
    # control bytes go out as \u00XX, never raw
    assert not re.search(rb"[\x00-\x1f]", body), body
    assert b'\\u0001\\u001f\\u0009\\u000a' in body and b'q\\"b\\\\s' in body
    doc = json.loads(body)
    assert doc == {
        "id": 77, "lang": "de", "name": name, "created_ms": I64_MAX, "referrer": I64_MIN, "active": False,
        "balance": I64_MIN, "held": I64_MAX,
        "ledger": [{"amount": e["amount"], "kind": e["kind"], "ref": e["ref"], "time_ms": e["time"],
                    "balance": e["balance"]} for e in reversed(entries)],
    }
    # key order as before the rewrite (the spec's order)
    assert list(doc) == ["id", "lang", "name", "created_ms", "referrer", "active", "balance", "held", "ledger"]
    st, body = get(conn, "/api/v1/users/77?ledger=1")
    assert st == 200 and len(json.loads(body)["ledger"]) == 1
    conn.close()


def test_queue_stats_exact(srv):
    r = srv.client(decode_responses=True)
    conn = http.client.HTTPConnection(srv.host, srv.http_port, timeout=5)
    st, body = get(conn, "/api/v1/queues/emptyq")
    assert st == 200
    assert body == (b'{"name":"emptyq","waiting":0,"active":0,"delayed":0,"dead":0,"completed":0,'
                    b'"completed_total":0,"failed_total":0,"retried_total":0,"workers":0,"busy":0,'
                    b'"oldest_wait_s":0.000}')
    for i in range(3):
        r.execute_command("JOB.ADD", "statq", '{"n":%d}' % i)
    r.execute_command("JOB.ADD", "statq", "{}", "DELAY", 600000)
    time.sleep(0.3)
    st, body = get(conn, "/api/v1/queues/statq")
    assert st == 200
    m = re.search(rb'"oldest_wait_s":(\d+)\.(\d{3})}$', body)
    assert m, body
    doc = json.loads(body)
    assert 0.25 <= doc["oldest_wait_s"] < 30
    stats = r.execute_command("JOB.STATS", "statq")
    stats = dict(zip(stats[::2], stats[1::2])) if isinstance(stats, list) else stats
    assert doc["waiting"] == int(stats["waiting"]) == 3 and doc["delayed"] == int(stats["delayed"]) == 1
    # the list of all queues: each entry has the single look-up's shape
    # (the numbers may move in between: the scheduler's queue is live)
    st, body = get(conn, "/api/v1/queues")
    assert st == 200
    listed = json.loads(body)["queues"]
    assert listed
    for q in listed:
        st, one = get(conn, "/api/v1/queues/" + q["name"])
        assert st == 200 and list(json.loads(one)) == list(q) == list(doc)
    conn.close()


def test_keepalive_answers_of_every_size(srv):
    """A dead-letter list far bigger than the kept answer buffer (64 KiB),
    then small answers and errors on the same connection, in a loop."""
    r = srv.client(decode_responses=True)
    payload = json.dumps({"pad": "x" * 1000})
    n = 150
    pipe = r.pipeline(transaction=False)
    for _ in range(n):
        pipe.execute_command("JOB.ADD", "bigdead", payload, "MAXATTEMPTS", 1)
    pipe.execute()
    for _ in range(n):
        claimed = r.execute_command("JOB.CLAIM", "bigdead")
        claimed = dict(zip(claimed[::2], claimed[1::2])) if isinstance(claimed, list) else claimed
        r.execute_command("JOB.FAIL", "bigdead", claimed["id"], "boom", "PERMANENT")
    wait_for(lambda: int(dict(zip(*[iter(r.execute_command("JOB.STATS", "bigdead"))] * 2))["dead"]) == n,
             what="all jobs dead")
    for uid in range(1, 21):
        r.hset("user:{u:%d}" % uid, mapping={"id": uid, "name": "U%d" % uid, "balance": uid * 7})
    conn = http.client.HTTPConnection(srv.host, srv.http_port, timeout=10)
    deadline = time.monotonic() + 60
    for rnd in range(20):
        assert time.monotonic() < deadline
        st, body = get(conn, "/api/v1/queues/bigdead/dead?count=100&offset=%d" % (rnd % 2))
        assert st == 200 and len(body) > 100 * 1024
        doc = json.loads(body)
        assert doc["queue"] == "bigdead" and doc["offset"] == rnd % 2 and len(doc["jobs"]) == 100
        assert len({j["id"] for j in doc["jobs"]}) == 100
        uid = rnd % 20 + 1
        st, body = get(conn, "/api/v1/users/%d" % uid)
        assert st == 200
        doc = json.loads(body)
        assert doc["id"] == uid and doc["name"] == "U%d" % uid and doc["balance"] == uid * 7
        st, body = get(conn, "/api/v1/users/%d" % (1000 + uid))
        assert st == 404 and json.loads(body) == {
            "error": {"code": "not_found", "message": "no user %d" % (1000 + uid)}}
        st, body = get(conn, "/api/v1/queues/bigdead")
        assert st == 200 and json.loads(body)["dead"] == n
        st, body = get(conn, "/api/v1/users/x%d" % uid)
        assert st == 400 and json.loads(body)["error"]["code"] == "bad_request"
    conn.close()
