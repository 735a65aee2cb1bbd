"""The operator console: server-rendered pages under ``/ui`` (Jinja2 templates, a little vanilla JS).

Pages read the ledger and the served index directly (the same objects the API uses); forms that
change something (retry, try a photo) carry a CSRF token (:func:`imagematch.api.access.check_csrf_field`).
Handlers are plain ``def`` functions: FastAPI runs them in its thread pool, as ledger calls block.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

import imagematch.console.data as data
from imagematch.api.access import SESSION_COOKIE, AccessControl, check_csrf_field
from imagematch.app import Services
from imagematch.console.catalog import catalog_routes
from imagematch.console.tryout import try_routes
from imagematch.models import JobKind, JobStatus
from imagematch.sources.zendesk.jobs import ZendeskImagePayload, ZendeskNotePayload, note_job_key

__all__ = ["console_router", "templates"]

HERE = Path(__file__).parent
STATIC_FILES = {"console.css": "text/css", "console.js": "text/javascript", "LICENSE.txt": "text/plain"}
LONG_CACHE = "private, max-age=31536000, immutable"
templates = Jinja2Templates(directory=HERE / "templates")


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError as exc:
        raise HTTPException(422, f"not a date (YYYY-MM-DD): {value!r}") from exc


def page(request: Request, name: str, **context: Any) -> HTMLResponse:
    """Render a full page with what every page needs (CSRF token, navigation, sign-out)."""
    access: AccessControl | None = getattr(request.state, "access", None)
    context.setdefault("status_code", 200)
    return templates.TemplateResponse(
        request,
        name,
        {
            "csrf_token": getattr(request.state, "csrf_token", ""),
            "signed_in": bool(access and access.enabled),
            **context,
        },
        status_code=context["status_code"],
    )


def console_router(services: Services, *, dispatch: Callable[[list[int]], None]) -> APIRouter:
    """Every ``/ui`` page and ``GET /`` (→ ``/ui/jobs``). ``dispatch`` is told the ids of jobs the
    console re-queues, as the API's own retry routes do."""
    router = APIRouter(include_in_schema=False)
    _shell_routes(router, services)
    _session_routes(router)
    _job_routes(router, services, dispatch)
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

    @router.get("/ui/thumbs/{digest}.webp")
    def thumbnail(digest: str) -> FileResponse:
        if not services.thumbnails.has(digest):
            raise HTTPException(404, "no such thumbnail")
        return FileResponse(
            services.thumbnails.path(digest), media_type="image/webp", headers={"Cache-Control": LONG_CACHE}
        )

    @router.get("/ui/health")
    def health(request: Request) -> HTMLResponse:
        return page(
            request,
            "health.html",
            nav="health",
            stats=data.service_stats(services),
            activity=data.hourly_activity(services.ledger, services.clock()),
            sweep=data.last_sweep(services),
        )


def _session_routes(router: APIRouter) -> None:
    """Sign in (``/ui/login``, rate-limited per address) and sign out (revokes the session)."""

    @router.get("/ui/login")
    def login_form(request: Request, next: str = "/ui/jobs") -> HTMLResponse:
        return page(request, "login.html", next=_safe_next(next), error=None)

    @router.post("/ui/login")
    def login(request: Request, token: str = Form(""), next: str = Form("/ui/jobs")) -> Response:
        access: AccessControl | None = getattr(request.state, "access", None)
        if access is None or not access.enabled:
            return RedirectResponse(_safe_next(next), status_code=303)
        wait = access.guess_refusal(request)
        if wait is not None:
            refused = page(
                request,
                "login.html",
                next=_safe_next(next),
                error=f"Too many wrong tokens from your address: try again in {wait} s.",
                status_code=429,
            )
            refused.headers["Retry-After"] = str(wait)
            return refused
        found = access.record_guess(request, access.token_for(token.strip()))
        if found is None:
            return page(
                request,
                "login.html",
                next=_safe_next(next),
                error="That token is not valid.",
                status_code=401,
            )
        response = RedirectResponse(_safe_next(next), status_code=303)
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


def _safe_next(target: str) -> str:
    """Only paths of this site (no ``//host`` or scheme): the login form cannot redirect away."""
    return (
        target
        if target.startswith("/") and not target.startswith("//") and "\\" not in target
        else "/ui/jobs"
    )


def _filter(
    status: str | None, source: str | None, kind: str | None, since: str | None, until: str | None
) -> data.JobFilter:
    try:
        job_status = JobStatus(status) if status else None
    except ValueError as exc:
        raise HTTPException(422, f"unknown status {status!r}") from exc
    return data.JobFilter(job_status, source or None, kind or None, _date(since), _date(until))


