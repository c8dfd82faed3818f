"""Runs both emulated services over HTTPS on loopback and publishes the connection file.

In-process: `with Sandbox() as sb: sb.connection` (uvicorn in a background thread).
Subprocess: `with SandboxProcess() as sb: ...` runs `salesforce-appcues-sandbox serve`.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC
from email.utils import format_datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .common.clock import SandboxClock
from .common.faults import TRANSPORT_EXTENSION
from .common.service import SandboxService
from .common.tls import ensure_certificate


def _build_services(
    clock: SandboxClock, data_dir: Path | None, options: dict[str, dict[str, Any]]
) -> list[SandboxService]:
    # Imported here so a service under construction never breaks the other's import.
    from .appcues.service import AppcuesService
    from .salesforce.service import SalesforceService

    return [
        SalesforceService(clock, data_dir, **options.get("salesforce", {})),
        AppcuesService(clock, data_dir, **options.get("appcues", {})),
    ]


class _TransportInScope:
    """The outermost layer: puts uvicorn's transport of the request into the scope, so the
    fault middleware can reset the connection without knowing the server."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Uvicorn's `send` is a bound method of its request cycle, which holds the transport.
        transport = getattr(getattr(send, "__self__", None), "transport", None)
        if transport is not None:
            scope = {**scope, "extensions": {**scope.get("extensions", {})}}
            scope["extensions"][TRANSPORT_EXTENSION] = transport
        await self.app(scope, receive, send)


class _ClockDate:
    """Adds the `Date` response header from the sandbox clock (clients read server time)."""

    def __init__(self, app: ASGIApp, clock: SandboxClock) -> None:
        self.app = app
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, _DatedSend(send, self.clock).send)


class _DatedSend:
    """A `send` that stamps the Date header."""

    def __init__(self, send: Send, clock: SandboxClock) -> None:
        self._send = send
        self._clock = clock

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"date"]
            stamp = format_datetime(self._clock.now().astimezone(UTC), usegmt=True)
            message = {**message, "headers": [*headers, (b"date", stamp.encode())]}
        await self._send(message)


