"""Bulk API 2.0 query jobs: lifecycle, CSV result files and locator paging."""

from __future__ import annotations

import base64
import contextlib
import re
import tempfile
import threading
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..common.clock import SandboxClock
from ..common.stats import CallStats
from . import ids
from .models import SalesforceError, stamp
from .query_engine import QueryEngine
from .soql import SoqlError
from .wire import rest_datetime

_DELIMITERS = {
    "COMMA": ",",
    "TAB": "\t",
    "PIPE": "|",
    "SEMICOLON": ";",
    "CARET": "^",
    "BACKQUOTE": "`",
}
_LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
_FROM = re.compile(r"\bfrom\s+(\w+)", re.IGNORECASE)
# Without maxRecords, one results page holds at most this many records.
DEFAULT_PAGE_RECORDS = 100_000


@dataclass
class BulkJob:
    id: str
    operation: str
    object: str
    query: str
    api_version: str
    created: str
    column_delimiter: str = "COMMA"
    line_ending: str = "LF"
    state: str = "UploadComplete"
    modstamp: str = ""
    records: int = 0
    error_message: str | None = None
    path: Path | None = None
    header: bytes = b""
    offsets: array[int] = field(default_factory=lambda: array("q"))
    fail_with: str | None = None  # injected through the control API
    aborted: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)


