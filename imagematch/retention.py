"""Retention of stored photos: the console's thumbnails and the uploaded originals (``blobs/``).

* **Thumbnails** of query photos older than ``IMAGEMATCH_THUMBNAIL_RETENTION_DAYS`` go; the served
  catalog's are kept. Which ones are the catalog's is read from the served index: when it cannot be
  loaded, the thumbnail purge refuses (and says why) instead of deleting the catalog's pictures.
* **Uploaded originals** older than ``IMAGEMATCH_UPLOAD_RETENTION_DAYS`` go once no job still to
  run refers to them (pending, processing, or failed with a retry due), and unless a *blob keeper*
  holds them: ``Services.keep_blobs`` predicates, empty by default (learned references add one).

:func:`purge_stored_photos` is the one operation; ``imagematch thumbnails purge``, ``serve``'s
sweep loop (:func:`purge_stored_photos_if_due`, hourly) and Modal's nightly function call it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from imagematch.config import Settings
from imagematch.errors import ImageMatchError
from imagematch.index import IndexHandle
from imagematch.job_kinds import BLOB_PREFIX
from imagematch.ledger import Ledger
from imagematch.models import JobStatus

if TYPE_CHECKING:
    from imagematch.app import Services

__all__ = [
    "BlobKeeper",
    "RetentionReport",
    "active_blob_digests",
    "catalog_thumbnail_digests",
    "purge_stored_photos",
    "purge_stored_photos_for",
    "purge_stored_photos_if_due",
]

BlobKeeper = Callable[[str], bool]  # True: keep this blob (by sha256) whatever its age
PURGE_INTERVAL = timedelta(hours=1)  # how often the sweep loop runs the purges
_LAST_RUN_FILE = "retention.json"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetentionReport:
    thumbnails_removed: int
    blobs_removed: int
    thumbnails_refused: str | None = None  # why the thumbnail purge did not run

    def describe(self) -> str:
        thumbs = (
            f"thumbnails not purged: {self.thumbnails_refused}"
            if self.thumbnails_refused
            else f"removed {self.thumbnails_removed} thumbnail files"
        )
        return f"{thumbs}; removed {self.blobs_removed} uploaded originals"


def catalog_thumbnail_digests(handle: IndexHandle) -> set[str]:
    """The served catalog's image digests (live updates included), from the index this process
    serves (brought up to date first: no second copy is loaded). Raises ImageMatchError or
    OSError when the served index cannot be loaded."""
    handle.refresh()
    return {image.sha256 for image in handle.get().images.values()}


def _blob_digest(image: object) -> str | None:
    if isinstance(image, str) and image.startswith(BLOB_PREFIX):
        return image.removeprefix(BLOB_PREFIX)
    return None


def active_blob_digests(ledger: Ledger, *, page: int = 500) -> set[str]:
    """Digests of the blobs jobs still to run refer to: pending, processing, failed with a retry."""
    found: set[str] = set()
    for status in (JobStatus.PENDING, JobStatus.PROCESSING, JobStatus.FAILED):
        before: int | None = None
        while batch := ledger.list_jobs(status=status, limit=page, before_id=before):
            for job in batch:
                will_run = status != JobStatus.FAILED or job.next_attempt_at is not None
                if will_run and (digest := _blob_digest(job.payload.get("image"))):
                    found.add(digest)
            before = batch[-1].id
    return found


def _purge_blobs(
    root: Path, *, cutoff: float, keep: Callable[[str], bool], last_use: Callable[[str, Path], None]
) -> int:
    removed = 0
    for path in root.glob("??/*") if root.exists() else ():
        old = path.is_file() and not path.name.startswith(".") and path.stat().st_mtime < cutoff
        if old and not keep(path.name):
            try:
                last_use(path.name, path)
            except (ImageMatchError, OSError) as exc:  # not an image: nothing to keep of it
                log.info("upload %s…: no thumbnail kept: %s", path.name[:12], exc)
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def purge_stored_photos(services: Services, *, now: datetime | None = None) -> RetentionReport:
    """Purge thumbnails and uploaded originals past their retention (see the module docstring)."""
    settings = services.settings
    at = (now or services.clock()).timestamp()
    try:
        catalog = catalog_thumbnail_digests(services.index)
    except (ImageMatchError, OSError, ValueError) as exc:
        refused: str | None = f"the served index cannot be loaded ({exc}), so the catalog's are unknown"
        thumbnails = 0
    else:
        refused = None
        thumbnails = services.thumbnails.purge(
            older_than_days=settings.thumbnail_retention_days, keep=catalog, now=at
        )
    active = active_blob_digests(services.ledger)
    keepers: Iterable[BlobKeeper] = list(services.keep_blobs)
    blobs = _purge_blobs(
        services.blobs.root,
        cutoff=at - settings.upload_retention_days * 86400,
        keep=lambda digest: digest in active or any(keeper(digest) for keeper in keepers),
        # An upload's thumbnail is made when first shown: one never shown is made now, dated as
        # the upload, so the console keeps it for the thumbnails' retention.
        last_use=services.thumbnails.keep_original,
    )
    return RetentionReport(thumbnails, blobs, refused)


def purge_stored_photos_if_due(services: Services, *, interval: timedelta = PURGE_INTERVAL) -> None:
    """:func:`purge_stored_photos` when the last run (noted in the data dir) is older than
    ``interval``; for the sweep loop. Failures are logged, never raised (the sweep goes on)."""
    marker = services.settings.data_dir / _LAST_RUN_FILE
    now = services.clock()
    try:
        last = datetime.fromisoformat(json.loads(marker.read_text())["at"])
        if now - last < interval:
            return
    except (OSError, ValueError, KeyError, TypeError):
        pass  # never ran (or an unreadable note): run now
    try:
        report = purge_stored_photos(services, now=now)
        marker.write_text(json.dumps({"at": now.isoformat(), "summary": report.describe()}))
    except (ImageMatchError, OSError) as exc:
        log.warning("retention purge failed: %s", exc)
        return
    if report.thumbnails_refused:
        log.warning("retention: %s", report.describe())


def purge_stored_photos_for(settings: Settings) -> RetentionReport:
    """:func:`purge_stored_photos` over services built from ``settings`` (no model): for the CLI
    and Modal's nightly function."""
    from imagematch.app import build_services  # the composition root imports this module

    services = build_services(settings, embedder=False)
    try:
        return purge_stored_photos(services)
    finally:
        services.close()
