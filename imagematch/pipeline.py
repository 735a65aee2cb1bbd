"""The one path of a photo: load → decode → embed → search → prediction → completion hooks.

Every photo job — an upload, a URL, a Zendesk attachment — runs :meth:`PhotoMatching.match_job`.
What differs by source is only where the bytes come from (a :class:`PhotoLoader`, chosen by the
job's kind) and what follows (completion hooks the source registers, e.g. the Zendesk note).
Pure glue over collaborators passed in (embedder, index, blob store, fetcher): no I/O of its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from PIL import Image

from imagematch.blobs import BlobStore
from imagematch.calibration import Band, Calibration, band_without_fit
from imagematch.embedder import Embedder, Vectors, as_staged
from imagematch.errors import PermanentError, SubjectGoneError
from imagematch.fetch import ImageFetcher
from imagematch.images import ImageLimits, sha256_hex
from imagematch.index import IndexHandle
from imagematch.job_kinds import BLOB_PREFIX, JobAnswer, JobKindSpec, JobStages, PhotoPayload, PreparedPhoto
from imagematch.log_context import bound
from imagematch.metrics import stage_timer as _stage
from imagematch.metrics import timed_stage
from imagematch.models import Job, MatchRequest, MatchResult, NewPrediction, Product
from imagematch.observed_jobs import job_fields
from imagematch.photo_vectors import PhotoVectorStore
from imagematch.quality import QualityBar, QualityReport, assess_quality, measure_quality

__all__ = [
    "CompletionHook",
    "ImageLimits",
    "Matcher",
    "PhotoBytes",
    "PhotoHook",
    "PhotoLoader",
    "PhotoMatch",
    "PhotoMatching",
    "PredictionAdditions",
    "PreparedPhoto",
    "SkipPhoto",
    "StoredOrFetchedLoader",
]

P = TypeVar("P", bound=PhotoPayload)
P_contra = TypeVar("P_contra", bound=PhotoPayload, contravariant=True)


@dataclass(frozen=True)
class PhotoBytes:
    """A loader's answer: the photo's bytes. ``unverified_type`` is set when the source could not
    say the bytes are an image (e.g. ``application/octet-stream``): then bytes that do not decode
    are skipped as "not an image" instead of failing the job."""

    data: bytes
    unverified_type: str | None = None


@dataclass(frozen=True)
class PhotoMatch:
    """What :meth:`PhotoMatching.match_bytes` found: the ranking, the decoded photo (``None`` when
    it was matched in another process), its quality verdict and the SHA-256 of its bytes."""

    result: MatchResult
    image: Image.Image | None
    quality: QualityReport | None
    digest: str


@dataclass(frozen=True)
class SkipPhoto:
    """A loader's answer: this photo is not to be matched, for ``reason`` (the job is skipped)."""

    reason: str


class PhotoLoader(Protocol[P_contra]):
    """Where a kind's photo bytes come from. Raises TransientError (network, 429, 5xx) or
    PermanentError (4xx, too large, forbidden address); returns :class:`SkipPhoto` by rule."""

    def load(self, payload: P_contra) -> PhotoBytes | SkipPhoto: ...


# What a completion hook adds to the prediction: field name → value (e.g. {"quality": …}).
PredictionAdditions = dict[str, Any]

# Runs after a photo is matched and before the job's outcome is recorded, so follow-up work it
# persists (e.g. a note job) is durable first. It must be idempotent: a crash re-runs the job.
# Every hook of a kind sees the same prediction (a copy of its own) and returns what it adds, so
# registration order cannot change what a hook sees; two hooks adding one field is a bug.
CompletionHook = Callable[[Job, Any, NewPrediction], PredictionAdditions | None]

# Told every job's photo once decoded (its source bytes and the image), whatever the kind: the
# console keeps a thumbnail, so it never downloads the photo again. Must not raise.
PhotoHook = Callable[[Job, bytes, Image.Image], None]


