"""SIGKILL `imagematch serve` mid-way: after a restart every accepted image completes exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.conftest import (
    CLI,
    SAMPLE_CATALOG,
    SAMPLE_QUERIES,
    RunningServer,
    image_bytes,
    job_counts,
    wait_until,
)

pytestmark = pytest.mark.slow


def test_sigkill_mid_way_loses_nothing_and_duplicates_nothing(
    tmp_path: Path, running_server: Callable[..., RunningServer]
) -> None:
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
    photos = [p.read_bytes() for p in sorted((SAMPLE_QUERIES.parent / "queries").glob("*.jpg"))]
    photos += [image_bytes((n * 12, 255 - n * 12, 100), size=(320, 240)) for n in range(50 - len(photos))]

    # 1. Accept 50 images (no workers), then crash: everything accepted must survive.
    server = running_server(env, ["--workers", "0"])
    for n, photo in enumerate(photos):
        response = httpx.post(
            f"{server.base_url}/v1/images",
            files={"file": (f"p{n}.jpg", photo, "image/jpeg")},
            data={"idempotency_key": f"kill-test-{n}"},
            timeout=30,
        )
        assert response.status_code == 202
    server.stop(signal.SIGKILL)

    # 2. Process, and SIGKILL mid-way: some complete, some claimed under a lease, some pending.
    server = running_server(env, ["--workers", "2"])
    wait_until(lambda: job_counts(db)[0] >= 8, 120)
    server.stop(signal.SIGKILL)
    at_kill = job_counts(db)[0]
    assert 0 < at_kill < 50, "the kill should land mid-way"

    # 3. Restart: the sweep re-queues the dead workers' jobs once their leases expire.
    server = running_server(env, ["--workers", "2"])
    try:
        wait_until(lambda: job_counts(db)[0] >= 50, 180)
    finally:
        server.stop()
    assert job_counts(db) == (50, 50, 50), f"{at_kill} were complete at the kill"
