"""``/ui/try``: match a photo now (upload, drop, paste or URL), or submit it as a job."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData, UploadFile

from imagematch.access import CSRF_COOKIE, CSRF_HEADER, check_csrf_field
from imagematch.app import Services
from imagematch.console import data
from imagematch.errors import ImageMatchError, PermanentError
from imagematch.images import sha256_hex
from imagematch.job_kinds import MatchImagePayload, image_ref_for_blob, new_job
from imagematch.models import MatchRequest
from imagematch.request_limits import MULTIPART_OVERHEAD_BYTES, read_multipart_capped

__all__ = ["try_routes"]

FRAGMENT_HEADER = "x-console-fragment"  # the page's script asks for the results panel only


class PageRenderer(Protocol):
    def __call__(self, request: Request, name: str, **context: Any) -> HTMLResponse: ...


async def _read_try_form(request: Request, max_bytes: int) -> FormData:
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


async def _upload(form: FormData, max_bytes: int) -> tuple[bytes | None, str | None]:
    """The uploaded photo and its file name, or ``(None, None)`` when no file was chosen."""
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return None, None
    body = await upload.read(max_bytes + 1)
    if len(body) > max_bytes:
        raise PermanentError(f"the photo is larger than the limit of {max_bytes:,} bytes")
    return body, upload.filename


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _categories(services: Services) -> list[str]:
    index = data.served_index(services)
    return sorted({p.category for p in index.products.values() if p.category}) if index else []


def try_routes(
    router: APIRouter, services: Services, dispatch: Callable[[list[int]], None], page: PageRenderer
) -> None:
    limits = services.limits

    def render(request: Request, *, status_code: int = 200, **context: Any) -> HTMLResponse:
        name = "_try_results.html" if request.headers.get(FRAGMENT_HEADER) else "try.html"
        context.setdefault("result", None)
        context.setdefault("error", None)
        return page(
            request, name, nav="try", categories=_categories(services), status_code=status_code, **context
        )

    @router.get("/ui/try")
    def try_form(request: Request) -> HTMLResponse:
        return render(request, category="")

    @router.post("/ui/try")
    async def try_photo(request: Request) -> HTMLResponse:
        try:
            form = await _read_try_form(request, limits.max_bytes)
        except HTTPException as exc:
            if exc.status_code != 413:
                raise
            return render(request, status_code=413, error=str(exc.detail), category="")
        try:
            body, _ = await _upload(form, limits.max_bytes)
            url, category = _text(form, "url"), _text(form, "category")
        except PermanentError as exc:
            return render(request, status_code=413, error=str(exc), category="")
        finally:
            await form.close()
        return await run_in_threadpool(match_now, request, body, url, category)

    def match_now(request: Request, body: bytes | None, url: str, category: str) -> HTMLResponse:
        try:
            if body is None and not url:
                raise PermanentError("choose a photo, drop or paste one, or give its URL")
            body = body if body is not None else services.fetcher.fetch(url)
            image = limits.decode(body)
            photo = services.thumbnails.put(sha256_hex(body), image)
            result = services.match_photo(body, MatchRequest(category=category or None))
        except ImageMatchError as exc:
            status = 422 if isinstance(exc, PermanentError) else 502
            return render(request, status_code=status, error=str(exc), category=category, url=url)
        index = data.served_index(services)
        matches = [(m, data.reference_image(services, index, m) if index else None) for m in result.matches]
        return render(request, result=result, matches=matches, photo=photo, category=category, url=url)

    @router.post("/ui/try/submit")
    async def submit_photo(request: Request) -> Response:
        """Persist the photo as a job (as ``POST /v1/images``) and show it in the jobs table."""
        try:
            form = await _read_try_form(request, limits.max_bytes)
        except HTTPException as exc:
            if exc.status_code != 413:
                raise
            return render(request, status_code=413, error=str(exc.detail), category="")
        try:
            body, name = await _upload(form, limits.max_bytes)
            url = _text(form, "url")
        except PermanentError as exc:
            return render(request, status_code=413, error=str(exc), category="")
        finally:
            await form.close()
        return await run_in_threadpool(submit_now, request, body, name, url)

    def submit_now(request: Request, body: bytes | None, name: str | None, url: str) -> Response:
        if body is not None:
            digest = services.blobs.put(body)
            payload = MatchImagePayload(image=image_ref_for_blob(digest), file_name=name)
            key = f"upload:{digest}"
        elif url:
            payload, key = MatchImagePayload(image=url), f"url:{sha256_hex(url.encode())}"
        else:
            return render(request, status_code=422, error="choose a photo or give its URL first", category="")
        job, created = services.ledger.submit(new_job(payload, source="console", idempotency_key=key))
        if created:
            dispatch([job.id])
        return RedirectResponse(f"/ui/jobs?highlight={job.id}", status_code=303)
