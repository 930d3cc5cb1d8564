"""Fault injection with the money and the bot on, checking afterwards the
invariants tools/soak checks (imported from it, not copied): balances equal
ledgers and what was credited minus what was paid out, every hold closed
once, no payout POSTed twice for one request, no job lost, replica equal to
the master.

  - MongoDB (the mongo-peer) killed in the middle of a snapshot under load,
    then restarted: the snapshot fails with status err, the server keeps
    serving, the next one succeeds, and a new server restores it whole;
  - the Bot API stand-in answering 502s and hanging, the providers answering
    500s (before and after making the payout) and hanging past the client's
    timeout: the bot retries, the outbox keeps every answer, no payout twice;
  - the replica link cut (CLIENT KILL TYPE replica, and the replica stopped
    with SIGSTOP past a cut) under load: partial resyncs, equal data;
  - the master killed with SIGKILL under load, mid-payouts, and restarted
    from its snapshot: every write acknowledged before the snapshot is there,
    balances equal ledgers, every withdrawal paid exactly once.
"""
import importlib.util
import json
import os
import random
import signal
import sys
import threading
import time
from importlib.machinery import SourceFileLoader
from pathlib import Path

import pytest
import redis

from conftest import REPO, Server, free_port, wait_for
from test_bot import ADDRESS, SECRET as WEBHOOK_SECRET, TOKEN, Bot
from test_money import SECRET as CB_SECRET, money_options, prov  # noqa: F401  (prov: fixture)
from test_replication import sigstop
from test_snapshot import (bgsave_and_wait, info, kill_peer_mid_snapshot, mongo_opts, own_peer,  # noqa: F401
                           unique_collection, wait_loaded)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from standins.botapi import BotApi  # noqa: E402
from standins.providers import send_callback  # noqa: E402

pytestmark = [pytest.mark.obentchi_only, pytest.mark.slow]


def _load_soak():
    loader = SourceFileLoader("obentchi_soak", str(REPO / "tools" / "soak"))
    spec = importlib.util.spec_from_loader("obentchi_soak", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


soak = _load_soak()


def fault_options(p, api=None, **extra):
    o = money_options(p, **{"queue-withdrawal-min-workers": 2, "queue-withdrawal-max-workers": 8,
                            "bot-rate-chat": 0, "bot-rate-global": 0})
    if api is not None:
        o.update({"bot-token": TOKEN, "bot-api-url": api.url, "bot-webhook-secret": WEBHOOK_SECRET})
    o.update(extra)
    return o


class Load:
    """Background load on a master: RESP writes of unique keys (each
    acknowledged one remembered with when it was acknowledged) and operator
    money (credits, withdrawals).  Errors are counted, not raised: the
    faults may make some fail; what was acknowledged is what counts."""

    def __init__(self, srv, users=(), withdraw=True, rate=200):
        self.srv, self.users, self.withdraw, self.rate = srv, list(users), withdraw, rate
        self.stop_ev = threading.Event()
        self.acked = []          # (monotonic time, key, value)
        self.credited = {}
        self.refs = []
        self.errors = 0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._resp, daemon=True)]
        if self.users:
            self.threads.append(threading.Thread(target=self._money, daemon=True))

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(20)

    def _client(self):
        return redis.Redis(host="127.0.0.1", port=self.srv.port, socket_timeout=5, socket_connect_timeout=2)

    def _resp(self):
        r, n = self._client(), 0
        while not self.stop_ev.is_set() and n < 200000:
            n += 1
            k, v = "load:%d" % n, "v%d-%s" % (n, "x" * (n % 40))
            try:
                r.set(k, v)
                with self.lock:
                    self.acked.append((time.monotonic(), k, v))
                if n % 3 == 0:
                    r.hset("lh:{%d}" % (n % 500), "f%d" % n, n)
            except (redis.RedisError, OSError):
                self.errors += 1
                self.stop_ev.wait(0.05)
                r = self._client()
            if self.rate:
                self.stop_ev.wait(1.0 / self.rate)
        r.close()

    def _money(self):
        r, n = self._client(), 0
        rnd = random.Random(5)
        while not self.stop_ev.is_set() and n < 20000:
            n += 1
            uid = rnd.choice(self.users)
            try:
                if n % 2 or not self.withdraw:
                    amt = rnd.randrange(100, 1000)
                    if r.execute_command("LEDGER.CREDIT", uid, amt, "fl-dep-%d" % n) == b"OK":
                        with self.lock:
                            self.credited[uid] = self.credited.get(uid, 0) + amt
                else:
                    try:
                        r.execute_command("LEDGER.WITHDRAW", uid, rnd.randrange(1, 200), "FAULTADDR", "fl-wd-%d" % n)
                        with self.lock:
                            self.refs.append("fl-wd-%d" % n)
                    except redis.ResponseError as e:
                        if "SHORT" not in str(e):
                            raise
            except (redis.RedisError, OSError):
                self.errors += 1
                self.stop_ev.wait(0.05)
                r = self._client()
            self.stop_ev.wait(0.02)
        r.close()


