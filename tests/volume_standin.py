"""A stand-in for ``modal.Volume`` that enforces Modal's documented rules, for tests only.

Each "container" mounts the Volume in its own local directory (:meth:`VolumeStandIn.mount`):

* ``reload()`` raises while this process holds any file under that mount open — as Modal's does
  ("there are open files preventing the operation") — and so does ``commit()``, which reloads;
* a container's writes are invisible to the others until it ``commit()``s, and to each of them
  until it ``reload()``s;
* commits are last-write-wins per file; ``read_file()`` reads the committed state, no reload.

The product code never imports this module; it receives a mount as its ``SharedVolume``.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

__all__ = ["MountedVolume", "VolumeStandIn"]


class VolumeStandIn:
    """The committed state of one Volume (relative path → bytes)."""

    def __init__(self) -> None:
        self.committed: dict[str, bytes] = {}
        self.events: list[tuple[str, str]] = []  # (mount name, "reload"/"commit"/"refused …")
        self._lock = threading.Lock()

    def mount(self, root: Path, name: str | None = None) -> MountedVolume:
        return MountedVolume(self, root, name or root.name)

    def seed(self, directory: Path) -> None:
        """Commit every file under ``directory`` (a Volume's state before the test starts)."""
        for path in directory.rglob("*"):
            if path.is_file():
                self.committed[path.relative_to(directory).as_posix()] = path.read_bytes()


class MountedVolume:
    """One container's view of the Volume, in ``root``; a ``SharedVolume`` for the product code."""

    def __init__(self, volume: VolumeStandIn, root: Path, name: str) -> None:
        self.volume = volume
        self.root = root
        self.name = name
        self._base: dict[str, bytes] = {}  # what this mount last saw committed
        root.mkdir(parents=True, exist_ok=True)
        self._pull()

    def open_files(self) -> list[str]:
        """Files under the mount this process holds open (what makes Modal refuse a reload)."""
        found = []
        prefix = str(self.root.resolve()) + os.sep
        for fd in os.listdir("/proc/self/fd"):
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                continue
            if target.startswith(prefix):
                found.append(target)
        return found

    def reload(self) -> None:
        self._refuse_if_files_open("reload")
        with self.volume._lock:
            self._pull()
        self.volume.events.append((self.name, "reload"))

    def commit(self) -> None:
        self._refuse_if_files_open("commit")
        with self.volume._lock:
            for rel, data in self._local().items():
                if self._base.get(rel) != data:
                    self.volume.committed[rel] = data  # last write wins, per file
            for rel in set(self._base) - set(self._local()):
                self.volume.committed.pop(rel, None)
            self._pull()
        self.volume.events.append((self.name, "commit"))

    def read_file(self, path: str) -> Iterator[bytes]:
        try:
            data = self.volume.committed[path]
        except KeyError:
            raise FileNotFoundError(path) from None
        yield data

    def _refuse_if_files_open(self, what: str) -> None:
        held = self.open_files()
        if held:
            self.volume.events.append((self.name, f"refused {what}"))
            raise RuntimeError(f"there are open files preventing the operation: {held[0]}")

    def _local(self) -> dict[str, bytes]:
        return {
            path.relative_to(self.root).as_posix(): path.read_bytes()
            for path in self.root.rglob("*")
            if path.is_file()
        }

    def _pull(self) -> None:
        """Make the mount show the committed state; files only this mount wrote stay."""
        local = self._local()
        for rel in set(self._base) - set(self.volume.committed):
            (self.root / rel).unlink(missing_ok=True)
        for rel, data in self.volume.committed.items():
            if local.get(rel) != data:
                target = self.root / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.is_dir():
                    shutil.rmtree(target)
                target.write_bytes(data)
        self._base = dict(self.volume.committed)
