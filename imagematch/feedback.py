"""Feedback on an answer: the one operation behind ``POST``/``DELETE /v1/jobs/{id}/feedback``, the
console's buttons and ``imagematch eval --learn-from``.

:class:`Feedback` checks the job and the product, copies what live accuracy needs from the job and
its answer onto the label, stores it in the ledger and tells its listeners (the learning loop,
:mod:`imagematch.learning`) which label ended and which began.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field

from imagematch.job_kinds import JobKinds, PhotoPayload
from imagematch.labels import ENROLLING_VERDICTS, Label, NewLabel, Verdict
from imagematch.ledger import Ledger
from imagematch.models import Job, Prediction, Product

__all__ = [
    "AgentIn",
    "Feedback",
    "FeedbackIn",
    "JobWithoutPhotoError",
    "LabelChange",
    "UnknownJobError",
    "UnknownProductError",
]

log = logging.getLogger(__name__)

# Told (job, label that ended or None, label now current or None) after every change of a job's
# label. Must be idempotent; an exception is logged, never undoes the label.
LabelChange = Callable[[Job, Label | None, Label | None], None]


class UnknownJobError(LookupError):
    """No such job (HTTP 404)."""


class JobWithoutPhotoError(ValueError):
    """The job has no photo to label: a ticket scan, a note, a catalog event (HTTP 409)."""


class UnknownProductError(ValueError):
    """The label names a product the served catalog does not hold (HTTP 422)."""


class AgentIn(BaseModel):
    """The person an integration (e.g. a Zendesk app) says gave the label."""

    name: str | None = Field(None, max_length=200)
    email: str | None = Field(None, max_length=320)


class FeedbackIn(BaseModel):
    """The body of ``POST /v1/jobs/{id}/feedback``. ``product_id`` is required for ``confirmed``
    and ``corrected``, and must be a product of the served catalog."""

    verdict: Verdict
    product_id: str | None = Field(None, min_length=1, max_length=512)
    comment: str | None = Field(None, max_length=2000)
    agent: AgentIn | None = None


class Feedback:
    """Gives and retracts labels (see the module docstring)."""

    def __init__(
        self,
        ledger: Ledger,
        kinds: JobKinds,
        catalog: Callable[[], dict[str, Product]],
    ) -> None:
        """``catalog``: the served catalog's products by id (deleted products left out)."""
        self._ledger = ledger
        self._kinds = kinds
        self._catalog = catalog
        self._listeners: list[LabelChange] = []

    def on_change(self, listener: LabelChange) -> None:
        self._listeners.append(listener)

    def photo_job(self, job_id: int) -> Job:
        """The job, if it has a photo. Raises UnknownJobError, JobWithoutPhotoError."""
        job = self._ledger.get_job(job_id)
        if job is None:
            raise UnknownJobError(f"no job {job_id}")
        spec = self._kinds.get(job.kind)
        payload = spec.payload if spec else None
        if not (isinstance(payload, type) and issubclass(payload, PhotoPayload)):
            raise JobWithoutPhotoError(f"job {job_id} is a {job.kind} job: it has no photo to label")
        return job

    def give(self, job_id: int, feedback: FeedbackIn, *, given_by: str) -> tuple[Label, bool]:
        """Make ``feedback`` the job's current label; ``(label, created)`` (``False``: the same
        label was current already). Raises UnknownJobError, JobWithoutPhotoError,
        UnknownProductError, and ValueError for a product missing or given where none is named."""
        job = self.photo_job(job_id)
        prediction = self._ledger.get_prediction(job_id)
        category = ""
        if feedback.verdict in ENROLLING_VERDICTS and feedback.product_id is not None:
            product = self._catalog().get(feedback.product_id)
            if product is None:
                raise UnknownProductError(f"product {feedback.product_id!r} is not in the served catalog")
            category = product.category
        label = NewLabel(
            job_id=job_id,
            verdict=feedback.verdict,
            product_id=feedback.product_id,
            comment=feedback.comment or None,
            given_by=given_by,
            agent_name=feedback.agent.name if feedback.agent else None,
            agent_email=feedback.agent.email if feedback.agent else None,
            source=job.source,
            category=category,
            **_answer_facts(prediction, feedback.product_id),
        )
        before = self._ledger.current_label(job_id)
        stored, created = self._ledger.put_label(label)
        if created:
            self._tell(job, before, stored)
        return stored, created

    def retract(self, job_id: int, *, by: str) -> Label | None:
        """End the job's current label; returns it (``None``: it had none). Raises
        UnknownJobError, JobWithoutPhotoError."""
        job = self.photo_job(job_id)
        ended = self._ledger.retract_label(job_id, by=by)
        if ended is not None:
            self._tell(job, ended, None)
        return ended

    def _tell(self, job: Job, before: Label | None, after: Label | None) -> None:
        for listener in self._listeners:
            try:
                listener(job, before, after)
            except Exception:  # the label is stored; the listener's own retry path catches up
                log.exception("label change listener failed for job %s", job.id)


def _answer_facts(prediction: Prediction | None, product_id: str | None) -> dict[str, Any]:
    """What the label keeps of our answer: the photo's digest, where the labelled product was
    ranked (1 = our top-1; ``None``: not in our answer) and our top-1 score."""
    if prediction is None:
        return {}
    ranks = [n for n, match in enumerate(prediction.matches, start=1) if match.product_id == product_id]
    return {
        "image_sha256": prediction.image_sha256,
        "predicted_rank": ranks[0] if ranks and product_id else None,
        "top_score": prediction.best_score,
    }
