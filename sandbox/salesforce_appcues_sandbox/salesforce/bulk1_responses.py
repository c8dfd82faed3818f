"""Bulk API 1.0 on the wire: JSON or XML job info, XML batch info and result lists, CSV results,
`{"exceptionCode", "exceptionMessage"}` errors (XML `<error>` for non-JSON requests)."""

from __future__ import annotations

import gzip
import json
import logging
from dataclasses import dataclass, field
from typing import Any
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from . import urls
from .bulk1 import AsyncApiError, Batch, Bulk1Jobs, Job

logger = logging.getLogger(__name__)
NAMESPACE = "http://www.force.com/2009/06/asyncapi/dataload"
JSON_TYPE = "application/json"  # exactly: singer-io's tap compares the header to it
XML_TYPE = "application/xml"
CSV_TYPE = "text/csv"


@dataclass
class Bulk1Answer:
    status: int
    body: bytes
    media_type: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Bulk1Call:
    method: str
    version: str
    rest: str
    content_type: str
    pk_chunking: str | None
    body: bytes
    accept_encoding: str = ""

    @property
    def wants_json(self) -> bool:
        return "json" in self.content_type.lower()


class Bulk1Api:
    """Handlers of the async API's routes (urls.ASYNC_ROUTES)."""

    def __init__(self, jobs: Bulk1Jobs, user_id: str) -> None:
        self.jobs = jobs
        self.user_id = user_id

    def handle(self, call: Bulk1Call) -> Bulk1Answer:
        found = urls.match(call.method, call.rest, bulk1=True)
        try:
            if found is None:
                raise AsyncApiError(404, "InvalidUrl", f"Unknown resource: {call.rest}")
            if found.handler is None:
                raise AsyncApiError(
                    405, "InvalidUrl", f"Method {call.method} not allowed on {call.rest}"
                )
            answer: Bulk1Answer = getattr(self, found.handler)(call, **found.params)
        except AsyncApiError as exc:
            return error_answer(exc, as_json=call.wants_json)
        except Exception:  # a sandbox bug still answers in the async API's shape
            logger.exception("unexpected error in %s %s", call.method, call.rest)
            failure = AsyncApiError(500, "InternalServerError", "An unexpected error occurred")
            return error_answer(failure, as_json=call.wants_json)
        return answer

    # -- jobs ---------------------------------------------------------------------------
    def create_job(self, call: Bulk1Call) -> Bulk1Answer:
        spec = _request_fields(call)
        job = self.jobs.create_job(
            spec.get("operation"),
            spec.get("object"),
            spec.get("contentType"),
            call.version,
            call.pk_chunking,
        )
        return self._job_answer(201, job, call)

    def get_job(self, call: Bulk1Call, job: str) -> Bulk1Answer:
        return self._job_answer(200, self.jobs.job(job), call)

    def set_job_state(self, call: Bulk1Call, job: str) -> Bulk1Answer:
        state = _request_fields(call).get("state")
        return self._job_answer(200, self.jobs.set_state(job, state), call)

    def _job_answer(self, status: int, job: Job, call: Bulk1Call) -> Bulk1Answer:
        info = self.job_info(job)
        if call.wants_json:
            return Bulk1Answer(status, json.dumps(info).encode(), JSON_TYPE)
        for key in ("createdDate", "systemModstamp"):
            info[key] = info[key].replace("+0000", "Z")
        info = {k: v for k, v in info.items() if v is not None and k != "fastPathEnabled"}
        return Bulk1Answer(status, _xml("jobInfo", info), XML_TYPE)

    def job_info(self, job: Job) -> dict[str, Any]:
        states = [b.state for b in job.batches]
        return {
            "apexProcessingTime": 0,
            "apiActiveProcessingTime": 0,
            "apiVersion": float(job.api_version),
            "assignmentRuleId": None,
            "concurrencyMode": "Parallel",
            "contentType": job.content_type,
            "createdById": self.user_id,
            "createdDate": _json_datetime(job.created),
            "externalIdFieldName": None,
            "fastPathEnabled": False,
            "id": job.id,
            "numberBatchesCompleted": states.count("Completed"),
            "numberBatchesFailed": states.count("Failed"),
            "numberBatchesInProgress": states.count("InProgress"),
            "numberBatchesQueued": states.count("Queued"),
            "numberBatchesTotal": len(states),
            "numberRecordsFailed": 0,
            "numberRecordsProcessed": sum(b.records for b in job.batches),
            "numberRetries": 0,
            "object": job.object,
            "operation": job.operation,
            "state": job.state,
            "systemModstamp": _json_datetime(job.modstamp),
            "totalProcessingTime": 0,
        }

    # -- batches ------------------------------------------------------------------------
    def add_batch(self, call: Bulk1Call, job: str) -> Bulk1Answer:
        soql = call.body.decode("utf-8", "replace")
        batch = self.jobs.add_batch(job, soql)
        # Salesforce answers before it looks at the query: the new batch is Queued.
        return Bulk1Answer(201, _xml("batchInfo", batch_info(batch, state="Queued")), XML_TYPE)

    def get_batch(self, call: Bulk1Call, job: str, batch: str) -> Bulk1Answer:
        return Bulk1Answer(
            200, _xml("batchInfo", batch_info(self.jobs.batch(job, batch))), XML_TYPE
        )

    def list_batches(self, call: Bulk1Call, job: str) -> Bulk1Answer:
        batches = self.jobs.job(job).batches
        inner = "".join(_element("batchInfo", batch_info(b)) for b in list(batches))
        return Bulk1Answer(
            200, _document(f'<batchInfoList xmlns="{NAMESPACE}">{inner}</batchInfoList>'), XML_TYPE
        )

    def get_request(self, call: Bulk1Call, job: str, batch: str) -> Bulk1Answer:
        return Bulk1Answer(200, self.jobs.batch(job, batch).query.encode(), CSV_TYPE)

    def list_results(self, call: Bulk1Call, job: str, batch: str) -> Bulk1Answer:
        results = "".join(f"<result>{rid}</result>" for rid in self.jobs.result_ids(job, batch))
        body = _document(f'<result-list xmlns="{NAMESPACE}">{results}</result-list>')
        return Bulk1Answer(200, body, XML_TYPE)

    def get_result(self, call: Bulk1Call, job: str, batch: str, result: str) -> Bulk1Answer:
        data = self.jobs.result_file(job, batch, result)
        if "gzip" in call.accept_encoding.lower():
            data = gzip.compress(data, compresslevel=1)
            return Bulk1Answer(200, data, CSV_TYPE, {"Content-Encoding": "gzip"})
        return Bulk1Answer(200, data, CSV_TYPE)


