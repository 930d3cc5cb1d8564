"""A local Telegram Bot API stand-in.

Answers POST (or GET) /bot<token>/<method> as api.telegram.org does:
  {"ok": true, "result": ...}                          on success
  {"ok": false, "error_code": 429, "description": "Too Many Requests: retry after N",
   "parameters": {"retry_after": N}}                    over a rate limit
  {"ok": false, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}
  {"ok": false, "error_code": 400, "description": "Bad Request: chat not found"}
  {"ok": false, "error_code": 401, "description": "Unauthorized"}  wrong token
and records every call (time, method, params, status) for the tests.

Knobs (attributes of BotApi, safe to change while it runs):
  token          the token it accepts (None: any)
  blocked        chat ids that blocked the bot (403)
  unknown_chats  chat ids that do not exist (400)
  chat_rate      messages/s allowed per chat before 429 (0: no limit)
  global_rate    messages/s allowed overall before 429 (0: no limit)
  retry_after    seconds given in a 429
  force_429      {chat_id: n}: the next n sends to that chat get 429
  fail_5xx       the next n calls get 502
  delay          seconds to wait before answering (slow answers)
  record         False: count calls only (benchmarks)

Run alone (for tools/bench-webhook, tools/simulate):
  python3 tests/standins/botapi.py --port 0 [--quiet]
prints "botapi listening on http://127.0.0.1:PORT" and serves GET /_stats
(counts as JSON) and POST /_reset until SIGTERM/SIGINT.
"""
import argparse
import contextlib
import json
import re
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SEND_METHODS = {"sendMessage", "sendPhoto", "sendDocument", "editMessageText", "copyMessage", "forwardMessage"}
PATH_RE = re.compile(r"^/bot([^/]+)/([A-Za-z]+)$")


class Call:
    __slots__ = ("time", "method", "params", "status", "token")

    def __init__(self, t, method, params, status, token):
        self.time, self.method, self.params, self.status, self.token = t, method, params, status, token

    def __repr__(self):
        return "Call(%.3f %s %s %s)" % (self.time, self.method, self.status, self.params)


