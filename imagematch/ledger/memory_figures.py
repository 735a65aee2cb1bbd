"""Parts of the in-memory ledger kept apart (its module is at the size limit): the figures
``/metrics`` reads and the process metrics summarized into the ledger."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable
from datetime import datetime

from imagematch.ledger.base import Clock, JobAttempt, JobFigures, OutcomeCount
from imagematch.models import Job, JobStatus

__all__ = ["MemoryFigures"]


class MemoryFigures:
    """Mixed into ``MemoryLedger``, whose state it reads under its lock."""

    _lock: threading.RLock
    _clock: Clock
    _jobs: dict[int, Job]
    _attempts: dict[int, list[JobAttempt]]
    _process_metrics: dict[str, tuple[dict[str, float], datetime]]

    def job_figures(self) -> JobFigures:
        with self._lock:
            counts = Counter(
                (job.kind, job.source, a.outcome, a.error_kind)
                for job in self._jobs.values()
                for a in self._attempts.get(job.id, [])
            )
            pending = [j.updated_at for j in self._jobs.values() if j.status == JobStatus.PENDING]
        outcomes = [
            OutcomeCount(kind=k, source=s, outcome=o, error_kind=e, count=n)
            for (k, s, o, e), n in counts.items()
        ]
        return JobFigures(outcomes=outcomes, oldest_pending_since=min(pending, default=None))

    def put_process_metrics(self, process_id: str, samples: dict[str, float]) -> None:
        with self._lock:
            self._process_metrics[process_id] = (dict(samples), self._clock())

    def process_metrics_total(self) -> dict[str, float]:
        with self._lock:
            return _summed(samples for samples, _ in self._process_metrics.values())

    def retire_process_metrics(self, *, before: datetime) -> int:
        with self._lock:
            old = [p for p, (_, at) in self._process_metrics.items() if at < before and p != "retired"]
            if not old:
                return 0
            kept = [self._process_metrics.pop(p)[0] for p in old]
            retired = self._process_metrics.get("retired", ({}, self._clock()))[0]
            self._process_metrics["retired"] = (_summed([retired, *kept]), self._clock())
            return len(old)


def _summed(samples: Iterable[dict[str, float]]) -> dict[str, float]:
    total: Counter[str] = Counter()
    for one in samples:
        total.update(one)
    return dict(total)
