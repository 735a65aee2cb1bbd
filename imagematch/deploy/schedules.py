"""The deployed ledger passes: the scheduled sweep and the operator's requeue, each the one
operation of :mod:`imagematch.operations` with the deployed dispatch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from imagematch import operations
from imagematch.app import Services
from imagematch.config import Settings
from imagematch.deploy.volume import VolumeSync
from imagematch.dispatch import Dispatch

__all__ = ["requeue_and_dispatch", "sweep_and_record"]


def sweep_and_record(
    settings: Settings, volume: VolumeSync, route: Callable[[Services], Dispatch]
) -> dict[str, Any]:
    """One :func:`~imagematch.operations.sweep`, its stale pending jobs dispatched by
    ``route(services)``; its record is committed to the Volume, where the console reads it."""
    with operations.open_services(settings, embedder=False) as services:
        summary = operations.sweep(services, route(services))
    volume.commit()
    return summary.as_dict()


def requeue_and_dispatch(
    settings: Settings, route: Callable[[Services], Dispatch], **options: Any
) -> dict[str, Any]:
    """:func:`~imagematch.operations.requeue` with ``options`` (scope, source, since, limit,
    dry_run), the re-queued jobs dispatched by ``route(services)`` at once."""
    with operations.open_services(settings, embedder=False) as services:
        return operations.requeue(services.ledger, route(services), **options).as_dict()
