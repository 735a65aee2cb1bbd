"""Plumbing shared by the signed webhook routes (each source owns its route: ``sources/*/routes.py``).

A webhook route verifies its sender before anything else, persists a job and answers at once; the
ledger's workers do the work. Such routes are safe to expose without other authentication
(``imagematch.api.create_webhook_app`` serves only them and ``/healthz``).
"""

from __future__ import annotations

from fastapi import HTTPException, Request
from pydantic import SecretStr

__all__ = ["MAX_WEBHOOK_BYTES", "read_webhook_body", "require_webhook_secret"]

MAX_WEBHOOK_BYTES = 1_000_000  # Zendesk and catalog event bodies are a few kB


async def read_webhook_body(request: Request, max_bytes: int = MAX_WEBHOOK_BYTES) -> bytes:
    """The raw body (signatures cover its exact bytes), refused with 413 past ``max_bytes`` —
    also when no Content-Length announces it."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise HTTPException(413, f"webhook body is larger than {max_bytes:,} bytes")
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > max_bytes:
            raise HTTPException(413, f"webhook body is larger than {max_bytes:,} bytes")
    return bytes(received)


def require_webhook_secret(
    secret: SecretStr | None, *, allow_unsigned: bool, what: str, secret_env: str, unsigned_env: str
) -> str | None:
    """The signing secret, or ``None`` for unsigned local trials; 503 naming the setting when the
    route is not configured (so a sender retries later and nothing is accepted unverified)."""
    if secret is not None:
        return secret.get_secret_value()
    if allow_unsigned:
        return None
    raise HTTPException(
        503, f"{what} are not configured: set {secret_env} (or {unsigned_env}=true for local trials)"
    )
