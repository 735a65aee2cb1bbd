"""``/ui/try``: match a photo now (upload, drop, paste or URL), or submit it as a job."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData, UploadFile

import imagematch.console.data as data
from imagematch.api.access import CSRF_COOKIE, CSRF_HEADER, check_csrf_field
from imagematch.app import Services
from imagematch.console.pages import PageRenderer
from imagematch.errors import ImageMatchError, PermanentError
from imagematch.images import sha256_hex
from imagematch.job_kinds import MatchImagePayload, image_ref_for_blob, new_job
from imagematch.models import MatchRequest
from imagematch.request_limits import MULTIPART_OVERHEAD_BYTES, read_multipart_capped

__all__ = ["try_routes"]

FRAGMENT_HEADER = "x-console-fragment"  # the page's script asks for the results panel only


@dataclass(frozen=True)
class TryForm:
    """What the try page's form sent: a photo (with its file name) or a URL, and a category."""

    photo: bytes | None
    file_name: str | None
    url: str
    category: str


async def _read_multipart(request: Request, max_bytes: int) -> FormData:
    """The try page's multipart form, CSRF checked before the body is read: the page's script
    sends the token as a header (checked first); the no-script form carries it as a field, so
    without a header the CSRF cookie must at least exist. The body is read through the capped
    reader of ``/v1/images`` (413 with nothing read past the cap). Close the form when done."""
    header = request.headers.get(CSRF_HEADER)
    if header is not None or not request.cookies.get(CSRF_COOKIE):
        check_csrf_field(request, header)
    form = await read_multipart_capped(request, max_bytes + MULTIPART_OVERHEAD_BYTES, max_fields=10)
    if header is None:
        try:
            check_csrf_field(request, form.get("csrf_token"))
        except HTTPException:
            await form.close()
            raise
    return form


async def read_try_form(request: Request, max_bytes: int) -> TryForm:
    """The try page's form (see :func:`_read_multipart`). Raises HTTPException: 403 (CSRF), 413
    (the body, or the photo past ``max_bytes``), 422 (not a form)."""
    form = await _read_multipart(request, max_bytes)
    try:
        upload, photo, name = form.get("file"), None, None
        if isinstance(upload, UploadFile) and upload.filename:
            photo, name = await upload.read(max_bytes + 1), upload.filename
            if len(photo) > max_bytes:
                raise HTTPException(413, f"the photo is larger than the limit of {max_bytes:,} bytes")
        return TryForm(photo, name, _text(form, "url"), _text(form, "category"))
    finally:
        await form.close()


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


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

    async def read_form(request: Request) -> TryForm | HTMLResponse:
        """The form, or the page saying the photo is too large (other refusals are raised)."""
        try:
            return await read_try_form(request, services.limits.max_bytes)
        except HTTPException as exc:
            if exc.status_code != 413:
                raise
            return render(request, status_code=413, error=str(exc.detail), category="")

    @router.get("/ui/try")
    def try_form(request: Request) -> HTMLResponse:
        return render(request, category="")

    _match_route(router, services, render, read_form)
    _submit_route(router, services, dispatch, render, read_form)


Render = Callable[..., HTMLResponse]
FormReader = Callable[[Request], Awaitable[TryForm | HTMLResponse]]


def _match_route(router: APIRouter, services: Services, render: Render, read_form: FormReader) -> None:
    @router.post("/ui/try")
    async def try_photo(request: Request) -> HTMLResponse:
        form = await read_form(request)
        return form if isinstance(form, HTMLResponse) else await run_in_threadpool(match_now, request, form)

    def match_now(request: Request, form: TryForm) -> HTMLResponse:
        url, category = form.url, form.category
        try:
            if form.photo is None and not url:
                raise PermanentError("choose a photo, drop or paste one, or give its URL")
            body = form.photo if form.photo is not None else services.fetcher.fetch(url)
            found = services.match_bytes(body, MatchRequest(category=category or None))
            result = found.result
            photo = (  # matched in another process (Modal's web): its thumbnail is decoded here
                services.thumbnails.put(found.digest, found.image)
                if found.image is not None
                else services.thumbnails.put_bytes(body, services.limits)
            )
        except ImageMatchError as exc:
            status = 422 if isinstance(exc, PermanentError) else 502
            return render(request, status_code=status, error=str(exc), category=category, url=url)
        index = data.served_index(services)
        matches = [(m, data.reference_image(services, index, m) if index else None) for m in result.matches]
        return render(request, result=result, matches=matches, photo=photo, category=category, url=url)


def _submit_route(
    router: APIRouter,
    services: Services,
    dispatch: Callable[[list[int]], None],
    render: Render,
    read_form: FormReader,
) -> None:
    @router.post("/ui/try/submit")
    async def submit_photo(request: Request) -> Response:
        """Persist the photo as a job (as ``POST /v1/images``) and show it in the jobs table."""
        form = await read_form(request)
        return form if isinstance(form, HTMLResponse) else await run_in_threadpool(submit_now, request, form)

    def submit_now(request: Request, form: TryForm) -> Response:
        if form.photo is not None:
            digest = services.blobs.put(form.photo)
            payload = MatchImagePayload(image=image_ref_for_blob(digest), file_name=form.file_name)
            key = f"upload:{digest}"
        elif form.url:
            payload, key = MatchImagePayload(image=form.url), f"url:{sha256_hex(form.url.encode())}"
        else:
            return render(request, status_code=422, error="choose a photo or give its URL first", category="")
        job, created = services.ledger.submit(new_job(payload, source="console", idempotency_key=key))
        if not created:  # the jobs page says so and scrolls to the existing row
            return RedirectResponse(f"/ui/jobs?highlight={job.id}&duplicate=1#job-{job.id}", status_code=303)
        dispatch([job.id])
        return RedirectResponse(f"/ui/jobs?highlight={job.id}", status_code=303)