class BulkQueryJobs:
    """Runs each job's query in a worker thread into a CSV file; pages are byte ranges."""

    def __init__(
        self, clock: SandboxClock, engine: QueryEngine, user_id: str, stats: CallStats
    ) -> None:
        self.clock = clock
        self.engine = engine
        self.user_id = user_id
        self.stats = stats
        self._jobs: dict[str, BulkJob] = {}
        self._lock = threading.Lock()
        self._counter = 0
        self._dir = tempfile.TemporaryDirectory(prefix="sf-bulk-")
        self.created_today = 0  # for /limits DailyBulkV2QueryJobs
        # Control API: the next `fail_next` jobs end in Failed with this message.
        self.fail_next = 0
        self.fail_message = "Internal error: the query job failed"
        # Control API: the next `abort_next` jobs end Aborted (as if an admin aborted them).
        self.abort_next = 0

    def create(self, body: Any, version: str) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise SalesforceError(
                400, "JSON_PARSER_ERROR", "The request body must be a JSON object"
            )
        operation = body.get("operation")
        query = body.get("query")
        if operation not in ("query", "queryAll"):
            raise SalesforceError(400, "INVALIDJOB", f"InvalidJob : Invalid operation: {operation}")
        if not isinstance(query, str) or not query.strip():
            raise SalesforceError(400, "INVALIDJOB", "InvalidJob : query is required")
        delimiter = str(body.get("columnDelimiter", "COMMA"))
        line_ending = str(body.get("lineEnding", "LF"))
        if delimiter not in _DELIMITERS or line_ending not in _LINE_ENDINGS:
            raise SalesforceError(
                400, "INVALIDJOB", "InvalidJob : unsupported columnDelimiter or lineEnding"
            )
        if body.get("contentType", "CSV") != "CSV":
            raise SalesforceError(400, "INVALIDJOB", "InvalidJob : contentType must be CSV")
        include_deleted = operation == "queryAll"
        try:
            header, rows = self.engine.iter_csv(query, include_deleted=include_deleted)
        except SoqlError as exc:
            raise SalesforceError(exc.status, exc.error_code, exc.message) from None
        with self._lock:
            self._counter += 1
            job_id = ids.make_id("750", self._counter)
        now = stamp(self.clock.now())
        match = _FROM.search(query)
        obj = self.engine.schema.get(match.group(1)) if match else None
        job = BulkJob(
            id=job_id,
            operation=operation,
            object=obj.name if obj else (match.group(1) if match else ""),
            query=query,
            api_version=version,
            created=now,
            modstamp=now,
            column_delimiter=delimiter,
            line_ending=line_ending,
        )
        with self._lock:
            self._jobs[job_id] = job
        self.stats.incr("bulk_jobs_created")
        with self._lock:
            self.created_today += 1
            fail = self.fail_next > 0
            self.fail_next -= int(fail)
            abort = not fail and self.abort_next > 0
            self.abort_next -= int(abort)
        job.fail_with = self.fail_message if fail else None
        if abort:
            job.aborted.set()
        info = self.info(job)
        threading.Thread(
            target=self._run, args=(job, header, rows), name=f"bulk-{job_id}", daemon=True
        ).start()
        return info

    def _run(self, job: BulkJob, header: list[str], rows: Iterator[list[str]]) -> None:
        delim, eol = _DELIMITERS[job.column_delimiter], _LINE_ENDINGS[job.line_ending]
        job.state = "InProgress"
        job.header = csv_line(header, delim, eol)
        job.path = Path(self._dir.name) / f"{job.id}.csv"
        position = 0
        try:
            with job.path.open("wb") as out:
                for row in rows:
                    if job.aborted.is_set():
                        break
                    line = csv_line(row, delim, eol)
                    job.offsets.append(position)
                    out.write(line)
                    position += len(line)
                job.offsets.append(position)  # end of the last record
        except Exception as exc:  # the job fails the way Salesforce reports it
            job.state = "Failed"
            job.error_message = str(exc)
            self.stats.incr("bulk_jobs_failed")
        else:
            if job.fail_with is not None:
                job.state, job.error_message = "Failed", job.fail_with
                self.stats.incr("bulk_jobs_failed")
            elif job.aborted.is_set():
                job.state = "Aborted"
            else:
                job.records = len(job.offsets) - 1
                job.state = "JobComplete"
                self.stats.incr("bulk_jobs_completed")
        finally:
            with contextlib.suppress(Exception):
                rows.close()  # type: ignore[attr-defined]
            job.modstamp = stamp(self.clock.now())
            job.done.set()

    def _job(self, job_id: str) -> BulkJob:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")
        return job

    def info(self, job: BulkJob) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": job.id,
            "operation": job.operation,
            "object": job.object,
            "createdById": self.user_id,
            "createdDate": rest_datetime(job.created),
            "systemModstamp": rest_datetime(job.modstamp),
            "state": job.state,
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(job.api_version),
            "jobType": "V2Query",
            "lineEnding": job.line_ending,
            "columnDelimiter": job.column_delimiter,
        }
        if job.state in ("JobComplete", "Failed", "Aborted") or job.records:
            out.update(
                numberRecordsProcessed=job.records,
                retries=0,
                totalProcessingTime=0,
                isPkChunkingSupported=True,
            )
        if job.error_message:
            out["errorMessage"] = job.error_message
        return out

    def get(self, job_id: str) -> dict[str, Any]:
        return self.info(self._job(job_id))

    def list(self, version: str) -> dict[str, Any]:
        with self._lock:
            jobs = list(self._jobs.values())
        return {"done": True, "records": [self.info(j) for j in jobs], "nextRecordsUrl": None}

    def abort(self, job_id: str, body: Any) -> dict[str, Any]:
        job = self._job(job_id)
        if not isinstance(body, dict) or body.get("state") != "Aborted":
            raise SalesforceError(
                400, "INVALIDJOBSTATE", "InvalidJobState : only state Aborted can be set"
            )
        if job.state in ("JobComplete", "Failed", "Aborted"):
            raise SalesforceError(
                400,
                "INVALIDJOBSTATE",
                f"InvalidJobState : Aborting already {job.state} Job not allowed",
            )
        job.aborted.set()
        job.done.wait(timeout=30)
        job.state = "Aborted"
        return self.info(job)

    def delete(self, job_id: str) -> None:
        job = self._job(job_id)
        job.aborted.set()
        job.done.wait(timeout=30)
        with self._lock:
            self._jobs.pop(job_id, None)
        if job.path is not None:
            job.path.unlink(missing_ok=True)

    def results(
        self, job_id: str, locator: str | None, max_records: int | None
    ) -> tuple[bytes, int, str]:
        """One CSV page (with header), its record count and the next locator ('null' at end)."""
        job = self._job(job_id)
        if job.state != "JobComplete" or job.path is None:
            raise SalesforceError(
                412 if job.state in ("UploadComplete", "InProgress") else 400,
                "JOB_NOT_COMPLETE",
                "can only download query results of successfully completed bulk job with "
                f"status: JOB_COMPLETE. Current status: {_upper_state(job.state)}",
            )
        start = 0
        if locator:
            try:
                start = int(base64.b64decode(locator + "=" * (-len(locator) % 4)).decode())
            except (ValueError, UnicodeDecodeError):
                raise SalesforceError(400, "INVALID_LOCATOR", "Invalid locator") from None
            if not 0 <= start <= job.records:
                raise SalesforceError(400, "INVALID_LOCATOR", "Invalid locator")
        size = max_records if max_records and max_records > 0 else DEFAULT_PAGE_RECORDS
        end = min(start + size, job.records)
        with job.path.open("rb") as fh:
            fh.seek(job.offsets[start])
            data = fh.read(job.offsets[end] - job.offsets[start])
        next_locator = (
            base64.b64encode(str(end).encode()).decode().rstrip("=")
            if end < job.records
            else "null"
        )
        return job.header + data, end - start, next_locator

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            states: dict[str, int] = {}
            for job in self._jobs.values():
                states[job.state] = states.get(job.state, 0) + 1
        return states

    def clear(self) -> None:
        with self._lock:
            jobs = list(self._jobs)
            self.created_today = 0
            self.fail_next = 0
            self.abort_next = 0
        for job_id in jobs:
            self.delete(job_id)

    def close(self) -> None:
        self.clear()
        self._dir.cleanup()


def csv_line(values: list[str], delimiter: str = ",", line_ending: str = "\n") -> bytes:
    """One CSV line of a bulk result: values quoted, null (empty) left bare."""
    return (delimiter.join(_quote(v) for v in values) + line_ending).encode()


def _quote(value: str) -> str:
    if value == "":
        return ""
    return '"' + value.replace('"', '""') + '"'


def _upper_state(state: str) -> str:
    return re.sub(r"(?<=[a-z])(?=[A-Z])", "_", state).upper()
