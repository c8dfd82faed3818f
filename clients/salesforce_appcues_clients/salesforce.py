"""Salesforce access: OAuth flows, a resilient transport, and the operations the plugins use.

Layers, top to bottom:
- `SalesforceClient`: query, Bulk 2.0, describe, collections, limits (simple-salesforce for
  describeGlobal, limits and COUNT() queries; hand-written where it streams too little or
  costs a run more than it gives: query paging, whose import alone took ~0.25 s).
- `_SalesforceAdapter`: a requests transport adapter that every call goes through. It adds
  the bearer token, retries transient failures, refreshes an expired session once and
  replays, counts API calls and enforces the quota guard. simple-salesforce's own requests
  get all of that because it runs over our session.
- `_TokenSource`: the OAuth flows (refresh token, JWT bearer, client credentials); a rotated
  refresh token is kept across runs in a `RefreshTokenStore` (token_store.py).

Write safety: a request is replayed after a failure only when a replay cannot duplicate
data. GET/PATCH/PUT/DELETE, composite/batch describes and Bulk query and ingest job creation
are replay-safe (an ingest job holds no data before its upload). Inserts (POST
composite/sobjects) are retried only when nothing was sent
(connection refused, connect timeout) or Salesforce said it did not process them (429, 503);
any other failure after sending raises `UncertainWriteError` instead of risking a duplicate.
Upserts by external id are idempotent and retried like reads.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from .errors import (
    AuthenticationError,
    ConfigurationError,
    QuotaExceededError,
    RetriesExhaustedError,
    SalesforceError,
    UncertainWriteError,
    scrub,
)
from .progress import PROGRESS_INTERVAL_SECONDS, JobProgress
from .settings import SalesforceSettings
from .token_store import RefreshTokenStore
from .transport import (
    TRANSIENT_STATUSES,
    Backoff,
    RetryPolicy,
    http_date,
    retry_after_seconds,
    sent_nothing,
    sleep,
    tls_failure,
)

if TYPE_CHECKING:  # imported where first used: a run that needs neither skips ~0.2 s
    import simple_salesforce
    import simple_salesforce.exceptions

log = logging.getLogger(__name__)

COLLECTION_SIZE = 200  # sObject Collections maximum per call
COLLECTION_TYPES = 10  # Salesforce processes at most 10 same-type chunks per call
DESCRIBE_BATCH_SIZE = 25  # composite/batch maximum subrequests
BULK_PAGE_SIZE = 50_000
_API_PATH = re.compile(r"^/services/(data|async)/")
_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")
_SOBJECT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_RECORD_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
_REPLAY_SAFE_POSTS = (
    re.compile(r"/composite/batch/?$"),  # our batches only hold GET describes
    re.compile(r"/jobs/query/?$"),  # a duplicate query job wastes a job, never data
    re.compile(r"/jobs/ingest/?$"),  # an ingest job holds no data until its upload
    re.compile(r"^/services/oauth2/token$"),
)


@dataclass
class RecordResult:
    """Outcome of one record of a collections call; `index` is its position in the input."""

    index: int
    id: str | None
    success: bool
    created: bool | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)


class _Token:
    """An access token that never shows itself in a repr or a log line."""

    __slots__ = ("generation", "instance_url", "value")

    def __init__(self, value: str, instance_url: str, generation: int) -> None:
        self.value = value
        self.instance_url = instance_url
        self.generation = generation

    def __repr__(self) -> str:
        return f"<access token #{self.generation} for {self.instance_url}>"


class _TokenSource:
    """Obtains access tokens with the configured OAuth flow; thread-safe, no timers."""

    def __init__(self, settings: SalesforceSettings, session: requests.Session) -> None:
        self.settings = settings
        self.session = session
        self.flow = self._choose_flow()
        self._refresh_token = settings.refresh_token
        self._spent: list[str] = []  # refresh tokens seen this run (kept out of messages)
        self.store: RefreshTokenStore | None = None
        if self.flow == "refresh_token":
            self.store = RefreshTokenStore(
                settings.token_store_dir,
                str(settings.client_id),
                str(settings.refresh_token),
                lock_timeout=settings.request_timeout + settings.retry_max_seconds,
            )
        self._lock = threading.Lock()
        self._token: _Token | None = None
        self._generation = 0
        self.last_date: datetime | None = None

    def __repr__(self) -> str:
        return f"<Salesforce {self.flow} login at {self.settings.login_url}>"

    def _choose_flow(self) -> str:
        s = self.settings
        flow = s.auth_flow
        if flow == "auto":
            if s.username and s.private_key:
                flow = "jwt_bearer"
            elif s.refresh_token:
                flow = "refresh_token"
            elif s.client_id and s.client_secret:
                flow = "client_credentials"
            else:
                raise ConfigurationError(
                    "no Salesforce login configured: set `refresh_token` (+ `client_id`), or "
                    "`username` + `private_key` (JWT bearer), or `client_id` + `client_secret` "
                    "(client credentials on a My Domain)"
                )
        required = {
            "refresh_token": ("client_id", "refresh_token"),
            "jwt_bearer": ("client_id", "username", "private_key"),
            "client_credentials": ("client_id", "client_secret"),
        }[flow]
        missing = [name for name in required if not getattr(s, name)]
        if missing:
            raise ConfigurationError(f"the {flow} flow needs the setting(s) {', '.join(missing)}")
        return flow

    def current(self) -> _Token:
        with self._lock:
            if self._token is None:
                self._token = self._obtain()
            return self._token

    def refresh(self, stale: _Token) -> _Token:
        """A new token, unless another thread already replaced `stale`."""
        with self._lock:
            if self._token is None or self._token.generation == stale.generation:
                self._token = self._obtain()
            return self._token

    def _form(self, refresh_token: str | None = None) -> dict[str, str]:
        s = self.settings
        if self.flow == "refresh_token":
            form = {
                "grant_type": "refresh_token",
                "client_id": str(s.client_id),
                "refresh_token": str(refresh_token or self._refresh_token),
            }
            if s.client_secret:
                form["client_secret"] = s.client_secret
            return form
        if self.flow == "jwt_bearer":
            import jwt  # only this flow signs anything

            claims = {
                "iss": s.client_id,
                "sub": s.username,
                "aud": s.jwt_audience,  # never the My Domain host: Salesforce refuses it
                "exp": int((datetime.now(UTC) + timedelta(minutes=3)).timestamp()),
            }
            try:
                assertion = jwt.encode(claims, str(s.private_key), algorithm="RS256")
            except (ValueError, TypeError, jwt.PyJWTError) as exc:
                raise ConfigurationError(
                    f"setting 'private_key' is not a usable RSA private key ({type(exc).__name__})"
                ) from None
            return {
                "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "assertion": assertion,
            }
        return {
            "grant_type": "client_credentials",
            "client_id": str(s.client_id),
            "client_secret": str(s.client_secret),
        }

    def _obtain(self) -> _Token:
        if self.store is None:
            return self._accept(*self._request(self._form()))
        with self.store.locked() as usable:
            return self._refresh_from_store(self.store, usable)

    def _refresh_from_store(self, store: RefreshTokenStore, usable: bool) -> _Token:
        """Refresh with the newest token (stored, else this run's, else configured), under the
        store's lock; keep what Salesforce rotates to. A refused stored token falls back to
        the older candidates (the configured one last)."""
        stored = store.read() if usable else None
        newest_first = (stored, self._refresh_token, self.settings.refresh_token)
        candidates = [t for t in dict.fromkeys(newest_first) if t]
        self._spent.extend(candidates)
        for number, candidate in enumerate(candidates, 1):
            response, body = self._request(self._form(candidate))
            if number < len(candidates) and self._refused(response, body) == "invalid_grant":
                log.warning(
                    "Salesforce refused the %s refresh token (invalid_grant); trying the %s one",
                    "stored" if candidate == stored else "current",
                    "configured" if number + 1 == len(candidates) else "current",
                )
                continue
            token = self._accept(response, body)  # raises if this one was refused too
            rotated = body.get("refresh_token")
            if rotated and rotated != candidate:
                self._refresh_token = str(rotated)
                self._spent.append(self._refresh_token)
                if usable and store.write(self._refresh_token):
                    log.info(
                        "Salesforce rotated the refresh token; the new one is kept in %s for "
                        "the next runs",
                        store.path,
                    )
            else:
                self._refresh_token = candidate
                if stored and candidate != stored:
                    store.forget()  # refused: later runs need not try it again
            return token
        raise AssertionError("unreachable: the last candidate returns or raises")

    def _request(self, form: dict[str, str]) -> tuple[requests.Response, Any]:
        url = f"{self.settings.login_url}/services/oauth2/token"
        try:
            response = self.session.post(
                url,
                data=form,
                headers={"Accept": "application/json"},
            )
        except (RetriesExhaustedError, requests.RequestException) as exc:
            raise AuthenticationError(
                f"Salesforce login at {self.settings.login_url} failed: "
                f"{scrub(str(exc), self.secrets())}"
            ) from None
        self.last_date = http_date(response.headers.get("Date")) or self.last_date
        body: Any
        try:
            body = response.json()
        except ValueError:
            body = {}
        return response, body

    @staticmethod
    def _refused(response: requests.Response, body: Any) -> str | None:
        """The OAuth error code of a refused login ("" if unnamed), None if it succeeded."""
        if response.status_code == 200 and isinstance(body, dict) and "access_token" in body:
            return None
        return str(body.get("error", "")) if isinstance(body, dict) else ""

    def _accept(self, response: requests.Response, body: Any) -> _Token:
        code = self._refused(response, body)
        if code is not None:
            text = body.get("error_description", "") if isinstance(body, dict) else ""
            raise AuthenticationError(
                f"Salesforce refused the {self.flow} login ({response.status_code} "
                f"{scrub(code)}: {scrub(str(text), self.secrets())}); check the "
                f"settings {self._settings_hint()}"
            )
        self._generation += 1
        instance_url = str(body.get("instance_url") or self.settings.login_url).rstrip("/")
        if _scheme(instance_url) != "https" and _scheme(self.settings.login_url) == "https":
            # Every later call would carry the access token to it in clear text.
            raise AuthenticationError(
                f"Salesforce's {self.flow} login answered an instance_url that is not "
                f"https:// ({_scheme(instance_url) or 'no scheme'}); refusing to send the "
                "access token there. Check `domain` and any proxy between this host and "
                "Salesforce"
            )
        log.debug("Salesforce login (%s) succeeded for %s", self.flow, instance_url)
        return _Token(str(body["access_token"]), instance_url, self._generation)

    def _settings_hint(self) -> str:
        return {
            "refresh_token": "client_id, client_secret, refresh_token and domain",
            "jwt_bearer": "client_id, username, private_key and domain",
            "client_credentials": "client_id, client_secret and domain (a My Domain)",
        }[self.flow]

    def secrets(self) -> tuple[str, ...]:
        extra = [self._refresh_token or "", *self._spent]
        if self._token is not None:
            extra.append(self._token.value)
        return (*self.settings.secrets(), *(e for e in extra if e))


class _QuotaGuard:
    """Tracks `Sforce-Limit-Info` and stops the run before it eats too much of the org's quota."""

    def __init__(self, percent_total: float, percent_per_run: float) -> None:
        self.percent_total = percent_total
        self.percent_per_run = percent_per_run
        self.used: int | None = None
        self.limit: int | None = None
        self._lock = threading.Lock()

    def observe(self, header: str | None) -> None:
        if not header:
            return
        match = _USAGE.search(header)
        if match:
            with self._lock:
                self.used, self.limit = int(match.group(1)), int(match.group(2))

    def check(self, calls_made: int) -> None:
        """Raise QuotaExceededError if one more call would pass either cap."""
        with self._lock:
            used, limit = self.used, self.limit
        if not limit:
            return
        allowed = limit * self.percent_per_run / 100
        if calls_made + 1 > allowed:
            raise QuotaExceededError(
                0,
                "QUOTA_PER_RUN",
                f"this run made {calls_made} API calls, the cap of {self.percent_per_run:g}% "
                f"of the org's daily limit of {limit} ({int(allowed)} calls; the org has used "
                f"{used if used is not None else '?'}/{limit}); raise the setting "
                f"quota_percent_per_run to let a run use more",
            )
        if used is not None and used * 100 / limit > self.percent_total:
            raise QuotaExceededError(
                0,
                "QUOTA_TOTAL",
                f"the org has used {used} of its {limit} daily API calls "
                f"({used * 100 / limit:.1f}%), past the cap of {self.percent_total:g}%; "
                f"raise the setting quota_percent_total or wait for usage to fall",
            )


def _is_replay_safe(method: str, path: str) -> bool:
    if method in ("GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"):
        return True
    return any(p.search(path) for p in _REPLAY_SAFE_POSTS)


def _error_code(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return str(body[0].get("errorCode", ""))
    return ""


class _SalesforceAdapter(HTTPAdapter):
    """Auth, retries, session refresh, call counting and the quota guard for every request."""

    def __init__(self, client: SalesforceClient) -> None:
        super().__init__(pool_connections=4, pool_maxsize=20, max_retries=0)
        self.client = client

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        client = self.client
        settings = client.settings
        if timeout is None:
            timeout = settings.request_timeout
        if settings.ca_bundle:
            verify = settings.ca_bundle  # the setting wins over REQUESTS_CA_BUNDLE
        method = (request.method or "GET").upper()
        path = urlsplit(request.url or "").path
        is_api = bool(_API_PATH.match(path))
        replay_safe = _is_replay_safe(method, path)
        backoff = Backoff(client.retry_policy, log)
        refreshed = False
        while True:
            token: _Token | None = None
            if is_api:
                client._quota.check(client.calls_made)
                token = client._tokens.current()
                request.headers["Authorization"] = f"Bearer {token.value}"
            try:
                response = super().send(
                    request,
                    stream=stream,
                    timeout=timeout,
                    verify=verify,
                    cert=cert,
                    proxies=proxies,
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                tls = tls_failure(exc, "Salesforce", "ca_bundle")
                if tls:
                    raise ConfigurationError(tls) from None
                nothing_sent = sent_nothing(exc)
                if is_api and not nothing_sent:
                    client._count_call()
                reason = f"{type(exc).__name__} on {method} {path}"
                if not replay_safe and not nothing_sent:
                    raise UncertainWriteError(
                        f"Salesforce {reason}: the write may or may not have been applied, "
                        "so it is not retried"
                    ) from None
                delay = backoff.next_delay()
                if delay is None:
                    raise RetriesExhaustedError(
                        f"Salesforce {reason}; gave up after {backoff.attempts} attempts"
                    ) from None
                backoff.pause(delay, f"Salesforce {reason}")
                continue
            if is_api:
                client._count_call()
                client._quota.observe(response.headers.get("Sforce-Limit-Info"))
            client._observe_date(response.headers.get("Date"))
            status = response.status_code
            if (
                status == 401
                and is_api
                and token is not None
                and not refreshed
                and _error_code(response) == "INVALID_SESSION_ID"
            ):
                response.close()
                log.info("Salesforce session expired; logging in again and replaying %s", path)
                client._tokens.refresh(token)
                refreshed = True
                continue
            if status == 403 and is_api and _error_code(response) == "REQUEST_LIMIT_EXCEEDED":
                raise SalesforceError.from_body(status, response.json(), f"{method} {path}")
            if status in TRANSIENT_STATUSES or status >= 500:
                if not replay_safe and status not in (429, 503):
                    raise UncertainWriteError(
                        f"Salesforce answered {status} to {method} {path}: the write may or "
                        "may not have been applied, so it is not retried"
                    )
                delay = backoff.next_delay(retry_after_seconds(response.headers.get("Retry-After")))
                if delay is None:
                    code = _error_code(response)
                    raise RetriesExhaustedError(
                        f"Salesforce answered {status}{f' {code}' if code else ''} to {method} "
                        f"{path}; gave up after {backoff.attempts} attempts"
                    )
                response.close()
                backoff.pause(delay, f"Salesforce answered {status} to {method} {path}")
                continue
            if status == 404 and is_api:
                client._check_api_version(path, response)
            return response


def _simple_error() -> type[simple_salesforce.exceptions.SalesforceError]:
    """simple-salesforce's error base (imported by then: the `simple` client was built)."""
    from simple_salesforce.exceptions import SalesforceError as SimpleSalesforceError

    return SimpleSalesforceError


def _translate(exc: simple_salesforce.exceptions.SalesforceError) -> SalesforceError:
    """simple-salesforce's error (whose text includes URLs and bodies) as ours, scrubbed."""
    return SalesforceError.from_body(exc.status, exc.content, str(exc.resource_name or ""))


class _PageFetch:
    """One query page requested on a thread of its own; `result()` waits for it."""

    def __init__(self, fetch: Callable[[], dict[str, Any]]) -> None:
        self._fetch = fetch
        self._page: dict[str, Any] | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="salesforce-query-page", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._page = self._fetch()
        except BaseException as exc:  # handed to the reader, raised where it asks for the page
            self._error = exc

    def wait(self) -> None:
        self._thread.join()

    def result(self) -> dict[str, Any]:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._page is not None
        return self._page


class QueryResult(Iterator[dict[str, Any]]):
    """The records of one REST query (query or queryAll), fetched a page at a time.

    `total_size` is Salesforce's `totalSize` for the whole query, known from the first page:
    reading it fetches that page (one call) without consuming any record, so a caller can
    size the query up before deciding to read it. Iterating continues from that same page.

    Once the reader takes a page's first record, the next page is requested in the
    background (one page ahead, at most), so the network wait overlaps the reader's work.
    A reading to the end makes exactly the calls a page-by-page reading makes; a page's
    error is raised where the reader reaches that page. `close()` waits for a request in
    flight, so the client's session is idle again when it returns. A reader that abandons
    the iteration without `close()` may leave one page fetched for nothing.
    """

    def __init__(
        self,
        client: SalesforceClient,
        soql: str,
        include_deleted: bool = False,
        batch_size: int | None = None,
    ) -> None:
        self._client = client
        self._soql = soql
        self._include_deleted = include_deleted
        self._headers = {"Sforce-Query-Options": f"batchSize={batch_size}"} if batch_size else {}
        self._records: list[dict[str, Any]] = []
        self._position = 0
        self._next_url: str | None = None
        self._total_size: int | None = None
        self._closed = False
        self._ahead: _PageFetch | None = None  # the next page, requested in the background

    def __repr__(self) -> str:
        return f"<QueryResult total_size={self._total_size}>"

    @property
    def total_size(self) -> int:
        """Matching records in the whole query (fetches the first page if not yet done)."""
        self._first_page()
        assert self._total_size is not None
        return self._total_size

    def __iter__(self) -> QueryResult:
        return self

    def __next__(self) -> dict[str, Any]:
        self._first_page()
        while self._position >= len(self._records):
            if self._next_url is None or self._closed:
                raise StopIteration
            ahead, self._ahead = self._ahead, None
            if ahead is None:
                self._take(self._fetch(self._next_url))
            else:
                self._take(ahead.result())
        record = self._records[self._position]
        self._position += 1
        if self._ahead is None and self._next_url is not None and not self._closed:
            next_url = self._next_url
            self._ahead = _PageFetch(lambda: self._fetch(next_url))
        return record

    def close(self) -> None:
        """Stop here: later pages are never fetched (one in flight is waited for)."""
        self._closed = True
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            ahead.wait()
        self._records, self._next_url = [], None

    def _first_page(self) -> None:
        if self._total_size is None and not self._closed:
            self._take(self._fetch(None))

    def _fetch(self, next_url: str | None) -> dict[str, Any]:
        """One page: the query itself, or its `nextRecordsUrl` (compact JSON, no pretty-print).

        Errors read as simple-salesforce's did once translated (`query: ...`).
        """
        client = self._client
        if next_url is None:
            name = "query"
            url = client.base_url + ("queryAll/" if self._include_deleted else "query/")
            params: dict[str, str] | None = {"q": self._soql}
        else:
            name = "query_more"
            url = client.instance_url + next_url
            params = None
        response = client.session.get(url, params=params, headers=self._headers)
        if response.status_code >= 300:
            try:
                body: Any = response.json()
            except ValueError:
                body = response.text
            response.close()
            raise SalesforceError.from_body(response.status_code, body, name)
        page = response.json()
        if not isinstance(page, dict):
            raise SalesforceError(
                response.status_code, "UNEXPECTED_RESPONSE", f"{name}: not a query result"
            )
        return page

    def _take(self, page: Mapping[str, Any]) -> None:
        if self._total_size is None:
            self._total_size = int(page.get("totalSize", 0))
        self._records = list(page.get("records") or [])
        self._position = 0
        self._next_url = None if page.get("done", True) else page.get("nextRecordsUrl")


class SalesforceClient:
    """One Salesforce org connection for one run; see docs/clients.md for the contract."""

    def __init__(self, settings: SalesforceSettings) -> None:
        self.settings = settings
        self.retry_policy = RetryPolicy(
            max_retries=settings.max_retries,
            max_seconds=settings.retry_max_seconds,
            base_delay=settings.retry_base_delay,
        )
        self.session = requests.Session()
        adapter = _SalesforceAdapter(self)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        if settings.ca_bundle:
            self.session.verify = settings.ca_bundle
        self._tokens = _TokenSource(settings, self.session)
        self._quota = _QuotaGuard(settings.quota_percent_total, settings.quota_percent_per_run)
        self._calls = 0
        self._calls_lock = threading.Lock()
        self._last_date: datetime | None = None
        self._describes: dict[str, dict[str, Any]] = {}
        self._sf: simple_salesforce.Salesforce | None = None
        self._sf_generation = -1
        self._version_checked = False
        self._version_lock = threading.Lock()

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SalesforceClient:
        return cls(SalesforceSettings.from_config(config))

    def __repr__(self) -> str:
        return f"<SalesforceClient {self.settings.login_url} v{self.api_version}>"

    # --- bookkeeping used by the adapter ------------------------------------------------
    @property
    def calls_made(self) -> int:
        """API calls this client made in this process (retries and replays included)."""
        return self._calls

    def _count_call(self) -> None:
        with self._calls_lock:
            self._calls += 1

    def _observe_date(self, header: str | None) -> None:
        when = http_date(header)
        if when is not None:
            self._last_date = when

    @property
    def api_usage(self) -> tuple[int, int] | None:
        """(used, limit) from the last Sforce-Limit-Info header, if any."""
        if self._quota.limit is None or self._quota.used is None:
            return None
        return self._quota.used, self._quota.limit

    def _check_api_version(self, path: str, response: requests.Response) -> None:
        """After a 404 under this client's version: is `api_version` one the org serves?

        Salesforce answers every call of a version it does not serve with 404 NOT_FOUND,
        which reads like a missing record. Only on a 404 (so the normal path costs nothing),
        once per client, the versions resource (no API call for Salesforce) is asked; a
        version it does not list raises ConfigurationError naming the setting.
        """
        if not path.startswith(f"/services/data/v{self.api_version}/"):
            return
        with self._version_lock:  # the flag also stops the versions call checking itself
            checked, self._version_checked = self._version_checked, True
        if checked:
            return
        listing = self.session.get(f"{self.instance_url}/services/data/")
        try:
            offered = [str(v["version"]) for v in listing.json()]
        except (ValueError, TypeError, KeyError):
            return  # no readable list: leave the 404 as Salesforce sent it
        finally:
            listing.close()
        if offered and self.api_version not in offered:
            response.close()
            highest = max(offered, key=_version_key)
            raise ConfigurationError(
                f"setting 'api_version' is {self.api_version}, a Salesforce API version this "
                f"org does not serve (it answers 404 NOT_FOUND); the highest it offers is "
                f"{highest}"
            )

    # --- endpoints ---------------------------------------------------------------------
    @property
    def api_version(self) -> str:
        return self.settings.api_version

    @property
    def instance_url(self) -> str:
        return self._tokens.current().instance_url

    @property
    def base_url(self) -> str:
        return f"{self.instance_url}/services/data/v{self.api_version}/"

    @property
    def simple(self) -> simple_salesforce.Salesforce:
        """A simple-salesforce client over this client's session (token kept current)."""
        token = self._tokens.current()
        if self._sf is None or self._sf_generation != token.generation:
            import simple_salesforce  # describeGlobal, limits and COUNT() queries only

            self._sf = simple_salesforce.Salesforce(
                instance_url=token.instance_url,
                session_id=token.value,
                session=self.session,
                version=self.api_version,
                object_pairs_hook=dict,
            )
            self._sf_generation = token.generation
        return self._sf

    def _request(self, method: str, path_or_url: str, **kwargs: Any) -> requests.Response:
        """One API call (retried by the adapter); 4xx/5xx left become SalesforceError."""
        url = path_or_url if "://" in path_or_url else self.base_url + path_or_url.lstrip("/")
        response = self.session.request(method, url, **kwargs)
        if response.status_code >= 400:
            try:
                body: Any = response.json()
            except ValueError:
                body = response.text[:500]
            response.close()
            raise SalesforceError.from_body(
                response.status_code, body, f"{method} {urlsplit(url).path}"
            )
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    # --- reads -------------------------------------------------------------------------
    def query(
        self, soql: str, include_deleted: bool = False, batch_size: int | None = None
    ) -> QueryResult:
        """Records of a SOQL query, page by page (follows nextRecordsUrl; bounded memory).

        Lazy: nothing is sent until the result is iterated or its `total_size` is read.
        """
        return QueryResult(self, soql, include_deleted, batch_size)

    def query_count(self, soql: str, include_deleted: bool = False) -> int:
        """totalSize of a `SELECT COUNT() ...` query."""
        try:
            result = self.simple.query(soql, include_deleted=include_deleted)
        except _simple_error() as exc:
            raise _translate(exc) from None
        return int(result["totalSize"])

    def describe_global(self) -> dict[str, Any]:
        try:
            return dict(self.simple.describe() or {})
        except _simple_error() as exc:
            raise _translate(exc) from None

    def limits(self) -> dict[str, Any]:
        try:
            return dict(self.simple.limits())
        except _simple_error() as exc:
            raise _translate(exc) from None

    def describe(self, sobjects: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Describe results by object name; composite/batch 25 a call, cached per client."""
        names = list(dict.fromkeys(sobjects))
        for name in names:
            if not _SOBJECT_NAME.match(name):
                raise ValueError(f"not an sObject name: {name!r}")
        missing = [n for n in names if n not in self._describes]
        for start in range(0, len(missing), DESCRIBE_BATCH_SIZE):
            chunk = missing[start : start + DESCRIBE_BATCH_SIZE]
            body = {
                "haltOnError": False,
                "batchRequests": [
                    {
                        "method": "GET",
                        "url": f"/services/data/v{self.api_version}/sobjects/{n}/describe",
                    }
                    for n in chunk
                ],
            }
            answer = self._json("POST", "composite/batch", json=body)
            results = answer.get("results") if isinstance(answer, dict) else None
            if not isinstance(results, list) or len(results) != len(chunk):
                raise SalesforceError(
                    200, "UNEXPECTED_RESPONSE", "composite/batch returned the wrong result count"
                )
            for name, result in zip(chunk, results, strict=True):
                status = int(result.get("statusCode", 0))
                if status != 200:
                    raise SalesforceError.from_body(
                        status, result.get("result"), f"describe {name}"
                    )
                self._describes[name] = result["result"]
        return {n: self._describes[n] for n in names}

    def server_time(self) -> datetime:
        """The org's clock, from the last response's Date header.

        Before any API response, the login's Date (a login is needed anyway and is no API
        call); the versions resource, which Salesforce does not count either, only when the
        login answer had no Date.
        """
        if self._last_date is None:
            self._tokens.current()
            self._last_date = self._tokens.last_date
        if self._last_date is None:
            self._request("GET", f"{self.instance_url}/services/data/").close()
        if self._last_date is None:
            raise SalesforceError(0, "NO_DATE_HEADER", "Salesforce sent no Date header")
        return self._last_date

    # --- Bulk API 2.0 ------------------------------------------------------------------
    def bulk_query(
        self, soql: str, include_deleted: bool = False, page_size: int = BULK_PAGE_SIZE
    ) -> Iterator[dict[str, str]]:
        """Rows of a Bulk 2.0 query job as CSV strings ("" = null), streamed page by page."""
        job = self._json(
            "POST",
            "jobs/query",
            json={
                "operation": "queryAll" if include_deleted else "query",
                "query": soql,
                "contentType": "CSV",
                "columnDelimiter": "COMMA",
                "lineEnding": "LF",
            },
        )
        job_id = str(job["id"])
        if not _RECORD_ID.match(job_id):  # a URL path segment from the answer
            raise SalesforceError(200, "UNEXPECTED_RESPONSE", f"not a job id: {job_id[:40]!r}")
        self._wait_for_bulk_job(job_id)
        csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # long text areas
        locator: str | None = None
        page = 0
        while True:
            params: dict[str, Any] = {"maxRecords": page_size}
            if locator:
                params["locator"] = locator
            response = self._request(
                "GET",
                f"jobs/query/{job_id}/results",
                params=params,
                headers={"Accept": "text/csv", "Accept-Encoding": "gzip"},
                stream=True,
            )
            page += 1
            with response:
                expected = response.headers.get("Sforce-NumberOfRecords")
                count = 0
                yield_rows = self._csv_rows(response)
                for row in yield_rows:
                    count += 1
                    yield row
                if expected is not None and int(expected) != count:
                    raise SalesforceError(
                        200,
                        "RECORD_COUNT_MISMATCH",
                        f"Bulk job {job_id} page {page}: Sforce-NumberOfRecords says "
                        f"{expected}, the CSV held {count} rows",
                    )
                locator = response.headers.get("Sforce-Locator")
            if not locator or locator == "null":
                return

    @staticmethod
    def _csv_rows(response: requests.Response) -> Iterator[dict[str, str]]:
        raw: Any = response.raw
        raw.decode_content = True  # gunzip as we read
        raw.auto_close = False  # else urllib3 closes at EOF while the wrapper still reads
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        reader = csv.reader(text)
        header = next(reader, None)
        if header is None:
            return
        for values in reader:
            if values:
                yield dict(zip(header, values, strict=False))

    bulk_poll_initial = 0.25
    bulk_poll_max = 10.0
    progress_interval = PROGRESS_INTERVAL_SECONDS  # between progress lines of a polled job

    def _wait_for_bulk_job(self, job_id: str) -> None:
        deadline = time.monotonic() + self.settings.bulk_timeout
        delay = self.bulk_poll_initial
        progress = JobProgress(log, "Bulk 2.0 query job", job_id, self.progress_interval)
        while True:
            info = self._json("GET", f"jobs/query/{job_id}")
            state = str(info.get("state"))
            progress.polled(
                state,
                done=state in ("JobComplete", "Failed", "Aborted"),
                records_processed=int(info.get("numberRecordsProcessed") or 0),
            )
            if state == "JobComplete":
                return
            if state in ("Failed", "Aborted"):
                raise SalesforceError(
                    200,
                    f"BULK_JOB_{state.upper()}",
                    f"Bulk query job {job_id} ended {state}: "
                    f"{info.get('errorMessage') or 'no reason given'}",
                )
            if time.monotonic() + delay > deadline:
                self._json("PATCH", f"jobs/query/{job_id}", json={"state": "Aborted"})
                raise SalesforceError(
                    0,
                    "BULK_JOB_TIMEOUT",
                    f"Bulk query job {job_id} still {state} after "
                    f"{self.settings.bulk_timeout:g} s, so it was aborted; raise the setting "
                    "bulk_timeout for larger extracts",
                )
            sleep(delay)
            delay = min(self.bulk_poll_max, delay * 2)

    # --- writes (sObject Collections) --------------------------------------------------
    def insert(
        self, sobject: str, records: list[dict[str, Any]], all_or_none: bool = False
    ) -> list[RecordResult]:
        typed = _typed(sobject, records)
        return self._collections("POST", "composite/sobjects", typed, all_or_none)

    def update(
        self, sobject: str, records: list[dict[str, Any]], all_or_none: bool = False
    ) -> list[RecordResult]:
        return self._update(_typed(sobject, records), all_or_none)

    def update_mixed(
        self, records: list[dict[str, Any]], all_or_none: bool = False
    ) -> list[RecordResult]:
        """Update records of several object types together, 200 a call whatever their types.

        Each record names its type as Salesforce does, `"attributes": {"type": "Lead"}`, and
        carries its `Id`. The input is grouped by type before it is cut into calls
        (Salesforce processes a call in chunks of consecutive same-type records, at most 10
        chunks), and a call never holds more than 10 types; results keep the input positions
        (`RecordResult.index`) and come back in input order.
        """
        typed: list[tuple[int, str, dict[str, Any]]] = []
        for i, record in enumerate(records):
            attributes = record.get("attributes")
            sobject = attributes.get("type") if isinstance(attributes, Mapping) else None
            if not isinstance(sobject, str) or not _SOBJECT_NAME.match(sobject):
                raise ValueError(f"update_mixed: record {i} has no attributes.type sObject name")
            typed.append((i, sobject, record))
        # Stable grouping by type (first-seen order): one chunk per type in each call.
        order = {t: n for n, t in enumerate(dict.fromkeys(t for _, t, _ in typed))}
        typed.sort(key=lambda entry: order[entry[1]])
        return self._update(typed, all_or_none)

    def _update(
        self, typed: list[tuple[int, str, dict[str, Any]]], all_or_none: bool
    ) -> list[RecordResult]:
        for i, _, record in typed:
            if not (record.get("Id") or record.get("id")):
                raise ValueError(f"update: record {i} has no Id")
        return self._collections("PATCH", "composite/sobjects", typed, all_or_none)

    def upsert(
        self,
        sobject: str,
        external_id_field: str,
        records: list[dict[str, Any]],
        all_or_none: bool = False,
    ) -> list[RecordResult]:
        if not _SOBJECT_NAME.match(external_id_field):
            raise ValueError(f"not a field name: {external_id_field!r}")
        if not _SOBJECT_NAME.match(sobject):  # both are URL path segments
            raise ValueError(f"not an sObject name: {sobject!r}")
        path = f"composite/sobjects/{sobject}/{external_id_field}"
        return self._collections("PATCH", path, _typed(sobject, records), all_or_none)

    def _collections(
        self,
        method: str,
        path: str,
        typed: list[tuple[int, str, dict[str, Any]]],
        all_or_none: bool,
    ) -> list[RecordResult]:
        """Send (input index, type, record) entries in calls of 200 and at most 10 types."""
        for _, sobject, _ in typed:
            if not _SOBJECT_NAME.match(sobject):
                raise ValueError(f"not an sObject name: {sobject!r}")
        results: list[RecordResult] = []
        for chunk in _collection_chunks(typed):
            first, last = chunk[0][0], chunk[-1][0]
            types = ", ".join(dict.fromkeys(t for _, t, _ in chunk))
            payload = {
                "allOrNone": all_or_none,
                "records": [
                    {**{k: v for k, v in r.items() if k != "attributes"}, "attributes": {"type": t}}
                    for _, t, r in chunk
                ],
            }
            try:
                answer = self._json(method, path, json=payload)
            except UncertainWriteError as exc:
                raise UncertainWriteError(
                    f"{exc.message} ({len(chunk)} {types} records, input positions "
                    f"{first}-{last}; {len(results)} earlier records have outcomes)",
                    sorted(results, key=lambda r: r.index),
                ) from None
            except QuotaExceededError:
                raise
            except SalesforceError as exc:
                if exc.status != 400:
                    raise
                # The whole chunk was rejected on its merits: every record in it failed.
                error = {"statusCode": exc.error_code, "message": exc.message, "fields": exc.fields}
                results.extend(RecordResult(i, None, False, None, [error]) for i, _, _ in chunk)
                continue
            if not isinstance(answer, list) or len(answer) != len(chunk):
                raise SalesforceError(
                    200,
                    "UNEXPECTED_RESPONSE",
                    f"{method} {path} returned {len(answer) if isinstance(answer, list) else 0} "
                    f"results for {len(chunk)} records",
                )
            for (index, _, _), item in zip(chunk, answer, strict=True):
                results.append(
                    RecordResult(
                        index=index,
                        id=item.get("id"),
                        success=bool(item.get("success")),
                        created=item.get("created") if "created" in item else None,
                        errors=list(item.get("errors") or []),
                    )
                )
        results.sort(key=lambda r: r.index)
        return results

    def close(self) -> None:
        self.session.close()


def _version_key(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        return (-1,)


def _typed(sobject: str, records: list[dict[str, Any]]) -> list[tuple[int, str, dict[str, Any]]]:
    return [(i, sobject, r) for i, r in enumerate(records)]


def _collection_chunks(
    typed: list[tuple[int, str, dict[str, Any]]],
) -> Iterator[list[tuple[int, str, dict[str, Any]]]]:
    """Consecutive calls of at most 200 records and at most 10 runs of one type."""
    chunk: list[tuple[int, str, dict[str, Any]]] = []
    runs = 0
    for entry in typed:
        new_run = not chunk or chunk[-1][1] != entry[1]
        if chunk and (len(chunk) == COLLECTION_SIZE or (new_run and runs == COLLECTION_TYPES)):
            yield chunk
            chunk, runs, new_run = [], 0, True
        chunk.append(entry)
        runs += 1 if new_run else 0
    if chunk:
        yield chunk


def _scheme(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else ""
