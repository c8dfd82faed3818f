"""Bulk API 2.0 ingest jobs: create, stream the CSV up, close, poll, stream the results back.

Every request goes through the client's `SalesforceApi` (salesforce_api.py), as Bulk query's
do (salesforce_bulk_query.py), so auth, session refresh, retries, the quota guard and call
counting are the client's. One job costs create + upload + close + one poll per wait + one
call per result file read: about 5-6 calls (`JOB_CALLS`) for up to 100 MB of CSV.

Result files promise no order, so rows are matched back by a key column (an external id,
`Id`), or by the whole row's cells when there is none, never by position. A row that comes
back in no result file stays unconfirmed: the caller must not count it as written.
`failedResults` is read only when `successfulResults` did not account for every row (the
job's counters are not relied on: they only pace the polls).
"""

from __future__ import annotations

import csv
import io
import logging
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import SalesforceError
from .salesforce import SalesforceClient
from .salesforce_api import RECORD_ID, SOBJECT_NAME
from .salesforce_bulk_query import csv_reader
from .salesforce_collections import RecordResult
from .termination import STOP
from .transport import sleep

log = logging.getLogger(__name__)

# Salesforce's limit is 150 MB of base64-encoded upload; it advises at most 100 MB of CSV.
MAX_UPLOAD_BYTES = 100_000_000
# What one job usually costs: create, upload, close, two polls, successfulResults.
JOB_CALLS = 6
NULL = "#N/A"  # a CSV cell that sets a field to null (an empty cell leaves it alone)
_FINISHED = ("JobComplete", "Failed", "Aborted")
_PROCESSING = ("UploadComplete", "InProgress", *_FINISHED)
LINE_END = "\r\n"  # the jobs' lineEnding CRLF
_SEND_BYTES = 1 << 20  # the upload is written to the socket in pieces of about 1 MB


def error_code(text: str) -> str:
    """The code of an `sf__Error` cell: the text before its first `:`."""
    code = text.split(":", 1)[0].strip()
    return code or "UNKNOWN_ERROR"


def cell(value: Any, null: str = NULL) -> str:
    """A record value as a Bulk CSV cell; None and "" become `null`: `#N/A` (set to null, as
    collections do with a null or empty value) for updates, an empty cell (not set) for
    inserts and upserts, where leaving a field alone is the same on a new record and keeps
    a replayed upsert from relying on `#N/A` (documented for Bulk 1.0 only)."""
    if value is None or value == "":
        return null
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def row_cells(record: Mapping[str, Any], columns: list[str], null: str = NULL) -> list[str]:
    """A record as its CSV row: a column the record does not carry is an empty cell (left
    alone), so records with different fields share one job without nulling each other's."""
    return [cell(record[c], null) if c in record else "" for c in columns]


@dataclass
class IngestOutcome:
    """What the jobs of one `write` confirmed, refused and left open.

    `results` hold the rows Salesforce reported (successful or failed), `unconfirmed` the
    input positions of the rows it did not (unprocessed, never sent, or unmatched);
    `failure` says why some rows were not processed (a Failed/Aborted job), else None."""

    results: list[RecordResult] = field(default_factory=list)
    unconfirmed: list[int] = field(default_factory=list)
    failure: str | None = None


