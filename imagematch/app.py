"""The composition root: :func:`build_services` wires every collaborator from :class:`Settings`.

The CLI, the HTTP API and the Modal app all start here, so they run the same code paths. Job kinds
are registered here: the core's own (``match_image``, ``catalog_event``) and each source's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from imagematch.addresses import AddressPolicy
from imagematch.blobs import BlobStore
from imagematch.calibration import Calibration
from imagematch.calibration_labels import CalibrationRefit
from imagematch.catalog_sync import LiveCatalog
from imagematch.config import Settings
from imagematch.embedder import Embedder, ModelNotLoaded, load_embedder
from imagematch.feedback import Feedback
from imagematch.fetch import ImageFetcher
from imagematch.images import DecodeGate, ImageLimits
from imagematch.index import IndexHandle, SnapshotStore
from imagematch.job_kinds import JobKinds, JobKindSpec, MatchImagePayload
from imagematch.learning import LearningLoop, LearnPayload
from imagematch.ledger import Clock, Ledger, SweepReport, open_ledger_for, utcnow
from imagematch.maintenance import record_sweep
from imagematch.matches_webhook import MatchesWebhook
from imagematch.models import JobKind, MatchRequest, MatchResult
from imagematch.photo_vectors import PhotoVectorStore
from imagematch.pipeline import Matcher, PhotoBytes, PhotoMatching, StoredOrFetchedLoader
from imagematch.rematch import EntityMatching, RematchOnCatalogChange, RematchPayload
from imagematch.retry import RetryPolicy
from imagematch.sources.catalog import CatalogEvent, CatalogEventHandler, CatalogUpdater
from imagematch.sources.zendesk import (
    ZendeskAttachmentLoader,
    ZendeskClient,
    ZendeskImagePayload,
    ZendeskNoteFollowUp,
    ZendeskNoteHandler,
    ZendeskNotePayload,
    ZendeskTicketHandler,
    ZendeskTicketPayload,
    zendesk_client_for,
)
from imagematch.sources.zendesk.notes import catalog_links
from imagematch.thumbnails import ThumbnailStore
from imagematch.worker import Dispatch, Worker

__all__ = ["Services", "build_services", "serving_model"]


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
    # Told the ids of jobs just persisted, to run them now (see worker.Dispatch): the Modal spawn,
    # the local worker pool. Add one with add_dispatcher().
    dispatchers: list[Dispatch] = field(default_factory=list)
    catalog_updater: CatalogUpdater | None = None  # applies catalog webhook events (LiveCatalog)
    # Answers POST /v1/match in another process (on Modal: the GPU class); None: here.
    remote_matcher: Callable[[bytes, MatchRequest], MatchResult] | None = None
    # Entity matches from stored photo vectors, re-matched on catalog changes (set by build_services).
    entities: EntityMatching = field(init=False)
    # Labels on answers (POST /v1/jobs/{id}/feedback, the console, eval --learn-from).
    feedback: Feedback = field(init=False)
    learning: LearningLoop = field(init=False)  # labels → learned references (imagematch.learning)

    def use_catalog_updater(self, updater: CatalogUpdater) -> None:
        """Apply ``catalog_event`` jobs with ``updater`` (without one, workers skip them), then
        re-match the entities each change can alter."""
        self.catalog_updater = updater
        self.kinds.register(
            JobKindSpec(
                kind=JobKind.CATALOG_EVENT,
                payload=CatalogEvent,
                handler=CatalogEventHandler(RematchOnCatalogChange(updater, self.entities, self.matcher)),
                # Upserts embed; deletes do not, but both edit the served index in the process that
                # holds it, in event order, so the whole kind runs beside the model.
                needs_embedder=True,
            )
        )

    @property
    def limits(self) -> ImageLimits:
        return self.photos.limits

    def match_photo(self, data: bytes, request: MatchRequest) -> MatchResult:
        """Match one photo now (``POST /v1/match``): decode it under the limits, embed, search —
        here, or in the process that holds the model when ``remote_matcher`` is set.
        Raises PermanentError (not an image, too large) and the index's errors."""
        if self.remote_matcher is not None:
            return self.remote_matcher(data, request)
        image = self.photos.decode(PhotoBytes(data))
        return self.matcher.match_image(
            image, top_k=request.top_k, min_score=request.min_score, accept=request.product_filter()
        )

    def add_dispatcher(self, dispatcher: Dispatch) -> None:
        self.dispatchers.append(dispatcher)

    def dispatch(self, job_ids: list[int]) -> None:
        """Make workers look at these persisted jobs now (a hint: the sweep catches a lost one)."""
        if job_ids:
            for dispatcher in self.dispatchers:
                dispatcher(job_ids)

    def make_worker(self, worker_id: str | None = None) -> Worker:
        return Worker(
            self.ledger,
            self.kinds,
            self.policy,
            worker_id=worker_id,
            lease_seconds=self.settings.lease_seconds,
            clock=self.clock,
        )

    def zendesk_client(self) -> ZendeskClient:
        """The Zendesk client; raises ZendeskNotConfiguredError (permanent) naming what is missing."""
        return zendesk_client_for(self.settings, self.http)

    def sweep(self) -> SweepReport:
        report = self.ledger.sweep(
            max_attempts=self.policy.max_attempts,
            pending_grace_seconds=self.settings.pending_grace_seconds,
        )
        record_sweep(self.settings.data_dir, report, self.clock())
        return report

    def close(self) -> None:
        self.http.close()
        self.ledger.close()


