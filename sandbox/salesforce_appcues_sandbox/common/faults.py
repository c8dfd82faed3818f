"""Fault rules set through the control API, applied to API requests by an ASGI middleware.

A rule: {"match": {"method": "GET", "path": "REGEX"}, "action": "error" | "error_after" |
"latency" | "reset" | "expire_session", "status": 503, "error_code": "SERVER_UNAVAILABLE",
"retry_after": 2, "body": "<html>...</html>", "latency_ms": 500, "on_disconnect": "apply" |
"drop", "times": 3, "probability": 0.2}.

`error_after` lets the service handle the request (a write is applied), then answers with the
error instead of the service's answer: a gateway that gave up waiting (502/504) while the
service went on. `body` replaces the service's own error format with that text (a page
written by a proxy or load balancer).

A `latency` rule holds a request the server has received whole. A client that gives up during
the hold does not undo it: by default the request is still applied when the hold ends, as a
real server applies a write whose client timed out (`on_disconnect: "drop"` answers the other
plausible way: the write is lost with its connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ACTIONS = ("error", "error_after", "latency", "reset", "expire_session")
ON_DISCONNECT = ("apply", "drop")


class FaultRuleError(ValueError):
    """A rule sent to the control API is malformed."""


@dataclass
class FaultRule:
    action: str
    method: str | None = None
    path: re.Pattern[str] | None = None
    status: int = 503
    error_code: str | None = None
    message: str | None = None
    retry_after: float | None = None
    body: str | None = None  # an error page not in the service's format (a proxy's)
    latency_ms: int = 0
    on_disconnect: str = "apply"  # a held request whose client left: applied or lost
    times: int | None = None  # None: forever
    probability: float = 1.0
    fired: int = 0

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> FaultRule:
        if not isinstance(raw, dict):
            raise FaultRuleError("each rule must be an object")
        action = raw.get("action", "error")
        if action not in ACTIONS:
            raise FaultRuleError(f"unknown action {action!r}; expected one of {ACTIONS}")
        match = raw.get("match") or {}
        try:
            path = re.compile(match["path"]) if match.get("path") else None
        except re.error as exc:
            raise FaultRuleError(f"bad path regex: {exc}") from exc
        times = raw.get("times")
        on_disconnect = raw.get("on_disconnect", "apply")
        if on_disconnect not in ON_DISCONNECT:
            raise FaultRuleError(
                f"unknown on_disconnect {on_disconnect!r}; expected one of {ON_DISCONNECT}"
            )
        return cls(
            action=action,
            method=(match.get("method") or "").upper() or None,
            path=path,
            status=int(raw.get("status", 503)),
            error_code=raw.get("error_code"),
            message=raw.get("message"),
            retry_after=raw.get("retry_after"),
            body=raw.get("body"),
            latency_ms=int(raw.get("latency_ms", 0)),
            on_disconnect=on_disconnect,
            times=int(times) if times is not None else None,
            probability=float(raw.get("probability", 1.0)),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "match": {"method": self.method, "path": self.path.pattern if self.path else None},
            "status": self.status,
            "error_code": self.error_code,
            "retry_after": self.retry_after,
            "body": self.body,
            "latency_ms": self.latency_ms,
            "on_disconnect": self.on_disconnect,
            "times": self.times,
            "probability": self.probability,
            "fired": self.fired,
        }

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method != method:
            return False
        return not (self.path and not self.path.search(path))


@dataclass
class FaultSet:
    """The active rules of one service; thread-safe, seeded for repeatable probabilities."""

    rules: list[FaultRule] = field(default_factory=list)
    injected: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _random: random.Random = field(default_factory=lambda: random.Random(0))

    def replace(self, raw_rules: list[dict[str, Any]], *, seed: int = 0) -> None:
        parsed = [FaultRule.from_json(r) for r in raw_rules]
        with self._lock:
            self.rules = parsed
            self._random = random.Random(seed)

    def clear(self) -> None:
        with self._lock:
            self.rules = []

    def pick(self, method: str, path: str) -> FaultRule | None:
        """The first live rule that matches and fires; consumes one of its `times`."""
        with self._lock:
            for rule in self.rules:
                if rule.times is not None and rule.fired >= rule.times:
                    continue
                if not rule.matches(method, path):
                    continue
                if rule.probability < 1.0 and self._random.random() >= rule.probability:
                    continue
                rule.fired += 1
                self.injected += 1
                return rule
        return None

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"injected": self.injected, "rules": [r.to_json() for r in self.rules]}


# The scope extension under which the server puts the request's asyncio transport.
TRANSPORT_EXTENSION = "sandbox.transport"


def _abort_connection(scope: Scope) -> bool:
    """Reset the TCP connection under this request (RST, not FIN)."""
    transport = scope.get("extensions", {}).get(TRANSPORT_EXTENSION)
    if transport is None:
        return False
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    return True


async def _received_whole(receive: Receive) -> Receive:
    """Read the request's body now and hand it to the app later, whatever the client does
    meanwhile (the server would otherwise report the disconnect instead of the body)."""
    pending: list[Message] = []
    while True:
        message = await receive()
        pending.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            break

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay


class FaultMiddleware:
    """Applies a service's FaultSet to every request outside the control prefix.

    `error_response(rule)` builds the service's own error body for an `error` rule;
    `expire_sessions()` invalidates every access token for an `expire_session` rule.
    """

    def __init__(
        self,
        app: ASGIApp,
        faults: FaultSet,
        error_response: Callable[[FaultRule], Response],
        expire_sessions: Callable[[], None],
        exempt_prefix: str = "/_sandbox",
    ) -> None:
        self.app = app
        self.faults = faults
        self.error_response = error_response
        self.expire_sessions = expire_sessions
        self.exempt_prefix = exempt_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.exempt_prefix):
            await self.app(scope, receive, send)
            return
        rule = self.faults.pick(scope["method"], scope["path"])
        if rule is None:
            await self.app(scope, receive, send)
            return
        if rule.action == "latency":
            if rule.on_disconnect == "apply":
                receive = await _received_whole(receive)
            await asyncio.sleep(rule.latency_ms / 1000)
            await self.app(scope, receive, send)
        elif rule.action == "reset":
            if not _abort_connection(scope):
                raise ConnectionResetError("sandbox fault: connection reset")
        elif rule.action == "expire_session":
            self.expire_sessions()
            await self.app(scope, receive, send)
        elif rule.action == "error_after":

            async def discard(message: Message) -> None:
                """The service's own answer, which the client never sees."""

            await self.app(scope, receive, discard)
            await self._error(rule)(scope, receive, send)
        else:
            await self._error(rule)(scope, receive, send)

    def _error(self, rule: FaultRule) -> Response:
        if rule.body is not None:
            response = Response(rule.body, status_code=rule.status, media_type="text/html")
        else:
            response = self.error_response(rule)
        if rule.retry_after is not None:
            response.headers["Retry-After"] = str(rule.retry_after)
        return response
