"""The webhook sender: POSTs each new event of the store to a subscribed URL, signed.

Signature (the real scheme is not public; this is the sandbox's choice):
`X-Apc-Timestamp: <ISO 8601 UTC, e.g. 2026-01-01T12:00:00Z>` and
`X-Apc-Signature: hex(HMAC-SHA256(secret, timestamp + "." + raw body))`.
The switch `signature_scheme` sends each other plausible scheme: the signed string is
`timestamp.body` or the body alone, the digest hex or base64.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests

from ..common.stats import CallStats
from .models import AppcuesStore, event_json, iso_ms

MAX_DELIVERIES_KEPT = 10_000


# <signed string>:<encoding>; the first is the sandbox's default choice.
SIGNATURE_SCHEMES = ("timestamp.body:hex", "timestamp.body:base64", "body:hex", "body:base64")


def sign(secret: str, timestamp: str, body: bytes, scheme: str = SIGNATURE_SCHEMES[0]) -> str:
    signed, encoding = scheme.split(":")
    message = timestamp.encode() + b"." + body if signed == "timestamp.body" else body
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()


@dataclass
class WebhookConfig:
    url: str
    secret: str
    events: list[str] | None = None  # subscribed names; None = every event
    max_attempts: int = 5
    backoff_seconds: float = 0.5  # doubles after each failed attempt
    timeout_seconds: float = 10.0
    verify: bool | str = True  # TLS verification of the target (a CA path is allowed)
    signature_scheme: str = SIGNATURE_SCHEMES[0]

    @classmethod
    def from_json(cls, body: Any) -> WebhookConfig:
        if not isinstance(body, dict):
            raise ValueError("body must be an object")
        url, secret = body.get("url"), body.get("secret")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError("url must be an http(s) URL")
        if not isinstance(secret, str) or not secret:
            raise ValueError("secret must be a non-empty string")
        events = body.get("events")
        if events is not None and not (
            isinstance(events, list) and all(isinstance(e, str) for e in events)
        ):
            raise ValueError("events must be an array of event names")
        scheme = body.get("signature_scheme", SIGNATURE_SCHEMES[0])
        if scheme not in SIGNATURE_SCHEMES:
            raise ValueError(f"signature_scheme must be one of {', '.join(SIGNATURE_SCHEMES)}")
        return cls(
            url=url,
            secret=secret,
            events=events,
            max_attempts=max(1, int(body.get("max_attempts", 5))),
            backoff_seconds=max(0.0, float(body.get("backoff_seconds", 0.5))),
            timeout_seconds=float(body.get("timeout_seconds", 10.0)),
            verify=body.get("verify", True),
            signature_scheme=scheme,
        )

    def public(self) -> dict[str, Any]:
        """The configuration without its secret."""
        return {
            "url": self.url,
            "events": self.events,
            "max_attempts": self.max_attempts,
            "backoff_seconds": self.backoff_seconds,
            "timeout_seconds": self.timeout_seconds,
            "signature_scheme": self.signature_scheme,
        }


class WebhookSender:
    """A thread that follows the event store by sequence number and delivers in order."""

    def __init__(
        self,
        store: AppcuesStore,
        now: Callable[[], datetime],
        account_id: str,
        stats: CallStats,
    ) -> None:
        self._store = store
        self._now = now
        self._account_id = account_id
        self._stats = stats
        self._lock = threading.Lock()
        self._config: WebhookConfig | None = None
        self._cursor = 0
        self._generation = 0  # bumped on every (re)configuration: abandons a retry loop
        self._deliveries: deque[dict[str, Any]] = deque(maxlen=MAX_DELIVERIES_KEPT)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._http = requests.Session()
        self._http.trust_env = False  # never pick up proxies or CA bundles from the env
        self._thread = threading.Thread(target=self._run, name="appcues-webhooks", daemon=True)
        self._thread.start()

    # --- control -----------------------------------------------------------------------
    def configure(self, config: WebhookConfig | None, *, from_start: bool = False) -> None:
        with self._lock:
            self._config = config
            self._cursor = 0 if from_start else self._store.last_seq()
            self._generation += 1
        self._wake.set()

    def clear(self) -> None:
        self.configure(None)
        with self._lock:
            self._deliveries.clear()

    def notify(self) -> None:
        """New events were stored."""
        self._wake.set()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "config": self._config.public() if self._config else None,
                "cursor": self._cursor,
                "deliveries": list(self._deliveries),
            }

    def close(self) -> None:
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout=5)
        self._http.close()

    # --- the loop ----------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(timeout=0.2)
            self._wake.clear()
            while not self._stopping.is_set() and self._deliver_batch():
                pass

    def _deliver_batch(self) -> bool:
        """Delivers the next events after the cursor; False when nothing is left."""
        with self._lock:
            config, cursor, generation = self._config, self._cursor, self._generation
        if config is None:
            return False
        rows = self._store.events_after(cursor, 100)
        for row in rows:
            if config.events is None or row["name"] in config.events:
                payload = {**event_json(row), "account_id": self._account_id}
                self._deliver(config, generation, payload)
            with self._lock:
                if self._generation != generation:
                    return False
                self._cursor = row["seq"]
        return bool(rows)

    def _deliver(self, config: WebhookConfig, generation: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload, separators=(",", ":")).encode()
        codes: list[int] = []
        error: str | None = None
        delivered = False
        attempts = 0
        for attempt in range(1, config.max_attempts + 1):
            attempts = attempt
            timestamp = self._now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "Appcues-Webhooks (salesforce-appcues-sandbox)",
                "X-Apc-Timestamp": timestamp,
                "X-Apc-Signature": sign(config.secret, timestamp, body, config.signature_scheme),
            }
            self._stats.incr("webhook_attempts")
            try:
                response = self._http.post(
                    config.url,
                    data=body,
                    headers=headers,
                    timeout=config.timeout_seconds,
                    verify=config.verify,
                )
                codes.append(response.status_code)
                response.close()
                if 200 <= response.status_code < 300:
                    delivered = True
                    error = None
                    break
                error = f"HTTP {response.status_code}"
            except requests.RequestException as exc:
                error = type(exc).__name__
            if attempt < config.max_attempts:
                pause = config.backoff_seconds * 2 ** (attempt - 1)
                if self._stopping.wait(pause) or self._generation != generation:
                    break
        self._stats.incr("webhook_deliveries" if delivered else "webhook_failures")
        with self._lock:
            self._deliveries.append(
                {
                    "event_id": payload["id"],
                    "name": payload["name"],
                    "url": config.url,
                    "attempts": attempts,
                    "status_codes": codes,
                    "delivered": delivered,
                    "error": error,
                    "at": iso_ms(int(self._now().timestamp() * 1000)),
                }
            )
