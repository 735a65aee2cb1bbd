"""Catalog changes from a shop backend: signed product events (``events``) and their webhook
route (``routes``). Applying them to the served index is :mod:`imagematch.catalog_sync`."""

from __future__ import annotations

from imagematch.sources.catalog.events import (
    CATALOG_EVENT_KIND,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    CatalogEvent,
    CatalogEventHandler,
    CatalogUpdater,
    InvalidSignatureError,
    ProductChanged,
    ProductDeleted,
    catalog_event_job,
    catalog_event_key,
    parse_catalog_event,
    pending_catalog_jobs,
    sign_catalog_event,
    verify_catalog_signature,
)

__all__ = [
    "CATALOG_EVENT_KIND",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "CatalogEvent",
    "CatalogEventHandler",
    "CatalogUpdater",
    "InvalidSignatureError",
    "ProductChanged",
    "ProductDeleted",
    "catalog_event_job",
    "catalog_event_key",
    "parse_catalog_event",
    "pending_catalog_jobs",
    "sign_catalog_event",
    "verify_catalog_signature",
]
