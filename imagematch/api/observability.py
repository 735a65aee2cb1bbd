"""The HTTP edge's observability: a request id on every request, latency histograms, one log line per
request, and ``GET /metrics`` (Prometheus text, behind the API token like every ``/v1`` route)."""

from __future__ import annotations

import logging
import time

from fastapi import APIRouter, FastAPI
from fastapi.concurrency import run_in_threadpool
from prometheus_client.registry import Collector
from starlette.datastructures import MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from imagematch.app import Services
from imagematch.log_context import bound, usable_request_id
from imagematch.metrics import (
    CONTENT_TYPE,
    LedgerCollector,
    observe_match_request,
    observe_webhook_ack,
    render_metrics,
)
from imagematch.metrics_ledger import LedgerSummedCollector
from imagematch.sources.catalog import pending_catalog_jobs

__all__ = ["REQUEST_ID_HEADER", "RequestObservation", "install_observability", "metrics_router"]

REQUEST_ID_HEADER = "x-request-id"
log = logging.getLogger("imagematch.http")
_QUIET_PATHS = frozenset({"/healthz", "/metrics"})  # polled: logged at DEBUG only, even when refused


class RequestObservation:
    """Plain ASGI middleware (no body streaming): binds ``request_id`` (the caller's
    ``X-Request-ID`` when it is a plain token, else a new one) for everything the request runs,
    answers it in ``X-Request-ID``, and times webhooks and ``/v1/match``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope.get("headers", []) if k == b"x-request-id"), b"")
        request_id = usable_request_id(given.decode("latin-1") or None)
        started, status = time.perf_counter(), 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        with bound(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                _observe(scope, status, time.perf_counter() - started)


def _observe(scope: Scope, status: int, seconds: float) -> None:
    path, method = str(scope.get("path", "")), str(scope.get("method", ""))
    if path.startswith("/webhooks/"):
        observe_webhook_ack(path.removeprefix("/webhooks/").split("/")[0] or "unknown", status, seconds)
    elif path == "/v1/match" and method == "POST":
        observe_match_request(status, seconds)
    # The path only: query strings may carry signed URLs or tokens. Reads that worked are DEBUG
    # (pages, polling, scrapes: volume, not news); writes and errors are INFO.
    quiet = path in _QUIET_PATHS or (method in ("GET", "HEAD") and status < 400)
    level = logging.DEBUG if quiet else logging.INFO
    log.log(level, "%s %s -> %d in %.1f ms", method, path, status, seconds * 1000)


def metrics_router(collector: LedgerCollector, processes: Collector | None = None) -> APIRouter:
    router = APIRouter(tags=["ops"])

    @router.get("/metrics", response_class=Response)
    async def metrics() -> Response:
        """Prometheus metrics (text format): scrape with the API token as a bearer token."""
        body = await run_in_threadpool(render_metrics, collector, processes)
        return Response(body, media_type=CONTENT_TYPE)

    return router


def install_observability(app: FastAPI, services: Services | None = None) -> None:
    """Add the request-id middleware (outermost: refused requests get an id too) and, with
    ``services``, ``GET /metrics`` — with every process's instruments summed in the ledger when
    ``IMAGEMATCH_METRICS_VIA_LEDGER_SECONDS`` is set, else this machine's."""
    if services is not None:
        collector = LedgerCollector(services.ledger, services.index, services.clock, pending_catalog_jobs)
        via_ledger = services.settings.metrics_via_ledger_seconds > 0
        app.include_router(
            metrics_router(collector, LedgerSummedCollector(services.ledger) if via_ledger else None)
        )
    app.add_middleware(RequestObservation)
