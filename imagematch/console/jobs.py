"""``/ui/jobs``: the jobs list (filters, one search box, polled rows), its CSV export, and the
retry buttons (one job, the selected rows, every failed job of the filter).

Permanent failures (not a decodable image, 404, too large) fail again the same way: the bulk
retries leave them out unless the operator ticks "include permanent failures".
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

import imagematch.console.data as data
from imagematch.api.access import check_csrf_field
from imagematch.app import Services
from imagematch.console.listing import MAX_SCAN, JobFilter, find_jobs, parse_filter
from imagematch.console.pages import error_page, page, safe_next, templates
from imagematch.models import ErrorKind, Job, JobStatus

__all__ = ["job_list_routes", "retry_routes"]

FILTER_FIELDS = ("q", "status", "source", "kind", "entity", "since", "until")
CSV_COLUMNS = (
    "id", "status", "kind", "source", "entity", "created_at", "attempts", "error_kind", "error",
    "best_product_id", "best_name", "score", "confidence", "band",
)  # fmt: skip


def request_filter(services: Services, params: dict[str, str]) -> JobFilter:
    """The filter named by ``params``; ValueError (with the reason) on a bad value."""
    index = data.served_index(services)
    products = set(index.products) if index else set()
    return parse_filter(params, kinds=set(services.kinds.names()), product_ids=products)


def _return_to(request: Request) -> str:
    return str(request.url.path) + (f"?{request.url.query}" if request.url.query else "")


def job_list_routes(router: APIRouter, services: Services) -> None:
    @router.get("/ui/jobs")
    def jobs(
        request: Request, cursor: int | None = None, limit: int = Query(50, ge=1, le=200)
    ) -> HTMLResponse:
        try:
            flt = request_filter(services, dict(request.query_params))
        except ValueError as exc:
            return error_page(request, str(exc))
        found, next_cursor = find_jobs(services.ledger, flt, limit=limit, before_id=cursor)
        query = flt.query()
        return page(
            request,
            "jobs.html",
            nav="jobs",
            rows=[data.job_row(services, job) for job in found],
            flt=flt,
            statuses=list(JobStatus),
            kinds=services.kinds.names(),
            next_url=f"/ui/jobs?{urlencode({**query, 'cursor': next_cursor})}" if next_cursor else None,
            first_url=f"/ui/jobs?{urlencode(query)}" if cursor else None,
            csv_url=f"/ui/jobs.csv?{urlencode(query)}",
            return_to=_return_to(request),
            now=services.clock(),
        )

    @router.get("/ui/jobs.csv")
    def jobs_csv(request: Request) -> Response:
        """Every job the current filter shows (up to the scan bound), as CSV."""
        try:
            flt = request_filter(services, dict(request.query_params))
        except ValueError as exc:
            return error_page(request, str(exc))
        found, _ = find_jobs(services.ledger, flt, limit=MAX_SCAN, before_id=None)
        body = _csv([data.job_row(services, job) for job in found])
        headers = {"Content-Disposition": 'attachment; filename="imagematch-jobs.csv"'}
        return Response(body, media_type="text/csv; charset=utf-8", headers=headers)

    @router.get("/ui/jobs/rows")
    def job_rows(request: Request, ids: str = "") -> HTMLResponse:
        """Fresh table rows for the given job ids (the jobs page polls its in-flight rows)."""
        wanted = [int(i) for i in ids.split(",") if i.strip().isdigit()][:200]
        jobs = [job for job in map(services.ledger.get_job, wanted) if job is not None]
        context = {
            "rows": [data.job_row(services, job) for job in jobs],
            "csrf_token": getattr(request.state, "csrf_token", ""),
            "return_to": "/ui/jobs",
            "now": services.clock(),
        }
        return templates.TemplateResponse(request, "_job_rows.html", context)


def _csv(rows: list[data.JobRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        job, best = row.job, row.best
        writer.writerow([
            job.id, job.status.value, job.kind, job.source, str(row.entity or ""),
            job.created_at.isoformat(), job.attempts, job.error_kind.value if job.error_kind else "",
            job.last_error or "", best.product_id if best else "", best.name if best else "",
            f"{best.score:.4f}" if best else "",
            f"{row.confidence:.4f}" if row.confidence is not None else "", row.band or "",
        ])  # fmt: skip
    return out.getvalue()


def _requeue(
    services: Services,
    jobs: list[Job],
    *,
    include_permanent: bool,
    dispatch: Callable[[list[int]], None],
) -> tuple[int, int]:
    """Re-queue ``jobs``; permanent failures only when asked. (requeued, permanent left out)."""
    left_out = [j for j in jobs if j.error_kind is ErrorKind.PERMANENT and not include_permanent]
    wanted = [j for j in jobs if j not in left_out]
    ids = [job.id for job in wanted if services.ledger.requeue(job.id) is not None]
    if ids:
        dispatch(ids)
    return len(ids), len(left_out)


def retry_routes(router: APIRouter, services: Services, dispatch: Callable[[list[int]], None]) -> None:
    @router.post("/ui/jobs/{job_id}/retry")
    def retry(
        request: Request, job_id: int, csrf_token: str = Form(""), return_to: str = Form("")
    ) -> Response:
        check_csrf_field(request, csrf_token)
        job = services.ledger.requeue(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id}")
        dispatch([job.id])
        return RedirectResponse(safe_next(return_to or f"/ui/jobs/{job_id}"), status_code=303)

    @router.post("/ui/jobs/retry-selected")
    def retry_selected(
        request: Request,
        csrf_token: str = Form(""),
        ids: list[int] = Form(default_factory=list),
        include_permanent: bool = Form(False),
        return_to: str = Form("/ui/jobs"),
    ) -> RedirectResponse:
        """Re-queue the ticked rows (permanent failures only when asked)."""
        check_csrf_field(request, csrf_token)
        jobs = [j for j in map(services.ledger.get_job, ids[:500]) if j is not None]
        done, left_out = _requeue(services, jobs, include_permanent=include_permanent, dispatch=dispatch)
        target = safe_next(return_to)
        sep = "&" if "?" in target else "?"
        return RedirectResponse(f"{target}{sep}{urlencode({'retried': done, 'left_out': left_out})}", 303)

    @router.post("/ui/jobs/retry-failed")
    def retry_failed(
        request: Request,
        csrf_token: str = Form(""),
        include_permanent: bool = Form(False),
        q: str = Form(""),
        source: str = Form(""),
        kind: str = Form(""),
        entity: str = Form(""),
        since: str = Form(""),
        until: str = Form(""),
    ) -> Response:
        """Re-queue every failed job the current filter shows (up to the scan bound)."""
        check_csrf_field(request, csrf_token)
        form = {"q": q, "source": source, "kind": kind, "entity": entity, "since": since, "until": until}
        return _retry_failed(request, services, form, include_permanent, dispatch)


def _retry_failed(
    request: Request,
    services: Services,
    params: dict[str, str],
    include_permanent: bool,
    dispatch: Callable[[list[int]], None],
) -> Response:
    try:
        flt = request_filter(services, {**params, "status": "failed"})
    except ValueError as exc:
        return error_page(request, str(exc))
    failed, _ = find_jobs(services.ledger, flt, limit=MAX_SCAN, before_id=None)
    done, left_out = _requeue(services, failed, include_permanent=include_permanent, dispatch=dispatch)
    query = {**flt.query(), "status": "pending", "retried": str(done), "left_out": str(left_out)}
    return RedirectResponse(f"/ui/jobs?{urlencode(query)}", status_code=303)
