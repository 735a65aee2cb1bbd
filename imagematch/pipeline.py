"""Orchestration: one image in, a product-level ranking out; one job in, an outcome recorded.

Pure glue over collaborators passed in (embedder, index, blob store, fetcher): no I/O of its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from PIL import Image

from imagematch.blobs import BlobStore
from imagematch.embedder import Embedder
from imagematch.fetch import ImageFetcher
from imagematch.images import decode_image
from imagematch.index import IndexHandle
from imagematch.models import ImageJob, MatchResult, NewPrediction, Product

__all__ = ["ImageLimits", "MatchImageHandler", "Matcher", "PhotoHook", "image_ref_for_blob"]

BLOB_PREFIX = "blob:"

# Told each job's photo once decoded (source bytes, image): the console's thumbnails.
PhotoHook = Callable[[ImageJob, bytes, Image.Image], None]


def image_ref_for_blob(digest: str) -> str:
    return f"{BLOB_PREFIX}{digest}"


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int
    max_pixels: int


class Matcher:
    """Embeds query images and ranks catalog products for them."""

    def __init__(
        self, embedder: Embedder, index: IndexHandle, *, top_k: int = 5, min_score: float = 0.0
    ) -> None:
        self.embedder = embedder
        self.index = index
        self.top_k = top_k
        self.min_score = min_score

    def match_images(
        self,
        images: Sequence[Image.Image],
        *,
        top_k: int | None = None,
        min_score: float | None = None,
        accept: Callable[[Product], bool] | None = None,
    ) -> list[MatchResult]:
        """Rank products for each image, best first.

        Raises IndexNotBuiltError if no index exists and EmbedderMismatchError if it was built by
        another model. ``latency_ms`` is the batch's embed+search time divided per image.
        """
        started = time.perf_counter()
        index = self.index.get()
        vectors = self.embedder.embed(images)
        rankings = index.search(
            vectors, top_k or self.top_k, embedder_id=self.embedder.embedder_id, accept=accept
        )
        latency_ms = (time.perf_counter() - started) * 1000 / max(1, len(images))
        threshold = self.min_score if min_score is None else min_score
        return [
            MatchResult(
                matches=matches,
                embedder_id=index.embedder_id,
                index_version=index.version,
                latency_ms=round(latency_ms, 2),
                no_confident_match=not matches or matches[0].score < threshold,
            )
            for matches in rankings
        ]

    def match_image(
        self,
        image: Image.Image,
        *,
        top_k: int | None = None,
        min_score: float | None = None,
        accept: Callable[[Product], bool] | None = None,
    ) -> MatchResult:
        """:meth:`match_images` for one image."""
        return self.match_images([image], top_k=top_k, min_score=min_score, accept=accept)[0]


class MatchImageHandler:
    """Handles ``match_image`` jobs: load the image (stored blob or URL), match, return a prediction.

    Raises PermanentError (not an image, too large, 4xx), TransientError (network, 5xx) or
    SubjectGoneError (the stored image was deleted); the worker records the outcome.
    """

    def __init__(
        self,
        matcher: Matcher,
        blobs: BlobStore,
        fetcher: ImageFetcher,
        limits: ImageLimits,
        *,
        on_photo: PhotoHook | None = None,
    ) -> None:
        self._matcher = matcher
        self._blobs = blobs
        self._fetcher = fetcher
        self._limits = limits
        self._on_photo = on_photo

    def load_bytes(self, image_ref: str) -> bytes:
        if image_ref.startswith(BLOB_PREFIX):
            return self._blobs.get(image_ref.removeprefix(BLOB_PREFIX))
        return self._fetcher.fetch(image_ref)

    def __call__(self, job: ImageJob) -> NewPrediction:
        image_ref = str(job.payload.get("image", ""))
        data = self.load_bytes(image_ref)
        image = decode_image(data, max_bytes=self._limits.max_bytes, max_pixels=self._limits.max_pixels)
        if self._on_photo:  # console thumbnail
            self._on_photo(job, data, image)
        result = self._matcher.match_image(image)
        context = {
            key: str(job.payload[key])
            for key in ("ticket_id", "comment_id", "attachment_id", "file_name")
            if job.payload.get(key) is not None
        }
        return NewPrediction.model_validate(
            {
                **result.model_dump(),
                **context,
                "source": job.source,
                "image_url": None if image_ref.startswith(BLOB_PREFIX) else image_ref,
            }
        )
