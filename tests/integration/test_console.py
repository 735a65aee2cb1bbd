"""The console's pages over a real ledger and index (FastAPI TestClient; the browser tests drive
the same pages in Chromium)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from imagematch import operations
from imagematch.app import Services
from imagematch.models import JobKind, JobStatus, NewJob
from imagematch.sources.catalog import CATALOG_EVENT_KIND
from tests.conftest import PALETTE, image_bytes


@pytest.fixture
def client(services: Services, app_client: Callable[..., TestClient]) -> TestClient:
    client = app_client(services, client_options={"follow_redirects": False})
    client.get("/ui/jobs")  # a browser's first visit: it gets its CSRF cookie
    return client


def csrf(client: TestClient) -> str:
    return client.cookies["imagematch_csrf"]


def submit(client: TestClient, data: bytes, name: str = "photo.png") -> int:
    response = client.post(
        "/ui/try/submit", files={"file": (name, data, "image/png")}, data={"csrf_token": csrf(client)}
    )
    assert response.status_code == 303
    return int(response.headers["location"].rsplit("=", 1)[1])


def row(client: TestClient, job_id: int, query: str = "") -> str:
    page = client.get(f"/ui/jobs{query}").text
    found = re.search(rf'<tr id="job-{job_id}".*?</tr>', page, re.S)
    return found.group(0) if found else ""


def test_root_opens_the_jobs_page_which_cannot_be_framed(client: TestClient) -> None:
    assert client.get("/").headers["location"] == "/ui/jobs"
    page = client.get("/ui/jobs")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"


def test_a_matched_photo_shows_its_thumbnail_best_product_and_score(
    client: TestClient, services: Services
) -> None:
    job_id = submit(client, image_bytes(PALETTE["green"], mark=3))
    assert f'data-inflight="{job_id}"' in row(client, job_id)  # pending: the page polls it
    services.make_worker().drain()
    line = row(client, job_id)
    assert "badge-complete" in line and "Green" in line and "P-green" in line
    assert re.search(r"\d\.\d{3}", line) and "data-inflight" not in line  # the raw score, no band yet
    thumb = re.search(r'src="(/ui/thumbs/[0-9a-f]{64}\.jpg)"', line)
    assert thumb is not None
    image = client.get(thumb.group(1))
    assert image.headers["content-type"] == "image/jpeg" and "immutable" in image.headers["cache-control"]
    detail = client.get(f"/ui/jobs/{job_id}").text
    assert detail.count('class="match"') == 4 and "P-green/" in detail  # closest reference image id


def test_a_broken_upload_fails_with_its_reason_and_retry_requeues_it(
    client: TestClient, services: Services
) -> None:
    job_id = submit(client, b"not an image", "notes.txt")
    services.make_worker().drain()
    line = row(client, job_id, "?status=failed")
    assert "badge-failed" in line and "not a decodable image" in line
    history = client.get(f"/ui/jobs/{job_id}").text.split('class="attempts"')[1]
    assert history.count("<tr>") == 2 and "badge-failed" in history and "permanent" in history
    response = client.post(
        f"/ui/jobs/{job_id}/retry", data={"csrf_token": csrf(client), "return_to": "/ui/jobs?status=failed"}
    )
    assert response.status_code == 303 and response.headers["location"] == "/ui/jobs?status=failed"
    assert row(client, job_id, "?status=failed") == ""  # it left the failed list
    assert "badge-pending" in row(client, job_id)


def test_retry_all_failed_only_touches_the_filtered_jobs(client: TestClient, services: Services) -> None:
    image_job = submit(client, b"broken one", "a.txt")
    event, _ = services.ledger.submit(NewJob(kind=CATALOG_EVENT_KIND, idempotency_key="ev", payload={}))
    services.make_worker().drain()
    assert {services.ledger.get_job(i).status for i in (image_job, event.id)} == {JobStatus.FAILED}  # type: ignore[union-attr]
    form = {"csrf_token": csrf(client), "kind": JobKind.MATCH_IMAGE}
    response = client.post("/ui/jobs/retry-failed", data=form)  # both failed permanently: left out
    assert response.status_code == 303 and "retried=0&left_out=1" in response.headers["location"]
    assert services.ledger.get_job(image_job).status is JobStatus.FAILED  # type: ignore[union-attr]
    response = client.post("/ui/jobs/retry-failed", data={**form, "include_permanent": "true"})
    assert response.status_code == 303 and "retried=1" in response.headers["location"]
    assert services.ledger.get_job(image_job).status is JobStatus.PENDING  # type: ignore[union-attr]
    assert services.ledger.get_job(event.id).status is JobStatus.FAILED  # type: ignore[union-attr]


def test_filters_by_kind_and_date_and_pages_by_keyset(client: TestClient, services: Services) -> None:
    ids = [submit(client, image_bytes(PALETTE["red"], size=(64 + n, 48))) for n in range(5)]
    assert f"job-{ids[0]}" in client.get("/ui/jobs?kind=match_image").text
    assert '<tr id="job-' not in client.get("/ui/jobs?kind=zendesk_note").text
    first = client.get("/ui/jobs?limit=2").text
    assert f"job-{ids[4]}" in first and f"job-{ids[2]}" not in first
    older = re.search(r'href="(/ui/jobs\?[^"]*cursor=\d+[^"]*)"', first)
    assert older is not None
    second = client.get(older.group(1).replace("&amp;", "&")).text
    assert f"job-{ids[2]}" in second and f"job-{ids[4]}" not in second
    tomorrow = (services.clock() + timedelta(days=1)).date().isoformat()
    assert '<tr id="job-' not in client.get(f"/ui/jobs?since={tomorrow}").text


def test_rows_endpoint_returns_fresh_rows_for_polling(client: TestClient, services: Services) -> None:
    job_id = submit(client, image_bytes(PALETTE["blue"]))
    services.make_worker().drain()
    rows = client.get(f"/ui/jobs/rows?ids={job_id},99999").text
    assert rows.count("<tr") == 1 and "badge-complete" in rows


def test_try_page_answers_with_the_top_products_and_their_pictures(client: TestClient) -> None:
    response = client.post(
        "/ui/try",
        files={"file": ("q.png", image_bytes(PALETTE["yellow"], mark=2), "image/png")},
        data={"csrf_token": csrf(client), "category": "colour"},
        headers={"X-Console-Fragment": "1"},
    )
    assert response.status_code == 200 and "<html" not in response.text
    names = re.findall(r'class="match-name"[^>]*>([^<]+)<', response.text)
    assert names[0] == "Yellow" and len(names) == 4
    assert response.text.count("/ui/thumbs/") == 5  # the photo and four reference images
    broken = client.post(
        "/ui/try", files={"file": ("x.png", b"nope", "image/png")}, data={"csrf_token": csrf(client)}
    )
    assert broken.status_code == 422 and "not a decodable image" in broken.text


def test_catalog_search_product_page_and_health(client: TestClient, services: Services) -> None:
    assert "P-blue" in client.get("/ui/catalog?q=blu").text
    assert "P-red" not in client.get("/ui/catalog?q=blu").text
    job_id = submit(client, image_bytes(PALETTE["blue"], mark=1))
    services.make_worker().drain()
    product = client.get("/ui/catalog/P-blue").text
    assert product.count("/ui/thumbs/") == 3 and f"/ui/jobs/{job_id}" in product  # 2 references + 1 photo
    operations.sweep(services)
    health = client.get("/ui/health").text
    stats = client.get("/v1/stats").json()
    assert f'data-stat="index.version">{stats["index"]["version"]}<' in health
    assert f'<span class="tile-value">{stats["jobs"]["complete"]}</span>' in health
    assert 'data-stat="sweep.at"' in health and "<svg" in health
