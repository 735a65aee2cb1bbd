"""Zendesk end to end: signed webhooks into the real FastAPI app, jobs run by the real worker,
against a fake Zendesk (real HTTP on 127.0.0.1). Time is a FakeClock: retries are made due by
moving it, never by sleeping."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from pydantic import SecretStr

from imagematch import operations
from imagematch.api import create_app
from imagematch.app import Services, build_services
from imagematch.config import Settings
from imagematch.errors import TransientError
from imagematch.models import ErrorKind, Job, JobStatus
from imagematch.sources.zendesk import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    ZendeskImagePayload,
    ZendeskNotePayload,
    ZendeskTicketPayload,
    image_job_key,
    note_job_key,
    sign,
)
from imagematch.worker import WorkerPool
from tests.conftest import PALETTE, FakeClock, image_bytes
from tests.fake_zendesk import FakeZendesk

SECRET = "whsec-test-secret"
TICKET = 7


def zendesk_settings(settings: Settings, fake: FakeZendesk, **overrides: Any) -> Settings:
    return settings.model_copy(
        update={
            "zendesk_base_url": fake.base_url,
            "zendesk_email": fake.email,
            "zendesk_api_token": SecretStr(fake.api_token),
            "zendesk_webhook_secret": SecretStr(SECRET),
            "zendesk_post_notes": True,
            "fetch_timeout_seconds": 2.0,
            **overrides,
        }
    )


@pytest.fixture
def make_services(
    settings: Settings, zendesk: FakeZendesk, catalog_file: Any, clock: FakeClock
) -> Iterator[Any]:
    """Services wired to the fake Zendesk and the FakeClock, with the synthetic catalog indexed."""
    from index_builder import rebuild_catalog_index

    built: list[Services] = []

    def make(**overrides: Any) -> Services:
        services = build_services(zendesk_settings(settings, zendesk, **overrides), clock=clock)
        if not built:
            rebuild_catalog_index(services, str(catalog_file))
        built.append(services)
        return services

    yield make
    for services in built:
        services.close()


@pytest.fixture
def services(make_services: Any) -> Services:
    return make_services()  # type: ignore[no-any-return]


def deliver(
    client: TestClient,
    body: dict[str, Any] | bytes,
    *,
    at: datetime,
    secret: str = SECRET,
    signature: str | None = None,
) -> Response:
    """POST a webhook signed as Zendesk signs it (timestamp + raw body)."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    timestamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: signature or sign(secret, timestamp, raw),
    }
    return client.post("/webhooks/zendesk", content=raw, headers=headers)


def settle(services: Services, clock: FakeClock, *, rounds: int = 10) -> None:
    """Run every job to its end: drain, and when retries are scheduled move time to them."""
    worker = services.make_worker()
    for _ in range(rounds):
        worker.drain()
        waiting = [
            j.next_attempt_at
            for j in services.ledger.list_jobs(status=JobStatus.FAILED, limit=500)
            if j.next_attempt_at
        ]
        if not waiting:
            return
        clock.now = max(waiting) + timedelta(seconds=1)
        operations.sweep(services)
    raise AssertionError("jobs still retrying")


def jobs(services: Services, kind: str) -> list[Job]:
    return [j for j in services.ledger.list_jobs(limit=500) if j.kind == kind]


def photo(colour: str, mark: int = 1) -> bytes:
    return image_bytes(PALETTE[colour], mark=mark)


def event(
    ticket_id: int | str, event_type: str = "ticket.comment_added", event_id: str = "evt-1"
) -> dict[str, Any]:
    """A Zendesk event webhook body (the shape Zendesk sends for ticket events)."""
    return {
        "type": f"zen:event-type:{event_type}",
        "id": event_id,
        "account_id": 1,
        "subject": f"zen:ticket:{ticket_id}",
        "time": "2026-01-01T00:00:00Z",
        "zendesk_event_version": "2022-11-06",
        "detail": {"id": str(ticket_id), "status": "NEW"},
        "event": {},
    }


# ## Signatures


def test_signed_webhook_queues_a_scan_and_answers_202_at_once(
    client: TestClient, services: Services, zendesk: FakeZendesk, clock: FakeClock
) -> None:
    response = deliver(client, {"ticket_id": TICKET}, at=clock.now)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["ticket_id"] == "7" and body["status"] == "pending" and body["duplicate"] is False
    job = services.ledger.get_job(body["job_id"])
    assert job is not None and job.kind == ZendeskTicketPayload.KIND and job.payload == {"ticket_id": "7"}
    assert zendesk.requests == []  # nothing processed inside the request


