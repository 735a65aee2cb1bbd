"""The composition root: :func:`build_services` wires every collaborator from :class:`Settings`.

The CLI, the HTTP API and the Modal app all start here, so they run the same code paths.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx

from imagematch.blobs import BlobStore
from imagematch.catalog_sync import LiveCatalog
from imagematch.config import Settings
from imagematch.embedder import Embedder, load_embedder
from imagematch.fetch import ImageFetcher
from imagematch.index import IndexHandle, SnapshotStore
from imagematch.ledger import Clock, Ledger, SweepReport, open_ledger_for, utcnow
from imagematch.models import JobKind
from imagematch.pipeline import ImageLimits, Matcher, MatchImageHandler
from imagematch.retry import RetryPolicy
from imagematch.sources.catalog import CatalogEventHandler, CatalogUpdater
from imagematch.sources.zendesk import (
    ZendeskClient,
    ZendeskImageHandler,
    ZendeskNoteHandler,
    ZendeskTicketHandler,
    zendesk_client_for,
)
from imagematch.sources.zendesk.notes import catalog_links
from imagematch.thumbnails import ThumbnailStore
from imagematch.worker import Dispatch, JobHandler, Worker

__all__ = ["Services", "build_services", "record_sweep"]


def record_sweep(data_dir: Path, report: SweepReport, at: datetime) -> None:
    """Note when the last sweep ran and what it did (``sweep.json``; a failure to write is logged)."""
    body = {
        "at": at.isoformat(),
        "retries_due": report.retries_due,
        "leases_expired": report.leases_expired,
        "gave_up": report.gave_up,
        "due_pending": len(report.due_pending),
    }
    try:
        (data_dir / "sweep.json").write_text(json.dumps(body))
    except OSError as exc:
        logging.getLogger(__name__).warning("could not record the sweep: %s", exc)


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
    policy: RetryPolicy
    clock: Clock
    thumbnails: ThumbnailStore
    handlers: dict[str, JobHandler] = field(default_factory=dict)
    # Told the ids of jobs that handlers create (e.g. a ticket's attachments), to run them soon:
    # on Modal a spawn; locally None (in-process workers pick them up on their next claim).
    dispatch: Dispatch | None = None
    catalog_updater: CatalogUpdater | None = None  # applies catalog webhook events (LiveCatalog)

    def use_catalog_updater(self, updater: CatalogUpdater) -> None:
        """Apply ``catalog_event`` jobs with ``updater`` (without one, workers skip them)."""
        self.catalog_updater = updater
        self.handlers[JobKind.CATALOG_EVENT] = CatalogEventHandler(updater)

    @property
    def limits(self) -> ImageLimits:
        return ImageLimits(self.settings.max_image_bytes, self.settings.max_image_pixels)

    def make_worker(self, worker_id: str | None = None) -> Worker:
        return Worker(
            self.ledger,
            self.handlers,
            self.policy,
            worker_id=worker_id,
            lease_seconds=self.settings.lease_seconds,
            clock=self.clock,
        )

    def nudge(self, job_ids: list[int]) -> None:
        if self.dispatch and job_ids:
            self.dispatch(job_ids)

    def zendesk_client(self) -> ZendeskClient:
        """The Zendesk client; raises ZendeskNotConfiguredError (permanent) naming what is missing."""
        return zendesk_client_for(self.settings, self.http)

    def sweep(self) -> SweepReport:
        report = self.ledger.sweep(
            max_attempts=self.policy.max_attempts,
            pending_grace_seconds=self.settings.pending_grace_seconds,
        )
        record_sweep(self.settings.data_dir, report, self.clock())  # shown on the console's health page
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
) -> Services:
    """Wire everything from ``settings``; pass collaborators in to replace the defaults (tests).
    Catalog events are applied by a :class:`LiveCatalog` unless ``catalog_updater`` is given."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if embedder is None:
        embedder = (embedder_factory or _default_embedder)(settings)
    ledger = ledger or open_ledger_for(settings, clock=clock)
    http = http or httpx.Client(timeout=settings.fetch_timeout_seconds)
    fetcher = ImageFetcher(
        http, max_bytes=settings.max_image_bytes, allow_private=settings.fetch_allow_private
    )
    snapshots = SnapshotStore(settings.data_dir / "index")
    index = IndexHandle(snapshots, embedder.embedder_id)
    matcher = Matcher(embedder, index, top_k=settings.top_k, min_score=settings.min_score)
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
        policy=RetryPolicy(
            max_attempts=settings.max_attempts,
            base_seconds=settings.retry_base_seconds,
            cap_seconds=settings.retry_max_seconds,
        ),
        clock=clock,
        thumbnails=ThumbnailStore(settings.data_dir / "thumbnails"),
        dispatch=dispatch,
    )
    services.handlers[JobKind.MATCH_IMAGE] = MatchImageHandler(
        matcher, services.blobs, fetcher, services.limits, on_photo=services.thumbnails.record_job_photo
    )
    services.use_catalog_updater(
        catalog_updater
        or LiveCatalog(
            index=index,
            snapshots=snapshots,
            embedder=embedder,
            fetcher=fetcher,
            limits=services.limits,
            clock=clock,
            catalog_views=settings.catalog_views,
            scoring=settings.product_scoring,
            thumbnails=services.thumbnails,
        )
    )
    _register_zendesk(services)
    return services


def _register_zendesk(services: Services) -> None:
    settings = services.settings
    services.handlers[JobKind.ZENDESK_TICKET] = ZendeskTicketHandler(
        services.zendesk_client, services.ledger, max_bytes=settings.max_image_bytes, nudge=services.nudge
    )
    services.handlers[JobKind.ZENDESK_IMAGE] = ZendeskImageHandler(
        services.zendesk_client,
        services.ledger,
        services.fetcher,
        services.matcher,
        services.limits,
        post_notes=settings.zendesk_post_notes,
        nudge=services.nudge,
        on_photo=services.thumbnails.record_job_photo,
    )
    note_min_score = settings.zendesk_note_min_score
    services.handlers[JobKind.ZENDESK_NOTE] = ZendeskNoteHandler(
        services.zendesk_client,
        services.ledger,
        enabled=settings.zendesk_post_notes,
        min_score=settings.min_score if note_min_score is None else note_min_score,
        lease_seconds=settings.lease_seconds,
        links=catalog_links(services.index, settings.product_url_template),
        public_url=settings.public_url,
    )


def _default_embedder(settings: Settings) -> Embedder:
    return load_embedder(
        settings.model,
        device=settings.device,
        batch_size=settings.batch_size,
        cache_dir=settings.model_cache_dir,
    )
