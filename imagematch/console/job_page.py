"""``/ui/jobs/{id}``: one job, answer first: its band and top-5 (with the label buttons), the
photo's quality verdict and advice, what failed and whether a retry can help, and its attempts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

import imagematch.console.data as data
from imagematch.app import Services
from imagematch.console.pages import page
from imagematch.models import Job
from imagematch.sources.zendesk.jobs import ZendeskImagePayload, ZendeskNotePayload, note_job_key

__all__ = ["job_page_routes", "top_matches"]


def top_matches(services: Services, row: data.JobRow) -> list[tuple[Any, data.ReferenceImage | None]]:
    """The answer's products, each with the reference image it matched closest."""
    index = data.served_index(services)
    matches = row.prediction.matches if row.prediction else []
    return [(m, data.reference_image(services, index, m) if index else None) for m in matches]


def _note(services: Services, job: Job) -> Job | None:
    if job.kind != ZendeskImagePayload.KIND:
        return None
    key = note_job_key(str(job.payload.get("ticket_id")), str(job.payload.get("attachment_id")))
    return services.ledger.get_job_by_key(key, kind=ZendeskNotePayload.KIND)


def job_page_routes(router: APIRouter, services: Services) -> None:
    @router.get("/ui/jobs/{job_id}")
    def job_detail(request: Request, job_id: int) -> HTMLResponse:
        job = services.ledger.get_job(job_id)
        if job is None:
            return page(request, "not_found.html", nav="jobs", what=f"job {job_id}", status_code=404)
        row = data.job_row(services, job, with_label=True)
        return page(
            request,
            "job.html",
            nav="jobs",
            row=row,
            matches=top_matches(services, row),
            note=_note(services, job),
            attempts=services.ledger.list_attempts(job_id),
            now=services.clock(),
        )
