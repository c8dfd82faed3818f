"""HTTP plumbing shared by both clients: sessions, TLS trust, retry timing, failure triage, and
the one retry loop both clients send through (`send_with_retries`)."""

from __future__ import annotations

import logging
import random
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter

from .errors import ConfigurationError, RetriesExhaustedError, UncertainWriteError, scrub

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


@dataclass(frozen=True)
class WriteRetry:
    """The error answers after which a request that is not safe to replay (a write) is sent
    again; None: every transient answer. The one deliberate difference between the clients'
    retry loops: see SALESFORCE_WRITES and APPCUES_WRITES below. A connection failure is
    treated alike by both: a write is sent again only when none of it left this host."""

    statuses: frozenset[int] | None
    # Whether an error answer that is not retried says the service is done with the request
    # (False: it may still be applying it, as after a timeout). None: never decided here.
    finished: Callable[[requests.Response], bool] | None = None

    def allows(self, status: int) -> bool:
        return self.statuses is None or status in self.statuses

    def unanswered(self, response: requests.Response) -> bool:
        return self.finished is not None and not self.finished(response)


# Gateway answers: a proxy stopped waiting, the server behind it may still be at work.
GATEWAY_STATUSES = frozenset({502, 504})


def salesforce_finished(response: requests.Response) -> bool:
    """True when a 5xx (or 408) comes from Salesforce itself, done with the request: its JSON
    error list, not a 502/504 or a body written by a proxy or load balancer in front of it."""
    if response.status_code in GATEWAY_STATUSES:
        return False
    if response.status_code < 500:
        return True
    try:
        body = response.json()
    except ValueError:
        return False
    return (
        isinstance(body, list)
        and bool(body)
        and all(isinstance(e, dict) and "errorCode" in e for e in body)
    )


# Salesforce: only 429 and 503 say it did not process the request; another 5xx after a write
# (an insert) may mean it was applied, so the caller gets UncertainWriteError, not a duplicate.
# A 502/504 or a 5xx Salesforce did not write is as unanswered as a read timeout.
SALESFORCE_WRITES = WriteRetry(frozenset({429, 503}), salesforce_finished)
# Appcues: 429 and every 5xx are retried for every method, as Appcues' own client does.
APPCUES_WRITES = WriteRetry(None)


def is_transient(status: int) -> bool:
    return status in TRANSIENT_STATUSES or status >= 500


def send_with_retries(
    send: Callable[[], requests.Response],
    *,
    service: str,
    what: str,
    replay_safe: bool,
    writes: WriteRetry,
    backoff: Backoff,
    tls_setting: str,
    exhausted: Callable[[requests.Response, int], Exception],
    on_failure: Callable[[bool], None] | None = None,
    on_answer: Callable[[requests.Response], bool] | None = None,
) -> requests.Response:
    """Sends one request (`send()` is one attempt) until an answer that is not transient.

    `what` ("METHOD path") and `service` name it in messages; `replay_safe` says whether a
    replay can duplicate data, `writes` what a request that is not may still be retried
    after. `on_failure(nothing_sent)` sees each connection failure (not a TLS verification
    failure, a ConfigurationError naming `tls_setting`); `on_answer(response)` sees each
    answer first and returns True to send again at once (a refreshed session).
    `exhausted(response, attempts)` is the error raised when a transient answer outlives
    the retry budget. The answer returned may be an error answer: the caller translates it.
    """
    while True:
        try:
            response = send()
        except (requests.ConnectionError, requests.Timeout) as exc:
            tls = tls_failure(exc, service, tls_setting)
            if tls:
                raise ConfigurationError(tls) from None
            nothing_sent = sent_nothing(exc)
            if on_failure is not None:
                on_failure(nothing_sent)
            reason = f"{type(exc).__name__} on {what}"
            if not replay_safe and not nothing_sent:
                raise UncertainWriteError(
                    f"{service} {reason}: the request may or may not have been applied, so "
                    "it is not retried",
                    unanswered=True,
                ) from None
            delay = backoff.next_delay()
            if delay is None:
                raise RetriesExhaustedError(
                    f"{service} {reason}; gave up after {backoff.attempts} attempts"
                ) from None
            backoff.pause(delay, f"{service} {reason}")
            continue
        if on_answer is not None and on_answer(response):
            continue
        status = response.status_code
        if not is_transient(status):
            return response
        if not replay_safe and not writes.allows(status):
            unanswered = writes.unanswered(response)
            response.close()
            raise UncertainWriteError(
                f"{service} answered {status} to {what}: the request may or may not have "
                "been applied, so it is not retried",
                unanswered=unanswered,
            )
        delay = backoff.next_delay(retry_after_seconds(response.headers.get("Retry-After")))
        if delay is None:
            raise exhausted(response, backoff.attempts)
        response.close()
        backoff.pause(delay, f"{service} answered {status} to {what}")


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