def queues_idle(r, timeout=60, queues=("withdrawal", "payment")):
    wait_for(lambda: soak.queues_idle(r, list(queues)), timeout=timeout, interval=0.1, what="queues %r idle" % (queues,))


def check_money(r, prov, users, credited, refs, allow_conflicts=False):
    """soak's ledger and payout invariants; fails the test with every problem."""
    problems, paid = soak.check_payouts(r, prov.stats(), set(users), expect_refs=refs,
                                        allow_conflicts=allow_conflicts)
    for uid in users:
        p, _ = soak.check_user(r, uid, credited.get(uid, 0) if credited is not None else None,
                               paid.get(uid, 0) if credited is not None else None)
        problems += p
    assert not problems, "\n".join(problems)
    return paid


# ---------------------------------------------------------------- MongoDB killed during snapshots


def test_mongo_killed_and_restarted_during_snapshots(tmp_path, own_peer, prov, request):  # noqa: F811
    coll = unique_collection(request)
    opts = fault_options(prov, **mongo_opts(own_peer.uri, coll, **{"snapshot-chunk-size": "4kb"}))
    srv = Server(tmp_path / "a", opts).start()
    try:
        c = srv.client()
        wait_loaded(c)
        # enough data that a snapshot takes a while
        p = c.pipeline(transaction=False)
        for i in range(60000):
            p.set("bulk:%d" % i, "value-%d-%s" % (i, "y" * (i % 64)))
            if i % 2000 == 1999:
                p.execute()
        p.execute()
        users = [5000 + i for i in range(10)]
        load = Load(srv, users).start()
        kill_peer_mid_snapshot(c, srv, own_peer, 3)
        # still serving, with the load on
        n = len(load.acked)
        assert c.set("still", "serving") and c.get("still") == b"serving"
        wait_for(lambda: len(load.acked) > n + 50, timeout=10, what="the load to go on")
        # MongoDB back (empty: the peer keeps nothing): the next snapshot succeeds
        own_peer.start()
        bgsave_and_wait(c)
        assert info(c)["rdb_last_bgsave_status"] == "ok"
        load.stop()
        queues_idle(c)
        check_money(c, prov, users, load.credited, load.refs)
        assert load.errors == 0, "%d load commands failed while MongoDB was down" % load.errors
        bgsave_and_wait(c)
        want = soak.contents(c, soak.dbs_with_keys(c), exclude=soak.SCHEDULER_TAGS)
        srv.stop()
        assert not srv.exit_problems(), srv.exit_problems()
        # restore into a new node
        srv2 = Server(tmp_path / "b", opts).start()
        try:
            c2 = srv2.client()
            wait_loaded(c2)
            got = soak.contents(c2, soak.dbs_with_keys(c2), exclude=soak.SCHEDULER_TAGS)
            assert got == want, "restored differs: only in the snapshotted %r; only in the restored %r" % \
                soak.differences(want, got)
            check_money(c2, prov, users, load.credited, load.refs)
        finally:
            srv2.stop()
            assert not srv2.exit_problems(), srv2.exit_problems()
    finally:
        srv.stop()


# ---------------------------------------------------------------- Bot API and providers failing


