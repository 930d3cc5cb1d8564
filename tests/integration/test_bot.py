"""The Telegram bot end to end: updates posted to /telegram/webhook as
Telegram posts them, replies received by a local Bot API stand-in
(tests/standins/botapi.py), state read back with redis-py.

Covers: the webhook's answers (bad secret 401 storing nothing, bad JSON and
non-Updates 400, oversized bodies 413, duplicates acknowledged and ignored,
replicas 503), /start with a referrer, Arabic replies, /balance, /deposit
queueing a payment job, the whole withdraw conversation (bad amount, bad
address, inline keyboard, confirm holding and enqueueing once), a user who
blocked the bot (my_chat_member and a 403), a 400 logged, 429 retry_after
honoured, 5xx retried, per-chat and global rate limits under a burst, and
the outbox surviving a Bot API outage."""
import http.client
import json
import os
import subprocess
import threading
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from conftest import free_port, wait_for  # noqa: E402
from standins.botapi import BotApi  # noqa: E402

pytestmark = pytest.mark.obentchi_only

SECRET = "s3cret-Token_1"
TOKEN = "123456:TEST-token"
ADDRESS = "TQn9Y2khEsLJW1ChVWFMSMeRDow5KcbLSE"


class Bot:
    """A server with the bot on, its Bot API stand-in, and update makers."""

    def __init__(self, srv, api, http_port):
        self.srv, self.api, self.port = srv, api, http_port
        self.r = srv.client(decode_responses=True)
        self.next_id = 1000

    def post(self, body, secret=SECRET, raw=False, method="POST", path="/telegram/webhook"):
        data = body if raw else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def update(self, kind, obj, update_id=None):
        if update_id is None:
            update_id = self.next_id
            self.next_id += 1
        return {"update_id": update_id, kind: obj}

    def message(self, uid, text, lang="en", update_id=None):
        return self.update("message", {
            "message_id": self.next_id, "date": int(time.time()), "text": text,
            "from": {"id": uid, "is_bot": False, "first_name": "User%d" % uid, "language_code": lang},
            "chat": {"id": uid, "type": "private", "first_name": "User%d" % uid}}, update_id)

    def callback(self, uid, data):
        return self.update("callback_query", {
            "id": "cb%d" % self.next_id, "chat_instance": "42", "data": data,
            "from": {"id": uid, "is_bot": False, "first_name": "User%d" % uid, "language_code": "en"},
            "message": {"message_id": 1, "date": int(time.time()), "chat": {"id": uid, "type": "private"}}})

    def member(self, uid, status):
        return self.update("my_chat_member", {
            "date": int(time.time()), "chat": {"id": uid, "type": "private"},
            "from": {"id": uid, "is_bot": False, "first_name": "User%d" % uid},
            "old_chat_member": {"status": "member", "user": {"id": 1, "is_bot": True, "first_name": "B"}},
            "new_chat_member": {"status": status, "user": {"id": 1, "is_bot": True, "first_name": "B"}}})

    def say(self, uid, text, lang="en"):
        st, body = self.post(self.message(uid, text, lang))
        assert st == 200, body
        return self

    def wait_text(self, uid, needle, timeout=10):
        wait_for(lambda: any(needle in t for t in self.api.texts(uid)), timeout,
                 what="a reply to %d containing %r (got %r)" % (uid, needle, self.api.texts(uid)))

    def wait_calls(self, n, **kw):
        wait_for(lambda: len(self.api.sent(**kw)) >= n, 10, what="%d calls %r" % (n, kw))


@pytest.fixture
def make_bot(make_server):
    apis = []

    def make(**options):
        api = BotApi(token=TOKEN).start()
        apis.append(api)
        port = free_port()
        opts = {"http-port": port, "bot-token": TOKEN, "bot-api-url": api.url, "bot-webhook-secret": SECRET,
                "bot-rate-chat": 100, "bot-rate-global": 1000, "save": ""}
        opts.update(options)
        srv = make_server(**opts)
        return Bot(srv, api, port)

    yield make
    for api in apis:
        api.stop()