class Matcher:
    """Embeds query images and ranks catalog products for them."""

    def __init__(
        self,
        embedder: Embedder,
        index: IndexHandle,
        *,
        top_k: int = 5,
        min_score: float = 0.0,
        calibration: Calibration | None = None,
    ) -> None:
        self.embedder = embedder
        self.index = index
        self.top_k = top_k
        self.min_score = min_score
        # The confidence fit in use (imagematch.calibration); None: bands from min_score alone.
        self.calibration = calibration

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
        return self.match_with_vectors(images, top_k=top_k, min_score=min_score, accept=accept)[1]

    def match_with_vectors(
        self,
        images: Sequence[Image.Image],
        *,
        top_k: int | None = None,
        min_score: float | None = None,
        accept: Callable[[Product], bool] | None = None,
        started: float | None = None,
        stage_kind: str | None = None,
    ) -> tuple[Vectors, list[MatchResult]]:
        """:meth:`match_images`, with the query vectors too (a photo job stores its vector). With
        ``stage_kind`` (a job's kind), the embed and search stages are timed for ``/metrics``."""
        started = time.perf_counter() if started is None else started
        self.index.get()  # IndexNotBuiltError before the embedding work, not after
        with _stage("embed", stage_kind):
            vectors = self.embedder.embed(images)
        with _stage("search", stage_kind):
            results = self.rank(vectors, top_k=top_k, min_score=min_score, accept=accept, started=started)
        return vectors, results

    def prepare(self, image: Image.Image) -> Any:
        """``image`` as the model's input: a :class:`StagedEmbedder`'s preprocessing (CPU work,
        thread-safe, so a worker's pool runs it beside the forward pass), else the image."""
        staged = as_staged(self.embedder)
        return staged.prepare(image) if staged is not None else image

    def match_prepared(
        self, inputs: Sequence[Any], *, started: float | None = None, stage_kinds: Sequence[str] = ()
    ) -> tuple[Vectors, list[MatchResult]]:
        """:meth:`match_with_vectors` for inputs made by :meth:`prepare`: one forward pass for
        the batch, searched with the defaults (a worker's photo jobs); with ``stage_kinds`` (the
        jobs' kinds), its embed and search timed as each job's share."""
        started = time.perf_counter() if started is None else started
        self.index.get()  # IndexNotBuiltError before the embedding work, not after
        with _stage("embed", stage_kinds):
            staged = as_staged(self.embedder)
            vectors = staged.embed_prepared(inputs) if staged is not None else self.embedder.embed(inputs)
        with _stage("search", stage_kinds):
            return vectors, self.rank(vectors, started=started)

    def rank(
        self,
        vectors: Vectors,
        *,
        top_k: int | None = None,
        min_score: float | None = None,
        accept: Callable[[Product], bool] | None = None,
        started: float | None = None,
        embedder_id: str | None = None,
    ) -> list[MatchResult]:
        """:meth:`match_images` for vectors already embedded (e.g. stored photo vectors, made by
        ``embedder_id``: default this process's model). The results carry the served index
        version, live catalog changes included."""
        started = time.perf_counter() if started is None else started
        index = self.index.get()
        made_by = embedder_id or self.embedder.embedder_id
        depth = top_k or self.top_k
        # At least two products: the confidence reads the top-1 − top-2 margin.
        rankings = index.search(vectors, max(depth, 2), embedder_id=made_by, accept=accept)
        latency_ms = (time.perf_counter() - started) * 1000 / max(1, len(vectors))
        results = []
        for matches in rankings:
            confidence, band = self.assess([m.score for m in matches], min_score)
            results.append(
                MatchResult(
                    matches=matches[:depth],
                    embedder_id=index.embedder_id,
                    index_version=index.served_version,
                    latency_ms=round(latency_ms, 2),
                    no_confident_match=band is Band.NO_MATCH,
                    confidence=confidence,
                    band=band,
                )
            )
        return results

    def assess(self, scores: Sequence[float], min_score: float | None = None) -> tuple[float | None, Band]:
        """Confidence and band of a ranking (scores best first). The fit decides when there is
        one; without a fit, the raw floor IMAGEMATCH_MIN_SCORE does. A caller's own ``min_score``
        (``/v1/match?min_score=``) can only lower the band. The default floor does not overrule a
        fit: an answer shown as "No match · 98 %" would contradict itself."""
        if self.calibration is None:
            return None, band_without_fit(scores, self.min_score if min_score is None else min_score)
        confidence, band = self.calibration.assess(scores)
        if min_score is not None and band_without_fit(scores, min_score) is Band.NO_MATCH:
            return confidence, Band.NO_MATCH
        return confidence, band

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


