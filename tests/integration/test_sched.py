"""The scheduler end to end: a schedule from the configuration and one from
the API surviving a restart (from a snapshot), exactly-once firing across a
failover (the master SIGKILLed, the replica standing by, then promoted:
the missed tick fired once, late, never twice), bad schedule options
refused at start, nothing written to the engine until there is something
to keep (built-ins run in process; pause overrides and first fires are the
only records), the daily summary sent once per due time through the
outbox, and a broadcast to 10,000 users through the Bot API stand-in
resumed after SIGKILL with nobody sent it twice.

Fired jobs are read back in the queue's keys (bot/keys.h): each fire adds
a job with the idempotency key "<name>:<due ms>" (queue:{q:<q>}:idem)."""
import collections
import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from conftest import wait_for, wait_loaded  # noqa: E402
from standins.botapi import BotApi  # noqa: E402

pytestmark = pytest.mark.obentchi_only

TOKEN = "sched-tok"
AUTH = {"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"}


def dues(r, queue, name):
    """The due times (ms) fired for schedule name into queue, sorted."""
    keys = r.hkeys("queue:{q:%s}:idem" % queue)
    out = sorted(int(k.split(":")[-1]) for k in keys if k.startswith(name + ":"))
    return out


def fired(r, name):
    return int(r.hget("sched:{sched}:fired", name) or 0)


def check_once(r, queue, name):
    d = dues(r, queue, name)
    assert len(d) == len(set(d)), "a due time fired twice: %r" % d
    assert all(x % 1000 == 0 for x in d)
    # one job per fire, no job without its due time
    assert r.llen("queue:{q:%s}:waiting" % queue) == len(d) == r.hlen("queue:{q:%s}:idem" % queue)
    return d


BUILTINS = ("builtin:daily-summary", "builtin:expire-withdrawals", "builtin:prune-jobs", "builtin:retry-invoices")
EVERY_SECOND = {"sched-expire-withdrawals": "every 1 s", "sched-retry-invoices": "every 1 s",
                "sched-prune-jobs": "every 1 s", "sched-daily-summary": "every 1 s"}


def schedules(srv):
    st, _, body = srv.http("GET", "/api/v1/schedules", None, AUTH)
    assert st == 200, body
    return {s["name"]: s for s in json.loads(body)["schedules"]}


def api_post(srv, path):
    st, _, body = srv.http("POST", path, b"", AUTH)
    assert st == 200, body
    return json.loads(body)


def test_fresh_server_writes_nothing(make_server):
    """Built-in schedules run in process and a configured one not yet due
    lives in memory: a redis-cli user sees an empty keyspace."""
    srv = make_server(**dict(EVERY_SECOND, **{"schedule": ["yearly", "0 3 1 1 *", "yq", "{}"], "save": "",
                                              "sched-tick-ms": 50, "api-token": TOKEN}))
    r = srv.client(decode_responses=True)
    # a withdraw conversation still fresh: the expiry scan leaves it alone
    r.hset("session:{u:9}", mapping={"state": "withdraw_amount", "updated": int(time.time() * 1000)})
    wait_for(lambda: all(schedules(srv)[n]["fired"] >= 2 for n in BUILTINS if n != "builtin:daily-summary"), 10,
             what="the housekeeping built-ins ran twice")
    assert r.keys("*") == ["session:{u:9}"]
    assert r.hget("session:{u:9}", "state") == "withdraw_amount"
    ss = schedules(srv)
    assert {n: s["source"] for n, s in ss.items()} == dict({n: "builtin" for n in BUILTINS}, yearly="config")
    assert all(ss[n]["queue"] is None and ss[n]["payload"]["task"] == n.split(":")[1] for n in BUILTINS)
    assert ss["yearly"]["queue"] == "yq" and ss["yearly"]["fired"] == 0 and ss["yearly"]["paused"] is False
    assert ss["yearly"]["next_due_ms"] % 86400000 == 3 * 3600000
    # no bot-admin-chat: the summary has nothing to send and records nothing
    assert ss["builtin:daily-summary"]["fired"] == 0 and ss["builtin:daily-summary"]["next_due_ms"]
    r.delete("session:{u:9}")
    time.sleep(1.2)
    assert r.dbsize() == 0


