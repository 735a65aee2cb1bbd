"""HTTP API (FastAPI): routers per area over :class:`imagematch.app.Services`; OpenAPI at ``/docs``.

``POST /v1/match`` answers synchronously. ``POST /v1/images`` and the webhooks persist a job first,
answer 202, and let the ledger's workers process it — nothing runs as request-scoped background
work, so a restart never loses an accepted image.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from imagematch import __version__
from imagematch.api.access import AccessControl
from imagematch.api.docs import docs_router
from imagematch.api.entities import entities_router
from imagematch.api.feedback import feedback_router, products_router
from imagematch.api.headers import SecurityHeaders
from imagematch.api.jobs import jobs_router, submit_router
from imagematch.api.match import match_router
from imagematch.api.observability import install_observability
from imagematch.api.pictures import pictures_router
from imagematch.api.stats import health_router, stats_router
from imagematch.app import Services
from imagematch.config import Settings
from imagematch.console import console_router
from imagematch.dispatch import Dispatch, Dispatchers
from imagematch.errors import EmbedderMismatchError, IndexNotBuiltError, TransientError
from imagematch.ledger import Clock, Ledger, utcnow
from imagematch.sources.catalog.routes import catalog_webhook_router
from imagematch.sources.zendesk.routes import zendesk_webhook_router
from imagematch.webhooks import RETRY_LATER
from imagematch.worker import WorkerPool

__all__ = ["create_app", "create_webhook_app"]


def create_app(
    services: Services,
    *,
    pool: WorkerPool | None = None,
    dispatch: Dispatch | None = None,
    access: AccessControl | None = None,
) -> FastAPI:
    """The API over ``services``.

    ``pool`` (local service) runs for the app's lifetime; ``dispatch`` (on Modal: a spawn) is told
    the ids of jobs to run now. Both are added to ``services``' dispatchers, so jobs created by
    handlers (a ticket's attachments) are dispatched the same way as the API's. ``access`` guards
    every route but ``/healthz`` and the webhooks (default: the settings' ``IMAGEMATCH_API_TOKEN``).
    """
    if pool:
        services.add_dispatcher(pool.dispatch)
    if dispatch:
        services.add_dispatcher(dispatch)
    app = _new_app(
        "imagematch", "Which catalog product is in this photo? Product-level top-k with scores.", pool
    )

    _answer_unavailable_with_503(app)
    settings, ledger, clock = services.settings, services.ledger, services.clock
    # Webhooks first: routes are matched in order, and a burst of webhooks is the hot path.
    app.include_router(zendesk_webhook_router(settings, ledger, clock=clock, dispatch=services.dispatch))
    app.include_router(catalog_webhook_router(settings, ledger, clock=clock, dispatch=services.dispatch))
    app.include_router(health_router())
    app.include_router(match_router(services))
    app.include_router(submit_router(services))
    app.include_router(jobs_router(services))
    app.include_router(feedback_router(services))
    app.include_router(products_router(services))
    app.include_router(entities_router(services))
    app.include_router(pictures_router(services))
    app.include_router(stats_router(services))
    app.include_router(console_router(services, dispatch=services.dispatch))
    (access or AccessControl.from_settings(settings)).install(app, revocations=ledger, clock=clock)
    install_observability(app, services)  # request ids (also on refusals), GET /metrics
    app.add_middleware(SecurityHeaders)  # outermost: also on the access control's refusals
    return app


def _answer_unavailable_with_503(app: FastAPI) -> None:
    """No index, an index of another model, a dependency briefly down: 503, never a 500."""

    @app.exception_handler(IndexNotBuiltError)
    async def _no_index(_: Request, exc: IndexNotBuiltError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    @app.exception_handler(EmbedderMismatchError)
    async def _mismatch(_: Request, exc: EmbedderMismatchError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    @app.exception_handler(TransientError)
    async def _unavailable(_: Request, exc: TransientError) -> JSONResponse:
        # The ledger (or another dependency) is briefly unreachable: the caller retries; nothing
        # was accepted, so nothing is lost.
        return JSONResponse({"detail": str(exc)}, status_code=503, headers=RETRY_LATER)


def create_webhook_app(
    settings: Settings,
    ledger: Ledger,
    *,
    clock: Clock = utcnow,
    pool: WorkerPool | None = None,
    dispatch: Dispatch | None = None,
) -> FastAPI:
    """Only the signature-verified webhook routes and ``/healthz``: safe to expose without other
    authentication (on Modal: the ``webhooks`` endpoint). Needs no model or index."""
    app = _new_app("imagematch webhooks", "Signed webhooks in; each persists a job and answers 202.", pool)
    dispatch_all = Dispatchers(d for d in (pool.dispatch if pool else None, dispatch) if d is not None)

    app.include_router(health_router())
    app.include_router(zendesk_webhook_router(settings, ledger, clock=clock, dispatch=dispatch_all))
    app.include_router(catalog_webhook_router(settings, ledger, clock=clock, dispatch=dispatch_all))
    install_observability(app)  # request ids, the webhook-ack histogram
    app.add_middleware(SecurityHeaders)
    return app


def _new_app(title: str, description: str, pool: WorkerPool | None) -> FastAPI:
    """A FastAPI app whose ``/docs`` is served offline (:mod:`imagematch.api.docs`: no CDN, under
    the console's CSP) and whose lifetime runs ``pool``."""
    app = FastAPI(
        title=title,
        version=__version__,
        description=description,
        lifespan=_pool_lifespan(pool),
        docs_url=None,
        redoc_url=None,
    )
    app.include_router(docs_router(title))
    return app


def _pool_lifespan(pool: WorkerPool | None) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if pool:
            pool.start()
        try:
            yield
        finally:
            if pool:
                await run_in_threadpool(pool.stop)

    return lifespan
