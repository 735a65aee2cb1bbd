"""Entities through the real API, worker, ledger and index (tiny model): a ticket's photos get
entity matches; catalog changes re-match them from stored vectors, never re-embedding a photo."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import shutil
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from pydantic import SecretStr

from imagematch import operations
from imagematch.api import create_app
from imagematch.app import Services, build_services
from imagematch.config import Settings
from imagematch.embedder import Vectors
from imagematch.embedder.tiny import TinyEmbedder
from imagematch.entities import EntityRef
from imagematch.models import JobStatus
from imagematch.sources.catalog import sign_catalog_event, verify_catalog_signature
from imagematch.sources.catalog.events import SIGNATURE_HEADER, TIMESTAMP_HEADER
from tests.conftest import FakeClock, ImageHost, image_bytes

SECRET = "catalog-secret-for-tests"  # a test fixture, not a credential
PURPLE = (150, 20, 160)


class CountingEmbedder(TinyEmbedder):
    """The tiny embedder, remembering a fingerprint of every picture it embedded."""

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()

    def embed(self, images: Sequence[Image.Image]) -> Vectors:
        for image in images:
            self.seen[hashlib.sha256(image.convert("RGB").tobytes()).hexdigest()] += 1
        return super().embed(images)


def fingerprint(data: bytes) -> str:
    return hashlib.sha256(Image.open(io.BytesIO(data)).convert("RGB").tobytes()).hexdigest()


@pytest.fixture
def live(settings: Settings, catalog_file: Path) -> Iterator[tuple[Services, CountingEmbedder]]:
    from index_builder import rebuild_catalog_index

    embedder = CountingEmbedder()
    secret = {"catalog_webhook_secret": SecretStr(SECRET)}
    services = build_services(settings.model_copy(update=secret), embedder=embedder)
    rebuild_catalog_index(services, str(catalog_file))
    yield services, embedder
    services.close()


def _send(client: TestClient, event: dict[str, Any]) -> None:
    body = json.dumps(event).encode()
    headers = sign_catalog_event(SECRET, int(time.time()), body)
    assert client.post("/webhooks/catalog", content=body, headers=headers).status_code in (200, 202)


def _create(client: TestClient, host: ImageHost, product_id: str, colour: tuple[int, int, int]) -> None:
    urls = [host.put(f"/{product_id}-{mark}.png", image_bytes(colour, mark=mark)) for mark in range(2)]
    _send(
        client,
        {"event": "product.created", "product": {"id": product_id, "name": product_id, "images": urls}},
    )


def _entity(client: TestClient) -> dict[str, Any]:
    response = client.get("/v1/entities/ticket/101/matches")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_ticket_matches_follow_the_catalog_without_re_embedding(
    live: tuple[Services, CountingEmbedder], image_host: ImageHost, catalog_file: Path
) -> None:
    from index_builder import rebuild_catalog_index

    services, embedder = live
    worker = services.make_worker()
    # Sized unlike the catalog images, so that no catalog view (a crop, a mirror) is one of them.
    photos = [image_bytes(PURPLE, mark=mark, size=(80, 60)) for mark in (3, 5)]
    with TestClient(create_app(services)) as client:
        assert client.get("/v1/entities/ticket/101/matches").status_code == 404
        for n, photo in enumerate(photos):
            response = client.post(
                "/v1/images",
                files={"file": (f"p{n}.png", photo, "image/png")},
                data={"entity_type": "ticket", "entity_id": "101"},
            )
            assert response.status_code == 202, response.text
        worker.drain()
        entity = _entity(client)
        assert len(entity["photos"]) == 2 and not entity["stale"]
        assert "P-live" not in [m["product_id"] for m in entity["matches"]]
        best = entity["matches"][0]
        assert best["rank"] == 1 and best["photos"] == 2 and len(best["evidence"]) == 2
        assert best["score"] == max(e["score"] for e in best["evidence"])

        _create(client, image_host, "P-live", PURPLE)  # fits the ticket's photos better
        worker.drain()
        entity = _entity(client)
        assert entity["matches"][0]["product_id"] == "P-live" and not entity["stale"]
        assert entity["index_version"] == services.index.get().served_version

        _send(client, {"event": "product.deleted", "product_id": "P-live"})
        worker.drain()
        entity = _entity(client)
        assert "P-live" not in [m["product_id"] for m in entity["matches"]]
        assert len(entity["matches"]) == 4  # the list is refilled from the remaining products

        before = entity["index_version"]
        rebuild_catalog_index(services, str(catalog_file))  # a new snapshot: everything re-matched
        worker.drain()
        entity = _entity(client)
        assert entity["index_version"] != before and not entity["stale"]
        assert client.get("/v1/stats").json()["entities"] == {"stale": 0}

    for photo in photos:  # each photo was embedded once, when it arrived
        assert embedder.seen[fingerprint(photo)] == 1


def test_a_burst_of_catalog_events_is_one_rematch_job_per_entity(
    live: tuple[Services, CountingEmbedder], image_host: ImageHost
) -> None:
    services, _ = live
    worker = services.make_worker()
    with TestClient(create_app(services)) as client:
        for entity_id in ("101", "102"):
            client.post(
                "/v1/images",
                files={"file": ("p.png", image_bytes(PURPLE, mark=3), "image/png")},
                data={"entity_type": "ticket", "entity_id": entity_id},
            )
        worker.drain()
        for n in range(3):
            _create(client, image_host, f"P-burst-{n}", PURPLE)
        worker.drain()
        rematches = services.ledger.list_jobs(source="rematch")
        keys = Counter(job.payload["entity_id"] for job in rematches)
        assert keys == {"101": 1, "102": 1}
        assert {job.status for job in rematches} == {JobStatus.COMPLETE}
        top = [m["product_id"] for m in _entity(client)["matches"][:3]]
        assert sorted(top) == ["P-burst-0", "P-burst-1", "P-burst-2"]


def test_the_rematch_command_recomputes_from_stored_vectors(
    live: tuple[Services, CountingEmbedder], monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from imagematch.cli import app

    services, _ = live
    with TestClient(create_app(services)) as client:
        for entity_id in ("101", "102"):
            client.post(
                "/v1/images",
                files={"file": ("p.png", image_bytes(PURPLE, mark=3, size=(80, 60)), "image/png")},
                data={"entity_type": "ticket", "entity_id": entity_id},
            )
        services.make_worker().drain()
    for key, value in {"DATA_DIR": str(services.settings.data_dir), "MODEL": "tiny"}.items():
        monkeypatch.setenv(f"IMAGEMATCH_{key}", value)
    result = CliRunner().invoke(app, ["rematch", "--entity", "ticket/102", "--json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert list(answer["top_products"]) == ["ticket/102"] and answer["top_products"]["ticket/102"]
    everything = CliRunner().invoke(app, ["rematch", "--since", "2000-01-01", "--json"])
    assert sorted(json.loads(everything.stdout.strip().splitlines()[-1])["top_products"]) == [
        "ticket/101", "ticket/102"
    ]  # fmt: skip
    assert CliRunner().invoke(app, ["rematch", "--entity", "nope"]).exit_code != 0

    shutil.rmtree(services.settings.data_dir / "photo_vectors")  # pruned: nothing to search with
    before = services.ledger.entity_matches(EntityRef.parse("ticket/101"))
    result = CliRunner().invoke(app, ["rematch", "--entity", "ticket/101", "--json"])
    assert result.exit_code == 0 and "no photo of the entity has a stored" in result.output
    assert services.ledger.entity_matches(EntityRef.parse("ticket/101")) == before  # kept, not emptied


class Receiver:
    """A matches-webhook receiver on 127.0.0.1 that checks signatures; ``fail`` makes it answer 500."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.fail = False
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                stamp = self.headers.get(TIMESTAMP_HEADER)
                verify_catalog_signature(  # the HMAC; the sender's clock is a test's fake one
                    SECRET, body, signature=self.headers.get(SIGNATURE_HEADER), timestamp=stamp,
                    now=datetime.fromtimestamp(int(stamp or 0), UTC), tolerance_seconds=60,
                )  # fmt: skip
                if not receiver.fail:
                    receiver.events.append(json.loads(body))
                self.send_response(500 if receiver.fail else 204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/matches"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_a_signed_callback_when_the_top_match_changes(
    settings: Settings, catalog_file: Path, image_host: ImageHost, clock: FakeClock
) -> None:
    from index_builder import rebuild_catalog_index

    receiver = Receiver()
    clock.now = datetime.now(UTC)  # the catalog webhooks below are signed with the real time
    secret = SecretStr(SECRET)
    update = {
        "catalog_webhook_secret": secret,
        "matches_webhook_url": receiver.url,
        "matches_webhook_secret": secret,
    }
    services = build_services(settings.model_copy(update=update), clock=clock)
    try:
        rebuild_catalog_index(services, str(catalog_file))
        worker = services.make_worker()
        with TestClient(create_app(services)) as client:
            client.post(
                "/v1/images",
                files={"file": ("p.png", image_bytes(PURPLE, mark=3, size=(80, 60)), "image/png")},
                data={"entity_type": "ticket", "entity_id": "101"},
            )
            worker.drain()
            [first] = receiver.events
            assert first["previous_top_product_id"] is None and first["entity_id"] == "101"
            _create(client, image_host, "P-live", PURPLE)
            worker.drain()
            assert receiver.events[-1]["previous_top_product_id"] == first["top_product_id"]
            assert receiver.events[-1]["top_product_id"] == "P-live"

            receiver.fail = True  # the receiver is down when the product goes: retried by the job
            _send(client, {"event": "product.deleted", "product_id": "P-live"})
            worker.run_once()
            worker.run_once()
            receiver.fail = False
            for _ in range(5):
                clock.advance(3600)  # past any retry delay
                operations.sweep(services)
                worker.drain()
            assert receiver.events[-1]["previous_top_product_id"] == "P-live"
            assert max(job.attempts for job in services.ledger.list_jobs(source="rematch")) >= 2
            assert _entity(client)["matches"][0]["product_id"] != "P-live"
    finally:
        receiver.server.shutdown()
        services.close()


def test_a_photo_sent_again_is_noted_as_a_near_duplicate(live: tuple[Services, CountingEmbedder]) -> None:
    services, _ = live
    png = image_bytes(PURPLE, mark=3, size=(80, 60))
    jpeg = image_bytes(PURPLE, mark=3, size=(80, 60), fmt="JPEG")  # the same shot, re-encoded
    other = image_bytes((30, 200, 40), mark=1, size=(80, 60))
    with TestClient(create_app(services)) as client:
        ids = []
        for name, photo in (("a.png", png), ("b.jpg", jpeg), ("c.png", other)):
            response = client.post(
                "/v1/images",
                files={"file": (name, photo, "image/png")},
                data={"entity_type": "listing", "entity_id": "abc"},
            )
            ids.append(response.json()["id"])
            services.make_worker().drain()
        photos = client.get("/v1/entities/listing/abc/matches").json()["photos"]
    duplicates = [p["quality"]["duplicate_of"] for p in photos]
    assert duplicates == [None, f"job {ids[0]}", None]