def test_builtin_expires_a_stale_withdrawal(make_server):
    srv = make_server(**{"save": "", "sched-tick-ms": 50, "sched-expire-withdrawals": "every 1 s",
                         "sched-withdraw-timeout": 1})
    r = srv.client(decode_responses=True)
    old = int(time.time() * 1000) - 5000
    r.hset("session:{u:31}", mapping={"state": "withdraw_confirm", "updated": old, "amount": 500,
                                      "address": "addr", "ref": "w-1"})
    r.hset("session:{u:32}", mapping={"state": "idle", "updated": old})
    wait_for(lambda: r.hget("session:{u:31}", "state") == "idle", 5, what="the stale conversation expired")
    assert r.hmget("session:{u:31}", "amount", "address", "ref") == [None, None, None]
    assert r.hgetall("session:{u:32}") == {"state": "idle", "updated": str(old)}
    assert "withdrawal conversation expired" in srv.log()
    assert not r.exists("queue:{q:sched}:waiting") and not r.keys("job:{q:sched}:*")


def test_pause_overrides_are_the_only_records(make_server):
    """Pausing a built-in or configured schedule writes an override that
    survives a restart; resuming a built-in removes it again."""
    srv = make_server(**dict(EVERY_SECOND, **{"schedule": ["yearly", "0 3 1 1 *", "yq", '{"a":1}'],
                                              "sched-tick-ms": 50, "api-token": TOKEN}))
    r = srv.client(decode_responses=True)
    assert api_post(srv, "/api/v1/schedules/builtin:prune-jobs/pause")["paused"] is True
    assert api_post(srv, "/api/v1/schedules/yearly/pause")["next_due_ms"] is None
    defs = {k: json.loads(v) for k, v in r.hgetall("sched:{sched}:defs").items()}
    assert set(defs) == {"builtin:prune-jobs", "yearly"} and all(d["paused"] for d in defs.values())
    assert defs["yearly"]["source"] == "config" and defs["builtin:prune-jobs"]["source"] == "builtin"
    assert r.keys("*") == ["sched:{sched}:defs"]
    f0 = schedules(srv)["builtin:prune-jobs"]["fired"]
    time.sleep(2.2)
    assert schedules(srv)["builtin:prune-jobs"]["fired"] == f0
    r.save()
    srv.stop()
    srv.start()
    r = srv.client(decode_responses=True)
    wait_loaded(r)
    ss = schedules(srv)
    assert ss["builtin:prune-jobs"]["paused"] and ss["yearly"]["paused"]
    assert not ss["builtin:expire-withdrawals"]["paused"]
    t0 = int(time.time() * 1000)
    assert api_post(srv, "/api/v1/schedules/builtin:prune-jobs/resume")["paused"] is False
    wait_for(lambda: schedules(srv)["builtin:prune-jobs"]["fired"] >= 1, 5, what="prune-jobs runs again")
    assert api_post(srv, "/api/v1/schedules/yearly/resume")["next_due_ms"]
    # the built-in's override is gone; the configured one keeps its record,
    # resumed from now
    assert r.hkeys("sched:{sched}:defs") == ["yearly"]
    assert int(r.hget("sched:{sched}:last", "yearly")) >= t0
    # resuming what runs writes nothing
    before = r.hgetall("sched:{sched}:defs")
    assert api_post(srv, "/api/v1/schedules/builtin:expire-withdrawals/resume")["paused"] is False
    assert r.hgetall("sched:{sched}:defs") == before


def test_configured_schedule_changed_or_removed_across_restarts(make_server):
    srv = make_server(**{"schedule": ["tick", "every 1 s", "tq", "{}"], "sched-tick-ms": 50, "api-token": TOKEN})
    r = srv.client(decode_responses=True)
    wait_for(lambda: fired(r, "tick") >= 1, 5, what="first fire")
    rec = json.loads(r.hget("sched:{sched}:defs", "tick"))
    assert rec["source"] == "config" and rec["expr"] == "every 1 s" and not rec["paused"]
    r.save()
    srv.stop()
    srv.options["schedule"] = ["tick", "every 3600 s", "tq", "{}"]
    t0 = int(time.time() * 1000)
    srv.start()
    r = srv.client(decode_responses=True)
    wait_loaded(r)
    wait_for(lambda: json.loads(r.hget("sched:{sched}:defs", "tick"))["expr"] == "every 3600 s", 5,
             what="the record follows the configuration")
    # a changed expression restarts from now: nothing missed under the old one fires
    assert int(r.hget("sched:{sched}:last", "tick")) >= t0 - 1000
    assert "the configuration changed it" in srv.log()
    n = r.llen("queue:{q:tq}:waiting")
    time.sleep(1.5)
    assert r.llen("queue:{q:tq}:waiting") == n
    r.save()
    srv.stop()
    del srv.options["schedule"]
    srv.start()
    r = srv.client(decode_responses=True)
    wait_loaded(r)
    wait_for(lambda: not r.exists("sched:{sched}:defs", "sched:{sched}:last", "sched:{sched}:fired"), 5,
             what="the removed schedule's records gone")
    assert "tick" not in schedules(srv)


