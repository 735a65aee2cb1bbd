"""Small WebP thumbnails of query photos and catalog reference images, for the operator console.

Written when a photo is processed (uploads, URLs and Zendesk attachments alike), so the console
never downloads an image again (and never needs Zendesk credentials to show one), and for catalog
reference images when an index is built or a live catalog event is applied.

Layout under ``root`` (the data dir, a Volume on Modal)::

    ab/abcdef….webp     content-addressed: named by the SHA-256 of the *source* image bytes
    jobs/<job id>       the digest of the photo a job processed (one line)

Thumbnails are rewritten atomically and never change once written, so they can be served with
long cache lifetimes.
"""

from __future__ import annotations

import io
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from PIL import Image

from imagematch.errors import ImageMatchError
from imagematch.images import ImageLimits, sha256_hex
from imagematch.models import Job

__all__ = ["THUMBNAIL_PX", "ThumbnailStore"]

log = logging.getLogger(__name__)

THUMBNAIL_PX = 256  # longest side
_DIGEST_CHARS = frozenset("0123456789abcdef")


def _is_digest(value: str) -> bool:
    return len(value) == 64 and set(value) <= _DIGEST_CHARS


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, path)


def render_thumbnail(image: Image.Image, *, size: int = THUMBNAIL_PX) -> bytes:
    """``image`` scaled to fit ``size`` px (never enlarged), as WebP bytes."""
    small = image if image.mode == "RGB" else image.convert("RGB")
    width, height = small.size
    if max(width, height) > size:
        scale = size / max(width, height)
        # reducing_gap=1: box-reduce by the whole factor first, then bicubic for the rest: a 1,008
        # px photo in ~3 ms instead of ~10 (Lanczos over all of it), 348 px in 1.5 instead of 2.2;
        # no visible difference at 256 px (bench/pipeline_throughput.py, thumbnail stage).
        fit = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = small.resize(fit, Image.Resampling.BICUBIC, reducing_gap=1.0)
    buffer = io.BytesIO()
    # method=0: the fastest encoder (2.2 ms at 256 px; 1: 2.6, the default 4: ~10), files ~4 %
    # larger than method 1 (~15 kB); JPEG would take 0.3 ms but the console serves WebP.
    small.save(buffer, format="WEBP", quality=80, method=0)
    return buffer.getvalue()


class ThumbnailStore:
    """Content-addressed thumbnails under ``root`` (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, digest: str) -> Path:
        """Where the thumbnail of the image with SHA-256 ``digest`` lives; ValueError if malformed."""
        if not _is_digest(digest):
            raise ValueError(f"not a sha256 digest: {digest!r}")
        return self.root / digest[:2] / f"{digest}.webp"

    def has(self, digest: str) -> bool:
        return _is_digest(digest) and self.path(digest).exists()

    def put(self, digest: str, image: Image.Image) -> str:
        """Write the thumbnail of a decoded image whose source bytes hash to ``digest`` (once)."""
        path = self.path(digest)
        if not path.exists():
            _write_atomic(path, render_thumbnail(image))
        return digest

    def put_bytes(self, data: bytes, limits: ImageLimits) -> str:
        """Decode ``data`` under ``limits`` and write its thumbnail; returns the digest. Raises
        PermanentError for something that is not an image."""
        digest = sha256_hex(data)
        if not self.has(digest):
            self.put(digest, limits.decode(data))
        return digest

    def record_job_photo(self, job: Job, data: bytes, image: Image.Image) -> None:
        """Keep a thumbnail of the photo ``job`` processed. Never raises: a thumbnail is a nicety
        and must not fail the job it illustrates."""
        try:
            digest = self.put(sha256_hex(data), image)
            _write_atomic(self.root / "jobs" / str(job.id), digest.encode())
        except OSError as exc:
            log.warning("job %s: thumbnail not written: %s", job.id, exc)

    def job_photo(self, job_id: int) -> str | None:
        """The digest of the thumbnail recorded for ``job_id``, if any is still there."""
        try:
            digest = (self.root / "jobs" / str(job_id)).read_text().strip()
        except OSError:
            return None
        return digest if self.has(digest) else None

    def ensure_catalog(
        self,
        images: Iterable[tuple[str, str]],
        read_bytes: Callable[[str], bytes],
        limits: ImageLimits,
    ) -> int:
        """Thumbnails for catalog images given as ``(uri, sha256)`` that have none yet; returns how
        many were written. An image that can no longer be read is logged and skipped."""
        written = 0
        for uri, digest in images:
            if self.has(digest):
                continue
            try:
                data = read_bytes(uri)
                self.put(digest, limits.decode(data))
            except (ImageMatchError, OSError) as exc:
                log.warning("no thumbnail for %s: %s", uri, exc)
                continue
            written += 1
        return written

    def purge(self, *, older_than_days: float, keep: set[str] | None = None, now: float | None = None) -> int:
        """Delete thumbnails (and job pointers) last written more than ``older_than_days`` ago,
        except the digests in ``keep`` (the catalog's reference images); returns how many files."""
        cutoff = (time.time() if now is None else now) - older_than_days * 86400
        keep = keep or set()
        removed = 0
        if not self.root.exists():
            return 0
        for path in self.root.rglob("*"):
            if not path.is_file() or path.stem in keep:
                continue
            if path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                removed += 1
        return removed
