"""The composition root: :func:`build_services` wires every collaborator from :class:`Settings`.

The CLI, the HTTP API and the Modal app all start here, so they run the same code paths. Job kinds
are registered here: the core's own (``match_image``, ``rematch``), then each source's, by the
source itself (:func:`imagematch.sources.register_sources`).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx

from imagematch.addresses import AddressPolicy
from imagematch.blobs import BlobStore
from imagematch.calibration import Calibration
from imagematch.calibration_labels import CalibrationRefit
from imagematch.catalog_sync import CatalogUpdater
from imagematch.config import Settings
from imagematch.dispatch import Dispatch, Dispatchers
from imagematch.embedder import Embedder, ModelNotLoaded, load_embedder
from imagematch.feedback import Feedback
from imagematch.fetch import ImageFetcher
from imagematch.images import DecodeGate, ImageLimits, sha256_hex
from imagematch.index import IndexHandle, SnapshotStore
from imagematch.job_kinds import JobKinds, JobKindSpec, MatchImagePayload
from imagematch.learning import LearningLoop, LearnPayload
from imagematch.ledger import Clock, Ledger, open_ledger_for, utcnow
from imagematch.matches_webhook import MatchesWebhook
from imagematch.metrics_ledger import MetricsPublisher, start_metrics_publisher
from imagematch.models import JobKind, MatchRequest, MatchResult
from imagematch.photo_vectors import PhotoVectorStore
from imagematch.pipeline import Matcher, PhotoMatch, PhotoMatching, StoredOrFetchedLoader
from imagematch.rematch import EntityMatching, RematchPayload
from imagematch.retry import RetryPolicy
from imagematch.runtime import core_pool
from imagematch.sources import register_sources
from imagematch.thumbnails import ThumbnailStore
from imagematch.worker import Worker

__all__ = ["Services", "build_services", "image_limits", "serving_model"]


@dataclass
class Services:
    settings: Settings
    ledger: Ledger
    embedder: Embedder
    snapshots: SnapshotStore
    index: IndexHandle
    blobs: BlobStore
    http: httpx.Client
    fetcher: ImageFetcher
    matcher: Matcher
    photos: PhotoMatching  # the one matching step every photo kind runs
    policy: RetryPolicy
    model: str  # the spec of the loaded model (IMAGEMATCH_MODEL, or the served snapshot's)
    clock: Clock
    thumbnails: ThumbnailStore  # the console's pictures of photos and catalog images
    kinds: JobKinds = field(default_factory=JobKinds)
    # Told the ids of jobs just persisted, to run them now (see imagematch.dispatch): the Modal
    # spawn, the local worker pool. Add one with add_dispatcher().
    dispatchers: Dispatchers = field(default_factory=Dispatchers)
    catalog_updater: CatalogUpdater | None = None  # applies catalog webhook events (LiveCatalog)
    # Answers POST /v1/match in another process (on Modal: the GPU class); None: here.
    remote_matcher: Callable[[bytes, MatchRequest], MatchResult] | None = None
    # Uploaded originals to keep whatever their age (imagematch.retention); empty by default.
    keep_blobs: list[Callable[[str], bool]] = field(default_factory=list)
    # Entity matches from stored photo vectors, re-matched on catalog changes (set by build_services).
    entities: EntityMatching = field(init=False)
    # Writes this process's metrics to the ledger (IMAGEMATCH_METRICS_VIA_LEDGER_SECONDS; Modal).
    metrics_publisher: MetricsPublisher | None = None
    # Labels on answers (POST /v1/jobs/{id}/feedback, the console, eval --learn-from).
    feedback: Feedback = field(init=False)
    learning: LearningLoop = field(init=False)  # labels → learned references (imagematch.learning)
    # The workers' CPU stages (load, decode, preprocess), one thread per core (threads start
    # when first used).
    prepare_pool: ThreadPoolExecutor = field(default_factory=lambda: core_pool("prepare"))

    @property
    def limits(self) -> ImageLimits:
        return self.photos.limits

    def match_bytes(self, data: bytes, request: MatchRequest) -> PhotoMatch:
        """Match one photo now (:meth:`PhotoMatching.match_bytes`) — here, or in the process
        that holds the model when ``remote_matcher`` is set (then ``image`` is ``None``).
        Raises PermanentError (not an image, too large) and the index's errors."""
        if self.remote_matcher is not None:
            return PhotoMatch(self.remote_matcher(data, request), None, None, sha256_hex(data))
        return self.photos.match_bytes(data, request)

    def match_photo(self, data: bytes, request: MatchRequest) -> MatchResult:
        """The ranking of :meth:`match_bytes` (``POST /v1/match``)."""
        return self.match_bytes(data, request).result

    def add_dispatcher(self, dispatcher: Dispatch) -> None:
        self.dispatchers.add(dispatcher)

    def dispatch(self, job_ids: list[int]) -> None:
        """Make workers look at these persisted jobs now (a hint: the sweep catches a lost one,
        and a dispatch that fails is logged, never raised)."""
        self.dispatchers(job_ids)

    def make_worker(self, worker_id: str | None = None) -> Worker:
        """A worker taking ``IMAGEMATCH_BATCH`` jobs at a time, their CPU stages run in a pool
        shared by this process's workers and sized to its cores."""
        return Worker(
            self.ledger,
            self.kinds,
            self.policy,
            worker_id=worker_id,
            lease_seconds=self.settings.lease_seconds,
            clock=self.clock,
            batch_size=self.settings.jobs_per_batch(),
            pool=self.prepare_pool,
        )

    def close(self) -> None:
        if self.metrics_publisher:
            self.metrics_publisher.stop()
        self.prepare_pool.shutdown(wait=True)
        self.http.close()
        self.ledger.close()


