"""Entities: ``GET /v1/entities/{type}/{id}/matches`` — a ticket's or listing's products,
aggregated over its photos, with each photo's evidence and quality."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException, Path
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from imagematch.api.entity_photos import EntityPhotoOut, entity_photos
from imagematch.app import Services
from imagematch.entities import ENTITY_ID_PATTERN, ENTITY_TYPE_PATTERN, EntityMatch, EntityRef
from imagematch.errors import EmbedderMismatchError, IndexNotBuiltError

__all__ = ["EntityMatchesOut", "entities_router"]


class EntityMatchesOut(BaseModel):
    entity_type: str
    entity_id: str
    aggregation: str = Field(
        "best score over the entity's photos; `photos` = how many photos rank the product in their top-k",
        description="How a product's score is made from its photos' scores.",
    )
    index_version: str | None = Field(
        None, description="The served index version the matches were computed at."
    )
    served_index_version: str | None = None
    stale: bool = Field(False, description="The served index changed since; a re-match is due.")
    matched_at: datetime | None = None
    console_url: str | None = Field(
        None, description="The entity's console page (with IMAGEMATCH_PUBLIC_URL set)."
    )
    photos: list[EntityPhotoOut] = Field(
        description="Each photo: its job's status (failed: the reason), thumbnail, own top-3, "
        "confidence band, quality advice and feedback label. Photos not matched yet are included."
    )
    matches: list[EntityMatch]


def entities_router(services: Services) -> APIRouter:
    router = APIRouter(tags=["entities"])

    @router.get("/v1/entities/{entity_type}/{entity_id}/matches", response_model=EntityMatchesOut)
    async def entity_matches(
        entity_type: str = Path(pattern=ENTITY_TYPE_PATTERN),
        entity_id: str = Path(pattern=ENTITY_ID_PATTERN),
    ) -> EntityMatchesOut:
        """The entity's matches table (404 for an entity with no photo yet)."""
        ref = EntityRef(entity_type=entity_type, entity_id=entity_id)
        return await run_in_threadpool(_entity_matches, services, ref)

    return router


def _entity_matches(services: Services, ref: EntityRef) -> EntityMatchesOut:
    ledger = services.ledger
    entity = ledger.get_entity(ref)
    photos = entity_photos(services, ref)
    if entity is None and not photos:
        raise HTTPException(404, f"no photo of {ref} has been submitted")
    try:
        served: str | None = services.index.get().served_version
    except (IndexNotBuiltError, EmbedderMismatchError):
        served = None
    public = services.settings.public_url
    index_version = entity.index_version if entity else None
    return EntityMatchesOut(
        **ref.model_dump(),
        index_version=index_version,
        served_index_version=served,
        stale=entity is not None and served is not None and index_version != served,
        matched_at=entity.matched_at if entity else None,
        console_url=f"{public.rstrip('/')}/ui/entities/{ref}" if public else None,
        photos=photos,
        matches=ledger.entity_matches(ref) if entity else [],
    )