class _ReplayableBody:
    """An upload body requests streams chunked; a retry by the adapter iterates it afresh."""

    def __init__(self, chunks: Callable[[], Iterator[bytes]]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks()


class BulkIngest:
    """Bulk API 2.0 ingest through one SalesforceClient."""

    poll_initial = 0.25
    # The first poll waits for the rows at this rate (a floor under Bulk 2.0's usual pace):
    # a poll sooner sees a job barely started, one more API call for no news. A job of 2,500
    # rows or fewer is still asked about after `poll_initial`.
    poll_rows_per_second = 10_000.0
    poll_max = 10.0  # while the job shows no progress (queued), the wait doubles up to this
    poll_max_estimated = 120.0  # once it does, the next poll is at its estimated end
    # The first estimate is aimed just past that end: every second waited after the job
    # finished is a second of the run lost, and a miss costs one poll. Later estimates
    # (the pace wavered) keep a wider margin, so a miss rarely costs more than one poll.
    poll_margin_first = 1.1
    poll_margin = 1.25

    def __init__(self, client: SalesforceClient, max_upload_bytes: int = MAX_UPLOAD_BYTES) -> None:
        self.client = client
        self.api = client.api
        self.max_upload_bytes = max_upload_bytes

    # --- one write, in as many jobs as the upload limit needs ------------------------------
    def write(
        self,
        sobject: str,
        operation: str,
        records: Sequence[Mapping[str, Any]],
        key_field: str | None = None,
        external_id_field: str | None = None,
        on_job: Callable[[str, list[int]], None] | None = None,
        on_settled: Callable[[str, list[RecordResult]], None] | None = None,
    ) -> IngestOutcome:
        """Writes `records`; results carry their positions in `records` (`index`).

        `key_field` names the column that identifies a row in the result files (None: the
        whole row). `on_job(job_id, positions)` runs after a job is created and before its
        data is sent (a journal), `on_settled(job_id, its results)` once they are read. A
        stop request is honoured before each job and while one is polled (the job is
        then left running, for the journal's owner to settle)."""
        columns = list(dict.fromkeys(k for r in records for k in r if k != "attributes"))
        if key_field is not None and records:
            _key_column(columns, key_field)  # before any job exists
        null = null_cell(operation)
        outcome = IngestOutcome()
        for start, stop in self._slices(columns, records, null):
            positions = list(range(start, stop))
            if outcome.failure is not None:
                outcome.unconfirmed.extend(positions)
                continue
            STOP.checkpoint()
            job_id = self.create(sobject, operation, external_id_field)
            if on_job is not None:
                on_job(job_id, positions)
            try:
                self.upload(job_id, columns, records, positions, null)
                self.close(job_id)
            except SalesforceError:
                self.abort(job_id)  # Open: nothing of it was processed
                raise
            # Rows are keyed for matching while Salesforce processes them, not after.
            waiting = _waiting_rows(columns, records, positions, key_field, null)
            info = self.wait(job_id, len(positions))
            state = str(info.get("state"))
            log.info(
                "Bulk ingest job %s %s: %s of %d rows processed, %s failed, %s ms in Salesforce",
                job_id,
                state,
                info.get("numberRecordsProcessed"),
                len(positions),
                info.get("numberRecordsFailed"),
                info.get("totalProcessingTime"),
            )
            results = self._collect(job_id, columns, waiting, len(positions), key_field, outcome)
            outcome.results.extend(results)
            if state != "JobComplete":
                outcome.failure = (
                    f"Bulk ingest job {job_id} ({sobject} {operation}) ended {state}: "
                    f"{info.get('errorMessage') or 'no reason given'}"
                )
            if on_settled is not None:
                on_settled(job_id, results)
        outcome.results.sort(key=lambda r: r.index)
        return outcome

    def _slices(
        self, columns: list[str], records: Sequence[Mapping[str, Any]], null: str
    ) -> Iterator[tuple[int, int]]:
        """Consecutive row ranges whose CSV (header included) fits the upload limit."""
        header = len(_csv_text([columns]).encode())
        if header + _csv_bytes_bound(columns, records, null) <= self.max_upload_bytes:
            if records:  # the usual case, told without writing the CSV once more
                yield 0, len(records)
            return
        start, size = 0, header
        for i, record in enumerate(records):
            row = len(_csv_text([row_cells(record, columns, null)]).encode())
            if header + row > self.max_upload_bytes:
                raise SalesforceError(
                    0,
                    "EXCEEDED_MAX_SIZE_REQUEST",
                    f"row {i} alone is {row} bytes of CSV, over the upload limit",
                )
            if i > start and size + row > self.max_upload_bytes:
                yield start, i
                start, size = i, header
            size += row
        if start < len(records):
            yield start, len(records)

    # --- the job's calls -----------------------------------------------------------------
    def create(self, sobject: str, operation: str, external_id_field: str | None = None) -> str:
        if not SOBJECT_NAME.match(sobject):
            raise ValueError(f"not an sObject name: {sobject!r}")
        body = {
            "object": sobject,
            "operation": operation,
            "contentType": "CSV",
            "columnDelimiter": "COMMA",
            # CRLF: Python's csv quotes a cell holding a character of its line terminator,
            # so with LF a bare CR in a value went unquoted and split the row in two.
            "lineEnding": "CRLF",
        }
        if external_id_field:
            body["externalIdFieldName"] = external_id_field
        job = self.api.json("POST", "jobs/ingest", json=body)
        job_id = str(job.get("id") if isinstance(job, dict) else "")
        if not RECORD_ID.match(job_id):  # a URL path segment from the answer
            raise SalesforceError(200, "UNEXPECTED_RESPONSE", f"not a job id: {job_id[:40]!r}")
        return job_id

    def upload(
        self,
        job_id: str,
        columns: list[str],
        records: Sequence[Mapping[str, Any]],
        positions: list[int],
        null: str = NULL,
    ) -> None:
        """PUTs the rows as CSV, generated while it is sent (never one whole string)."""

        def chunks() -> Iterator[bytes]:
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator=LINE_END)
            writer.writerow(columns)
            for i in positions:
                writer.writerow(row_cells(records[i], columns, null))
                if buffer.tell() >= _SEND_BYTES:
                    yield buffer.getvalue().encode()
                    buffer.seek(0)
                    buffer.truncate()
            if buffer.tell():
                yield buffer.getvalue().encode()

        self.api.request(
            "PUT",
            f"jobs/ingest/{job_id}/batches",
            data=_ReplayableBody(chunks),
            headers={"Content-Type": "text/csv"},
        ).close()

    def close(self, job_id: str) -> None:
        try:
            self.api.json("PATCH", f"jobs/ingest/{job_id}", json={"state": "UploadComplete"})
        except SalesforceError as exc:
            # A replayed PATCH whose first try got through is refused (no longer Open).
            if exc.error_code != "INVALIDJOBSTATE" or self.state(job_id) not in _PROCESSING:
                raise

    def state(self, job_id: str) -> str:
        return str(self.info(job_id).get("state"))

    def info(self, job_id: str) -> dict[str, Any]:
        return dict(self.api.json("GET", f"jobs/ingest/{job_id}") or {})

    def abort(self, job_id: str) -> None:
        """Aborts a job not finished; a finished one (or a refusal) is left as it is."""
        try:
            self.api.json("PATCH", f"jobs/ingest/{job_id}", json={"state": "Aborted"})
        except SalesforceError as exc:
            log.warning("could not abort Bulk ingest job %s: %s", job_id, exc.message)

    def wait(self, job_id: str, rows: int = 0) -> dict[str, Any]:
        """Polls until the job is finished; after `bulk_timeout` it is aborted (what it
        processed by then stays, the rest is unprocessed). Unknown states keep polling.

        Each poll is an API call: the first waits for the rows at a brisk pace (see
        `poll_rows_per_second`), and once the job reports progress the next waits for the
        time the remaining `rows` should take at the rate seen so far (the counter is only
        a clock: whether it counts failed rows is not relied on)."""
        started = time.monotonic()
        deadline = started + self.client.settings.bulk_timeout
        delay = self.first_poll_delay(rows)
        if delay:
            _sleep_unless_stopped(min(delay, self.client.settings.bulk_timeout))
        estimates = 0
        before = 0  # rows processed at the previous poll
        while True:
            info = self.info(job_id)
            state = str(info.get("state"))
            if state in _FINISHED:
                return info
            processed = _number(info.get("numberRecordsProcessed"))
            elapsed = time.monotonic() - started
            delay = self.next_poll_delay(rows, processed, elapsed, delay, estimates, before)
            estimates += 0 < processed < rows
            before = processed
            STOP.checkpoint()  # stopped: the job runs on; its journal entry settles it
            if time.monotonic() >= deadline:
                log.warning(
                    "Bulk ingest job %s still %s after %g s: aborting it (raise the setting "
                    "bulk_timeout for larger loads)",
                    job_id,
                    state,
                    self.client.settings.bulk_timeout,
                )
                self.abort(job_id)
                return self.info(job_id)
            _sleep_unless_stopped(min(delay, deadline - time.monotonic()))

    def first_poll_delay(self, rows: int) -> float:
        """The wait before the first poll of a job of `rows` rows; none when the size is
        unknown (a journaled job of an earlier run is most likely finished)."""
        if rows <= 0:
            return 0.0
        return min(self.poll_max, max(self.poll_initial, rows / self.poll_rows_per_second))

    def next_poll_delay(
        self,
        rows: int,
        processed: int,
        elapsed: float,
        previous: float,
        estimates: int = 0,
        before: int = 0,
    ) -> float:
        """The wait before the next poll: the job's estimated end once it reports progress
        at the rate seen so far (with `poll_margin_first` the first time, `poll_margin`
        after: `estimates` is how many were made), else the last wait doubled. A job whose
        count has not moved since the previous poll (`before`) is stuck, not on pace: its
        estimate would shrink with every poll, so the last wait doubles instead."""
        if 0 < processed <= before < rows:
            return min(self.poll_max_estimated, max(self.poll_initial, previous * 2))
        if 0 < processed < rows:
            margin = self.poll_margin if estimates else self.poll_margin_first
            estimate = margin * elapsed * (rows - processed) / processed
            return min(self.poll_max_estimated, max(self.poll_initial, estimate))
        return min(self.poll_max, max(self.poll_initial, previous * 2))

    def result_rows(self, job_id: str, kind: str) -> Iterator[dict[str, str]]:
        """Rows of `successfulResults`, `failedResults` or `unprocessedrecords`, streamed."""
        table = self.result_table(job_id, kind)
        header = next(table, None)
        if header is None:
            return
        for values in table:
            yield dict(zip(header, values, strict=False))

    # --- matching results back to rows -----------------------------------------------------
    def _collect(
        self,
        job_id: str,
        columns: list[str],
        waiting: dict[tuple[str, ...], deque[int]],
        left: int,
        key_field: str | None,
        outcome: IngestOutcome,
    ) -> list[RecordResult]:
        """This job's results (`waiting`: the positions of its `left` rows by key, see
        `_waiting_rows`); the rows it did not report go to `outcome.unconfirmed`."""
        keys = [key_field] if key_field is not None else columns
        results: list[RecordResult] = []
        strays = 0
        for kind in ("successfulResults", "failedResults"):
            if not left:
                break  # every row is accounted for: the other file would hold none
            rows = self.result_table(job_id, kind)
            header = next(rows, None)
            if header is None:
                continue
            # Column positions by name, ignoring case (a column the file lacks reads "").
            at = {name.lower(): i for i, name in enumerate(header)}
            key_at = [at.get(k.lower(), -1) for k in keys]
            id_at = at.get("sf__id", -1)
            info_at = at.get("sf__created" if kind == "successfulResults" else "sf__error", -1)
            width = len(header)
            for values in rows:
                if len(values) < width:  # a short row: the missing cells read ""
                    values = values + [""] * (width - len(values))
                slot = waiting.get(tuple(values[i] if i >= 0 else "" for i in key_at))
                if not slot:
                    strays += 1
                    continue
                index = slot.popleft()
                left -= 1
                sf_id = (values[id_at] if id_at >= 0 else "") or None
                text = values[info_at] if info_at >= 0 else ""
                if kind == "successfulResults":
                    created = text.lower()
                    results.append(
                        RecordResult(index, sf_id, True, created == "true" if created else None)
                    )
                else:
                    error = {"statusCode": error_code(text), "message": text, "fields": []}
                    results.append(RecordResult(index, sf_id, False, None, [error]))
        if strays:
            log.warning(
                "Bulk ingest job %s: %d result rows match no row sent (their rows stay "
                "unconfirmed)",
                job_id,
                strays,
            )
        outcome.unconfirmed.extend(i for slot in waiting.values() for i in slot)
        return results

    def result_table(self, job_id: str, kind: str) -> Iterator[list[str]]:
        """A result file as lists: the header first, then each non-empty row."""
        response = self.api.request(
            "GET",
            f"jobs/ingest/{job_id}/{kind}/",
            headers={"Accept": "text/csv", "Accept-Encoding": "gzip"},
            stream=True,
        )
        with response:
            reader = csv_reader(response)
            for values in reader:
                if values:  # the header, then the rows; blank lines are no rows
                    yield values


