"""The JSON shapes the HTTP API answers with (and documents in OpenAPI)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from imagematch.labels import Label
from imagematch.models import Job, JobStatus, Prediction

__all__ = ["JobOut", "JobPage", "PredictionPage"]


class JobOut(BaseModel):
    id: int
    status: JobStatus
    kind: str
    source: str
    idempotency_key: str
    attempts: int
    error_kind: str | None
    error: str | None
    next_attempt_at: str | None
    created_at: str
    updated_at: str
    prediction: Prediction | None = None
    label: Label | None = None  # the current label (imagematch.labels); history: GET /v1/feedback

    @classmethod
    def of(cls, job: Job, prediction: Prediction | None = None, label: Label | None = None) -> JobOut:
        return cls(
            **job.public_fields(),
            prediction=prediction,
            label=label,
        )


class JobPage(BaseModel):
    jobs: list[JobOut]
    next_cursor: int | None = Field(None, description="Pass as `cursor` for the next page.")


class PredictionPage(BaseModel):
    predictions: list[Prediction]
    next_cursor: int | None = None
