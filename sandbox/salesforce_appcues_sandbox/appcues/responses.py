"""The wire format of the Appcues API v2: auth, rate limit, problem-details errors, handlers."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from http import HTTPStatus
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from . import analytics, imports
from .account import AppcuesAccount
from .models import (
    Event,
    ValidationError,
    check_attributes,
    event_json,
    iso_ms,
    parse_event_timestamp,
)

Handler = Callable[[Request], Awaitable[Response]]

MAX_EVENTS_LIMIT = 1000
DEFAULT_EVENTS_LIMIT = 100
EXPORT_CONCURRENCY_LIMIT = 5


def problem(
    status: int, detail: str, *, title: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    """Appcues' error body: `{"error": true, "status", "title", "detail"}`."""
    phrase = title or _phrase(status)
    body = {"error": True, "status": status, "title": phrase, "detail": detail}
    return JSONResponse(body, status_code=status, headers=headers)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def ok(status: int = 200, title: str = "OK", **extra: Any) -> JSONResponse:
    return JSONResponse({"status": status, "title": title, **extra}, status_code=status)


class RateLimiter:
    """A fixed one-second window per account, on real (not sandbox) time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._window = 0
        self._used = 0

    def take(self, limit: int) -> tuple[bool, int, int]:
        """(allowed, remaining, reset epoch seconds)."""
        now = time.time()
        with self._lock:
            window = int(now)
            if window != self._window:
                self._window, self._used = window, 0
            allowed = self._used < limit
            if allowed:
                self._used += 1
            return allowed, max(0, limit - self._used), window + 1

    def reset(self) -> None:
        with self._lock:
            self._window = self._used = 0


class BodyTooLargeError(Exception):
    pass


async def read_body(request: Request, max_bytes: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise BodyTooLargeError
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise BodyTooLargeError
        chunks.append(chunk)
    return b"".join(chunks)


def _is_write(request: Request) -> bool:
    """A request that changes data (analytics queries and exports are reads sent as POST)."""
    return request.method not in ("GET", "HEAD") and "/analytics/" not in request.url.path


def _is_json(request: Request) -> bool:
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


class AppcuesResponses:
    """Request handlers; every API handler runs behind `api()` (auth, rate limit, account)."""

    def __init__(self, account: AppcuesAccount, base_url: Callable[[], str]) -> None:
        self.account = account
        self.base_url = base_url  # known once the server has bound its port
        self.limiter = RateLimiter()
        self._download_key = uuid.uuid4().bytes  # signs presigned export URLs

    # --- the gate in front of every API call -------------------------------------------
    def api(self, handler: Handler) -> Handler:
        async def gated(request: Request) -> Response:
            svc = self.account
            if not self._authorized(request):
                return problem(
                    401,
                    "missing or invalid API key and secret (HTTP Basic auth)",
                    headers={"WWW-Authenticate": 'Basic realm="Appcues API"'},
                )
            limit = svc.settings.rate_limit_per_second
            allowed, remaining, reset = self.limiter.take(limit)
            headers = {
                "X-RateLimit-Limit": str(limit),
                "X-RateLimit-Remaining": str(remaining),
                "X-RateLimit-Reset": str(reset),
            }
            if not allowed:
                svc.stats.incr("rate_limited")
                retry = max(1, math.ceil(reset - time.time()))
                return problem(
                    429,
                    f"rate limit of {limit} requests per second exceeded; retry after {retry} s",
                    headers={**headers, "Retry-After": str(retry)},
                )
            account = request.path_params.get("account_id")
            if account is not None and account != svc.account_id:
                response: Response = problem(404, "account not found")
            elif svc.settings.read_only_key and _is_write(request):
                # A key below "Publisher" (docs/sandbox.md): refused before the body is read.
                response = problem(403, "this API key does not have permission to write data")
            else:
                try:
                    response = await handler(request)
                except BodyTooLargeError:
                    response = problem(
                        413, f"request body exceeds {svc.settings.max_import_bytes} bytes"
                    )
            response.headers.update(headers)
            return response

        return gated

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic" or not encoded:
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        key, sep, secret = decoded.partition(":")
        svc = self.account
        return bool(sep) and (
            hmac.compare_digest(key.encode(), svc.api_key.encode())
            & hmac.compare_digest(secret.encode(), svc.api_secret.encode())
        )

    async def _json(self, request: Request) -> Any:
        if not _is_json(request):
            raise _RefusedError(415, "Content-Type must be application/json")
        raw = await read_body(request, self.account.settings.max_import_bytes)
        try:
            return json.loads(raw)
        except ValueError:
            raise _RefusedError(400, "request body is not valid JSON") from None

    # --- profiles ----------------------------------------------------------------------
    async def get_profile(self, request: Request) -> Response:
        kind, key = _profile_target(request)
        profile = self.account.store.get_profile(kind, key)
        if profile is None:
            return problem(404, f"{kind} not found")
        return JSONResponse(profile)

    async def patch_profile(self, request: Request) -> Response:
        kind, key = _profile_target(request)
        try:
            attrs = check_attributes(await self._json(request), what=kind + " profile")
        except _RefusedError as exc:
            return exc.response()
        except ValidationError as exc:
            return problem(400, str(exc))
        self.account.merge_profile(kind, key, attrs)
        return ok()

    async def delete_user_profile(self, request: Request) -> Response:
        if not self.account.delete_user(request.path_params["user_id"]):
            return problem(404, "user not found")
        return Response(status_code=204)

    async def add_group_users(self, request: Request) -> Response:
        try:
            body = await self._json(request)
        except _RefusedError as exc:
            return exc.response()
        user_ids = body.get("user_ids") if isinstance(body, dict) else None
        if not isinstance(user_ids, list) or not all(isinstance(u, str) and u for u in user_ids):
            return problem(400, 'body must be {"user_ids": [...]} with non-empty string ids')
        self.account.add_group_users(request.path_params["group_id"], user_ids)
        return Response(status_code=204)

    # --- events ------------------------------------------------------------------------
    async def post_event(self, request: Request) -> Response:
        try:
            body = await self._json(request)
            event = _event_from_body(request.path_params["user_id"], body)
        except _RefusedError as exc:
            return exc.response()
        except ValidationError as exc:
            return problem(400, str(exc))
        self.account.track_event(event)
        return ok()

    async def list_events(self, request: Request) -> Response:
        raw_limit = request.query_params.get("limit", str(DEFAULT_EVENTS_LIMIT))
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_EVENTS_LIMIT:
            return problem(400, f"limit must be an integer from 1 to {MAX_EVENTS_LIMIT}")
        zone_name = request.query_params.get("time_zone")
        try:
            tz = ZoneInfo(zone_name) if zone_name else None
        except (ZoneInfoNotFoundError, ValueError):
            return problem(400, f"unknown time_zone {zone_name!r}")
        rows = self.account.store.user_events(request.path_params["user_id"], int(raw_limit))
        return JSONResponse([event_json(r, tz) if tz else event_json(r) for r in rows])

    # --- bulk import and jobs ----------------------------------------------------------
    async def start_import(self, request: Request) -> Response:
        svc = self.account
        kind = request.path_params["kind"]
        if kind not in imports.KINDS:
            return problem(404, f"unknown import type {kind!r}")
        body = await read_body(request, svc.settings.max_import_bytes)
        try:
            payload = imports.accept(
                request.headers.get("content-type", ""), body, svc.settings.import_formats
            )
        except imports.PayloadError as exc:
            return problem(exc.status, str(exc))
        job = svc.start_import(kind, payload)
        job_url = f"{self.base_url()}/v2/accounts/{svc.account_id}/jobs/{job.job_id}"
        return ok(202, "Accepted", job_id=job.job_id, job_url=job_url)

    async def list_jobs(self, request: Request) -> Response:
        return JSONResponse([j.to_json() for j in self.account.jobs.import_jobs()])

    async def get_job(self, request: Request) -> Response:
        snapshot = self.account.jobs.import_snapshot(request.path_params["job_id"])
        if snapshot is None:
            return problem(404, "job not found")
        return JSONResponse(snapshot)

    # --- analytics ---------------------------------------------------------------------
    async def analytics_query(self, request: Request) -> Response:
        svc = self.account
        try:
            spec = await self._json(request)
            query = analytics.compile_spec(
                spec,
                now=svc.clock.now(),
                delay_seconds=svc.settings.analytics_delay_seconds,
                max_days=analytics.SYNC_MAX_DAYS,
                **svc.settings.analytics_window(),
            )
        except _RefusedError as exc:
            return exc.response()
        except analytics.SpecError as exc:
            return problem(exc.status, exc.detail)
        result = analytics.run(svc.store, query, analytics.SYNC_ROW_CAP)
        response = JSONResponse(result.rows)
        if result.truncated:
            response.headers["X-Rows-Truncated"] = "true"
        return response

    async def create_export(self, request: Request) -> Response:
        svc = self.account
        try:
            spec = await self._json(request)
            analytics.compile_spec(
                spec, now=svc.clock.now(), delay_seconds=0, max_days=None
            )  # validated now; run later against the store as it is then
        except _RefusedError as exc:
            return exc.response()
        except analytics.SpecError as exc:
            if exc.status < 500:  # the real engine fails these only when the job runs
                return problem(exc.status, exc.detail)
        job = svc.create_export(spec)
        response = JSONResponse({"job_id": job.job_id, "status": "queued"}, status_code=202)
        response.headers.update(self._concurrency_headers())
        return response

    async def get_export(self, request: Request) -> Response:
        svc = self.account
        job = svc.jobs.exports.get(request.path_params["job_id"])
        if job is None:
            return problem(404, "export job not found")
        body: dict[str, Any] = {"job_id": job.job_id, "status": job.status}
        if job.status == "done":
            expires = svc.clock.now() + timedelta(seconds=svc.settings.export_url_ttl_seconds)
            expires_epoch = int(expires.timestamp())
            body["download_url"] = (
                f"{self.base_url()}/downloads/exports/{job.job_id}.json"
                f"?expires={expires_epoch}&signature={self._sign(job.job_id, expires_epoch)}"
            )
            body["expires_at"] = iso_ms(expires_epoch * 1000)
        elif job.status == "failed":
            body["failure_reason"] = job.failure_reason
        response = JSONResponse(body)
        response.headers.update(self._concurrency_headers())
        return response

    def _concurrency_headers(self) -> dict[str, str]:
        busy = self.account.busy_exports()
        return {
            "X-Concurrency-Limit": str(EXPORT_CONCURRENCY_LIMIT),
            "X-Concurrency-Used": str(busy),
        }

    def _sign(self, job_id: str, expires: int) -> str:
        message = f"{job_id}:{expires}".encode()
        return hmac.new(self._download_key, message, hashlib.sha256).hexdigest()

    async def download_export(self, request: Request) -> Response:
        """The presigned URL: no Authorization; answers like an object store."""
        job_id = request.path_params["job_id"]
        expires = request.query_params.get("expires", "")
        signature = request.query_params.get("signature", "")
        if not expires.isdigit() or not hmac.compare_digest(
            signature, self._sign(job_id, int(expires))
        ):
            return _storage_error(403, "SignatureDoesNotMatch", "The request signature is invalid")
        if self.account.clock.now().timestamp() > int(expires):
            return _storage_error(403, "AccessDenied", "Request has expired")
        job = self.account.jobs.exports.get(job_id)
        if job is None or job.status != "done":
            return _storage_error(404, "NoSuchKey", "The specified key does not exist.")
        return Response(job.content, media_type="application/json")

    # --- anything else under the API ---------------------------------------------------
    async def not_found(self, request: Request) -> Response:
        return problem(404, f"no route for {request.method} {request.url.path}")

    async def method_not_allowed(self, request: Request) -> Response:
        return problem(405, f"{request.method} is not allowed on {request.url.path}")


class _RefusedError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail

    def response(self) -> JSONResponse:
        return problem(self.status, self.detail)


def _profile_target(request: Request) -> tuple[str, str]:
    if "user_id" in request.path_params:
        return "user", request.path_params["user_id"]
    return "group", request.path_params["group_id"]


def _event_from_body(user_id: str, body: Any) -> Event:
    if not isinstance(body, dict):
        raise ValidationError("the event must be a JSON object")
    name = body.get("name")
    if not isinstance(name, str) or not name:
        raise ValidationError("name is required")
    if body.get("timestamp") in (None, ""):
        raise ValidationError("timestamp is required")
    timestamp = parse_event_timestamp(body["timestamp"])
    attributes = body.get("attributes") or {}
    context = body.get("context") or {}
    if not isinstance(attributes, dict):
        raise ValidationError("attributes must be an object")
    if not isinstance(context, dict):
        raise ValidationError("context must be an object")
    group = body.get("group_id")
    if group is not None and not isinstance(group, str | int):
        raise ValidationError("group_id must be a string")
    return Event(
        user_id=user_id,
        name=name,
        timestamp_ms=timestamp,
        attributes=attributes,
        context=context,
        group_id=None if group is None else str(group),
        source="api",
    )


def _storage_error(status: int, code: str, message: str) -> Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    )
    return Response(body, status_code=status, media_type="application/xml")