def build_services(
    settings: Settings,
    *,
    embedder: Embedder | None = None,
    ledger: Ledger | None = None,
    http: httpx.Client | None = None,
    clock: Clock = utcnow,
    embedder_factory: Callable[[Settings], Embedder] | None = None,
    catalog_updater: CatalogUpdater | None = None,
    dispatch: Dispatch | None = None,
    with_model: bool = True,
    model: str | None = None,
) -> Services:
    """Wire everything from ``settings``; pass collaborators in to replace the defaults (tests).
    Catalog events are applied by a :class:`LiveCatalog` unless ``catalog_updater`` is given;
    ``dispatch`` (e.g. a Modal spawn) is told the ids of jobs that handlers create.
    ``with_model=False`` loads no model: for processes that run only the kinds that need none,
    and read the index without searching it (on Modal: the web and CPU containers). ``model``
    overrides ``settings.model`` (see :func:`serving_model`)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if model and model != settings.model:
        settings = settings.model_copy(update={"model": model})
    if embedder is None:
        embedder = (embedder_factory or _default_embedder)(settings) if with_model else None
    if embedder is None:
        embedder = ModelNotLoaded(settings.model)
    ledger = ledger or open_ledger_for(settings, clock=clock)
    http = http or httpx.Client(timeout=settings.fetch_timeout_seconds)
    fetcher = _fetcher(settings, http)
    snapshots = SnapshotStore(settings.data_dir / "index")
    index = IndexHandle(snapshots, None if isinstance(embedder, ModelNotLoaded) else embedder.embedder_id)
    matcher = Matcher(embedder, index, top_k=settings.top_k, min_score=settings.min_score)
    limits = _limits(settings)
    vectors = PhotoVectorStore(settings.data_dir / "photo_vectors")
    services = Services(
        settings=settings,
        ledger=ledger,
        embedder=embedder,
        snapshots=snapshots,
        index=index,
        blobs=BlobStore(settings.data_dir / "blobs"),
        http=http,
        fetcher=fetcher,
        matcher=matcher,
        photos=PhotoMatching(matcher, limits, vectors=vectors),
        model=settings.model,
        policy=RetryPolicy(
            max_attempts=settings.max_attempts,
            base_seconds=settings.retry_base_seconds,
            cap_seconds=settings.retry_max_seconds,
        ),
        clock=clock,
        thumbnails=ThumbnailStore(settings.data_dir / "thumbnails"),
        dispatchers=[dispatch] if dispatch else [],
    )
    services.photos.on_photo(services.thumbnails.record_job_photo)
    _register_entities(services)
    _register_core_kinds(services, catalog_updater)
    _register_zendesk(services)
    _register_learning(services, vectors)
    _register_calibration(services)
    for kind in (JobKind.MATCH_IMAGE, JobKind.ZENDESK_IMAGE):  # the photo kinds
        services.photos.on_complete(kind, services.entities.record_photo)
    return services


def _fetcher(settings: Settings, http: httpx.Client) -> ImageFetcher:
    return ImageFetcher(
        http,
        max_bytes=settings.max_image_bytes,
        policy=AddressPolicy.parse(settings.fetch_allow_private, settings.fetch_extra_ports),
        total_seconds=settings.fetch_total_seconds,
    )


def _limits(settings: Settings) -> ImageLimits:
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


def _register_core_kinds(services: Services, catalog_updater: CatalogUpdater | None) -> None:
    """``match_image`` (uploads and URLs) and ``catalog_event`` (applied by a LiveCatalog unless
    an updater is given)."""
    settings = services.settings
    services.kinds.register(
        services.photos.kind(
            JobKind.MATCH_IMAGE, MatchImagePayload, StoredOrFetchedLoader(services.blobs, services.fetcher)
        )
    )
    services.use_catalog_updater(
        catalog_updater
        or LiveCatalog(
            index=services.index,
            snapshots=services.snapshots,
            embedder=services.embedder,
            fetcher=services.fetcher,
            limits=services.limits,
            clock=services.clock,
            catalog_views=settings.catalog_views,
            scoring=settings.product_scoring,
            thumbnails=services.thumbnails,
        )
    )


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


def _register_learning(services: Services, vectors: PhotoVectorStore) -> None:
    """Labels (:class:`Feedback`) and the ``learn`` kind that turns them into learned references:
    it may embed a stored photo again (after a model switch) and edits the served index, so it
    runs beside the model, like catalog events."""
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


def _register_zendesk(services: Services) -> None:
    """Zendesk's kinds: the ticket scan, its attachments (a photo kind with a note hook), notes."""
    settings, ledger = services.settings, services.ledger
    services.kinds.register(
        JobKindSpec(
            kind=JobKind.ZENDESK_TICKET,
            payload=ZendeskTicketPayload,
            handler=ZendeskTicketHandler(
                services.zendesk_client,
                ledger,
                max_bytes=settings.max_image_bytes,
                dispatch=services.dispatch,
            ),
            needs_embedder=False,
        )
    )
    services.kinds.register(
        services.photos.kind(
            JobKind.ZENDESK_IMAGE,
            ZendeskImagePayload,
            ZendeskAttachmentLoader(services.zendesk_client, services.fetcher),
        )
    )
    if settings.zendesk_post_notes:
        services.photos.on_complete(
            JobKind.ZENDESK_IMAGE, ZendeskNoteFollowUp(ledger, dispatch=services.dispatch)
        )
    note_min_score = settings.zendesk_note_min_score
    services.kinds.register(
        JobKindSpec(
            kind=JobKind.ZENDESK_NOTE,
            payload=ZendeskNotePayload,
            handler=ZendeskNoteHandler(
                services.zendesk_client,
                ledger,
                enabled=settings.zendesk_post_notes,
                min_score=settings.min_score if note_min_score is None else note_min_score,
                lease_seconds=settings.lease_seconds,
                links=catalog_links(services.index, settings.product_url_template),
                public_url=settings.public_url,
            ),
            needs_embedder=False,
        )
    )


def _default_embedder(settings: Settings) -> Embedder:
    return load_embedder(
        settings.model,
        device=settings.device,
        batch_size=settings.batch_size,
        cache_dir=settings.model_cache_dir,
    )
