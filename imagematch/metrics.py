"""Prometheus metrics (``GET /metrics``), written with prometheus-client.

Two kinds of figures, kept apart so that each is right however many processes run:

* **From the ledger, read at scrape time** (:class:`LedgerCollector`): jobs finished by kind, source
  and outcome (counters the ledger keeps as jobs end), queue depth by status, the oldest pending
  job's wait, the feedback agreement figures — and, from the served index, its version, vectors,
  products and catalog freshness. Every worker writes to the same ledger, so any one process
  (locally ``serve``; on Modal the ``web`` container) reports the totals of all of them.
* **Measured in a process** (:data:`instruments`): webhook-ack and ``/v1/match`` latency, job
  duration by stage, Zendesk API calls by status, fetch refusals by reason. With several
  processes on one machine (``serve`` plus ``imagematch worker``), set ``PROMETHEUS_MULTIPROC_DIR``
  to one empty directory for all of them: prometheus-client's multiprocess mode then sums every
  process's files at scrape time. Without it each process counts for itself (``serve`` with its
  in-process workers: one process, so still right). On Modal, see README "Metrics on Modal".

Instruments are module-level, as prometheus-client intends (one per process, like loggers); they
live in :data:`PROCESS_REGISTRY`, never in the client's global registry.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from imagematch.errors import ImageMatchError
from imagematch.feedback_figures import FeedbackFigures, read_feedback_figures
from imagematch.index import IndexHandle
from imagematch.ledger import Clock, Ledger
from imagematch.log_context import current_fields
from imagematch.models import ErrorKind, JobStatus

__all__ = [
    "CONTENT_TYPE",
    "PROCESS_REGISTRY",
    "LedgerCollector",
    "count_fetch_refusal",
    "count_zendesk_call",
    "observe_match_request",
    "observe_webhook_ack",
    "render_metrics",
    "stage_timer",
    "timed_batch_stage",
    "timed_stage",
]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PROCESS_REGISTRY = CollectorRegistry(auto_describe=True)
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

_webhook_ack = Histogram(
    "imagematch_webhook_ack_seconds",
    "Time from a webhook's arrival to its answer (the job persisted), by source and status code.",
    ["source", "code"],
    buckets=_LATENCY_BUCKETS,
    registry=PROCESS_REGISTRY,
)
_match_request = Histogram(
    "imagematch_match_request_seconds",
    "Time to answer POST /v1/match, by status code.",
    ["code"],
    buckets=_LATENCY_BUCKETS,
    registry=PROCESS_REGISTRY,
)
_job_stage = Histogram(
    "imagematch_job_stage_seconds",
    "Time a job spent in each stage (load, decode, embed, search, write), by kind.",
    ["kind", "stage"],
    buckets=_LATENCY_BUCKETS,
    registry=PROCESS_REGISTRY,
)
_zendesk_calls = Counter(
    "imagematch_zendesk_api_calls",
    "Zendesk API calls by operation and HTTP status (429: rate limited; error: no answer).",
    ["operation", "status"],
    registry=PROCESS_REGISTRY,
)
_fetch_refusals = Counter(
    "imagematch_fetch_refusals",
    "Downloads refused before or while fetching, by reason.",
    ["reason"],
    registry=PROCESS_REGISTRY,
)


def observe_webhook_ack(source: str, code: int, seconds: float) -> None:
    _webhook_ack.labels(source, str(code)).observe(seconds)


def observe_match_request(code: int, seconds: float) -> None:
    _match_request.labels(str(code)).observe(seconds)


def count_zendesk_call(method: str, url: str, status: int | str) -> None:
    """One Zendesk API call; ``url``'s path becomes the operation, ids as ``{id}`` (few series)."""
    path = re.sub(r"/\d+(?=/|\.json|$)", "/{id}", urlsplit(url).path)
    _zendesk_calls.labels(f"{method.upper()} {path}", str(status)).inc()


# A refusal's reason, from the message the fetcher raised it with (fetch.py, addresses.py).
_REFUSALS = (
    ("private address", "private_address"),
    ("from port", "port"),
    ("bad port", "port"),
    ("resolves to no address", "unresolvable"),
    ("only http(s)", "scheme"),
    ("redirect", "redirect"),
    ("limit", "too_large"),
    ("not an image", "content_type"),
    ("content type", "content_type"),
    (": HTTP 4", "http_4xx"),
)


def count_fetch_refusal(message: str) -> str:
    """Count a download the fetcher refused (PermanentError ``message``); returns the reason."""
    reason = next((reason for text, reason in _REFUSALS if text in message), "other")
    _fetch_refusals.labels(reason).inc()
    return reason


@contextmanager
def timed_stage(stage: str, kind: str | None = None) -> Iterator[None]:
    """Observe the block's duration as ``stage`` of the job bound in the log context (or ``kind``)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        job_kind = kind or str(current_fields().get("kind", "unknown"))
        _job_stage.labels(job_kind, stage).observe(time.perf_counter() - started)


@contextmanager
def timed_batch_stage(stage: str, kinds: Sequence[str]) -> Iterator[None]:
    """A batch's ``stage`` (one forward pass, one ledger write) as each job's share: the block's
    duration over ``len(kinds)``, observed once per job of the batch (``kinds``: their kinds)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        share = (time.perf_counter() - started) / max(1, len(kinds))
        for kind in kinds:
            _job_stage.labels(kind, stage).observe(share)


