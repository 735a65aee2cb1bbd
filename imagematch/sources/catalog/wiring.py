"""How catalog events plug into a process: the ``catalog_event`` kind, applied by a
:class:`~imagematch.catalog_sync.CatalogUpdater` (default: a :class:`LiveCatalog` over the served
index), each change followed by a re-match of the entities it can alter."""

from __future__ import annotations

from typing import TYPE_CHECKING

from imagematch.catalog_sync import CatalogUpdater, LiveCatalog
from imagematch.job_kinds import JobKindSpec
from imagematch.rematch import RematchOnCatalogChange
from imagematch.sources.catalog.events import CATALOG_EVENT_KIND, CatalogEvent, CatalogEventHandler

if TYPE_CHECKING:
    from imagematch.app import Services

__all__ = ["register"]


def register(services: Services, updater: CatalogUpdater | None = None) -> None:
    """Register ``catalog_event``, applied by ``updater`` (default: a LiveCatalog)."""
    settings = services.settings
    services.catalog_updater = updater or LiveCatalog(
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
    services.kinds.register(
        JobKindSpec(
            kind=CATALOG_EVENT_KIND,
            payload=CatalogEvent,
            handler=CatalogEventHandler(
                RematchOnCatalogChange(services.catalog_updater, services.entities, services.matcher)
            ),
            # Upserts embed; deletes do not, but both edit the served index in the process that
            # holds it, in event order, so the whole kind runs beside the model.
            needs_embedder=True,
        )
    )
