"""The webhook receiver's parts without HTTP: settings, signature checks, the spool, the
webhook payload -> record shape (the process itself is tested in tests/reliability)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from salesforce_appcues_clients.appcues_events import event_id
from target_salesforce_events.idempotency import DeliveryError, UnansweredInsertError
from target_salesforce_events.settings import SettingsError
from target_salesforce_events.webhook.settings import SIGNATURE_SCHEMES, WebhookSettings
from target_salesforce_events.webhook.spool import Spool
from target_salesforce_events.webhook.verify import SignatureVerifier
from target_salesforce_events.webhook.worker import event_record, retry_pause, spool_key

SECRET, OTHER = "s3cret-one", "s3cret-two"
NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
BODY = b'{"id":"e1","name":"appcues:nps_score","timestamp":"2026-03-01T11:59:00.000Z"}'


def sign(secret: str, stamp: str, body: bytes, scheme: str) -> str:
    signed, encoding = scheme.split(":")
    message = stamp.encode() + b"." + body if signed == "timestamp.body" else body
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()


def headers(signature: str, stamp: str = "2026-03-01T12:00:00Z") -> dict[str, str]:
    return {"x-apc-signature": signature, "x-apc-timestamp": stamp}


@pytest.mark.parametrize("scheme", SIGNATURE_SCHEMES)
def test_each_scheme_verifies_with_either_secret(scheme):
    verifier = SignatureVerifier([SECRET, OTHER], scheme, 300)
    stamp = "2026-03-01T12:00:00Z"
    for secret in (SECRET, OTHER):
        verdict = verifier.check(headers(sign(secret, stamp, BODY, scheme)), BODY, NOW)
        assert verdict.ok and verdict.reason == "ok"
    bad = verifier.check(headers(sign("nope", stamp, BODY, scheme)), BODY, NOW)
    assert (bad.ok, bad.reason) == (False, "bad_signature")


def test_refusals_name_their_reason(caplog):
    verifier = SignatureVerifier([SECRET], "timestamp.body:hex", 300)
    stamp = "2026-03-01T12:00:00Z"
    good = sign(SECRET, stamp, BODY, "timestamp.body:hex")
    assert verifier.check({}, BODY, NOW).reason == "unsigned"
    assert verifier.check({"x-apc-signature": good}, BODY, NOW).reason == "missing_timestamp"
    assert verifier.check(headers(good, "yesterday"), BODY, NOW).reason == "bad_timestamp"
    assert verifier.check(headers(good), BODY + b" ", NOW).reason == "bad_signature"
    late = NOW + timedelta(seconds=301)
    assert verifier.check(headers(good), BODY, late).reason == "stale_timestamp"
    assert verifier.check(headers(good), BODY, NOW + timedelta(seconds=299)).ok
    epoch = str(int(NOW.timestamp()))  # epoch seconds are read too
    by_epoch = headers(sign(SECRET, epoch, BODY, "timestamp.body:hex"), epoch)
    assert verifier.check(by_epoch, BODY, NOW).ok
    assert verifier.check(headers("sha256=" + good.upper()), BODY, NOW).ok
    # Signed another way: refused, and the matching scheme is logged once.
    other = sign(SECRET, stamp, BODY, "body:base64")
    for _ in range(3):
        assert verifier.check(headers(other), BODY, NOW).reason == "bad_signature"
    found = [r.getMessage() for r in caplog.records if "matches scheme" in r.getMessage()]
    assert len(found) == 1 and "'body:base64'" in found[0]
    assert SECRET not in caplog.text


def test_settings_refuse_missing_or_three_secrets(tmp_path):
    base = {"state_dir": str(tmp_path)}
    with pytest.raises(SettingsError, match="webhook_secrets"):
        WebhookSettings.from_config(base)
    with pytest.raises(SettingsError, match="webhook_secrets"):
        WebhookSettings.from_config({**base, "webhook_secrets": ["a", "b", "c"]})
    with pytest.raises(SettingsError, match="webhook_signature_scheme"):
        WebhookSettings.from_config(
            {**base, "webhook_secrets": ["a"], "webhook_signature_scheme": "md5"}
        )
    with pytest.raises(SettingsError) as refused:
        WebhookSettings.from_config({**base, "webhook_secrets": "hunter2-secret"})
    assert "hunter2-secret" not in str(refused.value)
    settings = WebhookSettings.from_config({**base, "webhook_secrets": ["a"]})
    assert settings.spool_path == tmp_path / "webhook-spool.sqlite3"
    assert (settings.batch_size, settings.batch_max_age_seconds) == (200, 0.25)


def test_an_unanswered_insert_waits_at_least_the_request_timeout(tmp_path):
    """A webhook_retry_max_seconds lowered for quick outage retries must not shorten the wait
    after an unanswered insert below the time that insert was given to answer."""
    base = {"state_dir": str(tmp_path), "webhook_secrets": ["a"]}
    unanswered = UnansweredInsertError("insert of 3 Events got no answer")
    outage = DeliveryError("Salesforce unavailable")
    quick = WebhookSettings.from_config({**base, "webhook_retry_max_seconds": 5})
    assert retry_pause(unanswered, 0.0, quick) == 120  # the default request_timeout
    assert retry_pause(outage, 0.0, quick) == 0.5
    assert retry_pause(outage, 4.0, quick) == 5
    short = WebhookSettings.from_config(
        {**base, "webhook_retry_max_seconds": 5, "request_timeout": 2}
    )
    assert retry_pause(unanswered, 0.0, short) == 5
    default = WebhookSettings.from_config({**base, "request_timeout": 30})
    assert retry_pause(unanswered, 0.0, default) == 60


def test_spool_is_durable_and_drops_duplicates(tmp_path):
    path = tmp_path / "spool.sqlite3"
    spool = Spool(path)
    assert spool.append("k1", b"one", 1.0, 10.0)
    assert not spool.append("k1", b"one again", 1.0, 11.0)  # a retry of the same event
    assert spool.append("k2", b"two", None, 12.0)
    spool.close()
    reopened = Spool(path)  # what a restarted receiver finds
    rows = reopened.oldest(10)
    assert [(r.event_key, r.body) for r in rows] == [("k1", b"one"), ("k2", b"two")]
    assert reopened.oldest_received_at() == 10.0
    reopened.remove([rows[0].seq])
    assert reopened.depth() == 1 and reopened.writable()
    mode = reopened._db.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    reopened.close()


def test_webhook_payload_gets_the_tap_s_event_id():
    payload = {
        "id": "store-id-not-used",
        "name": "appcues:nps_score",
        "timestamp": 1772366340123,  # epoch ms as well as ISO 8601
        "user_id": "u-1",
        "group_id": None,
        "attributes": {"score": 9, "_identity": {"_currentPageTitle": "Home"}},
        "context": {"url": "https://app.example.com/"},
        "account_id": "acct",
    }
    record = event_record(payload)
    assert record["timestamp"] == "2026-03-01T11:59:00.123Z"
    assert record["id"] == event_id(
        "u-1", "appcues:nps_score", "2026-03-01T11:59:00.123Z", payload["attributes"]
    )
    assert record["context"] == {"url": "https://app.example.com/", "title": "Home"}
    iso = {**payload, "timestamp": "2026-03-01T12:59:00.123+01:00"}
    assert event_record(iso)["id"] == record["id"]
    key, when = spool_key(json.dumps(iso).encode())
    assert key == record["id"] and when == pytest.approx(1772366340.123)
    assert spool_key(b"not json")[0].startswith("sha256:")
    assert "id" not in event_record({**payload, "timestamp": "soon"})  # dead-lettered later


def test_serve_refuses_a_bad_config_without_quoting_it(tmp_path):
    config = tmp_path / "receiver.json"
    config.write_text(json.dumps({"state_dir": str(tmp_path), "webhook_secrets": "pw-hunter2"}))
    done = subprocess.run(
        [Path(sys.executable).parent / "appcues-webhook-receiver", "serve", "--config", config],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "webhook_secrets" in done.stderr and "array" in done.stderr
    assert "pw-hunter2" not in done.stderr + done.stdout
