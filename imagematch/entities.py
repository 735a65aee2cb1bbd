"""Entities: what a photo belongs to (a ticket, a listing, an order), and its matches table.

An entity is named by ``entity_type`` and ``entity_id`` (``ticket/101``, ``listing/abc``). Its
matches are the catalog products aggregated over all its photos: each product's score is its
**best score over the entity's photos**, ``photos`` says how many of those photos rank it in
their own top-k (its support), and ``evidence`` gives each photo's score for it. Ranked by score,
then support. Pure types and aggregation; the ledger stores them, :mod:`imagematch.rematch` runs them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from pydantic import BaseModel, Field

from imagematch.models import Match

__all__ = [
    "ENTITY_ID_PATTERN",
    "ENTITY_TYPE_PATTERN",
    "Entity",
    "EntityMatch",
    "EntityPhoto",
    "EntityRef",
    "PhotoEvidence",
    "aggregate_matches",
]

ENTITY_TYPE_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"
ENTITY_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"  # one URL path segment, no slash


class EntityRef(BaseModel, frozen=True):
    """Names an entity: ``ticket/101``."""

    entity_type: str = Field(pattern=ENTITY_TYPE_PATTERN)
    entity_id: str = Field(pattern=ENTITY_ID_PATTERN)

    def __str__(self) -> str:
        return f"{self.entity_type}/{self.entity_id}"

    @property
    def ref(self) -> EntityRef:
        """Just the name (subclasses carry more fields; this is what keys a dict)."""
        return EntityRef(entity_type=self.entity_type, entity_id=self.entity_id)

    @classmethod
    def parse(cls, text: str) -> EntityRef:
        """``"ticket/101"`` → the ref; ValueError when it is not ``TYPE/ID``."""
        entity_type, _, entity_id = text.partition("/")
        return cls(entity_type=entity_type, entity_id=entity_id)


class EntityPhoto(EntityRef, frozen=True):
    """One matched photo of an entity: its job, its bytes' digest (the stored vector's key), the
    embedder that made the vector, and its quality (pHash for near-duplicates, the flag)."""

    job_id: int
    image_sha256: str
    embedder_id: str
    phash: str | None = None
    low_quality: bool = False
    created_at: datetime | None = None


class PhotoEvidence(BaseModel):
    """One photo's score for a product in an entity's matches."""

    job_id: int
    score: float
    rank: int  # the product's rank in that photo's own ranking (1 = its best)


class EntityMatch(BaseModel):
    """A row of the ``matches`` table."""

    product_id: str
    name: str = ""
    score: float  # best over the entity's photos
    rank: int
    photos: int  # how many photos have it in their top-k
    evidence: list[PhotoEvidence] = Field(default_factory=list)
    index_version: str = ""
    computed_at: datetime | None = None


class Entity(EntityRef, frozen=True):
    """An entity's state: when its matches were computed and against which served index version
    (``None``: never); ``floor_score`` is the lowest score in its list, so a new product scoring
    below it for every photo cannot enter (no re-match needed)."""

    photo_count: int = 0
    index_version: str | None = None
    matched_at: datetime | None = None
    top_product_id: str | None = None
    floor_score: float | None = None
    match_count: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None


def aggregate_matches(
    per_photo: Mapping[int, Iterable[Match]], *, top_k: int, index_version: str
) -> list[EntityMatch]:
    """Aggregate each photo's ranking (by job id) into the entity's top ``top_k`` products: best
    score over the photos, ties broken by how many photos support the product, then by id."""
    rows: dict[str, EntityMatch] = {}
    for job_id, matches in sorted(per_photo.items()):
        for rank, match in enumerate(matches, start=1):
            row = rows.setdefault(
                match.product_id,
                EntityMatch(
                    product_id=match.product_id,
                    name=match.name,
                    score=match.score,
                    rank=0,
                    photos=0,
                    index_version=index_version,
                ),
            )
            row.score = max(row.score, match.score)
            row.photos += 1
            row.evidence.append(PhotoEvidence(job_id=job_id, score=round(match.score, 6), rank=rank))
    ranked = sorted(rows.values(), key=lambda r: (-r.score, -r.photos, r.product_id))[:top_k]
    for rank, row in enumerate(ranked, start=1):
        row.rank = rank
    return ranked
