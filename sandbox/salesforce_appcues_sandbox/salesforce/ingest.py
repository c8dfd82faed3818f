"""Bulk API 2.0 ingest jobs: lifecycle, CSV parsing into the org's writes, result files.

Record rules are not here: each CSV row becomes a `WriteOp` and goes through `Org.write`, the
code path REST and sObject Collections use, so errors are identical in code and message. This
module owns what is Bulk-specific: the job states, the CSV dialect (delimiter, line ending,
`#N/A`, empty cells, relationship columns) and the success/failed/unprocessed result files.
"""

from __future__ import annotations

import csv
import dataclasses
import re
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ..common.clock import SandboxClock
from ..common.stats import CallStats
from . import datetimes, ids
from .bulk import _DELIMITERS, _LINE_ENDINGS, _quote
from .models import Org, RecordError, SalesforceError, WriteOp, WriteResult, stamp
from .schema import FieldDef, ObjectDef
from .wire import rest_datetime

OPERATIONS = ("insert", "update", "upsert", "delete")
# Documented: one upload holds at most 150 MB once base64-encoded; the sandbox enforces that
# on the raw bytes (the largest body whose base64 form fits), not the advised 100 MB.
MAX_UPLOAD_BASE64_BYTES = 150 * 1024 * 1024
DEFAULT_MAX_UPLOAD_BYTES = MAX_UPLOAD_BASE64_BYTES // 4 * 3
# Salesforce splits a job into internal batches of 10,000 records (each counts against the
# DailyBulkApiBatches allocation) and commits them in chunks of 200 records.
RECORDS_PER_BATCH = 10_000
CHUNK_RECORDS = 200
NULL = "#N/A"
TERMINAL = ("JobComplete", "Failed", "Aborted")
RESULT_KINDS = {
    "successfulresults": "success",
    "failedresults": "failed",
    "unprocessedrecords": "unprocessed",
}
# Ingest job ids share the 750 prefix with query jobs; a distinct counter range keeps them apart.
_ID_OFFSET = 62**6
_RELATIONSHIP = re.compile(r"^(?:(?P<type>\w+):)?(?P<rel>\w+)\.(?P<field>\w+)$")


@dataclass
class IngestSettings:
    """Sandbox options (`ingest_<name>`), also settable through `POST bulk` until a reset.

    The last five pick between plausible readings where Salesforce's behaviour is a guess."""

    processing_seconds: float = 0.0  # between UploadComplete and the first write
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    error_format: str = (
        "bulk"  # sf__Error: "bulk" `CODE:message:fields --` | "plain" `CODE:message`
    )
    processed_counts_failed: bool = True  # numberRecordsProcessed includes failed rows
    results_order: str = "upload"  # "upload" | "reversed" (Salesforce promises no order)
    empty_results: str = "header"  # a result file without rows: "header" line | "empty" body
    # A successful row's cells: "sent" as uploaded | "stored" spelled as the record now holds
    # them (datetimes in whole seconds `.000Z`, numbers, booleans, 18-character ids).
    results_echo: str = "sent"

    @classmethod
    def from_options(
        cls, options: dict[str, Any], base: IngestSettings | None = None
    ) -> IngestSettings:
        out = dataclasses.replace(base or cls())
        for f in dataclasses.fields(cls):
            key = f"ingest_{f.name}"
            if key in options:
                kind = type(getattr(out, f.name))
                raw = options[key]
                value = (
                    raw if kind is not bool or isinstance(raw, bool) else str(raw).lower() == "true"
                )
                setattr(out, f.name, kind(value))
        if out.error_format not in ("bulk", "plain"):
            raise ValueError("ingest_error_format must be bulk or plain")
        if out.results_order not in ("upload", "reversed"):
            raise ValueError("ingest_results_order must be upload or reversed")
        if out.empty_results not in ("header", "empty"):
            raise ValueError("ingest_empty_results must be header or empty")
        if out.results_echo not in ("sent", "stored"):
            raise ValueError("ingest_results_echo must be sent or stored")
        return out


class _JobFailedError(Exception):
    """The whole job fails (bad header, wrong line ending): state Failed with this message."""


