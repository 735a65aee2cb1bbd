"""The HTTP API through an in-process ASGI client, with workers driven explicitly."""

from __future__ import annotations

import http.server
import io
import threading
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from imagematch.api import create_app
from imagematch.app import Services
from tests.conftest import PALETTE, image_bytes


@pytest.fixture
def image_server() -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 serving /blue.png, /page.html and /missing (404)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            routes = {
                "/blue.png": ("image/png", image_bytes(PALETTE["blue"], mark=1)),
                "/page.html": ("text/html", b"<html></html>"),
            }
            if self.path not in routes:
                self.send_error(404)
                return
            content_type, body = routes[self.path]
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_healthz(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"


def test_match_upload_returns_products_best_first(client: TestClient) -> None:
    photo = image_bytes(PALETTE["yellow"], mark=1)
    response = client.post("/v1/match", files={"file": ("photo.png", photo, "image/png")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [m["product_id"] for m in body["matches"]][:1] == ["P-yellow"]
    assert len(body["matches"]) == 4
    scores = [m["score"] for m in body["matches"]]
    assert scores == sorted(scores, reverse=True)
    assert set(body["matches"][0]) >= {"product_id", "name", "score", "image_id"}
    assert body["index_version"] == "v000001" and body["embedder_id"] == "tiny-rgb8x8@1"


def test_match_by_url(client: TestClient, image_server: str) -> None:
    response = client.post("/v1/match?top_k=2", json={"url": f"{image_server}/blue.png"})
    assert response.status_code == 200, response.text
    assert [m["product_id"] for m in response.json()["matches"]] == [
        "P-blue",
        response.json()["matches"][1]["product_id"],
    ]
    assert len(response.json()["matches"]) == 2


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [("/page.html", 422, "not an image"), ("/missing", 422, "HTTP 404")],
)
def test_match_by_bad_url(
    client: TestClient, image_server: str, path: str, status: int, message: str
) -> None:
    response = client.post("/v1/match", json={"url": f"{image_server}{path}"})
    assert response.status_code == status and message in response.json()["detail"]


def test_match_rejects_bad_input_clearly(client: TestClient) -> None:
    not_image = client.post("/v1/match", files={"file": ("x.png", b"hello", "image/png")})
    assert not_image.status_code == 422 and "not a decodable image" in not_image.json()["detail"]
    no_file = client.post("/v1/match", data={"other": "x"}, files={"nothing": ("a", b"", "text/plain")})
    assert no_file.status_code == 422 and "`file`" in no_file.json()["detail"]
    wrong_type = client.post("/v1/match", content=b"raw", headers={"content-type": "image/png"})
    assert wrong_type.status_code == 415
    no_url = client.post("/v1/match", json={"link": "x"})
    assert no_url.status_code == 422


def test_match_filters_by_category_and_flags_low_confidence(client: TestClient) -> None:
    photo = image_bytes(PALETTE["red"])
    filtered = client.post("/v1/match?category=nothing", files={"file": ("p.png", photo, "image/png")})
    assert filtered.json()["matches"] == [] and filtered.json()["no_confident_match"]
    strict = client.post("/v1/match?min_score=1.01", files={"file": ("p.png", photo, "image/png")})
    assert strict.json()["no_confident_match"] is True


def test_submit_twice_with_one_key_gives_one_job_and_one_prediction(
    client: TestClient, services: Services
) -> None:
    photo = image_bytes(PALETTE["green"], mark=1)
    form = {"idempotency_key": "ticket-7:att-1", "source": "test"}
    first = client.post("/v1/images", files={"file": ("a.png", photo, "image/png")}, data=form)
    assert first.status_code == 202 and first.json()["status"] == "pending"
    second = client.post("/v1/images", files={"file": ("a.png", photo, "image/png")}, data=form)
    assert second.status_code == 200 and second.json()["id"] == first.json()["id"]
    services.make_worker().drain()
    third = client.post("/v1/images", files={"file": ("a.png", photo, "image/png")}, data=form)
    assert third.json()["status"] == "complete"
    services.make_worker().drain()
    job = client.get(f"/v1/jobs/{first.json()['id']}").json()
    assert job["status"] == "complete" and job["prediction"]["best_product_id"] == "P-green"
    assert job["prediction"]["file_name"] == "a.png"
    assert len(client.get("/v1/predictions").json()["predictions"]) == 1
    assert len(client.get("/v1/jobs").json()["jobs"]) == 1


def test_failed_job_shows_its_reason_and_can_be_retried(client: TestClient, services: Services) -> None:
    job_id = client.post("/v1/images", files={"file": ("x.png", b"not an image", "image/png")}).json()["id"]
    services.make_worker().drain()
    failed = client.get(f"/v1/jobs/{job_id}").json()
    assert failed["status"] == "failed" and failed["error_kind"] == "permanent"
    assert "not a decodable image" in failed["error"]
    assert client.get("/v1/jobs?status=failed").json()["jobs"][0]["id"] == job_id
    retried = client.post(f"/v1/jobs/{job_id}/retry").json()
    assert retried["status"] == "pending" and retried["attempts"] == 0
    assert client.post("/v1/jobs/retry-failed").json() == {"requeued": 0}


def test_job_listing_pages(client: TestClient) -> None:
    for mark in range(5):
        client.post("/v1/images", files={"file": ("p.png", image_bytes((9, 9, 9 + mark)), "image/png")})
    page = client.get("/v1/jobs?limit=3").json()
    rest = client.get(f"/v1/jobs?limit=3&cursor={page['next_cursor']}").json()
    ids = [j["id"] for j in page["jobs"] + rest["jobs"]]
    assert len(ids) == len(set(ids)) == 5 and ids == sorted(ids, reverse=True)


def test_stats(client: TestClient) -> None:
    client.post("/v1/images", files={"file": ("p.png", image_bytes((5, 5, 5)), "image/png")})
    stats = client.get("/v1/stats").json()
    assert stats["index"]["version"] == "v000001" and stats["index"]["products"] == 4
    assert stats["index"]["vectors"] == 8 and stats["embedder"] == "tiny-rgb8x8@1"
    assert stats["jobs"]["pending"] == 1
    assert stats["index"]["deleted_not_purged"] == 0 and stats["index"]["products_without_images"] == 0
    assert stats["index"]["last_catalog_event"] is None and stats["index"]["recipe"]["scoring"] == "centroid"


def test_match_filters_by_metadata(client: TestClient, services: Services) -> None:
    index = services.index.get()
    red = index.products["P-red"]
    vectors = services.embedder.embed([Image.open(io.BytesIO(image_bytes(PALETTE["red"])))])
    index.upsert_product(
        red.model_copy(update={"metadata": {"brand": "Acme"}}), [("r.png", "f" * 64)], vectors
    )
    photo = image_bytes(PALETTE["red"], mark=2)
    only_acme = client.post("/v1/match?meta=brand=Acme", files={"file": ("p.png", photo, "image/png")})
    assert [m["product_id"] for m in only_acme.json()["matches"]] == ["P-red"]
    nothing = client.post(
        "/v1/match?meta=brand=Other&category=colour", files={"file": ("p.png", photo, "image/png")}
    )
    assert nothing.json()["matches"] == []
    bad = client.post("/v1/match?meta=brand", files={"file": ("p.png", photo, "image/png")})
    assert bad.status_code == 422 and "key=value" in bad.json()["detail"]


def test_no_index_yet_is_a_clear_503(services: Services) -> None:
    import shutil

    shutil.rmtree(services.snapshots.root)
    services.index._index = None  # a fresh process: nothing loaded yet
    with TestClient(create_app(services)) as client:
        response = client.post("/v1/match", files={"file": ("p.png", image_bytes((1, 1, 1)), "image/png")})
        assert response.status_code == 503 and "imagematch index build" in response.json()["detail"]
        assert client.get("/v1/stats").json()["index"]["version"] is None


def test_openapi_documents_both_body_kinds(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/v1/images"]["post"]["requestBody"]["content"]
    assert set(body) == {"multipart/form-data", "application/json"}


def test_dispatch_is_told_about_new_and_retried_jobs(services: Services) -> None:
    dispatched: list[list[int]] = []
    with TestClient(create_app(services, dispatch=dispatched.append)) as client:
        photo = image_bytes(PALETTE["blue"])
        job_id = client.post("/v1/images", files={"file": ("p.png", photo, "image/png")}).json()["id"]
        client.post("/v1/images", files={"file": ("p.png", photo, "image/png")})  # known: no dispatch
        assert dispatched == [[job_id]]
        worker = services.make_worker()
        assert worker.process_job_id(job_id) == "complete"
        assert worker.process_job_id(job_id) is None  # a duplicate dispatch is harmless
        client.post(f"/v1/jobs/{job_id}/retry")
        assert dispatched[-1] == [job_id]