class StoredOrFetchedLoader:
    """Photos uploaded to us (a stored blob) or named by a public URL (safe fetch, no credentials)."""

    def __init__(self, blobs: BlobStore, fetcher: ImageFetcher) -> None:
        self._blobs = blobs
        self._fetcher = fetcher

    def load(self, payload: PhotoPayload) -> PhotoBytes | SkipPhoto:
        """Raises SubjectGoneError when a stored photo was deleted meanwhile."""
        if payload.image.startswith(BLOB_PREFIX):
            return PhotoBytes(self._blobs.get(payload.image.removeprefix(BLOB_PREFIX)))
        return PhotoBytes(self._fetcher.fetch(payload.image))


class PhotoMatching:
    """The matching step shared by every photo kind, with the completion hooks sources register."""

    def __init__(
        self,
        matcher: Matcher,
        limits: ImageLimits,
        *,
        vectors: PhotoVectorStore | None = None,
        quality_bar: QualityBar | None = None,
    ) -> None:
        self.matcher = matcher
        self.limits = limits
        self.vectors = vectors  # each photo's embedding is kept here (re-matching searches with it)
        self.quality_bar = quality_bar or QualityBar()
        self._hooks: dict[str, list[CompletionHook]] = {}
        self._photo_hooks: list[PhotoHook] = []
        self.loaders: dict[str, PhotoLoader[Any]] = {}  # by kind: where a labelled photo is read again

    def on_complete(self, kind: str, hook: CompletionHook) -> None:
        """Run ``hook`` after each photo of ``kind`` is matched (before its outcome is recorded)."""
        self._hooks.setdefault(kind, []).append(hook)

    def on_photo(self, hook: PhotoHook) -> None:
        """Show ``hook`` each job's decoded photo, before it is matched (every photo kind)."""
        self._photo_hooks.append(hook)

    def decode(self, photo: PhotoBytes) -> Image.Image:
        """Decode under the limits. Raises PermanentError, or SubjectGoneError for bytes of an
        unverified type that turn out not to be an image."""
        try:
            return self.limits.decode(photo.data)
        except PermanentError as exc:
            if photo.unverified_type is not None:
                raise SubjectGoneError(f"not an image ({photo.unverified_type}): {exc}") from exc
            raise

    def match_bytes(self, data: bytes, request: MatchRequest | None = None) -> PhotoMatch:
        """Match these bytes now: the one synchronous entry point (``POST /v1/match``, the
        console's try page, ``imagematch match``, Modal's ``match``). Decodes once under the
        limits, assesses quality, embeds and searches with the request's depth, threshold and
        filters. Raises PermanentError (not an image, too large) and the index's errors."""
        request = request or MatchRequest()
        started = time.perf_counter()
        image = self.decode(PhotoBytes(data))
        quality = assess_quality(measure_quality(image), self.quality_bar)
        _, [result] = self.matcher.match_with_vectors(
            [image],
            top_k=request.top_k,
            min_score=request.min_score,
            accept=request.product_filter(),
            started=started,
        )
        return PhotoMatch(result, image, quality, sha256_hex(data))

    def match_job(self, job: Job, payload: P, loader: PhotoLoader[P]) -> NewPrediction:
        """Load, decode and match the job's photo, run the kind's hooks, return the prediction.

        Raises SubjectGoneError (skipped by rule, photo gone, not an image), PermanentError and
        TransientError (from the loader, the decoder or a hook); the worker records the outcome.
        """
        [answer] = self.finish_photos([(job, payload, self.prepare_photo(job, payload, loader))])
        if isinstance(answer, Exception):
            raise answer
        assert answer is not None
        return answer

    def prepare_photo(self, job: Job, payload: P, loader: PhotoLoader[P]) -> PreparedPhoto:
        """The CPU part of :meth:`match_job` (load, decode, photo hooks, quality, the model's
        preprocessing): thread-safe, so a worker runs a batch's photos side by side."""
        with timed_stage("load", job.kind):
            loaded = loader.load(payload)
        if isinstance(loaded, SkipPhoto):
            raise SubjectGoneError(loaded.reason)
        started = time.perf_counter()
        with timed_stage("decode", job.kind):
            image = self.decode(loaded)
        for photo_hook in self._photo_hooks:
            photo_hook(job, loaded.data, image)
        quality = assess_quality(measure_quality(image), self.quality_bar)  # cheap: numpy on ≤512 px
        model_input = self.matcher.prepare(image)
        prepare_ms = (time.perf_counter() - started) * 1000
        return PreparedPhoto(sha256_hex(loaded.data), quality, model_input, prepare_ms)

    def finish_photos(self, batch: list[tuple[Job, Any, Any]]) -> list[JobAnswer]:
        """The rest of :meth:`match_job` for a batch of prepared photos: one forward pass and one
        search (:meth:`Matcher.match_prepared`), each photo's vector stored, each kind's hooks
        run. One answer per photo: its prediction, or the exception its hooks raised (that job
        fails alone). Raises when no photo can be matched (IndexNotBuiltError,
        EmbedderMismatchError, the model's errors). A photo's ``latency_ms``: its own CPU work
        plus its share of the batch's embed+search."""
        inputs = [prepared.model_input for _, _, prepared in batch]
        vectors, results = self.matcher.match_prepared(inputs, stage_kinds=[job.kind for job, _, _ in batch])
        if self.vectors is not None:
            embedder_id = self.matcher.embedder.embedder_id
            for (_, _, prepared), vector in zip(batch, vectors, strict=True):
                self.vectors.put(embedder_id, prepared.digest, vector)
        return [
            self._predict(job, payload, prepared, result)
            for (job, payload, prepared), result in zip(batch, results, strict=True)
        ]

    def _predict(
        self, job: Job, payload: PhotoPayload, prepared: PreparedPhoto, result: MatchResult
    ) -> JobAnswer:
        """The job's prediction once its kind's hooks ran, or the exception one of them raised."""
        prediction = NewPrediction(
            **result.model_dump(exclude={"latency_ms"}),
            latency_ms=round(result.latency_ms + prepared.prepare_ms, 2),
            source=job.source,
            file_name=payload.file_name,
            image_url=payload.image_url,
            references=payload.references(),
            image_sha256=prepared.digest,
            quality=prepared.quality,
        )
        try:
            with bound(**job_fields(job)):  # its hooks' lines and the jobs they submit: the job's
                return self._complete(job, payload, prediction)
        except Exception as exc:
            return exc

    def _complete(self, job: Job, payload: Any, prediction: NewPrediction) -> NewPrediction:
        """Run the kind's completion hooks, each on its own copy; merge what they add."""
        additions: PredictionAdditions = {}
        for hook in self._hooks.get(job.kind, []):
            added = hook(job, payload, prediction.model_copy(deep=True)) or {}
            if clash := additions.keys() & added.keys():
                raise ValueError(f"two completion hooks of {job.kind!r} add {sorted(clash)}")
            additions.update(added)
        return prediction.model_copy(update=additions) if additions else prediction

    def kind(self, kind: str, payload: type[P], loader: PhotoLoader[P]) -> JobKindSpec[P]:
        """The job kind whose photos come from ``loader``: it needs the embedder, and its jobs
        run in batches (prepared side by side, embedded in one forward pass)."""
        self.loaders[kind] = loader
        return JobKindSpec(
            kind=kind,
            payload=payload,
            handler=lambda job, parsed: self.match_job(job, parsed, loader),
            needs_embedder=True,
            photo=True,
            stages=JobStages(
                prepare=lambda job, parsed: self.prepare_photo(job, parsed, loader),
                finish=self.finish_photos,
            ),
        )
