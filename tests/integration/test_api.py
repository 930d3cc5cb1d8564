"""The operator API (/api/v1/) end to end: every route with a good token, a
wrong one and none, bad bodies and bad parameters, writes refused on a
replica, and every answer (status and body) checked against
docs/openapi.yaml with a small OpenAPI 3.1 validator (path templates,
methods, statuses, $ref'd JSON Schemas through python3-jsonschema).

Users and ledger entries are written with redis-py in the layout of
bot/keys.h (what the bot itself writes); jobs are added with the queue
part's JOB.ADD when it is there, else read back as 404."""
import json
import re
import sys
import time
from pathlib import Path

import jsonschema
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from conftest import wait_for  # noqa: E402

pytestmark = pytest.mark.obentchi_only

REPO = Path(__file__).resolve().parent.parent.parent
SPEC = yaml.safe_load((REPO / "docs" / "openapi.yaml").read_text())
TOKEN = "op-token_123"
AUTH = {"Authorization": "Bearer " + TOKEN}
JSON = {"Content-Type": "application/json"}


class Spec:
    """Finds the operation of a request in the spec and validates answers."""

    def __init__(self, spec):
        self.spec = spec
        self.resolver = jsonschema.RefResolver.from_schema(spec)
        self.paths = []
        for tmpl, item in spec["paths"].items():
            rx = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(tmpl)) + "$"
            self.paths.append((re.compile(rx), tmpl, item))
        self.seen = set()

    def operation(self, method, path):
        path = path.split("?")[0]
        assert path.startswith("/api/v1/"), path
        sub = path[len("/api/v1"):]
        for rx, tmpl, item in self.paths:
            if rx.match(sub):
                return tmpl, item.get(method.lower())
        return None, None

    def check(self, method, path, status, headers, body):
        tmpl, op = self.operation(method, path)
        assert headers.get("content-type", "").startswith("application/json"), headers
        doc = json.loads(body)
        if tmpl is None or op is None:
            # unknown routes and methods: the error shape only
            assert status in (404, 405), (method, path, status)
            self.validate(doc, {"$ref": "#/components/schemas/Error"})
            return doc
        self.seen.add((method.upper(), tmpl, status))
        resps = op["responses"]
        assert str(status) in resps, "%s %s answered %d, not in the spec (%s)" % (method, path, status, list(resps))
        resp = resps[str(status)]
        if "$ref" in resp:
            resp = self.resolver.resolve(resp["$ref"])[1]
        schema = resp["content"]["application/json"]["schema"]
        self.validate(doc, schema)
        return doc

    def validate(self, doc, schema):
        jsonschema.Draft202012Validator(schema, resolver=self.resolver).validate(doc)


SPECS = Spec(SPEC)


class Api:
    def __init__(self, srv):
        self.srv = srv

    def call(self, method, path, body=None, token=TOKEN, headers=None, raw=None):
        h = {}
        if token is not None:
            h["Authorization"] = "Bearer " + token
        if body is not None or raw is not None:
            h.update(JSON)
        h.update(headers or {})
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        st, hdrs, out = self.srv.http(method, path, body=data, headers=h)
        doc = SPECS.check(method, path, st, hdrs, out)
        return st, doc, hdrs


@pytest.fixture
def api(make_server):
    srv = make_server(**{"api-token": TOKEN, "save": "", "sched-tick-ms": 50})
    return Api(srv)


def put_user(r, uid, lang="en", name="Ann", balance=0, entries=()):
    r.hset("user:{u:%d}" % uid, mapping={"id": uid, "lang": lang, "name": name, "created": 1700000000000,
                                         "referrer": 0, "active": 1, "balance": balance, "held": 0})
    for e in entries:
        r.lpush("ledger:{u:%d}" % uid, json.dumps(e))