def test_webhook_answers(make_bot):
    bot = make_bot(**{"http-max-body": 4096})
    upd = bot.message(7, "/start")
    before = set(bot.r.keys("*"))  # other parts (schedules) have keys of their own
    # wrong, missing secret: 401 and nothing stored
    assert bot.post(upd, secret="wrong")[0] == 401
    assert bot.post(upd, secret=None)[0] == 401
    assert bot.post(upd, secret=SECRET + "x")[0] == 401
    assert set(bot.r.keys("*")) == before
    # not JSON, not an Update: 400
    for body in (b"{", b"not json", b"[1,2]", b"42", b'{"message":{}}', b'{"update_id":"7"}', b'{"update_id":-3}'):
        st, resp = bot.post(body, raw=True)
        assert st == 400, (body, resp)
        assert json.loads(resp)["ok"] is False
    assert set(bot.r.keys("*")) == before
    # too big: 413
    big = bot.message(7, "x" * 5000)
    assert bot.post(big)[0] == 413
    # another method: 405
    assert bot.post(b"", raw=True, method="GET")[0] == 405
    # valid: 200, recorded; the same update_id again: 200, ignored
    st, resp = bot.post(upd)
    assert st == 200 and json.loads(resp)["ok"] is True
    bot.wait_text(7, "Welcome")
    assert bot.post(upd)[0] == 200
    assert bot.post(upd)[0] == 200
    time.sleep(0.3)
    assert len(bot.api.texts(7)) == 1
    assert bot.r.zscore("tg:seen:{tg}", str(upd["update_id"])) is not None
    assert bot.r.hget("user:{u:7}", "id") == "7"
    # an update kind the bot does not serve: acknowledged
    assert bot.post(bot.update("inline_query", {"id": "1", "query": "x", "offset": "",
                                                "from": {"id": 7, "first_name": "A"}}))[0] == 200
    metrics = http.client.HTTPConnection("127.0.0.1", bot.port, timeout=5)
    metrics.request("GET", "/metrics")
    text = metrics.getresponse().read().decode()
    assert 'obentchi_bot_updates_total{kind="message",outcome="duplicate"} 2' in text
    assert 'obentchi_bot_webhook_requests_total{status="401"} 3' in text
    assert 'obentchi_bot_api_calls_total{method="sendMessage",status="2xx"} 1' in text
    assert "obentchi_bot_webhook_duration_seconds_count" in text


def test_start_referrer_arabic_balance(make_bot):
    bot = make_bot()
    bot.say(11, "/start ref_10")
    bot.say(12, "/start", lang="ar")
    bot.wait_text(11, "Welcome, User11")
    bot.wait_text(12, "أهلاً User12")
    u = bot.r.hgetall("user:{u:11}")
    assert u["referrer"] == "10" and u["lang"] == "en" and u["active"] == "1"
    assert bot.r.ttl("user:{u:11}") == -1
    assert bot.r.hget("user:{u:12}", "lang") == "ar"
    s = bot.r.hgetall("session:{u:11}")
    assert s["state"] == "idle"
    assert 86000 < bot.r.ttl("session:{u:11}") <= 86400
    bot.r.execute_command("LEDGER.CREDIT", 11, 1234, "dep-11")
    bot.say(11, "/balance")
    bot.wait_text(11, "Your balance: 12.34 USDT (on hold: 0.00 USDT)")
    bot.say(12, "/balance", lang="ar")
    bot.wait_text(12, "رصيدك: 0.00 USDT")
    bot.say(11, "/history")
    bot.wait_text(11, "deposit  12.34 USDT")


def test_deposit_enqueues_payment(make_bot):
    bot = make_bot()
    bot.say(21, "/start")
    bot.say(21, "/deposit 1.999")
    bot.wait_text(21, "At most 2 decimals")
    bot.say(21, "/deposit 25.50")
    bot.wait_text(21, "Creating your payment link for 25.50 USDT")
    idem = bot.r.hgetall("queue:{q:payment}:idem")
    assert len(idem) == 1
    (invoice, job_id), = idem.items()
    assert invoice.startswith("inv-21-")
    job = json.loads(bot.r.execute_command("JOB.GET", "payment", job_id))
    payload = job["payload"] if isinstance(job["payload"], dict) else json.loads(job["payload"])
    assert payload == {"user_id": 21, "amount": 2550, "invoice_id": invoice}


