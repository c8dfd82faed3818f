"""The emulated Salesforce org as a sandbox service: OAuth, REST, Bulk 2.0, Bulk 1.0 (query)
and control routes.

Options (`Sandbox(options={"salesforce": {...}})`): schema_file, token_ttl_seconds (7200),
daily_api_limit (100000), limit_info_format ("bare" | "extended"), rotate_refresh_tokens,
refresh_token_reuse_revokes_family (false), sandbox_org (false: JWT audience
login.salesforce.com; true: test.salesforce.com),
bulk1_result_file_records (100000: records per Bulk 1.0 result file),
upsert_nonunique_external_id_exact (false: upserts by a non-unique External ID field ignore
case; true: they compare exactly), ingest_* (Bulk 2.0 ingest: see `ingest.IngestSettings`).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from ..common.clock import SandboxClock
from ..common.faults import FaultRule
from ..common.identities import DEMO_SEED
from ..common.service import SandboxService, control_json
from . import soap, urls, wire
from .bulk import BulkQueryJobs
from .bulk1 import AsyncApiError, Bulk1Jobs
from .bulk1_responses import Bulk1Answer, Bulk1Api, Bulk1Call, error_answer
from .header_case import SalesforceHeaderCase
from .ingest import IngestJobs, IngestSettings
from .models import INTEGRATION_USERNAME, Org, SalesforceError, WriteOp
from .oauth import OAuthError, OAuthServer
from .query_engine import QueryEngine
from .responses import ApiCall, RestApi
from .seed import seed_org
from .soql import SoqlError
from .usage import ApiUsage
from .wire import ApiResult, error

logger = logging.getLogger(__name__)
JSON_TYPE = "application/json;charset=UTF-8"
OLDEST_VERSION = 20
LATEST_VERSION = 66
# Messages Salesforce sends with the error codes fault rules usually inject.
_FAULT_MESSAGES = {
    "SERVER_UNAVAILABLE": "Server temporarily unavailable. Please try again later.",
    "REQUEST_LIMIT_EXCEEDED": "TotalRequests Limit exceeded.",
    "QUERY_TIMEOUT": "Your query request was running for too long.",
    "INVALID_SESSION_ID": "Session expired or invalid",
    "UNABLE_TO_LOCK_ROW": "unable to obtain exclusive access to this record",
    "UNKNOWN_EXCEPTION": "An unexpected error occurred. Please include this ErrorId if you "
    "contact support: 1234567890-12345 (-1234567890)",
    "CustomNotAcceptable": "The server cannot produce a response matching the Accept header",
}
_DEFAULT_FAULT_CODE = {
    400: "QUERY_TIMEOUT",
    401: "INVALID_SESSION_ID",
    403: "REQUEST_LIMIT_EXCEEDED",
    404: "NOT_FOUND",
    406: "CustomNotAcceptable",
    429: "REQUEST_LIMIT_EXCEEDED",
    500: "UNKNOWN_EXCEPTION",
    503: "SERVER_UNAVAILABLE",
}


class SalesforceService(SandboxService):
    name: ClassVar[str] = "salesforce"

    def __init__(self, clock: SandboxClock, data_dir: Path | None = None, **options: Any) -> None:
        super().__init__(clock, data_dir, **options)
        self.org = Org(clock, data_dir, options.get("schema_file"))
        self.org.nonunique_external_id_exact = bool(
            options.get("upsert_nonunique_external_id_exact", False)
        )
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if data_dir is not None:
            key_dir = data_dir / "salesforce"
        else:
            self._tmp = tempfile.TemporaryDirectory(prefix="sf-sandbox-keys-")
            key_dir = Path(self._tmp.name)
        self.oauth = OAuthServer(
            clock,
            key_dir,
            org_id=self.org.org_id,
            user_id=self.org.user_id,
            username=INTEGRATION_USERNAME,
            token_ttl_seconds=float(options.get("token_ttl_seconds", 7200)),
            rotate_refresh_tokens=bool(options.get("rotate_refresh_tokens", False)),
            sandbox_org=bool(options.get("sandbox_org", False)),
            reuse_revokes_family=bool(options.get("refresh_token_reuse_revokes_family", False)),
        )
        self.usage = ApiUsage(
            clock,
            int(options.get("daily_api_limit", 100_000)),
            str(options.get("limit_info_format", "bare")),
        )
        self.engine = QueryEngine(self.org.conn, self.org.lock, self.org.user_schema)
        self.bulk = BulkQueryJobs(clock, self.engine, self.org.user_id, self.stats)
        self.usage.bulk_jobs_created = lambda: self.bulk.created_today
        self.bulk1 = Bulk1Jobs(
            clock,
            self.engine,
            self.stats,
            int(options.get("bulk1_result_file_records", 100_000)),
        )
        self.ingest = IngestJobs(
            clock,
            self.org,
            self.stats,
            IngestSettings.from_options(options),
        )
        # Bulk 1.0 batches and Bulk 2.0 ingest's internal batches share one daily allocation.
        self.usage.bulk_batches_created = lambda: (
            self.bulk1.batches_created + self.ingest.batches_created
        )
        self.bulk1_api = Bulk1Api(self.bulk1, self.org.user_id)
        self.api = RestApi(self.org, self.engine, self.bulk, self.usage)
        self.api.ingest = self.ingest
        self.api.dispatch = self._subrequest
        self.api.base_url = lambda: self.base_url

    # --- SandboxService ---------------------------------------------------------------
    def build_app(self) -> ASGIApp:
        return SalesforceHeaderCase(super().build_app())

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/services/oauth2/token", self._token, methods=["POST"]),
            Route("/services/oauth2/revoke", self._revoke, methods=["POST", "GET"]),
            Route("/services/oauth2/userinfo", self._userinfo, methods=["GET", "POST"]),
            Route("/id/{org}/{user}", self._identity, methods=["GET", "POST"]),
            Route("/services/Soap/u/{version}", self._soap_login, methods=["POST"]),
            Route("/services/data", self._versions, methods=["GET"]),
            Route("/services/data/", self._versions, methods=["GET"]),
            Route(
                "/services/data/{rest:path}",
                self._data,
                methods=["GET", "POST", "PATCH", "PUT", "DELETE", "HEAD"],
            ),
            Route("/services/async/{rest:path}", self._async, methods=["GET", "POST"]),
        ]

    def control_routes(self) -> list[BaseRoute]:
        return [
            Route("/reset", self._reset, methods=["POST"]),
            Route("/seed", self._seed, methods=["POST"]),
            Route("/stats", self._stats, methods=["GET"]),
            Route("/records/{obj}", self._control_records, methods=["POST"]),
            Route("/api-usage", self._api_usage, methods=["POST", "GET"]),
            Route("/expire-sessions", self._expire, methods=["POST"]),
            Route("/bulk", self._bulk_control, methods=["POST"]),
            Route("/leads/{lead_id}/convert", self._convert_lead, methods=["POST"]),
        ]

    def fault_response(self, rule: FaultRule) -> Response:
        code = rule.error_code or _DEFAULT_FAULT_CODE.get(rule.status, "UNKNOWN_EXCEPTION")
        message = rule.message or _FAULT_MESSAGES.get(code, code)
        path = rule.path.pattern if rule.path else ""
        if "oauth2" in path:
            return JSONResponse(
                {"error": code.lower(), "error_description": message}, status_code=rule.status
            )
        if "async" in path:  # Bulk 1.0's own error shape
            return _bulk1_response(
                error_answer(AsyncApiError(rule.status, code, message), as_json=True)
            )
        return _json_response(rule.status, [{"message": message, "errorCode": code}])

    def expire_sessions(self) -> None:
        self.oauth.expire_all()

    def connection_info(self) -> dict[str, Any]:
        self.oauth.base_url = self.base_url
        creds = self.oauth.credentials
        return {
            "login_url": self.base_url,
            "instance_url": self.base_url,
            "client_id": creds.client_id,
            "client_secret": creds.client_secret,
            "refresh_token": creds.refresh_token,
            "username": creds.username,
            "password": creds.password,
            "security_token": creds.security_token,
            "jwt_private_key_file": str(self.oauth.private_key_file),
            "jwt_certificate_file": str(self.oauth.certificate_file),
            "organization_id": self.org.org_id,
            "user_id": self.org.user_id,
        }

    def close(self) -> None:
        self.ingest.close()
        self.bulk1.close()
        self.bulk.close()
        self.org.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def seed_demo(self) -> dict[str, int]:
        """`--seed demo`; an org kept under --data-dir that already holds data is left as is."""
        counts = {k: v for k, v in DEMO_SEED.items() if self.org.schema.get(k) is not None}
        if any(self.org.count(k) for k in counts):
            return {}
        return seed_org(self.org, counts, seed=DEMO_SEED["seed"])

    # --- OAuth --------------------------------------------------------------------------
    async def _token(self, request: Request) -> Response:
        self.oauth.base_url = self.base_url
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        form.update({k: v for k, v in request.query_params.items() if k not in form})
        try:
            body = self.oauth.token(form, _basic_auth(request))
        except OAuthError as exc:
            return JSONResponse(
                {"error": exc.error, "error_description": exc.description},
                status_code=exc.status,
            )
        return _json_response(200, body)

    async def _soap_login(self, request: Request) -> Response:
        xml_type = "text/xml; charset=utf-8"
        login = soap.parse_login(await request.body())
        if login is None:
            body = soap.fault("INVALID_REQUEST", "Only the login() call is emulated")
            return Response(body, status_code=500, media_type=xml_type)
        try:
            self.oauth.check_soap_login(login.username, login.password, login.organization_id)
        except OAuthError as exc:
            return Response(
                soap.fault(exc.error, exc.description), status_code=500, media_type=xml_type
            )
        body = soap.login_response(
            self.base_url,
            request.path_params["version"],
            self.oauth.new_session(),
            self.org.org_id,
            self.org.user_id,
            self.oauth.credentials.username,
            int(self.oauth.ttl.total_seconds()),
        )
        return Response(body, status_code=200, media_type=xml_type)

    async def _revoke(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        token = form.get("token") or request.query_params.get("token", "")
        try:
            self.oauth.revoke(token)
        except OAuthError as exc:
            return JSONResponse(
                {"error": exc.error, "error_description": exc.description}, status_code=400
            )
        return Response(status_code=200)

    async def _userinfo(self, request: Request) -> Response:
        token = _bearer(request)
        if token is None or not self.oauth.is_valid(token):
            return Response(
                "Bad_OAuth_Token", status_code=403, media_type="text/plain;charset=UTF-8"
            )
        return _json_response(200, self.oauth.userinfo())

    async def _identity(self, request: Request) -> Response:
        token = _bearer(request)
        if token is None or not self.oauth.is_valid(token):
            return Response(
                "Bad_OAuth_Token", status_code=403, media_type="text/plain;charset=UTF-8"
            )
        info = self.oauth.userinfo()
        info.update(id=info["sub"], username=info["preferred_username"])
        return _json_response(200, info)

    # --- REST ---------------------------------------------------------------------------
    async def _versions(self, request: Request) -> Response:
        return _json_response(200, versions())

    async def _data(self, request: Request) -> Response:
        raw_path = request.scope.get("raw_path") or request.url.path.encode()
        path = raw_path.decode("latin-1").split("?", 1)[0]
        m = urls.VERSION_PATH.match(path)
        if m is None:
            return _result_response(
                error(404, "NOT_FOUND", "The requested resource does not exist")
            )
        token = _bearer(request)
        if token is None or not self.oauth.is_valid(token):
            return _result_response(error(401, "INVALID_SESSION_ID", "Session expired or invalid"))
        if not self.usage.take():
            response = _result_response(
                error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
            )
            response.headers["Sforce-Limit-Info"] = self.usage.header()
            return response
        if not served(m.group("version")):
            response = _result_response(
                error(404, "NOT_FOUND", "The requested resource does not exist")
            )
            response.headers["Sforce-Limit-Info"] = self.usage.header()
            return response
        call = ApiCall(
            method=request.method,
            version=m.group("version"),
            params={},
            query=dict(request.query_params),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=await request.body(),
        )
        result = await run_in_threadpool(self._route, request.method, m.group("rest") or "", call)
        response = _result_response(result)
        response.headers["Sforce-Limit-Info"] = self.usage.header()
        return response

    async def _async(self, request: Request) -> Response:
        """Bulk API 1.0: /services/async/XX.X/..., session in X-SFDC-Session."""
        call = Bulk1Call(
            method=request.method,
            version="",
            rest="",
            content_type=request.headers.get("content-type", ""),
            pk_chunking=request.headers.get("sforce-enable-pkchunking"),
            body=await request.body(),
            accept_encoding=request.headers.get("accept-encoding", ""),
        )
        m = urls.ASYNC_PATH.match(request.url.path)
        if m is None:
            exc = AsyncApiError(404, "InvalidUrl", "Unknown async API version or resource")
            return _bulk1_response(error_answer(exc, as_json=call.wants_json))
        call.version, call.rest = m.group("version"), m.group("rest") or ""
        if not served(call.version):
            exc = AsyncApiError(404, "InvalidUrl", "Unknown async API version or resource")
            return _bulk1_response(error_answer(exc, as_json=call.wants_json))
        token = _bearer(request)
        if token is None or not self.oauth.is_valid(token):
            exc = AsyncApiError(401, "InvalidSessionId", "Invalid session id")
            return _bulk1_response(error_answer(exc, as_json=call.wants_json))
        if not self.usage.take():
            exc = AsyncApiError(403, "ExceededQuota", "TotalRequests Limit exceeded.")
            response = _bulk1_response(error_answer(exc, as_json=call.wants_json))
        else:
            response = _bulk1_response(await run_in_threadpool(self.bulk1_api.handle, call))
        response.headers["Sforce-Limit-Info"] = self.usage.header()
        return response

    def _route(self, method: str, rest: str, call: ApiCall) -> ApiResult:
        if method == "HEAD":
            method = "GET"
        found = urls.match(method, rest)
        if found is None:
            return error(404, "NOT_FOUND", "The requested resource does not exist")
        if found.handler is None:
            return error(
                405,
                "METHOD_NOT_ALLOWED",
                f"HTTP Method '{method}' not allowed. Allowed are {','.join(found.allowed)}",
            )
        call.params = found.params
        try:
            result: ApiResult = getattr(self.api, found.handler)(call)
        except SalesforceError as exc:
            return error(exc.status, exc.error_code, exc.message, exc.fields)
        except SoqlError as exc:
            return error(exc.status, exc.error_code, exc.message)
        except Exception:  # a sandbox bug still answers in Salesforce's shape
            logger.exception("unexpected error in %s %s", method, rest)
            return error(
                500,
                "UNKNOWN_EXCEPTION",
                "An unexpected error occurred. Please include this ErrorId if you contact "
                "support: sandbox",
            )
        return result

    def _subrequest(
        self, method: str, path: str, query: dict[str, str], parent: ApiCall, body: bytes
    ) -> ApiResult:
        m = urls.VERSION_PATH.match(path)
        if m is None or not served(m.group("version")):
            return error(404, "NOT_FOUND", "The requested resource does not exist")
        call = ApiCall(method, m.group("version"), {}, query, parent.headers, body)
        return self._route(method, m.group("rest") or "", call)

    # --- control ------------------------------------------------------------------------
    async def _reset(self, request: Request) -> Response:
        await run_in_threadpool(self._reset_sync)
        return JSONResponse({"reset": True})

    def _reset_sync(self) -> None:
        self.ingest.clear()
        self.bulk1.clear()
        self.bulk.clear()
        self.org.reset()
        self.usage.reset()
        self.stats.reset()

    async def _seed(self, request: Request) -> Response:
        body = await control_json(request)
        if not isinstance(body, dict):
            return JSONResponse({"error": "body must be an object of counts"}, status_code=400)
        seed = int(body.pop("seed", 7))
        unknown = [k for k in body if self.org.schema.get(k) is None]
        if unknown:
            return JSONResponse({"error": f"unknown objects: {unknown}"}, status_code=400)
        try:
            counts = {k: int(v) for k, v in body.items()}
        except (TypeError, ValueError):
            return JSONResponse({"error": "counts must be integers"}, status_code=400)
        try:
            created = await run_in_threadpool(seed_org, self.org, counts, seed)
        except SalesforceError as exc:
            return JSONResponse({"error": exc.message}, status_code=exc.status)
        return JSONResponse({"seeded": created, "seed": seed})

    async def _stats(self, request: Request) -> Response:
        snapshot = self.stats.snapshot()
        records = await run_in_threadpool(
            lambda: {o: self.org.count(o) for o in self.org.schema.objects}
        )
        return JSONResponse(
            {
                **snapshot,
                "records_written": dict(sorted(self.org.written.items())),
                "records": records,
                "bulk_jobs": self.bulk.snapshot(),
                "bulk1_batches": self.bulk1.snapshot(),
                "ingest_jobs": self.ingest.snapshot(),
                "api_usage": {"used": self.usage.used, "max": self.usage.max},
            }
        )

    async def _control_records(self, request: Request) -> Response:
        """Write records as if committed at an explicit (past) SystemModstamp."""
        body = await control_json(request)
        records = body.get("records") if isinstance(body, dict) else body
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            return JSONResponse({"error": 'body must be {"records": [...]}'}, status_code=400)
        modstamp: datetime | None = None
        if isinstance(body, dict) and body.get("SystemModstamp"):
            try:
                modstamp = datetime.fromisoformat(
                    str(body["SystemModstamp"]).replace("Z", "+00:00")
                )
            except ValueError:
                return JSONResponse({"error": "SystemModstamp must be ISO 8601"}, status_code=400)
        obj = self.org.schema.get(request.path_params["obj"])
        if obj is None:
            return JSONResponse({"error": "unknown object"}, status_code=404)
        ops = []
        for rec in records:
            rec = {k: v for k, v in rec.items() if k != "attributes"}
            rid = next((v for k, v in rec.items() if k.lower() == "id"), None)
            fields = {k: v for k, v in rec.items() if k.lower() != "id"}
            if rid:
                ops.append(WriteOp("update", obj.name, fields, record_id=str(rid)))
            else:
                ops.append(WriteOp("create", obj.name, fields))
        all_or_none = bool(body.get("allOrNone", False)) if isinstance(body, dict) else False
        try:
            results = await run_in_threadpool(
                lambda: self.org.write(ops, all_or_none=all_or_none, modstamp=modstamp)
            )
        except SalesforceError as exc:
            return _result_response(error(exc.status, exc.error_code, exc.message, exc.fields))
        return JSONResponse([wire.write_result_json(r) for r in results])

    async def _api_usage(self, request: Request) -> Response:
        if request.method == "POST":
            body = await control_json(request)
            if not isinstance(body, dict):
                return JSONResponse({"error": "body must be an object"}, status_code=400)
            self.usage.set(
                used=int(body["used"]) if "used" in body else None,
                maximum=int(body["max"]) if "max" in body else None,
            )
        return JSONResponse({"used": self.usage.used, "max": self.usage.max})

    async def _convert_lead(self, request: Request) -> Response:
        """Lead conversion (a SOAP call in Salesforce): `{"contact_id", "account_id"}` optional."""
        body = await control_json(request)
        if not isinstance(body, dict):
            return JSONResponse({"error": "body must be an object"}, status_code=400)
        lead_id = request.path_params["lead_id"]
        try:
            result = await run_in_threadpool(
                lambda: self.org.convert_lead(
                    lead_id, body.get("contact_id"), body.get("account_id")
                )
            )
        except SalesforceError as exc:
            return _result_response(error(exc.status, exc.error_code, exc.message))
        return JSONResponse(result)

    async def _bulk_control(self, request: Request) -> Response:
        """`{"fail_jobs": N, "error_message": "...", "abort_jobs": M}`: the next N query jobs
        end Failed, the M after them Aborted. Bulk 1.0: `{"fail_bulk1_batches": N,
        "bulk1_state_message": "..."}` alone: the next N batches end Failed with that
        stateMessage. Ingest jobs: keys `fail_ingest_jobs`, `abort_ingest_jobs`, ... alone (see
        `IngestJobs.control`)."""
        body = await control_json(request)
        if not isinstance(body, dict):
            return JSONResponse({"error": "body must be an object"}, status_code=400)
        if any(k.startswith(("ingest_", "fail_ingest", "abort_ingest")) for k in body):
            try:
                return JSONResponse(self.ingest.control(body))
            except (TypeError, ValueError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        if "fail_bulk1_batches" in body:
            self.bulk1.fail_next = int(body["fail_bulk1_batches"])
            if body.get("bulk1_state_message"):
                self.bulk1.fail_message = str(body["bulk1_state_message"])
            return JSONResponse({"fail_bulk1_batches": self.bulk1.fail_next})
        self.bulk.fail_next = int(body.get("fail_jobs", 0))
        self.bulk.abort_next = int(body.get("abort_jobs", 0))
        if body.get("error_message"):
            self.bulk.fail_message = str(body["error_message"])
        return JSONResponse({"fail_jobs": self.bulk.fail_next, "abort_jobs": self.bulk.abort_next})

    async def _expire(self, request: Request) -> Response:
        self.expire_sessions()
        return JSONResponse({"expired": True})


def served(version: str) -> bool:
    """Whether `version` (e.g. "62.0") is one /services/data/ lists; Salesforce answers any
    other with 404 NOT_FOUND."""
    major, _, minor = version.partition(".")
    return minor == "0" and major.isdigit() and OLDEST_VERSION <= int(major) <= LATEST_VERSION


def versions() -> list[dict[str, str]]:
    """Every API version from 20.0 (Winter '11) to the latest, as /services/data/ lists them."""
    seasons = ("Winter", "Spring", "Summer")
    out = []
    for v in range(OLDEST_VERSION, LATEST_VERSION + 1):
        step = v - 20
        year = 11 + step // 3
        out.append(
            {
                "label": f"{seasons[step % 3]} '{year:02d}",
                "url": f"/services/data/v{v}.0",
                "version": f"{v}.0",
            }
        )
    return out


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() in ("bearer", "oauth") and token.strip():
        return token.strip()
    return request.headers.get("x-sfdc-session") or None


def _basic_auth(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip()).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, _, secret = decoded.partition(":")
    return client_id, secret


def _json_response(status: int, body: Any) -> Response:
    return Response(json.dumps(body), status_code=status, media_type=JSON_TYPE)


def _bulk1_response(answer: Bulk1Answer) -> Response:
    return Response(
        answer.body, status_code=answer.status, media_type=answer.media_type, headers=answer.headers
    )


def _result_response(result: ApiResult) -> Response:
    if result.raw is not None:
        return Response(
            result.raw,
            status_code=result.status,
            media_type=result.media_type,
            headers=result.headers,
        )
    if result.body is None:
        return Response(status_code=result.status, headers=result.headers)
    response = _json_response(result.status, result.body)
    response.headers.update(result.headers)
    return response
