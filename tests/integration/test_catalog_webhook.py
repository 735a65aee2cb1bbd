"""POST /webhooks/catalog through the ASGI app, on a real SQLite ledger, and the worker applying the
events through an in-memory CatalogUpdater."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from imagematch import operations
from imagematch.api import create_app, create_webhook_app
from imagematch.app import Services, build_services
from imagematch.config import Settings
from imagematch.errors import TransientError
from imagematch.models import JobStatus, Product
from imagematch.sources.catalog import sign_catalog_event
from tests.conftest import FakeClock

SECRET = "webhook-secret-for-tests"  # a test fixture, not a credential


@dataclass
class FakeCatalog:
    """An in-memory CatalogUpdater that keeps, per product, the newest event it was given."""

    products: dict[str, Product] = field(default_factory=dict)
    applied: dict[str, int] = field(default_factory=dict)  # product id -> sequence of its state
    fail_next: list[Exception] = field(default_factory=list)

    def upsert_product(self, product: Product, *, sequence: int) -> None:
        if self.fail_next:
            raise self.fail_next.pop()
        if sequence > self.applied.get(product.id, 0):
            self.applied[product.id] = sequence
            self.products[product.id] = product

    def delete_product(self, product_id: str, *, sequence: int) -> bool:
        known = product_id in self.products
        if sequence > self.applied.get(product_id, 0):
            self.applied[product_id] = sequence  # a tombstone: an older upsert must not revive it
            self.products.pop(product_id, None)
        return known


@pytest.fixture
def catalog() -> FakeCatalog:
    return FakeCatalog()


@pytest.fixture
def signed_services(settings: Settings, clock: FakeClock, catalog: FakeCatalog) -> Iterator[Services]:
    settings = settings.model_copy(update={"catalog_webhook_secret": SecretStr(SECRET)})
    services = build_services(settings, clock=clock, catalog_updater=catalog)
    yield services
    services.close()


@pytest.fixture
def client(signed_services: Services, app_client: Callable[..., TestClient]) -> TestClient:
    return app_client(signed_services)


def _event(product_id: str = "P1", **product: Any) -> dict[str, Any]:
    images = product.pop("images", [f"https://cdn.example/{product_id}.jpg"])
    return {"event": "product.updated", "product": {"id": product_id, "images": images, **product}}


def _post(client: TestClient, clock: FakeClock, event: Any, *, secret: str = SECRET) -> Any:
    body = json.dumps(event).encode() if not isinstance(event, bytes) else event
    headers = sign_catalog_event(secret, int(clock.now.timestamp()), body)
    return client.post("/webhooks/catalog", content=body, headers=headers)


def test_a_signed_event_becomes_a_pending_job(
    client: TestClient, clock: FakeClock, signed_services: Services
) -> None:
    response = _post(client, clock, _event(name="Oat milk"))
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["status"] == "pending" and job["kind"] == "catalog_event" and job["source"] == "catalog"
    stored = signed_services.ledger.get_job(job["id"])
    assert stored and stored.payload["product"]["name"] == "Oat milk"
    assert client.get("/v1/stats").json()["pending_catalog_jobs"] == 1


def test_redelivery_is_one_job_and_distinct_updates_are_not(client: TestClient, clock: FakeClock) -> None:
    first = _post(client, clock, _event(name="A"))
    clock.advance(60)  # redelivered a minute later: new timestamp and signature, same body
    again = _post(client, clock, _event(name="A"))
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    other = _post(client, clock, _event(name="B"))
    revert = _post(client, clock, {**_event(name="A"), "event_id": "evt-3"})
    assert other.status_code == revert.status_code == 202
    assert len({first.json()["id"], other.json()["id"], revert.json()["id"]}) == 3


@pytest.mark.parametrize("case", ["wrong secret", "no headers", "stale", "body changed"])
def test_bad_signatures_are_401_and_leave_no_job(
    client: TestClient, clock: FakeClock, signed_services: Services, case: str
) -> None:
    body, now = json.dumps(_event()).encode(), int(clock.now.timestamp())
    headers = {
        "wrong secret": sign_catalog_event("another-secret", now, body),
        "no headers": {"Content-Type": "application/json"},
        "stale": sign_catalog_event(SECRET, now - 301, body),
        "body changed": sign_catalog_event(SECRET, now, body),
    }[case]
    if case == "body changed":
        body = body.replace(b"P1", b"P2")
    response = client.post("/webhooks/catalog", content=body, headers=headers)
    assert response.status_code == 401
    assert signed_services.ledger.list_jobs() == []


def test_malformed_events_are_422_with_the_reason(client: TestClient, clock: FakeClock) -> None:
    response = _post(client, clock, _event(images=["file:///etc/passwd"]))
    assert response.status_code == 422 and "http(s)" in response.json()["detail"]
    assert _post(client, clock, b"{not json").status_code == 422
    unknown = _post(client, clock, {"event": "order.created"})
    assert unknown.status_code == 422 and "product.created" in unknown.json()["detail"]


def test_oversized_bodies_are_refused(client: TestClient, clock: FakeClock) -> None:
    response = _post(client, clock, _event(description="x" * 1_100_000))
    assert response.status_code == 413


def test_without_a_secret_the_webhook_is_off_unless_unsigned_is_allowed(settings: Settings) -> None:
    services = build_services(settings)
    with TestClient(create_app(services)) as client:
        refused = client.post("/webhooks/catalog", json=_event())
        assert refused.status_code == 503
        assert "IMAGEMATCH_CATALOG_WEBHOOK_SECRET" in refused.json()["detail"]
    services.settings = settings.model_copy(update={"catalog_allow_unsigned": True})
    with TestClient(create_app(services)) as client:
        assert client.post("/webhooks/catalog", json=_event()).status_code == 202
    services.close()


def test_a_storm_of_updates_ends_in_the_last_state_whatever_the_order(
    client: TestClient, clock: FakeClock, signed_services: Services, catalog: FakeCatalog
) -> None:
    ids = [_post(client, clock, _event(name=f"version {n}")).json()["id"] for n in range(10)]
    worker = signed_services.make_worker()
    for job_id in random.Random(7).sample(ids, len(ids)):
        assert worker.process_job_id(job_id) == JobStatus.COMPLETE
    assert catalog.products["P1"].name == "version 9"
    assert client.get("/v1/stats").json()["pending_catalog_jobs"] == 0


def test_deletes_apply_in_order_and_unknown_products_are_skipped(
    client: TestClient, clock: FakeClock, signed_services: Services, catalog: FakeCatalog
) -> None:
    created = _post(client, clock, {**_event("P7"), "event": "product.created"}).json()["id"]
    deleted = _post(client, clock, {"event": "product.deleted", "product_id": "P7"}).json()["id"]
    unknown = _post(client, clock, {"event": "product.deleted", "product_id": "nope"}).json()["id"]
    worker = signed_services.make_worker()
    assert worker.process_job_id(deleted) == JobStatus.SKIPPED  # arrived before its create ran
    assert worker.process_job_id(created) == JobStatus.COMPLETE
    assert "P7" not in catalog.products  # the older create did not revive it
    assert worker.process_job_id(unknown) == JobStatus.SKIPPED
    job = client.get(f"/v1/jobs/{unknown}").json()
    assert job["status"] == "skipped" and "not in the index" in job["error"]


def test_updater_errors_go_through_the_retry_policy(
    client: TestClient, clock: FakeClock, signed_services: Services, catalog: FakeCatalog
) -> None:
    job_id = _post(client, clock, _event()).json()["id"]
    catalog.fail_next.append(TransientError("image CDN answered 503"))
    assert signed_services.make_worker().process_job_id(job_id) == JobStatus.FAILED
    failed = client.get(f"/v1/jobs/{job_id}").json()
    assert failed["error_kind"] == "transient" and failed["next_attempt_at"]
    assert client.get("/v1/stats").json()["pending_catalog_jobs"] == 0  # failed, waiting to retry
    clock.advance(3600)
    operations.sweep(signed_services)
    assert signed_services.make_worker().drain() == 1 and "P1" in catalog.products


def test_the_webhook_app_serves_only_webhooks(signed_services: Services, clock: FakeClock) -> None:
    dispatched: list[list[int]] = []
    with TestClient(
        create_webhook_app(
            signed_services.settings, signed_services.ledger, clock=clock, dispatch=dispatched.append
        )
    ) as client:
        job_id = _post(client, clock, _event()).json()["id"]
        _post(client, clock, _event())  # a redelivery: nothing new to dispatch
        assert dispatched == [[job_id]]
        assert client.get("/healthz").status_code == 200
        assert client.get("/v1/stats").status_code == 404
        assert client.post("/v1/images", json={"url": "https://x"}).status_code == 404
