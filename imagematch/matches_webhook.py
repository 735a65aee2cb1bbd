"""The optional signed callback when an entity's top match changes (``IMAGEMATCH_MATCHES_WEBHOOK_URL``).

Signed like the catalog webhook (``X-Imagematch-Timestamp`` and an HMAC-SHA256 signature of
timestamp and body, :func:`~imagematch.signing.signed_headers`) with
``IMAGEMATCH_MATCHES_WEBHOOK_SECRET``. Delivery is at least once: the callback is sent before the
new matches are stored, so a failed send leaves the entity to be re-matched (and sent) again; a
receiver dedups on ``event_id``.
"""

from __future__ import annotations

import json

import httpx

from imagematch.entities import EntityMatch, EntityRef
from imagematch.errors import TransientError
from imagematch.ledger import Clock
from imagematch.signing import signed_headers

__all__ = ["CallbackFailedError", "MatchesWebhook"]


class CallbackFailedError(TransientError):
    """The receiver did not take the callback (network error or non-2xx answer)."""


class MatchesWebhook:
    def __init__(self, http: httpx.Client, url: str, secret: str, *, clock: Clock) -> None:
        self._http = http
        self._url = url
        self._secret = secret
        self._clock = clock

    def top_changed(
        self, entity: EntityRef, *, previous: str | None, matches: list[EntityMatch], index_version: str
    ) -> None:
        """POST ``entity.top_match_changed``; raises CallbackFailedError when it is not accepted."""
        top = matches[0] if matches else None
        body = json.dumps(
            {
                "event": "entity.top_match_changed",
                "event_id": f"{entity}:{index_version}:{top.product_id if top else ''}",
                "entity_type": entity.entity_type,
                "entity_id": entity.entity_id,
                "previous_top_product_id": previous,
                "top_product_id": top.product_id if top else None,
                "index_version": index_version,
                "matches": [
                    {"product_id": m.product_id, "score": m.score, "photos": m.photos} for m in matches
                ],
            }
        ).encode()
        headers = signed_headers(self._secret, int(self._clock().timestamp()), body)
        try:
            response = self._http.post(self._url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise CallbackFailedError(f"matches webhook unreachable: {exc}") from exc
        if not response.is_success:
            raise CallbackFailedError(f"matches webhook answered {response.status_code}")
