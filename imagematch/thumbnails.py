"""Small JPEG thumbnails of query photos and catalog reference images, for the operator console.

Written when a photo is processed (URLs and Zendesk attachments), so the console never downloads
an image again (and never needs Zendesk credentials to show one), and for catalog reference images
when an index is built or a live catalog event is applied. An *uploaded* photo's original is kept
(``blobs/``), so its thumbnail is made when first asked for (:meth:`ThumbnailStore.ensure`), or
when the original is purged, and none costs a job's CPU; it is dated as the original, so the
thumbnail retention counts from the upload either way.

Layout under ``root`` (the data dir, a Volume on Modal)::

    ab/abcdef….jpg      content-addressed: named by the SHA-256 of the *source* image bytes
    ab/abcdef….webp     the same, written before 2026-12-07 (WebP then); still found and served
    jobs/<job id>       the digest of the photo a job processed (one line)

Thumbnails are rewritten atomically and never change once written, so they can be served with
long cache lifetimes. JPEG, not WebP: a job writes one, and WebP's fastest encoder took 2.2 ms
of a job's CPU at 256 px against JPEG's 0.2 (files ~15 % larger, ~11 kB).
"""

from __future__ import annotations

import io
import logging
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from PIL import Image

from imagematch.atomic_files import write_atomic
from imagematch.blobs import BlobStore
from imagematch.errors import ImageMatchError
from imagematch.images import ImageLimits, sha256_hex
from imagematch.job_kinds import image_ref_for_blob
from imagematch.models import Job

__all__ = ["THUMBNAIL_PX", "ThumbnailStore", "thumbnail_media_type"]

log = logging.getLogger(__name__)

THUMBNAIL_PX = 256  # longest side
_DIGEST_CHARS = frozenset("0123456789abcdef")
# What a thumbnail file holds, by its suffix: written now first, then the older format still served.
_MEDIA_TYPES = {".jpg": "image/jpeg", ".webp": "image/webp"}


def _is_digest(value: str) -> bool:
    return len(value) == 64 and set(value) <= _DIGEST_CHARS


def thumbnail_media_type(path: Path) -> str:
    """The content type of a thumbnail file (JPEG, or WebP for one written before 2026-12-07)."""
    return _MEDIA_TYPES.get(path.suffix, "application/octet-stream")


def render_thumbnail(image: Image.Image, *, size: int = THUMBNAIL_PX) -> bytes:
    """``image`` scaled to fit ``size`` px (never enlarged), as JPEG bytes."""
    small = image if image.mode == "RGB" else image.convert("RGB")
    width, height = small.size
    if max(width, height) > size:
        scale = size / max(width, height)
        # BOX: each thumbnail pixel the average of the photo's pixels it covers (an area filter,
        # no aliasing at any factor): 0.6 ms for a 348 px photo against bicubic's 1.5 (it ran for
        # every job); at 256 px it looks the same.
        fit = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = small.resize(fit, Image.Resampling.BOX)
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()


class ThumbnailStore:
    """Content-addressed thumbnails under ``root`` (see the module docstring)."""

    def __init__(
        self, root: Path, *, originals: BlobStore | None = None, limits: ImageLimits | None = None
    ) -> None:
        self.root = root
        self.originals = originals  # uploaded photos: their thumbnails are made from these
        self.limits = limits  # how they are decoded then

    def ensure(self, digest: str) -> Path | None:
        """The thumbnail of ``digest``, made now from its uploaded original if it has none yet;
        ``None`` when there is neither (never written, past retention, or not an image)."""
        if not _is_digest(digest):
            return None
        if (existing := self._existing(digest)) is not None:
            return existing
        if self.originals is None or self.limits is None:
            return None
        try:
            self.keep_original(digest, self.originals.path(digest))
        except (ImageMatchError, OSError) as exc:  # gone meanwhile (retention), or not an image
            log.info("no thumbnail for %s…: %s", digest[:12], exc)
            return None
        return self._existing(digest)

    def keep_original(self, digest: str, original: Path) -> None:
        """Write the thumbnail of an uploaded original (file ``original``) if it has none, dated as
        the original. Raises OSError, or PermanentError when it is not an image."""
        if self.has(digest) or self.limits is None:
            return
        written = original.stat().st_mtime
        self.put(digest, self.limits.decode(original.read_bytes()))
        os.utime(self.path(digest), (written, written))

    def path(self, digest: str) -> Path:
        """Where the thumbnail of the image with SHA-256 ``digest`` lives (the file there, in
        whichever format it was written; else where it will be); ValueError if malformed."""
        if not _is_digest(digest):
            raise ValueError(f"not a sha256 digest: {digest!r}")
        return self._existing(digest) or self._stem(digest).with_suffix(".jpg")

    def has(self, digest: str) -> bool:
        return _is_digest(digest) and self._existing(digest) is not None

    def _stem(self, digest: str) -> Path:
        return self.root / digest[:2] / digest

    def _existing(self, digest: str) -> Path | None:
        stem = self._stem(digest)
        return next((p for p in map(stem.with_suffix, _MEDIA_TYPES) if p.exists()), None)

    def put(self, digest: str, image: Image.Image) -> str:
        """Write the thumbnail of a decoded image whose source bytes hash to ``digest`` (once)."""
        if not self.has(digest):
            write_atomic(self._stem(digest).with_suffix(".jpg"), render_thumbnail(image))
        return digest

    def put_bytes(self, data: bytes, limits: ImageLimits) -> str:
        """Decode ``data`` under ``limits`` and write its thumbnail; returns the digest. Raises
        PermanentError for something that is not an image."""
        digest = sha256_hex(data)
        if not self.has(digest):
            self.put(digest, limits.decode(data))
        return digest

    def record_job_photo(self, job: Job, data: bytes, image: Image.Image) -> None:
        """Keep a thumbnail of the photo ``job`` processed (an uploaded one: note its original,
        the thumbnail comes when asked for). Never raises: a thumbnail is a nicety and must not
        fail the job it illustrates."""
        digest = sha256_hex(data)
        try:
            uploaded = self.originals is not None and job.payload.get("image") == image_ref_for_blob(digest)
            if not uploaded:
                self.put(digest, image)
            write_atomic(self.root / "jobs" / str(job.id), digest.encode())
        except OSError as exc:
            log.warning("job %s: thumbnail not written: %s", job.id, exc)

    def job_photo(self, job_id: int) -> str | None:
        """The digest of the photo ``job_id`` processed, while it has a thumbnail or an uploaded
        original to make one from (:meth:`ensure`)."""
        try:
            digest = (self.root / "jobs" / str(job_id)).read_text().strip()
        except OSError:
            return None
        if self.has(digest) or (self.originals is not None and self.originals.has(digest)):
            return digest
        return None

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
