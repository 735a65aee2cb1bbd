"""Operations: ``/healthz`` (liveness) and ``/v1/stats`` (jobs, index, freshness)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from imagematch import __version__
from imagematch.app import Services
from imagematch.errors import EmbedderMismatchError, IndexNotBuiltError
from imagematch.feedback_stats import feedback_stats
from imagematch.sources.catalog import pending_catalog_jobs

__all__ = ["health_router", "stats_router"]


def health_router() -> APIRouter:
    router = APIRouter(tags=["ops"])

    @router.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    return router


def stats_router(services: Services) -> APIRouter:
    router = APIRouter(tags=["ops"])

    @router.get("/v1/stats")
    async def stats() -> dict[str, Any]:
        """Job counts by status; the index's version, size, recipe and freshness (the last live
        catalog event applied and its age), products without images and deleted-but-not-purged;
        ``feedback``: accuracy measured by the labels (7 and 30 days, per source and category)."""
        return await run_in_threadpool(collect_stats, services)

    return router


def collect_stats(services: Services) -> dict[str, Any]:
    """The figures of ``/v1/stats`` (also shown by the console's health page)."""
    counts = services.ledger.count_by_status()
    out: dict[str, Any] = {
        "embedder": services.embedder.embedder_id,
        "jobs": {str(k): v for k, v in counts.items()},
        "pending_catalog_jobs": pending_catalog_jobs(services.ledger),  # accepted, not applied yet
        # Which confidence fit answers carry (imagematch.calibration); None: the model has none.
        "calibration": calibration.describe() if (calibration := services.matcher.calibration) else None,
    }
    try:
        index = services.index.get()
        out["index"] = index.stats(services.clock())
        # Entities whose matches were computed against an older index (or never): re-matches due.
        out["entities"] = {"stale": services.ledger.count_stale_entities(index.served_version)}
        learned: int | None = index.learned_count
    except (IndexNotBuiltError, EmbedderMismatchError) as exc:
        out["index"] = {"version": None, "error": str(exc)}
        learned = None
    # What the labels say about our answers (imagematch.feedback_stats; the health page shows it).
    out["feedback"] = feedback_stats(services.ledger, services.clock(), learned_references=learned)
    return out
