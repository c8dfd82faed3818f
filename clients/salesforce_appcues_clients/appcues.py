"""Appcues API v2 access: Basic auth, a process-wide rate limiter, retries, the operations.

Retries: 429 and 5xx answers are retried for every method (as Appcues' own client does),
waiting Retry-After or 2^attempt x retry_base_delay seconds, capped at 60. A connection
failure is retried only for idempotent methods, or when nothing was sent; a POST (an event,
an import) that may have reached Appcues raises `UncertainWriteError` rather than risk a
duplicate. The loop is the one both clients share (`transport.send_with_retries`, with
`APPCUES_WRITES`).
"""

from __future__ import annotations

import collections
import csv
import io
import json
import logging
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any, ClassVar
from urllib.parse import quote, urljoin

import ijson
import requests

from .errors import AppcuesError, RetriesExhaustedError, scrub
from .progress import PROGRESS_INTERVAL_SECONDS, JobProgress
from .settings import AppcuesSettings
from .transport import (
    APPCUES_WRITES,
    TRANSIENT_STATUSES,
    Backoff,
    RetryPolicy,
    build_session,
    http_date,
    retry_after_seconds,
    send_with_retries,
    sleep,
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


# The job object of Appcues' import jobs is not documented (docs/clients.md, "Imports"):
# its status words are read tolerantly, and per-row results only when fully understood.
JOB_SUCCEEDED = frozenset({"complete", "completed", "done", "finished", "succeeded", "success"})
JOB_FAILED = frozenset({"failed", "error", "errored", "cancelled", "canceled"})


def _count(value: Any) -> int | None:
    """A row counter as Appcues may send it; None when absent or not a whole number."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


@dataclass
class ImportJob:
    """State of an Appcues import job (GET /jobs/{id}), read without trusting its shape.

    `outcome` is "succeeded", "failed" or "pending" (any word not known to be terminal).
    The counters are None when the body does not carry them as whole numbers.
    """

    job_id: str
    status: str
    total_rows: int | None = None
    processed_rows: int | None = None
    failed_rows: int | None = None
    errors: list[Any] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, job_id: str, body: Mapping[str, Any]) -> ImportJob:
        errors = body.get("errors")
        return cls(
            job_id=str(body.get("job_id") or body.get("id") or job_id),
            status=str(body.get("status") or ""),
            total_rows=_count(body.get("total_rows")),
            processed_rows=_count(body.get("processed_rows")),
            failed_rows=_count(body.get("failed_rows")),
            errors=list(errors) if isinstance(errors, list) else [],
            raw=dict(body),
        )

    @property
    def outcome(self) -> str:
        word = self.status.strip().lower()
        if word in JOB_SUCCEEDED:
            return "succeeded"
        return "failed" if word in JOB_FAILED else "pending"

    @property
    def finished(self) -> bool:
        return self.outcome != "pending"

    def listed_errors(self) -> dict[int, str]:
        """Row number -> message for each error naming a whole-number `row`, as written.

        Whether rows count from 0 or 1 is not documented: see `suspect_indexes`.
        """
        rows: dict[int, str] = {}
        for error in self.errors:
            row = _count(error.get("row")) if isinstance(error, dict) else None
            if row is not None:
                rows.setdefault(row, str(error.get("message") or error.get("detail") or ""))
        return rows

    def accounts_for(self, rows_sent: int) -> bool:
        """True when the body gives a verdict for each of the `rows_sent` rows we sent.

        That is: a terminal status; `total_rows` equal to the rows sent, `processed_rows`
        (if present) too; `failed_rows` equal to the number of listed error rows, each
        a whole number in 0..rows_sent, every error naming one; and for a failed job, every
        row failed (a job failed as a whole says nothing about its other rows).
        """
        if not self.finished or self.total_rows != rows_sent or self.failed_rows is None:
            return False
        if self.processed_rows is not None and self.processed_rows != rows_sent:
            return False
        listed = self.listed_errors()
        if len(listed) != len(self.errors) or any(row > rows_sent for row in listed):
            return False
        if len(listed) != self.failed_rows:
            return False
        return self.outcome == "succeeded" or self.failed_rows == rows_sent

    def reports_trouble(self, rows_sent: int) -> bool:
        """True when the body says some rows were not applied (without, maybe, saying which)."""
        return (
            self.outcome == "failed"
            or bool(self.failed_rows)
            or bool(self.errors)
            or (self.processed_rows is not None and self.processed_rows != rows_sent)
        )

    def suspect_indexes(self, rows_sent: int) -> dict[int, str]:
        """0-based index -> message of each row the errors name under either numbering
        (from 1, as the sandbox does, or from 0). A row not listed here succeeded whichever
        numbering Appcues uses, provided `accounts_for(rows_sent)`."""
        suspects: dict[int, str] = {}
        for row, message in self.listed_errors().items():
            for index in (row - 1, row):
                if 0 <= index < rows_sent:
                    suspects.setdefault(index, message)
        return suspects


class ImportJobTimeoutError(AppcuesError):
    """An import job was still not finished when the caller stopped waiting."""

    def __init__(self, job: ImportJob, timeout: float) -> None:
        super().__init__(
            0, "Job timeout", f"import job {job.job_id} still {job.status!r} after {timeout:g} s"
        )
        self.job = job


IMPORT_FORMATS = ("ndjson", "csv")
_LOOKS_SPECIAL = frozenset({"true", "false", "null"})


def csv_can_carry(row: Mapping[str, Any], id_key: str) -> bool:
    """True when every value of the row reads back unchanged from a CSV import.

    Appcues casts CSV cells (its uploader: `true`/`false` -> boolean, `null` -> null,
    numerals -> numbers) and an empty cell sends nothing, so text that looks like one of
    those, empty text, text with outer spaces and integers beyond 2^53 cannot travel as
    CSV. The id may be a plain integer numeral: ids are text either way.
    """
    return all(_csv_safe(value, key == id_key) for key, value in row.items())


def _csv_safe(value: Any, is_id: bool) -> bool:
    if isinstance(value, str):
        if is_id and value.isascii() and value.isdigit() and value[:1] != "0":
            return True
        return _csv_safe_text(value)
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return True
    return isinstance(value, int) and abs(value) <= 2**53


def _csv_safe_text(value: str) -> bool:
    if not value or value != value.strip() or value.lower() in _LOOKS_SPECIAL:
        return False
    try:
        float(value)
    except ValueError:
        return True
    return False


def _csv_cell(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def csv_body(rows: Iterable[Mapping[str, Any]]) -> bytes:
    """Rows as CSV: a header of every key in first-seen order; a key a row lacks is an
    empty cell (Appcues sends nothing for it)."""
    materialised = [dict(row) for row in rows]
    header = list(dict.fromkeys(key for row in materialised for key in row))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # \r and \n in a value get quoted
    writer.writerow(header)
    for row in materialised:
        writer.writerow([_csv_cell(row[k]) if k in row else "" for k in header])
    return out.getvalue().encode()


@dataclass
class AnalyticsResult:
    rows: list[dict[str, Any]]
    truncated: bool


# A download cut midway: requests raises these while the body is read.
_DOWNLOAD_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)
_DOWNLOAD_CHUNK = 64 * 1024


def _json_array_items(body: IO[bytes]) -> Iterator[dict[str, Any]]:
    """The objects of a JSON array, parsed incrementally (ijson's C backend)."""
    head = body.read(_DOWNLOAD_CHUNK)
    if not head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"["):
        raise AppcuesError(200, "Unexpected response", "export file is not a JSON array")
    body.seek(0)
    try:
        for row in ijson.items(body, "item", use_float=True):
            if not isinstance(row, dict):
                raise AppcuesError(200, "Unexpected response", "an export row is not an object")
            yield row
    except ijson.JSONError as exc:
        reason = str(exc).splitlines()[0]
        raise AppcuesError(
            200, "Unexpected response", f"export file is not valid JSON ({reason})"
        ) from None


DOT_SEGMENTS = frozenset({".", ".."})  # path segments that URL normalisation removes


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
        self._job_paths: dict[str, str] = {}  # job id -> the job_url Appcues gave

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

        def send() -> requests.Response:
            self.limiter.acquire()
            with self._count_lock:
                self._requests += 1
            return self.session.request(
                method,
                url,
                auth=self._auth,
                timeout=self.settings.request_timeout,
                verify=self._verify,
                **kwargs,
            )

        def observe(response: requests.Response) -> bool:
            self._last_date = http_date(response.headers.get("Date")) or self._last_date
            return False

        response = send_with_retries(
            send,
            service="Appcues",
            what=f"{method} {path}",
            replay_safe=method in _IDEMPOTENT if idempotent is None else idempotent,
            writes=APPCUES_WRITES,
            backoff=Backoff(self.retry_policy, log),
            tls_setting=f"{self.settings.prefix}ca_bundle",
            exhausted=lambda answer, attempts: self._error(
                answer, f" (gave up after {attempts} attempts)"
            ),
            on_answer=observe,
        )
        if response.status_code == 404 and allow_404:
            return None
        if response.status_code >= 400:
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
        if str(value) in DOT_SEGMENTS:
            # `users/../profile` is another route once a URL is normalised (by requests, a
            # proxy or Appcues' router), and %2E may be decoded back: never sent.
            raise ValueError(f"Appcues id {value!r} cannot be sent in a URL path")
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
    def import_profiles(self, rows: Iterable[Mapping[str, Any]], fmt: str = "ndjson") -> str:
        return self._import("profiles", rows, fmt)

    def import_groups(self, rows: Iterable[Mapping[str, Any]], fmt: str = "ndjson") -> str:
        return self._import("groups", rows, fmt)

    def import_events(self, rows: Iterable[Mapping[str, Any]], fmt: str = "ndjson") -> str:
        return self._import("events", rows, fmt)

    def _import(self, kind: str, rows: Iterable[Mapping[str, Any]], fmt: str) -> str:
        """Starts an import job; returns its id. `fmt`: "ndjson" (an `application/x-ndjson`
        body) or "csv" (a multipart/form-data upload with a `file` part, as seen from a
        real client). Neither is documented; see docs/clients.md."""
        if fmt == "csv":
            files = {"file": (f"{kind}.csv", csv_body(rows), "text/csv")}
            response = self._request("POST", f"import/{kind}", files=files)
        elif fmt == "ndjson":
            body = "".join(
                json.dumps(dict(row), separators=(",", ":"), ensure_ascii=False, default=str) + "\n"
                for row in rows
            ).encode()
            response = self._request(
                "POST", f"import/{kind}", data=body, headers={"Content-Type": NDJSON}
            )
        else:
            raise ValueError(f"unknown import format {fmt!r}; expected one of {IMPORT_FORMATS}")
        answer = self._body(response)
        if not isinstance(answer, dict) or not answer.get("job_id"):
            raise AppcuesError(
                response.status_code if response is not None else 0,
                "Unexpected response",
                f"import/{kind} returned no job_id",
            )
        job_id = str(answer["job_id"])
        # Poll where Appcues says the job is, when that is under our account's API (the
        # credentials never go elsewhere); else the guessed route jobs/{id}.
        base = self._account_url("")
        job_url = answer.get("job_url")
        if isinstance(job_url, str) and job_url.startswith(base) and len(job_url) > len(base):
            with self._count_lock:
                self._job_paths[job_id] = job_url[len(base) :]
        return job_id

    def get_job(self, job_id: str) -> ImportJob:
        path = self._job_paths.get(job_id) or f"jobs/{self._id(job_id)}"
        body = self._body(self._request("GET", path))
        return ImportJob.from_json(job_id, body if isinstance(body, dict) else {})

    def wait_for_job(self, job_id: str, timeout: float = 600.0) -> ImportJob:
        """Poll an import job until its status is terminal (backoff from 0.2 s to 5 s).

        Raises ImportJobTimeoutError (carrying the last state) after `timeout` seconds.
        """
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
                raise ImportJobTimeoutError(job, timeout)
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
        """The export file's rows, yielded one by one without holding the file.

        The body is streamed to a temporary file first, then parsed from it incrementally: a
        backfill's export holds hundreds of thousands of rows, and a downstream as slow as a
        Salesforce load would otherwise keep the download open (and the presigned URL ageing)
        for as long as the rows take to be written; the server may cut such a connection.
        A download cut midway is fetched again whole before any row is read.
        """
        with tempfile.TemporaryFile(prefix="appcues-export-") as spool:
            self._download_to(url, spool)
            spool.seek(0)
            yield from _json_array_items(spool)

    def _download_to(self, url: str, spool: IO[bytes]) -> None:
        backoff = Backoff(self.retry_policy, log)
        while True:
            try:
                response = self._download_session.get(
                    url, timeout=self.settings.request_timeout, verify=self._verify, stream=True
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                self._download_retry(backoff, type(exc).__name__)
                continue
            with response:
                status = response.status_code
                if status in TRANSIENT_STATUSES or status >= 500:
                    wait = retry_after_seconds(response.headers.get("Retry-After"))
                    delay = backoff.next_delay(wait)
                    if delay is not None:
                        backoff.pause(delay, f"Appcues export download answered {status}")
                        continue
                if status >= 400:
                    raise AppcuesError(status, "Export download failed", response.reason or "")
                spool.seek(0)
                spool.truncate()
                try:
                    for chunk in response.iter_content(_DOWNLOAD_CHUNK):
                        spool.write(chunk)
                    return
                except _DOWNLOAD_ERRORS as exc:
                    failure = type(exc).__name__
            self._download_retry(backoff, failure)

    @staticmethod
    def _download_retry(backoff: Backoff, failure: str) -> None:
        delay = backoff.next_delay()
        if delay is None:
            raise RetriesExhaustedError(f"Appcues export download failed ({failure})") from None
        backoff.pause(delay, f"Appcues export download: {failure}")

    def close(self) -> None:
        self.session.close()
        self._download_session.close()
