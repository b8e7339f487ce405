#!/usr/bin/env python3
"""A paycore client with the Python standard library only: signs requests (HMAC-SHA256) and
calls every endpoint of the API once, printing each answer.

    paycore serve &                      # creates ./paycore-data/keys.json on first start
    python3 examples/client.py --url http://127.0.0.1:8080 --keys paycore-data/keys.json

Channel notifications are RSA-signed; the standard library has no RSA, so they are signed by
running `openssl dgst -sha256 -sign` on the channel's private key (paycore-data/private/) when
the openssl command is available, and skipped otherwise.
"""
import argparse
import base64
import hashlib
import hmac
import http.client
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.parse


class Paycore:
    def __init__(self, url, keys_path):
        parsed = urllib.parse.urlparse(url)
        self.host, self.port = parsed.hostname, parsed.port or 80
        with open(keys_path, encoding="utf-8") as f:
            self.keys = json.load(f)
        self.keys_dir = os.path.dirname(os.path.abspath(keys_path))
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=10)

    def secret_of(self, principal):
        if principal == self.keys["operator"]["id"]:
            return self.keys["operator"]["secret"]
        return self.keys["merchants"][principal]

    def call(self, principal, method, path, body=None):
        """A signed request; returns (status, headers, parsed JSON body)."""
        data = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        timestamp = str(int(time.time()))
        nonce = secrets.token_hex(12)
        message = b"\n".join([method.encode(), path.encode(), timestamp.encode(), nonce.encode(), data])
        signature = hmac.new(self.secret_of(principal).encode(), message, hashlib.sha256).hexdigest()
        headers = {
            "X-Merchant-Id": principal,
            "X-Timestamp": timestamp,
            "X-Nonce": nonce,
            "X-Signature": signature,
            "X-Request-Id": "example-" + nonce[:8],
        }
        if body is not None:
            headers["Content-Type"] = "application/json"
        return self._send(method, path, data if body is not None else None, headers)

    def unsigned(self, method, path):
        return self._send(method, path, None, {})

    def notify(self, channel, body):
        """A channel notification signed with the channel's private key (needs openssl)."""
        key = os.path.join(self.keys_dir, "private", channel + ".private.pem")
        if not shutil.which("openssl") or not os.path.exists(key):
            return None
        data = json.dumps(body, separators=(",", ":")).encode()
        timestamp = str(int(time.time()))
        nonce = secrets.token_hex(12)
        signed = timestamp.encode() + b"\n" + nonce.encode() + b"\n" + data + b"\n"
        raw = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=signed,
                             capture_output=True, check=True).stdout
        headers = {
            "X-Channel-Timestamp": timestamp,
            "X-Channel-Nonce": nonce,
            "X-Channel-Signature": base64.b64encode(raw).decode(),
            "Content-Type": "application/json",
        }
        return self._send("POST", "/v1/notify/" + channel, data, headers)

    def _send(self, method, path, data, headers):
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=data, headers=headers)
                response = self.conn.getresponse()
                payload = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # the server closed an idle keep-alive connection: reconnect once
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
                if attempt == 1:
                    raise
        text = payload.decode()
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = text
        return response.status, dict(response.getheaders()), parsed


