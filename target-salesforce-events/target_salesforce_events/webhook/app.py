"""The HTTP side: verify, spool durably, then answer 2xx; health and metrics.

Order matters: a delivery is answered 2xx only after its row is fsync'd in the spool, so
a crash after the answer loses nothing and a crash before it lets Appcues retry. Refused
deliveries (401/413) are counted and never spooled.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .metrics import ReceiverMetrics
from .settings import WebhookSettings
from .spool import Spool
from .verify import SignatureVerifier
from .worker import SpoolWorker, spool_key

log = logging.getLogger(__name__)


def create_app(
    settings: WebhookSettings,
    spool: Spool,
    worker: SpoolWorker | None,
    metrics: ReceiverMetrics,
    clock: Callable[[], float] = time.time,
    on_shutdown: Callable[[], None] | None = None,
) -> Starlette:
    verifier = SignatureVerifier(settings.secrets, settings.scheme, settings.replay_window_seconds)

    def refuse(reason: str, status: int = 401) -> Response:
        metrics.refused.labels(reason).inc()
        return JSONResponse({"error": reason}, status_code=status)

    async def receive(request: Request) -> Response:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > settings.max_body_bytes:
            return refuse("too_large", 413)
        body = await request.body()
        if len(body) > settings.max_body_bytes:
            return refuse("too_large", 413)
        now = clock()
        verdict = verifier.check(dict(request.headers), body, datetime.fromtimestamp(now, tz=UTC))
        if not verdict.ok:
            log.warning("Refused a delivery (401): %s", verdict.reason)
            return refuse(verdict.reason)
        key, event_time = spool_key(body)
        added = await run_in_threadpool(spool.append, key, body, event_time, now)
        metrics.accepted.labels("spooled" if added else "duplicate").inc()
        return JSONResponse({"status": "spooled" if added else "duplicate"}, status_code=202)

    async def healthz(request: Request) -> Response:
        writable = await run_in_threadpool(spool.writable)
        working = worker is None or worker.alive()
        retrying = worker is not None and worker.last_error is not None
        body = {
            # degraded: up and accepting, but the last batch was not confirmed (retried)
            "status": "failing" if not (writable and working) else "degraded" if retrying else "ok",
            "spool_writable": writable,
            "worker_running": working,
            "spool_depth": await run_in_threadpool(spool.depth),
            "last_error": worker.last_error if worker else None,
        }
        return JSONResponse(body, status_code=200 if writable and working else 503)

    async def prometheus(request: Request) -> Response:
        data = await run_in_threadpool(generate_latest, metrics.registry)
        return Response(data, media_type=CONTENT_TYPE_LATEST)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if worker is not None:
            worker.start()
        try:
            yield
        finally:
            if worker is not None:
                await run_in_threadpool(worker.stop)
            # here, not after uvicorn.run: uvicorn re-raises SIGTERM once shut down
            if on_shutdown is not None:
                on_shutdown()

    return Starlette(
        routes=[
            Route(settings.path, receive, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", prometheus, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