@dataclass
class IngestJob:
    id: str
    operation: str
    object: str
    api_version: str
    created: str
    modstamp: str
    column_delimiter: str = "COMMA"
    line_ending: str = "LF"
    external_id: str | None = None
    state: str = "Open"
    upload: Path | None = None
    processed: int = 0
    failed: int = 0
    error_message: str | None = None
    fail_with: str | None = None  # injected through the control API
    fail_after: int = 0
    started: float | None = None
    finished: float | None = None
    results: dict[str, Path] = field(default_factory=dict)
    worker: threading.Thread | None = None
    row_ends: dict[str, list[int]] = field(default_factory=dict)  # per result file, after header
    aborted: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)


@dataclass
class _Column:
    """One CSV header cell: a field, or a relationship column resolved by an external id."""

    name: str
    fdef: FieldDef  # the field written (the reference field for a relationship column)
    target: ObjectDef | None = None
    target_field: FieldDef | None = None


class IngestJobs:
    """The org's Bulk 2.0 ingest jobs; each closed job runs in a worker thread."""

    def __init__(
        self,
        clock: SandboxClock,
        org: Org,
        stats: CallStats,
        settings: IngestSettings | None = None,
    ) -> None:
        self.clock = clock
        self.org = org
        self.stats = stats
        self._configured = settings or IngestSettings()
        self.settings = dataclasses.replace(self._configured)
        self._jobs: dict[str, IngestJob] = {}
        self._lock = threading.Lock()
        self._counter = 0
        self._dir = tempfile.TemporaryDirectory(prefix="sf-ingest-")
        self.batches_created = 0  # for /limits DailyBulkApiBatches (shared with Bulk 1.0)
        # Control API: the next `fail_next` jobs end Failed with `fail_message` after
        # `fail_after` records; the next `abort_next` end Aborted before processing.
        self.fail_next = 0
        self.fail_message = "InternalServerError : the ingest job failed"
        self.fail_after = 0
        self.abort_next = 0

    # --- jobs -----------------------------------------------------------------------
    def create(self, body: Any, version: str) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise SalesforceError(
                400, "JSON_PARSER_ERROR", "The request body must be a JSON object"
            )
        operation = body.get("operation")
        if operation not in OPERATIONS:
            raise SalesforceError(400, "INVALIDJOB", f"InvalidJob : Invalid operation: {operation}")
        name = body.get("object")
        obj = self.org.user_schema.get(name) if isinstance(name, str) else None
        if obj is None:
            raise SalesforceError(400, "INVALIDJOB", f"InvalidJob : Unable to find object: {name}")
        delimiter = str(body.get("columnDelimiter", "COMMA"))
        line_ending = str(body.get("lineEnding", "LF"))
        if delimiter not in _DELIMITERS or line_ending not in _LINE_ENDINGS:
            raise SalesforceError(
                400, "INVALIDJOB", "InvalidJob : unsupported columnDelimiter or lineEnding"
            )
        if body.get("contentType", "CSV") != "CSV":
            raise SalesforceError(400, "INVALIDJOB", "InvalidJob : contentType must be CSV")
        external_id = None
        if operation == "upsert":
            ext = body.get("externalIdFieldName")
            if not isinstance(ext, str) or not ext:
                raise SalesforceError(
                    400, "INVALIDJOB", "InvalidJob : External ID was blank for " + obj.name
                )
            fdef = obj.field(ext)
            if fdef is None or not (fdef.external_id or fdef.id_lookup):
                raise SalesforceError(
                    400,
                    "INVALIDJOB",
                    f"InvalidJob : Field name provided, {ext} does not match an External ID, "
                    f"Salesforce Id, or indexed field for {obj.name}",
                )
            external_id = fdef.name
        now = stamp(self.clock.now())
        with self._lock:
            self._counter += 1
            job = IngestJob(
                id=ids.make_id("750", _ID_OFFSET + self._counter),
                operation=operation,
                object=obj.name,
                api_version=version,
                created=now,
                modstamp=now,
                column_delimiter=delimiter,
                line_ending=line_ending,
                external_id=external_id,
            )
            self._jobs[job.id] = job
            fail = self.fail_next > 0
            self.fail_next -= int(fail)
            abort = not fail and self.abort_next > 0
            self.abort_next -= int(abort)
        if fail:
            job.fail_with, job.fail_after = self.fail_message, self.fail_after
        if abort:
            job.aborted.set()
        self.stats.incr("ingest_jobs_created")
        return self.info(job, counts=False)

    def _job(self, job_id: str) -> IngestJob:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")
        return job

    def info(self, job: IngestJob, *, counts: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": job.id,
            "operation": job.operation,
            "object": job.object,
            "createdById": self.org.user_id,
            "createdDate": rest_datetime(job.created),
            "systemModstamp": rest_datetime(job.modstamp),
            "state": job.state,
        }
        if job.external_id:
            out["externalIdFieldName"] = job.external_id
        out.update(
            concurrencyMode="Parallel",
            contentType="CSV",
            apiVersion=float(job.api_version),
            jobType="V2Ingest",
            contentUrl=f"services/data/v{job.api_version}/jobs/ingest/{job.id}/batches",
            lineEnding=job.line_ending,
            columnDelimiter=job.column_delimiter,
        )
        if counts:
            elapsed = 0
            if job.started is not None:
                elapsed = int(((job.finished or time.monotonic()) - job.started) * 1000)
            processed = job.processed
            if not self.settings.processed_counts_failed:
                processed -= job.failed
            out.update(
                numberRecordsProcessed=processed,
                numberRecordsFailed=job.failed,
                retries=0,
                totalProcessingTime=elapsed,
                apiActiveProcessingTime=elapsed,
                apexProcessingTime=0,
            )
            if job.error_message:
                out["errorMessage"] = job.error_message
        return out

    def get(self, job_id: str) -> dict[str, Any]:
        return self.info(self._job(job_id))

    def all_jobs(self) -> dict[str, Any]:
        with self._lock:
            jobs = list(self._jobs.values())
        return {
            "done": True,
            "records": [self.info(j, counts=False) for j in jobs],
            "nextRecordsUrl": None,
        }

    def upload(self, job_id: str, data: bytes) -> None:
        job = self._job(job_id)
        if len(data) > self.settings.max_upload_bytes:
            raise SalesforceError(
                413,
                "EXCEEDED_MAX_SIZE_REQUEST",
                f"The upload is {len(data)} bytes; at most {self.settings.max_upload_bytes} bytes "
                "(150 MB once base64-encoded) are accepted per job",
            )
        with self._lock:
            if job.state != "Open":
                raise SalesforceError(
                    400,
                    "INVALIDJOBSTATE",
                    f"InvalidJobState : Job {job.id} is {job.state}; data can only be uploaded "
                    "to an Open job",
                )
            if job.upload is not None:
                raise SalesforceError(
                    400,
                    "INVALIDJOBSTATE",
                    f"InvalidJobState : Found multiple contents for job: {job.id}, please "
                    "'Close' / 'Abort' / 'Delete' the current Job then create a new Job and "
                    "make sure you only do 'PUT' once on a given Job.",
                )
            job.upload = Path(self._dir.name) / f"{job.id}.upload.csv"
        job.upload.write_bytes(data)  # outside the lock: other jobs go on meanwhile

    def set_state(self, job_id: str, body: Any) -> dict[str, Any]:
        job = self._job(job_id)
        wanted = body.get("state") if isinstance(body, dict) else None
        if wanted == "UploadComplete":
            with self._lock:
                if job.state != "Open":
                    raise SalesforceError(
                        400,
                        "INVALIDJOBSTATE",
                        f"InvalidJobState : Closing already {job.state} Job not allowed",
                    )
                job.state = "UploadComplete"
                job.modstamp = stamp(self.clock.now())
                answer = self.info(job, counts=False)
            self._start(job)
            return answer
        if wanted == "Aborted":
            with self._lock:
                if job.state in TERMINAL:
                    raise SalesforceError(
                        400,
                        "INVALIDJOBSTATE",
                        f"InvalidJobState : Aborting already {job.state} Job not allowed",
                    )
                was_open = job.state == "Open"
                job.aborted.set()
            if was_open:  # the worker moves any uploaded rows to the unprocessed records
                self._start(job)
            job.done.wait(timeout=30)
            return self.info(job, counts=False)
        raise SalesforceError(
            400,
            "INVALIDJOBSTATE",
            f"InvalidJobState : state {wanted} can not be set; use UploadComplete or Aborted",
        )

    def delete(self, job_id: str) -> None:
        job = self._job(job_id)
        if job.state in ("Open", "InProgress"):
            raise SalesforceError(
                400,
                "INVALIDJOBSTATE",
                f"InvalidJobState : a {job.state} job can not be deleted; abort it first",
            )
        self._discard(job)

    def _discard(self, job: IngestJob) -> None:
        job.aborted.set()
        if job.worker is not None:
            job.done.wait(timeout=30)
        with self._lock:
            self._jobs.pop(job.id, None)
        for path in [job.upload, *job.results.values()]:
            if path is not None:
                path.unlink(missing_ok=True)

    def results(self, job_id: str, kind: str) -> bytes:
        """One result file (`successfulResults`, `failedResults`, `unprocessedrecords`)."""
        job = self._job(job_id)
        if job.state not in TERMINAL:
            raise SalesforceError(
                400,
                "INVALIDJOBSTATE",
                f"InvalidJobState : job {job.id} is {job.state}; results are available once "
                "it is JobComplete, Failed or Aborted",
            )
        path = job.results.get(RESULT_KINDS[kind.lower()])
        data = path.read_bytes() if path is not None else b""
        eol = _LINE_ENDINGS[job.line_ending].encode()
        header, sep, rows = data.partition(eol)
        if not rows and self.settings.empty_results == "empty":
            return b""
        if self.settings.results_order == "reversed" and rows:
            # rows may hold quoted line breaks: split on the recorded row boundaries
            ends = job.row_ends.get(RESULT_KINDS[kind.lower()], [])
            starts = [0, *ends[:-1]]
            pieces = [rows[a:b] for a, b in zip(starts, ends, strict=True)]
            rows = b"".join(reversed(pieces))
        return header + sep + rows

    # --- processing -------------------------------------------------------------------
    def _start(self, job: IngestJob) -> None:
        job.worker = threading.Thread(
            target=self._run, args=(job,), name=f"ingest-{job.id}", daemon=True
        )
        job.worker.start()

    def _run(self, job: IngestJob) -> None:
        job.started = time.monotonic()
        if not job.aborted.wait(self.settings.processing_seconds):
            job.state = "InProgress"
            job.modstamp = stamp(self.clock.now())
        writer = _ResultFiles(job, Path(self._dir.name), self.settings.error_format)
        try:
            state = self._process(job, writer)
        except _JobFailedError as exc:
            job.error_message = str(exc)
            state = "Failed"
        except (UnicodeDecodeError, csv.Error) as exc:
            job.error_message = f"InvalidBatch : the CSV data can not be read: {exc}"
            state = "Failed"
        except Exception as exc:  # a sandbox bug still ends the job the way Salesforce does
            job.error_message = f"InternalServerError : {exc}"
            state = "Failed"
        finally:
            writer.close()
        if job.aborted.is_set() and state == "Failed" and job.error_message != job.fail_with:
            state, job.error_message = "Aborted", None
        self._finish(job, state)

    def _finish(self, job: IngestJob, state: str) -> None:
        job.state = state
        job.finished = time.monotonic()
        job.modstamp = stamp(self.clock.now())
        self.stats.incr(f"ingest_jobs_{state.lower()}")
        job.done.set()

    def _process(self, job: IngestJob, out: _ResultFiles) -> str:
        """Write the uploaded rows chunk by chunk; the job's final state."""
        if job.upload is None:
            raise _JobFailedError("InvalidBatch : No data was uploaded for this job")
        obj = self.org.object(job.object)
        with job.upload.open("rb") as raw:
            first = raw.readline()
        with job.upload.open(encoding="utf-8-sig", newline="") as text:
            rows = csv.reader(text, delimiter=_DELIMITERS[job.column_delimiter], strict=True)
            header = next(rows, None)
            if not header:
                raise _JobFailedError("InvalidBatch : No content to process")
            out.start(header)
            try:
                if first.endswith(b"\n") and first.endswith(b"\r\n") != (job.line_ending == "CRLF"):
                    raise _JobFailedError(
                        "ClientInputError : LineEnding is invalid on user data. Current "
                        f"LineEnding setting is {job.line_ending}"
                    )
                columns = self._columns(job, obj, header)
            except _JobFailedError:
                for row in rows:  # nothing was written: every row is unprocessed
                    out.unprocessed(row)
                raise
            return self._write_rows(job, obj, columns, rows, out)

    def _write_rows(
        self,
        job: IngestJob,
        obj: ObjectDef,
        columns: list[_Column],
        rows: Iterator[list[str]],
        out: _ResultFiles,
    ) -> str:
        chunk: list[list[str]] = []
        stopped: str | None = None
        total = 0
        for row in rows:
            total += 1
            if stopped is None:
                if job.aborted.is_set():
                    stopped = "Aborted"
                elif job.fail_with is not None and job.processed + len(chunk) >= job.fail_after:
                    stopped = "Failed"
                    job.error_message = job.fail_with
                if stopped is not None and chunk:  # rows already taken are still written
                    self._write_chunk(job, obj, columns, chunk, out)
                    chunk = []
            if stopped is not None:
                out.unprocessed(row)
                continue
            chunk.append(row)
            if len(chunk) == CHUNK_RECORDS:
                self._write_chunk(job, obj, columns, chunk, out)
                chunk = []
        if chunk:
            self._write_chunk(job, obj, columns, chunk, out)
        with self._lock:  # Salesforce counts one batch per 10,000 records received
            self.batches_created += max(1, -(-total // RECORDS_PER_BATCH))
        if stopped is None and job.fail_with is not None:
            job.error_message = job.fail_with
            return "Failed"
        return stopped or "JobComplete"

    def _write_chunk(
        self,
        job: IngestJob,
        obj: ObjectDef,
        columns: list[_Column],
        chunk: list[list[str]],
        out: _ResultFiles,
    ) -> None:
        ops = [self._op(job, obj, columns, row) for row in chunk]
        try:
            results = self.org.write(ops, all_or_none=False)
        except SalesforceError as exc:  # a whole-request error fails each row of the chunk
            error = RecordError(exc.error_code, exc.message, exc.fields or [])
            results = [WriteResult(op.record_id, False, [error]) for op in ops]
        stored = self.settings.results_echo == "stored"
        for row, result in zip(chunk, results, strict=True):
            job.processed += 1
            if result.success:
                out.success(result, _stored_cells(columns, row) if stored else row)
            else:
                job.failed += 1
                out.failure(result, row)

    def _columns(self, job: IngestJob, obj: ObjectDef, header: list[str]) -> list[_Column]:
        columns = []
        for name in header:
            fdef = obj.field(name)
            if fdef is not None:
                columns.append(_Column(name, fdef))
                continue
            column = self._relationship_column(obj, name)
            if column is None:
                raise _JobFailedError(f"InvalidBatch : Field name not found : {name}")
            columns.append(column)
        names = {c.fdef.name for c in columns if c.target is None}
        needed = {"update": "Id", "delete": "Id", "upsert": job.external_id}.get(job.operation)
        if needed and needed not in names:
            raise _JobFailedError(f"InvalidBatch : Field name not found : {needed}")
        return columns

    def _relationship_column(self, obj: ObjectDef, name: str) -> _Column | None:
        """`Rel.Field` (one parent type) or `Type:Rel.Field` (polymorphic `Who`, `What`)."""
        m = _RELATIONSHIP.match(name)
        ref = obj.relationship(m.group("rel")) if m else None
        if m is None or ref is None:
            return None
        wanted = m.group("type")
        targets = [t for t in ref.reference_to if wanted is None or t.lower() == wanted.lower()]
        if len(targets) != 1:
            return None
        target = self.org.user_schema.get(targets[0])
        tfield = target.field(m.group("field")) if target else None
        if target is None or tfield is None or not (tfield.external_id or tfield.id_lookup):
            return None
        return _Column(name, ref, target, tfield)

    def _op(
        self, job: IngestJob, obj: ObjectDef, columns: list[_Column], row: list[str]
    ) -> WriteOp:
        kind = {"insert": "create"}.get(job.operation, job.operation)
        body: dict[str, Any] = {}
        record_id: str | None = None
        for column, cell in zip(columns, row, strict=False):
            if cell == "":
                continue  # an empty cell leaves the field alone; #N/A sets it to null
            value: Any = None if cell == NULL else cell
            if column.fdef.name == "Id" and column.target is None:
                record_id = value
                continue
            if column.target is not None:
                assert column.target_field is not None
                try:
                    value = None if value is None else self._parent_id(column, value)
                except _ParentError as missing:
                    return WriteOp(kind, obj.name, error=missing.error, record_id=record_id)
            body[column.fdef.name] = value
        if len(row) > len(columns):
            return WriteOp(
                kind,
                obj.name,
                record_id=record_id,
                error=RecordError(
                    "INVALID_FIELD",
                    f"The row has {len(row)} values but the header has {len(columns)} columns",
                ),
            )
        if job.operation == "insert" and record_id is not None:
            return WriteOp(
                kind,
                obj.name,
                error=RecordError("INVALID_FIELD", "cannot specify Id in an insert call", ["Id"]),
            )
        if job.operation == "delete":
            return WriteOp("delete", record_id=record_id or "")
        if job.operation == "update":
            return WriteOp("update", obj.name, body, record_id=record_id or "")
        if job.operation == "upsert":
            assert job.external_id is not None
            ext = record_id if job.external_id == "Id" else body.get(job.external_id)
            return WriteOp(
                "upsert", obj.name, body, record_id=None, ext_field=job.external_id, ext_value=ext
            )
        return WriteOp("create", obj.name, body)

    def _parent_id(self, column: _Column, value: str) -> str:
        assert column.target is not None and column.target_field is not None
        matches = self.org.find_by_field(column.target, column.target_field, value)
        if len(matches) == 1:
            return matches[0]
        field_name, entity = column.target_field.name, column.target.name
        if not matches:
            message = (
                f"Foreign key external ID: {value} not found for field {field_name} in "
                f"entity {entity}"
            )
        else:
            message = (
                f"Foreign key external ID: {value} matches more than one record for field "
                f"{field_name} in entity {entity}"
            )
        raise _ParentError(RecordError("INVALID_FIELD", message, [column.fdef.name]))

    # --- control ----------------------------------------------------------------------
    def control(self, body: dict[str, Any]) -> dict[str, Any]:
        """`POST bulk` for ingest jobs: `fail_ingest_jobs` N (the next N jobs end Failed with
        `ingest_error_message` after `ingest_fail_after_records` records, the rest
        unprocessed), `abort_ingest_jobs` M (the next M end Aborted as if aborted in Setup),
        and any `ingest_<setting>` of `IngestSettings` (until the next reset)."""
        with self._lock:
            if "fail_ingest_jobs" in body:
                self.fail_next = int(body["fail_ingest_jobs"])
            if "abort_ingest_jobs" in body:
                self.abort_next = int(body["abort_ingest_jobs"])
            if body.get("ingest_error_message"):
                self.fail_message = str(body["ingest_error_message"])
            if "ingest_fail_after_records" in body:
                self.fail_after = int(body["ingest_fail_after_records"])
            self.settings = IngestSettings.from_options(body, self.settings)
            return {
                "fail_ingest_jobs": self.fail_next,
                "abort_ingest_jobs": self.abort_next,
                "ingest_fail_after_records": self.fail_after,
                **{f"ingest_{k}": v for k, v in dataclasses.asdict(self.settings).items()},
            }

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            states: dict[str, int] = {}
            for job in self._jobs.values():
                states[job.state] = states.get(job.state, 0) + 1
        return states

    def clear(self) -> None:
        with self._lock:
            jobs = list(self._jobs.values())
            self.batches_created = 0
            self.fail_next = self.abort_next = self.fail_after = 0
            self.fail_message = "InternalServerError : the ingest job failed"
            self.settings = dataclasses.replace(self._configured)
        for job in jobs:
            self._discard(job)

    def close(self) -> None:
        self.clear()
        self._dir.cleanup()


def _stored_cells(columns: list[_Column], row: list[str]) -> list[str]:
    """A written row's cells as the record holds them (switch `ingest_results_echo`)."""
    return [
        _stored_cell(column.fdef, value) if column.target is None else value
        for column, value in zip(columns, row, strict=False)
    ] + row[len(columns) :]


def _stored_cell(fdef: FieldDef, value: str) -> str:
    if value in ("", NULL):
        return value
    try:
        if fdef.type == "datetime":
            moment = datetimes.parse_value(value)
            return value if moment is None else stamp(moment)
        if fdef.type == "boolean":
            return "true" if value.lower() == "true" else "false"
        if fdef.type == "int":
            return str(int(float(value)))
        if fdef.type in ("double", "currency", "percent"):
            number = float(value)
            return str(int(number)) if fdef.scale == 0 and number.is_integer() else repr(number)
        if fdef.type in ("reference", "id") and ids.is_well_formed(value):
            return ids.to18(value)
    except ValueError:
        return value
    return value


class _ParentError(Exception):
    def __init__(self, error: RecordError) -> None:
        super().__init__(error.message)
        self.error = error


class _ResultFiles:
    """The three result CSVs of a job, written as rows are processed.

    `sf__` columns are always quoted; the row's own values are written back with minimal
    quoting, in the job's delimiter and line ending."""

    def __init__(self, job: IngestJob, directory: Path, error_format: str = "bulk") -> None:
        self.job = job
        self.error_format = error_format
        self.delimiter = _DELIMITERS[job.column_delimiter]
        self.eol = _LINE_ENDINGS[job.line_ending]
        self._files: dict[str, IO[bytes]] = {}
        for kind in ("success", "failed", "unprocessed"):
            path = directory / f"{job.id}.{kind}.csv"
            job.results[kind] = path
            self._files[kind] = path.open("wb")
        self._width = 0

    def start(self, header: list[str]) -> None:
        self._width = len(header)
        self._line("success", ["sf__Id", "sf__Created"], header, header=True)
        self._line("failed", ["sf__Id", "sf__Error"], header, header=True)
        self._line("unprocessed", [], header, header=True)

    def success(self, result: WriteResult, row: list[str]) -> None:
        created = "true" if result.created else "false"
        self._line("success", [result.id or "", created], row)

    def failure(self, result: WriteResult, row: list[str]) -> None:
        self._line("failed", [result.id or "", sf_error(result.errors, self.error_format)], row)

    def unprocessed(self, row: list[str]) -> None:
        self._line("unprocessed", [], row)

    def _line(self, kind: str, prefix: list[str], row: list[str], *, header: bool = False) -> None:
        cells = [_quote(v) if v else '""' for v in prefix] + [self._minimal(v) for v in row]
        line = (self.delimiter.join(cells) + self.eol).encode()
        self._files[kind].write(line)
        if not header:
            ends = self.job.row_ends.setdefault(kind, [])
            ends.append((ends[-1] if ends else 0) + len(line))

    def _minimal(self, value: str) -> str:
        if any(c in value for c in (self.delimiter, '"', "\n", "\r")):
            return '"' + value.replace('"', '""') + '"'
        return value

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()


def sf_error(errors: list[RecordError], error_format: str = "bulk") -> str:
    """`sf__Error`: `CODE:message:field,field --` per error, as Bulk 1.0 result files spell it
    ("plain": `CODE:message`)."""
    if error_format == "plain":
        return " ".join(f"{e.status_code}:{e.message}" for e in errors)
    return " ".join(f"{e.status_code}:{e.message}:{','.join(e.fields)} --" for e in errors)
