"""Job kinds as types: each kind declares its payload model, its handler and whether it needs the
embedder (the model). The worker validates a job's stored payload against its kind's model before
the handler runs, so handlers read ``payload.ticket_id``, never ``job.payload["ticket_id"]``.

Kinds are registered at the composition root (:func:`imagematch.app.build_services`) by the core
and by each source, so adding a source never edits this module: the registry is the union of
payload types, keyed (discriminated) by the job's ``kind``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from imagematch.entities import ENTITY_ID_PATTERN, ENTITY_TYPE_PATTERN, EntityRef
from imagematch.errors import PermanentError
from imagematch.models import Job, JobKind, NewJob, NewPrediction
from imagematch.quality import QualityReport

__all__ = [
    "BLOB_PREFIX",
    "JobAnswer",
    "JobKindSpec",
    "JobKinds",
    "JobPayload",
    "JobStages",
    "MatchImagePayload",
    "PhotoPayload",
    "PreparedPhoto",
    "image_ref_for_blob",
    "new_job",
]

BLOB_PREFIX = "blob:"  # a photo stored in the blob store: "blob:<sha256>"

P = TypeVar("P")


def image_ref_for_blob(digest: str) -> str:
    return f"{BLOB_PREFIX}{digest}"


class JobPayload(BaseModel):
    """Base of every job payload: ``KIND`` names the job kind it belongs to. Unknown stored fields
    are ignored, so a payload written by a newer version still loads."""

    model_config = ConfigDict(extra="ignore")
    KIND: ClassVar[str]


class PhotoPayload(JobPayload):
    """A payload that carries one photo to match. ``image`` is where its bytes are: a stored blob
    (``blob:<sha256>``) or a URL; the kind's loader knows how to read it."""

    image: str
    file_name: str | None = None
    # The entity the photo belongs to (a ticket, a listing), given at submit time: its matches
    # are aggregated over its photos (imagematch.entities).
    entity_type: str | None = Field(None, pattern=ENTITY_TYPE_PATTERN)
    entity_id: str | None = Field(None, pattern=ENTITY_ID_PATTERN)

    def entity(self) -> EntityRef | None:
        """The entity this photo belongs to, if any."""
        if self.entity_type is None or self.entity_id is None:
            return None
        return EntityRef(entity_type=self.entity_type, entity_id=self.entity_id)

    @property
    def image_url(self) -> str | None:
        """The photo's URL, or ``None`` when it was uploaded (a stored blob)."""
        return None if self.image.startswith(BLOB_PREFIX) else self.image

    def references(self) -> dict[str, str]:
        """What the source calls this photo (e.g. a ticket and attachment id), stored with the
        prediction for lookups. None for plain uploads."""
        return {}


class MatchImagePayload(PhotoPayload):
    """``match_image``: a photo uploaded to, or named by URL at, ``POST /v1/images`` (or the CLI)."""

    KIND: ClassVar[str] = JobKind.MATCH_IMAGE


def new_job(
    payload: JobPayload, *, source: str, idempotency_key: str, metadata: dict[str, Any] | None = None
) -> NewJob:
    """The job to persist for ``payload`` (its kind comes from the payload's type)."""
    return NewJob(
        kind=payload.KIND,
        source=source,
        idempotency_key=idempotency_key,
        payload=payload.model_dump(mode="json", exclude_none=True),
        metadata=metadata or {},
    )


# One job's answer from a batch: its prediction (or None), or the exception that job ended with.
JobAnswer = NewPrediction | None | Exception


@dataclass(frozen=True)
class PreparedPhoto:
    """A photo job's CPU work, done before the forward pass (``PhotoMatching.prepare_photo``):
    the photo's digest, its quality verdict, the model's input and how long all that took."""

    digest: str
    quality: QualityReport
    model_input: Any  # the embedder's prepared tensor (StagedEmbedder), else the decoded image
    prepare_ms: float


@dataclass(frozen=True)
class JobStages(Generic[P]):
    """How a kind's jobs run in batches (a worker's data-loader shape): ``prepare`` does one job's
    CPU work (load, decode, preprocess; thread-safe, run in the worker's pool while the model runs
    the previous batch; raises as a handler does), then ``finish`` takes a batch of prepared jobs
    together (one forward pass) and answers each. Kinds with the same ``finish`` share batches."""

    prepare: Callable[[Job, P], Any]
    finish: Callable[[list[tuple[Job, P, Any]]], list[JobAnswer]]


@dataclass(frozen=True)
class JobKindSpec(Generic[P]):
    """One job kind: how to read its payload, what runs it, and whether that needs the model.

    ``payload`` is a pydantic model or any type pydantic validates (e.g. an annotated union).
    ``needs_embedder`` decides where the job may run: on Modal, kinds that need no model run on a
    CPU function and only embedding kinds go to the GPU class.
    """

    kind: str
    payload: Any
    handler: Callable[[Job, P], NewPrediction | None]
    needs_embedder: bool
    photo: bool = False  # a photo kind (its jobs match one photo: PhotoMatching.kind)
    stages: JobStages[P] | None = None  # set when the kind's jobs can run in batches

    def parse(self, job: Job) -> P:
        """The job's payload as its type; PermanentError if the stored payload does not fit."""
        try:
            parsed: P = TypeAdapter(self.payload).validate_python(job.payload)
        except ValidationError as exc:
            detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:3])
            raise PermanentError(f"job {job.id} ({self.kind}) has an invalid payload: {detail}") from exc
        return parsed

    def run(self, job: Job) -> NewPrediction | None:
        return self.handler(job, self.parse(job))


class JobKinds:
    """The registry of job kinds a process can run (built in :func:`imagematch.app.build_services`)."""

    def __init__(self, specs: Iterable[JobKindSpec[Any]] = ()) -> None:
        self._specs: dict[str, JobKindSpec[Any]] = {}
        for spec in specs:
            self.register(spec)

    def register(self, spec: JobKindSpec[Any]) -> None:
        """Add ``spec``. Raises ValueError if its kind is registered already: two sources (or
        one wired twice) must not silently replace each other's handler."""
        if spec.kind in self._specs:
            raise ValueError(f"job kind {spec.kind!r} is registered already")
        self._specs[spec.kind] = spec

    def replace(self, spec: JobKindSpec[Any]) -> None:
        """Swap the handler of a registered kind on purpose (tests, a wrapper around a source's
        handler). Raises KeyError for a kind not registered."""
        if spec.kind not in self._specs:
            raise KeyError(spec.kind)
        self._specs[spec.kind] = spec

    def get(self, kind: str) -> JobKindSpec[Any] | None:
        return self._specs.get(kind)

    def needs_embedder(self, kind: str) -> bool | None:
        """Whether jobs of ``kind`` need the embedder; ``None`` for a kind not registered."""
        spec = self._specs.get(kind)
        return None if spec is None else spec.needs_embedder

    def names(self) -> list[str]:
        """Every registered kind, by name (the console's kind filter)."""
        return sorted(self._specs)

    def photo_kinds(self) -> list[str]:
        """The kinds whose jobs match one photo, by name (derived, never a hand-kept list)."""
        return sorted(kind for kind, spec in self._specs.items() if spec.photo)

    def embedding_kinds(self) -> list[str]:
        """The kinds that need the embedder (the photo kinds and catalog events), by name."""
        return sorted(kind for kind, spec in self._specs.items() if spec.needs_embedder)