def test_tokens(api):
    for path in ("/api/v1/queues", "/api/v1/users/1", "/api/v1/schedules", "/api/v1/replication"):
        st, doc, hdrs = api.call("GET", path, token=None)
        assert st == 401 and doc["error"]["code"] == "unauthorized"
        assert hdrs.get("www-authenticate", "").startswith("Bearer")
        st, doc, _ = api.call("GET", path, token="wrong")
        assert st == 401
        st, doc, _ = api.call("GET", path, token=TOKEN + "x")
        assert st == 401
    # a Basic header is not a bearer token
    st, doc, _ = api.call("GET", "/api/v1/queues", token=None, headers={"Authorization": "Basic " + TOKEN})
    assert st == 401
    st, doc, _ = api.call("GET", "/api/v1/queues")
    assert st == 200


def test_api_off_without_token(make_server):
    srv = make_server(save="")
    st, hdrs, body = srv.http("GET", "/api/v1/queues", headers=AUTH)
    doc = SPECS.check("GET", "/api/v1/queues", st, hdrs, body) if st != 403 else json.loads(body)
    assert st == 403 and doc["error"]["code"] == "api_disabled"


def test_api_token_file(make_server, tmp_path):
    f = tmp_path / "tok"
    f.write_text("from-file-tok\n")
    srv = make_server(**{"api-token-file": str(f), "save": ""})
    st, _, _ = srv.http("GET", "/api/v1/queues", headers={"Authorization": "Bearer from-file-tok"})
    assert st == 200
    st, _, _ = srv.http("GET", "/api/v1/queues", headers=AUTH)
    assert st == 401
    # the secret is not shown by CONFIG GET
    assert srv.client(decode_responses=True).config_get("api-token")["api-token"] == ""


def test_routing_errors(api):
    st, doc, _ = api.call("GET", "/api/v1/nothing-here")
    assert st == 404 and doc["error"]["code"] == "not_found"
    st, doc, hdrs = api.call("PUT", "/api/v1/schedules", body={})
    assert st == 405 and set(hdrs["allow"].split(", ")) == {"GET", "POST"}
    st, doc, hdrs = api.call("PATCH", "/api/v1/users/5")
    assert st == 405 and hdrs["allow"] == "GET"
    st, doc, _ = api.call("GET", "/api/v1/queues/")
    assert st == 404


def test_users(api):
    r = api.srv.client(decode_responses=True)
    entries = [{"amount": 500, "kind": "deposit", "ref": "p1", "time": 1700000001000, "balance": 500},
               {"amount": -200, "kind": "hold", "ref": "w1", "time": 1700000002000, "balance": 300}]
    put_user(r, 42, lang="ar", name='Zed "the" \\ name', balance=300, entries=entries)
    st, doc, _ = api.call("GET", "/api/v1/users/42")
    assert st == 200
    assert doc["id"] == 42 and doc["lang"] == "ar" and doc["name"] == 'Zed "the" \\ name'
    assert doc["balance"] == 300 and doc["active"] is True and doc["referrer"] is None
    st, doc2, _ = api.call("GET", "/api/v1/users/42?ledger=0")
    assert st == 200 and doc2["ledger"] == []
    st, doc, _ = api.call("GET", "/api/v1/users/43")
    assert st == 404 and doc["error"]["code"] == "not_found"
    for bad in ("abc", "0", "12x", "99999999999999999999"):
        st, doc, _ = api.call("GET", "/api/v1/users/" + bad)
        assert st == 400 and doc["error"]["code"] == "bad_request", bad
    for q in ("ledger=-1", "ledger=101", "ledger=x"):
        st, doc, _ = api.call("GET", "/api/v1/users/42?" + q)
        assert st == 400, q


