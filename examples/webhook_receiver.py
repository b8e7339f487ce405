#!/usr/bin/env python3
"""A webhook receiver for paycore's events, to copy and adapt (python3 standard library only).

paycore POSTs each event as JSON with the header

    Paycore-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>

(docs/webhooks.md). This receiver:
  * verifies the signature over the raw body bytes (before parsing any JSON), comparing in
    constant time, accepting any of several v1= values and ignoring schemes it does not know;
  * refuses a timestamp more than 300 s from its clock (a replayed old request);
  * answers 2xx only for a valid request: anything else makes paycore retry, so a request that
    can never be valid gets 400;
  * dedupes by event id: delivery is at least once, so the same event may arrive again (after a
    timeout, a restart, a redeliver); it is acknowledged again and not processed twice.

Run:  python3 webhook_receiver.py --secret whsec_... [--host 127.0.0.1] [--port 8000]
It prints "listening on HOST:PORT" once ready, then one line per request.
"""

import argparse
import collections
import hashlib
import hmac
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOLERANCE_S = 300
BODY_BYTES_MAX = 1 << 20  # paycore's events are far smaller
HEADER_BYTES_MAX = 1024
SEEN_IDS_MAX = 100_000  # in production, keep processed ids in your database instead


def verify_signature(header, secret, body, now_s, tolerance_s=TOLERANCE_S):
    """Returns None when valid, else the reason (a short string)."""
    if not header or len(header) > HEADER_BYTES_MAX:
        return "missing or oversized signature header"
    timestamp = None
    signatures = []
    for element in header.split(","):
        key, sep, value = element.partition("=")
        if not sep:
            return "malformed signature header"
        if key == "t":
            if timestamp is not None or not value.isdigit():
                return "malformed timestamp"
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value)
        # other schemes (v0, a future v2) are ignored
    if timestamp is None:
        return "no timestamp"
    if not signatures:
        return "no v1 signature"
    signed = str(timestamp).encode() + b"." + body
    expected = hmac.new(secret, signed, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, given) for given in signatures):
        return "signature mismatch"
    if abs(now_s - timestamp) > tolerance_s:
        return "timestamp outside the tolerance"
    return None


class SeenIds:
    """Event ids already processed: bounded, oldest forgotten first."""

    def __init__(self, capacity):
        self._ids = collections.OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def add(self, event_id):
        """True when the id is new."""
        with self._lock:
            if event_id in self._ids:
                return False
            self._ids[event_id] = True
            if len(self._ids) > self._capacity:
                self._ids.popitem(last=False)
            return True


def handle_event(event):
    """Your business logic. Keep it quick (paycore waits at most 10 s): queue heavy work."""
    print(f"processed {event['id']} {event.get('type', '')}", flush=True)


def make_handler(secret, seen):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = self.headers.get("Content-Length")
            if length is None or not length.isdigit() or int(length) > BODY_BYTES_MAX:
                return self.answer(400, "bad length")
            body = self.rfile.read(int(length))  # the raw bytes: they are what was signed
            reason = verify_signature(self.headers.get("Paycore-Signature"), secret, body,
                                      int(time.time()))
            if reason is not None:
                print(f"refused {reason}", flush=True)
                return self.answer(400, reason)
            try:
                event = json.loads(body)
                event_id = event["id"]
            except (ValueError, KeyError, TypeError):
                return self.answer(400, "not an event")
            if not seen.add(event_id):
                print(f"duplicate {event_id}", flush=True)
                return self.answer(200, "duplicate")
            handle_event(event)
            return self.answer(200, "ok")

        def answer(self, status, text):
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format, *args):  # one line per request is printed above
            pass

    return Handler


def main():
    parser = argparse.ArgumentParser(description="paycore webhook receiver")
    parser.add_argument("--secret", required=True, help="the endpoint's secret")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0: any free port")
    args = parser.parse_args()
    server = ThreadingHTTPServer((args.host, args.port),
                                 make_handler(args.secret.encode(), SeenIds(SEEN_IDS_MAX)))
    host, port = server.server_address[:2]
    print(f"listening on {host}:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