def build_services(
    settings: Settings,
    *,
    embedder: Embedder | str | bool = True,
    ledger: Ledger | None = None,
    http: httpx.Client | None = None,
    clock: Clock = utcnow,
    catalog_updater: CatalogUpdater | None = None,
    dispatch: Dispatch | None = None,
) -> Services:
    """Wire everything from ``settings``; pass collaborators in to replace the defaults (tests).

    ``embedder`` is the one model knob: ``True`` (the default) loads ``settings.model``; a model
    spec (``str``, e.g. :func:`serving_model`; ``""`` as ``True``) loads that model instead; an
    :class:`Embedder` is used as is; ``False`` loads none (on Modal: the web and CPU containers;
    commands that only touch the ledger). ``Services.model`` is the spec of the model loaded (or not):
    ``settings.model``, or the spec given. Catalog events are applied by a LiveCatalog unless
    ``catalog_updater`` is given; ``dispatch`` (e.g. a Modal spawn) is told the ids of jobs that
    handlers create. Raises ``ValueError`` for an unknown model spec."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if isinstance(embedder, str) and embedder and embedder != settings.model:
        settings = settings.model_copy(update={"model": embedder})
    embedder = _choose_embedder(settings, embedder)
    ledger = ledger or open_ledger_for(settings, clock=clock)
    http = http or httpx.Client(timeout=settings.fetch_timeout_seconds)
    fetcher = _fetcher(settings, http)
    snapshots = SnapshotStore(settings.data_dir / "index")
    index = IndexHandle(snapshots, None if isinstance(embedder, ModelNotLoaded) else embedder.embedder_id)
    matcher = Matcher(embedder, index, top_k=settings.top_k, min_score=settings.min_score)
    blobs, limits = BlobStore(settings.data_dir / "blobs"), image_limits(settings)
    services = Services(
        settings=settings,
        ledger=ledger,
        embedder=embedder,
        snapshots=snapshots,
        index=index,
        blobs=blobs,
        http=http,
        fetcher=fetcher,
        matcher=matcher,
        photos=PhotoMatching(matcher, limits, vectors=PhotoVectorStore(settings.data_dir / "photo_vectors")),
        model=settings.model,
        policy=_retry_policy(settings),
        clock=clock,
        thumbnails=ThumbnailStore(settings.data_dir / "thumbnails", originals=blobs, limits=limits),
        dispatchers=Dispatchers([dispatch] if dispatch else []),
    )
    _register_kinds(services, catalog_updater)
    services.metrics_publisher = start_metrics_publisher(settings, ledger, clock)
    return services


def _register_kinds(services: Services, catalog_updater: CatalogUpdater | None) -> None:
    """The core's kinds (``match_image``, ``rematch``), each source's, then the hooks every photo
    kind shares: the console's thumbnail and the photo's entity."""
    services.photos.on_photo(services.thumbnails.record_job_photo)
    _register_entities(services)
    services.kinds.register(
        services.photos.kind(
            JobKind.MATCH_IMAGE, MatchImagePayload, StoredOrFetchedLoader(services.blobs, services.fetcher)
        )
    )
    register_sources(services, catalog_updater=catalog_updater)
    _register_learning(services)
    _register_calibration(services)
    for kind in services.kinds.photo_kinds():  # every photo adds to its entity, whatever its source
        services.photos.on_complete(kind, services.entities.record_photo)


def _retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=settings.max_attempts,
        base_seconds=settings.retry_base_seconds,
        cap_seconds=settings.retry_max_seconds,
    )


def _fetcher(settings: Settings, http: httpx.Client) -> ImageFetcher:
    return ImageFetcher(
        http,
        max_bytes=settings.max_image_bytes,
        policy=AddressPolicy.parse(settings.fetch_allow_private, settings.fetch_extra_ports),
        total_seconds=settings.fetch_total_seconds,
    )


def image_limits(settings: Settings) -> ImageLimits:
    """The decode limits, with one decode gate for every decode in this process."""
    return ImageLimits(
        settings.max_image_bytes,
        settings.max_image_pixels,
        max_decode_bytes=settings.max_decode_bytes,
        gate=DecodeGate(settings.decode_concurrency),
    )


def serving_model(settings: Settings) -> str:
    """The model a serving process loads: the one the served snapshot was built with (so a model
    switch takes effect as processes start, with no moment where the model and the index differ),
    or ``IMAGEMATCH_MODEL`` when no snapshot records one. Builds use ``IMAGEMATCH_MODEL``."""
    return SnapshotStore(settings.data_dir / "index").current_model() or settings.model


def _register_entities(services: Services) -> None:
    """Entity matches and the ``rematch`` kind: a search from stored vectors, no model needed."""
    settings = services.settings
    vectors = services.photos.vectors or PhotoVectorStore(settings.data_dir / "photo_vectors")
    webhook = None
    if settings.matches_webhook_url and settings.matches_webhook_secret:
        secret = settings.matches_webhook_secret.get_secret_value()
        webhook = MatchesWebhook(services.http, settings.matches_webhook_url, secret, clock=services.clock)
    services.entities = EntityMatching(
        services.ledger,
        services.matcher,
        vectors,
        top_k=settings.top_k,
        dispatch=services.dispatch,
        webhook=webhook,
    )
    services.kinds.register(
        JobKindSpec(
            kind=JobKind.REMATCH,
            payload=RematchPayload,
            handler=services.entities.handle_rematch,
            needs_embedder=False,
        )
    )


def _register_learning(services: Services) -> None:
    """Labels (:class:`Feedback`) and the ``learn`` kind that turns them into learned references:
    it may embed a stored photo again (after a model switch) and edits the served index, so it
    runs beside the model, like catalog events."""
    vectors = services.photos.vectors or PhotoVectorStore(services.settings.data_dir / "photo_vectors")
    services.learning = LearningLoop(
        ledger=services.ledger,
        index=services.index,
        snapshots=services.snapshots,
        photos=services.photos,
        vectors=vectors,
        blobs=services.blobs,
        kinds=services.kinds,
        entities=services.entities,
        dispatch=services.dispatch,
        clock=services.clock,
        per_product=services.settings.learned_per_product,
    )
    services.kinds.register(
        JobKindSpec(
            kind=JobKind.LEARN,
            payload=LearnPayload,
            handler=services.learning.handle_learn,
            needs_embedder=True,
        )
    )
    services.feedback = Feedback(services.ledger, services.kinds, lambda: services.index.get().products)
    services.feedback.on_change(services.learning.label_changed)
    services.keep_blobs.append(services.learning.is_learned_reference)  # retention keeps their photos


def _register_calibration(services: Services) -> None:
    """The confidence fit answers carry: the operators' once they labelled enough answers, else
    the one shipped for the model; refit as labels come in (:mod:`imagematch.calibration_labels`)."""
    if isinstance(services.embedder, ModelNotLoaded):
        return  # answers are made in the process that holds the model

    def use(fit: Calibration | None) -> None:
        services.matcher.calibration = fit

    refit = CalibrationRefit(services.ledger, services.embedder.embedder_id, use, clock=services.clock)
    refit.refit()
    services.feedback.on_change(refit.label_changed)


def _choose_embedder(settings: Settings, embedder: Embedder | str | bool) -> Embedder:
    """:func:`build_services`' ``embedder`` knob, as an :class:`Embedder` (``settings.model``
    already names a spec given)."""
    if isinstance(embedder, bool):
        return _default_embedder(settings) if embedder else ModelNotLoaded(settings.model)
    if isinstance(embedder, str):
        return _default_embedder(settings)
    return embedder


def _default_embedder(settings: Settings) -> Embedder:
    return load_embedder(
        settings.model,
        device=settings.device,
        batch_size=settings.batch_size,
        cache_dir=settings.model_cache_dir,
    )