def stage_timer(stage: str, kinds: str | Sequence[str] | None) -> AbstractContextManager[None]:
    """:func:`timed_stage` for a job of ``kind`` (:func:`timed_batch_stage` for a batch's
    ``kinds``); untimed without one (a request's match)."""
    if isinstance(kinds, str):
        return timed_stage(stage, kinds)
    return timed_batch_stage(stage, kinds) if kinds else nullcontext()


def _outcome(status: JobStatus, error_kind: ErrorKind | None) -> str:
    if status == JobStatus.FAILED:
        return f"failed_{(error_kind or ErrorKind.TRANSIENT).value}"
    return "lease_expired" if status == JobStatus.PENDING else status.value


@dataclass(eq=False)  # a registry keys its collectors by identity
class LedgerCollector(Collector):
    """The figures that live in the ledger and the served index, read when scraped.
    ``catalog_pending`` counts the catalog events not applied yet (the catalog source's
    ``pending_catalog_jobs``: the core never names a source's kind); None: no such gauge."""

    ledger: Ledger
    index: IndexHandle
    clock: Clock
    catalog_pending: Callable[[Ledger], int] | None = None

    def collect(self) -> Iterable[Metric]:
        yield from self._jobs()
        yield from self._index()
        yield from _feedback(read_feedback_figures(self.ledger, self.clock()))

    def _jobs(self) -> Iterator[Metric]:
        figures = self.ledger.job_figures()
        finished = CounterMetricFamily(
            "imagematch_jobs_finished",
            "Job attempts ended, by kind, source and outcome (complete, failed_transient, "
            "failed_permanent, skipped, lease_expired). From the ledger: totals of every worker.",
            labels=["kind", "source", "outcome"],
        )
        totals: dict[tuple[str, str, str], int] = {}
        for row in figures.outcomes:
            key = (row.kind, row.source, _outcome(row.outcome, row.error_kind))
            totals[key] = totals.get(key, 0) + row.count
        for labels, count in sorted(totals.items()):
            finished.add_metric(list(labels), count)
        yield finished
        depth = GaugeMetricFamily("imagematch_jobs", "Jobs in the ledger by status.", labels=["status"])
        for status, count in self.ledger.count_by_status().items():
            depth.add_metric([status.value], count)
        yield depth
        since = figures.oldest_pending_since
        wait = max(0.0, (self.clock() - since).total_seconds()) if since else 0.0
        yield GaugeMetricFamily(
            "imagematch_oldest_pending_seconds", "How long the oldest pending job has waited (0: none).", wait
        )
        if self.catalog_pending is not None:
            yield GaugeMetricFamily(
                "imagematch_catalog_events_pending",
                "Catalog events accepted and not applied yet (pending or processing).",
                self.catalog_pending(self.ledger),
            )

    def _index(self) -> Iterator[Metric]:
        loaded = GaugeMetricFamily("imagematch_index_loaded", "1 when this process serves an index.")
        try:
            index = self.index.get()
        except ImageMatchError:
            loaded.add_metric([], 0)
            yield loaded
            return
        loaded.add_metric([], 1)
        yield loaded
        info = GaugeMetricFamily(
            "imagematch_index_info", "The served index (always 1).", labels=["version", "embedder"]
        )
        info.add_metric([index.served_version, index.embedder_id], 1)
        yield info
        vectors, products = index.vector_count, len(index.products)
        yield GaugeMetricFamily("imagematch_index_vectors", "Vectors in the served index.", vectors)
        yield GaugeMetricFamily("imagematch_index_products", "Products in the served index.", products)
        last = index.events.last_change
        applied: datetime = last[1] if last else index.built_at
        yield GaugeMetricFamily(
            "imagematch_catalog_last_applied_timestamp_seconds",
            "When the served index last changed: the last catalog event applied, else its build.",
            applied.timestamp(),
        )


def _feedback(figures: FeedbackFigures) -> Iterator[Metric]:
    labels = GaugeMetricFamily(
        "imagematch_feedback_labels", "Current feedback labels by verdict.", labels=["verdict"]
    )
    for verdict, count in sorted(figures.labels_by_verdict.items()):
        labels.add_metric([verdict], count)
    yield labels
    yield GaugeMetricFamily(
        "imagematch_feedback_top1_agreement",
        "Share of labelled photos whose top-1 answer the agent confirmed (0 without labels).",
        figures.top1_agreement,
    )
    yield GaugeMetricFamily(
        "imagematch_feedback_top5_agreement",
        "Share of labelled photos whose right product was in the top 5 (0 without labels).",
        figures.top5_agreement,
    )


def render_metrics(collector: LedgerCollector, processes: Collector | None = None) -> bytes:
    """The exposition text: the ledger's figures, then the instruments — ``processes``' when
    given (every process's, summed in the ledger: ``metrics_ledger``), else every process's of
    this machine in multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` set), else this process's."""
    ledger_registry = CollectorRegistry(auto_describe=False)
    ledger_registry.register(collector)
    process: CollectorRegistry = PROCESS_REGISTRY
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")  # prometheus-client's own switch
    if processes is not None:
        process = CollectorRegistry(auto_describe=False)
        process.register(processes)
    elif path:
        process = CollectorRegistry()
        MultiProcessCollector(process, path)  # type: ignore[no-untyped-call]
    return generate_latest(ledger_registry) + generate_latest(process)
