"""``/ui/try``: match a photo now (upload, drop, paste or URL), or submit it as a job."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

import imagematch.console.data as data
from imagematch.api.access import check_csrf_field
from imagematch.app import Services
from imagematch.console.pages import PageRenderer
from imagematch.errors import ImageMatchError, PermanentError
from imagematch.images import sha256_hex
from imagematch.job_kinds import MatchImagePayload, image_ref_for_blob, new_job
from imagematch.models import MatchRequest

__all__ = ["try_routes"]

FRAGMENT_HEADER = "x-console-fragment"  # the page's script asks for the results panel only


def _read_upload(upload: UploadFile | None, max_bytes: int) -> bytes | None:
    if upload is None or not upload.filename:
        return None
    body = upload.file.read(max_bytes + 1)
    if len(body) > max_bytes:
        raise PermanentError(f"the photo is larger than the limit of {max_bytes:,} bytes")
    return body


def _categories(services: Services) -> list[str]:
    index = data.served_index(services)
    return sorted({p.category for p in index.products.values() if p.category}) if index else []


def try_routes(
    router: APIRouter, services: Services, dispatch: Callable[[list[int]], None], page: PageRenderer
) -> None:

    def render(request: Request, *, status_code: int = 200, **context: Any) -> HTMLResponse:
        name = "_try_results.html" if request.headers.get(FRAGMENT_HEADER) else "try.html"
        context.setdefault("result", None)
        context.setdefault("error", None)
        return page(
            request, name, nav="try", categories=_categories(services), status_code=status_code, **context
        )

    _match_routes(router, services, render)
    _submit_route(router, services, dispatch, render)


Render = Callable[..., HTMLResponse]


def _match_routes(router: APIRouter, services: Services, render: Render) -> None:
    limits = services.limits

    @router.get("/ui/try")
    def try_form(request: Request) -> HTMLResponse:
        return render(request, category="")

    @router.post("/ui/try")
    def try_photo(
        request: Request,
        file: UploadFile | None = File(None),
        url: str = Form(""),
        category: str = Form(""),
        csrf_token: str = Form(""),
    ) -> HTMLResponse:
        check_csrf_field(request, csrf_token)
        try:
            body = _read_upload(file, limits.max_bytes)
            if body is None and not url.strip():
                raise PermanentError("choose a photo, drop or paste one, or give its URL")
            body = body if body is not None else services.fetcher.fetch(url.strip())
            found = services.match_bytes(body, MatchRequest(category=category or None))
            result = found.result
            photo = (  # matched in another process (Modal's web): its thumbnail is decoded here
                services.thumbnails.put(found.digest, found.image)
                if found.image is not None
                else services.thumbnails.put_bytes(body, limits)
            )
        except ImageMatchError as exc:
            status = 422 if isinstance(exc, PermanentError) else 502
            return render(request, status_code=status, error=str(exc), category=category, url=url)
        index = data.served_index(services)
        matches = [(m, data.reference_image(services, index, m) if index else None) for m in result.matches]
        return render(request, result=result, matches=matches, photo=photo, category=category, url=url)


def _submit_route(
    router: APIRouter, services: Services, dispatch: Callable[[list[int]], None], render: Render
) -> None:
    @router.post("/ui/try/submit")
    def submit_photo(
        request: Request,
        file: UploadFile | None = File(None),
        url: str = Form(""),
        csrf_token: str = Form(""),
    ) -> Response:
        """Persist the photo as a job (as ``POST /v1/images``) and show it in the jobs table."""
        check_csrf_field(request, csrf_token)
        try:
            body = _read_upload(file, services.limits.max_bytes)
        except PermanentError as exc:
            return render(request, status_code=413, error=str(exc), category="")
        if body is not None:
            digest = services.blobs.put(body)
            name = file.filename if file and file.filename else None
            payload = MatchImagePayload(image=image_ref_for_blob(digest), file_name=name)
            key = f"upload:{digest}"
        elif url.strip():
            payload, key = MatchImagePayload(image=url.strip()), f"url:{sha256_hex(url.strip().encode())}"
        else:
            return render(request, status_code=422, error="choose a photo or give its URL first", category="")
        job, created = services.ledger.submit(new_job(payload, source="console", idempotency_key=key))
        if not created:  # the jobs page says so and scrolls to the existing row
            return RedirectResponse(f"/ui/jobs?highlight={job.id}&duplicate=1#job-{job.id}", status_code=303)
        dispatch([job.id])
        return RedirectResponse(f"/ui/jobs?highlight={job.id}", status_code=303)
