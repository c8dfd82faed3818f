"""The webhook sender against a tiny local receiver: signature, payload, retries, filters."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

SECRET = "whsec-test-7d1f"


class Receiver:
    """Records each POST; answers with the queued status codes, then 200."""

    def __init__(self, statuses=()):
        self.statuses = list(statuses)
        self.received = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.received.append((dict(self.headers), body))
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/appcues"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def wait_for(self, count, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.01)
        raise AssertionError(f"expected {count} webhook posts, got {len(self.received)}")

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(statuses=()):
        made.append(Receiver(statuses))
        return made[-1]

    yield make
    for r in made:
        r.close()


def _configure(ac, url, **extra):
    body = {"url": url, "secret": SECRET, "backoff_seconds": 0.01, **extra}
    snapshot = ac.control("POST", "webhooks", json=body).json()
    assert snapshot["config"]["url"] == url
    assert SECRET not in json.dumps(snapshot)  # the secret is never shown back


def _wait_deliveries(ac, count):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        deliveries = ac.control("GET", "webhooks").json()["deliveries"]
        if len(deliveries) >= count:
            return deliveries
        time.sleep(0.01)
    raise AssertionError("deliveries were not recorded")


def test_signed_delivery_of_every_new_event(ac, receiver):
    ac.api.post(ac.url("users/u0/events"), json={"name": "Before", "timestamp": 1767225600000})
    hook = receiver()
    _configure(ac, hook.url)
    tracked = {
        "name": "appcues:nps_score",
        "timestamp": "2026-01-01T10:00:00Z",
        "attributes": {"flowId": "f1", "score": 9},
        "group_id": "acct_000003",
        "context": {"url": "https://app.example.com/home"},
    }
    assert ac.api.post(ac.url("users/u1/events"), json=tracked).status_code == 200
    ac.import_events([{"user_id": "u2", "name": "Imported", "timestamp": "2026-01-01T11:00:00Z"}])
    posts = hook.wait_for(2)
    for headers, body in posts:
        stamp = headers["X-Apc-Timestamp"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamp)  # ISO 8601 UTC
        assert datetime.fromisoformat(stamp.replace("Z", "+00:00")).year >= 2026
        expected = hmac.new(SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256)
        assert hmac.compare_digest(headers["X-Apc-Signature"], expected.hexdigest())
        assert headers["Content-Type"] == "application/json"
    first = json.loads(posts[0][1])
    assert first == {
        "id": first["id"],
        "name": "appcues:nps_score",
        "timestamp": "2026-01-01T10:00:00.000Z",
        "user_id": "u1",
        "group_id": "acct_000003",
        "attributes": {"flowId": "f1", "score": 9},
        "context": {"url": "https://app.example.com/home"},
        "account_id": ac.conn["account_id"],
    }
    assert json.loads(posts[1][1])["name"] == "Imported"  # the event from before is not sent
    listed = ac.api.get(ac.url("users/u1/events")).json()
    assert listed[0]["id"] == first["id"]  # one event id across readers, for dedupe
    deliveries = _wait_deliveries(ac, 2)
    assert [d["delivered"] for d in deliveries] == [True, True]
    assert deliveries[0]["attempts"] == 1 and deliveries[0]["status_codes"] == [200]
    assert ac.stats()["webhook_deliveries"] == 2


def test_non_2xx_answers_are_retried_with_backoff(ac, receiver):
    hook = receiver(statuses=[500, 503])
    _configure(ac, hook.url, max_attempts=5)
    ac.api.post(ac.url("users/u1/events"), json={"name": "Clicked", "timestamp": 1767225600000})
    posts = hook.wait_for(3)
    assert len({body for _, body in posts}) == 1  # the same event each time
    delivery = _wait_deliveries(ac, 1)[0]
    assert delivery["delivered"] is True
    assert delivery["status_codes"] == [500, 503, 200]
    assert delivery["attempts"] == 3


def test_gives_up_after_max_attempts_and_moves_on(ac, receiver):
    hook = receiver(statuses=[500, 500])
    _configure(ac, hook.url, max_attempts=2)
    ac.api.post(ac.url("users/u1/events"), json={"name": "Lost", "timestamp": 1767225600000})
    ac.api.post(ac.url("users/u1/events"), json={"name": "Next", "timestamp": 1767225601000})
    posts = hook.wait_for(3)
    assert [json.loads(b)["name"] for _, b in posts] == ["Lost", "Lost", "Next"]
    deliveries = _wait_deliveries(ac, 2)
    assert deliveries[0]["delivered"] is False and deliveries[0]["error"] == "HTTP 500"
    assert deliveries[1]["delivered"] is True
    stats = ac.stats()["counters"]
    assert stats["webhook_failures"] == 1 and stats["webhook_attempts"] == 3


def test_subscription_filters_event_names(ac, receiver):
    hook = receiver()
    _configure(ac, hook.url, events=["appcues:nps_feedback"])
    ac.api.post(ac.url("users/u1/events"), json={"name": "Clicked", "timestamp": 1767225600000})
    ac.api.post(
        ac.url("users/u1/events"),
        json={
            "name": "appcues:nps_feedback",
            "timestamp": 1767225601000,
            "attributes": {"feedback": "ok"},
        },
    )
    posts = hook.wait_for(1)
    assert [json.loads(b)["name"] for _, b in posts] == ["appcues:nps_feedback"]
    ac.control("DELETE", "webhooks")
    assert ac.control("GET", "webhooks").json()["config"] is None


def test_bad_webhook_config_is_refused(ac):
    control = f"{ac.conn['control_url']}/webhooks"
    assert ac.anon.post(control, json={"url": "ftp://x", "secret": "s"}).status_code == 400
    assert ac.anon.post(control, json={"url": "http://127.0.0.1:9/"}).status_code == 400


@pytest.mark.parametrize(
    ("scheme", "signed", "encode"),
    [
        ("timestamp.body:base64", True, lambda d: base64.b64encode(d).decode()),
        ("body:hex", False, bytes.hex),
        ("body:base64", False, lambda d: base64.b64encode(d).decode()),
    ],
)
def test_signature_scheme_switch(ac, receiver, scheme, signed, encode):
    hook = receiver()
    _configure(ac, hook.url, signature_scheme=scheme)
    assert ac.control("GET", "webhooks").json()["config"]["signature_scheme"] == scheme
    ac.api.post(ac.url("users/u1/events"), json={"name": "Clicked", "timestamp": 1767225600000})
    ((headers, body),) = hook.wait_for(1)
    stamp = headers["X-Apc-Timestamp"]
    message = stamp.encode() + b"." + body if signed else body
    expected = encode(hmac.new(SECRET.encode(), message, hashlib.sha256).digest())
    assert hmac.compare_digest(headers["X-Apc-Signature"], expected)


def test_unknown_signature_scheme_is_refused(ac):
    body = {"url": "http://127.0.0.1:9/", "secret": "s", "signature_scheme": "sha1"}
    assert ac.anon.post(f"{ac.conn['control_url']}/webhooks", json=body).status_code == 400
