"""Money: withdrawals through the payout stand-in (completed, refused,
failed, pending then polled, 500s before and after the payout was made, a
hang past the client's timeout), concurrent withdrawals racing one balance,
deposits (invoice, signed callback: a bad signature changes nothing, a
repeated payment id credits once), and SIGKILL in the middle of payouts then
a restart from the snapshot: no payout made twice, balances equal ledgers.

Balances are created with the operator commands LEDGER.CREDIT and
LEDGER.WITHDRAW (hold + enqueue in one step, as the bot's confirm does)."""
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
import redis

from conftest import Server, wait_for, wait_loaded

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from standins.providers import Providers, send_callback, sign  # noqa: E402

pytestmark = pytest.mark.obentchi_only
SECRET = "cb-secret"


def money_options(p, **extra):
    o = {"save": "", "payout-api-url": p.url, "payout-api-key": p.key, "payment-api-url": p.url,
         "payment-api-key": p.key, "payment-callback-secret": SECRET, "queue-backoff-ms": 100,
         "queue-backoff-max-ms": 1000, "provider-timeout-ms": 500, "payout-poll-ms": 100}
    o.update(extra)
    return o


@pytest.fixture
def prov():
    p = Providers().start()
    yield p
    p.stop()


@pytest.fixture
def money(make_server, prov):
    srv = make_server(**{k.replace("-", "_"): v for k, v in money_options(prov).items()})
    return srv, srv.client()


def job(r, jid, q="withdrawal"):
    v = r.execute_command("JOB.GET", q, jid)
    return json.loads(v) if v else None


def wait_state(r, jid, state, q="withdrawal", timeout=15):
    return wait_for(lambda: (job(r, jid, q) or {}).get("state") == state, timeout=timeout,
                    what="job %s %s" % (jid, state))


def balance(r, uid):
    return r.execute_command("LEDGER.BALANCE", uid)


def entries(r, uid, n=50):
    return [json.loads(e) for e in r.execute_command("LEDGER.HISTORY", uid, n)]


def test_withdrawal_completed(money, prov):
    srv, r = money
    assert r.execute_command("LEDGER.CREDIT", 1, 1000, "dep-1") == b"OK"
    assert r.execute_command("LEDGER.CREDIT", 1, 1000, "dep-1") == b"DUP"
    jid = r.execute_command("LEDGER.WITHDRAW", 1, 400, "TADDR1", "wd-1")
    assert r.execute_command("LEDGER.WITHDRAW", 1, 400, "TADDR1", "wd-1") == jid  # same request: same job
    wait_state(r, jid, "done")
    assert balance(r, 1) == [600, 0]
    assert [e["kind"] for e in entries(r, 1)] == ["settle", "hold", "deposit"]
    assert r.execute_command("LEDGER.CHECK", 1) == 1
    s = prov.stats()
    assert s["posts"] == {"wd-1": 1}
    p = s["payouts"]["wd-1"]
    assert (p["amount"], p["user_id"], p["address"], p["currency"], p["status"]) == (400, 1, "TADDR1", "USDT",
                                                                                    "completed")
    with pytest.raises(redis.ResponseError, match="SHORT"):
        r.execute_command("LEDGER.WITHDRAW", 1, 601, "TADDR1", "wd-2")
    assert balance(r, 1) == [600, 0]


def test_refusals_release_the_hold(money, prov):
    srv, r = money
    r.execute_command("LEDGER.CREDIT", 2, 1000, "dep-2")
    prov.refuse_over = 500
    j1 = r.execute_command("LEDGER.WITHDRAW", 2, 700, "TADDR2", "wd-r1")  # 422
    wait_state(r, j1, "done")
    prov.refuse_over = None
    prov.fail_status = True
    j2 = r.execute_command("LEDGER.WITHDRAW", 2, 300, "TADDR2", "wd-r2")  # 201 status failed
    wait_state(r, j2, "done")
    prov.fail_status = False
    assert balance(r, 2) == [1000, 0]
    assert [e["kind"] for e in entries(r, 2)] == ["release", "hold", "release", "hold", "deposit"]
    assert r.execute_command("LEDGER.CHECK", 2) == 1
    assert "wd-r1" not in prov.stats()["payouts"]
    assert prov.stats()["payouts"]["wd-r2"]["status"] == "failed"


