"""Switch the production model without downtime.

The new model's snapshot is built beside the served one (snapshots record their embedder and
model), published as a *candidate* that nothing serves, checked, and only then made CURRENT:

1. build with the new model, ``point=False`` (the images it lacks fan out like any build);
2. sanity check on the candidate, through the new model's query path: recall@1 on a small
   labelled sample when one is given (``queries``: JSON lines of ``{"image", "product_id"}``),
   else catalog self-retrieval — each product's first image must find its own product;
3. if it passes, flip the pointer, and re-queue the catalog events the old model's change log
   holds: the ones the candidate already reflects are skipped by their order, the ones that came
   in during the build are applied again, embedded by the new model.

Processes serving the old snapshot keep doing so (their model and index still agree); processes
that start afterwards load the model the CURRENT snapshot names (:func:`imagematch.app.serving_model`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from imagematch.app import Services
from imagematch.errors import ImageMatchError
from imagematch.index import ProductIndex
from index_builder.build import BuildReport, rebuild_catalog_index
from index_builder.catalog import load_catalog, read_uri
from index_builder.fanout import EmbeddingExecutor

__all__ = ["SanityCheck", "SwitchReport", "switch_model"]

log = logging.getLogger(__name__)

SELF_RETRIEVAL_SAMPLE = 200  # products whose first image is tried


@dataclass(frozen=True)
class SanityCheck:
    name: str  # "labelled recall@1" or "catalog self-retrieval@1"
    value: float
    floor: float
    samples: int

    @property
    def passed(self) -> bool:
        return self.samples > 0 and self.value >= self.floor


@dataclass
class SwitchReport:
    model: str
    candidate: str  # the candidate snapshot's version
    previous: str | None  # what was CURRENT before
    check: SanityCheck
    build: BuildReport
    promoted: bool = False
    requeued: list[int] = field(default_factory=list)  # catalog events to apply with the new model

    def summary(self) -> dict[str, object]:
        return {
            "model": self.model,
            "candidate": self.candidate,
            "previous": self.previous,
            "promoted": self.promoted,
            "check": {**self.check.__dict__, "passed": self.check.passed},
            "requeued_catalog_events": len(self.requeued),
            "build": self.build.summary(),
        }


def switch_model(
    new: Services,
    catalog: str,
    *,
    queries: Path | None = None,
    floor: float = 0.9,
    executor: EmbeddingExecutor | None = None,
) -> SwitchReport:
    """Build ``catalog`` with ``new``'s model (``new.model``), check it, promote it if it passes.
    Raises PermanentError if the catalog cannot be read; a failed check leaves CURRENT as it was."""
    store = new.snapshots
    previous = store.current_version()
    old_embedder = ProductIndex.read_from(store.root / previous).embedder_id if previous else None
    candidate, report = rebuild_catalog_index(new, catalog, executor=executor, point=False)
    check = (
        labelled_recall(new, candidate, queries, floor)
        if queries
        else self_retrieval(new, candidate, catalog, floor)
    )
    result = SwitchReport(new.model, report.version, previous, check, report)
    if not check.passed:
        log.warning("model %s not promoted: %s %.3f < %.3f", new.model, check.name, check.value, floor)
        return result
    store.point_at(report.version, folded=candidate)
    result.promoted = True
    if old_embedder and old_embedder != candidate.embedder_id:
        for sequence in store.changes(old_embedder).sequences():
            if new.ledger.requeue(sequence) is not None:
                result.requeued.append(sequence)
        new.dispatch(result.requeued)
    return result


def _top1(new: Services, candidate: ProductIndex, data: bytes) -> str | None:
    image = new.limits.decode(data)
    [matches] = candidate.search(new.embedder.embed([image]), 1, embedder_id=candidate.embedder_id)
    return matches[0].product_id if matches else None


def self_retrieval(new: Services, candidate: ProductIndex, catalog: str, floor: float) -> SanityCheck:
    """Share of (up to 200) products whose first catalog image, queried like a customer photo,
    finds the product itself first: catches broken weights or preprocessing, not fine quality."""
    products = sorted(load_catalog(catalog, new.fetcher, settings=new.settings).products, key=lambda p: p.id)
    tried = hits = 0
    for product in products:
        if tried >= SELF_RETRIEVAL_SAMPLE or not product.images:
            continue
        try:
            found = _top1(new, candidate, read_uri(product.images[0], new.fetcher))
        except ImageMatchError:
            continue
        tried += 1
        hits += found == product.id
    return SanityCheck("catalog self-retrieval@1", hits / tried if tried else 0.0, floor, tried)


def labelled_recall(new: Services, candidate: ProductIndex, queries: Path, floor: float) -> SanityCheck:
    """Recall@1 on labelled photos (JSON lines ``{"image": path relative to the file, "product_id"}``)."""
    tried = hits = 0
    for line in queries.read_text().splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        try:
            found = _top1(new, candidate, (queries.parent / row["image"]).read_bytes())
        except (ImageMatchError, OSError):
            continue
        tried += 1
        hits += found == str(row["product_id"])
    return SanityCheck("labelled recall@1", hits / tried if tried else 0.0, floor, tried)
