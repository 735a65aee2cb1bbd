"""Feedback on answers over HTTP: confirm, correct, retract, errors, idempotency, history, export,
and the catalog search a product is picked with."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from imagematch.api import create_app
from imagematch.api.access import AccessControl, ApiToken
from imagematch.app import Services
from imagematch.models import NewJob
from imagematch.sources.zendesk import ZendeskTicketPayload
from tests.conftest import PALETTE, image_bytes

TOKEN = "alice-token-0123456789"


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    access = AccessControl([ApiToken("alice", TOKEN)])
    with TestClient(create_app(services, access=access)) as client:
        client.headers["Authorization"] = f"Bearer {TOKEN}"
        yield client


def _matched_job(client: TestClient, services: Services, colour: str = "red", mark: int = 3) -> int:
    photo = image_bytes(PALETTE[colour], mark=mark)
    job_id = int(client.post("/v1/images", files={"file": ("p.png", photo, "image/png")}).json()["id"])
    services.make_worker().drain()
    return job_id


def test_confirm_then_correct_then_retract(client: TestClient, services: Services) -> None:
    job_id = _matched_job(client, services)
    assert client.get(f"/v1/jobs/{job_id}").json()["label"] is None
    body = {
        "verdict": "confirmed",
        "product_id": "P-red",
        "agent": {"name": "Ann", "email": "ann@example.com"},
    }
    confirmed = client.post(f"/v1/jobs/{job_id}/feedback", json=body)
    assert confirmed.status_code == 201
    label = confirmed.json()
    assert {
        k: label[k] for k in ("job_id", "verdict", "product_id", "given_by", "agent_name", "agent_email")
    } == {
        "job_id": job_id,
        "verdict": "confirmed",
        "product_id": "P-red",
        "given_by": "alice",
        "agent_name": "Ann",
        "agent_email": "ann@example.com",
    }
    assert label["predicted_rank"] == 1 and label["created_at"] and label["comment"] is None
    again = client.post(f"/v1/jobs/{job_id}/feedback", json=body)
    assert again.status_code == 200 and again.json()["id"] == label["id"]
    corrected = client.post(
        f"/v1/jobs/{job_id}/feedback",
        json={"verdict": "corrected", "product_id": "P-blue", "comment": "blue lid"},
    )
    assert corrected.status_code == 201 and corrected.json()["predicted_rank"] != 1
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["label"]["product_id"] == "P-blue" and job["label"]["comment"] == "blue lid"
    retracted = client.delete(f"/v1/jobs/{job_id}/feedback")
    assert retracted.status_code == 200 and retracted.json()["ended_by"] == "alice"
    assert client.get(f"/v1/jobs/{job_id}").json()["label"] is None
    assert client.delete(f"/v1/jobs/{job_id}/feedback").status_code == 204
    history = client.get("/v1/feedback?history=true").text.splitlines()
    assert [json.loads(line)["verdict"] for line in history] == ["confirmed", "corrected"]
    assert client.get("/v1/feedback").text == ""


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"verdict": "confirmed", "product_id": "P-nope"}, 422, "not in the served catalog"),
        ({"verdict": "corrected"}, 422, "product_id is required"),
        ({"verdict": "unusable", "product_id": "P-red"}, 422, "names no product"),
        ({"verdict": "maybe"}, 422, ""),
    ],
)
def test_bad_labels_are_refused_with_the_reason(
    client: TestClient, services: Services, body: dict[str, str], status: int, message: str
) -> None:
    job_id = _matched_job(client, services)
    answer = client.post(f"/v1/jobs/{job_id}/feedback", json=body)
    assert answer.status_code == status and message in answer.text
    assert client.get(f"/v1/jobs/{job_id}").json()["label"] is None


def test_a_job_without_a_photo_cannot_be_labelled(client: TestClient, services: Services) -> None:
    body = {"verdict": "unusable"}
    scan, _ = services.ledger.submit(
        NewJob(
            kind=ZendeskTicketPayload.KIND,
            source="zendesk",
            idempotency_key="t-1",
            payload={"ticket_id": "1"},
        )
    )
    refused = client.post(f"/v1/jobs/{scan.id}/feedback", json=body)
    assert refused.status_code == 409 and "no photo" in refused.text


def test_a_label_records_the_name_of_its_token(services: Services) -> None:
    access = AccessControl([ApiToken("alice", TOKEN), ApiToken("bob", "bob-token-0123456789")])
    with TestClient(create_app(services, access=access)) as client:
        client.headers["Authorization"] = "Bearer bob-token-0123456789"
        job = _matched_job(client, services, "green")
        label = client.post(f"/v1/jobs/{job}/feedback", json={"verdict": "not_in_catalog"}).json()
        assert label["given_by"] == "bob" and label["product_id"] is None


def test_export_filters_and_formats(client: TestClient, services: Services) -> None:
    red, green = _matched_job(client, services, "red"), _matched_job(client, services, "green")
    client.post(f"/v1/jobs/{red}/feedback", json={"verdict": "confirmed", "product_id": "P-red"})
    client.post(f"/v1/jobs/{green}/feedback", json={"verdict": "not_in_catalog"})
    lines = client.get("/v1/feedback?verdict=not_in_catalog").text.splitlines()
    assert [json.loads(line)["job_id"] for line in lines] == [green]
    exported = client.get("/v1/feedback?format=csv")
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(r["job_id"], r["verdict"], r["product_id"]) for r in rows] == [
        (str(red), "confirmed", "P-red"),
        (str(green), "not_in_catalog", ""),
    ]
    assert client.get("/v1/feedback?since=2999-01-01T00:00:00Z").text == ""


def test_product_search_by_id_or_name(client: TestClient) -> None:
    found = client.get("/v1/products?q=p-red").json()["products"]
    assert found == [{"id": "P-red", "name": "Red", "category": "colour"}]
    assert [p["id"] for p in client.get("/v1/products?q=ye").json()["products"]] == ["P-yellow"]
    assert len(client.get("/v1/products?limit=2").json()["products"]) == 2
    assert client.get("/v1/products?q=zebra").json() == {"products": []}


def test_stats_measure_agreement_from_the_labels(client: TestClient, services: Services) -> None:
    red, green, blue = (_matched_job(client, services, c) for c in ("red", "green", "blue"))
    client.post(f"/v1/jobs/{red}/feedback", json={"verdict": "confirmed", "product_id": "P-red"})
    client.post(f"/v1/jobs/{green}/feedback", json={"verdict": "corrected", "product_id": "P-blue"})
    client.post(f"/v1/jobs/{blue}/feedback", json={"verdict": "not_in_catalog"})
    feedback = client.get("/v1/stats").json()["feedback"]
    week = feedback["7d"]
    assert (week["labelled"], week["named_product"], week["top1_agreement"]) == (3, 2, 0.5)
    assert week["top5_agreement"] == 1.0 and week["not_in_catalog_share"] == round(1 / 3, 4)
    assert week["by_source"]["api"]["labelled"] == 3
    assert week["by_category"]["colour"]["top1_agreement"] == 0.5
    assert feedback["30d"]["labelled"] == 3 and len(feedback["weekly"]) == 12
    assert feedback["weekly"][-1]["labelled"] == 3
    services.make_worker().drain()  # the learn jobs
    assert client.get("/v1/stats").json()["feedback"]["learned_references"] == 2