def test_unknown_outcomes_ask_before_sending_again(money, prov):
    srv, r = money
    r.execute_command("LEDGER.CREDIT", 3, 10000, "dep-3")
    # 500 before anything was made: GET says 404, a second POST is safe
    prov.fail_before = 1
    j1 = r.execute_command("LEDGER.WITHDRAW", 3, 100, "A", "wd-u1")
    wait_state(r, j1, "done")
    # 500 after the payout was made: the GET finds it, no second POST
    prov.fail_after = 1
    j2 = r.execute_command("LEDGER.WITHDRAW", 3, 200, "A", "wd-u2")
    wait_state(r, j2, "done")
    # the answer never comes in time (payout made): the GET finds it
    prov.hang_after, prov.hang_s = 1, 1.2
    j3 = r.execute_command("LEDGER.WITHDRAW", 3, 300, "A", "wd-u3")
    wait_state(r, j3, "done")
    # pending: polled until completed, attempts not used up
    prov.pending = 3
    j4 = r.execute_command("LEDGER.WITHDRAW", 3, 400, "A", "wd-u4")
    wait_state(r, j4, "done")
    prov.pending = 0
    s = prov.stats()
    assert s["posts"] == {"wd-u1": 2, "wd-u2": 1, "wd-u3": 1, "wd-u4": 1}
    assert s["created"] == 4
    assert all(p["status"] == "completed" for p in s["payouts"].values())
    assert job(r, j1)["attempts"] == 2 and job(r, j2)["attempts"] == 2 and job(r, j3)["attempts"] == 2
    assert job(r, j4)["attempts"] == 1
    assert balance(r, 3) == [10000 - 1000, 0]
    assert r.execute_command("LEDGER.CHECK", 3) == 1


def test_provider_down_goes_dead_holding_the_money(make_server, prov):
    srv = make_server(**{k.replace("-", "_"): v for k, v in
                         money_options(prov, **{"queue-withdrawal-max-attempts": 3}).items()})
    r = srv.client()
    r.execute_command("LEDGER.CREDIT", 4, 500, "dep-4")
    prov.fail_before = 1000
    jid = r.execute_command("LEDGER.WITHDRAW", 4, 500, "A", "wd-d1")
    wait_state(r, jid, "dead", timeout=20)
    assert balance(r, 4) == [0, 500]  # still held: the outcome may be unknown
    prov.fail_before = 0
    assert r.execute_command("JOB.REDRIVE", "withdrawal", jid) == 1
    wait_state(r, jid, "done")
    assert balance(r, 4) == [0, 0]
    assert prov.stats()["created"] == 1


def test_concurrent_withdrawals_race_one_balance(money, prov):
    srv, r = money
    r.execute_command("LEDGER.CREDIT", 5, 1000, "dep-5")
    ok, short = [], []

    def go(i):
        c = srv.client()
        try:
            ok.append(c.execute_command("LEDGER.WITHDRAW", 5, 100, "A", "wd-c%d" % i))
        except redis.ResponseError as e:
            assert "SHORT" in str(e)
            short.append(i)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(25)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(ok) == 10 and len(short) == 15
    for jid in ok:
        wait_state(r, jid, "done")
    assert balance(r, 5) == [0, 0]
    assert r.execute_command("LEDGER.CHECK", 5) == 1
    assert prov.stats()["created"] == 10