def test_queues_and_jobs(api):
    r = api.srv.client(decode_responses=True)
    st, doc, _ = api.call("GET", "/api/v1/queues")
    assert st == 200 and isinstance(doc["queues"], list)
    names = [q["name"] for q in doc["queues"]]
    assert len(names) == len(set(names))
    st, doc, _ = api.call("GET", "/api/v1/queues/withdrawal")
    assert st == 200 and doc["name"] == "withdrawal"
    st, doc, _ = api.call("GET", "/api/v1/queues/bad!name")
    assert st == 400
    st, doc, _ = api.call("GET", "/api/v1/jobs/withdrawal/nope")
    assert st == 404
    st, doc, _ = api.call("GET", "/api/v1/queues/withdrawal/dead?count=0")
    assert st == 400
    st, doc, _ = api.call("GET", "/api/v1/queues/withdrawal/dead")
    assert st == 200 and doc["jobs"] == [] and doc["offset"] == 0
    st, doc, _ = api.call("POST", "/api/v1/queues/withdrawal/dead/nope/redrive")
    assert st == 404
    st, doc, _ = api.call("DELETE", "/api/v1/queues/withdrawal/dead/nope")
    assert st == 404
    # a job fired by a schedule into a queue nobody works: readable by id
    st, doc, _ = api.call("POST", "/api/v1/schedules",
                          {"name": "fast", "expr": "every 1 s", "queue": "apiq", "payload": {"n": 1}})
    assert st == 201
    wait_for(lambda: r.llen("queue:{q:apiq}:waiting") >= 1, 5, what="a job in apiq")
    jid = r.lrange("queue:{q:apiq}:waiting", 0, 0)[0]
    st, doc, _ = api.call("GET", "/api/v1/jobs/apiq/" + jid)
    assert st == 200 and doc["id"] == jid and doc["payload"] == {"n": 1}
    st, doc, _ = api.call("GET", "/api/v1/queues/apiq")
    assert st == 200 and doc["waiting"] >= 1


def test_dead_letters(api):
    """A job failed for good through JOB.* (the queue part's RESP commands)
    shows in the dead list, is re-driven, dies again and is deleted."""
    r = api.srv.client(decode_responses=True)
    try:
        jid = r.execute_command("JOB.ADD", "deadq", '{"x":1}')
    except Exception as e:  # the queue part's commands are not there
        pytest.skip("JOB.ADD unavailable: %s" % e)
    claimed = r.execute_command("JOB.CLAIM", "deadq")
    assert claimed
    r.execute_command("JOB.FAIL", "deadq", jid, "boom", "PERMANENT")
    st, doc, _ = api.call("GET", "/api/v1/queues/deadq/dead")
    assert st == 200 and [j["id"] for j in doc["jobs"]] == [jid]
    st, doc, _ = api.call("POST", "/api/v1/queues/deadq/dead/%s/redrive" % jid)
    assert st == 200 and doc == {"redriven": True, "id": jid}
    st, doc, _ = api.call("GET", "/api/v1/queues/deadq/dead")
    assert doc["jobs"] == []
    r.execute_command("JOB.CLAIM", "deadq")
    r.execute_command("JOB.FAIL", "deadq", jid, "boom again", "PERMANENT")
    st, doc, _ = api.call("DELETE", "/api/v1/queues/deadq/dead/" + jid)
    assert st == 200 and doc["deleted"] is True
    st, doc, _ = api.call("GET", "/api/v1/queues/deadq/dead")
    assert doc["jobs"] == []


