"""Bulk API 1.0 query jobs: jobs, batches, PK chunking and CSV result files.

A batch runs its query in a worker thread into a CSV file (the query execution and CSV
lines are Bulk 2.0's); result files are byte ranges of it, at most `result_file_records`
records each.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import tempfile
import threading
import time
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..common.clock import SandboxClock
from ..common.stats import CallStats
from . import ids
from .bulk import csv_line
from .query_engine import QueryEngine
from .soql import CompiledQuery, SoqlError, quote_ident

OPERATIONS = ("query", "queryAll")
INGEST_OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")
DEFAULT_CHUNK_SIZE = 100_000
MAX_CHUNK_SIZE = 250_000
# Standard objects Salesforce PK-chunks; custom objects (`__c`) always can be.
PK_CHUNKING_OBJECTS = frozenset(
    (
        "Account",
        "Campaign",
        "CampaignMember",
        "Case",
        "Contact",
        "Lead",
        "LoginHistory",
        "Opportunity",
        "Task",
        "User",
    )
)
NO_RECORDS = b"Records not found for this query"
# add-batch waits this long so that small batches are finished before their first poll
_SETTLE_SECONDS = 2.0
_FINISHED = ("Completed", "Failed", "Not Processed")


class AsyncApiError(Exception):
    """A Bulk 1.0 request fails: `{"exceptionCode", "exceptionMessage"}` (or its XML form)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message


@dataclass
class Batch:
    id: str
    number: int  # allocation order; result ids derive from it
    job_id: str
    created: str
    query: str
    state: str = "Queued"
    state_message: str | None = None
    modstamp: str = ""
    records: int = 0
    path: Path | None = None
    header: bytes = b""
    offsets: array[int] = field(default_factory=lambda: array("q"))
    done: threading.Event = field(default_factory=threading.Event)


@dataclass
class Job:
    id: str
    operation: str
    object: str
    content_type: str
    api_version: str
    created: str
    modstamp: str
    chunk_size: int | None = None  # PK chunking on when set
    state: str = "Open"
    batches: list[Batch] = field(default_factory=list)