def test_deposit_invoice_and_signed_callback(money, prov):
    srv, r = money
    jid = r.execute_command("JOB.ADD", "payment", json.dumps({"user_id": 6, "amount": 250, "invoice_id": "inv-1"}))
    wait_state(r, jid, "done", q="payment")
    assert "inv-1" in prov.invoices
    assert r.hget("invoice:{inv:inv-1}", "pay_url") == b"https://pay.example/i/inv-1"
    url = "http://127.0.0.1:%d/payments/callback" % srv.http_port
    st, _ = send_callback(url, SECRET, "inv-1", "pm-1", 250, signature="00" * 32)
    assert st == 401
    st, _ = send_callback(url, "wrong-secret", "inv-1", "pm-1", 250)
    assert st == 401
    assert balance(r, 6) == [0, 0]
    st, body = send_callback(url, SECRET, "inv-1", "pm-1", 250)
    assert st == 200 and json.loads(body)["credited"] is True
    st, body = send_callback(url, SECRET, "inv-1", "pm-1", 250)  # the provider retries
    assert st == 200 and json.loads(body)["duplicate"] is True
    assert balance(r, 6) == [250, 0]
    assert [e["ref"] for e in entries(r, 6)] == ["pay:pm-1"]
    assert r.hget("invoice:{inv:inv-1}", "status") == b"paid"
    st, _ = send_callback(url, SECRET, "inv-404", "pm-2", 250)
    assert st == 404
    st, _ = send_callback(url, SECRET, "inv-1", "pm-3", 250, status="expired")
    assert st == 200
    assert balance(r, 6) == [250, 0]
    st, _, _ = srv.http("POST", "/payments/callback", body=b"not json",
                        headers={"X-Signature": sign(b"not json", SECRET)})
    assert st == 400


def test_sigkill_mid_payouts_then_restart_from_snapshot(tmp_path, prov):
    users, per_user, amount = 4, 15, 10
    opts = money_options(prov, **{"queue-withdrawal-min-workers": 2, "queue-withdrawal-max-workers": 4,
                                  "queue-lease-ms": 2000})
    srv = Server(tmp_path / "node", opts).start()
    try:
        r = srv.client()
        for u in range(1, users + 1):
            r.execute_command("LEDGER.CREDIT", 100 + u, 1000, "dep")
        prov.delay_s = 0.05  # slow payouts: the kill lands in the middle
        for i in range(per_user):
            for u in range(1, users + 1):
                r.execute_command("LEDGER.WITHDRAW", 100 + u, amount, "A%d" % u, "wd-%d-%d" % (u, i))
        wait_for(lambda: prov.stats()["created"] >= 10, timeout=20, what="some payouts")
        assert r.execute_command("SAVE") in (True, b"OK")
        wait_for(lambda: prov.stats()["created"] >= 25, timeout=20, what="more payouts after the snapshot")
        os.kill(srv.pid, signal.SIGKILL)
        srv.proc.wait(10)
        made_before = prov.stats()["created"]
    finally:
        if srv.alive():
            srv.stop()
    assert made_before < users * per_user  # the kill came in the middle
    prov.delay_s = 0
    srv2 = Server(tmp_path / "node", opts).start()
    try:
        r = srv2.client()
        wait_loaded(r, timeout=60)  # -LOADING until then (longer under the sanitizers)
        wait_for(lambda: sum(r.execute_command("LEDGER.BALANCE", 101)) > 0, timeout=20, what="restored")

        def all_done():
            st = dict(zip(*[iter(r.execute_command("JOB.STATS", "withdrawal"))] * 2))
            return st[b"waiting"] == 0 and st[b"active"] == 0 and st[b"delayed"] == 0
        wait_for(all_done, timeout=40, what="all withdrawals finished")
        s = prov.stats()
        assert s["created"] == users * per_user  # every request paid out, once: the provider keys by request
        for u in range(1, users + 1):
            assert r.execute_command("LEDGER.BALANCE", 100 + u) == [1000 - per_user * amount, 0]
            assert r.execute_command("LEDGER.CHECK", 100 + u) == 1
            settles = [e for e in entries(r, 100 + u, 100) if e["kind"] == "settle"]
            assert sorted(e["ref"] for e in settles) == sorted("wd-%d-%d" % (u, i) for i in range(per_user))
        # the restored jobs that had reached the provider before the kill asked first (GET) or were
        # answered 409 with the payout already made: never a second payout
        assert s["conflicts"] + s["gets"] > 0
        assert made_before <= s["created"]
    finally:
        srv2.stop()
