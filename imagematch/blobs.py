"""Content-addressed storage for submitted image bytes: persisted before any job refers to them."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from imagematch.errors import SubjectGoneError
from imagematch.images import sha256_hex

__all__ = ["BlobStore"]

_HEX = frozenset("0123456789abcdef")


class BlobStore:
    """Files under ``root/ab/abcdef…`` named by their SHA-256; writes are atomic."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, digest: str) -> Path:
        if len(digest) != 64 or not _HEX.issuperset(digest):
            raise ValueError(f"not a sha256 digest: {digest!r}")
        return Path(f"{self.root}/{digest[:2]}/{digest}")  # a string join: every job reads one

    def put(self, data: bytes) -> str:
        """Store ``data`` (once) and return its digest."""
        digest = sha256_hex(data)
        path = self._path(digest)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        return digest

    def has(self, digest: str) -> bool:
        return self._path(digest).exists()

    def path(self, digest: str) -> Path:
        """Where the blob ``digest`` is (or would be) stored; ValueError if malformed."""
        return self._path(digest)

    def get(self, digest: str) -> bytes:
        """Raises :class:`SubjectGoneError` if the blob was deleted."""
        try:
            return self._path(digest).read_bytes()
        except FileNotFoundError as exc:
            raise SubjectGoneError(f"stored image {digest[:12]}… no longer exists") from exc