def test_botapi_and_providers_fail_and_hang(tmp_path, prov):  # noqa: F811
    api = BotApi(token=TOKEN).start()
    srv = Server(tmp_path / "a", fault_options(prov, api, **{"provider-timeout-ms": 800})).start()
    try:
        bot = Bot(srv, api, srv.http_port)
        r = srv.client()
        users = [6000 + i for i in range(6)]
        for uid in users:
            bot.say(uid, "/start")
        for uid in users:
            bot.wait_text(uid, "Welcome")
        credited = {}
        for uid in users:
            assert r.execute_command("LEDGER.CREDIT", uid, 10000, "fault-dep-%d" % uid) == b"OK"
            credited[uid] = 10000
        # Telegram down (502s) and then slow (3 s answers) while the users withdraw through the bot
        api.fail_5xx = 10 ** 6
        # the payout provider fails in every way at once: 500 before, 500 after the payout, a hang
        prov.fail_before, prov.fail_after, prov.hang_after, prov.hang_s = 3, 3, 2, 1.5
        refs = []
        for uid in users:
            bot.say(uid, "/withdraw")
            bot.say(uid, "12.34")
            st, _ = bot.post(bot.message(uid, ADDRESS))
            assert st == 200
            addr_update = bot.next_id - 1
            t = time.monotonic()
            st, _ = bot.post(bot.callback(uid, "wd:ok:%d" % addr_update))
            assert st == 200 and time.monotonic() - t < 2, "the webhook waited for the Bot API"
            refs.append("wd-%d-%d" % (uid, addr_update))
        # operator withdrawals beside them
        for i, uid in enumerate(users):
            r.execute_command("LEDGER.WITHDRAW", uid, 100 + i, "OPADDR", "op-wd-%d" % uid)
            refs.append("op-wd-%d" % uid)
        wait_for(lambda: sum(r.llen("outbox:{u:%d}" % u) for u in users) >= len(users), timeout=20,
                 what="answers kept in the outboxes while the Bot API fails")
        time.sleep(1.5)
        api.fail_5xx = 0
        api.delay = 3.0  # hanging answers
        time.sleep(4)
        api.delay = 0
        queues_idle(r, timeout=60)
        for uid in users:
            bot.wait_text(uid, "Withdrawal of 12.34 USDT requested", timeout=90)
        wait_for(lambda: sum(r.llen("outbox:{u:%d}" % u) for u in users) == 0, timeout=90,
                 what="every outbox delivered")
        assert len(api.sent(status=502)) > 0
        for uid in users:  # every answer came, once Telegram was back
            texts = api.texts(uid)
            assert any("Withdraw 12.34 USDT to" in t for t in texts), texts
        s = prov.stats()
        assert set(s["payouts"]) == set(refs), (sorted(s["payouts"]), sorted(refs))
        # fail_before made nothing: POSTed again after a 404; after/hang made the payout: asked, not POSTed again
        assert sum(s["posts"].values()) == len(refs) + 3, s["posts"]
        assert s["conflicts"] == 0 and s["gets"] >= 8
        check_money(r, prov, users, credited, refs, allow_conflicts=True)
        for uid in users:
            assert r.execute_command("LEDGER.BALANCE", uid) == [10000 - 1234 - (100 + users.index(uid)), 0]
    finally:
        srv.stop()
        api.stop()
    assert not srv.exit_problems(), srv.exit_problems()


def test_provider_down_then_callbacks_retried(tmp_path, prov):  # noqa: F811
    """Invoices failing (500) are retried; the provider's callbacks, repeated
    and out of order, credit once each."""
    srv = Server(tmp_path / "a", fault_options(prov)).start()
    try:
        r = srv.client()
        prov.invoice_fail = 4
        for i in range(5):
            r.execute_command("JOB.ADD", "payment", json.dumps({"user_id": 7000 + i, "amount": 100 + i,
                                                                "invoice_id": "finv-%d" % i}), "IDEM", "finv-%d" % i)
        queues_idle(r)
        assert sorted(prov.invoices) == ["finv-%d" % i for i in range(5)]
        url = "http://127.0.0.1:%d/payments/callback" % srv.http_port
        for rep in range(3):
            for i in reversed(range(5)):
                st, body = send_callback(url, CB_SECRET, "finv-%d" % i, "fpm-%d" % i, 100 + i)
                assert st == 200 and json.loads(body)["ok"] is True
        for i in range(5):
            check_money(r, prov, [7000 + i], {7000 + i: 100 + i}, [])
    finally:
        srv.stop()
    assert not srv.exit_problems(), srv.exit_problems()


# ---------------------------------------------------------------- the replica link cut


