"""The catalog-sync acceptance path through the real API, worker and index (tiny model):
signed webhook → job → LiveCatalog → searchable; update, delete, restart, and a webhook storm."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from imagematch.api import create_app
from imagematch.app import Services, build_services
from imagematch.config import Settings
from imagematch.sources.catalog import sign_catalog_event
from tests.conftest import ImageHost, image_bytes

SECRET = "catalog-secret-for-tests"  # a test fixture, not a credential
PURPLE, ORANGE = (150, 20, 160), (250, 140, 10)


@pytest.fixture
def live(settings: Settings, catalog_file: Any) -> Iterator[Services]:
    from index_builder import rebuild_catalog_index

    services = build_services(settings.model_copy(update={"catalog_webhook_secret": SecretStr(SECRET)}))
    rebuild_catalog_index(services, str(catalog_file))
    yield services
    services.close()


def _send(client: TestClient, event: dict[str, Any]) -> Any:
    body = json.dumps(event).encode()
    response = client.post(
        "/webhooks/catalog", content=body, headers=sign_catalog_event(SECRET, int(time.time()), body)
    )
    assert response.status_code in (200, 202), response.text
    return response.json()


def _upsert(host: ImageHost, colour: tuple[int, int, int], tag: str) -> dict[str, Any]:
    urls = [host.put(f"/{tag}-{mark}.png", image_bytes(colour, mark=mark)) for mark in range(2)]
    return {"event": "product.updated", "product": {"id": "P-live", "name": tag, "images": urls}}


def _top(client: TestClient, colour: tuple[int, int, int]) -> list[str]:
    photo = image_bytes(colour, mark=3)
    response = client.post("/v1/match", files={"file": ("q.png", photo, "image/png")})
    return [m["product_id"] for m in response.json()["matches"]]


def test_create_update_delete_restart_through_the_api(live: Services, image_host: ImageHost) -> None:
    worker = live.make_worker()
    with TestClient(create_app(live)) as client:
        _send(client, {**_upsert(image_host, PURPLE, "purple"), "event": "product.created"})
        worker.drain()
        assert _top(client, PURPLE)[0] == "P-live"
        served = live.index.get()  # the console's pictures of its images, made as it was applied
        digests = [served.images[vid].sha256 for vid in served.product_vector_ids("P-live")]
        assert digests and all(live.thumbnails.has(digest) for digest in digests)

        _send(client, _upsert(image_host, ORANGE, "orange"))
        worker.drain()
        assert _top(client, ORANGE)[0] == "P-live"
        assert "P-live" not in _top(client, PURPLE)[:1]  # the old images no longer match

        job = _send(client, {"event": "product.deleted", "product_id": "P-live"})
        worker.drain()
        assert live.ledger.get_job(job["id"]).status == "complete"  # type: ignore[union-attr]
        assert "P-live" not in _top(client, ORANGE) and "P-live" not in _top(client, PURPLE)
        stats = client.get("/v1/stats").json()
        assert stats["index"]["deleted_not_purged"] == 1
        assert stats["index"]["last_catalog_event"]["sequence"] == job["id"]
        assert stats["pending_catalog_jobs"] == 0

        _send(client, _upsert(image_host, PURPLE, "again"))  # re-created after the delete
        worker.drain()

    image_host.files.clear()  # a restart must not download (or embed) anything again
    restarted = build_services(live.settings.model_copy())
    try:
        with TestClient(create_app(restarted)) as client:
            assert _top(client, PURPLE)[0] == "P-live"
            assert client.get("/v1/stats").json()["index"]["deleted_not_purged"] == 0
    finally:
        restarted.close()


def test_a_storm_of_ten_updates_ends_in_the_last_state(live: Services, image_host: ImageHost) -> None:
    with TestClient(create_app(live)) as client:
        urls = [image_host.put(f"/s{n}.png", image_bytes(PURPLE, mark=n)) for n in range(10)]
        events = [
            {"event": "product.updated", "product": {"id": "P-storm", "name": f"v{n}", "images": [url]}}
            for n, url in enumerate(urls)
        ]
        jobs = [_send(client, event) for event in events]  # arrival order = job id order
    workers = [live.make_worker(f"w{n}") for n in range(4)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda w: w.drain(), workers))
    index = live.index.get()
    assert index.products["P-storm"].name == "v9" and index.sequences["P-storm"] == jobs[-1]["id"]
    statuses = {live.ledger.get_job(j["id"]).status for j in jobs}  # type: ignore[union-attr]
    assert statuses <= {"complete", "skipped"}  # older events overtaken by newer ones are skipped
