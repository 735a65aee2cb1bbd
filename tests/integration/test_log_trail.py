"""One Zendesk photo followed through the JSON logs, from its webhook to its note, by ``job_id``
and ``request_id``: the webhook's request id is stored with every job it leads to (the ticket scan,
the attachment, the note) and carried by every line those jobs log. No credential leaks on the way."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from imagematch.app import Services
from imagematch.logging_setup import configure_logging
from imagematch.sources.zendesk import ZendeskImagePayload, ZendeskNotePayload, ZendeskTicketPayload
from tests.conftest import FakeClock
from tests.fake_zendesk import FakeZendesk
from tests.integration.test_zendesk import (
    SECRET,
    TICKET,
    deliver,
    make_services,
    photo,
    services,
    settle,
)

__all__ = ["make_services", "services"]  # fixtures shared with test_zendesk


@pytest.fixture
def json_log(services: Services) -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    stream = io.StringIO()
    configure_logging(services.settings.model_copy(update={"log_format": "json"}), stream=stream)
    yield stream
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved:
        root.addHandler(handler)
    root.setLevel(level)


def test_json_logs_follow_one_photo_from_webhook_to_note(
    client: TestClient, services: Services, zendesk: FakeZendesk, clock: FakeClock, json_log: io.StringIO
) -> None:
    mug = zendesk.attachment(photo("red"), "mug.png")
    zendesk.add_comment(TICKET, mug, body="My mug arrived broken")
    client.headers["X-Request-ID"] = "zd-delivery-42"
    answer = deliver(client, {"ticket_id": TICKET}, at=clock.now)
    assert answer.status_code == 202 and answer.headers["x-request-id"] == "zd-delivery-42"
    settle(services, clock)
    assert len(zendesk.notes(TICKET)) == 1

    jobs = {job.kind: job for job in services.ledger.list_jobs(limit=50)}
    assert set(jobs) == {ZendeskTicketPayload.KIND, ZendeskImagePayload.KIND, ZendeskNotePayload.KIND}
    assert {job.request_id for job in jobs.values()} == {"zd-delivery-42"}  # stored with each job

    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    trail = [line for line in lines if line.get("request_id") == "zd-delivery-42"]
    webhook = [line for line in trail if line["logger"] == "imagematch.http"]
    assert webhook and "POST /webhooks/zendesk -> 202" in webhook[0]["message"]
    for kind, job in jobs.items():
        own = [line for line in lines if line.get("job_id") == job.id]
        assert own and all(line["request_id"] == "zd-delivery-42" for line in own), kind
        assert all(line["kind"] == kind and line["entity"] == f"ticket/{TICKET}" for line in own)
        ended = [line for line in own if line.get("outcome")]
        assert [line["outcome"] for line in ended] == ["complete"], kind
    # In order: the webhook, then the scan, the attachment and the note.
    order = [lines.index(webhook[0])] + [
        min(i for i, line in enumerate(lines) if line.get("job_id") == jobs[kind].id)
        for kind in (ZendeskTicketPayload.KIND, ZendeskImagePayload.KIND, ZendeskNotePayload.KIND)
    ]
    assert order == sorted(order)

    text = json_log.getvalue()
    for secret in (zendesk.api_token, SECRET, zendesk.authorization.split()[1]):
        assert secret not in text
    assert "?name=mug.png" not in text  # attachment URLs are logged without their query


def test_a_request_without_an_id_gets_one(client: TestClient, clock: FakeClock, services: Services) -> None:
    answer = deliver(client, {"ticket_id": TICKET}, at=clock.now)
    generated = answer.headers["x-request-id"]
    assert len(generated) == 32
    job: Any = services.ledger.get_job(answer.json()["job_id"])
    assert job.request_id == generated
    refused = client.get("/v1/jobs/1", headers={"X-Request-ID": "bad id with spaces"})
    assert refused.headers["x-request-id"] != "bad id with spaces"
