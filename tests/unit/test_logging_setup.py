"""Structured logs: JSON lines that parse and carry the job's fields, text on a terminal, and no
secret in any line, however it got there (message, argument, extra field, traceback)."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr

from imagematch.config import Settings
from imagematch.log_context import bound, current_request_id, entity_of_payload, usable_request_id
from imagematch.logging_setup import REDACTED, configure_logging, wants_json
from imagematch.models import Job, JobStatus, NewJob
from imagematch.observed_jobs import observed_job

API_TOKEN = "console-token-5f0c1d2e3a4b"
ZENDESK_TOKEN = "zd-api-token-8c7b6a5d4e3f"
WEBHOOK_SECRET = "whsec-planted-9a8b7c6d"
DB_PASSWORD = "pg-password-1a2b3c4d"


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def _settings(**changes: Any) -> Settings:
    return Settings(data_dir="/tmp/unused").model_copy(
        update={
            "api_token": SecretStr(f"console:{API_TOKEN}"),
            "zendesk_api_token": SecretStr(ZENDESK_TOKEN),
            "zendesk_webhook_secret": SecretStr(WEBHOOK_SECRET),
            "database_url": f"postgresql://imagematch:{DB_PASSWORD}@db.internal:5432/ledger",
            **changes,
        }
    )


def _job(**changes: Any) -> Job:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    fields: dict[str, Any] = {
        "id": 41,
        "kind": "zendesk_image",
        "source": "zendesk",
        "idempotency_key": "zendesk:7:100",
        "status": JobStatus.PROCESSING,
        "payload": {"ticket_id": "7", "attachment_id": "100", "image": "https://x/y"},
        "attempts": 2,
        "created_at": now,
        "updated_at": now,
        "request_id": "req-from-webhook",
    }
    return Job.model_validate({**fields, **changes})


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_json_lines_parse_and_carry_the_job_fields(restore_root: None) -> None:
    stream = io.StringIO()
    configure_logging(_settings(log_format="json"), stream=stream)
    with observed_job(_job(), "host:1:abc") as seen:
        logging.getLogger("imagematch.sources.zendesk").info("posting note for %s", "attachment 100")
        seen.ended(JobStatus.COMPLETE)
    lines = _lines(stream)
    assert [line["message"] for line in lines] == [
        "job 41 started",
        "posting note for attachment 100",
        lines[2]["message"],
    ]
    assert lines[2]["message"].startswith("job 41 ended: complete") and lines[2]["outcome"] == "complete"
    for line in lines:
        assert line["job_id"] == 41 and line["kind"] == "zendesk_image" and line["source"] == "zendesk"
        assert line["entity"] == "ticket/7" and line["attempt"] == 2 and line["worker"] == "host:1:abc"
        assert line["request_id"] == "req-from-webhook" and line["level"] == "INFO"
        assert "timestamp" in line and line["logger"]
    logging.getLogger("imagematch").warning("outside any job")
    assert "job_id" not in _lines(stream)[-1]


def test_a_job_submitted_while_a_job_runs_inherits_its_request_id() -> None:
    with observed_job(_job(), "w"):
        follow_up = NewJob(kind="zendesk_note", idempotency_key="note:100")
    assert follow_up.request_id == "req-from-webhook"
    assert NewJob(idempotency_key="plain").request_id is None
    assert current_request_id() is None


def test_text_on_a_terminal_json_otherwise() -> None:
    assert not wants_json("auto", _Tty()) and wants_json("auto", io.StringIO())
    assert wants_json("json", _Tty()) and not wants_json("text", io.StringIO())


def test_text_lines_show_the_fields(restore_root: None) -> None:
    stream = _Tty()
    configure_logging(_settings(log_level="INFO"), stream=stream)
    with bound(request_id="r-1", job_id=5):
        logging.getLogger("imagematch").info("hello")
    text = re.sub(r"\x1b\[[0-9;]*m", "", stream.getvalue())  # Rich colours a terminal's lines
    assert "hello" in text and "[request_id=r-1 job_id=5]" in text


def test_a_planted_secret_never_appears_in_any_line(restore_root: None) -> None:
    stream = io.StringIO()
    configure_logging(_settings(log_format="json", log_level="DEBUG"), stream=stream)
    log = logging.getLogger("imagematch.test")
    signed = "https://cdn.example.com/photo.jpg?X-Amz-Signature=abcdef0123456789&token=zzz"
    log.info("got %s with key %s", signed, ZENDESK_TOKEN)
    log.info("Authorization: Bearer %s", API_TOKEN)
    log.info("headers %s", {"Authorization": "Basic dXNlcjpwYXNzd29yZDEyMw==", "x": 1})
    log.warning("webhook secret=%s refused; db %s", WEBHOOK_SECRET, f"postgresql://u:{DB_PASSWORD}@h/db")
    log.info("extra fields too", extra={"url": signed, "note": f"token {API_TOKEN}"})
    try:
        raise RuntimeError(f"Zendesk said no to {ZENDESK_TOKEN} at {signed}")
    except RuntimeError:
        log.exception("failed")
    logging.getLogger("httpx").warning("HTTP Request: GET %s", signed)
    text = stream.getvalue()
    assert len(_lines(stream)) == 7  # every line still parses
    for planted in (API_TOKEN, ZENDESK_TOKEN, WEBHOOK_SECRET, DB_PASSWORD, "abcdef0123456789", "zzz"):
        assert planted not in text, planted
    assert "dXNlcjpwYXNzd29yZDEyMw" not in text
    assert "https://cdn.example.com/photo.jpg?" + REDACTED in text  # the path is kept: findable
    assert "Traceback" in text and "RuntimeError" in text


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("abc-123", True),
        ("a" * 128, True),
        ("a" * 129, False),
        ("bad id", False),
        ("x\ny", False),
        (None, False),
    ],
)
def test_only_plain_request_ids_are_kept(given: str | None, kept: bool) -> None:
    chosen = usable_request_id(given)
    assert (chosen == given) is kept and len(chosen) <= 128


def test_entity_of_a_payload() -> None:
    assert entity_of_payload({"entity_type": "listing", "entity_id": "a1"}) == "listing/a1"
    assert entity_of_payload({"ticket_id": "7"}) == "ticket/7"
    assert entity_of_payload({"product_id": "P1"}) == "product/P1"
    assert entity_of_payload({"image": "blob:x"}) is None
