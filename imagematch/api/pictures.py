"""Pictures for API clients (the Zendesk sidebar app): a job's photo thumbnail and a product's
catalog picture.

``GET /v1/jobs/{id}/thumbnail`` and ``GET /v1/products/{id}/image`` answer JPEG bytes (WebP for a
thumbnail written before 2026-12-07: the content type says which), or with
``?format=json`` a ``data:`` URL in JSON: a Zendesk app must fetch through ``client.request`` (so
its token stays in Zendesk's proxy), and that call carries text only, no binary bodies.

A product's picture is always one of its **catalog** images, never a learned reference (a
customer's photo confirmed as that product): a customer's photo stays with its own ticket.
"""

from __future__ import annotations

import base64
from enum import StrEnum
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, Response

from imagematch.app import Services
from imagematch.errors import EmbedderMismatchError, IndexNotBuiltError
from imagematch.fetch import read_uri  # the catalog's own reader (paths, file://, http)
from imagematch.index.learned import CATALOG
from imagematch.index.product_index import IndexedImage
from imagematch.thumbnails import thumbnail_media_type

__all__ = ["PictureFormat", "catalog_picture", "pictures_router"]

PICTURE_CACHE = "private, max-age=86400"


class PictureFormat(StrEnum):
    IMAGE = "image"
    JSON = "json"


def pictures_router(services: Services) -> APIRouter:
    router = APIRouter(tags=["pictures"])

    @router.get("/v1/jobs/{job_id}/thumbnail", response_class=Response)
    async def job_thumbnail(job_id: int, format: PictureFormat = PictureFormat.IMAGE) -> Response:
        """The thumbnail of the photo job ``job_id`` processed (JPEG, at most 256 px). 404 for an
        unknown job or one whose photo has no thumbnail (not processed yet, skipped, purged)."""
        if await run_in_threadpool(services.ledger.get_job, job_id) is None:
            raise HTTPException(404, f"no job {job_id}")
        digest = services.thumbnails.job_photo(job_id)
        # An upload's thumbnail is made on first use; None if its original went meanwhile.
        path = None if digest is None else await run_in_threadpool(services.thumbnails.ensure, digest)
        if path is None:
            raise HTTPException(404, f"job {job_id} has no thumbnail")
        return _picture(path, format)

    @router.get("/v1/products/{product_id}/image", response_class=Response)
    async def product_image(product_id: str, format: PictureFormat = PictureFormat.IMAGE) -> Response:
        """The product's first catalog image (JPEG thumbnail) in the served index; never a
        learned reference. 404 for a product not in the served index or without a readable image."""
        path = await run_in_threadpool(catalog_picture, services, product_id)
        if path is None:
            raise HTTPException(404, f"no catalog picture of product {product_id!r}")
        return _picture(path, format)

    return router


def _picture(path: Path, format: PictureFormat) -> Response:
    media_type = thumbnail_media_type(path)
    if format is PictureFormat.JSON:
        encoded = base64.b64encode(path.read_bytes()).decode("ascii")
        return JSONResponse(
            {"content_type": media_type, "data_url": f"data:{media_type};base64,{encoded}"},
            headers={"Cache-Control": PICTURE_CACHE},
        )
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": PICTURE_CACHE})


def is_catalog_image(image: IndexedImage) -> bool:
    """Whether an indexed image came from the catalog (not a learned reference). The index's
    ``product_vector_ids`` already names catalog images only; this is checked again here because
    serving a customer's photo as a product's picture is the one mistake this route must not make."""
    return image.origin == CATALOG


def catalog_picture(services: Services, product_id: str) -> Path | None:
    """The thumbnail file of the product's first catalog image, written on first use from the
    catalog's own URI; ``None`` when the product is not served or no catalog image can be read."""
    try:
        index = services.index.get()
    except (IndexNotBuiltError, EmbedderMismatchError):
        return None
    vector_ids = sorted(index.product_vector_ids(product_id))
    images = [index.images[vid] for vid in vector_ids if vid in index.images]
    for image in filter(is_catalog_image, images):
        if not services.thumbnails.has(image.sha256):
            services.thumbnails.ensure_catalog(
                [(image.uri, image.sha256)],
                lambda uri: read_uri(uri, services.fetcher),
                services.limits,
            )
        if services.thumbnails.has(image.sha256):
            return services.thumbnails.path(image.sha256)
    return None
