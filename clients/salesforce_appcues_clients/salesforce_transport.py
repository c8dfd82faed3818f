"""The requests transport adapter every Salesforce request goes through.

It adds the bearer token, retries transient failures (the loop both clients share,
`transport.send_with_retries`, with `SALESFORCE_WRITES`), refreshes an expired session once
and replays, counts API calls, keeps the org's clock and enforces the quota guard. Its
collaborators are handed to it (token source, quota guard, call counter, clock, the 404 check),
never the client. simple-salesforce's requests get all of that too: it runs over our session.

Write safety: a request is replayed after a failure only when a replay cannot duplicate
data. GET/PATCH/PUT/DELETE, composite/batch describes and Bulk query and ingest job creation
are replay-safe (an ingest job holds no data before its upload), and so is a composite whose
subrequests are all PATCH/GET (`composite_is_idempotent`). Inserts (POST
composite/sobjects) are retried only when nothing was sent (connection refused, connect
timeout) or Salesforce said it did not process them (429, 503); any other failure after
sending raises `UncertainWriteError` instead of risking a duplicate. Upserts by external id
are idempotent and retried like reads.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from .errors import RetriesExhaustedError, SalesforceError
from .salesforce_auth import AccessToken, TokenSource
from .salesforce_quota import CallCounter, QuotaGuard
from .settings import SalesforceSettings
from .transport import SALESFORCE_WRITES, Backoff, RetryPolicy, http_date, send_with_retries

log = logging.getLogger(__name__)

_API_PATH = re.compile(r"^/services/(data|async)/")
_REPLAY_SAFE_POSTS = (
    re.compile(r"/composite/batch/?$"),  # our batches only hold GET describes
    re.compile(r"/jobs/query/?$"),  # a duplicate query job wastes a job, never data
    re.compile(r"/jobs/ingest/?$"),  # an ingest job holds no data until its upload
    re.compile(r"^/services/oauth2/token$"),
)


_COMPOSITE = re.compile(r"/services/data/v[\d.]+/composite/?$")


def is_replay_safe(method: str, path: str, body: bytes | str | None = None) -> bool:
    if method in ("GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"):
        return True
    if _COMPOSITE.search(path):
        return composite_is_idempotent(body)
    return any(p.search(path) for p in _REPLAY_SAFE_POSTS)


def composite_is_idempotent(body: bytes | str | None) -> bool:
    """A composite whose subrequests are all GET/PATCH/PUT/DELETE (upserts by external id,
    updates of absolute values) may be resent; one with a POST (an insert) may not."""
    try:
        parsed = json.loads(body or b"")
    except (TypeError, ValueError):
        return False
    subs = parsed.get("compositeRequest") if isinstance(parsed, dict) else None
    if not isinstance(subs, list) or not subs:
        return False
    return all(
        isinstance(s, dict)
        and str(s.get("method", "")).upper() in ("GET", "PATCH", "PUT", "DELETE")
        for s in subs
    )


def error_code(response: requests.Response) -> str:
    """The `errorCode` of a REST error answer ("" if none)."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return str(body[0].get("errorCode", ""))
    return ""


class ServerClock:
    """The org's clock: the Date header of the last answer (login included)."""

    def __init__(self) -> None:
        self.last: datetime | None = None

    def observe(self, header: str | None) -> None:
        when = http_date(header)
        if when is not None:
            self.last = when


class SalesforceAdapter(HTTPAdapter):
    """Auth, retries, session refresh, call counting, the clock and the quota guard."""

    def __init__(
        self,
        settings: SalesforceSettings,
        retry_policy: RetryPolicy,
        tokens: TokenSource,
        quota: QuotaGuard,
        calls: CallCounter,
        clock: ServerClock,
        on_not_found: Callable[[str, requests.Response], None],
    ) -> None:
        """`on_not_found(path, response)` sees a 404 of an API call (the version check)."""
        super().__init__(pool_connections=4, pool_maxsize=20, max_retries=0)
        self.settings = settings
        self.retry_policy = retry_policy
        self.tokens = tokens
        self.quota = quota
        self.calls = calls
        self.clock = clock
        self.on_not_found = on_not_found

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        settings = self.settings
        if timeout is None:
            timeout = settings.request_timeout
        if settings.ca_bundle:
            verify = settings.ca_bundle  # the setting wins over REQUESTS_CA_BUNDLE
        method = (request.method or "GET").upper()
        path = urlsplit(request.url or "").path
        is_api = bool(_API_PATH.match(path))
        http_send = super().send
        token: AccessToken | None = None
        refreshed = False

        def attempt() -> requests.Response:
            nonlocal token
            if is_api:
                self.quota.check(self.calls.made)
                token = self.tokens.current()
                request.headers["Authorization"] = f"Bearer {token.value}"
            return http_send(
                request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=proxies
            )

        def failed(nothing_sent: bool) -> None:
            if is_api and not nothing_sent:
                self.calls.count()  # it may have reached Salesforce, which then counts it

        def answered(response: requests.Response) -> bool:
            """Bookkeeping of every answer; True replays at once after a session refresh."""
            nonlocal refreshed
            if is_api:
                self.calls.count()
                self.quota.observe(response.headers.get("Sforce-Limit-Info"))
            self.clock.observe(response.headers.get("Date"))
            status = response.status_code
            if (
                status == 401
                and is_api
                and token is not None
                and not refreshed
                and error_code(response) == "INVALID_SESSION_ID"
            ):
                response.close()
                log.info("Salesforce session expired; logging in again and replaying %s", path)
                self.tokens.refresh(token)
                refreshed = True
                return True
            if status == 403 and is_api and error_code(response) == "REQUEST_LIMIT_EXCEEDED":
                raise SalesforceError.from_body(status, response.json(), f"{method} {path}")
            return False

        def exhausted(response: requests.Response, attempts: int) -> Exception:
            status, code = response.status_code, error_code(response)
            return RetriesExhaustedError(
                f"Salesforce answered {status}{f' {code}' if code else ''} to {method} "
                f"{path}; gave up after {attempts} attempts"
            )

        response = send_with_retries(
            attempt,
            service="Salesforce",
            what=f"{method} {path}",
            replay_safe=is_replay_safe(method, path, request.body),
            writes=SALESFORCE_WRITES,
            backoff=Backoff(self.retry_policy, log),
            tls_setting="ca_bundle",
            exhausted=exhausted,
            on_failure=failed,
            on_answer=answered,
        )
        if response.status_code == 404 and is_api:
            self.on_not_found(path, response)
        return response
