"""SIGKILL `imagematch serve` mid-way: after a restart every accepted image completes exactly once."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import SAMPLE_CATALOG, SAMPLE_QUERIES, image_bytes

pytestmark = pytest.mark.slow
CLI = [sys.executable, "-m", "imagematch.cli"]


def _serve(env: dict[str, str], port: int, workers: int) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [*CLI, "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.2)
    server.kill()
    pytest.fail("server did not start")


def _counts(db: Path) -> tuple[int, int, int]:
    with sqlite3.connect(db) as conn:
        complete = conn.execute("select count(*) from image_jobs where status = 'complete'").fetchone()[0]
        predictions, distinct = conn.execute(
            "select count(*), count(distinct job_id) from image_prediction_log"
        ).fetchone()
    return complete, predictions, distinct


def _wait_until(predicate: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.05)


def test_sigkill_mid_way_loses_nothing_and_duplicates_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    db = data / "imagematch.sqlite3"
    env = {
        **os.environ,
        "IMAGEMATCH_DATA_DIR": str(data),
        "IMAGEMATCH_LEASE_SECONDS": "3",
        "IMAGEMATCH_SWEEP_SECONDS": "0.5",
        "IMAGEMATCH_POLL_SECONDS": "0.1",
    }
    subprocess.run(
        [*CLI, "index", "build", "--catalog", str(SAMPLE_CATALOG)], env=env, check=True, timeout=300
    )
    with socket.socket() as probe:  # a free port: other test runs may share the machine
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    photos = [p.read_bytes() for p in sorted((SAMPLE_QUERIES.parent / "queries").glob("*.jpg"))]
    photos += [image_bytes((n * 12, 255 - n * 12, 100), size=(320, 240)) for n in range(50 - len(photos))]

    # 1. Accept 50 images (no workers), then crash: everything accepted must survive.
    server = _serve(env, port, workers=0)
    for n, photo in enumerate(photos):
        response = httpx.post(
            f"http://127.0.0.1:{port}/v1/images",
            files={"file": (f"p{n}.jpg", photo, "image/jpeg")},
            data={"idempotency_key": f"kill-test-{n}"},
            timeout=30,
        )
        assert response.status_code == 202
    server.send_signal(signal.SIGKILL)
    server.wait(timeout=10)

    # 2. Process, and SIGKILL mid-way: some complete, some claimed under a lease, some pending.
    server = _serve(env, port, workers=2)
    _wait_until(lambda: _counts(db)[0] >= 8, 120)
    server.send_signal(signal.SIGKILL)
    server.wait(timeout=10)
    at_kill = _counts(db)[0]
    assert 0 < at_kill < 50, "the kill should land mid-way"

    # 3. Restart: the sweep re-queues the dead workers' jobs once their leases expire.
    server = _serve(env, port, workers=2)
    try:
        _wait_until(lambda: _counts(db)[0] >= 50, 180)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    assert _counts(db) == (50, 50, 50), f"{at_kill} were complete at the kill"
