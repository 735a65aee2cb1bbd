"""Workers: claim due jobs from the ledger, run their handler under a lease, record the outcome.

Nothing here keeps work in memory only: a job is claimed in the ledger before it runs and its
outcome is written there after, so a killed worker loses nothing — the sweep re-queues its jobs
when their lease expires.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from imagematch.dispatch import Dispatch
from imagematch.errors import NoHandlerError, SubjectGoneError
from imagematch.job_kinds import JobKinds
from imagematch.ledger import Clock, Ledger, utcnow
from imagematch.models import ImageJob, JobStatus
from imagematch.retry import RetryPolicy

# Dispatch is imagematch.dispatch's, re-exported for one release.
__all__ = ["Dispatch", "LeaseKeeper", "Worker", "WorkerPool", "new_worker_id"]

log = logging.getLogger(__name__)


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _error_summary(error: BaseException) -> str:
    """The message, plus a short traceback for unexpected errors (bugs should be findable)."""
    message = f"{type(error).__name__}: {error}"
    if type(error).__module__.startswith("imagematch"):
        return message[:2000]
    frames = traceback.format_tb(error.__traceback__)[-3:]
    return (message + "\n" + "".join(frames))[:4000]


class Worker:
    """Processes jobs one at a time; ``kinds`` says how to run each job kind."""

    def __init__(
        self,
        ledger: Ledger,
        kinds: JobKinds,
        policy: RetryPolicy,
        *,
        worker_id: str | None = None,
        lease_seconds: float = 120.0,
        clock: Clock = utcnow,
    ) -> None:
        self.ledger = ledger
        self.kinds = kinds
        self.policy = policy
        self.worker_id = worker_id or new_worker_id()
        self.lease_seconds = lease_seconds
        self.clock = clock

    def run_once(self, *, limit: int = 1) -> int:
        """Claim up to ``limit`` due jobs and process them; returns how many were claimed."""
        jobs = self.ledger.claim(self.worker_id, limit=limit, lease_seconds=self.lease_seconds)
        for job in jobs:
            self.process(job)
        return len(jobs)

    def process_job_id(self, job_id: int) -> JobStatus | None:
        """Claim and process one dispatched job; ``None`` if it was not claimable (already done,
        taken by another worker, or not due) — so duplicate dispatches are harmless."""
        job = self.ledger.claim_job(job_id, self.worker_id, lease_seconds=self.lease_seconds)
        return self.process(job) if job else None

    def drain(self, *, max_jobs: int = 10_000) -> int:
        """Process due jobs until none is left (or ``max_jobs``); returns how many ran."""
        done = 0
        while done < max_jobs and (claimed := self.run_once()):
            done += claimed
        return done

    def process(self, job: ImageJob) -> JobStatus:
        """Run a job this worker has claimed and record how it ended; never raises. Returns
        ``PROCESSING`` when the lease was lost meanwhile (nothing recorded: the job is another
        worker's now)."""
        spec = self.kinds.get(job.kind)
        try:
            if spec is None:
                raise NoHandlerError(f"no handler for job kind {job.kind!r}")
            with self._lease(job) as lease:
                prediction = spec.run(job)
            if lease.lost.is_set():
                log.warning("job %s: lease lost while it ran; its outcome is left to the new holder", job.id)
                return JobStatus.PROCESSING
        except SubjectGoneError as exc:
            self.ledger.skip(job.id, self.worker_id, reason=str(exc))
            return JobStatus.SKIPPED
        except Exception as exc:
            decision = self.policy.decide(attempts=job.attempts, error=exc, now=self.clock())
            log.warning("job %s attempt %s failed (%s): %s", job.id, job.attempts, decision.kind, exc)
            self.ledger.fail(
                job.id,
                self.worker_id,
                kind=decision.kind,
                error=_error_summary(exc),
                retry_at=decision.retry_at,
            )
            return JobStatus.FAILED
        if not self.ledger.complete(job.id, self.worker_id, prediction):
            log.warning("job %s: lease lost before completion; its result was discarded", job.id)
        return JobStatus.COMPLETE

    @contextmanager
    def _lease(self, job: ImageJob) -> Iterator[LeaseKeeper]:
        """Renew the lease while the handler runs (see :class:`LeaseKeeper`)."""
        keeper = LeaseKeeper(self.ledger, job.id, self.worker_id, lease_seconds=self.lease_seconds)
        keeper.start()
        try:
            yield keeper
        finally:
            keeper.stop()


class LeaseKeeper:
    """Renews one job's lease every third of its length from a background thread.

    A failed renewal (the ledger briefly unreachable) is retried with backoff, not given up: the
    lease must not lapse while the job runs, or the sweep hands it to a second worker. ``lost``
    is set once the ledger says another worker holds the job, or once no renewal succeeded for a
    whole lease; the worker then records nothing for the job (Python cannot stop the handler's
    thread; handlers with outside effects, such as posting a note, confirm the lease first).
    """

    def __init__(
        self,
        ledger: Ledger,
        job_id: int,
        worker_id: str,
        *,
        lease_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ledger = ledger
        self._job_id = job_id
        self._worker_id = worker_id
        self._lease_seconds = lease_seconds
        self._clock = clock
        self._stop = threading.Event()
        self.lost = threading.Event()
        self._thread = threading.Thread(target=self._renew, name=f"lease-{job_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _renew(self) -> None:
        interval = self._lease_seconds / 3
        last_renewed = self._clock()
        delay, failures = interval, 0
        while not self._stop.wait(delay):
            try:
                held = self._ledger.heartbeat(
                    self._job_id, self._worker_id, lease_seconds=self._lease_seconds
                )
            except Exception as exc:  # a blip: retry sooner, backing off, within the lease
                failures += 1
                if self._clock() - last_renewed >= self._lease_seconds:
                    log.warning("job %s: no lease renewal for a whole lease; giving the job up", self._job_id)
                    self.lost.set()
                    return
                delay = min(interval, 0.5 * 2 ** (failures - 1))
                log.warning("job %s: lease renewal failed (%s); retrying in %.1f s", self._job_id, exc, delay)
                continue
            if not held:
                log.warning("job %s: another worker holds the lease now; stopping", self._job_id)
                self.lost.set()
                return
            last_renewed, delay, failures = self._clock(), interval, 0


class WorkerPool:
    """``size`` worker threads polling the ledger, plus a sweeper thread. For the local service."""

    def __init__(
        self,
        make_worker: Callable[[], Worker],
        *,
        size: int,
        poll_seconds: float,
        sweep: Callable[[], object],
        sweep_seconds: float = 30.0,
    ) -> None:
        self._make_worker = make_worker
        self._size = size
        self._poll_seconds = poll_seconds
        self._sweep = sweep
        self._sweep_seconds = sweep_seconds
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._wake = threading.Event()  # set by dispatch() so idle workers claim at once

    def dispatch(self, job_ids: list[int]) -> None:
        """Wake idle workers: jobs were just persisted (they claim whatever is due)."""
        if job_ids:
            self._wake.set()

    def start(self) -> None:
        for n in range(self._size):
            thread = threading.Thread(target=self._work, name=f"worker-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)
        if self._size:
            sweeper = threading.Thread(target=self._sweep_loop, name="sweeper", daemon=True)
            sweeper.start()
            self._threads.append(sweeper)

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    def _work(self) -> None:
        worker = self._make_worker()
        while not self._stop.is_set():
            try:
                claimed = worker.run_once()
            except Exception:  # the ledger itself is unreachable: wait and try again
                log.exception("worker %s could not claim jobs", worker.worker_id)
                claimed = 0
            if not claimed:
                self._wake.wait(self._poll_seconds)
                self._wake.clear()

    def _sweep_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._sweep()
            except Exception:
                log.exception("sweep failed")
            self._stop.wait(self._sweep_seconds)
