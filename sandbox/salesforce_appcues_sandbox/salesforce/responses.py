"""REST handlers: one method per Salesforce endpoint, answering in Salesforce's wire format.

Handlers are synchronous (SQLite); the service runs them in a worker thread. Each takes an
`ApiCall` and returns an `ApiResult`; `urls.py` maps paths to them.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from . import datetimes, wire
from .bulk import BulkQueryJobs
from .ingest_responses import IngestHandlers
from .models import (
    Org,
    RecordError,
    SalesforceError,
    WriteOp,
    WriteResult,
    stamp,
)
from .query_engine import QueryEngine, QueryPage
from .schema import ObjectDef
from .soql import SoqlError
from .wire import ApiCall, ApiResult, error

MAX_COLLECTION = 200
MAX_CHUNKS = 10  # runs of same-type records one collection call may hold
REPLICATION_WINDOW = timedelta(days=30)
MAX_BATCH = 25
MAX_COMPOSITE_HEAVY = 5  # sObject Collections and query subrequests in one composite
_COLLECTIONS_PATH = re.compile(r"/composite/sobjects(?:/|$)")
_QUERY_PATH = re.compile(r"/(?:query|queryAll)(?:/|\?|$)")
_BATCH_SIZE = re.compile(r"batchSize\s*=\s*(\d+)", re.IGNORECASE)


class RestApi(IngestHandlers):
    """The org's REST surface (everything under /services/data/vXX.X/)."""

    def __init__(self, org: Org, engine: QueryEngine, bulk: BulkQueryJobs, limits: Any) -> None:
        self.org = org
        self.engine = engine
        self.bulk = bulk
        self.limits = limits  # the service's ApiUsage, for /limits
        self.dispatch: Any = None  # set by the service: runs a composite subrequest
        self.base_url: Callable[[], str] = lambda: ""  # set by the service

    # --- discovery ------------------------------------------------------------------
    def resources(self, call: ApiCall) -> ApiResult:
        base = f"/services/data/v{call.version}"
        names = [
            "tooling",
            "metadata",
            "eclair",
            "folders",
            "prechatForms",
            "jobs",
            "analytics",
            "search",
            "identity",
            "composite",
            "parameterizedSearch",
            "theme",
            "nouns",
            "event",
            "serviceTemplates",
            "recent",
            "connect",
            "licensing",
            "limits",
            "process",
            "async-queries",
            "query",
            "match",
            "emailConnect",
            "compactLayouts",
            "knowledgeManagement",
            "sobjects",
            "actions",
            "support",
        ]
        body = {n: f"{base}/{n}" for n in names}
        body["queryAll"] = f"{base}/queryAll"
        body["identity"] = f"{self.base_url()}/id/{self.org.org_id}/{self.org.user_id}"
        return ApiResult(200, body)

    def describe_global(self, call: ApiCall) -> ApiResult:
        return ApiResult(200, wire.describe_global(self.org.user_schema, call.version))

    def sobject_info(self, call: ApiCall) -> ApiResult:
        obj = self.org.object(call.params["obj"])
        return ApiResult(
            200, {"objectDescribe": wire.global_entry(obj, call.version), "recentItems": []}
        )

    def describe(self, call: ApiCall) -> ApiResult:
        obj = self.org.object(call.params["obj"])
        defaults = self.org.defaults.get(obj.name, {})
        return ApiResult(
            200, wire.describe_object(obj, self.org.user_schema, call.version, defaults)
        )

    def limits_info(self, call: ApiCall) -> ApiResult:
        return ApiResult(200, self.limits.limits_json())

    # --- replication (getUpdated / getDeleted) --------------------------------------
    def get_updated(self, call: ApiCall) -> ApiResult:
        obj, start, end = self._replication_window(call)
        rows = self.org.changed_between(obj, start, end, deleted=False)
        return ApiResult(
            200, {"ids": [r[0] for r in rows], "latestDateCovered": wire.rest_datetime(end)}
        )

    def get_deleted(self, call: ApiCall) -> ApiResult:
        obj, start, end = self._replication_window(call)
        rows = self.org.changed_between(obj, start, end, deleted=True)
        earliest = self.org.clock.now() - REPLICATION_WINDOW
        return ApiResult(
            200,
            {
                "deletedRecords": [
                    {"id": r[0], "deletedDate": wire.rest_datetime(r[1])} for r in rows
                ],
                "earliestDateAvailable": wire.rest_datetime(stamp(earliest)),
                "latestDateCovered": wire.rest_datetime(end),
            },
        )

    def _replication_window(self, call: ApiCall) -> tuple[ObjectDef, str, str]:
        obj = self.org.object(call.params["obj"])
        start_text, end_text = call.query.get("start"), call.query.get("end")
        if not start_text or not end_text:
            raise SalesforceError(400, "MISSING_ARGUMENT", "start and end are required")
        start, end = datetimes.parse_value(start_text), datetimes.parse_value(end_text)
        if start is None or end is None:
            raise SalesforceError(
                400, "INVALID_REPLICATION_DATE", "start and end must be ISO 8601 datetimes"
            )
        now = self.org.clock.now()
        if end < start:
            raise SalesforceError(
                400, "INVALID_REPLICATION_DATE", "EndDate can not be before StartDate"
            )
        if start < now - REPLICATION_WINDOW:
            raise SalesforceError(
                400, "INVALID_REPLICATION_DATE", "startDate cannot be more than 30 days ago"
            )
        # Whole minutes, as Salesforce covers them; never past the present.
        end = min(end, now).replace(second=0, microsecond=0)
        start = start.replace(second=0, microsecond=0)
        return obj, stamp(start), stamp(end)

    # --- single records -------------------------------------------------------------
    def create(self, call: ApiCall) -> ApiResult:
        obj = self.org.object(call.params["obj"])
        body = _record_body(call.json())
        result = self.org.write([WriteOp("create", obj.name, body)], all_or_none=True)[0]
        if not result.success:
            return wire.single_record_error(result.errors[0])
        return ApiResult(201, {"id": result.id, "success": True, "errors": []})

    def get_record(self, call: ApiCall) -> ApiResult:
        obj = self.org.object(call.params["obj"])
        row = self.org.get_row(obj, call.params["id"])
        if row is None or row["IsDeleted"] or row["Id"][:3] != obj.key_prefix:
            return _not_found()
        only = [f for f in call.query.get("fields", "").split(",") if f.strip()] or None
        if only:
            unknown = [f for f in only if obj.field(f.strip()) is None]
            if unknown:
                return error(
                    400,
                    "INVALID_FIELD",
                    f"No such column '{unknown[0].strip()}' on sobject of type {obj.name}",
                )
            only = [f.strip() for f in only]
        return ApiResult(200, wire.record_json(obj, row, call.version, only))

    def _exists(self, obj: ObjectDef, record_id: str) -> bool:
        """Single-record REST answers 404 for an id that names no record of the object."""
        row = self.org.get_row(obj, record_id) if record_id[:3] == obj.key_prefix else None
        return row is not None

    def update(self, call: ApiCall) -> ApiResult:
        obj = self.org.object(call.params["obj"])
        if not self._exists(obj, call.params["id"]):
            return _not_found()
        body = _record_body(call.json())
        op = WriteOp("update", obj.name, body, record_id=call.params["id"])
        result = self.org.write([op], all_or_none=True)[0]
        if not result.success:
            return _single_write_error(result)
        return ApiResult(204)

    def delete(self, call: ApiCall) -> ApiResult:
        obj = self.org.object(call.params["obj"])
        rid = call.params["id"]
        if not self._exists(obj, rid):
            return _not_found()
        result = self.org.write([WriteOp("delete", record_id=rid)], all_or_none=True)[0]
        if not result.success:
            return _single_write_error(result)
        return ApiResult(204)

    def get_by_external_id(self, call: ApiCall) -> ApiResult:
        obj = self.org.object(call.params["obj"])
        fdef = self.org.external_id_field(obj, call.params["field"])
        matches = self.org.find_by_field(obj, fdef, call.params["value"])
        if not matches:
            return _not_found()
        if len(matches) > 1:
            return self._multiple(obj.name, matches, call.version)
        row = self.org.get_row(obj, matches[0])
        assert row is not None
        return ApiResult(200, wire.record_json(obj, row, call.version))

    def upsert(self, call: ApiCall) -> ApiResult:
        obj = self.org.object(call.params["obj"])
        fdef = self.org.external_id_field(obj, call.params["field"])
        value = call.params["value"]
        body = _record_body(call.json())
        if any(k.lower() == fdef.name.lower() for k in body) and fdef.name != "Id":
            sent = next(v for k, v in body.items() if k.lower() == fdef.name.lower())
            if str(sent) != value:
                return error(
                    400,
                    "INVALID_FIELD",
                    f"The value of the external ID field in the URL and the body differ: "
                    f"{fdef.name}",
                )
        matches = self.org.find_by_field(obj, fdef, value)
        if len(matches) > 1:
            return self._multiple(obj.name, matches, call.version)
        if call.query.get("updateOnly", "").lower() == "true" and not matches:
            return _not_found()
        op = WriteOp("upsert", obj.name, body, ext_field=fdef.name, ext_value=value)
        result = self.org.write([op], all_or_none=True)[0]
        if not result.success:
            return _single_write_error(result)
        if result.created:
            return ApiResult(201, {"id": result.id, "success": True, "errors": [], "created": True})
        if _version_number(call.version) >= 46.0:
            return ApiResult(
                200, {"id": result.id, "success": True, "errors": [], "created": False}
            )
        return ApiResult(204)

    def _multiple(self, obj: str, matches: list[str], version: str) -> ApiResult:
        return ApiResult(300, [f"/services/data/v{version}/sobjects/{obj}/{m}" for m in matches])

    # --- sObject Collections --------------------------------------------------------
    def collection_create(self, call: ApiCall) -> ApiResult:
        all_or_none, records = _collection_body(call.json())
        ops = []
        for rec in records:
            obj = self._record_type(rec)
            if any(k.lower() == "id" for k in rec):
                refused = RecordError(
                    "INVALID_FIELD", "cannot specify Id in an insert call", ["Id"]
                )
                ops.append(WriteOp("create", obj, error=refused))
                continue
            ops.append(WriteOp("create", obj, _strip_attributes(rec)))
        results = self._write_collection(ops, all_or_none)
        return ApiResult(200, [wire.write_result_json(r) for r in results])

    def collection_update(self, call: ApiCall) -> ApiResult:
        all_or_none, records = _collection_body(call.json())
        ops = []
        for rec in records:
            obj = self._record_type(rec)
            rid = next((str(v) for k, v in rec.items() if k.lower() == "id"), "")
            body = {k: v for k, v in _strip_attributes(rec).items() if k.lower() != "id"}
            ops.append(WriteOp("update", obj, body, record_id=rid))
        results = self._write_collection(ops, all_or_none)
        return ApiResult(200, [wire.write_result_json(r) for r in results])

    def collection_upsert(self, call: ApiCall) -> ApiResult:
        obj = self.org.object(call.params["obj"])
        fdef = self.org.external_id_field(obj, call.params["field"])
        all_or_none, records = _collection_body(call.json())
        ops = []
        for rec in records:
            rtype = self._record_type(rec)
            if rtype.lower() != obj.name.lower():
                raise SalesforceError(
                    400,
                    "INVALID_FIELD",
                    f"The sObject type {rtype} of the record does not match {obj.name}",
                )
            value = next((v for k, v in rec.items() if k.lower() == fdef.name.lower()), None)
            ops.append(
                WriteOp(
                    "upsert", obj.name, _strip_attributes(rec), ext_field=fdef.name, ext_value=value
                )
            )
        results = self._write_collection(ops, all_or_none)
        return ApiResult(200, [wire.write_result_json(r, upsert=True) for r in results])

    def collection_delete(self, call: ApiCall) -> ApiResult:
        id_list = [i for i in call.query.get("ids", "").split(",") if i]
        if not id_list:
            return error(400, "MISSING_ARGUMENT", "ids parameter is required")
        if len(id_list) > MAX_COLLECTION:
            return _too_many()
        all_or_none = call.query.get("allOrNone", "false").lower() == "true"
        ops = [WriteOp("delete", record_id=i) for i in id_list]
        results = self.org.write(ops, all_or_none=all_or_none)
        return ApiResult(200, [wire.write_result_json(r) for r in results])

    def collection_retrieve(self, call: ApiCall) -> ApiResult:
        obj = self.org.object(call.params["obj"])
        id_list = [i for i in call.query.get("ids", "").split(",") if i]
        fields = [f.strip() for f in call.query.get("fields", "").split(",") if f.strip()]
        if not id_list or not fields:
            return error(400, "MISSING_ARGUMENT", "ids and fields parameters are required")
        out: list[Any] = []
        for rid in id_list:
            row = self.org.get_row(obj, rid)
            if row is None or row["IsDeleted"]:
                out.append(None)
            else:
                out.append(wire.record_json(obj, row, call.version, fields))
        return ApiResult(200, out)

    def _record_type(self, rec: dict[str, Any]) -> str:
        attributes = rec.get("attributes")
        rtype = attributes.get("type") if isinstance(attributes, dict) else None
        if not rtype:
            raise SalesforceError(
                400,
                "INVALID_TYPE",
                "In order to use sObject Collections, each record must have an attributes "
                "field with a type",
            )
        obj = self.org.user_schema.get(str(rtype))
        if obj is None:
            raise SalesforceError(400, "INVALID_TYPE", f"sObject type '{rtype}' is not supported.")
        return obj.name

    def _write_collection(self, ops: list[WriteOp], all_or_none: bool) -> list[WriteResult]:
        return self.org.write(ops, all_or_none=all_or_none)

    # --- composite batch ------------------------------------------------------------
    def composite_batch(self, call: ApiCall) -> ApiResult:
        body = call.json()
        if not isinstance(body, dict) or not isinstance(body.get("batchRequests"), list):
            return error(400, "JSON_PARSER_ERROR", "batchRequests is required")
        requests = body["batchRequests"]
        if len(requests) > MAX_BATCH:
            return error(
                400,
                "INVALID_BATCH_REQUEST",
                f"A batch cannot contain more than {MAX_BATCH} requests",
            )
        halt = bool(body.get("haltOnError", False))
        results: list[dict[str, Any]] = []
        halted = False
        for sub in requests:
            if halted:
                results.append(
                    {
                        "statusCode": 412,
                        "result": [
                            {
                                "errorCode": "BATCH_PROCESSING_HALTED",
                                "message": "Batch processing halted per request",
                            }
                        ],
                    }
                )
                continue
            res = self._run_subrequest(sub, call)
            results.append({"statusCode": res.status, "result": res.body})
            if res.status >= 400 and halt:
                halted = True
        has_errors = any(r["statusCode"] >= 400 for r in results)
        return ApiResult(200, {"hasErrors": has_errors, "results": results})

    def _run_subrequest(self, sub: Any, call: ApiCall) -> ApiResult:
        if not isinstance(sub, dict) or "url" not in sub or "method" not in sub:
            return error(400, "INVALID_BATCH_REQUEST", "each batch request needs method and url")
        parts = urlsplit(str(sub["url"]))
        path = parts.path
        path = "/" + path.lstrip("/")
        if not path.startswith("/services/data/"):
            path = "/services/data" + path
        if re.match(r"^/services/data/v\d+\.\d+/composite/batch", path):
            return error(400, "INVALID_BATCH_REQUEST", "composite batch cannot be nested")
        rich = sub.get("richInput")
        raw = json.dumps(rich).encode() if rich is not None else b""
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        result: ApiResult = self.dispatch(str(sub["method"]).upper(), path, query, call, raw)
        if result.status == 204:
            return ApiResult(204, None)
        return result

    # --- composite (compositeRequest) ------------------------------------------------
    def composite(self, call: ApiCall) -> ApiResult:
        body = call.json()
        subs = body.get("compositeRequest") if isinstance(body, dict) else None
        if not isinstance(subs, list) or not subs:
            return error(400, "JSON_PARSER_ERROR", "compositeRequest is required")
        if len(subs) > MAX_BATCH:
            return error(
                400,
                "INVALID_BATCH_REQUEST",
                f"A composite request cannot contain more than {MAX_BATCH} subrequests",
            )
        refs = [s.get("referenceId") if isinstance(s, dict) else None for s in subs]
        if not all(isinstance(r, str) and r for r in refs) or len(set(refs)) != len(refs):
            return error(400, "INVALID_REFERENCE_ID", "each subrequest needs a unique referenceId")
        heavy = sum(1 for s in subs if _is_collection_or_query(str(s.get("url", ""))))
        if heavy > MAX_COMPOSITE_HEAVY:
            # the limit is documented; the error code and message are a guess (docs/sandbox.md)
            return error(
                400,
                "INVALID_BATCH_REQUEST",
                f"A composite request cannot contain more than {MAX_COMPOSITE_HEAVY} "
                "sObject Collections or query subrequests",
            )
        flag = body.get("allOrNone", False)
        all_or_none = flag.lower() == "true" if isinstance(flag, str) else bool(flag)
        try:
            with self.org.transaction():
                out = self._run_composite(subs, call, all_or_none)
                if all_or_none and any(_sub_failed(r) for r in out):
                    # failures keep their own error; what had succeeded is undone
                    raise _CompositeRollbackError(
                        [
                            r if _sub_failed(r) else _halted(r["referenceId"], _ROLLED_BACK_MESSAGE)
                            for r in out
                        ]
                    )
        except _CompositeRollbackError as rolled:
            out = rolled.responses
        return ApiResult(200, {"compositeResponse": out})

    def _run_composite(
        self, subs: list[dict[str, Any]], call: ApiCall, all_or_none: bool
    ) -> list[dict[str, Any]]:
        done: dict[str, Any] = {}
        out: list[dict[str, Any]] = []
        halted = False
        for sub in subs:
            ref = str(sub["referenceId"])
            if halted:
                out.append(_halted(ref, _ROLLED_BACK_MESSAGE))
                continue
            try:
                url = _substitute(str(sub.get("url", "")), done)
                sub_body = _substitute(sub.get("body"), done)
            except _UnresolvedReferenceError as exc:
                out.append(_halted(ref, str(exc)))
                halted = halted or all_or_none
                continue
            parts = urlsplit(url)
            path = "/" + parts.path.lstrip("/")
            collection = _COLLECTIONS_PATH.search(path) is not None
            if all_or_none and collection and isinstance(sub_body, dict):
                # the composite's allOrNone overrides its collections' own flag
                sub_body = {**sub_body, "allOrNone": True}
            raw = json.dumps(sub_body).encode() if sub_body is not None else b""
            query = dict(parse_qsl(parts.query, keep_blank_values=True))
            result: ApiResult = self.dispatch(
                str(sub.get("method", "GET")).upper(), path, query, call, raw
            )
            headers: dict[str, str] = {}
            if result.status == 201 and isinstance(result.body, dict) and "id" in result.body:
                headers["Location"] = f"{path.rstrip('/')}/{result.body['id']}"
            out.append(
                {
                    "body": result.body,
                    "httpHeaders": headers,
                    "httpStatusCode": result.status,
                    "referenceId": ref,
                }
            )
            failed = result.status >= 400 or (collection and _any_record_failed(result.body))
            if not failed:
                done[ref] = result.body
            elif all_or_none:
                halted = True  # the rest is not run
        return out

    # --- query ----------------------------------------------------------------------
    def query(self, call: ApiCall) -> ApiResult:
        return self._query(call, include_deleted=False)

    def query_all(self, call: ApiCall) -> ApiResult:
        return self._query(call, include_deleted=True)

    def _query(self, call: ApiCall, *, include_deleted: bool) -> ApiResult:
        soql = call.query.get("q")
        if soql is None or not soql.strip():
            return error(400, "MALFORMED_QUERY", "A query string has to be specified")
        batch = 2000
        options = call.headers.get("sforce-query-options", "")
        m = _BATCH_SIZE.search(options)
        if m:
            batch = max(200, min(2000, int(m.group(1))))
        try:
            page = self.engine.run(
                soql, include_deleted=include_deleted, batch_size=batch, api_version=call.version
            )
        except SoqlError as exc:
            return error(exc.status, exc.error_code, exc.message)
        return ApiResult(200, _page_json(page, call.version))

    def query_more(self, call: ApiCall) -> ApiResult:
        try:
            page = self.engine.next_page(call.params["locator"], api_version=call.version)
        except SoqlError as exc:
            return error(exc.status, exc.error_code, exc.message)
        return ApiResult(200, _page_json(page, call.version))

    # --- Bulk API 2.0 ---------------------------------------------------------------
    def bulk_create(self, call: ApiCall) -> ApiResult:
        return ApiResult(200, self.bulk.create(call.json(), call.version))

    def bulk_list(self, call: ApiCall) -> ApiResult:
        return ApiResult(200, self.bulk.list(call.version))

    def bulk_get(self, call: ApiCall) -> ApiResult:
        return ApiResult(200, self.bulk.get(call.params["job"]))

    def bulk_abort(self, call: ApiCall) -> ApiResult:
        return ApiResult(200, self.bulk.abort(call.params["job"], call.json()))

    def bulk_delete(self, call: ApiCall) -> ApiResult:
        self.bulk.delete(call.params["job"])
        return ApiResult(204)

    def bulk_results(self, call: ApiCall) -> ApiResult:
        max_text = call.query.get("maxRecords")
        try:
            max_records = int(max_text) if max_text else None
        except ValueError:
            return error(400, "INVALIDQUERYPARAMETER", "maxRecords must be a number")
        data, count, locator = self.bulk.results(
            call.params["job"], call.query.get("locator") or None, max_records
        )
        headers = {"Sforce-Locator": locator, "Sforce-NumberOfRecords": str(count)}
        if "gzip" in call.headers.get("accept-encoding", "").lower():
            data = gzip.compress(data, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        return ApiResult(200, raw=data, media_type="text/csv", headers=headers)


def _version_number(version: str) -> float:
    try:
        return float(version)
    except ValueError:
        return 0.0


def _not_found() -> ApiResult:
    return error(404, "NOT_FOUND", "The requested resource does not exist")


def _too_many() -> ApiResult:
    return error(
        400,
        "EXCEEDED_ID_LIMIT",
        f"record limit reached. cannot submit more than {MAX_COLLECTION} records into this call",
    )


def _single_write_error(result: WriteResult) -> ApiResult:
    return wire.single_record_error(result.errors[0])


def _record_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise SalesforceError(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
    return _strip_attributes(body)


def _strip_attributes(rec: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rec.items() if k != "attributes"}


def _chunks(records: list[dict[str, Any]]) -> int:
    """Runs of consecutive same-type records: Salesforce processes a collection by them."""
    types = []
    for record in records:
        attributes = record.get("attributes")
        kind = attributes.get("type") if isinstance(attributes, dict) else None
        types.append(str(kind or "").lower())
    return sum(1 for i, kind in enumerate(types) if i == 0 or kind != types[i - 1])


def _collection_body(body: Any) -> tuple[bool, list[dict[str, Any]]]:
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        raise SalesforceError(400, "JSON_PARSER_ERROR", "The request body must have records")
    records = body["records"]
    if len(records) > MAX_COLLECTION:
        raise SalesforceError(
            400,
            "EXCEEDED_ID_LIMIT",
            f"record limit reached. cannot submit more than {MAX_COLLECTION} records into "
            "this call",
        )
    if not all(isinstance(r, dict) for r in records):
        raise SalesforceError(400, "JSON_PARSER_ERROR", "each record must be a JSON object")
    if _chunks(records) > MAX_CHUNKS:
        raise SalesforceError(
            400,
            "INVALID_OPERATION",
            f"Cannot have more than {MAX_CHUNKS} chunks in a single operation. Please "
            "rearrange the data to reduce chunking.",
        )
    flag = body.get("allOrNone", False)
    all_or_none = flag.lower() == "true" if isinstance(flag, str) else bool(flag)
    return all_or_none, records


def _page_json(page: QueryPage, version: str) -> dict[str, Any]:
    out: dict[str, Any] = {"totalSize": page.total_size, "done": page.done}
    if page.next_locator:
        out["nextRecordsUrl"] = f"/services/data/v{version}/query/{page.next_locator}"
    out["records"] = page.records
    return out


_ROLLED_BACK_MESSAGE = (
    "The transaction was rolled back since another operation in the same transaction failed."
)
_REFERENCE = re.compile(r"@\{([A-Za-z0-9_]+)((?:\.[A-Za-z0-9_]+|\[\d+\])*)\}")


class _CompositeRollbackError(Exception):
    def __init__(self, responses: list[dict[str, Any]]) -> None:
        super().__init__("composite rolled back")
        self.responses = responses


class _UnresolvedReferenceError(Exception):
    pass


def _halted(ref: str, message: str) -> dict[str, Any]:
    return {
        "body": [{"errorCode": "PROCESSING_HALTED", "message": message}],
        "httpHeaders": {},
        "httpStatusCode": 400,
        "referenceId": ref,
    }


def _resolve(match: re.Match[str], done: dict[str, Any]) -> Any:
    ref, path = match.group(1), match.group(2)
    if ref not in done:
        raise _UnresolvedReferenceError(
            f"Invalid reference specified. No value for {ref}{path} found in {ref}. "
            f"Provided referenceId ({ref}) must be a previous successful subrequest."
        )
    value = done[ref]
    for step in re.findall(r"\.([A-Za-z0-9_]+)|\[(\d+)\]", path):
        key, index = step
        try:
            value = value[int(index)] if index else value[key]
        except (KeyError, IndexError, TypeError):
            raise _UnresolvedReferenceError(
                f"Invalid reference specified. No value for {ref}{path} found in {ref}."
            ) from None
    return value


def _substitute(value: Any, done: dict[str, Any]) -> Any:
    """Replace `@{ref.path}` in strings (a whole-string reference keeps the value's type)."""
    if isinstance(value, str):
        whole = _REFERENCE.fullmatch(value)
        if whole:
            return _resolve(whole, done)
        return _REFERENCE.sub(lambda m: str(_resolve(m, done)), value)
    if isinstance(value, list):
        return [_substitute(v, done) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, done) for k, v in value.items()}
    return value


def _is_collection_or_query(url: str) -> bool:
    path = urlsplit(url).path
    return bool(_COLLECTIONS_PATH.search(path) or _QUERY_PATH.search(path + "/"))


def _any_record_failed(body: Any) -> bool:
    """A collection answers 200 with per-record results; one refused record is a failure."""
    return isinstance(body, list) and any(
        isinstance(r, dict) and r.get("success") is False for r in body
    )


def _sub_failed(response: dict[str, Any]) -> bool:
    if response["httpStatusCode"] >= 400:
        return True
    return _any_record_failed(response["body"]) and isinstance(response["body"], list)
