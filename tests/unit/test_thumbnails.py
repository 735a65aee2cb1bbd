"""Thumbnails: small, content-addressed, one per photo whatever its source, purged by age."""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image

from imagematch.images import ImageLimits, sha256_hex
from imagematch.models import Job, JobStatus
from imagematch.thumbnails import ThumbnailStore
from tests.conftest import PALETTE, image_bytes

LIMITS = ImageLimits(10_000_000, 50_000_000)


def _job(job_id: int) -> Job:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return Job(
        id=job_id,
        kind="match_image",
        source="api",
        idempotency_key=f"k{job_id}",
        status=JobStatus.PROCESSING,
        created_at=now,
        updated_at=now,
    )


def test_a_large_photo_becomes_a_small_jpeg_named_by_its_content(tmp_path: Path) -> None:
    store = ThumbnailStore(tmp_path)
    data = image_bytes(PALETTE["red"], size=(1600, 1200), fmt="JPEG")
    digest = store.put_bytes(data, LIMITS)
    assert digest == sha256_hex(data)
    thumb = Image.open(io.BytesIO(store.path(digest).read_bytes()))
    assert thumb.format == "JPEG" and max(thumb.size) == 256 and thumb.size[0] > thumb.size[1]
    assert store.put_bytes(data, LIMITS) == digest and len(list(tmp_path.rglob("*.jpg"))) == 1


def test_a_job_remembers_its_photo(tmp_path: Path) -> None:
    store = ThumbnailStore(tmp_path)
    data = image_bytes(PALETTE["blue"])
    store.record_job_photo(_job(7), data, Image.open(io.BytesIO(data)))
    assert store.job_photo(7) == sha256_hex(data)
    assert store.job_photo(8) is None


def test_purge_removes_old_photos_but_keeps_the_catalogs(tmp_path: Path) -> None:
    store = ThumbnailStore(tmp_path)
    old, catalog, fresh = (image_bytes(PALETTE[c]) for c in ("red", "green", "blue"))
    for job_id, data in enumerate((old, catalog, fresh)):
        store.record_job_photo(_job(job_id), data, Image.open(io.BytesIO(data)))
    now = datetime(2026, 6, 1, tzinfo=UTC).timestamp()
    for path in (store.path(sha256_hex(old)), store.path(sha256_hex(catalog)), tmp_path / "jobs" / "0"):
        os.utime(path, (now - 100 * 86400, now - 100 * 86400))
    for path in (store.path(sha256_hex(fresh)), tmp_path / "jobs" / "1", tmp_path / "jobs" / "2"):
        os.utime(path, (now, now))
    removed = store.purge(older_than_days=90, keep={sha256_hex(catalog)}, now=now)
    assert removed == 2
    assert store.job_photo(0) is None and store.job_photo(2) == sha256_hex(fresh)
    assert store.has(sha256_hex(catalog))