def _waiting_rows(
    columns: list[str],
    records: Sequence[Mapping[str, Any]],
    positions: list[int],
    key_field: str | None,
    null: str,
) -> dict[tuple[str, ...], deque[int]]:
    """The positions of a job's rows by the cells a result row names them by: the
    `key_field` column's (matched without regard to case), else every column's."""
    waiting: dict[tuple[str, ...], deque[int]] = defaultdict(deque)
    if key_field is None:
        for i in positions:
            waiting[tuple(row_cells(records[i], columns, null))].append(i)
        return waiting
    column = _key_column(columns, key_field)
    for i in positions:
        waiting[(row_cells(records[i], [column], null)[0],)].append(i)
    return waiting


def _key_column(columns: list[str], key_field: str) -> str:
    """The job's column named `key_field` (without regard to case). Missing, every row
    would be keyed alike and result rows matched to arbitrary rows: a ValueError."""
    column = next((c for c in columns if c.lower() == key_field.lower()), None)
    if column is None:
        raise ValueError(
            f"key field {key_field!r} is not among the Bulk job's columns {columns}: result "
            "rows could not be matched to the rows sent"
        )
    return column


def _csv_bytes_bound(columns: list[str], records: Sequence[Mapping[str, Any]], null: str) -> int:
    """An upper bound of the CSV bytes of `records`' rows: each cell at most its UTF-8
    bytes, its quotes doubled, two enclosing quotes and a delimiter (or line end)."""
    total = len(records)  # CRLF: each line end one byte more than a delimiter
    for record in records:
        for c in columns:
            text = cell(record.get(c), null)
            total += len(text.encode()) + text.count('"') + 3
    return total


def _sleep_unless_stopped(seconds: float) -> None:
    """A long wait between polls, cut short by a stop request (checked every second)."""
    end = time.monotonic() + seconds
    while not STOP.requested and (left := end - time.monotonic()) > 0:
        sleep(min(1.0, left))


def null_cell(operation: str) -> str:
    """The cell a None or "" value becomes in a job of this operation (see `cell`)."""
    return NULL if operation == "update" else ""


def _number(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _csv_text(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=LINE_END).writerows(rows)
    return buffer.getvalue()
