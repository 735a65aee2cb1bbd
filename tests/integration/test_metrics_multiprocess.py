"""Several worker processes, one ``/metrics``: the ledger's counters are totals by construction,
and the per-process histograms are summed by prometheus-client's multiprocess mode (every process
writes its values under ``PROMETHEUS_MULTIPROC_DIR``; the scrape adds them up)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from imagematch.app import Services
from imagematch.job_kinds import image_ref_for_blob
from imagematch.metrics import LedgerCollector, render_metrics
from imagematch.models import JobStatus, NewJob
from imagematch.sources.catalog import pending_catalog_jobs
from tests.conftest import PALETTE, REPO, image_bytes

# One worker process: claim and run the job ids it is given (each id is given to one process).
WORKER = """
import sys
from imagematch.app import build_services
from imagematch.config import Settings
services = build_services(Settings())
worker = services.make_worker()
for job_id in map(int, sys.argv[1:]):
    worker.process_job_id(job_id)
services.close()
"""


def _submit(services: Services, data: bytes, key: str) -> int:
    digest = services.blobs.put(data)
    job, _ = services.ledger.submit(
        NewJob(idempotency_key=key, payload={"image": image_ref_for_blob(digest)})
    )
    return job.id


@pytest.mark.slow
def test_two_worker_processes_still_total_right(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    colours = list(PALETTE.values())
    ids = [
        _submit(services, image_bytes(colours[n % 4], mark=n, size=(64 + n, 48)), f"k{n}") for n in range(8)
    ]
    ids += [_submit(services, f"not an image {n}".encode(), f"bad{n}") for n in range(2)]
    shared = tmp_path / "prometheus"
    shared.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "HF_HUB_OFFLINE": "1",
        "PROMETHEUS_MULTIPROC_DIR": str(shared),
        "IMAGEMATCH_DATA_DIR": str(services.settings.data_dir),
        "IMAGEMATCH_MODEL": "tiny",
        "IMAGEMATCH_LOG_FORMAT": "json",
    }
    workers = [
        subprocess.Popen([sys.executable, "-c", WORKER, *map(str, ids[half::2])], env=env, cwd=REPO)
        for half in (0, 1)
    ]
    assert [worker.wait(timeout=300) for worker in workers] == [0, 0]
    assert len({path.name.rsplit("_", 1)[1] for path in shared.glob("histogram_*.db")}) == 2  # two pids

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(shared))
    text = render_metrics(
        LedgerCollector(services.ledger, services.index, services.clock, pending_catalog_jobs)
    ).decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    counts = services.ledger.count_by_status()
    assert counts[JobStatus.COMPLETE] == 8 and counts[JobStatus.FAILED] == 2
    finished = {
        labels: n for (name, labels), n in samples.items() if name == "imagematch_jobs_finished_total"
    }
    assert finished == {
        (("kind", "match_image"), ("outcome", "complete"), ("source", "api")): 8,
        (("kind", "match_image"), ("outcome", "failed_permanent"), ("source", "api")): 2,
    }

    def stage_count(stage: str) -> float:
        key = ("imagematch_job_stage_seconds_count", (("kind", "match_image"), ("stage", stage)))
        return samples.get(key, 0.0)

    # Each process saw only its half; the scrape shows the sum.
    assert stage_count("decode") == 10 and stage_count("embed") == 8 and stage_count("write") == 8
