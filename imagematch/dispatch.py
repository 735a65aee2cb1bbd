"""Dispatch: make workers look at these persisted jobs now.

Locally a dispatch wakes the worker pool's threads; on Modal it spawns a function call. It is only
ever a hint: the jobs are already in the ledger, and the sweep finds any a lost dispatch missed.
So a dispatch that fails is logged, never raised to the caller (a webhook still answers 202).

* :data:`Dispatch` — the one type: told a list of job ids;
* :class:`Dispatchers` — the fan-out a process keeps (the pool, a spawn, …);
* :class:`RoutedDispatch` — the routed variant: jobs whose kind needs the embedder go one way
  (the GPU), the others another (the CPU).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Protocol

from imagematch.models import Job

__all__ = ["Dispatch", "Dispatchers", "KindNeeds", "RoutedDispatch", "route_by_embedder_need"]

log = logging.getLogger(__name__)

Dispatch = Callable[[list[int]], None]


class KindNeeds(Protocol):
    """What routing needs to know of the job kinds (:class:`imagematch.job_kinds.JobKinds`)."""

    def needs_embedder(self, kind: str) -> bool | None: ...


class JobLookup(Protocol):
    def get_job(self, job_id: int) -> Job | None: ...


class Dispatchers:
    """Every dispatch a process has, told the same ids in turn; one that raises is logged and the
    others still run (a dispatch is a hint, see the module docstring)."""

    def __init__(self, dispatchers: Iterable[Dispatch] = ()) -> None:
        self._dispatchers = list(dispatchers)

    def add(self, dispatch: Dispatch) -> None:
        self._dispatchers.append(dispatch)

    def __len__(self) -> int:
        return len(self._dispatchers)

    def __call__(self, job_ids: list[int]) -> None:
        if not job_ids:
            return
        for dispatch in self._dispatchers:
            try:
                dispatch(job_ids)
            except Exception:
                log.exception("dispatch of %d jobs failed; the sweep will pick them up", len(job_ids))


def route_by_embedder_need(
    ledger: JobLookup, kinds: KindNeeds, job_ids: list[int]
) -> tuple[list[int], list[int]]:
    """Split ``job_ids`` into (need the embedder, need none) by their kind. Unknown jobs and
    kinds go with the embedder, whose workers record what happened to them."""
    with_embedder: list[int] = []
    without: list[int] = []
    for job_id in job_ids:
        job = ledger.get_job(job_id)
        needs = kinds.needs_embedder(job.kind) if job else None
        (without if needs is False else with_embedder).append(job_id)
    return with_embedder, without


class RoutedDispatch:
    """A dispatch that sends each job where its kind can run: ``to_embedder`` for kinds that
    embed, ``to_cpu`` for the rest. ``before`` runs first (on Modal: commit the uploads this
    container wrote, so the workers see them)."""

    def __init__(
        self,
        ledger: JobLookup,
        kinds: KindNeeds,
        *,
        to_embedder: Dispatch,
        to_cpu: Dispatch,
        before: Callable[[], object] | None = None,
    ) -> None:
        self._ledger = ledger
        self._kinds = kinds
        self._to_embedder = to_embedder
        self._to_cpu = to_cpu
        self._before = before

    def __call__(self, job_ids: list[int]) -> None:
        if not job_ids:
            return
        if self._before is not None:
            self._before()
        with_embedder, without = route_by_embedder_need(self._ledger, self._kinds, job_ids)
        if with_embedder:
            self._to_embedder(with_embedder)
        if without:
            self._to_cpu(without)
