"""Salesforce access: `SalesforceClient`, the one object the plugins hold.

The client wires the parts together and delegates; each concern lives in a module of its own:

| module | holds |
|---|---|
| salesforce_auth.py | the OAuth flows (`TokenSource`) and the access token |
| salesforce_quota.py | the quota guard (`Sforce-Limit-Info`) and the API call counter |
| salesforce_transport.py | the requests adapter: token, retries, session refresh, counting, clock |
| salesforce_api.py | one API call: URLs, error answers -> `SalesforceError` (once), version check |
| salesforce_query.py | REST query paging (`QueryResult`) |
| salesforce_bulk_query.py | Bulk 2.0 query jobs |
| salesforce_collections.py | sObject Collections writes (`RecordResult`) |
| salesforce_composite.py | several collections operations in one Composite call (`CollectionOp`) |
| bulk_ingest.py | Bulk 2.0 ingest jobs (`BulkIngest(client)`) |

simple-salesforce serves `describe_global`, `limits`, `query_count` and `simple` (any other
REST resource, over this client's session: same token, retries, quota and counting); it is
imported on first use. Hand-written where it streams too little or costs a run more than it
gives: query paging (its import alone took ~0.25 s), Bulk 2.0, describes, collections.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import requests

from .errors import SalesforceError
from .progress import PROGRESS_INTERVAL_SECONDS
from .salesforce_api import SOBJECT_NAME, SalesforceApi
from .salesforce_auth import TokenSource
from .salesforce_bulk_query import BULK_PAGE_SIZE, BulkQuery
from .salesforce_collections import COLLECTION_SIZE, Collections, RecordResult
from .salesforce_composite import CollectionOp, Composite
from .salesforce_query import QueryResult
from .salesforce_quota import CallCounter, QuotaGuard
from .salesforce_transport import SalesforceAdapter, ServerClock
from .settings import SalesforceSettings
from .transport import RetryPolicy

if TYPE_CHECKING:  # imported where first used: a run that needs neither skips ~0.2 s
    import simple_salesforce
    import simple_salesforce.exceptions

# The names the plugins import from here, wherever they are defined.
__all__ = [
    "BULK_PAGE_SIZE",
    "COLLECTION_SIZE",
    "QueryResult",
    "RecordResult",
    "SalesforceClient",
]

DESCRIBE_BATCH_SIZE = 25  # composite/batch maximum subrequests


class SalesforceClient:
    """One Salesforce org connection for one run; see docs/clients.md for the contract."""

    bulk_poll_initial = 0.25
    bulk_poll_max = 10.0
    progress_interval = PROGRESS_INTERVAL_SECONDS  # between progress lines of a polled job

    def __init__(self, settings: SalesforceSettings) -> None:
        self.settings = settings
        self.retry_policy = RetryPolicy(
            max_retries=settings.max_retries,
            max_seconds=settings.retry_max_seconds,
            base_delay=settings.retry_base_delay,
        )
        self.session = requests.Session()
        if settings.ca_bundle:
            self.session.verify = settings.ca_bundle
        self._tokens = TokenSource(settings, self.session)
        self._quota = QuotaGuard(settings.quota_percent_total, settings.quota_percent_per_run)
        self._calls = CallCounter()
        self._clock = ServerClock()
        self.api = SalesforceApi(settings.api_version, self.session, self._tokens)
        adapter = SalesforceAdapter(
            settings,
            self.retry_policy,
            tokens=self._tokens,
            quota=self._quota,
            calls=self._calls,
            clock=self._clock,
            on_not_found=self.api.check_api_version,
        )
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self._collections = Collections(self.api)
        self._composite = Composite(self.api)
        self._describes: dict[str, dict[str, Any]] = {}
        self._sf: simple_salesforce.Salesforce | None = None
        self._sf_generation = -1

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SalesforceClient:
        return cls(SalesforceSettings.from_config(config))

    def __repr__(self) -> str:
        return f"<SalesforceClient {self.settings.login_url} v{self.api_version}>"

    # --- bookkeeping -------------------------------------------------------------------
    @property
    def calls_made(self) -> int:
        """API calls this client made in this process (retries and replays included)."""
        return self._calls.made

    @property
    def api_usage(self) -> tuple[int, int] | None:
        """(used, limit) from the last Sforce-Limit-Info header, if any."""
        if self._quota.limit is None or self._quota.used is None:
            return None
        return self._quota.used, self._quota.limit

    # --- endpoints ---------------------------------------------------------------------
    @property
    def api_version(self) -> str:
        return self.settings.api_version

    @property
    def instance_url(self) -> str:
        return self.api.instance_url

    @property
    def base_url(self) -> str:
        return self.api.base_url

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

    # --- reads -------------------------------------------------------------------------
    def query(
        self, soql: str, include_deleted: bool = False, batch_size: int | None = None
    ) -> QueryResult:
        """Records of a SOQL query, page by page (follows nextRecordsUrl; bounded memory).

        Lazy: nothing is sent until the result is iterated or its `total_size` is read.
        """
        return QueryResult(self.api, soql, include_deleted, batch_size)

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
            if not SOBJECT_NAME.match(name):
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
            answer = self.api.json("POST", "composite/batch", json=body)
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
        if self._clock.last is None:
            self._tokens.current()
            self._clock.last = self._tokens.last_date
        if self._clock.last is None:
            self.api.request("GET", f"{self.instance_url}/services/data/").close()
        if self._clock.last is None:
            raise SalesforceError(0, "NO_DATE_HEADER", "Salesforce sent no Date header")
        return self._clock.last

    # --- Bulk API 2.0 query (ingest: bulk_ingest.py) ------------------------------------
    def bulk_query(
        self, soql: str, include_deleted: bool = False, page_size: int = BULK_PAGE_SIZE
    ) -> Iterator[dict[str, str]]:
        """Rows of a Bulk 2.0 query job as CSV strings ("" = null), streamed page by page."""
        job = BulkQuery(
            self.api,
            self.settings.bulk_timeout,
            poll_initial=self.bulk_poll_initial,
            poll_max=self.bulk_poll_max,
            progress_interval=self.progress_interval,
        )
        return job.rows(soql, include_deleted, page_size)

    # --- writes (sObject Collections) --------------------------------------------------
    def insert(
        self, sobject: str, records: list[dict[str, Any]], all_or_none: bool = False
    ) -> list[RecordResult]:
        return self._collections.insert(sobject, records, all_or_none)

    def update(
        self, sobject: str, records: list[dict[str, Any]], all_or_none: bool = False
    ) -> list[RecordResult]:
        return self._collections.update(sobject, records, all_or_none)

    def update_mixed(
        self, records: list[dict[str, Any]], all_or_none: bool = False
    ) -> list[RecordResult]:
        """Update records of several object types together, 200 a call whatever their types
        (each names its type in `attributes.type`; see Collections.update_mixed)."""
        return self._collections.update_mixed(records, all_or_none)

    def upsert(
        self,
        sobject: str,
        external_id_field: str,
        records: list[dict[str, Any]],
        all_or_none: bool = False,
    ) -> list[RecordResult]:
        return self._collections.upsert(sobject, external_id_field, records, all_or_none)

    def write_together(self, ops: list[CollectionOp]) -> list[list[RecordResult]]:
        """Several collections operations in as few Composite calls as possible (5
        collections of 200 a call); each operation's results in its input order."""
        return self._composite.send(ops)

    def close(self) -> None:
        self.session.close()


def _simple_error() -> type[simple_salesforce.exceptions.SalesforceError]:
    """simple-salesforce's error base (imported by then: the `simple` client was built)."""
    from simple_salesforce.exceptions import SalesforceError as SimpleSalesforceError

    return SimpleSalesforceError


def _translate(exc: simple_salesforce.exceptions.SalesforceError) -> SalesforceError:
    """simple-salesforce's error (whose text includes URLs and bodies) as ours, scrubbed."""
    return SalesforceError.from_body(exc.status, exc.content, str(exc.resource_name or ""))
