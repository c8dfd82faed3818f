"""HTTP plumbing shared by both clients: sessions, TLS trust, retry timing, failure triage."""

from __future__ import annotations

import logging
import random
import ssl
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter

from .errors import scrub

TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class _ScrubUrls(logging.Filter):
    """urllib3 logs every request URL at DEBUG; presigned download URLs carry a signature."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(scrub(a) if isinstance(a, str) else a for a in record.args)
        return True


logging.getLogger("urllib3.connectionpool").addFilter(_ScrubUrls())


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, bounded by attempts and by total waiting time."""

    max_retries: int = 5
    max_seconds: float = 300.0
    base_delay: float = 1.0
    max_delay: float = 60.0
    jitter: bool = True

    def delay(self, retry: int, retry_after: float | None, waited: float) -> float | None:
        """Seconds to wait before retry number `retry` (0-based), or None to give up."""
        if retry >= self.max_retries:
            return None
        if retry_after is not None:
            wait = max(0.0, retry_after)
        else:
            wait = min(self.max_delay, self.base_delay * (2**retry))
            if self.jitter:
                wait *= random.uniform(0.5, 1.0)  # spreads retries; not crypto
        if waited + wait > self.max_seconds:
            return None
        return wait


class Backoff:
    """One request's retries under a `RetryPolicy`: how many so far and how long waited."""

    def __init__(self, policy: RetryPolicy, log: logging.Logger) -> None:
        self.policy = policy
        self.log = log
        self.retries = 0
        self.waited = 0.0

    @property
    def attempts(self) -> int:
        return self.retries + 1

    def next_delay(self, retry_after: float | None = None) -> float | None:
        """Seconds to wait before the next attempt, or None when the policy gives up."""
        return self.policy.delay(self.retries, retry_after, self.waited)

    def pause(self, delay: float, why: str) -> None:
        """Log `why`, wait `delay` seconds and count the retry."""
        self.log.warning("%s; retrying in %.1f s", why, delay)
        sleep(delay)
        self.waited += delay
        self.retries += 1


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header (delta seconds or an HTTP date) in seconds."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def sent_nothing(exc: BaseException) -> bool:
    """True when a requests failure happened before any byte of the request left this host."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(
            current,
            urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError,
        ):
            return True
        if isinstance(current, urllib3.exceptions.MaxRetryError) and current.reason is not None:
            current = current.reason
            continue
        first = current.args[0] if current.args else None
        wrapped = first if isinstance(first, BaseException) else None
        current = wrapped or current.__cause__ or current.__context__
    return False


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, kind):
            return True
        todo.extend(a for a in current.args if isinstance(a, BaseException))
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            todo.append(reason)
        todo.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return False


def tls_failure(exc: BaseException, service: str, setting: str) -> str | None:
    """A user-facing message when `exc` is a certificate problem (never worth retrying)."""
    if not isinstance(exc, requests.exceptions.SSLError):
        return None
    # A reset during TLS also surfaces as SSLError: only a failed verification is config.
    if "CERTIFICATE_VERIFY_FAILED" not in str(exc) and not _caused_by(
        exc, ssl.SSLCertVerificationError
    ):
        return None
    return (
        f"TLS verification of {service} failed ({type(exc).__name__}); if a proxy or emulator "
        f"uses its own certificate authority, point the setting {setting} (or "
        "REQUESTS_CA_BUNDLE) at its PEM bundle"
    )


def build_session(pool_size: int = 20) -> requests.Session:
    """A pooled session without urllib3-level retries (the clients retry themselves).

    Callers pass `verify=<ca_bundle>` per request: requests lets REQUESTS_CA_BUNDLE override
    `Session.verify`, but never an explicit per-request value; proxies still come from the
    environment.
    """
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def sleep(seconds: float) -> None:
    """Indirection so a test could observe waits; production just sleeps."""
    if seconds > 0:
        time.sleep(seconds)