def test_withdraw_conversation(make_bot):
    bot = make_bot()
    uid = 31
    bot.say(uid, "/start")
    bot.r.execute_command("LEDGER.CREDIT", uid, 10000, "dep-31")
    bot.say(uid, "/withdraw")
    bot.wait_text(uid, "Your balance is 100.00 USDT")
    assert bot.r.hget("session:{u:31}", "state") == "withdraw_amount"
    bot.say(uid, "ten")
    bot.wait_text(uid, "That is not an amount")
    bot.say(uid, "250")
    bot.wait_text(uid, "is too low")
    bot.say(uid, "40.5")
    bot.wait_text(uid, "Withdrawing 40.50 USDT. Send the wallet address.")
    s = bot.r.hgetall("session:{u:31}")
    assert s["state"] == "withdraw_address" and s["amount"] == "4050"
    bot.say(uid, "short")
    bot.wait_text(uid, "26 to 64 characters")
    bot.say(uid, ADDRESS)
    bot.wait_text(uid, "Withdraw 40.50 USDT to %s?" % ADDRESS)
    msg = [c for c in bot.api.sent("sendMessage", uid) if "reply_markup" in c.params][-1]
    buttons = msg.params["reply_markup"]["inline_keyboard"][0]
    assert [b["text"] for b in buttons] == ["Confirm", "Cancel"]
    s = bot.r.hgetall("session:{u:31}")
    assert s["state"] == "withdraw_confirm" and s["address"] == ADDRESS
    assert bot.r.execute_command("LEDGER.BALANCE", uid)[0] in (10000, b"10000", "10000")
    # confirm: answered, held and enqueued with the session's reference
    st, _ = bot.post(bot.callback(uid, buttons[0]["callback_data"]))
    assert st == 200
    bot.wait_text(uid, "Withdrawal of 40.50 USDT requested")
    bot.wait_calls(1, method="answerCallbackQuery")
    assert bot.r.hget("session:{u:31}", "state") == "idle"
    ref = s["ref"]
    assert bot.r.hexists("queue:{q:withdrawal}:idem", ref)
    entries = [json.loads(e) for e in bot.r.lrange("ledger:{u:31}", 0, -1)]
    holds = [e for e in entries if e.get("kind") == "hold"]
    assert len(holds) == 1 and holds[0].get("ref") == ref and int(holds[0]["amount"]) == -4050
    # a second tap: answered, nothing more held
    bot.post(bot.callback(uid, buttons[0]["callback_data"]))
    bot.wait_calls(2, method="answerCallbackQuery")
    time.sleep(0.3)
    entries = [json.loads(e) for e in bot.r.lrange("ledger:{u:31}", 0, -1)]
    assert len([e for e in entries if e.get("kind") == "hold"]) == 1
    assert bot.r.hlen("queue:{q:withdrawal}:idem") == 1
    assert bot.r.execute_command("LEDGER.CHECK", uid) in (1, b"1", "1")


def test_blocked_user(make_bot):
    bot = make_bot()
    bot.say(41, "/start")
    bot.wait_text(41, "Welcome")
    # my_chat_member kicked: inactive
    assert bot.post(bot.member(41, "kicked"))[0] == 200
    wait_for(lambda: bot.r.hget("user:{u:41}", "active") == "0", 5, what="user 41 inactive")
    # a 403 from the Bot API does the same and drops the queued calls
    bot.say(42, "/start")
    bot.wait_text(42, "Welcome")
    bot.api.blocked.add(42)
    bot.api.delay = 0.3  # the next calls queue up behind the first
    for _ in range(3):
        bot.say(42, "/help")
    wait_for(lambda: bot.r.hget("user:{u:42}", "active") == "0", 10, what="user 42 inactive")
    bot.api.delay = 0
    wait_for(lambda: bot.r.llen("outbox:{u:42}") == 0, 5, what="outbox dropped")
    assert len(bot.api.sent("sendMessage", 42, status=403)) == 1
    # 400 chat not found: logged with the method and the chat, the call dropped
    bot.api.unknown_chats.add(43)
    bot.say(43, "/help")
    bot.wait_calls(1, method="sendMessage", chat=43, status=400)
    wait_for(lambda: "chat=43" in bot.srv.log() and "bot api bad request" in bot.srv.log(), 5, what="400 logged")
    wait_for(lambda: bot.r.llen("outbox:{u:43}") == 0, 5, what="outbox of 43 empty")


