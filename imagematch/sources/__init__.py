"""Adapters for where images and catalog changes come from: Zendesk tickets, catalog webhooks.

Each source wires itself (``<source>/wiring.py: register(services)``): its job kinds, loaders and
completion hooks. The composition root calls :func:`register_sources` and names no source.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imagematch.catalog_sync import CatalogUpdater
from imagematch.sources.catalog import wiring as catalog_wiring
from imagematch.sources.zendesk import wiring as zendesk_wiring

if TYPE_CHECKING:
    from imagematch.app import Services

__all__ = ["register_sources"]


def register_sources(services: Services, *, catalog_updater: CatalogUpdater | None = None) -> None:
    """Every source's kinds, loaders and hooks into ``services``."""
    catalog_wiring.register(services, catalog_updater)
    zendesk_wiring.register(services)
