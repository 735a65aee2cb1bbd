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
import uuid
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from imagematch.dispatch import Dispatch
from imagematch.errors import NoHandlerError
from imagematch.job_kinds import JobAnswer, JobKinds, JobKindSpec
from imagematch.lease_renewal import LeaseRenewer
from imagematch.ledger import Clock, Ledger, utcnow
from imagematch.models import Job, JobStatus
from imagematch.observed_jobs import JobObservation, job_started
from imagematch.retry import RetryPolicy
from imagematch.worker_outcomes import OutcomeRecording

# Dispatch is imagematch.dispatch's, re-exported for one release.
__all__ = ["Dispatch", "LeaseKeeper", "Worker", "WorkerPool", "new_worker_id"]

log = logging.getLogger(__name__)


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class _Work:
    """A claimed job: kind, payload, CPU stage's answer (maybe in the pool), or its early error."""

    job: Job
    seen: JobObservation  # its log fields and start (observed_jobs)
    spec: JobKindSpec[Any] | None = None
    payload: Any = None
    prepared: Future[Any] | Any = None
    error: Exception | None = None


@dataclass
class _Batch:
    jobs: list[Job]
    work: list[_Work] = field(default_factory=list)
    lease: LeaseKeeper | None = None

    def release(self) -> None:
        """Stop renewing the leases (idempotent): jobs left unrecorded go back by the sweep."""
        if self.lease is not None:
            self.lease.stop()


def _caught(call: Callable[[], Any], seen: JobObservation) -> Any:
    """``call()`` with ``seen``'s job's log fields, or the exception it raised (a job's answer)."""
    try:
        with seen.bound():
            return call()
    except Exception as exc:
        return exc


class Worker(OutcomeRecording):
    """Processes jobs in batches of up to ``batch_size``; ``kinds`` says how to run each kind.

    Kinds with stages (the photo kinds) run as a data loader feeds a model: each job's CPU stage
    (load, decode, preprocess) runs in ``pool`` — the next batch's while this one's forward pass
    runs — then the batch is embedded in one forward pass. Every job's outcome is its own (one
    bad photo fails alone); a batch's outcomes are recorded in one ledger round trip.
    """

    def __init__(
        self,
        ledger: Ledger,
        kinds: JobKinds,
        policy: RetryPolicy,
        *,
        worker_id: str | None = None,
        lease_seconds: float = 120.0,
        clock: Clock = utcnow,
        batch_size: int = 1,
        pool: Executor | None = None,
    ) -> None:
        self.ledger = ledger
        self.kinds = kinds
        self.policy = policy
        self.worker_id = worker_id or new_worker_id()
        self.lease_seconds = lease_seconds
        self.clock = clock
        self.batch_size = max(1, batch_size)
        self._pool = pool  # runs the jobs' CPU stages side by side (None: in the worker's thread)
        self._leases = LeaseRenewer(name=f"leases-{self.worker_id}")  # renews its batches' leases

    def run_once(self, *, limit: int | None = None) -> int:
        """Claim up to ``limit`` (default ``batch_size``) due jobs, run them as one batch; how many."""
        jobs = self._claim(limit or self.batch_size)
        self._end(self._start(jobs))
        return len(jobs)

    def process_job_id(self, job_id: int) -> JobStatus | None:
        """Claim and process one dispatched job; ``None`` if it was not claimable (already done,
        taken by another worker, or not due) — so duplicate dispatches are harmless."""
        return self.process_job_ids([job_id])[0]

    def process_job_ids(self, job_ids: list[int]) -> list[JobStatus | None]:
        """:meth:`process_job_id` for each of ``job_ids``, claimed ``batch_size`` at a time (one
        claim and one outcome round trip per batch); each id's status, ``None`` if not claimable."""
        chunks = iter([job_ids[i : i + self.batch_size] for i in range(0, len(job_ids), self.batch_size)])

        def claim() -> list[Job]:
            for ids in chunks:
                if jobs := self.ledger.claim_jobs(ids, self.worker_id, lease_seconds=self.lease_seconds):
                    return jobs
            return []

        statuses = self._run_batches(claim)
        return [statuses.get(job_id) for job_id in job_ids]

    def drain(self, *, max_jobs: int = 10_000, stop: threading.Event | None = None) -> int:
        """Process due jobs until none is left, ``max_jobs`` ran or ``stop`` is set; how many ran."""
        claimed = 0

        def claim() -> list[Job]:
            nonlocal claimed
            if claimed >= max_jobs or (stop and stop.is_set()):
                return []
            jobs = self._claim(min(self.batch_size, max_jobs - claimed))
            claimed += len(jobs)
            return jobs

        self._run_batches(claim)
        return claimed

    def process(self, job: Job) -> JobStatus:
        """Run a job this worker has claimed and record how it ended; never raises but for the
        ledger's errors. Returns ``PROCESSING`` when the lease was lost meanwhile (nothing
        recorded: the job is another worker's now)."""
        return self._end(self._start([job]))[job.id]

    def _claim(self, limit: int) -> list[Job]:
        return self.ledger.claim(self.worker_id, limit=limit, lease_seconds=self.lease_seconds)

    def _run_batches(self, claim: Callable[[], list[Job]]) -> dict[int, JobStatus]:
        """Batches from ``claim`` until it has none; the next is claimed and its CPU stages started
        before this one's forward pass (a data loader's shape), and again after, for the jobs a
        batch created (e.g. a ticket's photos)."""
        statuses: dict[int, JobStatus] = {}
        current = upcoming = self._start(claim())
        try:
            while current.jobs:
                upcoming = self._start(claim())
                statuses.update(self._end(current))
                current = upcoming if upcoming.jobs else self._start(claim())
        finally:  # the ledger failed: stop renewing what is claimed, the sweep takes it back
            current.release()
            upcoming.release()
        return statuses

    def _start(self, jobs: list[Job]) -> _Batch:
        """Take the batch's leases and start each staged job's CPU stage."""
        batch = _Batch(jobs)
        if jobs:
            batch.lease = LeaseKeeper(
                self.ledger,
                [j.id for j in jobs],
                self.worker_id,
                lease_seconds=self.lease_seconds,
                renewer=self._leases,
            )
            batch.lease.start()
            batch.work = [self._begin(job) for job in jobs]
        return batch

    def _begin(self, job: Job) -> _Work:
        seen = job_started(job, self.worker_id)
        try:
            spec = self.kinds.get(job.kind)
            if spec is None:
                raise NoHandlerError(f"no handler for job kind {job.kind!r}")
            work = _Work(job, seen, spec, spec.parse(job))
        except Exception as exc:
            return _Work(job, seen, error=exc)
        if spec.stages is not None:
            stage = partial(spec.stages.prepare, job, work.payload)
            work.prepared = self._pool.submit(_caught, stage, seen) if self._pool else _caught(stage, seen)
        return work

    def _end(self, batch: _Batch) -> dict[int, JobStatus]:
        """Finish the batch (staged jobs together, by their kinds' ``finish``) and record it."""
        answers: dict[int, JobAnswer] = {}
        together: dict[Callable[..., list[JobAnswer]], list[tuple[_Work, Any]]] = {}
        try:
            for work in batch.work:
                if work.error is not None or work.spec is None:
                    answers[work.job.id] = work.error
                elif work.spec.stages is None:
                    answers[work.job.id] = _caught(
                        partial(work.spec.handler, work.job, work.payload), work.seen
                    )
                else:
                    prepared = work.prepared.result() if isinstance(work.prepared, Future) else work.prepared
                    if isinstance(prepared, Exception):
                        answers[work.job.id] = prepared
                    else:
                        together.setdefault(work.spec.stages.finish, []).append((work, prepared))
            for finish, group in together.items():
                answers.update(self._finish_together(finish, group))
        finally:
            batch.release()
        return self._record(batch, answers)

    def _finish_together(
        self, finish: Callable[..., list[JobAnswer]], group: list[tuple[_Work, Any]]
    ) -> dict[int, JobAnswer]:
        """One ``finish`` for the group; if that fails as a whole, each job alone (fails by itself)."""
        try:
            answers = finish([(work.job, work.payload, prepared) for work, prepared in group])
        except Exception as exc:
            if len(group) == 1:
                return {group[0][0].job.id: exc}
            return {
                job_id: a for item in group for job_id, a in self._finish_together(finish, [item]).items()
            }
        return {work.job.id: answer for (work, _), answer in zip(group, answers, strict=True)}