def batch_info(batch: Batch, state: str | None = None) -> dict[str, Any]:
    info: dict[str, Any] = {
        "id": batch.id,
        "jobId": batch.job_id,
        "state": state or batch.state,
    }
    if state is None and batch.state_message:
        info["stateMessage"] = batch.state_message
    info.update(
        createdDate=batch.created,
        systemModstamp=batch.modstamp if state is None else batch.created,
        numberRecordsProcessed=batch.records if state is None else 0,
        numberRecordsFailed=0,
        totalProcessingTime=0,
        apiActiveProcessingTime=0,
        apexProcessingTime=0,
    )
    return info


def error_answer(exc: AsyncApiError, *, as_json: bool) -> Bulk1Answer:
    if as_json:
        body = {"exceptionCode": exc.code, "exceptionMessage": exc.message}
        return Bulk1Answer(exc.status, json.dumps(body).encode(), JSON_TYPE)
    fields = {"exceptionCode": exc.code, "exceptionMessage": exc.message}
    return Bulk1Answer(exc.status, _xml("error", fields), XML_TYPE)


def _request_fields(call: Bulk1Call) -> dict[str, Any]:
    """A jobInfo request body, JSON or XML, as a flat dict."""
    text = call.body.decode("utf-8", "replace")
    if call.wants_json:
        try:
            body = json.loads(text)
        except ValueError:
            raise AsyncApiError(400, "InvalidJob", "Unable to parse the JSON request") from None
        if not isinstance(body, dict):
            raise AsyncApiError(400, "InvalidJob", "The request must be a JSON object")
        return body
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError:
        raise AsyncApiError(400, "XmlParserError", "Unable to parse the XML request") from None
    if root.tag.rpartition("}")[2] != "jobInfo":
        raise AsyncApiError(400, "InvalidJob", "The request must be a jobInfo element")
    return {child.tag.rpartition("}")[2]: (child.text or "").strip() for child in root}


def _json_datetime(stored: str) -> str:
    return stored[:-1] + "+0000" if stored.endswith("Z") else stored


def _element(tag: str, fields: dict[str, Any]) -> str:
    inner = "".join(f"<{k}>{escape(_text(v))}</{k}>" for k, v in fields.items())
    return f"<{tag}>{inner}</{tag}>"


def _xml(tag: str, fields: dict[str, Any]) -> bytes:
    element = _element(tag, fields)
    return _document(element.replace(f"<{tag}>", f'<{tag} xmlns="{NAMESPACE}">', 1))


def _document(xml: str) -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?>' + xml).encode()


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
