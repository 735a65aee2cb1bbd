"""Sentry: off without ``SENTRY_DSN``; with it, permanent job failures and unhandled exceptions are
reported with the job's id and kind, and no secret, credential, query string or photo byte."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from imagematch.config import Settings
from imagematch.error_reporting import init_error_reporting
from imagematch.errors import PermanentError, TransientError
from imagematch.job_kinds import JobKinds, JobKindSpec, MatchImagePayload
from imagematch.ledger.memory import MemoryLedger
from imagematch.models import Job, NewJob
from imagematch.retry import RetryPolicy
from imagematch.worker import Worker

sentry_sdk = pytest.importorskip("sentry_sdk")
from sentry_sdk.envelope import Envelope  # noqa: E402
from sentry_sdk.transport import Transport  # noqa: E402

ZENDESK_TOKEN = "zd-token-planted-55aa66bb"
PHOTO = b"\x89PNG-photo-bytes-never-sent"
# Kept away from the test functions: the SDK sends a few source lines around each frame.
REQUEST_SECRETS = ("console-token-planted-77cc", "s3cr3t", "qs-planted-88dd")
HEADERS = {
    "Authorization": f"Bearer {REQUEST_SECRETS[0]}",
    "Cookie": f"imagematch_session={REQUEST_SECRETS[1]}",
}


class Captured(Transport):
    """Keeps every event instead of sending it."""

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.events: list[dict[str, Any]] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        event = envelope.get_event()
        if event is not None:
            self.events.append(dict(event))


@pytest.fixture
def captured() -> Iterator[Captured]:
    transport = Captured()
    settings = Settings(data_dir="/tmp/unused").model_copy(
        update={
            "sentry_dsn": SecretStr("https://public@sentry.example.invalid/1"),
            "zendesk_api_token": SecretStr(ZENDESK_TOKEN),
        }
    )
    assert init_error_reporting(settings, transport=transport)
    yield transport
    sentry_sdk.get_client().close()
    sentry_sdk.init()  # no DSN: inactive again for the tests that follow


def _worker_running(handler: Any) -> tuple[Worker, Job]:
    ledger = MemoryLedger()
    kinds = JobKinds()
    kinds.register(
        JobKindSpec(kind="match_image", payload=MatchImagePayload, handler=handler, needs_embedder=False)
    )
    ledger.submit(
        NewJob(idempotency_key="k", payload={"image": "https://cdn.example/p.jpg?sig=abc123secret"})
    )
    job = ledger.claim("w", limit=1, lease_seconds=60)[0]
    return Worker(ledger, kinds, RetryPolicy(max_attempts=3), worker_id="w"), job


def test_without_a_dsn_nothing_starts() -> None:
    assert not init_error_reporting(Settings(data_dir="/tmp/unused"))
    assert not sentry_sdk.get_client().is_active()


def test_a_permanent_failure_is_reported_with_id_and_kind_and_no_secret(captured: Captured) -> None:
    photo = PHOTO  # a local the SDK must not send

    def handler(job: Job, payload: MatchImagePayload) -> None:
        raise PermanentError(f"refused {payload.image} with {ZENDESK_TOKEN} ({len(photo)} bytes)")

    worker, job = _worker_running(handler)
    worker.process(job)
    sentry_sdk.flush()
    assert len(captured.events) == 1
    event = captured.events[0]
    assert event["tags"]["job_id"] == str(job.id) and event["tags"]["kind"] == "match_image"
    text = json.dumps(event, default=str)
    for secret in (ZENDESK_TOKEN, "abc123secret", "PNG-photo-bytes"):
        assert secret not in text
    assert "PermanentError" in text


def test_a_transient_failure_is_not_reported(captured: Captured) -> None:
    def handler(job: Job, payload: MatchImagePayload) -> None:
        raise TransientError("HTTP 503")

    worker, job = _worker_running(handler)
    worker.process(job)
    sentry_sdk.flush()
    assert captured.events == []


def test_an_unhandled_request_error_is_reported_without_credentials(captured: Captured) -> None:
    app = FastAPI()

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError(f"bug near {ZENDESK_TOKEN}")

    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get(f"/boom?token={REQUEST_SECRETS[2]}", headers=HEADERS).status_code == 500
    sentry_sdk.flush()
    assert captured.events, "the SDK's web integration reports unhandled errors"
    text = json.dumps(captured.events, default=str)
    for secret in (ZENDESK_TOKEN, *REQUEST_SECRETS):
        assert secret not in text, text[max(0, text.find(secret) - 600) : text.find(secret) + 40]
