"""Zendesk Support API client (httpx): ticket comments, internal notes, the incremental export.

Failures are classified for the ledger's retry policy, never retried here: 429 (with its
``Retry-After``), 5xx, timeouts and network errors raise :class:`TransientError`; a ticket that no
longer exists (404) raises :class:`SubjectGoneError`; other 4xx raise :class:`PermanentError`.
Credentials are only ever sent to the configured Zendesk host: a pagination link pointing
elsewhere is refused.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from imagematch.config import Settings, redact_url
from imagematch.errors import PermanentError, SubjectGoneError, TransientError
from imagematch.fetch import raise_for_http_status

__all__ = [
    "ZendeskClient",
    "ZendeskConflictError",
    "ZendeskNotConfiguredError",
    "zendesk_base_url",
    "zendesk_client_for",
]

PAGE_SIZE = 100  # the most Zendesk's cursor pagination serves per page


class ZendeskNotConfiguredError(PermanentError):
    """Zendesk settings are missing: set them, then retry the failed jobs."""


class ZendeskConflictError(TransientError):
    """A ``safe_update`` was refused (HTTP 409): the ticket changed since it was read."""


def zendesk_base_url(settings: Settings) -> str | None:
    """``IMAGEMATCH_ZENDESK_BASE_URL``, else ``https://<IMAGEMATCH_ZENDESK_SUBDOMAIN>.zendesk.com``."""
    if settings.zendesk_base_url:
        return settings.zendesk_base_url.rstrip("/")
    if settings.zendesk_subdomain:
        return f"https://{settings.zendesk_subdomain}.zendesk.com"
    return None


def _authorization(settings: Settings) -> str | None:
    if settings.zendesk_oauth_token is not None:
        return f"Bearer {settings.zendesk_oauth_token.get_secret_value()}"
    if settings.zendesk_email and settings.zendesk_api_token is not None:
        user = f"{settings.zendesk_email}/token:{settings.zendesk_api_token.get_secret_value()}"
        return f"Basic {base64.b64encode(user.encode()).decode()}"
    return None


def zendesk_client_for(settings: Settings, http: httpx.Client) -> ZendeskClient:
    """The client ``settings`` describe. Raises :class:`ZendeskNotConfiguredError` naming what is
    missing (the account, or credentials)."""
    base_url = zendesk_base_url(settings)
    if base_url is None:
        raise ZendeskNotConfiguredError(
            "Zendesk is not configured: set IMAGEMATCH_ZENDESK_SUBDOMAIN (or IMAGEMATCH_ZENDESK_BASE_URL)"
        )
    authorization = _authorization(settings)
    if authorization is None:
        raise ZendeskNotConfiguredError(
            "Zendesk credentials are missing: set IMAGEMATCH_ZENDESK_EMAIL and "
            "IMAGEMATCH_ZENDESK_API_TOKEN, or IMAGEMATCH_ZENDESK_OAUTH_TOKEN"
        )
    return ZendeskClient(http, base_url, authorization)