def test_replica_link_cut_and_restored(tmp_path, prov):  # noqa: F811
    opts = fault_options(prov, **{"repl-diskless-sync-delay": 0, "save": ""})
    master = Server(tmp_path / "m", opts).start()
    replica = None
    try:
        mc = master.client()
        replica = Server(tmp_path / "r", dict(opts, replicaof=["127.0.0.1", str(master.port)])).start()
        rc = replica.client()
        wait_for(lambda: soak.repl_offsets(mc, rc)[2] == "up", timeout=30, what="the link up")
        users = [8000 + i for i in range(8)]
        load = Load(master, users).start()
        wait_for(lambda: len(load.acked) > 200, timeout=20, what="load")
        full0 = int(mc.info("stats")["sync_full"])
        for _ in range(3):
            assert mc.execute_command("CLIENT", "KILL", "TYPE", "replica") == 1
            wait_for(lambda: soak.repl_offsets(mc, rc)[2] == "up" and mc.info("replication")["connected_slaves"] == 1,
                     timeout=20, what="the replica back")
            time.sleep(0.5)
        # a longer cut: the replica frozen, its link killed, then thawed
        sigstop(replica)
        try:
            mc.execute_command("CLIENT", "KILL", "TYPE", "replica")
            time.sleep(1.5)
        finally:
            os.kill(replica.pid, signal.SIGCONT)
        # the thawed replica first sees its closed link, then continues from its offset
        try:
            wait_for(lambda: int(mc.info("stats")["sync_partial_ok"]) >= 4 and soak.repl_offsets(mc, rc)[2] == "up",
                     timeout=60, what="a fourth partial resync after SIGSTOP")
        except AssertionError as e:
            st = mc.info("stats")
            raise AssertionError("%s: sync_full %s (was %d), sync_partial_ok %s, sync_partial_err %s; replica %r"
                                 % (e, st["sync_full"], full0, st["sync_partial_ok"], st["sync_partial_err"],
                                    {k: v for k, v in rc.info("replication").items() if "link" in k or "offset" in k}))
        time.sleep(0.5)
        load.stop()
        assert int(mc.info("stats")["sync_full"]) == full0, "a cut inside the backlog cost a full copy"
        queues_idle(mc)
        ok, detail = soak.replica_equal(mc, rc)
        assert ok, detail
        for _, k, v in load.acked[-500:]:
            assert rc.get(k) == v.encode()
        check_money(mc, prov, users, load.credited, load.refs)
        check_money(rc, prov, users, load.credited, load.refs)
    finally:
        if replica:
            replica.stop()
        master.stop()
    for s in (master, replica):
        assert not s.exit_problems(), s.exit_problems()


# ---------------------------------------------------------------- the master killed


def test_master_sigkill_under_load_restart_from_snapshot(tmp_path, prov):  # noqa: F811
    api = BotApi(token=TOKEN).start()
    opts = fault_options(prov, api, **{"queue-lease-ms": 2000, "save": ""})
    srv = Server(tmp_path / "node", opts).start()
    srv2 = None
    try:
        r = srv.client()
        bot = Bot(srv, api, srv.http_port)
        users = [9000 + i for i in range(5)]
        credited = {}
        for uid in users:
            assert r.execute_command("LEDGER.CREDIT", uid, 100000, "kill-dep-%d" % uid) == b"OK"
            credited[uid] = 100000
        refs = []
        prov.delay_s = 0.05  # slow payouts: the kill lands in the middle of them
        for i in range(12):
            for uid in users:
                ref = "kill-wd-%d-%d" % (uid, i)
                r.execute_command("LEDGER.WITHDRAW", uid, 10 + i, "KADDR", ref)
                refs.append(ref)
        for uid in users:  # credited before their first update (the ledger made the hash): registered all the same
            bot.say(uid, "/start ref_4242")
        load = Load(srv, rate=0).start()  # RESP only: money requests after the snapshot would be lost with it
        wait_for(lambda: prov.stats()["created"] >= 8 and len(load.acked) > 500, timeout=30, what="payouts and load")
        t_save = time.monotonic()
        assert r.execute_command("SAVE") in (True, b"OK")
        wait_for(lambda: prov.stats()["created"] >= 25, timeout=30, what="payouts after the snapshot")
        with load.lock:
            acked = [(k, v) for t, k, v in load.acked if t < t_save]
        os.kill(srv.pid, signal.SIGKILL)
        srv.proc.wait(10)
        load.stop()
        made_before = prov.stats()["created"]
        assert made_before < len(refs), "the kill came after every payout"
        prov.delay_s = 0
        srv2 = Server(tmp_path / "node", opts).start()
        r2 = srv2.client()
        wait_loaded(r2)
        # every write acknowledged before the snapshot began is there
        p = r2.pipeline(transaction=False)
        for k, _ in acked:
            p.get(k)
        got = p.execute()
        missing = [k for (k, v), g in zip(acked, got) if g != v.encode()]
        assert not missing, "%d of %d acknowledged, snapshotted writes lost: %r" % (len(missing), len(acked),
                                                                                 missing[:5])
        for uid in users:
            u = r2.hgetall("user:{u:%d}" % uid)
            assert u.get(b"id") == str(uid).encode() and u.get(b"referrer") == b"4242", u
        queues_idle(r2, timeout=60)
        # every request paid once: the provider keys by request and the restored jobs ask
        # (GET) or get the existing payout (409) before paying again
        check_money(r2, prov, users, credited, refs, allow_conflicts=True)
        s = prov.stats()
        assert s["created"] == len(refs)
        assert all(n <= 2 for n in s["posts"].values()), s["posts"]
        assert s["conflicts"] + s["gets"] > 0
    finally:
        if srv.alive():
            srv.stop()
        if srv2:
            srv2.stop()
        api.stop()
    assert not srv2.exit_problems(), srv2.exit_problems()