def test_retry_after_and_5xx(make_bot):
    bot = make_bot()
    bot.api.retry_after = 2
    bot.api.force_429[51] = 1
    bot.say(51, "/start")
    bot.wait_text(51, "Welcome", timeout=10)
    calls = bot.api.sent("sendMessage", 51)
    assert [c.status for c in calls] == [429, 200]
    assert calls[1].time - calls[0].time >= 1.9
    # 5xx: retried with backoff until it goes through; nothing lost meanwhile
    bot.api.fail_5xx = 2
    bot.say(52, "/start")
    bot.wait_text(52, "Welcome", timeout=10)
    assert len(bot.api.sent(chat=52, status=502)) == 2
    wait_for(lambda: bot.r.llen("outbox:{u:52}") == 0, 5, what="outbox of 52 empty")


def window_max(times, width=1.0):
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while t - times[j] >= width:
            j += 1
        best = max(best, i - j + 1)
    return best


def sender_of(chat, n):
    """The sender thread (of bot-api-senders n) that owns chat: as tg_send.c
    splits them."""
    return ((chat * 0x9E3779B97F4A7C15) % 2 ** 64 >> 48) % n


def sender_threads(pid):
    names = []
    for task in Path("/proc/%d/task" % pid).iterdir():
        try:
            names.append((task / "comm").read_text().strip())
        except OSError:
            pass  # a thread that just ended
    return sorted(n for n in names if n.startswith("tg-send-"))


def test_senders_option(make_bot):
    """bot-api-senders: that many sender threads, named; fixed at start."""
    bot = make_bot(**{"bot-api-senders": 3})
    assert sender_threads(bot.srv.pid) == ["tg-send-0", "tg-send-1", "tg-send-2"]
    assert bot.r.config_get("bot-api-senders") == {"bot-api-senders": "3"}
    with pytest.raises(Exception, match="bot-api-senders"):
        bot.r.config_set("bot-api-senders", "2")
    # chats of every sender answered
    chats = [300 + i for i in range(12)]
    assert {sender_of(c, 3) for c in chats} == {0, 1, 2}
    for uid in chats:
        bot.say(uid, "/help")
    for uid in chats:
        bot.wait_text(uid, "/balance")
    # 0 (the default): one per core, shown as the number chosen
    dflt = make_bot()
    n = int(dflt.r.config_get("bot-api-senders")["bot-api-senders"])
    assert n == min(max(os.cpu_count(), 1), 8)
    assert len(sender_threads(dflt.srv.pid)) == n


def test_senders_option_refused(make_server):
    for bad in ("-1", "65", "x"):
        srv = make_server(start=False, save="", **{"bot-api-senders": bad})
        srv.expect_failure = True
        proc = srv.spawn()
        proc.wait(20)
        assert proc.returncode != 0
        assert "bot-api-senders" in srv.output() + srv.log(), (bad, srv.output()[-500:])


def test_retry_after_pauses_every_sender(make_bot):
    """A 429 pauses the bot, not one thread: a chat of another sender waits
    out retry_after too."""
    bot = make_bot(**{"bot-api-senders": 4})
    a = 51
    b = next(c for c in range(52, 200) if sender_of(c, 4) != sender_of(a, 4))
    bot.api.retry_after = 2
    bot.api.force_429[a] = 1
    bot.say(a, "/start")
    bot.wait_calls(1, chat=a, status=429)
    bot.say(b, "/start")
    bot.wait_text(b, "Welcome", timeout=10)
    bot.wait_text(a, "Welcome", timeout=10)
    t429 = bot.api.sent("sendMessage", a)[0].time
    others = [c for c in bot.api.sent() if c.status != 429]
    assert others and min(c.time for c in others) - t429 >= 1.9, (t429, others)


