"""``GET /metrics``: behind the token, parsed with prometheus-client's own parser, and after a known
burst of jobs every counter equals what the ledger says."""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from imagematch.api.access import AccessControl, parse_tokens
from imagematch.app import Services
from imagematch.metrics import count_fetch_refusal
from imagematch.models import ErrorKind, JobStatus, NewJob
from tests.conftest import PALETTE, image_bytes

TOKEN = "metrics-scraper-token-0123456789"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    from imagematch.api import create_app

    app = create_app(services, access=AccessControl(parse_tokens(f"prometheus:{TOKEN}")))
    with TestClient(app) as client:
        yield client


def scrape(client: TestClient) -> Samples:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def ledger_outcomes(services: Services) -> Counter[tuple[str, str, str]]:
    """How attempts ended, counted from each job's attempt history (not from the counters)."""
    counts: Counter[tuple[str, str, str]] = Counter()
    for job in services.ledger.list_jobs(limit=500):
        for attempt in services.ledger.list_attempts(job.id):
            outcome = attempt.outcome.value
            if attempt.outcome == JobStatus.FAILED:
                outcome = f"failed_{(attempt.error_kind or ErrorKind.TRANSIENT).value}"
            counts[(job.kind, job.source, outcome)] += 1
    return counts


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_counters_equal_the_ledger_after_a_known_burst(client: TestClient, services: Services) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    before = scrape(client)
    colours = list(PALETTE.values())
    for n in range(5):  # five photos that match
        photo = image_bytes(colours[n % 4], mark=n, size=(64 + n, 48))
        assert client.post("/v1/images", files={"file": (f"{n}.png", photo)}, headers=auth).status_code == 202
    for n in range(2):  # two uploads that are not images: failed for good
        client.post("/v1/images", files={"file": (f"bad{n}.png", f"not an image {n}".encode())}, headers=auth)
    url = f"http://127.0.0.1:{closed_port()}/gone.png"  # nobody listens: a transient failure
    client.post("/v1/images", json={"url": url, "source": "partner"}, headers=auth)
    services.ledger.submit(NewJob(idempotency_key="deleted", payload={"image": "blob:" + "0" * 64}))
    assert services.make_worker().drain() == 9
    services.ledger.submit(NewJob(idempotency_key="waiting", payload={"image": "blob:" + "1" * 64}))
    client.post("/v1/match", files={"file": ("q.png", image_bytes(colours[0]))}, headers=auth)
    client.post("/webhooks/zendesk", content=b"{}")  # unsigned: refused

    after = scrape(client)
    finished = {
        (dict(labels)["kind"], dict(labels)["source"], dict(labels)["outcome"]): count
        for (name, labels), count in after.items()
        if name == "imagematch_jobs_finished_total"
    }
    expected = ledger_outcomes(services)
    assert finished == expected
    assert expected[("match_image", "api", "complete")] == 5
    assert expected[("match_image", "api", "failed_permanent")] == 2
    assert expected[("match_image", "partner", "failed_transient")] == 1
    assert expected[("match_image", "api", "skipped")] == 1
    for status, count in services.ledger.count_by_status().items():
        assert value(after, "imagematch_jobs", status=status.value) == count
    assert 0 <= value(after, "imagematch_oldest_pending_seconds") < 600

    index = services.index.get()
    assert value(after, "imagematch_index_loaded") == 1
    assert value(after, "imagematch_index_vectors") == index.vector_count
    assert value(after, "imagematch_index_products") == 4
    assert (
        value(after, "imagematch_index_info", version=index.served_version, embedder=index.embedder_id) == 1
    )
    assert value(after, "imagematch_catalog_last_applied_timestamp_seconds") == index.built_at.timestamp()
    assert value(after, "imagematch_catalog_events_pending") == 0
    assert value(after, "imagematch_feedback_top1_agreement") == 0  # no labels yet

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    stage = "imagematch_job_stage_seconds_count"
    assert grew(stage, kind="match_image", stage="load") == 9  # every job loaded (or tried to)
    assert grew(stage, kind="match_image", stage="decode") == 7  # five photos, two non-images
    assert grew(stage, kind="match_image", stage="embed") == 5
    assert grew(stage, kind="match_image", stage="search") == 5
    assert grew(stage, kind="match_image", stage="write") == 5
    assert grew("imagematch_match_request_seconds_count", code="200") == 1
    acks = {
        dict(labels)["source"]: n - before.get((name, labels), 0.0)
        for (name, labels), n in after.items()
        if name == "imagematch_webhook_ack_seconds_count"
    }
    assert acks.get("zendesk") == 1 and sum(acks.values()) == 1  # refused, still timed
    assert grew("imagematch_fetch_refusals_total", reason="private_address") == 0


def test_without_an_index_the_gauge_says_so(services: Services, settings: object) -> None:
    from imagematch.api import create_app
    from imagematch.app import build_services

    empty = build_services(
        services.settings.model_copy(update={"data_dir": services.settings.data_dir / "x"})
    )
    app = create_app(empty, access=AccessControl(parse_tokens(f"prometheus:{TOKEN}")))
    with TestClient(app) as client:
        assert value(scrape(client), "imagematch_index_loaded") == 0
    empty.close()


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("refusing to fetch from a private address: 10.0.0.1", "private_address"),
        ("refusing to fetch from port 8080 of example.com: allowed ports are 443, 80", "port"),
        ("the file is 30,000,000 bytes; the limit is 20,000,000", "too_large"),
        ("not an image: the server sent text/html", "content_type"),
        ("more than 5 redirects", "redirect"),
        ("only http(s) URLs are accepted, got 'ftp://x'", "scheme"),
        ("download example.com/x.png: HTTP 404", "http_4xx"),
    ],
)
def test_fetch_refusals_are_counted_by_reason(message: str, reason: str) -> None:
    assert count_fetch_refusal(message) == reason