@pytest.mark.parametrize(
    "case", ["wrong secret", "tampered body", "no headers", "garbage signature", "expired", "from the future"]
)
def test_bad_signatures_are_refused_with_no_side_effects(
    case: str, client: TestClient, services: Services, zendesk: FakeZendesk, clock: FakeClock
) -> None:
    raw = json.dumps({"ticket_id": TICKET}).encode()
    timestamp = clock.now.strftime("%Y-%m-%dT%H:%M:%SZ")
    headers = {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(SECRET, timestamp, raw)}
    if case == "wrong secret":
        headers[SIGNATURE_HEADER] = sign("another-secret", timestamp, raw)
    elif case == "tampered body":
        raw = json.dumps({"ticket_id": 8}).encode()
    elif case == "no headers":
        headers = {}
    elif case == "garbage signature":
        headers[SIGNATURE_HEADER] = "bm90IGEgc2lnbmF0dXJl"
    else:  # signed correctly, but 6 minutes away from now (the window is 5)
        shift = timedelta(minutes=-6 if case == "expired" else 6)
        timestamp = (clock.now + shift).strftime("%Y-%m-%dT%H:%M:%SZ")
        headers = {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(SECRET, timestamp, raw)}

    json_body = {"Content-Type": "application/json"}  # (without it: 415 before any signature check)
    response = client.post("/webhooks/zendesk", content=raw, headers={**json_body, **headers})

    assert response.status_code == 401, response.text
    assert "refused" in response.json()["detail"]
    assert services.ledger.list_jobs() == [] and zendesk.requests == []


def test_expired_says_so_and_the_window_is_configurable(make_services: Any, clock: FakeClock) -> None:
    services = make_services(zendesk_signature_tolerance_seconds=3600)
    with TestClient(create_app(services)) as client:
        old = deliver(client, {"ticket_id": 1}, at=clock.now - timedelta(minutes=30))
        older = deliver(client, {"ticket_id": 1}, at=clock.now - timedelta(minutes=61))
    assert old.status_code == 202
    assert older.status_code == 401 and "expired or replayed" in older.json()["detail"]


def test_without_a_secret_the_endpoint_refuses_unless_unsigned_is_allowed(
    make_services: Any, clock: FakeClock
) -> None:
    refusing = make_services(zendesk_webhook_secret=None)
    with TestClient(create_app(refusing)) as client:
        response = client.post("/webhooks/zendesk", json={"ticket_id": 1})
    assert response.status_code == 503
    assert "IMAGEMATCH_ZENDESK_WEBHOOK_SECRET" in response.json()["detail"]
    assert refusing.ledger.list_jobs() == []

    trial = make_services(zendesk_webhook_secret=None, zendesk_allow_unsigned=True)
    with TestClient(create_app(trial), base_url="http://127.0.0.1") as client:  # unsigned: loopback only
        assert client.post("/webhooks/zendesk", json={"ticket_id": 1}).status_code == 202
        clock.advance(1)
        again = client.post("/webhooks/zendesk", json={"ticket_id": 1})  # a new trial scans again
        assert again.status_code == 202 and again.json()["duplicate"] is False


# ## Payloads


@pytest.mark.parametrize(
    "body",
    [
        event(TICKET),
        {"ticket_id": TICKET},
        {"ticket_id": "7"},
        {"id": 7},
        {"id": "7", "subject": "Broken mug"},
        {"ticket": {"id": "7", "status": "open"}},
        {"ticket": {"id": 7}, "current_user": {"id": 5}},
    ],
    ids=[
        "event detail.id",
        "ticket_id int",
        "ticket_id str",
        "id int",
        "id str",
        "ticket.id str",
        "ticket.id int",
    ],
)
def test_every_payload_variant_names_the_ticket(
    body: dict[str, Any], client: TestClient, services: Services, clock: FakeClock
) -> None:
    response = deliver(client, body, at=clock.now)
    assert response.status_code == 202, response.text
    assert response.json()["ticket_id"] == "7"
    [job] = jobs(services, ZendeskTicketPayload.KIND)
    assert job.payload == {"ticket_id": "7"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "no ticket id"),
        ({"ticket": {"subject": "x"}}, "no ticket id"),
        ({"ticket_id": "abc"}, "positive integer"),
        ({"ticket_id": -3}, "positive integer"),
        ([7], "JSON object"),
        (b"ticket_id=7", "not JSON"),
        ({**event(5, "user.created"), "subject": "zen:user:5"}, "not a ticket event"),
    ],
)
def test_payloads_without_a_ticket_are_rejected_clearly(
    body: Any, message: str, client: TestClient, services: Services, clock: FakeClock
) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = deliver(client, raw, at=clock.now)
    assert response.status_code == 422 and message in response.json()["detail"]
    assert services.ledger.list_jobs() == []


