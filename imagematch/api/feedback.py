"""Feedback on answers (``/v1/jobs/{id}/feedback``, ``/v1/feedback``) and the catalog search a
label's product is picked with (``/v1/products``)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel

from imagematch.api.access import principal_of
from imagematch.app import Services
from imagematch.catalog_search import search_products
from imagematch.feedback import FeedbackIn, JobWithoutPhotoError, UnknownJobError, UnknownProductError
from imagematch.labels import Label, Verdict
from imagematch.ledger import Ledger

__all__ = ["feedback_router", "given_by", "products_router"]

_EXPORT_PAGE = 1000


class ProductOut(BaseModel):
    id: str
    name: str
    category: str


class ProductList(BaseModel):
    products: list[ProductOut]


def given_by(request: Request) -> str:
    """Who a label from ``request`` is recorded as given by: the token's (or console session's)
    name, ``anonymous`` when the service runs without tokens."""
    return principal_of(request) or "anonymous"


def feedback_router(services: Services) -> APIRouter:
    router = APIRouter(tags=["feedback"])
    feedback = services.feedback

    @router.post("/v1/jobs/{job_id}/feedback", status_code=201, response_model=Label)
    async def give_feedback(job_id: int, body: FeedbackIn, request: Request) -> JSONResponse:
        """Label the job's answer. 201 with the stored label; 200 with it when the same label was
        current already. A later label replaces the earlier one (the history is kept). 404: no
        such job; 409: the job has no photo; 422: product missing or not in the served catalog."""
        try:
            label, created = await run_in_threadpool(feedback.give, job_id, body, given_by=given_by(request))
        except UnknownJobError as exc:
            raise HTTPException(404, str(exc)) from exc
        except JobWithoutPhotoError as exc:
            raise HTTPException(409, str(exc)) from exc
        except (UnknownProductError, ValueError) as exc:
            raise HTTPException(422, str(exc)) from exc
        return JSONResponse(label.model_dump(mode="json"), status_code=201 if created else 200)

    @router.delete("/v1/jobs/{job_id}/feedback", response_model=Label, responses={204: {}})
    async def retract_feedback(job_id: int, request: Request) -> Response:
        """Retract the job's current label: 200 with it as ended, 204 when it had none."""
        try:
            ended = await run_in_threadpool(feedback.retract, job_id, by=given_by(request))
        except UnknownJobError as exc:
            raise HTTPException(404, str(exc)) from exc
        except JobWithoutPhotoError as exc:
            raise HTTPException(409, str(exc)) from exc
        if ended is None:
            return Response(status_code=204)
        return JSONResponse(ended.model_dump(mode="json"))

    @router.get("/v1/feedback")
    def export_feedback(
        since: datetime | None = Query(None, description="Only labels given at or after this time."),
        verdict: Verdict | None = None,
        format: Literal["jsonl", "csv"] = "jsonl",
        history: bool = Query(False, description="Also labels since replaced or retracted."),
    ) -> StreamingResponse:
        """Every label (current ones unless ``history``), oldest first, as JSON lines or CSV."""
        pages = _label_pages(services.ledger, since=since, verdict=verdict, current_only=not history)
        body = (
            _csv_lines(pages) if format == "csv" else (lb.model_dump_json() + "\n" for p in pages for lb in p)
        )
        media = "text/csv" if format == "csv" else "application/x-ndjson"
        headers = {"Content-Disposition": f'attachment; filename="labels.{format}"'}
        return StreamingResponse(body, media_type=media, headers=headers)

    return router


def products_router(services: Services) -> APIRouter:
    """``GET /v1/products``: the catalog search a label's product is picked with."""
    router = APIRouter(tags=["feedback"])

    @router.get("/v1/products", response_model=ProductList)
    async def find_products(
        q: str = Query("", max_length=200, description="Words of the product's id or name."),
        limit: int = Query(20, ge=1, le=200),
    ) -> ProductList:
        """Catalog products by id or name, best first (the served catalog only)."""
        products = await run_in_threadpool(lambda: list(services.index.get().products.values()))
        found = search_products(products, q, limit=limit)
        return ProductList(products=[ProductOut(id=p.id, name=p.name, category=p.category) for p in found])

    return router


def _label_pages(
    ledger: Ledger, *, since: datetime | None, verdict: Verdict | None, current_only: bool
) -> Iterator[list[Label]]:
    after: int | None = None
    while True:
        page = ledger.list_labels(
            since=since, verdict=verdict, current_only=current_only, after_id=after, limit=_EXPORT_PAGE
        )
        if page:
            yield page
        if len(page) < _EXPORT_PAGE:
            return
        after = page[-1].id


def _csv_lines(pages: Iterator[list[Label]]) -> Iterator[str]:
    columns = list(Label.model_fields)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    for page in pages:
        for label in page:
            writer.writerow({k: "" if v is None else v for k, v in label.model_dump(mode="json").items()})
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()