def test_schedules_routes(api):
    st, doc, _ = api.call("GET", "/api/v1/schedules")
    assert st == 200
    builtin = {s["name"]: s for s in doc["schedules"] if s["source"] == "builtin"}
    assert "builtin:prune-jobs" in builtin and "builtin:expire-withdrawals" in builtin
    # built-ins run in process: no queue
    assert all(s["queue"] is None and s["next_due_ms"] for s in builtin.values())
    body = {"name": "nightly", "expr": "0 3 * * *", "queue": "reports", "payload": {"kind": "nightly"}}
    st, doc, _ = api.call("POST", "/api/v1/schedules", body)
    assert st == 201 and doc["name"] == "nightly" and doc["source"] == "api" and doc["paused"] is False
    assert doc["next_due_ms"] % 86400000 == 3 * 3600000
    st, doc, _ = api.call("POST", "/api/v1/schedules", body)
    assert st == 409 and doc["error"]["code"] == "conflict"
    bad_bodies = [
        {"name": "x", "expr": "61 * * * *", "queue": "q"},
        {"name": "x", "expr": "* * *", "queue": "q"},
        {"name": "bad name", "expr": "@daily", "queue": "q"},
        {"name": "x", "expr": "@daily", "queue": "bad/q"},
        {"name": "x", "expr": "@daily"},
        {"name": 5, "expr": "@daily", "queue": "q"},
        {"name": "x", "expr": "@daily", "queue": "q", "extra": 1},
        {"name": "x", "expr": "every 0 s", "queue": "q"},
    ]
    for b in bad_bodies:
        st, doc, _ = api.call("POST", "/api/v1/schedules", b)
        assert st == 400 and doc["error"]["code"] == "bad_request", b
        assert doc["error"]["message"]
    for raw in (b"not json", b"[1,2]", b""):
        st, doc, _ = api.call("POST", "/api/v1/schedules", raw=raw)
        assert st == 400, raw
    st, doc, _ = api.call("POST", "/api/v1/schedules", raw=b"{}", headers={"Content-Type": "text/plain"})
    assert st == 415
    st, doc, _ = api.call("POST", "/api/v1/schedules/nightly/pause")
    assert st == 200 and doc["paused"] is True and doc["next_due_ms"] is None
    st, doc, _ = api.call("POST", "/api/v1/schedules/nightly/resume")
    assert st == 200 and doc["paused"] is False and doc["next_due_ms"]
    st, doc, _ = api.call("GET", "/api/v1/schedules/nightly")
    assert st == 200 and doc["payload"] == {"kind": "nightly"}
    st, doc, _ = api.call("POST", "/api/v1/schedules/none/pause")
    assert st == 404
    st, doc, _ = api.call("DELETE", "/api/v1/schedules/builtin:prune-jobs")
    assert st == 409
    st, doc, _ = api.call("DELETE", "/api/v1/schedules/nightly")
    assert st == 200 and doc == {"deleted": True, "name": "nightly"}
    st, doc, _ = api.call("GET", "/api/v1/schedules/nightly")
    assert st == 404
    st, doc, _ = api.call("DELETE", "/api/v1/schedules/nightly")
    assert st == 404


def test_paused_schedule_does_not_fire(api):
    r = api.srv.client(decode_responses=True)
    st, doc, _ = api.call("POST", "/api/v1/schedules", {"name": "p", "expr": "every 1 s", "queue": "pq"})
    assert st == 201
    wait_for(lambda: r.llen("queue:{q:pq}:waiting") >= 1, 5, what="first fire")
    api.call("POST", "/api/v1/schedules/p/pause")
    time.sleep(0.3)
    n = r.llen("queue:{q:pq}:waiting")
    time.sleep(2.2)
    assert r.llen("queue:{q:pq}:waiting") == n
    api.call("POST", "/api/v1/schedules/p/resume")
    wait_for(lambda: r.llen("queue:{q:pq}:waiting") == n + 1, 5, what="fires again after resume")
    time.sleep(0.5)
    assert r.llen("queue:{q:pq}:waiting") <= n + 2  # no burst for the paused seconds


def test_replication_and_snapshots(api):
    st, doc, _ = api.call("GET", "/api/v1/replication")
    assert st == 200 and doc["role"] == "master"
    if doc["info"] is not None:
        assert doc["info"]["role"] == "master"
    st, doc, _ = api.call("GET", "/api/v1/snapshots")
    assert st in (200, 503)
    if st == 200:
        assert "rdb_last_bgsave_status" in doc["persistence"]


