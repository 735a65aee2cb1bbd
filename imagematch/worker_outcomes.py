"""How a worker records a batch's outcomes: one ledger round trip, and each job's end logged and
observed (``observed_jobs``: its log fields, its outcome line, a permanent failure reported) — a
mixin of :class:`imagematch.worker.Worker`, kept apart so that file stays short.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from imagematch.errors import SubjectGoneError
from imagematch.job_kinds import JobAnswer
from imagematch.ledger import Clock, JobOutcome, Ledger
from imagematch.metrics import timed_batch_stage
from imagematch.models import ErrorKind, Job, JobStatus
from imagematch.observed_jobs import observed_job
from imagematch.retry import RetryPolicy

if TYPE_CHECKING:
    from imagematch.observed_jobs import JobObservation
    from imagematch.worker import LeaseKeeper

__all__ = ["OutcomeRecording"]

log = logging.getLogger("imagematch.worker")


class _Work(Protocol):
    job: Job
    seen: JobObservation


class _Batch(Protocol):
    @property
    def jobs(self) -> list[Job]: ...
    @property
    def work(self) -> Sequence[_Work]: ...
    @property
    def lease(self) -> LeaseKeeper | None: ...


def _error_summary(error: BaseException) -> str:
    """The message, plus a short traceback for unexpected errors (bugs should be findable)."""
    message = f"{type(error).__name__}: {error}"
    if type(error).__module__.startswith("imagematch"):
        return message[:2000]
    frames = traceback.format_tb(error.__traceback__)[-3:]
    return (message + "\n" + "".join(frames))[:4000]


class OutcomeRecording:
    ledger: Ledger
    policy: RetryPolicy
    clock: Clock
    worker_id: str

    def _record(self, batch: _Batch, answers: dict[int, JobAnswer]) -> dict[int, JobStatus]:
        """Record each job's outcome in one round trip (a lost lease: nothing, ``PROCESSING``);
        each job's end is logged (``observed_jobs``: "crashed" if the ledger failed)."""
        statuses: dict[int, JobStatus] = {}
        ended: dict[int, JobStatus] = {}
        try:
            judged = [self._judged(work, answers[work.job.id], batch.lease, statuses) for work in batch.work]
            outcomes = [outcome for outcome in judged if outcome is not None]
            kinds = [work.job.kind for work in batch.work if statuses[work.job.id] == JobStatus.COMPLETE]
            with timed_batch_stage("write", kinds):  # the predictions' write, each job's share
                recorded = self.ledger.finish_many(self.worker_id, outcomes) if outcomes else []
            for outcome, done in zip(outcomes, recorded, strict=True):
                if not done:
                    log.warning(
                        "job %s: lease lost before its outcome was recorded; discarded", outcome.job_id
                    )
            ended = statuses
        finally:
            for work in batch.work:
                with observed_job(work.job, self.worker_id, seen=work.seen) as seen:
                    if work.job.id in ended:
                        seen.ended(ended[work.job.id])
        return statuses

    def _judged(
        self, work: _Work, answer: JobAnswer, lease: LeaseKeeper | None, statuses: dict[int, JobStatus]
    ) -> JobOutcome | None:
        """The job's outcome (``None``: its lease was lost), its status put in ``statuses``."""
        job = work.job
        with work.seen.bound():
            if lease is not None and lease.is_lost(job.id):
                log.warning("job %s: lease lost while it ran; its outcome is left to the new holder", job.id)
                statuses[job.id] = JobStatus.PROCESSING
                return None
            outcome = self._outcome(job, answer, work.seen.failed)
        statuses[job.id] = outcome.status
        return outcome

    def _outcome(
        self, job: Job, answer: JobAnswer, failed: Callable[[BaseException, ErrorKind], None]
    ) -> JobOutcome:
        if isinstance(answer, SubjectGoneError):
            return JobOutcome(job.id, JobStatus.SKIPPED, error=str(answer))
        if isinstance(answer, Exception):
            decision = self.policy.decide(attempts=job.attempts, error=answer, now=self.clock())
            log.warning(
                "job %s attempt %s failed (%s): %s", job.id, job.attempts, decision.error_kind, answer
            )
            failed(answer, decision.error_kind)  # a permanent failure is reported (Sentry)
            return JobOutcome(
                job.id,
                JobStatus.FAILED,
                error_kind=decision.error_kind,
                error=_error_summary(answer),
                retry_at=decision.retry_at,
            )
        return JobOutcome(job.id, JobStatus.COMPLETE, prediction=answer)
