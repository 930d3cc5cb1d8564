"""The bot follows the master role (issue 5): on a replica it stands by (the
webhook answers 503, /readyz says why, nothing is sent from the outbox it
holds, no job is worked), and once the replica is promoted it starts: the
answers the old master promised but could not send go out from the new one,
and new updates are processed there.  The old master is killed with SIGKILL,
as in a real failover; the promotion is REPLICAOF NO ONE (what Sentinel
sends; test_sentinel.py covers Sentinel itself)."""
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from conftest import free_port, wait_for  # noqa: E402
from standins.botapi import BotApi  # noqa: E402
from test_bot import SECRET, TOKEN, Bot  # noqa: E402

pytestmark = pytest.mark.obentchi_only


def bot_options(api):
    return {"http-port": free_port(), "bot-token": TOKEN, "bot-api-url": api.url, "bot-webhook-secret": SECRET,
            "bot-rate-chat": 100, "bot-rate-global": 1000, "save": ""}


def test_bot_starts_only_on_the_promoted_node(make_server):
    api = BotApi(token=TOKEN).start()
    try:
        mopts = bot_options(api)
        master = make_server(**mopts)
        m = Bot(master, api, mopts["http-port"])
        ropts = bot_options(api)
        ropts["replicaof"] = ["127.0.0.1", str(master.port)]
        replica = make_server(**ropts)
        r = Bot(replica, api, ropts["http-port"])
        r.next_id = 50000  # update ids are Telegram's, one sequence for the bot: the master used the low ones
        wait_for(lambda: replica.client().info("replication")["master_link_status"] == "up", 15,
                 what="replica link up")

        # the master answers; the replica stands by
        m.say(501, "/start")
        m.wait_text(501, "Welcome")
        st, body = r.post(r.message(502, "/start"))
        assert st == 503, body
        st, _, body = replica.http("GET", "/readyz")
        assert st == 503 and b"replica of 127.0.0.1:%d" % master.port in body, body

        # Telegram goes down: the master's answers wait in its outbox, which
        # replicates; the replica holds them but must not send them
        api.fail_5xx = 10 ** 6
        for uid in (511, 512, 513):
            m.say(uid, "/start")
        wait_for(lambda: sum(r.r.llen("outbox:{u:%d}" % u) for u in (511, 512, 513)) == 3, 10,
                 what="the three pending answers on the replica")
        master.proc.kill()  # SIGKILL
        master.proc.wait(10)
        master.expect_failure = True
        # what the master wrote before it died may still be read and answered
        # by the stand-in: count only once it has gone quiet
        assert api.quiesce(), "the stand-in never went quiet"
        api.fail_5xx = 0
        sent_before = len(api.sent("sendMessage"))
        # still a replica (its master is gone): nothing leaves its outbox
        wait_for(lambda: replica.client().info("replication")["master_link_status"] == "down", 10,
                 what="link down")
        time.sleep(2)
        assert len(api.sent("sendMessage")) == sent_before, "a replica sent from its outbox"
        assert sum(r.r.llen("outbox:{u:%d}" % u) for u in (511, 512, 513)) == 3

        # promotion: the bot starts, sends what was promised, takes updates
        replica.client().execute_command("REPLICAOF", "NO", "ONE")
        wait_for(lambda: replica.http("GET", "/readyz")[0] == 200, 10, what="readyz 200 after promotion")
        for uid in (511, 512, 513):
            r.wait_text(uid, "Welcome", timeout=20)
        wait_for(lambda: sum(r.r.llen("outbox:{u:%d}" % u) for u in (511, 512, 513)) == 0, 10,
                 what="outboxes drained")
        for uid in (511, 512, 513):
            assert len([t for t in api.texts(uid) if "Welcome" in t]) == 1, api.texts(uid)
        r.say(502, "/start")
        r.wait_text(502, "Welcome")
    finally:
        api.stop()
