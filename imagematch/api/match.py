"""``POST /v1/match``: match one photo now (synchronous)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool

from imagematch.api.image_input import IMAGE_BODY_DOC, product_filter, read_image_input
from imagematch.app import Services
from imagematch.errors import PermanentError, SubjectGoneError, TransientError
from imagematch.job_kinds import MatchImagePayload
from imagematch.models import MatchResult
from imagematch.pipeline import PhotoBytes, StoredOrFetchedLoader

__all__ = ["match_router"]


def match_router(services: Services) -> APIRouter:
    router = APIRouter(tags=["match"])
    url_loader = StoredOrFetchedLoader(services.blobs, services.fetcher)

    @router.post("/v1/match", response_model=MatchResult, openapi_extra=IMAGE_BODY_DOC)
    async def match(
        request: Request,
        top_k: int | None = Query(None, ge=1, le=100),
        category: str | None = Query(None, description="Only products of this category."),
        meta: list[str] = Query(
            [], description="Only products whose metadata has key=value (repeat for several; all must hold)."
        ),
        min_score: float | None = Query(None, description="Below this: no_confident_match."),
    ) -> MatchResult:
        """Match one image now: the top products, best first, with scores.

        Filters (``category``, ``meta``) are applied to the ranking, fetching deeper until
        ``top_k`` products pass: exact, and cheap at catalog sizes where the rarest filter still
        matches a few percent of products."""
        body = await read_image_input(request, services.limits.max_bytes)
        accept = product_filter(category, meta)

        def work() -> MatchResult:
            # The same load and decode steps as a job's photo (pipeline.PhotoMatching).
            if body.data is not None:
                photo = PhotoBytes(body.data)
            else:
                loaded = url_loader.load(MatchImagePayload(image=body.url or ""))
                assert isinstance(loaded, PhotoBytes)  # URLs are never skipped by rule
                photo = loaded
            image = services.photos.decode(photo)
            return services.matcher.match_image(image, top_k=top_k, min_score=min_score, accept=accept)

        try:
            result: MatchResult = await run_in_threadpool(work)
        except (PermanentError, SubjectGoneError) as exc:
            raise HTTPException(422, str(exc)) from exc
        except TransientError as exc:
            raise HTTPException(502, str(exc)) from exc
        return result

    return router