# ## Exactly once


def test_five_identical_deliveries_and_a_second_event_give_one_prediction_and_note_per_attachment(
    client: TestClient, services: Services, zendesk: FakeZendesk, clock: FakeClock
) -> None:
    mug = zendesk.attachment(photo("red"), "mug.png")
    inline = zendesk.attachment(photo("blue"), "pasted.jpg", "image/jpeg", inline=True)
    zendesk.add_comment(TICKET, mug, body="My mug arrived broken")
    zendesk.add_comment(TICKET, body="Also this:")
    zendesk.add_comment(TICKET, inline)  # third comment: on the second page (page size 2)

    answers = [deliver(client, {"ticket_id": TICKET}, at=clock.now) for _ in range(5)]
    answers.append(deliver(client, event(TICKET, "ticket.created"), at=clock.now))
    assert [a.status_code for a in answers] == [202, 200, 200, 200, 200, 202]
    assert len({a.json()["job_id"] for a in answers[:5]}) == 1
    settle(services, clock)

    predictions = client.get("/v1/predictions", params={"ticket_id": "7"}).json()["predictions"]
    assert sorted(p["references"]["attachment_id"] for p in predictions) == sorted(
        [str(mug["id"]), str(inline["id"])]
    )
    by_file = {p["file_name"]: p for p in predictions}
    red = by_file["mug.png"]
    assert red["best_product_id"] == "P-red" and red["matches"][0]["name"] == "Red"
    assert red["references"]["ticket_id"] == "7" and red["source"] == "zendesk"
    assert red["references"]["comment_id"] == str(zendesk.tickets[TICKET].comments[0]["id"])
    assert red["image_url"] == mug["content_url"]
    assert red["embedder_id"] == "tiny-rgb8x8@1" and red["index_version"] == "v000001"
    assert red["latency_ms"] >= 0 and red["best_score"] == red["matches"][0]["score"]
    assert by_file["pasted.jpg"]["best_product_id"] == "P-blue"

    notes = zendesk.notes(TICKET)
    assert len(notes) == 2 and not any(n["public"] for n in notes)
    assert sum(f"imagematch-note:{mug['id']}" in n["html_body"] for n in notes) == 1
    assert sum(f"imagematch-note:{inline['id']}" in n["html_body"] for n in notes) == 1
    assert len(zendesk.requests_to("zendesk", "/attachments/")) == 2  # each image downloaded once
    paged = zendesk.requests_to("zendesk", f"/api/v2/tickets/{TICKET}/comments.json")
    assert any("page[after]" in r.query for r in paged)  # the cursor was followed

    # A new comment with a new photo: the next event adds exactly one prediction and one note.
    zendesk.add_comment(TICKET, zendesk.attachment(photo("green"), "box.png"))
    assert deliver(client, event(TICKET, event_id="evt-2"), at=clock.now).status_code == 202
    settle(services, clock)
    assert len(services.ledger.list_predictions(ticket_id="7")) == 3
    assert len(zendesk.notes(TICKET)) == 3
    entity = client.get("/v1/entities/ticket/7/matches").json()  # the ticket's photos, aggregated
    assert len(entity["photos"]) == 3 and entity["matches"][0]["photos"] == 3