@pytest.mark.slow
@pytest.mark.parametrize("senders", [1, 4])
def test_rate_limits_under_burst(make_bot, senders):
    """Both limits hold whatever the number of sender threads: the global
    bucket is the bot's, a chat stays with one sender."""
    bot = make_bot(**{"bot-rate-chat": 2, "bot-rate-global": 20, "bot-api-senders": senders})
    bot.api.chat_rate = 2
    bot.api.global_rate = 20
    # one chat: 6 updates at once -> replies at most 2/s, in order
    for i in range(6):
        bot.say(61, "/deposit %d" % (i + 1))
    # 40 chats at once -> at most 20 replies in any second
    for uid in range(100, 140):
        bot.say(uid, "/help")
    wait_for(lambda: len(bot.api.sent("sendMessage", status=200)) >= 46, 15, what="46 replies")
    assert bot.api.sent(status=429) == []
    one = bot.api.sent("sendMessage", 61)
    gaps = [b.time - a.time for a, b in zip(one, one[1:])]
    assert min(gaps) >= 0.45, gaps
    assert [c.params["text"].split(" for ")[1] for c in one] == ["%d.00 USDT..." % (i + 1) for i in range(6)]
    all_times = [c.time for c in bot.api.sent("sendMessage")]
    # 20/s, measured where the calls arrive: one more for arrival jitter on a busy machine
    assert window_max(all_times) <= 22


def test_outbox_survives_outage(make_bot):
    bot = make_bot()
    bot.api.fail_5xx = 10 ** 6  # Telegram down
    for uid in (71, 72, 73):
        bot.say(uid, "/start")
    wait_for(lambda: sum(bot.r.llen("outbox:{u:%d}" % u) for u in (71, 72, 73)) == 3, 5, what="3 queued")
    bot.api.fail_5xx = 0
    for uid in (71, 72, 73):
        bot.wait_text(uid, "Welcome", timeout=70)
    # taken off once Telegram's answer is in (just after the stand-in recorded it)
    wait_for(lambda: sum(bot.r.llen("outbox:{u:%d}" % u) for u in (71, 72, 73)) == 0, 5, what="outboxes empty")


def test_replica_answers_503(make_bot):
    bot = make_bot()
    bot.r.execute_command("REPLICAOF", "127.0.0.1", free_port())
    try:
        wait_for(lambda: bot.post(bot.message(81, "/start"))[0] == 503, 5, what="503 on a replica")
    finally:
        bot.r.execute_command("REPLICAOF", "NO", "ONE")
    wait_for(lambda: bot.post(bot.message(81, "/start"))[0] == 200, 5, what="200 on a master")
    bot.wait_text(81, "Welcome")


