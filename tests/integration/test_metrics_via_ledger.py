"""Metrics on Modal: processes that cannot be scraped one by one (containers behind one URL)
publish their instruments to the ledger, and ``/metrics`` serves the sum of every process's."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from imagematch.api.access import AccessControl, parse_tokens
from imagematch.app import Services, build_services
from imagematch.job_kinds import image_ref_for_blob
from imagematch.models import NewJob
from tests.conftest import PALETTE, REPO, image_bytes
from tests.integration.test_metrics_multiprocess import WORKER

TOKEN = "metrics-scraper-token-0123456789"


@pytest.fixture
def web(services: Services) -> Iterator[TestClient]:
    """The web container: its own services over the shared ledger, metrics via the ledger."""
    from imagematch.api import create_app

    settings = services.settings.model_copy(update={"metrics_via_ledger_seconds": 3600.0})
    web_services = build_services(settings, embedder=False)
    app = create_app(web_services, access=AccessControl(parse_tokens(f"prometheus:{TOKEN}")))
    with TestClient(app) as client:
        yield client
    web_services.close()


@pytest.mark.slow
def test_metrics_serve_the_sum_of_every_process_published_to_the_ledger(
    services: Services, web: TestClient
) -> None:
    colours = list(PALETTE.values())
    ids = []
    for n in range(6):
        digest = services.blobs.put(image_bytes(colours[n % 4], mark=n, size=(64 + n, 48)))
        job, _ = services.ledger.submit(
            NewJob(idempotency_key=f"k{n}", payload={"image": image_ref_for_blob(digest)})
        )
        ids.append(job.id)
    env = {
        **{k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"},
        "PYTHONPATH": str(REPO),
        "HF_HUB_OFFLINE": "1",
        "IMAGEMATCH_DATA_DIR": str(services.settings.data_dir),
        "IMAGEMATCH_MODEL": "tiny",
        "IMAGEMATCH_METRICS_VIA_LEDGER_SECONDS": "3600",  # publishes when its services close
    }
    for half in (ids[:3], ids[3:]):  # two worker containers, one after the other
        subprocess.run(
            [sys.executable, "-c", WORKER, *map(str, half)], env=env, cwd=REPO, check=True, timeout=300
        )

    response = web.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }
    stage = "imagematch_job_stage_seconds_count"
    assert samples[(stage, (("kind", "match_image"), ("stage", "write")))] == 6  # 3 + 3, from the ledger
    assert samples[(stage, (("kind", "match_image"), ("stage", "decode")))] == 6
    buckets = [
        value
        for (name, labels), value in samples.items()
        if name == "imagematch_job_stage_seconds_bucket" and ("stage", "write") in labels
    ]
    assert buckets == sorted(buckets) and buckets[-1] == 6  # cumulative buckets, +Inf last
    finished = samples[
        (
            "imagematch_jobs_finished_total",
            (("kind", "match_image"), ("outcome", "complete"), ("source", "api")),
        )
    ]
    assert finished == 6
