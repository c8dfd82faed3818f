"""The contract each emulated service (Salesforce, Appcues) fulfils for the sandbox server."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .clock import SandboxClock
from .faults import FaultMiddleware, FaultRule, FaultRuleError, FaultSet
from .stats import CallStats

CONTROL_PREFIX = "/_sandbox"


class SandboxService(ABC):
    """One emulated API: its routes, its control operations and its wire format for errors."""

    name: ClassVar[str]

    def __init__(self, clock: SandboxClock, data_dir: Path | None = None, **options: Any) -> None:
        self.clock = clock
        self.data_dir = data_dir
        self.options = options
        self.faults = FaultSet()
        self.stats = CallStats()
        self.base_url = ""  # set by the server once the port is bound

    # --- what each service implements -------------------------------------------------
    @abstractmethod
    def routes(self) -> list[BaseRoute]:
        """The emulated API's routes."""

    @abstractmethod
    def control_routes(self) -> list[BaseRoute]:
        """Service-specific control routes (mounted under /_sandbox): reset, seed, stats, ..."""

    @abstractmethod
    def fault_response(self, rule: FaultRule) -> Response:
        """The service's own error body for an injected `error` fault."""

    @abstractmethod
    def expire_sessions(self) -> None:
        """Invalidate every issued access token (fault action `expire_session`)."""

    @abstractmethod
    def connection_info(self) -> dict[str, Any]:
        """This service's section of the connection file (without control_url)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release storage; called when the sandbox stops."""

    # --- shared plumbing ---------------------------------------------------------------
    @property
    def control_url(self) -> str:
        return f"{self.base_url}{CONTROL_PREFIX}"

    def build_app(self) -> ASGIApp:
        control = [
            Route("/faults", self._set_faults, methods=["POST"]),
            Route("/faults", self._clear_faults, methods=["DELETE"]),
            Route("/faults", self._get_faults, methods=["GET"]),
            Route("/clock", self._set_clock, methods=["POST"]),
            Route("/clock", self._get_clock, methods=["GET"]),
            *self.control_routes(),
        ]
        app = Starlette(routes=[Mount(CONTROL_PREFIX, routes=control), *self.routes()])
        faulty = FaultMiddleware(app, self.faults, self.fault_response, self.expire_sessions)
        return _CountCalls(faulty, self.stats)

    async def _set_faults(self, request: Request) -> Response:
        body = await control_json(request)
        rules = body.get("rules") if isinstance(body, dict) else None
        if not isinstance(rules, list):
            return JSONResponse({"error": 'body must be {"rules": [...]}'}, status_code=400)
        try:
            self.faults.replace(rules, seed=int(body.get("seed", 0)))
        except FaultRuleError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(self.faults.snapshot())

    async def _clear_faults(self, request: Request) -> Response:
        self.faults.clear()
        return JSONResponse(self.faults.snapshot())

    async def _get_faults(self, request: Request) -> Response:
        return JSONResponse(self.faults.snapshot())

    async def _set_clock(self, request: Request) -> Response:
        body = await control_json(request)
        if not isinstance(body, dict):
            return JSONResponse({"error": "body must be an object"}, status_code=400)
        if "now" in body:
            try:
                now = datetime.fromisoformat(str(body["now"]).replace("Z", "+00:00"))
            except ValueError:
                return JSONResponse({"error": "now must be an ISO 8601 datetime"}, status_code=400)
            self.clock.set(now, freeze=bool(body.get("freeze", False)))
        if "advance_seconds" in body:
            self.clock.advance(float(body["advance_seconds"]))
        if body.get("reset"):
            self.clock.reset()
        return JSONResponse({"now": self.clock.now().isoformat()})

    async def _get_clock(self, request: Request) -> Response:
        return JSONResponse({"now": self.clock.now().isoformat()})


async def control_json(request: Request) -> Any:
    """A control call's JSON body: {} when empty, None when it is not JSON."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        return None


class _CountCalls:
    """Counts every API call (control calls excluded), faulted ones included."""

    def __init__(self, app: ASGIApp, stats: CallStats) -> None:
        self.app = app
        self.stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(CONTROL_PREFIX):
            self.stats.record_call(scope["method"], scope["path"])
        await self.app(scope, receive, send)
