"""REST query paging: `QueryResult`, a lazy iterator over a SOQL query's records.

It follows `nextRecordsUrl` one page ahead of the reader, over a `SalesforceApi` (the
client's session, so auth, retries, quota and call counting are the adapter's).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from .errors import SalesforceError
from .salesforce_api import SalesforceApi


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
        api: SalesforceApi,
        soql: str,
        include_deleted: bool = False,
        batch_size: int | None = None,
    ) -> None:
        self._api = api
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
        api = self._api
        if next_url is None:
            name = "query"
            url = api.base_url + ("queryAll/" if self._include_deleted else "query/")
            params: dict[str, str] | None = {"q": self._soql}
        else:
            name = "query_more"
            url = api.instance_url + next_url
            params = None
        response = api.request("GET", url, context=name, params=params, headers=self._headers)
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
