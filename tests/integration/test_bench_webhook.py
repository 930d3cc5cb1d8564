"""tools/bench-webhook, the tool behind issue 6's figures, in a tiny run with
each fast Bot API stand-in; and tools/botapi-standin's answers on their own."""
import json
import re
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import IS_PEER, OBENTCHI_SERVER, REPO, free_port, stop_process, wait_for


@pytest.mark.parametrize("api", ["c", "nginx"])
def test_bench_webhook_tiny_run(api):
    """Every update wrk posted is accepted, processed and answered: the
    stand-in's count of replies equals the accepted updates, the outbox ends
    empty, and the cost lines are printed."""
    if IS_PEER:
        pytest.skip("the bot is obentchi's")
    argv = ["/usr/bin/python3", str(REPO / "tools" / "bench-webhook"), "--server", OBENTCHI_SERVER, "--duration", "1",
            "--connections", "8", "--threads", "1", "--chats", "50", "--api", api, "--drain-timeout", "60"]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, (p.stdout + p.stderr)[-3000:]
    out = p.stdout
    m = re.search(r"^updates/s +(\d+) +\((\d+) accepted, (\d+) non-2xx, (\d+) socket errors\)", out, re.M)
    assert m, out
    accepted = int(m.group(2))
    assert accepted > 0 and m.group(3) == "0" and m.group(4) == "0", out
    # wrk counts the answers it read: the posts still in flight when it
    # stopped (at most one per connection) were processed too
    processed = re.search(r"^processed +(\d+) of %d " % accepted, out, re.M)
    assert processed and accepted <= int(processed.group(1)) <= accepted + 8, out
    replies = re.search(r"^replies/s +\d+ +\((\d+) replies in", out, re.M)
    assert replies and int(replies.group(1)) == int(processed.group(1)), out  # /help, /balance, /start: one each
    assert re.search(r"^outbox left +0$", out, re.M), out
    assert re.search(r"^server cpu +[\d.]+ us/update", out, re.M), out
    assert re.search(r"stand-in [\d.]+ us/call", out), out


def call(url, path, data=None):
    req = urllib.request.Request(url + path, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as res:
            return res.status, json.loads(res.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_botapi_standin_answers():
    """The Bot API's shapes: a Message for sendMessage, true for
    answerCallbackQuery, 404 for another method, 401 for another token;
    /_stats counts only the calls answered 200."""
    exe = Path(OBENTCHI_SERVER).resolve().parent / "botapi-standin"
    if IS_PEER or not exe.exists():
        pytest.skip("obentchi's build only")
    port = free_port()
    proc = subprocess.Popen([str(exe), "--port", str(port), "--token", "7:tok"], stdout=subprocess.PIPE, text=True)
    try:
        assert "listening on 127.0.0.1:%d" % port in proc.stdout.readline()
        url = "http://127.0.0.1:%d" % port
        body = json.dumps({"chat_id": 5, "text": "hi"}).encode()
        st, j = call(url, "/bot7:tok/sendMessage", body)
        assert st == 200 and j["ok"] is True and isinstance(j["result"]["message_id"], int), j
        assert j["result"]["chat"]["type"] == "private"
        st, j = call(url, "/bot7:tok/answerCallbackQuery", b'{"callback_query_id":"1"}')
        assert (st, j) == (200, {"ok": True, "result": True})
        st, j = call(url, "/bot7:tok/getMe", b"{}")
        assert st == 404 and j["ok"] is False and j["error_code"] == 404, j
        st, j = call(url, "/bot8:bad/sendMessage", body)
        assert st == 401 and j["error_code"] == 401, j
        st, j = call(url, "/_stats")
        assert (st, j) == (200, {"count": 2, "not_found": 1, "unauthorized": 1})
    finally:
        stop_process(proc)
    assert proc.returncode == 0
