"""Process-level tuning applied by entry points (CLI, server), never on import."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

__all__ = ["core_pool", "freeze_startup_objects", "gc_paused", "tune_allocator"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def tune_allocator() -> bool:
    """Keep large freed blocks in glibc's heap instead of returning them to the OS.

    CNN activations at batch 16 are tens of MB; by default glibc serves each from a fresh mmap and
    unmaps it when freed, so every layer of every batch page-faults its buffers in again. Measured
    on the 2-core dev machine: ~2.5-3x more query images/s, identical vectors. The cost is that the
    process keeps its peak heap. Same effect as MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_.
    Returns whether it applied (False on a libc without ``mallopt``, e.g. musl or macOS).
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, 1 << 30)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))


def freeze_startup_objects() -> None:
    """Exempt everything alive now (torch, the model, the app) from the cyclic garbage collector.

    A loaded server holds ~250k GC-tracked objects; every full collection walked them all, 50-250 ms
    with the GIL held, which was the max latency of a webhook burst (``bench/webhook_burst.py``).
    Objects created later are collected as usual. Call once, after start-up, before serving.
    """
    gc.collect()
    gc.freeze()


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside the block (reference counting still frees memory).

    Loading a snapshot creates ~5 objects per catalog image, none of them garbage; every few
    hundred allocations the collector walked the whole heap (torch included), which was over a
    third of loading a 10k-product snapshot (``bench/serve_startup.py``).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def core_pool(name: str) -> ThreadPoolExecutor:
    """A thread pool with one thread per core this process may use (a container's share)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return ThreadPoolExecutor(cores or 1, thread_name_prefix=name)
