"""Small files replaced atomically: readers see the old content or the new, never a part.

Used on a job's path (thumbnails, job pointers, photo vectors), so it is cheap: the temporary file
has a name of its own per process and thread (no random name to draw, as ``tempfile.mkstemp``
does, and no Python file object), and the folder is only created when the first open says it is
missing. Not fsynced: what it writes can be made again (an upload's bytes use
:class:`~imagematch.blobs.BlobStore`, which syncs).
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

__all__ = ["write_atomic"]

_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
# Containers sharing one volume (Modal) may run the same pid: the host name tells them apart.
_HOST = "".join(c if c.isalnum() or c in "-." else "_" for c in socket.gethostname())[:64]


def write_atomic(path: Path | str, data: bytes) -> None:
    """Replace ``path`` with ``data`` in one rename, creating its folder if needed. Raises OSError."""
    target = os.fspath(path)
    folder = os.path.dirname(target) or "."
    # One writer per host, process and thread at a time, so the name cannot clash; a crash leaves
    # at most one such file per thread and folder, which the next write there from that thread reuses.
    tmp = os.path.join(folder, f".tmp-{_HOST}-{os.getpid()}-{threading.get_ident()}")
    try:
        fd = os.open(tmp, _FLAGS, 0o644)
    except FileNotFoundError:
        os.makedirs(folder, exist_ok=True)
        fd = os.open(tmp, _FLAGS, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
    os.replace(tmp, target)
