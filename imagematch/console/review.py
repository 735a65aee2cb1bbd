"""``/ui/review``: answered photos nobody has labelled yet, least confident first, one at a time.

The page carries a batch of items; the script shows one, labels it with the job page's buttons
(``POST /v1/jobs/{id}/feedback``) and moves on without a reload. Keys: ``1``–``5`` pick that
product, ``o`` another product, ``n`` not in catalog, ``u`` unusable, ``j``/``k`` next/previous,
``Enter`` opens the job.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

import imagematch.console.data as data
from imagematch.app import Services
from imagematch.console.job_page import top_matches
from imagematch.console.pages import page
from imagematch.models import Prediction

__all__ = ["review_routes", "unlabelled"]

MAX_SCAN = 1000  # latest answers the queue looks through
BATCH = 40  # items one page carries


BAND_ORDER = {"no_match": 0, "check": 1, "confident": 2}


def _certainty(prediction: Prediction) -> tuple[int, float]:
    """What orders the queue: the band (no match first; the raw-score floor can lower a band
    without lowering the confidence), then the calibrated confidence, else the raw top-1 score."""
    band = BAND_ORDER.get(str(prediction.band), 1) if prediction.band else 1
    if prediction.confidence is not None:
        return band, prediction.confidence
    return band, prediction.best_score if prediction.best_score is not None else 0.0


def unlabelled(services: Services, *, max_scan: int = MAX_SCAN) -> list[Prediction]:
    """Answered photos (with at least one product) without a current label, least confident first."""
    found: list[Prediction] = []
    before: int | None = None
    scanned = 0
    while scanned < max_scan:
        batch = services.ledger.list_predictions(limit=100, before_id=before)
        if not batch:
            break
        scanned += len(batch)
        found.extend(p for p in batch if p.matches and data.current_label(services, p.job_id) is None)
        before = batch[-1].id
    return sorted(found, key=lambda p: (_certainty(p), -p.job_id))


def review_routes(router: APIRouter, services: Services) -> None:
    @router.get("/ui/review")
    def review(request: Request) -> HTMLResponse:
        queue = unlabelled(services)
        items = []
        for prediction in queue[:BATCH]:
            job = services.ledger.get_job(prediction.job_id)
            if job is None:
                continue
            row = data.job_row(services, job)
            items.append((row, top_matches(services, row)))
        return page(
            request, "review.html", nav="review", items=items, remaining=len(queue), now=services.clock()
        )
