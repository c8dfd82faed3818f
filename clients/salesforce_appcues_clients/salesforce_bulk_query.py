"""Bulk API 2.0 query jobs: create, poll, stream the CSV result pages (locator paging, gzip).

Every request goes through a `SalesforceApi` (salesforce_api.py), as Bulk ingest's do
(bulk_ingest.py): auth, session refresh, retries, the quota guard and call counting are the
client's adapter's. `csv_rows` reads a streamed Bulk CSV answer for both.
"""

from __future__ import annotations

import csv
import io
import logging
import sys
import time
from collections.abc import Iterator
from typing import Any

import requests

from .errors import SalesforceError
from .progress import PROGRESS_INTERVAL_SECONDS, JobProgress
from .salesforce_api import RECORD_ID, SalesforceApi
from .transport import sleep

log = logging.getLogger(__name__)

BULK_PAGE_SIZE = 50_000


def csv_reader(response: requests.Response) -> Iterator[list[str]]:
    """A streamed Bulk CSV answer's rows as lists of strings, gunzipped as read (a leading
    byte-order mark is not part of the first column's name)."""
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # long text areas
    raw: Any = response.raw
    raw.decode_content = True  # gunzip as we read
    raw.auto_close = False  # else urllib3 closes at EOF while the wrapper still reads
    return csv.reader(io.TextIOWrapper(raw, encoding="utf-8-sig", newline=""))


def csv_rows(response: requests.Response) -> Iterator[dict[str, str]]:
    """The rows of a streamed Bulk CSV answer as dicts of strings."""
    reader = csv_reader(response)
    header = next(reader, None)
    if header is None:
        return
    for values in reader:
        if values:
            yield dict(zip(header, values, strict=False))


class BulkQuery:
    """One Bulk 2.0 query job's life: `rows(soql)` creates it, waits for it, streams it."""

    def __init__(
        self,
        api: SalesforceApi,
        bulk_timeout: float,
        poll_initial: float = 0.25,
        poll_max: float = 10.0,
        progress_interval: float = PROGRESS_INTERVAL_SECONDS,
    ) -> None:
        self.api = api
        self.bulk_timeout = bulk_timeout
        self.poll_initial = poll_initial
        self.poll_max = poll_max
        self.progress_interval = progress_interval

    def rows(
        self, soql: str, include_deleted: bool = False, page_size: int = BULK_PAGE_SIZE
    ) -> Iterator[dict[str, str]]:
        """Rows of a Bulk 2.0 query job as CSV strings ("" = null), streamed page by page."""
        job = self.api.json(
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
        if not RECORD_ID.match(job_id):  # a URL path segment from the answer
            raise SalesforceError(200, "UNEXPECTED_RESPONSE", f"not a job id: {job_id[:40]!r}")
        self.wait(job_id)
        locator: str | None = None
        page = 0
        while True:
            params: dict[str, Any] = {"maxRecords": page_size}
            if locator:
                params["locator"] = locator
            response = self.api.request(
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
                for row in csv_rows(response):
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

    def wait(self, job_id: str) -> None:
        """Polls until the job is complete; Failed/Aborted, or still running after
        `bulk_timeout` (then aborted), raise SalesforceError."""
        deadline = time.monotonic() + self.bulk_timeout
        delay = self.poll_initial
        progress = JobProgress(log, "Bulk 2.0 query job", job_id, self.progress_interval)
        while True:
            info = self.api.json("GET", f"jobs/query/{job_id}")
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
                self.api.json("PATCH", f"jobs/query/{job_id}", json={"state": "Aborted"})
                raise SalesforceError(
                    0,
                    "BULK_JOB_TIMEOUT",
                    f"Bulk query job {job_id} still {state} after "
                    f"{self.bulk_timeout:g} s, so it was aborted; raise the setting "
                    "bulk_timeout for larger extracts",
                )
            sleep(delay)
            delay = min(self.poll_max, delay * 2)
