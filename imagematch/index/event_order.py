"""Catalog event order: the newest event applied per product, and the products deleted.

Events carry a ``sequence`` (the ledger id of their job: arrival order). An event at or below the
sequence recorded for its product is stale and skipped, so updates applied in any order end in
the state of the last one, and an update overtaken by a delete never brings the product back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from imagematch.index.change_log import CatalogChange, ChangeKind

__all__ = ["EventOrder"]


@dataclass
class EventOrder:
    """Per product, the sequence of the newest event applied; ``deleted`` holds the tombstones
    (product id → when it was deleted) of products whose newest event is a delete."""

    sequences: dict[str, int] = field(default_factory=dict)
    deleted: dict[str, datetime] = field(default_factory=dict)
    last_change: tuple[int, datetime] | None = None

    def is_stale(self, product_id: str, sequence: int) -> bool:
        """Whether an event numbered ``sequence`` is no newer than the one recorded for the product."""
        return sequence <= self.sequences.get(product_id, 0)

    def record(self, change: CatalogChange) -> bool:
        """Record ``change`` unless it is stale; returns whether it was recorded. A change of
        learned references is not a catalog event: it is never recorded."""
        if change.kind is ChangeKind.LEARNED:
            return False
        if self.is_stale(change.product_id, change.sequence):
            return False
        self.sequences[change.product_id] = change.sequence
        if change.kind is ChangeKind.DELETE:
            self.deleted[change.product_id] = change.at
        else:
            self.deleted.pop(change.product_id, None)
        if self.last_change is None or change.at >= self.last_change[1]:
            self.last_change = (change.sequence, change.at)
        return True

    def describe_last_change(self, now: datetime) -> dict[str, Any] | None:
        """The newest event applied, for ``GET /v1/stats``: its sequence, when, and how long ago."""
        if self.last_change is None:
            return None
        sequence, at = self.last_change
        return {
            "sequence": sequence,
            "applied_at": at.isoformat(),
            "age_seconds": round((now - at).total_seconds(), 1),
        }

    def to_meta(self) -> dict[str, Any]:
        """The JSON-able form kept in a snapshot's ``meta.json``."""
        last = self.last_change
        return {
            "sequences": self.sequences,
            "deleted": {pid: at.isoformat() for pid, at in self.deleted.items()},
            "last_change": [last[0], last[1].isoformat()] if last else None,
        }

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> EventOrder:
        """Read what :meth:`to_meta` wrote (``meta`` may hold other keys too)."""
        last = meta.get("last_change")
        return cls(
            sequences={pid: int(seq) for pid, seq in meta.get("sequences", {}).items()},
            deleted={pid: datetime.fromisoformat(at) for pid, at in meta.get("deleted", {}).items()},
            last_change=(int(last[0]), datetime.fromisoformat(last[1])) if last else None,
        )
