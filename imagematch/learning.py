"""The learning loop: a photo confirmed or corrected to a product becomes one of that product's
*learned references*, applied like a catalog change.

    label given / changed / retracted (imagematch.feedback)
        └─▶ a ``learn`` job per product whose references may change (dispatched at once)
              └─▶ the product's learned set, recomputed from the ledger's current labels
                  (newest first, the same photo or a near-duplicate once, at most
                  IMAGEMATCH_LEARNED_PER_PRODUCT), each with its stored photo vector
                  (re-embedded from the stored photo when the model changed)
                    └─▶ change log entry (other serving processes replay it at their next index
                        check) + applied to the served index here + entity re-matches

The ledger's labels are the truth: a rebuild recomputes every set (:meth:`LearningLoop.current_sets`)
and refits the whitening with them. ``not_in_catalog`` and ``unusable`` labels never enrol.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import ClassVar

import numpy as np

from imagematch.blobs import BlobStore
from imagematch.embedder import Vectors
from imagematch.errors import ImageMatchError, SubjectGoneError, TransientError
from imagematch.index import CatalogChange, ChangeKind, IndexHandle, ProductIndex, SnapshotStore
from imagematch.index.learned import LearnedReference, pack
from imagematch.job_kinds import JobKinds, JobPayload, new_job
from imagematch.labels import ENROLLING_VERDICTS, Label
from imagematch.ledger import Clock, Ledger
from imagematch.models import Job, JobKind
from imagematch.photo_vectors import PhotoVectorStore
from imagematch.pipeline import PhotoMatching, SkipPhoto
from imagematch.rematch import EntityMatching

__all__ = ["NEAR_DUPLICATE", "LearnPayload", "LearningLoop"]

log = logging.getLogger(__name__)
NEAR_DUPLICATE = 0.99  # cosine of two photo vectors above which the later one adds nothing
SOURCE = "learning"


class LearnPayload(JobPayload):
    """``learn``: recompute one product's learned references from the ledger's labels."""

    KIND: ClassVar[str] = JobKind.LEARN
    product_id: str
    reason: str = ""


class LearningLoop:
    """Turns labels into learned references (see the module docstring)."""

    def __init__(
        self,
        *,
        ledger: Ledger,
        index: IndexHandle,
        snapshots: SnapshotStore,
        photos: PhotoMatching,
        vectors: PhotoVectorStore,
        blobs: BlobStore,
        kinds: JobKinds,
        entities: EntityMatching,
        dispatch: Callable[[list[int]], None],
        clock: Clock,
        per_product: int = 50,
    ) -> None:
        self._ledger = ledger
        self._index = index
        self._snapshots = snapshots
        self._photos = photos
        self._vectors = vectors
        self._blobs = blobs
        self._kinds = kinds
        self._entities = entities
        self._dispatch = dispatch
        self._clock = clock
        self.per_product = per_product

    # The Feedback listener.
    def label_changed(self, job: Job, before: Label | None, after: Label | None) -> None:
        """Submit (and dispatch) a ``learn`` job for each product whose learned set may change."""
        products = {
            label.product_id
            for label in (before, after)
            if label is not None and label.verdict in ENROLLING_VERDICTS and label.product_id
        }
        marker = after.id if after is not None else f"retract-{before.id if before else 0}"
        created = []
        for product_id in sorted(products):
            payload = LearnPayload(product_id=product_id, reason=f"label on job {job.id}")
            key = f"learn:{product_id}:job-{job.id}:label-{marker}"
            learn, new = self._ledger.submit(new_job(payload, source=SOURCE, idempotency_key=key))
            if new:
                created.append(learn.id)
        self._dispatch(created)

    # The ``learn`` job.
    def handle_learn(self, job: Job, payload: LearnPayload) -> None:
        """Recompute the product's learned set, log it, apply it here, re-match the entities it
        may change. Raises SubjectGoneError when a newer set is applied already; the index's
        errors (IndexNotBuiltError, EmbedderMismatchError), and TransientError in a process whose
        model was switched away from (a process started since applies it)."""
        index = self._index.get()
        if self._index.waiting_for_model is not None:  # as for catalog events (LiveCatalog)
            raise TransientError(
                f"snapshot {self._index.waiting_for_model} needs another model; a newer process will learn"
            )
        if job.id <= index.learned_sequences.get(payload.product_id, 0):
            raise SubjectGoneError(f"a newer learned set of {payload.product_id} is applied already")
        refs = self.learned_set(payload.product_id, index) if payload.product_id in index.products else ()
        rows, vectors = pack(refs, index.dim)
        change = CatalogChange(
            sequence=job.id,
            kind=ChangeKind.LEARNED,
            product_id=payload.product_id,
            at=self._clock(),
            vectors=vectors,
            learned=rows,
        )
        before = index.served_version
        self._snapshots.changes(index.embedder_id).append(change)
        index.apply(change)
        self._entities.after_change(payload.product_id, from_version=before, deleted=False)

    def learned_set(self, product_id: str, index: ProductIndex) -> tuple[LearnedReference, ...]:
        """The product's learned references from its current confirming/correcting labels: newest
        first, one per photo content, none nearly identical to another or equal to a catalog
        image, at most ``per_product``; returned oldest first."""
        catalog_shas = {index.images[vid].sha256 for vid in index.product_vector_ids(product_id)}
        return self._select(self._enrolling(product_id), index.embedder_id, catalog_shas)

    def current_sets(self, embedder_id: str) -> dict[str, tuple[LearnedReference, ...]]:
        """Every product's learned set, vectors of ``embedder_id`` (a rebuild: catalog images
        are not known yet, so only photo-to-photo duplicates are dropped)."""
        by_product: dict[str, list[Label]] = {}
        for label in self._all_enrolling():
            by_product.setdefault(label.product_id or "", []).append(label)
        sets = {pid: self._select(labels, embedder_id, set()) for pid, labels in by_product.items()}
        return {pid: refs for pid, refs in sets.items() if refs}

    def is_learned_reference(self, digest: str) -> bool:
        """Whether the photo with this SHA-256 is a learned reference (a current confirming or
        correcting label names it): its stored photo and vector must be kept."""
        return any(
            label.verdict in ENROLLING_VERDICTS for label in self._ledger.list_labels(image_sha256=digest)
        )

    def learned_digests(self) -> set[str]:
        """The SHA-256 of every photo that is a learned reference (see :meth:`is_learned_reference`)."""
        return {label.image_sha256 for label in self._all_enrolling() if label.image_sha256}

    def _all_enrolling(self) -> list[Label]:
        labels: list[Label] = []
        after: int | None = None
        while page := self._ledger.list_labels(after_id=after, limit=1000):
            labels += [lb for lb in page if lb.verdict in ENROLLING_VERDICTS and lb.image_sha256]
            after = page[-1].id
        return labels

    def _enrolling(self, product_id: str) -> list[Label]:
        labels = self._ledger.list_labels(product_id=product_id, limit=100_000)
        return [lb for lb in labels if lb.verdict in ENROLLING_VERDICTS and lb.image_sha256]

    def _select(
        self, labels: list[Label], embedder_id: str, skip_shas: set[str]
    ) -> tuple[LearnedReference, ...]:
        kept: list[LearnedReference] = []
        seen = set(skip_shas)
        for label in sorted(labels, key=lambda lb: (lb.created_at, lb.id), reverse=True):
            if len(kept) >= self.per_product:
                break
            digest = label.image_sha256
            if digest is None or digest in seen:
                continue
            seen.add(digest)
            vector = self.photo_vector(label, embedder_id)
            if vector is None or any(float(vector @ ref.vector) >= NEAR_DUPLICATE for ref in kept):
                continue
            self.photo_bytes(label)  # kept from now on: a model switch embeds it again
            kept.append(
                LearnedReference(label.job_id, label.id, label.given_by, label.created_at, digest, vector)
            )
        return tuple(reversed(kept))

    def photo_vector(self, label: Label, embedder_id: str) -> Vectors | None:
        """The labelled photo's vector by ``embedder_id``: stored, or embedded again from the
        stored photo (after a model switch). ``None`` when neither can be had."""
        assert label.image_sha256 is not None
        vector = self._vectors.get(embedder_id, label.image_sha256)
        if vector is not None:
            return vector
        embedder = self._photos.matcher.embedder
        data = self.photo_bytes(label)
        if data is None or embedder.embedder_id != embedder_id:
            log.info("learned reference of job %s has no %s vector; left out", label.job_id, embedder_id)
            return None
        try:
            fresh: Vectors = embedder.embed([self._photos.limits.decode(data)])[0]
        except ImageMatchError as exc:
            log.warning("stored photo of job %s cannot be embedded: %s", label.job_id, exc)
            return None
        self._vectors.put(embedder_id, label.image_sha256, fresh)
        return np.asarray(fresh, dtype=np.float32)

    def photo_bytes(self, label: Label) -> bytes | None:
        """The labelled photo's bytes, kept in the blob store from now on (a photo fetched from
        its source, e.g. a Zendesk attachment, is stored once it is labelled)."""
        digest = label.image_sha256
        assert digest is not None
        if self._blobs.has(digest):
            return self._blobs.get(digest)
        job = self._ledger.get_job(label.job_id)
        spec = self._kinds.get(job.kind) if job else None
        loader = self._photos.loaders.get(job.kind) if job else None
        if job is None or spec is None or loader is None:
            return None
        try:
            loaded = loader.load(spec.parse(job))
        except ImageMatchError as exc:
            log.warning("photo of job %s cannot be loaded again: %s", job.id, exc)
            return None
        if isinstance(loaded, SkipPhoto):
            return None
        return loaded.data if self._blobs.put(loaded.data) == digest else None