def test_note_lists_the_top_products_and_flags_low_confidence(
    make_services: Any, zendesk: FakeZendesk, clock: FakeClock
) -> None:
    services = make_services(zendesk_note_min_score=1.5)  # nothing can be that close
    zendesk.add_comment(TICKET, zendesk.attachment(photo("yellow"), "lamp <1>.png"))
    with TestClient(create_app(services)) as client:
        deliver(client, {"ticket_id": TICKET}, at=clock.now)
    settle(services, clock)
    [note] = zendesk.notes(TICKET)
    html = note["html_body"]
    assert "lamp &lt;1&gt;.png" in html and "<strong>No match</strong>" in html
    assert "Yellow — ID/SKU P-yellow — " in html and html.count("<li>") == 4  # the 4-product catalog
    # The test photos are 64×48 px: flagged, and the note says what to ask the customer for.
    assert "Low quality photo" in html and "Ask the customer for a closer photo" in html
    [prediction] = services.ledger.list_predictions(ticket_id="7")
    assert f"{prediction.matches[0].score:.3f}" in html


def test_note_links_each_product_and_the_job_in_the_console_once(
    make_services: Any, zendesk: FakeZendesk, clock: FakeClock
) -> None:
    services = make_services(
        product_url_template="https://shop.example/p/{id}", public_url="https://imagematch.example/"
    )
    zendesk.add_comment(TICKET, zendesk.attachment(photo("red"), "mug.png"))
    with TestClient(create_app(services)) as client:
        deliver(client, {"ticket_id": TICKET}, at=clock.now)
        deliver(client, {"ticket_id": TICKET}, at=clock.now)  # a duplicate delivery
    settle(services, clock)
    [note] = zendesk.notes(TICKET)
    html = note["html_body"]
    assert '<a href="https://shop.example/p/P-red">Red</a> — ID/SKU P-red — ' in html
    [image_job] = jobs(services, ZendeskImagePayload.KIND)
    assert f'<a href="https://imagematch.example/ui/jobs/{image_job.id}">' in html
    assert services.thumbnails.job_photo(image_job.id) is not None  # the console shows the attachment
    assert "<img" not in html  # the sample catalog's images are local files, not public URLs


def test_notes_off_means_predictions_only(make_services: Any, zendesk: FakeZendesk, clock: FakeClock) -> None:
    services = make_services(zendesk_post_notes=False)
    zendesk.add_comment(TICKET, zendesk.attachment(photo("red"), "a.png"))
    with TestClient(create_app(services)) as client:
        deliver(client, {"ticket_id": TICKET}, at=clock.now)
    settle(services, clock)
    assert len(services.ledger.list_predictions(ticket_id="7")) == 1
    assert jobs(services, ZendeskNotePayload.KIND) == [] and zendesk.notes(TICKET) == []
    assert zendesk.requests_to("zendesk", method="PUT") == []