def _job_routes(router: APIRouter, services: Services, dispatch: Callable[[list[int]], None]) -> None:
    """The jobs list (and its polled rows), the retry buttons, then one job's page (in this order:
    ``/ui/jobs/rows`` and ``/ui/jobs/retry-failed`` must match before ``/ui/jobs/{job_id}``)."""
    _job_list_routes(router, services)
    _retry_routes(router, services, dispatch)
    _job_detail_routes(router, services)


def _job_list_routes(router: APIRouter, services: Services) -> None:
    @router.get("/ui/jobs")
    def jobs(
        request: Request,
        status: str | None = None,
        source: str | None = None,
        kind: str | None = None,
        since: str | None = None,
        until: str | None = None,
        cursor: int | None = None,
        limit: int = Query(50, ge=1, le=200),
    ) -> HTMLResponse:
        flt = _filter(status, source, kind, since, until)
        found, next_cursor = data.find_jobs(services.ledger, flt, limit=limit, before_id=cursor)
        query = flt.query()
        return page(
            request,
            "jobs.html",
            nav="jobs",
            rows=[data.job_row(services, job) for job in found],
            flt=flt,
            statuses=list(JobStatus),
            kinds=list(JobKind),
            next_url=f"/ui/jobs?{urlencode({**query, 'cursor': next_cursor})}" if next_cursor else None,
            first_url=f"/ui/jobs?{urlencode(query)}" if cursor else None,
            return_to=str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""),
            now=services.clock(),
        )

    @router.get("/ui/jobs/rows")
    def job_rows(request: Request, ids: str = "") -> HTMLResponse:
        """Fresh table rows for the given job ids (the jobs page polls its in-flight rows)."""
        wanted = [int(i) for i in ids.split(",") if i.strip().isdigit()][:200]
        jobs = [job for job in map(services.ledger.get_job, wanted) if job is not None]
        return templates.TemplateResponse(
            request,
            "_job_rows.html",
            {
                "rows": [data.job_row(services, job) for job in jobs],
                "csrf_token": getattr(request.state, "csrf_token", ""),
                "return_to": "/ui/jobs",
                "now": services.clock(),
            },
        )


def _retry_routes(router: APIRouter, services: Services, dispatch: Callable[[list[int]], None]) -> None:
    @router.post("/ui/jobs/{job_id}/retry")
    def retry(
        request: Request, job_id: int, csrf_token: str = Form(""), return_to: str = Form("")
    ) -> Response:
        check_csrf_field(request, csrf_token)
        job = services.ledger.requeue(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id}")
        dispatch([job.id])
        return RedirectResponse(_safe_next(return_to or f"/ui/jobs/{job_id}"), status_code=303)

    @router.post("/ui/jobs/retry-failed")
    def retry_failed(
        request: Request,
        csrf_token: str = Form(""),
        source: str = Form(""),
        kind: str = Form(""),
        since: str = Form(""),
        until: str = Form(""),
    ) -> RedirectResponse:
        """Re-queue every failed job the current filter shows (up to the scan bound)."""
        check_csrf_field(request, csrf_token)
        flt = _filter("failed", source, kind, since, until)
        failed, _ = data.find_jobs(services.ledger, flt, limit=data.MAX_SCAN, before_id=None)
        ids = [job.id for job in failed if services.ledger.requeue(job.id) is not None]
        if ids:
            dispatch(ids)
        query = {**flt.query(), "status": "pending", "retried": str(len(ids))}
        return RedirectResponse(f"/ui/jobs?{urlencode(query)}", status_code=303)


def _job_detail_routes(router: APIRouter, services: Services) -> None:
    @router.get("/ui/jobs/{job_id}")
    def job_detail(request: Request, job_id: int) -> HTMLResponse:
        job = services.ledger.get_job(job_id)
        if job is None:
            return page(request, "not_found.html", nav="jobs", what=f"job {job_id}", status_code=404)
        row = data.job_row(services, job)
        index = data.served_index(services)
        matches = []
        for match in row.prediction.matches if row.prediction else []:
            ref = data.reference_image(services, index, match) if index else None
            matches.append((match, ref))
        note = None
        if job.kind == ZendeskImagePayload.KIND:
            key = note_job_key(str(job.payload.get("ticket_id")), str(job.payload.get("attachment_id")))
            note = services.ledger.get_job_by_key(key, kind=ZendeskNotePayload.KIND)
        return page(
            request,
            "job.html",
            nav="jobs",
            row=row,
            matches=matches,
            note=note,
            attempts=services.ledger.list_attempts(job_id),
            now=services.clock(),
        )