class BotApi:
    def __init__(self, host="127.0.0.1", port=0, token=None):
        self.token = token
        self.blocked = set()
        self.unknown_chats = set()
        self.chat_rate = 0.0
        self.global_rate = 0.0
        self.retry_after = 1
        self.force_429 = {}
        self.fail_5xx = 0
        self.delay = 0.0
        self.record = True
        self.calls = []
        self.count = 0
        self.by_status = {}
        self.webhook = {"url": "", "has_custom_certificate": False, "pending_update_count": 0}
        self.lock = threading.Lock()
        self._last_chat = {}
        self._window = []
        self._msg_id = 0
        self.in_flight = 0  # requests being answered now
        self.last_activity = time.monotonic()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                with api.busy():
                    self._handle(b"")

            def do_POST(self):
                with api.busy():
                    n = int(self.headers.get("Content-Length") or 0)
                    self._handle(self.rfile.read(n) if n else b"")

            def _handle(self, body):
                if self.path == "/_stats":
                    with api.lock:
                        out = {"count": api.count, "by_status": api.by_status}
                    return self._send(200, out)
                if self.path == "/_reset":
                    api.reset()
                    return self._send(200, {"ok": True})
                m = PATH_RE.match(self.path.split("?")[0])
                if not m:
                    return self._send(404, {"ok": False, "error_code": 404, "description": "Not Found"})
                token, method = m.group(1), m.group(2)
                try:
                    params = json.loads(body) if body else {}
                    if not isinstance(params, dict):
                        raise ValueError
                except ValueError:
                    return self._send(400, {"ok": False, "error_code": 400,
                                            "description": "Bad Request: invalid JSON"})
                if api.delay:
                    time.sleep(api.delay)
                status, out = api.answer(token, method, params)
                self._send(status, out)

            def _send(self, status, obj):
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = "http://%s:%d" % (host, self.port)
        self._thread = None

    # ---- behaviour ----------------------------------------------------------
    def reset(self):
        with self.lock:
            self.calls = []
            self.count = 0
            self.by_status = {}
            self._last_chat = {}
            self._window = []

    def _err(self, code, desc, retry=None):
        out = {"ok": False, "error_code": code, "description": desc}
        if retry is not None:
            out["parameters"] = {"retry_after": retry}
        return code, out

    def answer(self, token, method, params):
        now = time.monotonic()
        chat = params.get("chat_id")
        try:
            chat = int(chat) if chat is not None else None
        except (TypeError, ValueError):
            pass
        with self.lock:
            status, out = self._decide(token, method, params, chat, now)
            self.count += 1
            self.by_status[str(status)] = self.by_status.get(str(status), 0) + 1
            if self.record:
                self.calls.append(Call(time.time(), method, params, status, token))
        return status, out

    def _decide(self, token, method, params, chat, now):
        if self.token is not None and token != self.token:
            return self._err(401, "Unauthorized")
        if self.fail_5xx > 0:
            self.fail_5xx -= 1
            return self._err(502, "Bad Gateway")
        if method in ("setWebhook", "deleteWebhook", "getWebhookInfo", "getMe"):
            return 200, {"ok": True, "result": self._webhook_call(method, params)}
        if method == "answerCallbackQuery":
            if not params.get("callback_query_id"):
                return self._err(400, "Bad Request: query is too old and response timeout expired or query ID is invalid")
            return 200, {"ok": True, "result": True}
        if chat in self.blocked:
            return self._err(403, "Forbidden: bot was blocked by the user")
        if chat in self.unknown_chats or chat is None:
            return self._err(400, "Bad Request: chat not found")
        if method == "sendMessage" and not params.get("text"):
            return self._err(400, "Bad Request: message text is empty")
        if method in SEND_METHODS:
            if self.force_429.get(chat, 0) > 0:
                self.force_429[chat] -= 1
                return self._err(429, "Too Many Requests: retry after %d" % self.retry_after, self.retry_after)
            if self.chat_rate:
                last = self._last_chat.get(chat)
                if last is not None and now - last < 1.0 / self.chat_rate * 0.9:
                    return self._err(429, "Too Many Requests: retry after %d" % self.retry_after, self.retry_after)
            if self.global_rate:
                self._window = [t for t in self._window if now - t < 1.0]
                if len(self._window) >= self.global_rate * 1.1:
                    return self._err(429, "Too Many Requests: retry after %d" % self.retry_after, self.retry_after)
                self._window.append(now)
            self._last_chat[chat] = now
        self._msg_id += 1
        return 200, {"ok": True, "result": {
            "message_id": self._msg_id, "date": int(time.time()),
            "chat": {"id": chat, "type": "private"},
            "from": {"id": 1, "is_bot": True, "first_name": "Obentchi", "username": "obentchi_bot"},
            "text": params.get("text", "")}}

    def _webhook_call(self, method, params):
        if method == "getMe":
            return {"id": 1, "is_bot": True, "first_name": "Obentchi", "username": "obentchi_bot"}
        if method == "setWebhook":
            self.webhook = {"url": params.get("url", ""), "has_custom_certificate": False,
                            "pending_update_count": 0,
                            "max_connections": params.get("max_connections", 40),
                            "allowed_updates": params.get("allowed_updates", []),
                            "secret_token_set": bool(params.get("secret_token"))}
            return True
        if method == "deleteWebhook":
            self.webhook = {"url": "", "has_custom_certificate": False, "pending_update_count": 0}
            return True
        return {k: v for k, v in self.webhook.items() if k != "secret_token_set"}

    # ---- for tests ------------------------------------------------------------
    @contextlib.contextmanager
    def busy(self):
        with self.lock:
            self.in_flight += 1
            self.last_activity = time.monotonic()
        try:
            yield
        finally:
            with self.lock:
                self.in_flight -= 1
                self.last_activity = time.monotonic()

    def quiesce(self, quiet=0.3, timeout=10.0):
        """Waits until no request has been in flight for `quiet` seconds, so
        that what a killed client had already written is answered and
        recorded before a test counts; False if that took over `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                idle = self.in_flight == 0 and time.monotonic() - self.last_activity >= quiet
            if idle:
                return True
            time.sleep(0.02)
        return False

    def sent(self, method=None, chat=None, status=None):
        with self.lock:
            return [c for c in self.calls
                    if (method is None or c.method == method)
                    and (chat is None or c.params.get("chat_id") == chat)
                    and (status is None or c.status == status)]

    def texts(self, chat):
        return [c.params.get("text", "") for c in self.sent("sendMessage", chat, 200)]

    def start(self):
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def main():
    ap = argparse.ArgumentParser(description="Telegram Bot API stand-in")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--token", default=None)
    ap.add_argument("--chat-rate", type=float, default=0)
    ap.add_argument("--global-rate", type=float, default=0)
    ap.add_argument("--quiet", action="store_true", help="count calls, keep no record")
    args = ap.parse_args()
    api = BotApi(args.host, args.port, args.token)
    api.chat_rate, api.global_rate = args.chat_rate, args.global_rate
    api.record = not args.quiet
    print("botapi listening on %s" % api.url, flush=True)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    try:
        api.server.serve_forever(poll_interval=0.1)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        api.server.server_close()


if __name__ == "__main__":
    main()