def test_daily_summary_once_through_the_outbox(make_server):
    api = BotApi(token="1:T").start()
    try:
        srv = make_server(**{"save": "", "sched-tick-ms": 50, "api-token": TOKEN, "bot-token": "1:T",
                             "bot-api-url": api.url, "bot-admin-chat": 777, "sched-daily-summary": "every 1 s"})
        r = srv.client(decode_responses=True)
        wait_for(lambda: fired(r, "builtin:daily-summary") >= 3, 10, what="three summaries")
        last = int(r.hget("sched:{sched}:last", "builtin:daily-summary"))
        assert last % 1000 == 0 and last <= time.time() * 1000
        assert api_post(srv, "/api/v1/schedules/builtin:daily-summary/pause")["paused"]
        time.sleep(0.3)
        n = fired(r, "builtin:daily-summary")
        assert schedules(srv)["builtin:daily-summary"]["fired"] == n
        wait_for(lambda: len(api.texts(777)) >= n, 10, what="every summary delivered")
        time.sleep(1.5)
        texts = api.texts(777)
        assert len(texts) == n == fired(r, "builtin:daily-summary"), (n, texts)
        assert all(t.startswith("Daily summary, ") for t in texts)
        # the other built-ins, at their defaults, wrote nothing
        assert not [k for k in r.keys("*") if k.startswith("queue:") or k.startswith("job:")]
    finally:
        api.stop()


def test_bad_schedule_options_stop_the_start(make_server):
    for opts, needle in (({"schedule": ["x", "61 * * * *", "q", "{}"]}, "minute"),
                         ({"schedule": ["x", "every 5 s", "q", "{not json"]}, "JSON"),
                         ({"schedule": ["x", "every 5 s"]}, "expected"),
                         ({"schedule-timezone": "Mars/Olympus"}, "time zone")):
        srv = make_server(start=False, save="", **opts)
        srv.expect_failure = True
        proc = srv.spawn()
        proc.wait(20)
        assert proc.returncode != 0
        assert needle in srv.output() + srv.log(), (opts, srv.output()[-500:])


def test_schedule_survives_restart(make_server):
    srv = make_server(**{"schedule": ["tick", "every 1 s", "tq", '{"k":1}'], "save": "", "sched-tick-ms": 50,
                         "api-token": TOKEN})
    st, _, body = srv.http("POST", "/api/v1/schedules", json.dumps(
        {"name": "api1", "expr": "every 1 s", "queue": "aq", "payload": [1]}).encode(), AUTH)
    assert st == 201, body
    r = srv.client(decode_responses=True)
    wait_for(lambda: fired(r, "tick") >= 2 and fired(r, "api1") >= 2, 10, what="two fires each")
    r.save()
    before = int(r.hget("sched:{sched}:last", "tick"))
    n_before = len(check_once(r, "tq", "tick"))
    srv.stop()
    time.sleep(2.5)  # misses two or three ticks
    srv.start()
    r = srv.client(decode_responses=True)
    wait_loaded(r)
    wait_for(lambda: fired(r, "tick") >= n_before + 2 and fired(r, "api1") >= 1, 10, what="fires after restart")
    d = check_once(r, "tq", "tick")
    assert d[n_before - 1] == before
    # the missed ticks: only the latest, once (a gap, then one per second)
    post = [x for x in d if x > before]
    assert post[0] - before >= 2000, (before, d)
    assert all(b - a == 1000 for a, b in zip(post, post[1:])), d
    st, _, body = srv.http("GET", "/api/v1/schedules/api1", None, AUTH)
    assert st == 200 and json.loads(body)["payload"] == [1]
    check_once(r, "aq", "api1")