class _RequestLineLimit:
    """Answers 414 to a request line longer than the service allows, before any routing.

    h11 only bounds a request head that arrives in pieces (`max_incomplete_event_size`), so
    a long URI sent in one segment would pass: the limit is checked on the parsed line.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and request_line_length(scope) > self.limit:
            body = b"<html><body><h1>414 URI Too Long</h1></body></html>"
            await send(
                {
                    "type": "http.response.start",
                    "status": 414,
                    "headers": [
                        (b"content-type", b"text/html"),
                        (b"content-length", str(len(body)).encode()),
                        (b"connection", b"close"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


def request_line_length(scope: Scope) -> int:
    """Bytes of `METHOD SP request-target SP HTTP/x.y` as the client sent them."""
    target = len(scope.get("raw_path") or scope["path"].encode())
    query = scope.get("query_string") or b""
    if query:
        target += 1 + len(query)
    return len(scope["method"]) + 1 + target + len(" HTTP/") + len(scope["http_version"])


def _outer_app(service: SandboxService, clock: SandboxClock) -> ASGIApp:
    app: ASGIApp = service.build_app()
    limit = getattr(service, "max_request_line", None)
    if limit:
        app = _RequestLineLimit(app, limit)
    return _TransportInScope(_ClockDate(app, clock))


class Sandbox:
    """Both services in this process; a context manager."""

    def __init__(
        self,
        *,
        salesforce_port: int = 0,
        appcues_port: int = 0,
        data_dir: str | Path | None = None,
        seed: str = "none",
        connection_file: str | Path | None = None,
        options: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="sf-appcues-sandbox-")
            self.cert_dir = Path(self._tmp.name)
            self.data_dir: Path | None = None  # SQLite in memory
        else:
            self.data_dir = Path(data_dir)
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self.cert_dir = self.data_dir / "tls"
        self.ports = {"salesforce": salesforce_port, "appcues": appcues_port}
        self.seed = seed
        self.connection_file = Path(connection_file) if connection_file else None
        self.clock = SandboxClock()
        self.services = _build_services(self.clock, self.data_dir, options or {})
        self.connection: dict[str, Any] = {}
        self._servers: list[uvicorn.Server] = []
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def service(self, name: str) -> SandboxService:
        return next(s for s in self.services if s.name == name)

    @property
    def salesforce(self) -> Any:
        return self.service("salesforce")

    @property
    def appcues(self) -> Any:
        return self.service("appcues")

    def start(self) -> Sandbox:
        cert = ensure_certificate(self.cert_dir)
        for service in self.services:
            config = uvicorn.Config(
                _outer_app(service, self.clock),
                host="127.0.0.1",
                port=self.ports[service.name],
                ssl_certfile=str(cert.cert_chain),
                ssl_keyfile=str(cert.private_key),
                log_level="warning",
                access_log=False,
                lifespan="off",
                timeout_keep_alive=30,
                date_header=False,  # _ClockDate sends the sandbox clock's date instead
            )
            self._servers.append(uvicorn.Server(config))
        self._thread = threading.Thread(target=self._run, name="sandbox-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not all(s.started for s in self._servers):
            if self._error is not None or not self._thread.is_alive():
                raise RuntimeError(f"sandbox failed to start: {self._error!r}")
            if time.monotonic() > deadline:
                raise RuntimeError("sandbox did not start within 30 s")
            time.sleep(0.01)
        for service, server in zip(self.services, self._servers, strict=True):
            port = server.servers[0].sockets[0].getsockname()[1]
            service.base_url = f"https://127.0.0.1:{port}"
        self.connection = {"ca_bundle": str(cert.ca_bundle)}
        for service in self.services:
            self.connection[service.name] = {
                **service.connection_info(),
                "control_url": service.control_url,
            }
        if self.seed == "demo":
            for service in self.services:
                seed_demo = getattr(service, "seed_demo", None)
                if seed_demo is not None:
                    seed_demo()
        if self.connection_file is not None:
            self.connection_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.connection_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.connection, indent=2))
            tmp.chmod(0o600)
            tmp.replace(self.connection_file)  # atomic: readers never see half a file
        return self

    def _run(self) -> None:
        try:
            asyncio.run(self._serve_all())
        except BaseException as exc:  # surfaced to start()
            self._error = exc

    async def _serve_all(self) -> None:
        self._loop = asyncio.get_running_loop()
        await asyncio.gather(*(s.serve() for s in self._servers))

    def _abort_connections(self) -> None:
        for server in self._servers:
            for connection in list(server.server_state.connections):
                transport = getattr(connection, "transport", None)
                if transport is not None:
                    transport.abort()

    def stop(self) -> None:
        for server in self._servers:
            server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=1)
            if self._thread.is_alive() and self._loop is not None:
                # Idle keep-alive TLS connections wait for the client's close_notify, which
                # a pooled client never sends: abort them so shutdown finishes promptly.
                self._loop.call_soon_threadsafe(self._abort_connections)
            self._thread.join(timeout=10)
        for service in self.services:
            service.close()
        if self.connection_file is not None and self.connection_file.exists():
            self.connection_file.unlink()
        if self._tmp is not None:
            self._tmp.cleanup()

    def wait(self) -> None:
        """Block until the servers stop (the CLI's foreground mode)."""
        if self._thread is not None:
            while self._thread.is_alive():
                self._thread.join(timeout=0.5)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class SandboxProcess:
    """`salesforce-appcues-sandbox serve` as a child process; a context manager."""

    def __init__(self, *args: str, data_dir: str | Path | None = None) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="sf-appcues-sandbox-proc-")
        self.connection_file = Path(self._tmp.name) / "connection.json"
        self.args = list(args)
        if data_dir is not None:
            self.args += ["--data-dir", str(data_dir)]
        self.process: subprocess.Popen[bytes] | None = None
        self.connection: dict[str, Any] = {}

    def start(self, timeout: float = 60) -> SandboxProcess:
        cmd = [
            sys.executable,
            "-m",
            "salesforce_appcues_sandbox.cli",
            "serve",
            "--connection-file",
            str(self.connection_file),
            *self.args,
        ]
        self.process = subprocess.Popen(cmd, env=os.environ.copy())
        deadline = time.monotonic() + timeout
        while not self.connection_file.exists():
            if self.process.poll() is not None:
                raise RuntimeError(f"sandbox exited with {self.process.returncode}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"sandbox did not start within {timeout} s")
            time.sleep(0.05)
        self.connection = json.loads(self.connection_file.read_text())
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._tmp.cleanup()

    def __enter__(self) -> SandboxProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