class Bulk1Jobs:
    """Bulk API 1.0 query jobs of the org; thread-safe."""

    def __init__(
        self,
        clock: SandboxClock,
        engine: QueryEngine,
        stats: CallStats,
        result_file_records: int = 100_000,
    ) -> None:
        self.clock = clock
        self.engine = engine
        self.stats = stats
        self.result_file_records = max(1, result_file_records)
        self._jobs: dict[str, Job] = {}
        self._batch_index: dict[str, Batch] = {}
        self._lock = threading.Lock()
        self._job_counter = 0
        self._batch_counter = 0
        self._dir = tempfile.TemporaryDirectory(prefix="sf-bulk1-")
        self.batches_created = 0  # for /limits DailyBulkApiBatches
        # Control API: the next `fail_next` batches end Failed with this stateMessage.
        self.fail_next = 0
        self.fail_message = "InternalServerError : QUERY_TIMEOUT"

    # -- jobs ---------------------------------------------------------------------------
    def create_job(
        self,
        operation: object,
        object_name: object,
        content_type: object,
        version: str,
        pk_chunking: str | None,
    ) -> Job:
        if operation in INGEST_OPERATIONS:
            raise AsyncApiError(
                400,
                "FeatureNotEnabled",
                f"The sandbox emulates Bulk API 1.0 query jobs only, not {operation}",
            )
        if operation not in OPERATIONS:
            raise AsyncApiError(400, "InvalidJob", f"Invalid operation: {operation}")
        obj = self.engine.schema.get(str(object_name)) if isinstance(object_name, str) else None
        if obj is None or not obj.readable:
            raise AsyncApiError(
                400, "InvalidEntity", f"Entity '{object_name}' is not supported by the Bulk API."
            )
        content = "CSV" if content_type is None else content_type
        if content != "CSV":
            raise AsyncApiError(
                400, "InvalidJob", f"The sandbox returns CSV query results only, not {content}"
            )
        chunk_size = _chunk_size(pk_chunking)
        now = self._now()
        with self._lock:
            self._job_counter += 1
            job = Job(
                id=ids.make_id("750", self._job_counter),
                operation=str(operation),
                object=obj.name,
                content_type="CSV",
                api_version=version,
                created=now,
                modstamp=now,
                chunk_size=chunk_size,
            )
            self._jobs[job.id] = job
        self.stats.incr("bulk1_jobs_created")
        return job

    def job(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise AsyncApiError(400, "InvalidJob", f"Unable to find object: {job_id}")
        return job

    def set_state(self, job_id: str, state: object) -> Job:
        """Close (`Closed`) or abort (`Aborted`) an open job."""
        job = self.job(job_id)
        if state not in ("Closed", "Aborted"):
            raise AsyncApiError(400, "InvalidJobState", f"Invalid state: {state}")
        with self._lock:
            if job.state != "Open" and not (state == "Aborted" and job.state == "Closed"):
                raise AsyncApiError(
                    400, "InvalidJobState", f"Job with id {job.id} is {job.state}, not Open"
                )
            job.state = str(state)
            job.modstamp = self._now()
            unfinished = [b for b in job.batches if b.state in ("Queued", "InProgress")]
        if state == "Aborted":
            for batch in unfinished:
                batch.state = "Not Processed"  # the worker sees it and stops
        return job

    # -- batches ------------------------------------------------------------------------
    def add_batch(self, job_id: str, soql: str) -> Batch:
        job = self.job(job_id)
        if job.state != "Open":
            raise AsyncApiError(
                400, "InvalidJobState", f"Job {job.id} is {job.state}; batches need an Open job"
            )
        if not soql.strip():
            raise AsyncApiError(400, "InvalidBatch", "Batch body must hold a SOQL query")
        batch = self._new_batch(job, soql)
        include_deleted = job.operation == "queryAll"
        try:
            compiled = self.engine.check_bulk(soql, include_deleted=include_deleted)
        except SoqlError as exc:
            message = exc.message.replace("Bulk API 2.0 query jobs", "Bulk API")
            self._finish(
                batch,
                "Failed",
                f"InvalidBatch : Failed to process query: {exc.error_code}: {message}",
            )
            return batch
        if compiled.obj.name != job.object:
            self._finish(
                batch,
                "Failed",
                f"InvalidBatch : Failed to process query: the query's object {compiled.obj.name} "
                f"is not the job's object {job.object}",
            )
            return batch
        if job.chunk_size is None:
            self._settle([self._start(batch, compiled)])
        elif not (job.object in PK_CHUNKING_OBJECTS or job.object.endswith("__c")):
            self._finish(
                batch, "Failed", f"InvalidBatch : PKChunking is not supported for {job.object}"
            )
        else:
            # The original batch only splits the query; its chunks hold the results.
            chunks = [
                (self._new_batch(job, soql), low, high)
                for low, high in self._id_ranges(compiled, job.chunk_size)
            ]
            self._finish(batch, "Not Processed", None)
            self._settle([self._start(c, _narrowed(compiled, lo, hi)) for c, lo, hi in chunks])
        return batch

    def batch(self, job_id: str, batch_id: str) -> Batch:
        job = self.job(job_id)
        with self._lock:
            found = self._batch_index.get(batch_id)
        if found is None or found.job_id != job.id:
            raise AsyncApiError(400, "InvalidBatch", f"Unable to find batch: {batch_id}")
        return found

    def result_ids(self, job_id: str, batch_id: str) -> list[str]:
        batch = self.batch(job_id, batch_id)
        if batch.state != "Completed":
            raise AsyncApiError(400, "InvalidBatch", f"Batch not completed: {batch.state}")
        files = max(1, -(-batch.records // self.result_file_records))
        return [ids.make_id("752", batch.number * 1000 + n) for n in range(files)]

    def result_file(self, job_id: str, batch_id: str, result_id: str) -> bytes:
        ids_ = self.result_ids(job_id, batch_id)
        if result_id not in ids_:
            raise AsyncApiError(400, "InvalidBatch", f"Unable to find result: {result_id}")
        batch = self.batch(job_id, batch_id)
        if batch.records == 0 or batch.path is None:
            return NO_RECORDS
        start = ids_.index(result_id) * self.result_file_records
        end = min(start + self.result_file_records, batch.records)
        with batch.path.open("rb") as fh:
            fh.seek(batch.offsets[start])
            return batch.header + fh.read(batch.offsets[end] - batch.offsets[start])

    # -- control and stats --------------------------------------------------------------
    def snapshot(self) -> dict[str, int]:
        states: dict[str, int] = {}
        with self._lock:
            for batch in self._batch_index.values():
                states[batch.state] = states.get(batch.state, 0) + 1
        return states

    def clear(self) -> None:
        with self._lock:
            batches = list(self._batch_index.values())
            self._jobs.clear()
            self._batch_index.clear()
            self.batches_created = 0
            self.fail_next = 0
        for batch in batches:
            if batch.state in ("Queued", "InProgress"):
                batch.state = "Not Processed"
            batch.done.wait(timeout=30)
            if batch.path is not None:
                batch.path.unlink(missing_ok=True)

    def close(self) -> None:
        self.clear()
        self._dir.cleanup()

    # -- internals ----------------------------------------------------------------------
    def _now(self) -> str:
        return self.clock.now().strftime("%Y-%m-%dT%H:%M:%S.000Z")

    def _new_batch(self, job: Job, soql: str) -> Batch:
        now = self._now()
        with self._lock:
            self._batch_counter += 1
            batch = Batch(
                id=ids.make_id("751", self._batch_counter),
                number=self._batch_counter,
                job_id=job.id,
                created=now,
                modstamp=now,
                query=soql,
            )
            job.batches.append(batch)
            self._batch_index[batch.id] = batch
            self.batches_created += 1
        self.stats.incr("bulk1_batches_created")
        return batch

    def _finish(self, batch: Batch, state: str, message: str | None) -> None:
        batch.state, batch.state_message = state, message
        batch.modstamp = self._now()
        if state == "Failed":
            self.stats.incr("bulk1_batches_failed")
        batch.done.set()

    def _start(self, batch: Batch, compiled: CompiledQuery) -> Batch:
        """Snapshot the matches now and write the CSV in a worker thread."""
        with self._lock:
            fail = self.fail_next > 0
            self.fail_next -= int(fail)
        if fail:
            self._finish(batch, "Failed", self.fail_message)
            return batch
        header, rows = self.engine.compiled_csv(compiled)
        threading.Thread(
            target=self._run, args=(batch, header, rows), name=f"bulk1-{batch.id}", daemon=True
        ).start()
        return batch

    @staticmethod
    def _settle(batches: list[Batch]) -> None:
        """Wait a little (at most _SETTLE_SECONDS in all) so small batches are done."""
        deadline = time.monotonic() + _SETTLE_SECONDS
        for batch in batches:
            batch.done.wait(timeout=max(0.0, deadline - time.monotonic()))

    def _run(self, batch: Batch, header: list[str], rows: Iterator[list[str]]) -> None:
        if batch.state == "Queued":
            batch.state = "InProgress"
        batch.header = csv_line(header)
        batch.path = Path(self._dir.name) / f"{batch.id}.csv"
        position = 0
        try:
            with batch.path.open("wb") as out:
                for row in rows:
                    if batch.state == "Not Processed":  # the job was aborted
                        return
                    line = csv_line(row)
                    batch.offsets.append(position)
                    out.write(line)
                    position += len(line)
                batch.offsets.append(position)
            batch.records = len(batch.offsets) - 1
            if batch.state == "InProgress":
                self._finish(batch, "Completed", None)
                self.stats.incr("bulk1_batches_completed")
        except Exception as exc:  # the batch fails the way Salesforce reports it
            self._finish(batch, "Failed", f"InternalServerError : {exc}")
        finally:
            with contextlib.suppress(Exception):
                rows.close()  # type: ignore[attr-defined]
            batch.modstamp = self._now()
            batch.done.set()

    def _id_ranges(self, compiled: CompiledQuery, size: int) -> list[tuple[str, str | None]]:
        """Id boundaries every `size` rows of the object (deleted rows included), as
        Salesforce splits on the Id index rather than on the query's matches."""
        table = quote_ident(compiled.obj.name)
        sql = (
            'SELECT "Id" FROM (SELECT "Id", row_number() OVER (ORDER BY "Id") - 1 AS n '
            f"FROM {table}) WHERE n % ? = 0 ORDER BY n"
        )
        with self.engine.lock:
            bounds = [str(row[0]) for row in self.engine.conn.execute(sql, (size,))]
        if not bounds:
            return [("", None)]
        highs: list[str | None] = [*bounds[1:], None]
        return list(zip(bounds, highs, strict=True))


def _chunk_size(header: str | None) -> int | None:
    """`Sforce-Enable-PKChunking: true; chunkSize=N; parent=X; startRow=Id` -> N (None = off)."""
    if header is None:
        return None
    parts = [p.strip() for p in header.split(";") if p.strip()]
    if not parts or parts[0].lower() == "false":
        return None
    options = {}
    for part in parts:
        key, sep, value = part.partition("=")
        if sep:
            options[key.strip().lower()] = value.strip()
        elif part.lower() != "true":
            raise AsyncApiError(400, "InvalidJob", f"Invalid PKChunking header option: {part}")
    size_text = options.get("chunksize", str(DEFAULT_CHUNK_SIZE))
    if not re.fullmatch(r"\d+", size_text) or int(size_text) < 1:
        raise AsyncApiError(400, "InvalidJob", f"Invalid chunkSize: {size_text}")
    if int(size_text) > MAX_CHUNK_SIZE:
        raise AsyncApiError(
            400,
            "InvalidJob",
            f"Chunk size {size_text} is larger than the maximum of {MAX_CHUNK_SIZE}",
        )
    return int(size_text)


def _narrowed(compiled: CompiledQuery, low: str, high: str | None) -> CompiledQuery:
    where = [f"({compiled.where_sql})"] if compiled.where_sql else []
    params = list(compiled.where_params)
    if low:
        where.append('t0."Id" >= ?')
        params.append(low)
    if high is not None:
        where.append('t0."Id" < ?')
        params.append(high)
    return dataclasses.replace(compiled, where_sql=" AND ".join(where), where_params=params)
