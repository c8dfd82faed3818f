"""Signature and timestamp checks of a delivery, over the exact bytes received.

Appcues signs with the account's secret: `X-Apc-Signature` (HMAC-SHA256) and
`X-Apc-Timestamp`. What is signed (the body alone or `timestamp.body`) and how the digest
is spelled (hex or base64) is not public, so it is a setting; a delivery that fails under
the configured scheme but matches another is refused and the matching scheme is logged
once, so the operator can fix the setting from the first real delivery. Accepting it anyway
would let a body-only signature skip the timestamp binding the setting asked for.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from ..events import parse_timestamp
from .settings import SIGNATURE_SCHEMES

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "x-apc-signature"
TIMESTAMP_HEADER = "x-apc-timestamp"


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str  # "ok" or the refusal reason (a metric label)
    timestamp: datetime | None = None


def _digest(secret: str, timestamp: str, body: bytes, scheme: str) -> str:
    signed, encoding = scheme.split(":")
    message = timestamp.encode() + b"." + body if signed == "timestamp.body" else body
    raw = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return raw.hex() if encoding == "hex" else base64.b64encode(raw).decode()


def _matches(secret: str, timestamp: str, body: bytes, scheme: str, given: str) -> bool:
    expected = _digest(secret, timestamp, body, scheme)
    if scheme.endswith(":hex"):
        given = given.lower()  # hex case carries no information
    # `sha256=` prefixes (GitHub style) are tolerated: the digest is what is compared
    if given.startswith("sha256="):
        given = given[len("sha256=") :]
    return hmac.compare_digest(expected.encode(), given.encode())


class SignatureVerifier:
    """Checks deliveries against one or two secrets (two while rotating)."""

    def __init__(self, secrets: Sequence[str], scheme: str, replay_window_seconds: int) -> None:
        self._secrets = tuple(secrets)
        self.scheme = scheme
        self._window = replay_window_seconds
        self._reported: set[str] = set()
        self._lock = threading.Lock()

    def check(self, headers: dict[str, str], body: bytes, now: datetime) -> Verdict:
        given = (headers.get(SIGNATURE_HEADER) or "").strip()
        stamp = (headers.get(TIMESTAMP_HEADER) or "").strip()
        if not given:
            return Verdict(False, "unsigned")
        if not stamp:
            return Verdict(False, "missing_timestamp")
        try:
            when = parse_timestamp(int(stamp) if stamp.isdigit() else stamp)
        except (ValueError, OverflowError, OSError):
            return Verdict(False, "bad_timestamp")
        if not any(_matches(s, stamp, body, self.scheme, given) for s in self._secrets):
            self._report_other_scheme(stamp, body, given)
            return Verdict(False, "bad_signature")
        # Checked after the signature: an attacker learns nothing about the window.
        if abs((now.astimezone(UTC) - when).total_seconds()) > self._window:
            return Verdict(False, "stale_timestamp", when)
        return Verdict(True, "ok", when)

    def _report_other_scheme(self, stamp: str, body: bytes, given: str) -> None:
        for scheme in SIGNATURE_SCHEMES:
            if scheme == self.scheme:
                continue
            if any(_matches(s, stamp, body, scheme, given) for s in self._secrets):
                with self._lock:
                    first = scheme not in self._reported
                    self._reported.add(scheme)
                if first:
                    log.warning(
                        "A delivery's signature matches scheme %r, not the configured %r: "
                        "it was refused (401). If Appcues signs this way, set "
                        "webhook_signature_scheme to %r.",
                        scheme,
                        self.scheme,
                        scheme,
                    )
                return
