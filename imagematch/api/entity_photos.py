"""Each photo of an entity as a client shows it (the Zendesk sidebar): where its job stands, its
thumbnail, its own top-3 with the answer's confidence band, its quality advice and its label.

An entity's matched photos come from the ledger's entity photos; photos still pending, processing
or failed are not entity photos yet, so they are found among the newest in-flight jobs
(``IN_FLIGHT_SCAN`` per status) whose payload names the entity.
"""

from __future__ import annotations

from urllib.parse import quote, unquote, urlsplit

from pydantic import BaseModel, Field

from imagematch.app import Services
from imagematch.calibration import Band
from imagematch.entities import EntityRef
from imagematch.errors import ImageMatchError
from imagematch.job_kinds import PhotoPayload
from imagematch.labels import Label
from imagematch.models import Job, JobStatus, Prediction
from imagematch.quality import QualityReport

__all__ = ["EntityPhotoOut", "PhotoMatchOut", "entity_photos"]

IN_FLIGHT_SCAN = 500  # newest jobs read per in-flight status when looking for an entity's photos
PHOTO_TOP = 3
_IN_FLIGHT = (JobStatus.PENDING, JobStatus.PROCESSING, JobStatus.FAILED)


class PhotoMatchOut(BaseModel):
    product_id: str
    name: str
    score: float
    rank: int
    image: str = Field(description="API path of the product's catalog picture.")


class EntityPhotoOut(BaseModel):
    job_id: int
    low_quality: bool = False
    quality: QualityReport | None = None
    status: JobStatus | None = None
    error: str | None = Field(None, description="Why the job failed (status `failed`).")
    error_kind: str | None = None
    file_name: str | None = None
    thumbnail: str | None = Field(None, description="API path of the photo's thumbnail, once it has one.")
    matches: list[PhotoMatchOut] = Field(default_factory=list, description="The photo's own top-3.")
    confidence: float | None = Field(None, description="Probability the photo's top-1 is right.")
    band: Band | None = Field(None, description="`confident`, `check` or `no_match`.")
    no_confident_match: bool = False
    label: Label | None = Field(None, description="The current feedback label, if any.")


def entity_photos(services: Services, ref: EntityRef) -> list[EntityPhotoOut]:
    """The entity's photos, oldest job first: matched ones and those still in flight or failed."""
    ledger = services.ledger
    matched = {photo.job_id: photo.low_quality for photo in ledger.entity_photos(ref)}
    job_ids = set(matched) | {job.id for job in _in_flight_jobs(services, ref)}
    photos = []
    for job_id in sorted(job_ids):
        job = ledger.get_job(job_id)
        if job is None:
            continue
        photo = _photo(services, job)
        photo.low_quality = matched.get(job_id, photo.low_quality)
        photos.append(photo)
    return photos


def _in_flight_jobs(services: Services, ref: EntityRef) -> list[Job]:
    found = []
    for status in _IN_FLIGHT:
        for job in services.ledger.list_jobs(status=status, limit=IN_FLIGHT_SCAN):
            spec = services.kinds.get(job.kind)
            try:
                payload = spec.parse(job) if spec else None
            except ImageMatchError:
                continue
            if isinstance(payload, PhotoPayload) and payload.entity() == ref:
                found.append(job)
    return found


def _photo(services: Services, job: Job) -> EntityPhotoOut:
    prediction = services.ledger.get_prediction(job.id) if job.status is JobStatus.COMPLETE else None
    photo = EntityPhotoOut(
        job_id=job.id,
        status=job.status,
        error=job.last_error if job.status is JobStatus.FAILED else None,
        error_kind=job.error_kind if job.status is JobStatus.FAILED else None,
        file_name=job.payload.get("file_name") or _url_file_name(job.payload.get("image")),
        thumbnail=f"/v1/jobs/{job.id}/thumbnail" if services.thumbnails.job_photo(job.id) else None,
        label=services.ledger.current_label(job.id),
    )
    if prediction is not None:
        _add_answer(photo, prediction)
    return photo


def _url_file_name(image: object) -> str | None:
    """The last path segment of a photo submitted by URL (uploads have their own file name)."""
    if not isinstance(image, str) or not image.startswith(("http://", "https://")):
        return None
    return unquote(urlsplit(image).path.rsplit("/", 1)[-1]) or None


def _add_answer(photo: EntityPhotoOut, prediction: Prediction) -> None:
    photo.quality = prediction.quality
    photo.low_quality = bool(prediction.quality and prediction.quality.low_quality)
    photo.no_confident_match = prediction.no_confident_match
    photo.confidence, photo.band = prediction.confidence, prediction.band  # None on older answers
    photo.matches = [
        PhotoMatchOut(
            product_id=m.product_id,
            name=m.name,
            score=round(m.score, 6),
            rank=rank,
            image=f"/v1/products/{quote(m.product_id, safe='')}/image",
        )
        for rank, m in enumerate(prediction.matches[:PHOTO_TOP], start=1)
    ]
