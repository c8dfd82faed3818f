"""AppcuesService: the emulated Appcues API v2 as a sandbox service, with its control API."""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any, ClassVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..common.clock import SandboxClock
from ..common.faults import FaultRule
from ..common.service import SandboxService, control_json
from ..common.stats import CallStats
from .account import AppcuesAccount
from .models import AccountSettings, AppcuesStore, JobRegistry
from .responses import AppcuesResponses, problem
from .urls import api_routes
from .webhooks import WebhookConfig, WebhookSender

# Appcues paths -> the endpoint patterns `GET stats` groups calls by.
_PATH_PATTERNS = [
    (re.compile(r"^/v2/accounts/[^/]+"), "/v2/accounts/{account_id}"),
    (re.compile(r"/users/.+/(profile|events)$"), r"/users/{user_id}/\1"),
    (re.compile(r"/groups/.+/(profile|users)$"), r"/groups/{group_id}/\1"),
    (re.compile(r"/(jobs|analytics/exports)/[^/]+$"), r"/\1/{job_id}"),
    (re.compile(r"^/downloads/exports/[^/]+$"), "/downloads/exports/{job_id}.json"),
]


class AppcuesCallStats(CallStats):
    def record_call(self, method: str, path: str) -> None:
        for pattern, replacement in _PATH_PATTERNS:
            path = pattern.sub(replacement, path)
        with self._lock:
            self.calls[f"{method} {path}"] += 1


class AppcuesService(SandboxService):
    """Options: account_id, api_key, api_secret and every AccountSettings field."""

    name: ClassVar[str] = "appcues"

    def __init__(self, clock: SandboxClock, data_dir: Path | None = None, **options: Any) -> None:
        super().__init__(clock, data_dir, **options)
        self.stats = AppcuesCallStats()
        self.account = AppcuesAccount(
            clock,
            data_dir,
            self.stats,
            account_id=str(options.get("account_id", "93417")),
            api_key=str(options.get("api_key", f"key-{secrets.token_hex(8)}")),
            api_secret=str(options.get("api_secret", secrets.token_urlsafe(24))),
            settings={
                k: v for k, v in options.items() if k in AccountSettings.__dataclass_fields__
            },
        )
        self.responses = AppcuesResponses(self.account, lambda: self.base_url)

    # The account's parts, as tests and the control API reach them.
    @property
    def account_id(self) -> str:
        return self.account.account_id

    @property
    def api_key(self) -> str:
        return self.account.api_key

    @property
    def api_secret(self) -> str:
        return self.account.api_secret

    @property
    def settings(self) -> AccountSettings:
        return self.account.settings

    @property
    def store(self) -> AppcuesStore:
        return self.account.store

    @property
    def jobs(self) -> JobRegistry:
        return self.account.jobs

    @property
    def webhooks(self) -> WebhookSender:
        return self.account.webhooks

    # --- SandboxService ----------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        return api_routes(self.responses)

    def control_routes(self) -> list[BaseRoute]:
        return [
            Route("/reset", self._reset, methods=["POST"]),
            Route("/seed", self._seed, methods=["POST"]),
            Route("/stats", self._stats, methods=["GET"]),
            Route("/settings", self._get_settings, methods=["GET"]),
            Route("/settings", self._set_settings, methods=["POST"]),
            Route("/webhooks", self._get_webhooks, methods=["GET"]),
            Route("/webhooks", self._set_webhooks, methods=["POST"]),
            Route("/webhooks", self._clear_webhooks, methods=["DELETE"]),
        ]

    def fault_response(self, rule: FaultRule) -> Response:
        detail = rule.message or rule.error_code or "injected fault"
        return problem(rule.status, detail)

    def expire_sessions(self) -> None:
        """Appcues uses HTTP Basic auth: there are no sessions to expire (a no-op)."""

    def connection_info(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "account_id": self.account_id,
            "api_key": self.api_key,
            "api_secret": self.api_secret,
        }

    def close(self) -> None:
        self.account.close()

    # --- state -------------------------------------------------------------------------
    def reset(self) -> None:
        self.account.reset()
        self.responses.limiter.reset()

    def seed(self, body: dict[str, Any]) -> dict[str, int]:
        return self.account.seed(body)

    def seed_demo(self) -> dict[str, int]:
        return self.account.seed_demo()

    # --- control API -------------------------------------------------------------------
    async def _reset(self, request: Request) -> Response:
        await run_in_threadpool(self.reset)
        return JSONResponse({"reset": True})

    async def _seed(self, request: Request) -> Response:
        body = await control_json(request)
        if not isinstance(body, dict):
            return JSONResponse({"error": "body must be a JSON object"}, status_code=400)
        try:
            result = await run_in_threadpool(self.seed, body)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(result)

    async def _stats(self, request: Request) -> Response:
        snapshot = self.stats.snapshot()
        counters = snapshot["counters"]
        return JSONResponse(
            {
                **snapshot,
                "rate_limited": counters.get("rate_limited", 0),
                "profiles_written": counters.get("profiles_written", 0),
                "groups_written": counters.get("groups_written", 0),
                "events_stored": counters.get("events_stored", 0),
                "stored": self.store.counts(),
                **self.jobs.summary(),
                "webhook_deliveries": counters.get("webhook_deliveries", 0),
            }
        )

    async def _get_settings(self, request: Request) -> Response:
        return JSONResponse(self.settings.to_json())

    async def _set_settings(self, request: Request) -> Response:
        body = await control_json(request)
        if not isinstance(body, dict):
            return JSONResponse({"error": "body must be a JSON object"}, status_code=400)
        try:
            self.settings.update(body)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(self.settings.to_json())

    async def _get_webhooks(self, request: Request) -> Response:
        return JSONResponse(self.webhooks.snapshot())

    async def _set_webhooks(self, request: Request) -> Response:
        body = await control_json(request)
        try:
            config = WebhookConfig.from_json(body)
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        self.webhooks.configure(config, from_start=bool(body.get("from_start", False)))
        return JSONResponse(self.webhooks.snapshot())

    async def _clear_webhooks(self, request: Request) -> Response:
        self.webhooks.clear()
        return JSONResponse(self.webhooks.snapshot())
