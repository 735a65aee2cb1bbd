"""The operator console: server-rendered pages under ``/ui`` (Jinja2 templates, a little vanilla JS).

Pages read the ledger and the served index directly (the same objects the API uses); forms that
change something (retry, try a photo) carry a CSRF token (:func:`imagematch.api.access.check_csrf_field`);
the label buttons call ``/v1/jobs/{id}/feedback`` with the session cookie and ``X-CSRF-Token``.
Handlers are plain ``def`` functions: FastAPI runs them in its thread pool, as ledger calls block.
One module per page: jobs.py, job_page.py, entity_page.py, review.py, tryout.py, catalog.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

import imagematch.console.data as data
from imagematch.api.access import SESSION_COOKIE, AccessControl, check_csrf_field
from imagematch.app import Services
from imagematch.console.catalog import catalog_routes
from imagematch.console.entity_page import entity_routes
from imagematch.console.job_page import job_page_routes
from imagematch.console.jobs import job_list_routes, retry_routes
from imagematch.console.pages import page, safe_next, templates
from imagematch.console.review import review_routes
from imagematch.console.tryout import try_routes
from imagematch.thumbnails import thumbnail_media_type

__all__ = ["console_router", "templates"]

HERE = Path(__file__).parent
STATIC_FILES = {
    "console.css": "text/css",
    "console.js": "text/javascript",
    "label.js": "text/javascript",
    "LICENSE.txt": "text/plain",
}
LONG_CACHE = "private, max-age=31536000, immutable"


def console_router(services: Services, *, dispatch: Callable[[list[int]], None]) -> APIRouter:
    """Every ``/ui`` page and ``GET /`` (→ ``/ui/jobs``). ``dispatch`` is told the ids of jobs the
    console re-queues, as the API's own retry routes do. Order matters: ``/ui/jobs/rows`` and the
    retry routes must match before ``/ui/jobs/{job_id}``."""
    router = APIRouter(include_in_schema=False)
    _shell_routes(router, services)
    job_list_routes(router, services)
    retry_routes(router, services, dispatch)
    job_page_routes(router, services)
    entity_routes(router, services)
    review_routes(router, services)
    try_routes(router, services, dispatch, page)
    catalog_routes(router, services, page)
    return router


def _shell_routes(router: APIRouter, services: Services) -> None:
    @router.get("/")
    @router.get("/ui")
    def home() -> RedirectResponse:
        return RedirectResponse("/ui/jobs", status_code=307)

    @router.get("/ui/static/{name}")
    def static(name: str) -> FileResponse:
        if name not in STATIC_FILES:
            raise HTTPException(404)
        return FileResponse(HERE / "static" / name, media_type=STATIC_FILES[name])

    @router.get("/ui/thumbs/{digest}.jpg")
    @router.get("/ui/thumbs/{digest}.webp")  # pages rendered before thumbnails were JPEG
    def thumbnail(digest: str) -> FileResponse:
        path = services.thumbnails.ensure(digest)  # an upload's is made on first use
        if path is None:
            raise HTTPException(404, "no such thumbnail")
        headers = {"Cache-Control": LONG_CACHE}
        return FileResponse(path, media_type=thumbnail_media_type(path), headers=headers)

    _login_routes(router)

    @router.get("/ui/health")
    def health(request: Request) -> HTMLResponse:
        return page(
            request,
            "health.html",
            nav="health",
            stats=data.service_stats(services),
            activity=data.hourly_activity(services.ledger, services.clock()),
            sweep=data.last_sweep(services),
            now=services.clock(),
        )


def _login_routes(router: APIRouter) -> None:
    """Sign in (``/ui/login``, rate-limited per address) and sign out (revokes the session)."""

    @router.get("/ui/login")
    def login_form(request: Request, next: str = "/ui/jobs") -> HTMLResponse:
        return page(request, "login.html", next=safe_next(next), error=None)

    @router.post("/ui/login")
    def login(request: Request, token: str = Form(""), next: str = Form("/ui/jobs")) -> Response:
        access: AccessControl | None = getattr(request.state, "access", None)
        if access is None or not access.enabled:
            return RedirectResponse(safe_next(next), status_code=303)
        wait = access.guess_refusal(request)
        if wait is not None:
            error = f"Too many wrong tokens from your address: try again in {wait} s."
            refused = page(request, "login.html", next=safe_next(next), error=error, status_code=429)
            refused.headers["Retry-After"] = str(wait)
            return refused
        found = access.record_guess(request, access.token_for(token.strip()))
        if found is None:
            return page(
                request, "login.html", next=safe_next(next), error="That token is not valid.", status_code=401
            )
        response = RedirectResponse(safe_next(next), status_code=303)
        access.set_session(response, request, found)
        return response

    @router.post("/ui/logout")
    def logout(request: Request, csrf_token: str = Form("")) -> RedirectResponse:
        check_csrf_field(request, csrf_token)
        access: AccessControl | None = getattr(request.state, "access", None)
        if access is not None:
            access.end_session(request)  # the cookie stops working everywhere, not just here
        response = RedirectResponse("/ui/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response