def test_serve_path_in_process_workers_answer_a_webhook_without_being_driven(
    services: Services, zendesk: FakeZendesk, clock: FakeClock
) -> None:
    """As `imagematch serve` runs it: the app's worker pool, woken by the webhook, does the rest."""
    zendesk.add_comment(
        TICKET, zendesk.attachment(photo("green"), "a.png"), zendesk.attachment(photo("red"), "b.png")
    )
    pool = WorkerPool(
        services.make_worker, size=2, poll_seconds=0.05, sweep=lambda: operations.sweep(services)
    )
    with TestClient(create_app(services, pool=pool)) as client:
        assert deliver(client, event(TICKET), at=clock.now).status_code == 202
        deadline = time.monotonic() + 60
        while len(zendesk.notes(TICKET)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # waiting for the outcome, not timing it
    assert len(zendesk.notes(TICKET)) == 2
    assert len(services.ledger.list_predictions(ticket_id="7")) == 2
    assert services.ledger.count_by_status()[JobStatus.COMPLETE] == 5  # ticket, 2 images, 2 notes


# ## Failures and retries


def test_429_honours_retry_after_then_succeeds(
    client: TestClient, services: Services, zendesk: FakeZendesk, clock: FakeClock
) -> None:
    zendesk.add_comment(TICKET, zendesk.attachment(photo("red"), "a.png"))
    zendesk.fail("GET", f"/api/v2/tickets/{TICKET}/comments.json", (429, {"Retry-After": "120"}))
    deliver(client, {"ticket_id": TICKET}, at=clock.now)
    worker = services.make_worker()

    worker.drain()
    [ticket_job] = jobs(services, ZendeskTicketPayload.KIND)
    assert ticket_job.status == JobStatus.FAILED and ticket_job.error_kind == ErrorKind.TRANSIENT
    assert "HTTP 429" in (ticket_job.last_error or "")
    assert ticket_job.next_attempt_at is not None
    assert ticket_job.next_attempt_at >= clock.now + timedelta(seconds=120)  # backoff alone: ~1 s

    clock.advance(60)
    operations.sweep(services)
    assert worker.drain() == 0  # not due yet
    clock.advance(61)
    operations.sweep(services)
    worker.drain()
    assert services.ledger.get_job(ticket_job.id).status == JobStatus.COMPLETE  # type: ignore[union-attr]
    assert len(services.ledger.list_predictions(ticket_id="7")) == 1
    assert len(zendesk.notes(TICKET)) == 1


def test_500_twice_then_success(
    client: TestClient, services: Services, zendesk: FakeZendesk, clock: FakeClock
) -> None:
    attachment = zendesk.attachment(photo("green"), "a.png")
    zendesk.add_comment(TICKET, attachment)
    zendesk.fail("GET", "/files/", (500, {}), (500, {}))  # the storage host the download lands on
    deliver(client, {"ticket_id": TICKET}, at=clock.now)
    settle(services, clock)

    image_job = services.ledger.get_job_by_key(
        image_job_key("7", str(attachment["id"])),
        kind=ZendeskImagePayload.KIND,
    )
    assert image_job is not None and image_job.status == JobStatus.COMPLETE and image_job.attempts == 3
    assert len(services.ledger.list_predictions(ticket_id="7")) == 1
    assert len(zendesk.notes(TICKET)) == 1


def test_timeouts_and_dropped_connections_are_transient(
    make_services: Any, zendesk: FakeZendesk, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    services = make_services(fetch_timeout_seconds=0.3)
    zendesk.add_comment(TICKET, zendesk.attachment(photo("blue"), "a.png"))
    zendesk.fail("GET", f"/api/v2/tickets/{TICKET}/comments.json", "timeout")
    zendesk.fail("GET", "/attachments/", "disconnect")
    zendesk.fail("PUT", f"/api/v2/tickets/{TICKET}.json", (503, {}))
    with TestClient(create_app(services)) as client:
        deliver(client, {"ticket_id": TICKET}, at=clock.now)
    settle(services, clock)
    done = services.ledger.list_jobs(limit=50)
    assert sorted(j.kind for j in done) == sorted(
        [ZendeskTicketPayload.KIND, ZendeskImagePayload.KIND, ZendeskNotePayload.KIND]
    )
    assert all(j.status == JobStatus.COMPLETE and j.attempts == 2 for j in done)
    failures = [r.getMessage() for r in caplog.records if "failed (transient)" in r.getMessage()]
    assert len(failures) == 3
    assert "timed out" in failures[0] and "disconnected" in failures[1] and "HTTP 503" in failures[2]
    assert len(zendesk.notes(TICKET)) == 1


def test_redirect_to_another_host_gets_no_authorization(
    client: TestClient, services: Services, zendesk: FakeZendesk, clock: FakeClock
) -> None:
    zendesk.add_comment(TICKET, zendesk.attachment(photo("red"), "a.png"))
    deliver(client, {"ticket_id": TICKET}, at=clock.now)
    settle(services, clock)

    [on_zendesk] = zendesk.requests_to("zendesk", "/attachments/")
    [on_storage] = zendesk.requests_to("storage", "/files/")
    assert on_zendesk.headers["authorization"] == zendesk.authorization
    assert "authorization" not in on_storage.headers
    assert on_storage.headers["host"].startswith("localhost:")  # a different host name
    assert len(services.ledger.list_predictions(ticket_id="7")) == 1


def test_non_image_malware_and_oversize_attachments_are_skipped_with_reasons(
    make_services: Any, zendesk: FakeZendesk, clock: FakeClock
) -> None:
    services = make_services(max_image_bytes=50_000)
    attachments = {
        "invoice": zendesk.attachment(b"%PDF-1.4 invoice", "invoice.pdf", "application/pdf"),
        "malware": zendesk.attachment(photo("red"), "evil.png", malware=True),
        "huge": zendesk.attachment(photo("red"), "huge.png", size=80_000),
        "drawing": zendesk.attachment(b"<svg/>", "logo.svg", "image/svg+xml"),
        "binary": zendesk.attachment(b"\x00\x01 not a picture", "data.bin", "application/octet-stream"),
        "sniffed": zendesk.attachment(photo("green"), "IMG_0001", "application/octet-stream"),
        "photo": zendesk.attachment(photo("blue"), "photo.png"),
    }
    zendesk.add_comment(TICKET, *attachments.values())
    with TestClient(create_app(services)) as client:
        deliver(client, {"ticket_id": TICKET}, at=clock.now)
    settle(services, clock)

    def outcome(name: str) -> Job:
        job = services.ledger.get_job_by_key(
            image_job_key("7", str(attachments[name]["id"])),
            kind=ZendeskImagePayload.KIND,
        )
        assert job is not None
        return job

    expected_skips = {
        "invoice": "not an image (application/pdf)",
        "malware": "malware_found",
        "huge": "80,000 bytes; the limit is 50,000",
        "drawing": "not a raster image",
        "binary": "not an image (application/octet-stream)",
    }
    for name, reason in expected_skips.items():
        job = outcome(name)
        assert job.status == JobStatus.SKIPPED and reason in (job.last_error or ""), (name, job.last_error)
    assert outcome("sniffed").status == outcome("photo").status == JobStatus.COMPLETE
    assert sorted(p.file_name or "" for p in services.ledger.list_predictions(ticket_id="7")) == [
        "IMG_0001",
        "photo.png",
    ]
    assert len(zendesk.notes(TICKET)) == 2
    downloaded = {r.path for r in zendesk.requests_to("zendesk", "/attachments/")}
    skipped_unread = ("malware", "huge", "invoice", "drawing")
    assert not any(f"/tok{attachments[n]['id']}/" in p for n in skipped_unread for p in downloaded)


def test_a_closed_ticket_keeps_its_prediction_and_the_note_fails_with_the_reason(
    client: TestClient, services: Services, zendesk: FakeZendesk, clock: FakeClock
) -> None:
    zendesk.add_comment(TICKET, zendesk.attachment(photo("red"), "a.png"))
    zendesk.tickets[TICKET].status = "closed"
    deliver(client, {"ticket_id": TICKET}, at=clock.now)
    settle(services, clock)
    assert len(services.ledger.list_predictions(ticket_id="7")) == 1
    [note_job] = jobs(services, ZendeskNotePayload.KIND)
    assert note_job.status == JobStatus.FAILED and note_job.error_kind == ErrorKind.PERMANENT
    assert "HTTP 422" in (note_job.last_error or "") and zendesk.notes(TICKET) == []


def test_deleted_ticket_is_skipped(client: TestClient, services: Services, clock: FakeClock) -> None:
    deliver(client, {"ticket_id": 404}, at=clock.now)
    settle(services, clock)
    [job] = jobs(services, ZendeskTicketPayload.KIND)
    assert job.status == JobStatus.SKIPPED and "not found" in (job.last_error or "")


def test_missing_zendesk_settings_fail_permanently_with_what_to_set(
    make_services: Any, zendesk: FakeZendesk, clock: FakeClock
) -> None:
    services = make_services(zendesk_base_url=None)
    with TestClient(create_app(services)) as client:
        deliver(client, {"ticket_id": TICKET}, at=clock.now)
    services.make_worker().drain()
    [job] = jobs(services, ZendeskTicketPayload.KIND)
    assert job.status == JobStatus.FAILED and job.error_kind == ErrorKind.PERMANENT
    assert "IMAGEMATCH_ZENDESK_SUBDOMAIN" in (job.last_error or "")


# ## Crashes between the steps


def _claim(services: Services, job: Job, worker_id: str) -> Job:
    claimed = services.ledger.claim_job(job.id, worker_id, lease_seconds=services.settings.lease_seconds)
    assert claimed is not None
    return claimed


def test_crash_after_the_note_was_posted_but_before_it_was_recorded_posts_one_note(
    client: TestClient, services: Services, zendesk: FakeZendesk, clock: FakeClock
) -> None:
    attachment = zendesk.attachment(photo("red"), "a.png")
    zendesk.add_comment(TICKET, attachment)
    deliver(client, {"ticket_id": TICKET}, at=clock.now)
    worker = services.make_worker()
    worker.run_once()  # the ticket scan
    worker.run_once()  # the image: prediction logged, note job persisted
    note_job = services.ledger.get_job_by_key(
        note_job_key("7", str(attachment["id"])),
        kind=ZendeskNotePayload.KIND,
    )
    assert note_job is not None and note_job.status == JobStatus.PENDING

    # A worker claims the note, posts it ... and dies before recording that it did.
    doomed = _claim(services, note_job, "doomed-worker")
    services.kinds.get(ZendeskNotePayload.KIND).run(doomed)  # type: ignore[union-attr]
    assert len(zendesk.notes(TICKET)) == 1

    clock.advance(services.settings.lease_seconds + 1)
    assert operations.sweep(services).leases_expired == 1
    settle(services, clock)

    assert services.ledger.get_job(note_job.id).status == JobStatus.COMPLETE  # type: ignore[union-attr]
    assert len(zendesk.notes(TICKET)) == 1
    assert len(zendesk.requests_to("zendesk", method="PUT")) == 1


def test_crash_between_prediction_and_note_posts_one_note(
    client: TestClient, services: Services, zendesk: FakeZendesk, clock: FakeClock
) -> None:
    attachment = zendesk.attachment(photo("green"), "a.png")
    zendesk.add_comment(TICKET, attachment)
    deliver(client, {"ticket_id": TICKET}, at=clock.now)
    services.make_worker().run_once()  # the ticket scan
    image_job = services.ledger.get_job_by_key(
        image_job_key("7", str(attachment["id"])),
        kind=ZendeskImagePayload.KIND,
    )
    assert image_job is not None

    # The image is matched and its note job persisted, then the worker dies before completing.
    doomed = _claim(services, image_job, "doomed-worker")
    services.kinds.get(ZendeskImagePayload.KIND).run(doomed)  # type: ignore[union-attr]
    assert services.ledger.list_predictions(ticket_id="7") == []

    clock.advance(services.settings.lease_seconds + 1)
    operations.sweep(services)
    settle(services, clock)  # the image runs again; the note job was there already

    assert services.ledger.get_job(image_job.id).status == JobStatus.COMPLETE  # type: ignore[union-attr]
    assert len(services.ledger.list_predictions(ticket_id="7")) == 1
    assert len(jobs(services, ZendeskNotePayload.KIND)) == 1
    assert len(zendesk.notes(TICKET)) == 1


def test_a_note_posted_meanwhile_makes_the_conditional_update_conflict_and_is_found(
    client: TestClient, services: Services, zendesk: FakeZendesk, clock: FakeClock
) -> None:
    attachment = zendesk.attachment(photo("blue"), "a.png")
    zendesk.add_comment(TICKET, attachment)
    deliver(client, {"ticket_id": TICKET}, at=clock.now)
    worker = services.make_worker()
    worker.run_once()
    worker.run_once()

    # Another worker (which took over an expired lease) posts the note right after this worker
    # searched the comments and before its PUT: safe_update refuses the PUT (409), the search is
    # repeated and finds it.
    marker = f"imagematch-note:{attachment['id']}"
    zendesk.after(
        "GET", f"/api/v2/tickets/{TICKET}/comments.json", lambda: zendesk.add_note(TICKET, f"<p>{marker}</p>")
    )
    worker.drain()

    assert zendesk.after_hooks == []  # the other worker's note did land in between
    [note] = zendesk.notes(TICKET)
    assert note["html_body"] == f"<p>{marker}</p>"  # theirs; ours was refused and not sent again
    [put] = zendesk.requests_to("zendesk", method="PUT")
    assert json.loads(put.body)["ticket"]["safe_update"] is True
    [note_job] = jobs(services, ZendeskNotePayload.KIND)
    assert note_job.status == JobStatus.COMPLETE


def test_a_worker_that_lost_its_lease_does_not_post(
    client: TestClient, services: Services, zendesk: FakeZendesk, clock: FakeClock
) -> None:
    zendesk.add_comment(TICKET, zendesk.attachment(photo("red"), "a.png"))
    deliver(client, {"ticket_id": TICKET}, at=clock.now)
    worker = services.make_worker()
    worker.run_once()
    worker.run_once()
    [note_job] = jobs(services, ZendeskNotePayload.KIND)
    stalled = _claim(services, note_job, "stalled-worker")
    clock.advance(services.settings.lease_seconds + 1)
    operations.sweep(services)  # its lease expired: the job is someone else's to take now

    with pytest.raises(TransientError, match="lost the lease"):
        services.kinds.get(ZendeskNotePayload.KIND).run(stalled)  # type: ignore[union-attr]
    assert zendesk.notes(TICKET) == []
    settle(services, clock)
    assert len(zendesk.notes(TICKET)) == 1
