"""Payout and payment provider stand-ins (issue 7's generic provider API),
failing on demand.  Used by tests/integration/test_money*.py and
tools/bench-queue; also runnable by hand:

    /usr/bin/python3 tests/standins/providers.py --port 9100 --key secret

API (what obentchi's pay.c speaks):
  POST /payouts        Authorization: Bearer <key>, Idempotency-Key: <k>,
                       {"id","user_id","amount","currency","address"}
                       -> 201 {"id","status":"pending"|"completed"|"failed","reason"}
                       -> 409 with the existing payout for a repeated key
                       -> 422 {"error"} refusal (amount over refuse_over, or
                          address in refuse_addresses)
  GET  /payouts/<id>   -> 200 the payout, or 404
  POST /invoices       {"id","user_id","amount","currency"} -> 201 {"id","pay_url"}

Faults (set with the Python object's fields, or POST /_control {...}):
  fail_before  n: the next n payout POSTs answer 500 and record nothing
  fail_after   n: the next n payout POSTs record the payout, then answer 500
  hang_after   n: the next n payout POSTs record the payout, then answer only
                  after hang_s seconds (the client times out: unknown outcome)
  pending      n: new payouts start "pending" and complete after n GETs
  refuse_over  amount: payouts above it are refused (422)
  fail_status  True: new payouts are created with status "failed"
  delay_s      seconds every payout POST waits before answering
  invoice_fail n: the next n invoice POSTs answer 500

Counting: `created` holds one payout per idempotency key (the provider never
makes two); `posts` counts POSTs per key, `conflicts` the 409 answers; GET
/_stats returns them as JSON.
"""
import argparse
import hashlib
import hmac
import json
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def sign(body, secret):
    """Hex HMAC-SHA256 of the raw body, as X-Signature carries it."""
    if isinstance(body, str):
        body = body.encode()
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def send_callback(url, secret, invoice_id, payment_id, amount, status="paid", signature=None, timeout=5):
    """Posts a payment callback to url (obentchi's /payments/callback);
    returns (status, body)."""
    body = json.dumps({"invoice_id": invoice_id, "payment_id": payment_id, "status": status,
                       "amount": amount}).encode()
    req = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "X-Signature": signature or sign(body, secret)})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class Providers:
    def __init__(self, host="127.0.0.1", port=0, key="test-key", payment_key=None):
        self.key = key
        self.payment_key = payment_key or key
        self.lock = threading.Lock()
        self.created = {}     # key -> payout object
        self.posts = {}       # key -> POSTs seen
        self.gets = 0
        self.conflicts = 0
        self.unauthorized = 0
        self.invoices = {}    # id -> invoice
        self.invoice_posts = 0
        self.fail_before = 0
        self.fail_after = 0
        self.hang_after = 0
        self.hang_s = 3.0
        self.pending = 0
        self.pending_gets = {}
        self.refuse_over = None
        self.fail_status = False
        self.delay_s = 0.0
        self.invoice_fail = 0
        self.log = []         # (time, method, path, status)
        self.keep_log = True
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _send(self, status, obj):
                data = json.dumps(obj).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass
                if outer.keep_log:
                    with outer.lock:
                        outer.log.append((time.time(), self.command, self.path, status))

            def _body(self):
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def _auth(self, key):
                if self.headers.get("Authorization") != "Bearer " + key:
                    with outer.lock:
                        outer.unauthorized += 1
                    self._send(401, {"error": "unauthorized"})
                    return False
                return True

            def do_GET(self):
                if self.path == "/_stats":
                    return self._send(200, outer.stats())
                if self.path.startswith("/payouts/"):
                    if not self._auth(outer.key):
                        return
                    pid = self.path[len("/payouts/"):]
                    with outer.lock:
                        outer.gets += 1
                        p = outer.created.get(pid)
                        if p and p["status"] == "pending":
                            left = outer.pending_gets.get(pid, 0) - 1
                            outer.pending_gets[pid] = left
                            if left <= 0:
                                p["status"] = "completed"
                        p = dict(p) if p else None
                    return self._send(200, p) if p else self._send(404, {"error": "no such payout"})
                self._send(404, {"error": "not found"})

            def do_POST(self):
                body = self._body()
                if self.path == "/_control":
                    for k, v in json.loads(body or b"{}").items():
                        setattr(outer, k, v)
                    return self._send(200, {"ok": True})
                if self.path == "/payouts":
                    return self._payout(body)
                if self.path == "/invoices":
                    return self._invoice(body)
                self._send(404, {"error": "not found"})

            def _payout(self, body):
                if not self._auth(outer.key):
                    return
                key = self.headers.get("Idempotency-Key") or ""
                try:
                    req = json.loads(body)
                    assert key and req["id"] == key and isinstance(req["amount"], int) and req["amount"] > 0
                    assert isinstance(req["user_id"], int) and req["address"] and req["currency"]
                except Exception:
                    return self._send(400, {"error": "bad request: id (= Idempotency-Key), user_id, amount, "
                                                     "currency, address"})
                if outer.delay_s:
                    time.sleep(outer.delay_s)
                with outer.lock:
                    outer.posts[key] = outer.posts.get(key, 0) + 1
                    if outer.fail_before > 0:
                        outer.fail_before -= 1
                        fault = "before"
                    elif key in outer.created:
                        outer.conflicts += 1
                        fault = "conflict"
                        existing = dict(outer.created[key])
                    else:
                        fault = None
                        if outer.refuse_over is not None and req["amount"] > outer.refuse_over:
                            fault = "refuse"
                        else:
                            status = "failed" if outer.fail_status else "pending" if outer.pending else "completed"
                            p = {"id": key, "status": status, "amount": req["amount"], "user_id": req["user_id"],
                                 "address": req["address"], "currency": req["currency"]}
                            if status == "failed":
                                p["reason"] = "address rejected"
                            if status == "pending":
                                outer.pending_gets[key] = outer.pending
                            outer.created[key] = p
                            existing = dict(p)
                            if outer.fail_after > 0:
                                outer.fail_after -= 1
                                fault = "after"
                            elif outer.hang_after > 0:
                                outer.hang_after -= 1
                                fault = "hang"
                if fault == "before" or fault == "after":
                    return self._send(500, {"error": "internal error"})
                if fault == "hang":
                    time.sleep(outer.hang_s)
                    return self._send(201, existing)
                if fault == "refuse":
                    return self._send(422, {"error": "amount over the limit"})
                if fault == "conflict":
                    return self._send(409, existing)
                self._send(201, existing)

            def _invoice(self, body):
                if not self._auth(outer.payment_key):
                    return
                try:
                    req = json.loads(body)
                    assert req["id"] and isinstance(req["amount"], int) and isinstance(req["user_id"], int)
                except Exception:
                    return self._send(400, {"error": "bad request"})
                with outer.lock:
                    outer.invoice_posts += 1
                    if outer.invoice_fail > 0:
                        outer.invoice_fail -= 1
                        fail = True
                    else:
                        fail = False
                        inv = outer.invoices.setdefault(req["id"], {
                            "id": req["id"], "user_id": req["user_id"], "amount": req["amount"],
                            "pay_url": "https://pay.example/i/%s" % req["id"]})
                if fail:
                    return self._send(500, {"error": "internal error"})
                self._send(201, inv)

        class Server(ThreadingHTTPServer):
            request_queue_size = 1024  # 100 pool slots connect at once: the default 5 refuses them

        self.httpd = Server((host, port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = "http://%s:%d" % (host, self.port)
        self.thread = None

    def stats(self):
        with self.lock:
            return {"created": len(self.created), "posts": dict(self.posts), "gets": self.gets,
                    "conflicts": self.conflicts, "unauthorized": self.unauthorized,
                    "invoices": len(self.invoices), "invoice_posts": self.invoice_posts,
                    "payouts": {k: dict(v) for k, v in self.created.items()}}

    def start(self):
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--key", default="test-key")
    a = ap.parse_args()
    p = Providers(a.host, a.port, a.key)
    p.keep_log = False
    print("providers listening on %s" % p.url, flush=True)
    try:
        p.httpd.serve_forever(poll_interval=0.05)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