def test_broadcast_routes(api):
    r = api.srv.client(decode_responses=True)
    put_user(r, 7, lang="en")
    put_user(r, 8, lang="ar")
    for bad in ({}, {"text": ""}, {"text": 5}, {"text": "hi", "language": "e"}, {"text": "hi", "language": "e n"},
                {"text": "x" * 4097}, {"text": "hi", "to": "all"}):
        st, doc, _ = api.call("POST", "/api/v1/broadcasts", bad)
        assert st == 400, bad
    st, doc, _ = api.call("POST", "/api/v1/broadcasts", {"text": "hello all", "language": "ar"})
    assert st == 202 and doc["state"] == "running" and doc["language"] == "ar"
    bid = doc["id"]
    wait_for(lambda: api.call("GET", "/api/v1/broadcasts/" + bid)[1]["state"] == "done", 10, what="broadcast done")
    st, doc, _ = api.call("GET", "/api/v1/broadcasts/" + bid)
    assert doc["sent"] == 1 and doc["skipped"] == 1 and doc["finished_ms"]
    assert r.sismember("bcsent:{u:8}", bid)
    st, doc, _ = api.call("DELETE", "/api/v1/broadcasts/" + bid)
    assert st == 409
    st, doc, _ = api.call("GET", "/api/v1/broadcasts/999")
    assert st == 404
    st, doc, _ = api.call("GET", "/api/v1/broadcasts/abc")
    assert st == 404
    st, doc, _ = api.call("POST", "/api/v1/broadcasts/999/cancel")
    assert st == 404


def test_writes_refused_on_replica(make_server):
    master = make_server(**{"api-token": TOKEN, "save": ""})
    replica = make_server(**{"api-token": TOKEN, "save": "", "replicaof": ["127.0.0.1", master.port]})
    rr = replica.client(decode_responses=True)
    wait_for(lambda: rr.info("replication").get("master_link_status") == "up", 10, what="link up")
    api = Api(replica)
    st, doc, _ = api.call("POST", "/api/v1/schedules", {"name": "r", "expr": "@daily", "queue": "q"})
    assert st == 503 and doc["error"]["code"] == "not_master"
    st, doc, _ = api.call("POST", "/api/v1/broadcasts", {"text": "x"})
    assert st == 503
    st, doc, _ = api.call("GET", "/api/v1/replication")
    assert st == 200 and doc["role"] == "replica"
    # the replica lists the built-ins from its own configuration; the
    # master's pause override (the only record) reaches it
    def replica_view():
        return {s["name"]: s for s in api.call("GET", "/api/v1/schedules")[1]["schedules"]}
    assert replica_view()["builtin:prune-jobs"]["paused"] is False
    st, doc, _ = Api(master).call("POST", "/api/v1/schedules/builtin:prune-jobs/pause")
    assert st == 200 and doc["paused"] is True
    wait_for(lambda: replica_view()["builtin:prune-jobs"]["paused"] is True, 10, what="the pause replicated")
    st, doc, _ = api.call("POST", "/api/v1/schedules/builtin:prune-jobs/resume")
    assert st == 503 and doc["error"]["code"] == "not_master"


def test_spec_covers_every_route():
    """Every route the server has is in the spec (and the other way round)."""
    src = (REPO / "bot" / "api.c").read_text()
    rows = re.findall(r'\{"(GET|POST|DELETE)", "([^"]+)", h_\w+, [01]\}', src)
    assert rows
    for method, pattern in rows:
        parts = pattern.split("/")
        # ':' segments are any {param}
        found = False
        for tmpl, item in SPEC["paths"].items():
            t = tmpl.strip("/").split("/")
            if len(t) == len(parts) and all(p == ":" and s.startswith("{") or p == s for p, s in zip(parts, t)):
                found = method.lower() in item
        assert found, "%s /api/v1/%s is not in docs/openapi.yaml" % (method, pattern)
    n_spec = sum(1 for item in SPEC["paths"].values() for m in item if m in ("get", "post", "delete"))
    assert n_spec == len(rows)
