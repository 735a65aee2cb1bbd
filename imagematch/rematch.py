"""Entity matches that stay true: computed from stored photo vectors, re-matched when the served
index changes, never by embedding a photo again.

* A photo of an entity is recorded by a completion hook (:meth:`EntityMatching.record_photo`),
  which then re-matches the entity at once (a search per photo, from stored vectors).
* A live product **upsert** scores the product against every stored photo vector (one product
  against many photos, a matrix product): only entities where it would enter the list (beats the
  lowest score, or the list is short) or already stand in it are re-matched.
* A **delete** re-matches the entities that list the product (removed, the list refilled).
* A **rebuilt snapshot** (whitening refit) re-matches every entity not computed against it.
* Entities the change cannot alter are restamped with the new index version, so ``/v1/stats``
  counts only entities whose matches are really behind.

Re-matches run as ``rematch`` jobs, coalesced per entity: the idempotency key names the entity and
the index version its matches were computed at, so a burst of catalog events before the job runs
is one job. The job re-matches against the served index (at least the version that asked).
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import ClassVar

import numpy as np

from imagematch.catalog_sync import CatalogUpdater
from imagematch.entities import Entity, EntityMatch, EntityPhoto, EntityRef, aggregate_matches
from imagematch.errors import IndexNotBuiltError, SubjectGoneError, TransientError
from imagematch.job_kinds import JobPayload, PhotoPayload, new_job
from imagematch.ledger import Ledger
from imagematch.matches_webhook import CallbackFailedError, MatchesWebhook
from imagematch.models import Job, JobKind, NewPrediction, Product
from imagematch.photo_vectors import PhotoVectorStore
from imagematch.pipeline import Matcher, PredictionAdditions
from imagematch.quality import QualityBar, find_duplicate

__all__ = [
    "EntityMatching",
    "RematchOnCatalogChange",
    "RematchPayload",
    "rematch_key",
    "version_order",
]

log = logging.getLogger(__name__)
SOURCE = "rematch"
_VERSION = re.compile(r"^v(\d+)(?:\+(\d+))?$")
_PAGE = 500
_RACE_ROUNDS = 3  # re-read an entity's photos this often when one arrives during a re-match


class RematchPayload(JobPayload):
    """``rematch``: recompute one entity's matches from its stored photo vectors, against a served
    index at least as new as ``index_version``."""

    KIND: ClassVar[str] = JobKind.REMATCH
    entity_type: str
    entity_id: str
    index_version: str | None = None
    reason: str = ""


def version_order(version: str | None) -> tuple[int, int]:
    """``v000003+17`` → ``(3, 17)``: snapshot, then live change; unknown forms sort first."""
    found = _VERSION.match(version or "")
    return (int(found.group(1)), int(found.group(2) or 0)) if found else (-1, -1)


def rematch_key(entity: Entity) -> str:
    """One job per entity per index version its matches stand at (the coalescing rule)."""
    return f"rematch:{entity}:after:{entity.index_version or 'none'}"


class EntityMatching:
    """Records entity photos, (re)computes entity matches, schedules re-matches."""

    def __init__(
        self,
        ledger: Ledger,
        matcher: Matcher,
        vectors: PhotoVectorStore,
        *,
        top_k: int,
        dispatch: Callable[[list[int]], None],
        duplicate_distance: int = QualityBar.duplicate_distance,
        webhook: MatchesWebhook | None = None,
    ) -> None:
        self._ledger = ledger
        self._matcher = matcher
        self._vectors = vectors
        self._top_k = top_k
        self._dispatch = dispatch
        self._duplicate_distance = duplicate_distance
        self._webhook = webhook  # told when an entity's top match changes

    # The completion hook of every photo kind.
    def record_photo(
        self, job: Job, payload: PhotoPayload, prediction: NewPrediction
    ) -> PredictionAdditions | None:
        """Add the photo to its entity (if it has one), re-match the entity, and return the
        prediction's quality report noting a near-duplicate of an earlier photo of the entity
        (the one quality signal that needs the entity's other photos). Idempotent."""
        entity = payload.entity()
        if entity is None or prediction.image_sha256 is None:
            return None
        quality = prediction.quality
        if quality is not None:
            earlier = {f"job {p.job_id}": p.phash for p in self._ledger.entity_photos(entity) if p.phash}
            earlier.pop(f"job {job.id}", None)
            duplicate = find_duplicate(quality.signals.phash, earlier, max_distance=self._duplicate_distance)
            quality = quality.model_copy(update={"duplicate_of": duplicate})
        self._ledger.add_entity_photo(
            EntityPhoto(
                **entity.model_dump(),
                job_id=job.id,
                image_sha256=prediction.image_sha256,
                embedder_id=prediction.embedder_id,
                phash=quality.signals.phash if quality else None,
                low_quality=quality.low_quality if quality else False,
            )
        )
        try:
            self.rematch(entity)
        except CallbackFailedError as exc:  # the photo is done: the re-match job sends it again
            log.warning("%s: %s; a rematch job will retry", entity, exc)
            state = self._ledger.get_entity(entity)
            if state is not None:
                self.schedule([state], reason="matches webhook failed")
        return {"quality": quality} if quality is not None else None

    def rematch(self, entity: EntityRef, *, at_least: str | None = None) -> list[EntityMatch]:
        """Recompute the entity's matches from its stored photo vectors (none re-embedded) and
        store them. Raises TransientError while the served index is older than ``at_least``,
        SubjectGoneError when none of its photos has a vector of the served index's model;
        IndexNotBuiltError without an index."""
        index = self._matcher.index.get()
        if version_order(index.served_version) < version_order(at_least):
            self._matcher.index.refresh()
            index = self._matcher.index.get()
            if version_order(index.served_version) < version_order(at_least):
                raise TransientError(f"served index {index.served_version} is older than {at_least}")
        rows: list[EntityMatch] = []
        for _ in range(_RACE_ROUNDS):
            photos = self._ledger.entity_photos(entity)
            rows, version = self._match_photos(photos)
            self._tell_top_change(entity, rows, version)  # first: a failed send leaves it to redo
            before = self._ledger.replace_entity_matches(entity, rows, index_version=version)
            if before is None or before.photo_count <= len(photos):
                break  # no photo arrived while we searched
        return rows

    def _tell_top_change(self, entity: EntityRef, rows: list[EntityMatch], version: str) -> None:
        if self._webhook is None:
            return
        state = self._ledger.get_entity(entity)
        previous = state.top_product_id if state else None
        if (rows[0].product_id if rows else None) != previous:
            self._webhook.top_changed(entity, previous=previous, matches=rows, index_version=version)

    def _match_photos(self, photos: list[EntityPhoto]) -> tuple[list[EntityMatch], str]:
        # The served index's model made the vectors worth searching with; this process may hold
        # no model at all (a CPU worker): re-matching is search only.
        embedder_id = self._matcher.index.get().embedder_id
        found = [(p, self._vectors.get(embedder_id, p.image_sha256)) for p in photos]
        usable = [(p, v) for p, v in found if v is not None and p.embedder_id == embedder_id]
        if len(usable) < len(photos):  # pruned (retention) or made by another model: left out
            log.info(
                "%d of %d photos lack a stored %s vector", len(photos) - len(usable), len(photos), embedder_id
            )
        version = self._matcher.index.get().served_version
        if photos and not usable:  # keep the matches it has rather than empty them
            raise SubjectGoneError(
                f"no photo of the entity has a stored {embedder_id} vector (pruned, or embedded by "
                "another model: re-run its photo jobs, e.g. `imagematch requeue --scope all`)"
            )
        if not usable:
            return [], version
        results = self._matcher.rank(
            np.stack([v for _, v in usable]), top_k=self._top_k, embedder_id=embedder_id
        )
        per_photo = {p.job_id: r.matches for (p, _), r in zip(usable, results, strict=True)}
        version = results[0].index_version
        return aggregate_matches(per_photo, top_k=self._top_k, index_version=version), version

    # Scheduling.
    def schedule(
        self, entities: Iterable[Entity], *, reason: str, index_version: str | None = None
    ) -> list[int]:
        """Submit a coalesced ``rematch`` job per entity and dispatch the new ones; returns their ids."""
        created = []
        for entity in entities:
            payload = RematchPayload(
                entity_type=entity.entity_type,
                entity_id=entity.entity_id,
                index_version=index_version,
                reason=reason,
            )
            job, new = self._ledger.submit(
                new_job(payload, source=SOURCE, idempotency_key=rematch_key(entity))
            )
            if new:
                created.append(job.id)
        self._dispatch(created)
        return created

    def all_entities(self, *, since: datetime | None = None) -> Iterator[Entity]:
        after: EntityRef | None = None
        while page := self._ledger.list_entities(since=since, after=after, limit=_PAGE):
            yield from page
            after = page[-1].ref

    def schedule_stale(
        self, *, reason: str, index_version: str | None = None, since: datetime | None = None
    ) -> list[int]:
        """Re-match every entity not computed against ``index_version`` (default: the served
        index's), e.g. a snapshot just published; the jobs wait until their worker serves it."""
        version = index_version or self._matcher.index.get().served_version
        stale = [e for e in self.all_entities(since=since) if e.index_version != version]
        return self.schedule(stale, reason=reason, index_version=version)

    def after_change(self, product_id: str, *, from_version: str, deleted: bool) -> list[int]:
        """Schedule re-matches for the entities a live change of ``product_id`` can alter and
        restamp the others; returns the new jobs' ids."""
        try:
            to_version = self._matcher.index.get().served_version
        except IndexNotBuiltError:
            return []
        if to_version == from_version:
            return []  # nothing changed (an old event)
        entities = {e.ref: e for e in self.all_entities()}
        affected = set(self._ledger.entities_matching(product_id))
        if not deleted:
            affected |= self._entered_by(product_id, entities)
        chosen = [entities[ref] for ref in sorted(affected, key=str) if ref in entities]
        reason = f"product {product_id} {'deleted' if deleted else 'changed'}"
        jobs = self.schedule(chosen, reason=reason, index_version=to_version)
        self._ledger.advance_entities(
            from_version=from_version, to_version=to_version, keep=[e.ref for e in chosen]
        )
        return jobs

    def _entered_by(self, product_id: str, entities: dict[EntityRef, Entity]) -> set[EntityRef]:
        """Entities where the product would enter the list: it beats the lowest score for some
        photo, or the list is short. One product against all stored photo vectors."""
        index = self._matcher.index.get()
        embedder_id = index.embedder_id
        owners: list[EntityRef] = []
        rows = []
        for photo in self._ledger.entity_photos():
            vector = self._vectors.get(embedder_id, photo.image_sha256)
            if vector is not None and photo.embedder_id == embedder_id:
                owners.append(photo.ref)
                rows.append(vector)
        if not rows:
            return set()
        scores = index.score_product(np.stack(rows), product_id, embedder_id=embedder_id)
        best: dict[EntityRef, float] = defaultdict(lambda: -np.inf)
        for owner, score in zip(owners, scores.tolist(), strict=True):
            best[owner] = max(best[owner], score)
        return {
            ref
            for ref, score in best.items()
            if ref in entities
            and (entities[ref].match_count < self._top_k or score > (entities[ref].floor_score or -np.inf))
        }

    def handle_rematch(self, job: Job, payload: RematchPayload) -> None:
        """The ``rematch`` job: re-match the entity against at least the version that asked."""
        self.rematch(
            EntityRef(entity_type=payload.entity_type, entity_id=payload.entity_id),
            at_least=payload.index_version,
        )


class RematchOnCatalogChange:
    """A :class:`CatalogUpdater` that applies each event with ``inner`` (the LiveCatalog), then
    schedules the re-matches it calls for."""

    def __init__(self, inner: CatalogUpdater, entities: EntityMatching, matcher: Matcher) -> None:
        self.inner = inner
        self._entities = entities
        self._matcher = matcher

    def _version(self) -> str:
        try:
            return self._matcher.index.get().served_version
        except IndexNotBuiltError:
            return ""

    def upsert_product(self, product: Product, *, sequence: int) -> None:
        before = self._version()
        self.inner.upsert_product(product, sequence=sequence)
        self._entities.after_change(product.id, from_version=before, deleted=False)

    def delete_product(self, product_id: str, *, sequence: int) -> bool:
        before = self._version()
        existed = self.inner.delete_product(product_id, sequence=sequence)
        self._entities.after_change(product_id, from_version=before, deleted=True)
        return existed
