"""Catalog webhook signatures and event parsing, without HTTP."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from imagematch.errors import PermanentError
from imagematch.sources.catalog import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    InvalidSignatureError,
    ProductChanged,
    ProductDeleted,
    catalog_event_job,
    catalog_event_key,
    parse_catalog_event,
    sign_catalog_event,
    verify_catalog_signature,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SECRET = "test-secret"  # a test fixture, not a credential
BODY = b'{"event": "product.deleted", "product_id": "P1"}'


def _verify(headers: dict[str, str], body: bytes = BODY, now: datetime = NOW) -> None:
    verify_catalog_signature(
        SECRET,
        body,
        signature=headers.get(SIGNATURE_HEADER),
        timestamp=headers.get(TIMESTAMP_HEADER),
        now=now,
        tolerance_seconds=300,
    )


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    headers = sign_catalog_event(SECRET, 1767225600, BODY)
    expected = hmac.new(SECRET.encode(), b"1767225600." + BODY, hashlib.sha256).hexdigest()
    assert headers[SIGNATURE_HEADER] == f"sha256={expected}"
    assert headers[TIMESTAMP_HEADER] == "1767225600"
    _verify(headers)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda h, b: ({}, b), "missing"),
        (lambda h, b: ({**h, SIGNATURE_HEADER: h[SIGNATURE_HEADER] + "0"}, b), "does not match"),
        (lambda h, b: (h, b + b" "), "does not match"),
        (lambda h, b: ({**h, SIGNATURE_HEADER: h[SIGNATURE_HEADER].replace("sha256", "md5")}, b), "match"),
        (lambda h, b: ({**h, TIMESTAMP_HEADER: "soon"}, b), "unix seconds"),
        (lambda h, b: ({**h, TIMESTAMP_HEADER: str(int(NOW.timestamp()) + 1)}, b), "does not match"),
    ],
)
def test_tampered_or_incomplete_signatures_are_refused(change: object, reason: str) -> None:
    headers, body = change(sign_catalog_event(SECRET, int(NOW.timestamp()), BODY), BODY)  # type: ignore[operator]
    with pytest.raises(InvalidSignatureError, match=reason):
        _verify(headers, body)


@pytest.mark.parametrize("age", [-301, 301])
def test_timestamps_outside_the_window_are_refused(age: int) -> None:
    headers = sign_catalog_event(SECRET, int(NOW.timestamp()) - age, BODY)
    with pytest.raises(InvalidSignatureError, match="300 s"):
        _verify(headers)
    _verify(sign_catalog_event(SECRET, int(NOW.timestamp()) - 299, BODY))


def test_events_parse_into_their_models() -> None:
    changed, _ = parse_catalog_event(
        json.dumps(
            {
                "event": "product.updated",
                "event_id": "evt-1",
                "product": {"id": "P1", "name": "Oat milk", "images": ["https://cdn.example/p1.jpg"]},
                "shop_field": "ignored",
            }
        ).encode()
    )
    assert isinstance(changed, ProductChanged) and changed.product.name == "Oat milk"
    job = catalog_event_job(changed, {})
    assert job.kind == "catalog_event" and job.source == "catalog"
    assert job.payload["product"]["images"] == ["https://cdn.example/p1.jpg"]
    assert job.payload["event_id"] == "evt-1" and "shop_field" not in job.payload
    deleted, _ = parse_catalog_event(b'{"event": "product.deleted", "product": {"id": "P2"}}')
    assert isinstance(deleted, ProductDeleted) and deleted.product_id == "P2"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[]", '"event" must be one of'),
        (b'{"event": "product.renamed"}', '"event" must be one of'),
        (b'{"event": "product.updated"}', "product: Field required"),
        (b'{"event": "product.updated", "product": {"id": ""}}', "product.id"),
        (b'{"event": "product.created", "product": {"id": "P", "images": ["/etc/passwd"]}}', "http(s)"),
        (b'{"event": "product.created", "product": {"id": "P", "images": ["file:///x.png"]}}', "http(s)"),
        (b'{"event": "product.deleted"}', "product_id: Field required"),
    ],
)
def test_malformed_events_say_what_is_wrong(body: bytes, reason: str) -> None:
    with pytest.raises(PermanentError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        parse_catalog_event(body)


def test_idempotency_key_ignores_formatting_but_not_content() -> None:
    one = {"event": "product.deleted", "product_id": "P1"}
    key = catalog_event_key(ProductDeleted.model_validate(one), one)
    reordered = {"product_id": "P1", "event": "product.deleted"}
    assert catalog_event_key(ProductDeleted.model_validate(reordered), reordered) == key
    distinct = {**one, "event_id": "evt-2"}
    assert catalog_event_key(ProductDeleted.model_validate(distinct), distinct) != key
    assert key.startswith("catalog:P1:")
