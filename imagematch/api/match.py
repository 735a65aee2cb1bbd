"""``POST /v1/match``: match one photo now (synchronous)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool

from imagematch.api.image_input import IMAGE_BODY_DOC, parse_meta_filters, read_image_input
from imagematch.app import Services
from imagematch.errors import PermanentError, ServiceUnavailableError, TransientError
from imagematch.models import MatchRequest, MatchResult

__all__ = ["match_router"]


def match_router(services: Services) -> APIRouter:
    router = APIRouter(tags=["match"])

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
        wanted = MatchRequest(
            top_k=top_k, min_score=min_score, category=category, meta=parse_meta_filters(meta)
        )

        def work() -> MatchResult:
            # A URL is fetched as a job's would be (safe fetch, size cap), then the same decode.
            data = body.data if body.data is not None else services.fetcher.fetch(body.url or "")
            return services.match_photo(data, wanted)

        try:
            result: MatchResult = await run_in_threadpool(work)
        except PermanentError as exc:
            raise HTTPException(422, str(exc)) from exc
        except ServiceUnavailableError as exc:
            retry_after = str(round(exc.retry_after or 5))
            raise HTTPException(503, str(exc), headers={"Retry-After": retry_after}) from exc
        except TransientError as exc:
            raise HTTPException(502, str(exc)) from exc
        return result

    return router
