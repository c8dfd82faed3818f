"""Appcues API v2 access: Basic auth, a process-wide rate limiter, retries, the operations.

Retries: 429 and 5xx answers are retried for every method (as Appcues' own client does),
waiting Retry-After or 2^attempt x retry_base_delay seconds, capped at 60. A connection
failure is retried only for idempotent methods, or when nothing was sent; a POST (an event,
an import) that may have reached Appcues raises `UncertainWriteError` rather than risk a
duplicate.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import quote, urljoin

import requests

from .errors import (
    AppcuesError,
    ConfigurationError,
    RetriesExhaustedError,
    UncertainWriteError,
    scrub,
)
from .progress import PROGRESS_INTERVAL_SECONDS, JobProgress
from .settings import AppcuesSettings
from .transport import (
    TRANSIENT_STATUSES,
    Backoff,
    RetryPolicy,
    build_session,
    http_date,
    retry_after_seconds,
    sent_nothing,
    sleep,
    tls_failure,
)

log = logging.getLogger(__name__)
# The user id of the preflight's write probe (nothing is ever written under it).
PROBE_USER_ID = "salesforce-appcues-preflight-probe"

_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})
NDJSON = "application/x-ndjson"


class RateLimiter:
    """A thread-safe token bucket; one per Appcues account, base URL and rate in a process.

    Callers reserve a slot under the lock and sleep outside it, so waiting threads are served
    in order and the bucket never grants more than `capacity + rate x t` in any t seconds.
    """

    _shared: ClassVar[dict[tuple[str, str, float], RateLimiter]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, rate: float, capacity: float = 1.0) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.capacity = max(1.0, capacity)
        self._tokens = self.capacity
        self._stamp = time.monotonic()
        self._lock = threading.Lock()
        self.granted = 0
        self._grants: collections.deque[float] = collections.deque(maxlen=100_000)

    @classmethod
    def shared(cls, base_url: str, account_id: str, rate: float) -> RateLimiter:
        """The process-wide limiter of an account at a configured rate.

        Keyed by the rate too: a process normally runs one config, and a test that sets a
        low rate must not slow every later client of the same account.
        """
        key = (base_url, account_id, float(rate))
        with cls._shared_lock:
            limiter = cls._shared.get(key)
            if limiter is None:
                limiter = cls._shared[key] = cls(rate)
            return limiter

    def _refill(self, now: float) -> None:
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def acquire(self) -> None:
        """Block until one request may be sent."""
        with self._lock:
            now = time.monotonic()
            self._refill(now)
            self._tokens -= 1.0
            wait = 0.0 if self._tokens >= 0 else -self._tokens / self.rate
            self.granted += 1
            self._grants.append(now + wait)
        sleep(wait)

    def max_in_window(self, seconds: float = 1.0) -> int:
        """Most grants scheduled within any `seconds`-long window so far (for tests, benches)."""
        with self._lock:
            times = sorted(self._grants)
        best, lo = 0, 0
        for hi, t in enumerate(times):
            while t - times[lo] >= seconds:
                lo += 1
            best = max(best, hi - lo + 1)
        return best


@dataclass
class ImportJob:
    """State of an Appcues import job (GET /jobs/{id}); `errors[].row` is 1-based."""

    job_id: str
    status: str
    total_rows: int = 0
    processed_rows: int = 0
    failed_rows: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, job_id: str, body: Mapping[str, Any]) -> ImportJob:
        return cls(
            job_id=str(body.get("job_id") or body.get("id") or job_id),
            status=str(body.get("status", "")),
            total_rows=int(body.get("total_rows") or 0),
            processed_rows=int(body.get("processed_rows") or 0),
            failed_rows=int(body.get("failed_rows") or 0),
            errors=list(body.get("errors") or []),
            raw=dict(body),
        )

    @property
    def finished(self) -> bool:
        return self.status in ("complete", "failed")


@dataclass
class AnalyticsResult:
    rows: list[dict[str, Any]]
    truncated: bool


class AppcuesClient:
    """One Appcues account; see docs/clients.md for the contract."""

    job_poll_initial = 0.2
    job_poll_max = 5.0
    progress_interval = PROGRESS_INTERVAL_SECONDS  # between progress lines of a polled job

    def __init__(self, settings: AppcuesSettings) -> None:
        self.settings = settings
        self.session = build_session()
        self.session.headers["Accept"] = "application/json"
        # Presigned downloads get a session that never carries the Authorization header.
        self._download_session = build_session()
        # An explicit per-request verify beats REQUESTS_CA_BUNDLE; True keeps the defaults.
        self._verify: bool | str = settings.ca_bundle or True
        self.limiter = RateLimiter.shared(
            settings.base_url, settings.account_id, settings.max_requests_per_second
        )
        self.retry_policy = RetryPolicy(
            max_retries=settings.max_retries,
            max_seconds=600.0,
            base_delay=settings.retry_base_delay,
            max_delay=60.0,
            jitter=False,
        )
        self._auth = requests.auth.HTTPBasicAuth(settings.api_key, settings.api_secret)
        self._count_lock = threading.Lock()
        self._requests = 0
        self._last_date: datetime | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any], prefix: str = "") -> AppcuesClient:
        return cls(AppcuesSettings.from_config(config, prefix))

    def __repr__(self) -> str:
        return f"<AppcuesClient account {self.settings.account_id} at {self.settings.base_url}>"

    @property
    def requests_made(self) -> int:
        """API requests sent by this client (retries included; downloads excluded)."""
        return self._requests

    def server_time(self) -> datetime | None:
        """Appcues' clock from the last API response's Date header; None before any response.

        Never makes a call of its own (Appcues has no free endpoint to ask).
        """
        return self._last_date

    def _account_url(self, path: str) -> str:
        account = quote(self.settings.account_id, safe="")
        return f"{self.settings.base_url}/v2/accounts/{account}/{path.lstrip('/')}"

    def _secrets(self) -> tuple[str, ...]:
        return (self.settings.api_secret, self.settings.api_key)

    def _request(
        self,
        method: str,
        path: str,
        *,
        allow_404: bool = False,
        idempotent: bool | None = None,
        **kwargs: Any,
    ) -> requests.Response | None:
        """`idempotent` overrides the method's default, for reads sent as POST."""
        url = self._account_url(path)
        repeatable = method in _IDEMPOTENT if idempotent is None else idempotent
        backoff = Backoff(self.retry_policy, log)
        while True:
            self.limiter.acquire()
            with self._count_lock:
                self._requests += 1
            try:
                response = self.session.request(
                    method,
                    url,
                    auth=self._auth,
                    timeout=self.settings.request_timeout,
                    verify=self._verify,
                    **kwargs,
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                tls = tls_failure(exc, "Appcues", f"{self.settings.prefix}ca_bundle")
                if tls:
                    raise ConfigurationError(tls) from None
                reason = f"{type(exc).__name__} on {method} {path}"
                if not repeatable and not sent_nothing(exc):
                    raise UncertainWriteError(
                        f"Appcues {reason}: the request may or may not have been applied, so "
                        "it is not retried"
                    ) from None
                delay = backoff.next_delay()
                if delay is None:
                    raise RetriesExhaustedError(
                        f"Appcues {reason}; gave up after {backoff.attempts} attempts"
                    ) from None
                backoff.pause(delay, f"Appcues {reason}")
                continue
            self._last_date = http_date(response.headers.get("Date")) or self._last_date
            status = response.status_code
            if status in TRANSIENT_STATUSES or status >= 500:
                delay = backoff.next_delay(retry_after_seconds(response.headers.get("Retry-After")))
                if delay is None:
                    raise self._error(response, f" (gave up after {backoff.attempts} attempts)")
                backoff.pause(delay, f"Appcues answered {status} to {method} {path}")
                continue
            if status == 404 and allow_404:
                return None
            if status >= 400:
                raise self._error(response)
            return response

    def _error(self, response: requests.Response, suffix: str = "") -> AppcuesError:
        title, detail = response.reason or "Error", ""
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            title = str(body.get("title") or title)
            detail = str(body.get("detail") or body.get("message") or "")
        elif response.text:
            detail = response.text[:200]
        return AppcuesError(response.status_code, title, scrub(detail, self._secrets()) + suffix)

    @staticmethod
    def _body(response: requests.Response | None) -> Any:
        if response is None or response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            return None

    # --- profiles and groups -----------------------------------------------------------
    @staticmethod
    def _id(value: str) -> str:
        if not value:
            raise ValueError("an Appcues id must not be empty")
        try:
            return quote(str(value), safe="")
        except UnicodeEncodeError:
            raise ValueError(f"Appcues id {value!r} is not valid Unicode text") from None

    def get_user_profile(self, user_id: str) -> dict[str, Any] | None:
        response = self._request("GET", f"users/{self._id(user_id)}/profile", allow_404=True)
        return self._body(response) if response is not None else None

    def patch_user_profile(self, user_id: str, attributes: Mapping[str, Any]) -> None:
        self._request("PATCH", f"users/{self._id(user_id)}/profile", json=dict(attributes))

    def delete_user_profile(self, user_id: str) -> None:
        self._request("DELETE", f"users/{self._id(user_id)}/profile")

    def get_group_profile(self, group_id: str) -> dict[str, Any] | None:
        response = self._request("GET", f"groups/{self._id(group_id)}/profile", allow_404=True)
        return self._body(response) if response is not None else None

    def patch_group_profile(self, group_id: str, attributes: Mapping[str, Any]) -> None:
        self._request("PATCH", f"groups/{self._id(group_id)}/profile", json=dict(attributes))

    def add_users_to_group(self, group_id: str, user_ids: Iterable[str]) -> None:
        self._request(
            "POST", f"groups/{self._id(group_id)}/users", json={"user_ids": list(user_ids)}
        )

    # --- events ------------------------------------------------------------------------
    def track_event(self, user_id: str, event: Mapping[str, Any]) -> None:
        self._request("POST", f"users/{self._id(user_id)}/events", json=dict(event))

    def list_user_events(self, user_id: str, limit: int = 100) -> list[dict[str, Any]]:
        response = self._request(
            "GET", f"users/{self._id(user_id)}/events", params={"limit": int(limit)}
        )
        body = self._body(response)
        return list(body) if isinstance(body, list) else []

    # --- bulk imports ------------------------------------------------------------------
    def import_profiles(self, rows: Iterable[Mapping[str, Any]]) -> str:
        return self._import("profiles", rows)

    def import_groups(self, rows: Iterable[Mapping[str, Any]]) -> str:
        return self._import("groups", rows)

    def import_events(self, rows: Iterable[Mapping[str, Any]]) -> str:
        return self._import("events", rows)

    def _import(self, kind: str, rows: Iterable[Mapping[str, Any]]) -> str:
        body = "".join(
            json.dumps(dict(row), separators=(",", ":"), ensure_ascii=False, default=str) + "\n"
            for row in rows
        ).encode()
        response = self._request(
            "POST", f"import/{kind}", data=body, headers={"Content-Type": NDJSON}
        )
        answer = self._body(response)
        if not isinstance(answer, dict) or not answer.get("job_id"):
            raise AppcuesError(
                response.status_code if response is not None else 0,
                "Unexpected response",
                f"import/{kind} returned no job_id",
            )
        return str(answer["job_id"])

    def get_job(self, job_id: str) -> ImportJob:
        body = self._body(self._request("GET", f"jobs/{self._id(job_id)}"))
        return ImportJob.from_json(job_id, body if isinstance(body, dict) else {})

    def wait_for_job(self, job_id: str, timeout: float = 600.0) -> ImportJob:
        """Poll an import job until it is complete or failed (backoff from 0.2 s to 5 s)."""
        deadline = time.monotonic() + timeout
        delay = self.job_poll_initial
        progress = JobProgress(log, "Appcues import job", job_id, self.progress_interval)
        while True:
            job = self.get_job(job_id)
            progress.polled(
                job.status,
                done=job.finished,
                total_rows=job.total_rows,
                processed_rows=job.processed_rows,
                failed_rows=job.failed_rows,
            )
            if job.finished:
                return job
            if time.monotonic() + delay > deadline:
                raise AppcuesError(
                    0, "Job timeout", f"import job {job_id} still {job.status} after {timeout:g} s"
                )
            sleep(delay)
            delay = min(self.job_poll_max, delay * 2)

    # --- preflight probes (--check) ----------------------------------------------------
    def list_jobs(self) -> list[dict[str, Any]]:
        """The account's import jobs: a cheap authenticated read (key, secret, account)."""
        body = self._body(self._request("GET", "jobs"))
        if isinstance(body, dict):  # a wrapper object rather than a bare list
            body = body.get("jobs") or body.get("data") or []
        return [dict(job) for job in body] if isinstance(body, list) else []

    def probe_write(self) -> None:
        """A write Appcues must refuse without writing: a profile PATCH whose body is not an
        object. A key allowed to write gets 400 (raised as AppcuesError), one that is not
        gets 401/403. Assumes Appcues checks permission before the body (docs/sandbox.md)."""
        self._request(
            "PATCH",
            f"users/{self._id(PROBE_USER_ID)}/profile",
            data=b"[]",
            headers={"Content-Type": "application/json"},
        )

    # --- analytics ---------------------------------------------------------------------
    def analytics_query(self, spec: Mapping[str, Any]) -> AnalyticsResult:
        """Synchronous analytics query; Appcues clamps it at 1000 rows (`truncated`)."""
        # A read sent as POST: repeating it after a reset or timeout is safe.
        response = self._request("POST", "analytics/query", json=dict(spec), idempotent=True)
        body = self._body(response)
        truncated = (
            response is not None
            and response.headers.get("X-Rows-Truncated", "").strip().lower() == "true"
        )
        return AnalyticsResult(
            rows=list(body) if isinstance(body, list) else [], truncated=truncated
        )

    def analytics_export(
        self, spec: Mapping[str, Any], timeout: float = 900.0
    ) -> Iterator[dict[str, Any]]:
        """Rows of an asynchronous analytics export: start, poll, download without auth."""
        # A second export job for the same spec is harmless, so a lost answer may be retried.
        started = self._body(
            self._request("POST", "analytics/exports", json=dict(spec), idempotent=True)
        )
        if not isinstance(started, dict) or not started.get("job_id"):
            raise AppcuesError(0, "Unexpected response", "analytics/exports returned no job_id")
        job_id = str(started["job_id"])
        deadline = time.monotonic() + timeout
        delay = self.job_poll_initial
        progress = JobProgress(log, "Appcues analytics export", job_id, self.progress_interval)
        while True:
            state = self._body(self._request("GET", f"analytics/exports/{self._id(job_id)}"))
            state = state if isinstance(state, dict) else {}
            status = state.get("status")
            progress.polled(str(status), done=status in ("done", "failed"))
            if status == "done":
                break
            if status == "failed":
                raise AppcuesError(
                    0, "Export failed", str(state.get("failure_reason") or "no reason given")
                )
            if time.monotonic() + delay > deadline:
                raise AppcuesError(
                    0, "Export timeout", f"export {job_id} still {status} after {timeout:g} s"
                )
            sleep(delay)
            delay = min(self.job_poll_max, delay * 2)
        url = urljoin(self.settings.base_url + "/", str(state["download_url"]))
        yield from self._download_rows(url)

    def _download_rows(self, url: str) -> Iterator[dict[str, Any]]:
        backoff = Backoff(self.retry_policy, log)
        while True:
            try:
                response = self._download_session.get(
                    url, timeout=self.settings.request_timeout, verify=self._verify
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                delay = backoff.next_delay()
                if delay is None:
                    raise RetriesExhaustedError(
                        f"Appcues export download failed ({type(exc).__name__})"
                    ) from None
                backoff.pause(delay, f"Appcues export download: {type(exc).__name__}")
                continue
            status = response.status_code
            if status in TRANSIENT_STATUSES or status >= 500:
                delay = backoff.next_delay(retry_after_seconds(response.headers.get("Retry-After")))
                if delay is not None:
                    backoff.pause(delay, f"Appcues export download answered {status}")
                    continue
            if response.status_code >= 400:
                raise AppcuesError(
                    response.status_code, "Export download failed", response.reason or ""
                )
            body = response.json()
            if not isinstance(body, list):
                raise AppcuesError(200, "Unexpected response", "export file is not a JSON array")
            yield from body
            return

    def close(self) -> None:
        self.session.close()
        self._download_session.close()
