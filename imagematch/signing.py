"""HMAC-SHA256 signatures of webhook bodies: what imagematch sends (the matches callback) and the
catalog events it receives are signed alike — ``X-Imagematch-Timestamp`` (unix seconds) and
``X-Imagematch-Signature: sha256=<hex HMAC of "timestamp.body">``. A source's own scheme (Zendesk's)
stays with the source."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from imagematch.errors import ImageMatchError

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "InvalidSignatureError",
    "signed_headers",
    "verify_signature",
]

SIGNATURE_HEADER = "X-Imagematch-Signature"
TIMESTAMP_HEADER = "X-Imagematch-Timestamp"


class InvalidSignatureError(ImageMatchError):
    """A webhook's signature is missing, malformed, stale or wrong (HTTP 401)."""


def _signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return mac.hexdigest()


def signed_headers(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers that authenticate ``body`` sent at ``timestamp`` (unix seconds)."""
    return {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: f"sha256={_signature(secret, str(timestamp), body)}",
        "Content-Type": "application/json",
    }


def verify_signature(
    secret: str,
    body: bytes,
    *,
    signature: str | None,
    timestamp: str | None,
    now: datetime,
    tolerance_seconds: float,
) -> None:
    """Check a webhook's headers against ``body``; returns quietly when they are valid.

    Raises InvalidSignatureError when a header is missing or malformed, the timestamp is further
    than ``tolerance_seconds`` from ``now`` (a replay, or a badly wrong clock), or the signature
    does not match (compared in constant time).
    """
    if not signature or not timestamp:
        raise InvalidSignatureError(f"missing {SIGNATURE_HEADER} or {TIMESTAMP_HEADER} header")
    try:
        sent = int(timestamp)
    except ValueError as exc:
        raise InvalidSignatureError(f"{TIMESTAMP_HEADER} must be unix seconds") from exc
    if abs(now.timestamp() - sent) > tolerance_seconds:
        raise InvalidSignatureError(
            f"{TIMESTAMP_HEADER} is more than {tolerance_seconds:.0f} s from the server's clock"
        )
    scheme, _, given = signature.strip().partition("=")
    expected = _signature(secret, timestamp, body)
    if scheme != "sha256" or not hmac.compare_digest(given.encode(), expected.encode()):
        raise InvalidSignatureError("signature does not match the body")
