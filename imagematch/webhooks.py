"""Plumbing shared by the signed webhook routes (each source owns its route: ``sources/*/routes.py``).

A webhook route verifies its sender before anything else, persists a job and answers at once; the
ledger's workers do the work. Such routes are safe to expose without other authentication
(``imagematch.api.create_webhook_app`` serves only them and ``/healthz``).

Every webhook body must be sent as ``application/json`` (415 otherwise): a browser cannot send
that cross-site without a CORS preflight, which nothing here answers. Unsigned mode (local
trials) has no signature to stand on, so it also gets the console's checks: a loopback ``Host``
(no DNS rebinding) and no cross-site ``Origin`` / ``Sec-Fetch-Site`` (403).
"""

from __future__ import annotations

from fastapi import HTTPException, Request
from pydantic import SecretStr

from imagematch.request_limits import read_body_capped, refuse_deep_json
from imagematch.request_origin import is_loopback_host, is_same_site

__all__ = [
    "MAX_WEBHOOK_BYTES",
    "RETRY_LATER",
    "check_webhook_request",
    "read_webhook_body",
    "refuse_deep_json",
    "require_webhook_secret",
]

RETRY_LATER = {"Retry-After": "10"}  # on a 503 while the ledger is unreachable: senders retry
MAX_WEBHOOK_BYTES = 1_000_000  # Zendesk and catalog event bodies are a few kB


def check_webhook_request(request: Request, *, signed: bool) -> None:
    """415 unless the body is declared ``application/json``; when ``signed`` is False (unsigned
    local trials), 403 unless the ``Host`` is a loopback name and the request is not cross-site."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "application/json":
        raise HTTPException(415, "webhook bodies must be sent as Content-Type: application/json")
    if signed:
        return
    if not is_loopback_host(request.headers.get("host", "")):
        raise HTTPException(403, "unsigned webhooks are accepted only on a loopback Host (local trials)")
    if not is_same_site(request):
        raise HTTPException(403, "cross-site request refused")


async def read_webhook_body(request: Request, *, signed: bool, max_bytes: int = MAX_WEBHOOK_BYTES) -> bytes:
    """The raw body (signatures cover its exact bytes) after :func:`check_webhook_request` (415,
    and 403 when not ``signed``), refused with 413 past ``max_bytes`` — also when no
    Content-Length announces it. Call :func:`refuse_deep_json` on it once the signature is
    verified."""
    check_webhook_request(request, signed=signed)
    return await read_body_capped(request, max_bytes, what="webhook body")


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
