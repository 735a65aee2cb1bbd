"""What the worker tells the logs and error reports about each job it runs.

:func:`observed_job` binds the job's fields to every line logged while it runs (its handler's
and the libraries' too), and logs one line when it starts and one when it ends with its outcome.
A job that failed for good is also reported to Sentry when that is configured.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from imagematch.error_reporting import report_permanent_failure
from imagematch.log_context import bound, entity_of_payload
from imagematch.models import ErrorKind, Job, JobStatus

__all__ = ["JobObservation", "job_fields", "job_started", "observed_job"]

log = logging.getLogger("imagematch.jobs")


def job_fields(job: Job, worker_id: str | None = None) -> dict[str, Any]:
    """The log fields of ``job`` (run by ``worker_id``): see :func:`observed_job`."""
    return {
        "job_id": job.id,
        "kind": job.kind,
        "source": job.source,
        "entity": entity_of_payload(job.payload),
        "attempt": job.attempts,
        "worker": worker_id,
        "request_id": job.request_id,
    }


class JobObservation:
    """Handed to the worker inside :func:`observed_job`: it says how the job ended. A batched
    job's observation starts when it is claimed (:func:`job_started`); :meth:`bound` gives its
    stages, run apart from one another, the job's log fields."""

    def __init__(self, job: Job, worker_id: str | None = None) -> None:
        self.job = job
        self.status: JobStatus | None = None
        self.started = time.perf_counter()
        self.fields = job_fields(job, worker_id)

    def bound(self) -> AbstractContextManager[None]:
        """The job's fields on every line logged inside the block."""
        return bound(**self.fields)

    def ended(self, status: JobStatus) -> JobStatus:
        self.status = status
        return status

    def failed(self, error: BaseException, error_kind: ErrorKind) -> None:
        """A failed attempt; a permanent one is reported (Sentry) with the job's id and kind."""
        if error_kind == ErrorKind.PERMANENT:
            report_permanent_failure(self.job, error)


def job_started(job: Job, worker_id: str) -> JobObservation:
    """Log the job's start (with its fields); its observation, for :func:`observed_job` later."""
    seen = JobObservation(job, worker_id)
    with seen.bound():
        log.info("job %s started", job.id)
    return seen


@contextmanager
def observed_job(job: Job, worker_id: str, *, seen: JobObservation | None = None) -> Iterator[JobObservation]:
    """Bind ``job_id``, ``kind``, ``source``, ``entity``, ``attempt``, ``worker`` and the job's
    ``request_id`` for the block; log its start (unless ``seen`` started already) and its outcome."""
    seen = seen or job_started(job, worker_id)
    with seen.bound():
        try:
            yield seen
        finally:
            took = (time.perf_counter() - seen.started) * 1000
            outcome = seen.status.value if seen.status else "crashed"
            log.info("job %s ended: %s in %.0f ms", job.id, outcome, took, extra={"outcome": outcome})
