"""Zendesk webhooks in: signature verification and the ticket a delivery is about.

Zendesk signs each delivery: ``X-Zendesk-Webhook-Signature`` is
``base64(HMAC-SHA256(secret, X-Zendesk-Webhook-Signature-Timestamp + raw body))``. A request is
accepted only if that matches (constant-time) and the timestamp is within the replay window, so a
captured request cannot be replayed later.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookDelivery",
    "WebhookPayloadError",
    "WebhookSignatureError",
    "parse_delivery",
    "sign",
    "verify_signature",
]

SIGNATURE_HEADER = "X-Zendesk-Webhook-Signature"
TIMESTAMP_HEADER = "X-Zendesk-Webhook-Signature-Timestamp"


class WebhookSignatureError(Exception):
    """The request is not provably from Zendesk: missing, wrong or expired signature."""


class WebhookPayloadError(Exception):
    """The body is signed but unusable: not JSON, or names no ticket."""


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature Zendesk sends for ``body`` at ``timestamp`` (tests and local trials use it)."""
    digest = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _parse_timestamp(value: str) -> datetime:
    """Zendesk sends ISO 8601 (``2026-01-01T12:00:00Z``); UNIX seconds are accepted too."""
    text = value.strip()
    try:
        if text.isdigit():
            return datetime.fromtimestamp(int(text), UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError) as exc:
        raise WebhookSignatureError(f"unreadable {TIMESTAMP_HEADER}: {text[:40]!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def verify_signature(
    *,
    secret: str,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    now: datetime,
    tolerance_seconds: float,
) -> None:
    """Return if the delivery is authentic and fresh; raise :class:`WebhookSignatureError` if not.

    The signature is checked before the timestamp's age, so an expired request is reported as
    expired only when it was genuinely signed.
    """
    if not signature or not timestamp:
        raise WebhookSignatureError(f"missing {SIGNATURE_HEADER} or {TIMESTAMP_HEADER} header")
    expected = sign(secret, timestamp, body)
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        raise WebhookSignatureError("signature does not match the body")
    age = now - _parse_timestamp(timestamp)
    if abs(age) > timedelta(seconds=tolerance_seconds):
        raise WebhookSignatureError(
            f"signature timestamp is {abs(age.total_seconds()):.0f}s away from now "
            f"(window {tolerance_seconds:.0f}s): expired or replayed"
        )


@dataclass(frozen=True)
class WebhookDelivery:
    """What a delivery asks for: scan ``ticket_id``. ``delivery_id`` tells repeated deliveries of
    the same event apart from new events about the same ticket."""

    ticket_id: str
    delivery_id: str
    event_type: str | None = None


def _ticket_id(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value) if value > 0 else None
    if isinstance(value, str) and value.strip().isdigit() and int(value) > 0:
        return str(int(value))
    return None


def parse_delivery(body: bytes, *, timestamp: str | None = None) -> WebhookDelivery:
    """The ticket a webhook body is about, from ``detail.id`` (Zendesk event webhooks),
    ``ticket_id``, ``ticket.id`` or ``id`` (trigger webhooks with a custom JSON body), as a string
    or a number. Raises :class:`WebhookPayloadError` with the reason otherwise.

    ``delivery_id`` is the event id for event webhooks (top-level ``id`` beside ``detail``);
    otherwise a hash of the signed timestamp and the body, so the same delivery sent twice is one
    delivery, while a later trigger firing with an identical body (``{"ticket_id": 7}`` on every
    comment) is a new one.
    """
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WebhookPayloadError(f"body is not JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise WebhookPayloadError("body must be a JSON object naming a ticket")
    subject = payload.get("subject")
    if isinstance(subject, str) and subject.startswith("zen:") and not subject.startswith("zen:ticket:"):
        raise WebhookPayloadError(
            f"not a ticket event (subject {subject[:80]!r}): subscribe to ticket events only"
        )
    detail, ticket = payload.get("detail"), payload.get("ticket")
    candidates = [
        detail.get("id") if isinstance(detail, dict) else None,
        payload.get("ticket_id"),
        ticket.get("id") if isinstance(ticket, dict) else None,
        None if isinstance(detail, dict) else payload.get("id"),  # beside `detail`, `id` is the event's
    ]
    present = [c for c in candidates if c is not None]
    ticket_id = next((t for t in map(_ticket_id, present) if t), None)
    if ticket_id is None:
        if present:
            raise WebhookPayloadError(f"ticket id must be a positive integer, got {present[0]!r}")
        raise WebhookPayloadError("no ticket id in the body: expected detail.id, ticket_id, ticket.id or id")
    event_type = payload.get("type") if isinstance(payload.get("type"), str) else None
    event_id = payload.get("id") if isinstance(detail, dict) else None
    if isinstance(event_id, str | int) and not isinstance(event_id, bool) and str(event_id):
        delivery_id = f"event:{str(event_id)[:200]}"
    else:
        delivery_id = hashlib.sha256((timestamp or "").encode() + b"." + body).hexdigest()[:32]
    return WebhookDelivery(ticket_id=ticket_id, delivery_id=delivery_id, event_type=event_type)
