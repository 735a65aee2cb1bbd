"""Learn from labelled photos the way production does (``imagematch eval --learn-from``, the bench's
learning curve): each photo is submitted as a job, matched, labelled with its product through
:class:`~imagematch.feedback.Feedback` (the API's code path), and the learn jobs run until every
learned reference is applied. Use it in a fresh data dir (:func:`fresh_services`): it writes jobs,
labels and index changes.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from imagematch.app import Services, build_services
from imagematch.config import Settings
from imagematch.embedder import Embedder
from imagematch.evaluation import LabelledQuery
from imagematch.feedback import FeedbackIn
from imagematch.job_kinds import MatchImagePayload, image_ref_for_blob, new_job
from imagematch.labels import Verdict
from imagematch.models import JobStatus

__all__ = ["LearnFromReport", "fresh_services", "learn_from_labels"]

GIVEN_BY = "eval-learn-from"
EMBEDDING_CACHE = "embedding_cache.sqlite3"  # the name index_builder gives it in a data dir


@dataclass
class LearnFromReport:
    labelled: int = 0
    confirmed: int = 0  # our top-1 was already the labelled product
    corrected: int = 0
    skipped: list[str] = field(default_factory=list)  # unreadable photos, products not in the catalog
    learned_references: int = 0  # served once every learn job ran
    seconds: float = 0.0

    def summary(self) -> dict[str, object]:
        return {
            "labelled": self.labelled,
            "confirmed": self.confirmed,
            "corrected": self.corrected,
            "skipped": len(self.skipped),
            "learned_references": self.learned_references,
            "seconds": round(self.seconds, 1),
        }


@contextmanager
def fresh_services(settings: Settings, *, embedder: Embedder | None = None) -> Iterator[Services]:
    """Services over a new temporary data dir with a SQLite ledger (never the configured
    database) and no background workers, reusing ``embedder`` when given and a copy of the
    configured data dir's embedding cache (the catalog is not embedded again); removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="imagematch-learn-") as tmp:
        fresh = settings.model_copy(
            update={"data_dir": Path(tmp), "database_url": None, "supabase_url": None, "workers": 0}
        )
        _copy_sqlite(settings.data_dir / EMBEDDING_CACHE, Path(tmp) / EMBEDDING_CACHE)
        services = build_services(fresh, embedder=True if embedder is None else embedder)
        try:
            yield services
        finally:
            services.close()


def _copy_sqlite(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite file (its WAL included), if there is one."""
    if not source.exists():
        return
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


def learn_from_labels(
    services: Services,
    labels: Sequence[LabelledQuery],
    *,
    progress: Callable[[int], None] | None = None,
) -> LearnFromReport:
    """Submit, match and label each photo (``confirmed`` when our top-1 was its product, else
    ``corrected``), then run the learn jobs; returns what was learned. Needs a served index."""
    started = time.perf_counter()
    report = LearnFromReport()
    catalog = services.index.get().products
    worker = services.make_worker("learn-from")
    for row in labels:
        if row.product_id not in catalog:
            report.skipped.append(f"{row.image}: product {row.product_id} is not in the catalog")
        else:
            _submit_and_label(services, row, report)
        if progress:
            progress(1)
    worker.drain()  # the learn jobs
    report.learned_references = services.index.get().learned_count
    report.seconds = time.perf_counter() - started
    return report


def _submit_and_label(services: Services, row: LabelledQuery, report: LearnFromReport) -> None:
    try:
        digest = services.blobs.put(row.image.read_bytes())
    except OSError as exc:
        report.skipped.append(f"{row.image}: {exc}")
        return
    payload = MatchImagePayload(image=image_ref_for_blob(digest), file_name=row.image.name)
    job, _ = services.ledger.submit(
        new_job(payload, source="learn-from", idempotency_key=f"learn-from:{digest}")
    )
    services.make_worker("learn-from").process_job_id(job.id)  # None: the same photo, done before
    done = services.ledger.get_job(job.id) or job
    if done.status != JobStatus.COMPLETE:
        report.skipped.append(f"{row.image}: {done.last_error or done.status}")
        return
    prediction = services.ledger.get_prediction(job.id)
    best = prediction.best_product_id if prediction else None
    verdict = Verdict.CONFIRMED if best == row.product_id else Verdict.CORRECTED
    services.feedback.give(job.id, FeedbackIn(verdict=verdict, product_id=row.product_id), given_by=GIVEN_BY)
    report.labelled += 1
    report.confirmed += verdict is Verdict.CONFIRMED
    report.corrected += verdict is Verdict.CORRECTED
