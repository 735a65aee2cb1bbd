"""What the Zendesk sidebar reads, through the real API, worker, ledger and index (tiny model): a
ticket's photos with their status (in flight, failed, complete), their thumbnails, each photo's
top-3, and the products' catalog pictures (never a learned reference)."""

from __future__ import annotations

import base64
import dataclasses
import io
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from PIL import Image
from pydantic import SecretStr

from imagematch.api.access import AccessControl
from imagematch.app import Services
from tests.conftest import ImageHost, image_bytes

RED = (220, 30, 30)


def _submit(client: TestClient, data: bytes, name: str, ticket: str = "101") -> int:
    response = client.post(
        "/v1/images",
        files={"file": (name, data, "image/png")},
        data={"entity_type": "ticket", "entity_id": ticket},
    )
    assert response.status_code == 202, response.text
    return int(response.json()["id"])


def _ticket(client: TestClient, ticket: str = "101") -> dict[str, Any]:
    response = client.get(f"/v1/entities/ticket/{ticket}/matches")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _jpeg(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG"
    return image


def test_a_photo_in_flight_is_listed_then_completes_with_its_top_three(
    client: TestClient, services: Services
) -> None:
    assert client.get("/v1/entities/ticket/101/matches").status_code == 404
    job_id = _submit(client, image_bytes(RED, mark=3, size=(80, 60)), "red.png")
    pending = _ticket(client)
    assert [(p["job_id"], p["status"], p["matches"]) for p in pending["photos"]] == [(job_id, "pending", [])]
    assert pending["matches"] == [] and pending["console_url"] is None

    services.make_worker().drain()
    photo = _ticket(client)["photos"][0]
    assert photo["status"] == "complete" and photo["file_name"] == "red.png"
    assert [m["rank"] for m in photo["matches"]] == [1, 2, 3]
    top = photo["matches"][0]
    assert top["product_id"] == "P-red" and top["name"] == "Red"
    assert top["image"] == "/v1/products/P-red/image"
    assert photo["thumbnail"] == f"/v1/jobs/{job_id}/thumbnail"
    assert "confidence" in photo and "band" in photo and photo["label"] is None
    assert photo["quality"]["advice"] is not None


def test_a_label_given_from_the_sidebar_shows_on_its_photo(client: TestClient, services: Services) -> None:
    job_id = _submit(client, image_bytes(RED, mark=2, size=(80, 60)), "red.png", ticket="303")
    services.make_worker().drain()
    agent = {"name": "Ada Agent", "email": "ada@example.com"}
    body = {"verdict": "confirmed", "product_id": "P-red", "comment": None, "agent": agent}
    assert client.post(f"/v1/jobs/{job_id}/feedback", json=body).status_code == 201
    label = _ticket(client, "303")["photos"][0]["label"]
    assert (label["verdict"], label["product_id"], label["agent_name"]) == ("confirmed", "P-red", "Ada Agent")


def test_a_failed_photo_says_why(client: TestClient, services: Services, image_host: ImageHost) -> None:
    response = client.post(
        "/v1/images",
        json={"url": f"{image_host.base_url}/missing.png", "entity_type": "ticket", "entity_id": "202"},
    )
    assert response.status_code == 202, response.text
    services.make_worker().drain()
    (photo,) = _ticket(client, "202")["photos"]
    assert photo["status"] == "failed" and photo["error_kind"] == "permanent"
    assert "404" in photo["error"] and photo["matches"] == [] and photo["thumbnail"] is None
    assert photo["file_name"] == "missing.png"


def test_thumbnail_as_jpeg_or_as_a_data_url(client: TestClient, services: Services) -> None:
    job_id = _submit(client, image_bytes(RED, mark=1, size=(400, 300)), "big.png")
    assert client.get(f"/v1/jobs/{job_id}/thumbnail").status_code == 404  # not processed yet
    services.make_worker().drain()
    response = client.get(f"/v1/jobs/{job_id}/thumbnail")
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    assert max(_jpeg(response.content).size) == 256
    as_json = client.get(f"/v1/jobs/{job_id}/thumbnail", params={"format": "json"}).json()
    prefix = "data:image/jpeg;base64,"
    assert as_json["content_type"] == "image/jpeg"
    assert as_json["data_url"].startswith(prefix)
    assert base64.b64decode(as_json["data_url"][len(prefix) :]) == response.content


def test_product_image_is_a_catalog_image(client: TestClient, services: Services) -> None:
    response = client.get("/v1/products/P-red/image")
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    red = _jpeg(response.content).convert("RGB").getpixel((2, 2))
    assert isinstance(red, tuple) and red[0] > 150 and red[1] < 90
    assert client.get("/v1/products/P-red/image", params={"format": "json"}).json()["data_url"]


def test_product_image_never_serves_a_learned_reference(client: TestClient, services: Services) -> None:
    """Every image of the product marked learned: the product has no picture rather than a
    customer's photo."""
    index = services.index.get()
    for vid in index.product_vector_ids("P-red"):
        index.images[vid] = dataclasses.replace(index.images[vid], origin="learned")
    assert client.get("/v1/products/P-red/image").status_code == 404


def test_the_sidebar_token_opens_its_routes(
    services: Services, app_client: Callable[..., TestClient]
) -> None:
    # Without a token they are closed: tests/integration/test_access.py's table lists them.
    token = SecretStr("sidebar:sidebar-test-token-0123456789")  # a test fixture, not a credential
    access = AccessControl.from_settings(services.settings.model_copy(update={"api_token": token}))
    client = app_client(services, access=access)
    headers = {"Authorization": "Bearer sidebar-test-token-0123456789"}
    assert client.get("/v1/products/P-red/image", headers=headers).status_code == 200
