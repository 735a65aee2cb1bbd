"""Process metrics summarized into the ledger, for deployments whose processes cannot be scraped
one by one (Modal: containers come and go behind one URL; README "Metrics on Modal").

With ``IMAGEMATCH_METRICS_VIA_LEDGER_SECONDS`` set, every process runs a :class:`MetricsPublisher`
that writes its instruments' samples to the ledger (one row per process, replaced each time), and
``/metrics`` serves their sum (:class:`LedgerSummedCollector`) instead of its own. Counters and
histogram buckets are sums, so adding processes is exact; a process that stops loses at most its
last interval. Rows of processes silent for a day are folded into one ``retired`` row (sums kept).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from imagematch.config import Settings
from imagematch.ledger import Clock, Ledger
from imagematch.metrics import PROCESS_REGISTRY
from imagematch.worker import new_worker_id

__all__ = ["LedgerSummedCollector", "MetricsPublisher", "process_samples", "start_metrics_publisher"]

log = logging.getLogger(__name__)
RETIRE_AFTER = timedelta(days=1)
_RETIRE_EVERY = 3600.0


def _key(name: str, labels: dict[str, str]) -> str:
    return json.dumps([name, sorted(labels.items())], separators=(",", ":"))


def process_samples() -> dict[str, float]:
    """This process's counter and histogram samples (``*_created`` left out: not summable)."""
    return {
        _key(sample.name, sample.labels): sample.value
        for family in PROCESS_REGISTRY.collect()
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


@dataclass(eq=False)  # a registry keys its collectors by identity
class LedgerSummedCollector(Collector):
    """The instruments of every process that published to the ledger, summed."""

    ledger: Ledger

    def collect(self) -> Iterable[Metric]:
        by_name: dict[str, list[tuple[dict[str, str], float]]] = {}
        for key, value in self.ledger.process_metrics_total().items():
            name, labels = json.loads(key)
            by_name.setdefault(name, []).append((dict(labels), value))
        for family in PROCESS_REGISTRY.collect():  # names, help and types: the same in every process
            summed = Metric(family.name, family.documentation, family.type)
            for suffix in ("", "_total", "_bucket", "_count", "_sum"):
                for labels, value in sorted(by_name.get(family.name + suffix, []), key=_order):
                    summed.add_sample(family.name + suffix, labels, value)
            yield summed


def _order(sample: tuple[dict[str, str], float]) -> tuple[list[tuple[str, str]], float]:
    labels = sample[0]
    le = labels.get("le")
    return sorted((k, v) for k, v in labels.items() if k != "le"), float(le) if le else 0.0


class MetricsPublisher:
    """Writes :func:`process_samples` to the ledger every ``seconds`` from a daemon thread (and
    once more on :meth:`stop`); now and then folds silent processes' rows. Never raises: a
    failed write is logged and tried again next time."""

    def __init__(self, ledger: Ledger, process_id: str, *, seconds: float, clock: Clock) -> None:
        self._ledger = ledger
        self._process_id = process_id
        self._seconds = seconds
        self._clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="metrics-publisher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self.publish()

    def publish(self) -> None:
        samples = process_samples()
        if not samples:  # a process that measured nothing (e.g. the sweep) writes no row
            return
        try:
            self._ledger.put_process_metrics(self._process_id, samples)
        except Exception as exc:
            log.warning("process metrics not published: %s", exc)

    def _run(self) -> None:
        retired_at = -_RETIRE_EVERY
        elapsed = 0.0
        while not self._stop.wait(self._seconds):
            elapsed += self._seconds
            self.publish()
            if elapsed - retired_at >= _RETIRE_EVERY:
                retired_at = elapsed
                try:
                    self._ledger.retire_process_metrics(before=self._clock() - RETIRE_AFTER)
                except Exception as exc:
                    log.warning("retiring old process metrics failed: %s", exc)


def start_metrics_publisher(settings: Settings, ledger: Ledger, clock: Clock) -> MetricsPublisher | None:
    """This process's publisher, started, when ``IMAGEMATCH_METRICS_VIA_LEDGER_SECONDS`` is set."""
    if settings.metrics_via_ledger_seconds <= 0:
        return None
    publisher = MetricsPublisher(
        ledger, new_worker_id(), seconds=settings.metrics_via_ledger_seconds, clock=clock
    )
    publisher.start()
    return publisher