class ZendeskClient:
    def __init__(self, http: httpx.Client, base_url: str, authorization: str) -> None:
        self._http = http
        self.base_url = base_url.rstrip("/")
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ZendeskNotConfiguredError(
                f"Zendesk base URL must be http(s)://host, got {redact_url(base_url)!r}"
            )
        self._origin = (parts.scheme, parts.netloc.lower())
        self.host: str = parts.hostname
        self._authorization = authorization

    def __repr__(self) -> str:  # never shows the credentials
        return f"ZendeskClient({self.base_url!r})"

    @property
    def credentials(self) -> dict[str, str]:
        """Headers that authenticate to Zendesk; send them to :attr:`host` only."""
        return {"Authorization": self._authorization}

    def _url(self, path_or_url: str) -> str:
        if "://" not in path_or_url:
            return self.base_url + path_or_url
        parts = urlsplit(path_or_url)
        if (parts.scheme, parts.netloc.lower()) != self._origin:
            raise PermanentError(f"Zendesk sent a link to another host ({parts.netloc}); not following it")
        return path_or_url

    def _request(
        self,
        method: str,
        path_or_url: str,
        *,
        what: str,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
        gone_on_404: bool = False,
    ) -> dict[str, Any]:
        url = self._url(path_or_url)
        headers = {**self.credentials, "Accept": "application/json"}
        try:
            response = self._http.request(
                method, url, params=params, json=json, headers=headers, follow_redirects=False
            )
        except httpx.TimeoutException as exc:
            raise TransientError(f"Zendesk {what}: timed out") from exc
        except httpx.TransportError as exc:
            raise TransientError(f"Zendesk {what}: network error: {exc}") from exc
        if response.status_code == 404 and gone_on_404:
            raise SubjectGoneError(f"Zendesk {what}: not found (deleted?)")
        if response.status_code == 409:
            raise ZendeskConflictError(f"Zendesk {what}: HTTP 409 (changed meanwhile)")
        if response.status_code in (401, 403):
            raise PermanentError(
                f"Zendesk {what}: HTTP {response.status_code}: check the credentials and their scopes"
            )
        raise_for_http_status(response, f"Zendesk {what}")
        if 300 <= response.status_code < 400:  # e.g. http:// instead of https://: a settings problem
            where = response.headers.get("location", "?")[:200]
            raise PermanentError(
                f"Zendesk {what}: redirected to {where}; check IMAGEMATCH_ZENDESK_BASE_URL/SUBDOMAIN"
            )
        try:
            body = response.json()
        except ValueError as exc:
            raise TransientError(f"Zendesk {what}: the answer is not JSON") from exc
        if not isinstance(body, dict):
            raise TransientError(f"Zendesk {what}: unexpected answer")
        return body

    def iter_comments(self, ticket_id: str) -> Iterator[dict[str, Any]]:
        """Every comment of the ticket, oldest first (cursor pagination: ``page[size]``,
        ``meta.has_more``, ``links.next``). SubjectGoneError if the ticket is gone."""
        url: str | None = f"/api/v2/tickets/{ticket_id}/comments.json"
        params: dict[str, Any] | None = {"page[size]": PAGE_SIZE}
        while url:
            page = self._request(
                "GET", url, what=f"comments of ticket {ticket_id}", params=params, gone_on_404=True
            )
            yield from (c for c in page.get("comments") or [] if isinstance(c, dict))
            meta, links = page.get("meta") or {}, page.get("links") or {}
            url = links.get("next") if meta.get("has_more") and links.get("next") else None
            params = None  # the next link carries the cursor and the page size

    def current_user_id(self) -> int:
        """The id of the user these credentials act as (``GET /api/v2/users/me``): the author of
        every note imagematch posts. TransientError when the answer names no user."""
        user = self._request("GET", "/api/v2/users/me.json", what="the API user").get("user")
        if not isinstance(user, dict) or not isinstance(user.get("id"), int) or user["id"] <= 0:
            # An anonymous user (id null or 0) means the credentials were not accepted as a user.
            raise TransientError("Zendesk the API user: answer names no signed-in user")
        return int(user["id"])

    def get_ticket(self, ticket_id: str) -> dict[str, Any]:
        """The ticket (``updated_at`` is what a ``safe_update`` is checked against)."""
        body = self._request(
            "GET", f"/api/v2/tickets/{ticket_id}.json", what=f"ticket {ticket_id}", gone_on_404=True
        )
        ticket = body.get("ticket")
        if not isinstance(ticket, dict):
            raise TransientError(f"Zendesk ticket {ticket_id}: answer has no ticket")
        return ticket

    def add_internal_note(self, ticket_id: str, html_body: str, *, updated_stamp: str | None) -> None:
        """Add a private comment. With ``updated_stamp`` (the ticket's ``updated_at`` when it was
        read) Zendesk applies it only if the ticket has not changed since — else
        :class:`ZendeskConflictError`."""
        ticket: dict[str, Any] = {"comment": {"html_body": html_body, "public": False}}
        if updated_stamp:
            ticket |= {"safe_update": True, "updated_stamp": updated_stamp}
        self._request(
            "PUT",
            f"/api/v2/tickets/{ticket_id}.json",
            what=f"note on ticket {ticket_id}",
            json={"ticket": ticket},
            gone_on_404=True,
        )

    def incremental_tickets(
        self, *, start_time: datetime | None = None, cursor: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of the Incremental Ticket Export (cursor-based): tickets updated since
        ``start_time``, or the page after ``cursor``; and the next cursor (``None`` at the end of
        the stream)."""
        if cursor:
            params: dict[str, Any] = {"cursor": cursor}
        elif start_time is not None:
            params = {"start_time": int(start_time.timestamp())}
        else:
            raise ValueError("give start_time or cursor")
        page = self._request(
            "GET", "/api/v2/incremental/tickets/cursor.json", what="incremental ticket export", params=params
        )
        tickets = [t for t in page.get("tickets") or [] if isinstance(t, dict)]
        after = page.get("after_cursor")
        return tickets, None if page.get("end_of_stream") or not after else str(after)
