"""Zendesk pieces without a server: signatures, delivery ids, attachment plans, client setup."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from pydantic import SecretStr

from imagematch.config import Settings
from imagematch.errors import PermanentError, SubjectGoneError, TransientError
from imagematch.models import Match
from imagematch.sources.zendesk import (
    WebhookPayloadError,
    WebhookSignatureError,
    ZendeskNotConfiguredError,
    note_marker,
    parse_delivery,
    plan_attachment,
    render_note,
    sign,
    verify_signature,
    zendesk_client_for,
)

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _verify(body: bytes, signature: str | None, timestamp: str | None) -> None:
    verify_signature(
        secret="s3cret", body=body, signature=signature, timestamp=timestamp, now=NOW, tolerance_seconds=300
    )


def test_signature_is_base64_hmac_sha256_of_timestamp_and_body() -> None:
    # Computed independently:
    # printf '%s' '2026-01-01T12:00:00Z{"a":1}' | openssl dgst -sha256 -hmac s3cret -binary | base64
    assert (
        sign("s3cret", "2026-01-01T12:00:00Z", b'{"a":1}') == "daWPDL8N4AVFge69ZN/9a0a5rEfIQS6TXnOK2VfMiyA="
    )
    _verify(b'{"a":1}', "daWPDL8N4AVFge69ZN/9a0a5rEfIQS6TXnOK2VfMiyA=", "2026-01-01T12:00:00Z")


def test_timestamps_iso_or_unix_within_the_window() -> None:
    body = b"{}"
    unix = str(int((NOW - timedelta(seconds=299)).timestamp()))
    _verify(body, sign("s3cret", unix, body), unix)
    offset = "2026-01-01T13:04:00+01:00"  # 4 minutes ago, in another zone
    _verify(body, sign("s3cret", offset, body), offset)
    with pytest.raises(WebhookSignatureError, match="unreadable"):
        _verify(body, sign("s3cret", "yesterday", body), "yesterday")
    with pytest.raises(WebhookSignatureError, match="missing"):
        _verify(body, None, "2026-01-01T12:00:00Z")


def test_event_deliveries_are_identified_by_event_id() -> None:
    body = json.dumps(
        {"id": "evt-9", "type": "zen:event-type:ticket.created", "detail": {"id": "42"}}
    ).encode()
    first, retried = parse_delivery(body, timestamp="t1"), parse_delivery(body, timestamp="t2")
    assert first.ticket_id == "42" and first.event_type == "zen:event-type:ticket.created"
    assert first.delivery_id == retried.delivery_id == "event:evt-9"


def test_trigger_deliveries_are_identified_by_signed_timestamp_and_body() -> None:
    body = b'{"ticket_id": 42}'
    assert parse_delivery(body, timestamp="t1") == parse_delivery(body, timestamp="t1")
    assert (
        parse_delivery(body, timestamp="t1").delivery_id != parse_delivery(body, timestamp="t2").delivery_id
    )
    assert parse_delivery(b'{"ticket_id": "0042"}').ticket_id == "42"
    with pytest.raises(WebhookPayloadError, match="positive integer"):
        parse_delivery(b'{"ticket_id": true}')


@pytest.mark.parametrize(
    ("attachment", "action", "reason"),
    [
        ({"content_type": "image/jpeg", "size": 10}, "match", None),
        ({"content_type": "image/HEIC; name=x", "size": 10}, "match", None),
        ({"content_type": "application/octet-stream", "file_name": "a.JPG"}, "match", None),
        ({"content_type": "application/octet-stream", "file_name": "scan"}, "sniff", None),
        ({"content_type": "", "file_name": "x"}, "sniff", None),
        ({"content_type": "text/plain", "file_name": "redacted.txt"}, "skip", "not an image (text/plain)"),
        ({"content_type": "image/png", "size": 11}, "skip", "11 bytes; the limit is 10"),
        ({"content_type": "image/png", "malware_scan_result": "malware_found"}, "skip", "malware_found"),
    ],
)
def test_attachment_plans(attachment: dict[str, Any], action: str, reason: str | None) -> None:
    plan = plan_attachment(attachment, max_bytes=10)
    assert plan.action == action
    assert (reason or "") in (plan.reason or "")


def test_note_html_escapes_and_marks() -> None:
    matches = [Match(product_id="P<1>", name="Mug & Co", score=0.873, image_id="i")]
    html = render_note(attachment_id="55", file_name="a<b>.png", matches=matches, min_score=0.5)
    assert "a&lt;b&gt;.png" in html and "Mug &amp; Co — ID/SKU P&lt;1&gt; — score 0.873" in html
    assert "No confident match" not in html and html.endswith("<p>ref imagematch-note:55</p>")
    empty = render_note(attachment_id="55", file_name=None, matches=[], min_score=0.5)
    assert "No match" in empty and "no products in the index" in empty


def _settings(tmp_path: Path, **zendesk: Any) -> Settings:
    return Settings(data_dir=tmp_path, **zendesk)


def test_client_auth_from_settings(tmp_path: Path) -> None:
    http = httpx.Client()
    token = zendesk_client_for(
        _settings(
            tmp_path, zendesk_subdomain="acme", zendesk_email="a@b.c", zendesk_api_token=SecretStr("t")
        ),
        http,
    )
    assert token.base_url == "https://acme.zendesk.com" and token.host == "acme.zendesk.com"
    assert token.credentials == {"Authorization": "Basic YUBiLmMvdG9rZW46dA=="}  # a@b.c/token:t
    oauth = zendesk_client_for(
        _settings(tmp_path, zendesk_base_url="http://proxy:8080/", zendesk_oauth_token=SecretStr("o")), http
    )
    assert oauth.credentials == {"Authorization": "Bearer o"} and oauth.base_url == "http://proxy:8080"
    assert "o" not in repr(oauth).replace("proxy", "")
    with pytest.raises(ZendeskNotConfiguredError, match="IMAGEMATCH_ZENDESK_SUBDOMAIN"):
        zendesk_client_for(_settings(tmp_path), http)
    with pytest.raises(ZendeskNotConfiguredError, match="IMAGEMATCH_ZENDESK_API_TOKEN"):
        zendesk_client_for(_settings(tmp_path, zendesk_subdomain="acme", zendesk_email="a@b.c"), http)


@respx.mock
def test_client_refuses_pagination_links_to_other_hosts(tmp_path: Path) -> None:
    settings = _settings(tmp_path, zendesk_subdomain="acme", zendesk_oauth_token=SecretStr("o"))
    client = zendesk_client_for(settings, httpx.Client())
    respx.get("https://acme.zendesk.com/api/v2/tickets/1/comments.json").respond(
        json={
            "comments": [{"id": 1}],
            "meta": {"has_more": True},
            "links": {"next": "https://evil.example/api/v2/tickets/1/comments.json?page[after]=x"},
        }
    )
    with pytest.raises(PermanentError, match="another host"):
        list(client.iter_comments("1"))


@respx.mock
@pytest.mark.parametrize(
    ("status", "error", "message"),
    [
        (429, TransientError, "HTTP 429"),
        (502, TransientError, "HTTP 502"),
        (404, SubjectGoneError, "not found"),
        (403, PermanentError, "scopes"),
        (422, PermanentError, "HTTP 422"),
    ],
)
def test_client_classifies_failures(
    tmp_path: Path, status: int, error: type[Exception], message: str
) -> None:
    settings = _settings(tmp_path, zendesk_subdomain="acme", zendesk_oauth_token=SecretStr("o"))
    client = zendesk_client_for(settings, httpx.Client())
    respx.put("https://acme.zendesk.com/api/v2/tickets/1.json").respond(status, headers={"Retry-After": "9"})
    with pytest.raises(error, match=message) as raised:
        client.add_internal_note("1", "<p>x</p>", updated_stamp=None)
    if status == 429:
        assert isinstance(raised.value, TransientError) and raised.value.retry_after == 9


def test_a_note_marker_matches_its_own_attachment_only() -> None:
    from imagematch.sources.zendesk.notes import _mentions

    note_for_123 = [{"html_body": "<p>Top products…</p><p>ref imagematch-note:123</p>"}]
    assert not _mentions(note_for_123, note_marker("12"))
    assert not _mentions([{"body": "ref imagematch-note:1234"}], note_marker("123"))
    assert _mentions(note_for_123, note_marker("123"))
    assert _mentions([{"plain_body": "ref imagematch-note:12"}], note_marker("12"))
