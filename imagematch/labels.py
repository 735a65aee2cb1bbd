"""Labels: what a person said about one answer — this product, another one, not in the catalog, or
an unusable photo. Every backend of the ledger stores them (table ``labels``) with their history:
a later label for the same job replaces the earlier one, whose row is kept with ``ended_at`` set.

A ``confirmed`` or ``corrected`` label is what makes a photo a *learned reference* of its product
(see :mod:`imagematch.learning`).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel, Field, model_validator

__all__ = ["ENROLLING_VERDICTS", "Label", "LabelStore", "NewLabel", "Verdict"]


class Verdict(StrEnum):
    CONFIRMED = "confirmed"  # our top answer (or one of the top-5) is the product
    CORRECTED = "corrected"  # the photo shows another catalog product
    NOT_IN_CATALOG = "not_in_catalog"  # the product is not in the catalog at all
    UNUSABLE = "unusable"  # no product can be told from the photo


# Verdicts that name the photo's product: such a photo becomes a learned reference.
ENROLLING_VERDICTS = frozenset({Verdict.CONFIRMED, Verdict.CORRECTED})


class NewLabel(BaseModel):
    """A label to store. ``given_by`` is who gave it (the API token's name, or the console user's);
    ``agent_name``/``agent_email`` the person an integration (a Zendesk app) says clicked.
    ``source``, ``image_sha256``, ``predicted_rank``, ``top_score`` and ``category`` are copied from
    the job and its answer when the label is given, so live accuracy is a scan of this table."""

    job_id: int
    verdict: Verdict
    product_id: str | None = None
    comment: str | None = Field(None, max_length=2000)
    given_by: str = "anonymous"
    agent_name: str | None = Field(None, max_length=200)
    agent_email: str | None = Field(None, max_length=320)
    source: str = ""
    image_sha256: str | None = None
    predicted_rank: int | None = None  # where product_id was in our answer (1 = top-1); None: absent
    top_score: float | None = None  # our top-1 score for the photo
    category: str = ""  # the labelled product's category, at labelling time

    @model_validator(mode="after")
    def _product_when_named(self) -> NewLabel:
        if self.verdict in ENROLLING_VERDICTS and not self.product_id:
            raise ValueError(f"product_id is required for a {self.verdict.value!r} label")
        if self.verdict not in ENROLLING_VERDICTS and self.product_id:
            raise ValueError(f"a {self.verdict.value!r} label names no product")
        return self

    def same_as(self, other: NewLabel) -> bool:
        """Whether ``other`` says the same thing (repeating a label is idempotent)."""
        return (self.verdict, self.product_id, self.comment or None) == (
            other.verdict,
            other.product_id,
            other.comment or None,
        )


class Label(NewLabel):
    """A stored label. ``ended_at``/``ended_by``: when and by whom it stopped being the job's
    current label (a later label replaced it, or it was retracted); ``None`` while current."""

    id: int
    created_at: datetime
    ended_at: datetime | None = None
    ended_by: str | None = None

    @property
    def current(self) -> bool:
        return self.ended_at is None

    @property
    def enrols(self) -> bool:
        """Whether this label makes its photo a learned reference (while current)."""
        return self.current and self.verdict in ENROLLING_VERDICTS


class LabelStore(Protocol):
    """The ledger's labels (every backend passes the contract suite)."""

    def put_label(self, label: NewLabel) -> tuple[Label, bool]:
        """Make ``label`` the job's current label; returns ``(label, created)``. A label that says
        the same as the current one returns the current one with ``created=False``; any other
        ends the current one (kept as history) in the same transaction."""
        ...

    def retract_label(self, job_id: int, *, by: str) -> Label | None:
        """End the job's current label; returns it as ended (``None``: the job had none)."""
        ...

    def current_label(self, job_id: int) -> Label | None: ...

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
        """Labels oldest first (by id), filtered; ``since`` compares ``created_at``; pass the last
        id seen as ``after_id`` for the next page. ``current_only=False`` includes history."""
        ...