def show(label, result):
    if result is None:
        print(f"{label}: skipped (no openssl or no channel private key)")
        return
    status, headers, body = result
    replayed = " (Idempotent-Replayed)" if headers.get("Idempotent-Replayed") == "true" else ""
    text = body if isinstance(body, str) else json.dumps(body)
    print(f"{label}: {status}{replayed} {text[:300]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--keys", default="paycore-data/keys.json")
    args = parser.parse_args()
    api = Paycore(args.url, args.keys)
    op = api.keys["operator"]["id"]
    merchant = sorted(api.keys["merchants"])[0]
    channel = sorted(api.keys.get("channels", {}) or {"alipay": None})[0]
    run = secrets.token_hex(4)  # fresh ids for every run of the example

    show("GET /healthz", api.unsigned("GET", "/healthz"))
    show("GET /readyz", api.unsigned("GET", "/readyz"))
    status, _, text = api.unsigned("GET", "/metrics")
    print(f"GET /metrics: {status} ({len(text.splitlines())} lines)")

    show("open merchant account", api.call(op, "POST", "/v1/accounts", {
        "request_id": f"acc-m-{run}", "account_id": merchant, "currency": "CNY", "kind": "merchant"}))
    payer = f"alice-{run}"
    show("open customer account", api.call(op, "POST", "/v1/accounts", {
        "request_id": f"acc-c-{run}", "account_id": payer, "currency": "CNY", "kind": "customer"}))
    show("deposit", api.call(op, "POST", f"/v1/accounts/{payer}/deposits", {
        "request_id": f"dep-{run}", "amount": 100000, "currency": "CNY"}))
    show("read account (operator)", api.call(op, "GET", f"/v1/accounts/{payer}"))
    show("read own account (merchant)", api.call(merchant, "GET", f"/v1/accounts/{merchant}"))

    # A merchant may debit a customer's balance only under the customer's mandate for it,
    # which the operator records (API.md "Mandates"); without one the payment is 404.
    mandate = f"md-{run}"
    show("pay from balance without a mandate", api.call(merchant, "POST", "/v1/payments", {
        "request_id": f"nomd-{run}", "order_id": f"nomd-{run}", "amount": 1, "currency": "CNY",
        "channel": "balance", "payer_account_id": payer}))
    show("create mandate", api.call(op, "POST", "/v1/mandates", {
        "request_id": f"md-{run}", "mandate_id": mandate, "payer_account_id": payer,
        "merchant_id": merchant, "amount_max": 50000, "expires_at": None, "single_use": False}))
    show("read mandate (merchant)", api.call(merchant, "GET", f"/v1/mandates/{mandate}"))

    order = f"o-{run}"
    pay = {"request_id": f"pay-{run}", "order_id": order, "amount": 1234, "currency": "CNY",
           "channel": "balance", "payer_account_id": payer}
    show("pay from balance", api.call(merchant, "POST", "/v1/payments", pay))
    show("same request again", api.call(merchant, "POST", "/v1/payments", pay))
    show("same request_id, other body", api.call(merchant, "POST", "/v1/payments", dict(pay, amount=1)))
    show("read payment", api.call(merchant, "GET", f"/v1/payments/{order}"))
    show("ship", api.call(merchant, "POST", f"/v1/payments/{order}/ship", {"request_id": f"ship-{run}"}))
    show("complete", api.call(merchant, "POST", f"/v1/payments/{order}/complete", {"request_id": f"done-{run}"}))
    show("partial refund", api.call(merchant, "POST", f"/v1/payments/{order}/refunds",
                                    {"request_id": f"ref-{run}", "amount": 234}))

    pending = f"p-{run}"
    show("pay through a channel", api.call(merchant, "POST", "/v1/payments", {
        "request_id": f"ext-{run}", "order_id": pending, "amount": 500, "currency": "CNY", "channel": channel}))
    show("channel notification", api.notify(channel, {
        "channel_txn_id": f"txn-{run}", "merchant_id": merchant, "order_id": pending, "amount": 500,
        "currency": "CNY", "status": "SUCCESS", "paid_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}))
    show("read settled payment", api.call(merchant, "GET", f"/v1/payments/{pending}"))

    cancelled = f"c-{run}"
    api.call(merchant, "POST", "/v1/payments", {"request_id": f"ext2-{run}", "order_id": cancelled,
                                                "amount": 10, "currency": "CNY", "channel": channel})
    show("cancel", api.call(merchant, "POST", f"/v1/payments/{cancelled}/cancel", {"request_id": f"cxl-{run}"}))

    batch = {"payments": [
        {"request_id": f"b{i}-{run}", "order_id": f"b{i}-{run}", "amount": 100, "currency": "CNY",
         "channel": "balance", "payer_account_id": payer} for i in range(3)]}
    show("batch", api.call(merchant, "POST", "/v1/payments/batch", batch))
    show("revoke mandate", api.call(op, "POST", f"/v1/mandates/{mandate}/revoke", {"request_id": f"rvk-{run}"}))
    show("pay under a revoked mandate", api.call(merchant, "POST", "/v1/payments", dict(
        pay, request_id=f"late-{run}", order_id=f"late-{run}", amount=1)))
    show("snapshot", api.call(op, "POST", "/v1/admin/snapshot"))
    show("unknown route", api.call(merchant, "GET", "/v1/nothing"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