class LeaseKeeper:
    """Renews the leases of a batch's jobs every third of their length, on its worker's
    :class:`~imagematch.lease_renewal.LeaseRenewer` thread.

    A failed renewal (the ledger briefly unreachable) is retried with backoff: a lease must not
    lapse while its job runs, or the sweep hands it to a second worker. A job is lost once the
    ledger says another worker holds it, and all once no renewal succeeded for a whole lease; the
    worker then records nothing for them (handlers with outside effects confirm the lease first).
    """

    def __init__(
        self,
        ledger: Ledger,
        job_ids: list[int],
        worker_id: str,
        *,
        lease_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        renewer: LeaseRenewer | None = None,
    ) -> None:
        self._ledger = ledger
        self._job_ids = job_ids
        self._worker_id = worker_id
        self._lease_seconds = lease_seconds
        self._clock = clock
        self._renewer = renewer or LeaseRenewer(name=f"lease-{job_ids[0]}")
        self._lost: set[int] = set()
        self._stepping = threading.Lock()  # held while a renewal runs: stop() waits it out
        self._stopped = False
        self._last_renewed = clock()
        self._failures = 0

    def start(self) -> None:
        self._last_renewed = self._clock()
        self._renewer.add(self, self._lease_seconds / 3)

    def stop(self) -> None:
        """Renew no more (idempotent); a renewal under way is waited for."""
        self._renewer.remove(self)

    def halt(self) -> None:
        with self._stepping:
            self._stopped = True

    def is_lost(self, job_id: int) -> bool:
        return job_id in self._lost

    def _held(self) -> list[int]:
        return [job_id for job_id in self._job_ids if job_id not in self._lost]

    def renew_step(self) -> float | None:
        """Renew the held leases once; seconds until the next try (sooner after a failure, backing
        off, within the lease), ``None`` when stopped or none is held any more."""
        interval = self._lease_seconds / 3
        with self._stepping:
            if self._stopped:
                return None
            try:
                self._renew_each()
            except Exception as exc:  # a blip: retry sooner, backing off, within the lease
                self._failures += 1
                if self._clock() - self._last_renewed >= self._lease_seconds:
                    log.warning("jobs %s: no lease renewal for a whole lease; giving them up", self._held())
                    self._lost.update(self._job_ids)
                    return None
                delay: float = min(interval, 0.5 * 2.0 ** (self._failures - 1))
                log.warning("jobs %s: lease renewal failed (%s); retry in %.1f s", self._held(), exc, delay)
                return delay
            if not self._held():
                return None
            self._last_renewed, self._failures = self._clock(), 0
            return interval

    def _renew_each(self) -> None:
        for job_id in self._held():
            if not self._ledger.heartbeat(job_id, self._worker_id, lease_seconds=self._lease_seconds):
                log.warning("job %s: another worker holds the lease now; stopping", job_id)
                self._lost.add(job_id)


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
                claimed = worker.drain(stop=self._stop)
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
