"""The console pages of issue #24 over a real ledger and index (FastAPI TestClient): the search
box, the entity page, the review queue, what to do next on a failed job, CSV export and bulk retry,
and the small things (HTML error page for a bad filter, plurals, duplicate submit)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from imagematch.api import create_app
from imagematch.app import Services
from imagematch.models import JobStatus
from tests.conftest import PALETTE, image_bytes


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services), follow_redirects=False) as client:
        client.get("/ui/jobs")  # a browser's first visit: it gets its CSRF cookie
        yield client


def csrf(client: TestClient) -> str:
    return client.cookies["imagematch_csrf"]


def upload(client: TestClient, data: bytes, name: str = "photo.png", entity: str | None = None) -> int:
    fields = dict(zip(("entity_type", "entity_id"), entity.split("/"), strict=True)) if entity else {}
    response = client.post("/v1/images", files={"file": (name, data, "image/png")}, data=fields)
    assert response.status_code in (200, 201, 202), response.text
    return int(response.json()["id"])


def job_ids(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr id="job-(\d+)"', page)]


def test_the_search_box_finds_a_job_by_id_entity_file_name_and_product(
    client: TestClient, services: Services
) -> None:
    red = upload(client, image_bytes(PALETTE["red"]), "kitchen-shelf.png", entity="ticket/101")
    blue = upload(client, image_bytes(PALETTE["blue"]), "garage.png", entity="ticket/202")
    services.make_worker().drain()
    assert job_ids(client.get(f"/ui/jobs?q={blue}").text) == [blue]
    assert job_ids(client.get(f"/ui/jobs?q=%23{red}").text) == [red]
    assert job_ids(client.get("/ui/jobs?q=ticket/101").text) == [red]
    assert job_ids(client.get("/ui/jobs?q=202").text) == [blue]
    assert job_ids(client.get("/ui/jobs?q=KITCHEN").text) == [red]
    assert job_ids(client.get("/ui/jobs?q=P-blue").text) == [blue]  # its best product
    assert job_ids(client.get("/ui/jobs?q=nothing-like-this").text) == []
    assert job_ids(client.get("/ui/jobs?entity=ticket/202").text) == [blue]


def test_the_entity_page_shows_its_photos_and_combined_matches(
    client: TestClient, services: Services
) -> None:
    first = upload(client, image_bytes(PALETTE["green"]), entity="ticket/7")
    second = upload(client, image_bytes(PALETTE["green"], mark=2), entity="ticket/7")
    services.make_worker().drain()
    row = client.get("/ui/jobs").text
    assert 'href="/ui/entities/ticket/7"' in row  # job rows link to it
    assert 'href="/ui/entities/ticket/7"' in client.get(f"/ui/jobs/{first}").text
    page = client.get("/ui/entities/ticket/7")
    assert page.status_code == 200
    assert f'id="photo-{first}"' in page.text and f'id="photo-{second}"' in page.text
    assert "2 photos" in page.text and "Combined matches" in page.text
    combined = page.text.split('class="entity-matches"')[1].split("</table>")[0]
    assert "P-green" in combined and "up to date" in page.text


def test_a_bad_filter_value_gives_an_html_page_with_the_reason(client: TestClient) -> None:
    for query, reason in [
        ("status=done", "is not a job status"),
        ("kind=photo", "is not a job kind"),
        ("since=yesterday", "is not a date"),
        ("entity=101", "is not an entity"),
    ]:
        response = client.get(f"/ui/jobs?{query}")
        assert response.status_code == 422 and response.headers["content-type"].startswith("text/html")
        assert reason in response.text and "<h1>" in response.text


def test_permanent_failures_offer_retry_only_behind_a_warning(client: TestClient, services: Services) -> None:
    broken = upload(client, b"this is not a photo", "notes.txt")
    fine = upload(client, image_bytes(PALETTE["red"]))
    services.make_worker().drain()
    row = re.search(rf'<tr id="job-{broken}".*?</tr>', client.get("/ui/jobs").text, re.S)
    assert row is not None and "permanent" in row.group(0) and "not a decodable image" in row.group(0)
    assert "Retry</button>" not in row.group(0) and "Why?" in row.group(0)
    page = client.get(f"/ui/jobs/{broken}").text
    head = page.split('class="split')[0]
    assert ">Retry</button>" not in head
    assert "Retry anyway" in page and "will most likely fail again" in page
    # Retry selected: the permanent one is left out unless asked.
    form = {"csrf_token": csrf(client), "ids": [str(broken), str(fine)], "return_to": "/ui/jobs"}
    response = client.post("/ui/jobs/retry-selected", data=form)
    assert response.status_code == 303 and "retried=1&left_out=1" in response.headers["location"]
    assert services.ledger.get_job(broken).status is JobStatus.FAILED  # type: ignore[union-attr]
    notice = client.get(response.headers["location"]).text
    assert "1 job sent to be retried; 1 permanent failure left out" in notice
    response = client.post("/ui/jobs/retry-selected", data={**form, "include_permanent": "true"})
    assert services.ledger.get_job(broken).status is JobStatus.PENDING  # type: ignore[union-attr]


def test_a_failed_url_job_shows_its_url_and_attempts_keep_counting(
    client: TestClient, services: Services
) -> None:
    url = "http://127.0.0.1:9/missing.jpg"  # nothing listens on port 9: the fetch fails
    job = client.post("/v1/images", json={"url": url}).json()["id"]
    services.make_worker().drain()
    for _ in range(2):
        client.post(f"/ui/jobs/{job}/retry", data={"csrf_token": csrf(client)})
        services.make_worker().drain()
    page = client.get(f"/ui/jobs/{job}").text
    assert url in page and "What went wrong" in page
    numbers = re.findall(r'<td class="num">(\d+)</td>', page.split('class="attempts"')[1])
    assert numbers == sorted(set(numbers), key=int) and len(numbers) >= 3


def test_csv_export_follows_the_filter(client: TestClient, services: Services) -> None:
    red = upload(client, image_bytes(PALETTE["red"]), entity="ticket/5")
    upload(client, image_bytes(PALETTE["blue"]))
    services.make_worker().drain()
    page = client.get("/ui/jobs?entity=ticket/5").text
    assert 'href="/ui/jobs.csv?entity=ticket%2F5"' in page
    response = client.get("/ui/jobs.csv?entity=ticket/5")
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [int(r["id"]) for r in rows] == [red]
    assert rows[0]["entity"] == "ticket/5" and rows[0]["best_product_id"] == "P-red"


def test_the_review_queue_lists_unlabelled_answers_least_confident_first(
    client: TestClient, services: Services
) -> None:
    ids = [upload(client, image_bytes(PALETTE[c])) for c in ("red", "green", "blue")]
    services.make_worker().drain()
    page = client.get("/ui/review").text
    assert "3 photos to review" in page
    order = [int(i) for i in re.findall(r'<article class="review-item card" id="review-(\d+)"', page)]
    assert sorted(order) == sorted(ids)
    scores = [services.ledger.get_prediction(i).best_score for i in order]  # type: ignore[union-attr]
    assert scores == sorted(scores)  # no calibrated confidence yet: the raw score orders it
    assert page.count('class="btn btn-small pick"') >= 3 * 3 and "Not in catalog" in page


def test_small_things_plurals_kind_labels_duplicates(client: TestClient, services: Services) -> None:
    photo = image_bytes(PALETTE["red"], mark=5)
    first = client.post(
        "/ui/try/submit", files={"file": ("a.png", photo, "image/png")}, data={"csrf_token": csrf(client)}
    )
    again = client.post(
        "/ui/try/submit", files={"file": ("a.png", photo, "image/png")}, data={"csrf_token": csrf(client)}
    )
    job = int(first.headers["location"].rsplit("=", 1)[1])
    assert again.headers["location"] == f"/ui/jobs?highlight={job}&duplicate=1#job-{job}"
    assert "already submitted" in client.get(again.headers["location"]).text
    one = client.post("/ui/try", data={"csrf_token": csrf(client), "category": ""}, files={})
    assert "1 products" not in one.text
    page = client.get("/ui/jobs").text
    assert "Photo</span>" in page and "match image" not in page
    assert "min ago" in page or " s ago" in page


def test_a_label_shows_on_the_job_page_and_leaves_the_review_queue(
    client: TestClient, services: Services
) -> None:
    job = upload(client, image_bytes(PALETTE["red"]))
    other = upload(client, image_bytes(PALETTE["blue"]))
    services.make_worker().drain()
    headers = {"X-CSRF-Token": csrf(client)}  # what label.js sends with the session cookie
    body = {"verdict": "corrected", "product_id": "P-green", "comment": None}
    assert client.post(f"/v1/jobs/{job}/feedback", json=body, headers=headers).status_code == 201
    page = client.get(f"/ui/jobs/{job}").text
    label = page.split('class="current-label"')[1].split("</p>")[0]
    assert "hidden" not in label.split(">")[0] and "Corrected to" in label and "P-green" in label
    assert "1 photo to review" in client.get("/ui/review").text
    assert f'id="review-{other}"' in client.get("/ui/review").text
    entity_free = client.get("/ui/review").text
    assert f'id="review-{job}"' not in entity_free
    assert client.delete(f"/v1/jobs/{job}/feedback", headers=headers).status_code in (200, 204)
    assert "2 photos to review" in client.get("/ui/review").text


def test_health_shows_the_label_figures_and_the_fit_in_use(client: TestClient, services: Services) -> None:
    job = upload(client, image_bytes(PALETTE["red"]))
    services.make_worker().drain()
    headers = {"X-CSRF-Token": csrf(client)}
    body = {"verdict": "confirmed", "product_id": "P-red", "comment": None}
    assert client.post(f"/v1/jobs/{job}/feedback", json=body, headers=headers).status_code == 201
    page = client.get("/ui/health").text
    feedback = page.split('id="feedback"')[1].split("</section>")[0]
    assert "Last 7 days" in feedback and "Last 30 days" in feedback and "100%" in feedback
    assert "Per source" in feedback and "Weekly top-1 agreement" in feedback
    assert "learned reference" in feedback
    assert "Confidence fit in use" in page