def test_tools_webhook_and_simulate(make_bot):
    bot = make_bot()
    tools = Path(__file__).resolve().parent.parent.parent / "tools"

    def webhook(*args):
        return subprocess.run([sys.executable, str(tools / "webhook")] + list(args) +
                              ["--api-url", bot.api.url, "--token", TOKEN], capture_output=True, text=True, timeout=30)

    p = webhook("set", "--url", "https://bot.example.com/telegram/webhook", "--secret", SECRET,
                "--max-connections", "80")
    assert p.returncode == 0, p.stdout + p.stderr
    call = bot.api.sent("setWebhook")[-1]
    assert call.params["url"] == "https://bot.example.com/telegram/webhook"
    assert call.params["secret_token"] == SECRET and call.params["max_connections"] == 80
    assert "callback_query" in call.params["allowed_updates"]
    p = webhook("info")
    assert p.returncode == 0 and json.loads(p.stdout)["result"]["url"].endswith("/telegram/webhook")
    assert webhook("set", "--url", "https://x/y", "--secret", "bad secret!").returncode == 2
    assert webhook("delete").returncode == 0
    assert json.loads(webhook("info").stdout)["result"]["url"] == ""
    # a wrong token: Telegram's 401 comes back, exit 1
    p = subprocess.run([sys.executable, str(tools / "webhook"), "info", "--api-url", bot.api.url, "--token", "nope"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and "Unauthorized" in p.stdout
    # simulate: several users and a whole withdraw conversation
    p = subprocess.run([sys.executable, str(tools / "simulate"), "--url",
                        "http://127.0.0.1:%d/telegram/webhook" % bot.port, "--secret", SECRET,
                        "--redis-port", str(bot.srv.port), "--users", "3", "--delay", "0.05"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "-> 200" in p.stdout and "-> 401" not in p.stdout
    uid = 700000000
    bot.wait_text(uid, "Withdrawal of 40.00 USDT requested")
    bot.wait_text(uid + 1, "أهلاً")
    assert bot.r.hget("user:{u:%d}" % (uid + 1), "referrer") == str(uid)
    assert any(json.loads(e)["kind"] == "hold" for e in bot.r.lrange("ledger:{u:%d}" % uid, 0, -1))


def test_webhook_json_depth(make_bot):
    """JSON nested past cJSON's limit (1,000 levels) is refused as invalid
    JSON, and nesting below it is simply not an Update: both 400, the
    server keeps serving, nothing is stored."""
    bot = make_bot()
    before = set(bot.r.keys("*"))
    for depth in (900, 1001, 100000):
        st, body = bot.post(b"[" * depth + b"]" * depth, raw=True)
        assert st == 400, (depth, body)
    for depth in (1001, 20000):  # an Update whose message nests too deep (under http-max-body)
        st, body = bot.post(b'{"update_id":5,"message":' * depth + b"{}" + b"}" * depth, raw=True)
        assert st == 400, (depth, body)
    assert set(bot.r.keys("*")) == before
    assert bot.r.ping()
    bot.say(90, "/start")
    bot.wait_text(90, "Welcome")


@pytest.mark.slow
def test_healthz_names_a_stalled_sender(make_bot):
    """The Bot API sender's thread stuck (here: waiting for chat 91's shard
    lock, which DEBUG SLEEP-LOCKED holds on a RESP worker) turns /healthz to
    503 naming both, and back to 200 after; nothing queued is lost.  The
    withdrawal sweep runs every second meanwhile: it meets the held shard
    and steps around it instead of stopping the bot's loop, which serves
    /healthz."""
    bot = make_bot(**{"shards": 64, "io-threads": 2, "bot-rate-chat": 1, "sched-expire-withdrawals": "every 1 s"})

    def healthz():
        conn = http.client.HTTPConnection("127.0.0.1", bot.port, timeout=10)
        try:
            conn.request("GET", "/healthz")
            resp = conn.getresponse()
            return resp.status, resp.read().decode()
        finally:
            conn.close()

    assert healthz() == (200, "ok\n")
    for _ in range(4):  # one reply now, the others one a second
        bot.say(91, "/help")
    # all four processed (their replies sent or queued): only the sender
    # has business with chat 91's shard from here on
    wait_for(lambda: len(bot.api.sent("sendMessage", 91)) + bot.r.llen("outbox:{u:91}") >= 4, 10,
             what="4 replies sent or queued")
    done, seen = [], []

    def hold_the_lock():
        done.append(bot.srv.client().execute_command("DEBUG", "SLEEP-LOCKED", "stall{u:91}", "9"))

    t = threading.Thread(target=hold_the_lock)
    t0 = time.monotonic()
    t.start()
    try:
        def named():
            seen.append(healthz() + (round(time.monotonic() - t0, 2),))
            return set(seen[-1][1].splitlines()) == {"bot api sender stalled", "RESP workers stalled"}
        # the sleeping RESP worker is stalled too: every reason is named
        wait_for(named, 8.5, interval=0.2, what="/healthz naming the sender and the RESP worker")
        assert seen[-1][0] == 503
        assert seen[0][0] == 200, seen  # a stall is a silence of 5 s
    finally:
        t.join(15)
        print("healthz answers while stalled:", seen)
    assert done == [b"OK"]
    wait_for(lambda: healthz() == (200, "ok\n"), 5, what="/healthz ok again")
    # the stand-in counts a call when it arrives; the sender pops the outbox
    # head when the answer is back, a moment later
    wait_for(lambda: bot.r.llen("outbox:{u:91}") == 0, 10, what="the outbox emptied")
    assert len(bot.api.sent("sendMessage", 91)) == 4  # each reply once
