"""The in-memory ledger's labels (a mixin of :class:`~imagematch.ledger.memory.MemoryLedger`)."""

from __future__ import annotations

import threading
from datetime import datetime

from imagematch.labels import Label, NewLabel, Verdict
from imagematch.ledger.base import Clock

__all__ = ["MemoryLabels"]


class MemoryLabels:
    _clock: Clock
    _lock: threading.RLock

    @property
    def _label_rows(self) -> dict[int, Label]:
        rows: dict[int, Label] | None = getattr(self, "_labels_by_id", None)
        if rows is None:
            rows = {}
            self._labels_by_id: dict[int, Label] = rows
        return rows

    def _current(self, job_id: int) -> Label | None:
        found = [r for r in self._label_rows.values() if r.job_id == job_id and r.ended_at is None]
        return found[-1] if found else None

    def put_label(self, label: NewLabel) -> tuple[Label, bool]:
        with self._lock:
            current = self._current(label.job_id)
            if current is not None and current.same_as(label):
                return current, False
            now = self._clock()
            if current is not None:
                self._end(current, now, label.given_by)
            stored = Label(**label.model_dump(), id=len(self._label_rows) + 1, created_at=now)
            self._label_rows[stored.id] = stored
            return stored, True

    def _end(self, label: Label, now: datetime, by: str) -> Label:
        ended = label.model_copy(update={"ended_at": now, "ended_by": by})
        self._label_rows[label.id] = ended
        return ended

    def retract_label(self, job_id: int, *, by: str) -> Label | None:
        with self._lock:
            current = self._current(job_id)
            return None if current is None else self._end(current, self._clock(), by)

    def current_label(self, job_id: int) -> Label | None:
        with self._lock:
            return self._current(job_id)

    def list_labels(
        self,
        *,
        since: datetime | None = None,
        verdict: Verdict | None = None,
        job_id: int | None = None,
        product_id: str | None = None,
        image_sha256: str | None = None,
        current_only: bool = True,
        after_id: int | None = None,
        limit: int = 1000,
    ) -> list[Label]:
        with self._lock:
            rows = sorted(self._label_rows.values(), key=lambda r: r.id)
        return [
            r
            for r in rows
            if (since is None or r.created_at >= since)
            and (verdict is None or r.verdict == verdict)
            and (job_id is None or r.job_id == job_id)
            and (product_id is None or r.product_id == product_id)
            and (image_sha256 is None or r.image_sha256 == image_sha256)
            and (not current_only or r.ended_at is None)
            and (after_id is None or r.id > after_id)
        ][:limit]