def test_exactly_once_across_failover(make_server):
    conf = {"schedule": ["tick", "every 1 s", "fq", "{}"], "save": "", "sched-tick-ms": 50}
    master = make_server(**conf)
    replica = make_server(**dict(conf, replicaof=["127.0.0.1", master.port]))
    rm = master.client(decode_responses=True)
    rr = replica.client(decode_responses=True)
    wait_for(lambda: rr.info("replication").get("master_link_status") == "up", 10, what="link up")
    wait_for(lambda: fired(rm, "tick") >= 3, 10, what="three fires on the master")
    wait_for(lambda: rr.hget("sched:{sched}:last", "tick") == rm.hget("sched:{sched}:last", "tick"), 5,
             what="the replica has caught up")
    master.expect_failure = True
    os.kill(master.pid, signal.SIGKILL)
    master.proc.wait(10)
    last = int(rr.hget("sched:{sched}:last", "tick"))
    f0 = fired(rr, "tick")
    time.sleep(2.5)
    # the replica stands by: it fired nothing on its own
    assert fired(rr, "tick") == f0
    assert int(rr.hget("sched:{sched}:last", "tick")) == last
    rr.execute_command("REPLICAOF", "NO", "ONE")
    t_promote = int(time.time() * 1000)
    wait_for(lambda: fired(rr, "tick") >= f0 + 3, 10, what="fires on the promoted replica")
    d = check_once(rr, "fq", "tick")
    late = [x for x in d if last < x <= t_promote]
    assert len(late) == 1, ("the missed tick should fire once, late", last, t_promote, d)


@pytest.mark.slow
def test_broadcast_10000_resumed_after_sigkill(make_server):
    api = BotApi(token="1:T").start()
    try:
        srv = make_server(**{"api-token": TOKEN, "save": "", "bot-token": "1:T", "bot-api-url": api.url,
                             "bot-rate-global": 800, "bot-rate-chat": 100, "bot-broadcast-rate": 800, "snapshot-method": os.environ.get("SNAPM", "versioned")})
        r = srv.client(decode_responses=True)
        n = 10000
        p = r.pipeline(transaction=False)
        for uid in range(1, n + 1):
            p.hset("user:{u:%d}" % uid, mapping={"id": uid, "lang": "en", "name": "U", "created": 1, "active": 1})
            if uid % 1000 == 0:
                p.execute()
        p.hset("user:{u:%d}" % (n + 1), mapping={"id": n + 1, "lang": "en", "active": 0})  # blocked the bot
        p.execute()
        st, _, body = srv.http("POST", "/api/v1/broadcasts", json.dumps({"text": "big news"}).encode(), AUTH)
        assert st == 202, body
        bid = json.loads(body)["id"]

        def delivered():
            return [c.params.get("chat_id") for c in api.sent("sendMessage", status=200)
                    if c.params.get("text") == "big news"]

        wait_for(lambda: len(delivered()) >= 3000, 120, interval=0.2, what="3,000 delivered")
        # Make the snapshot match what Telegram took: refuse further sends
        # (they stay in the outboxes), let answers in flight land, save, kill.
        api.fail_5xx = 10 ** 9
        time.sleep(3.0)
        r.save()
        srv.expect_failure = True
        t_kill = time.time()
        os.kill(srv.pid, signal.SIGKILL)
        srv.proc.wait(10)
        # The sender retried all along, so calls were in flight at the kill: a
        # call whose answer is lost is an unknown outcome, and the outbox
        # (rightly) sends it again after the restart.  Telegram must refuse
        # those too, or it takes a message the snapshot still holds: keep it
        # failing until the stand-in has read and answered the last of them.
        assert api.quiesce(2.0, 20), "the Bot API stand-in kept getting calls for 20 s"
        got_before = len(delivered())
        assert got_before < n, "the broadcast finished before the kill: nothing to resume"
        api.fail_5xx = 0
        srv.expect_failure = False
        srv.start()
        r = srv.client(decode_responses=True)

        def state():
            st, _, body = srv.http("GET", "/api/v1/broadcasts/" + bid, None, AUTH)
            return json.loads(body) if st == 200 else {"state": "loading?"}

        wait_for(lambda: state()["state"] == "done", 180, interval=0.5, what="broadcast done after the restart")
        try:
            wait_for(lambda: len(delivered()) >= n, 60, interval=0.5, what="every user delivered")
        except AssertionError:
            left = sum(1 for _ in r.scan_iter("outbox:*", count=1000))
            raise AssertionError("delivered %d of %d (%d before the kill); %d outboxes still pending"
                                 % (len(set(delivered())), n, got_before, left))
        got = delivered()
        dup = sorted(c for c, k in collections.Counter(got).items() if k > 1)
        assert not dup, "%d users got the broadcast twice; calls (s after the kill, status): %s" % (
            len(dup), {c: [(round(x.time - t_kill, 3), x.status) for x in api.sent("sendMessage", chat=c)]
                       for c in dup[:5]})
        assert set(got) == set(range(1, n + 1))
        s = state()
        assert s["sent"] == n and s["skipped"] == 1
        assert r.sismember("bcsent:{u:5000}", bid)
        assert "broadcast resumed" in srv.log()
    finally:
        api.stop()
