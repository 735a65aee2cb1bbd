"""A fake Zendesk for tests: real HTTP servers on 127.0.0.1, no network beyond the machine.

* The **account** (``base_url``, ``http://127.0.0.1:<port>``) serves the Support API endpoints
  imagematch uses — ticket comments with cursor pagination, ticket show/update (internal notes,
  ``safe_update`` conflicts), the incremental ticket export — and attachment ``content_url``\\ s,
  which redirect to:
* the **storage host** (``storage_url``, ``http://localhost:<port>``: another host name, as
  Zendesk's ``*.zdusercontent.com``), which serves the bytes without authentication.

Both record every request (with headers). Faults are injected per request path: an HTTP status
with headers (429 + ``Retry-After``, 500), ``"timeout"`` (the server holds the request until the
client gives up) or ``"disconnect"``.
"""

from __future__ import annotations

import base64
import http.server
import itertools
import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["FakeZendesk", "Fault", "Recorded", "fake_zendesk"]

AGENT_ID = 9000  # the API user imagematch authenticates as
CUSTOMER_ID = 1000
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)

Fault = tuple[int, dict[str, str]] | str  # (status, headers) | "timeout" | "disconnect"


@dataclass
class Recorded:
    server: str  # "zendesk" or "storage"
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes


@dataclass
class FakeTicket:
    id: int
    status: str = "open"
    comments: list[dict[str, Any]] = field(default_factory=list)
    version: int = 0  # bumped by every update; updated_at is derived from it

    @property
    def updated_at(self) -> str:
        return (EPOCH + timedelta(seconds=self.version)).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeZendesk:
    def __init__(
        self,
        *,
        email: str = "agent@example.com",
        api_token: str = "test-api-token",
        page_size: int = 2,
        hang_seconds: float = 10.0,
    ) -> None:
        self.email = email
        self.api_token = api_token
        self.authorization = "Basic " + base64.b64encode(f"{email}/token:{api_token}".encode()).decode()
        self.page_size = page_size  # the server caps page[size], as Zendesk does
        self.hang_seconds = hang_seconds
        self.tickets: dict[int, FakeTicket] = {}
        self.blobs: dict[str, tuple[str, bytes]] = {}  # token -> (content type, bytes)
        self.requests: list[Recorded] = []
        self.after_hooks: list[tuple[str, str, Callable[[], None]]] = []
        self._faults: list[tuple[str, str, Fault]] = []
        self._ids = itertools.count(100)
        self._lock = threading.RLock()
        self._release = threading.Event()
        self._account = _serve(self, "zendesk")
        self._storage = _serve(self, "storage")  # reached as `localhost`: another host name
        self.base_url = f"http://127.0.0.1:{self._account.server_address[1]}"
        self.storage_url = f"http://localhost:{self._storage.server_address[1]}"

    def close(self) -> None:
        self._release.set()
        for server in (self._account, self._storage):
            server.shutdown()
            server.server_close()

    # ## Arranging state

    def add_ticket(self, ticket_id: int, *, status: str = "open") -> FakeTicket:
        with self._lock:
            ticket = self.tickets[ticket_id] = FakeTicket(ticket_id, status=status)
            return ticket

    def attachment(
        self,
        data: bytes,
        file_name: str,
        content_type: str = "image/png",
        *,
        redirect: bool = True,
        inline: bool = False,
        malware: bool = False,
        size: int | None = None,
    ) -> dict[str, Any]:
        """An attachment as Zendesk lists it; its content_url redirects to the storage host."""
        attachment_id = next(self._ids)
        token = f"tok{attachment_id}"
        with self._lock:
            self.blobs[token] = (content_type, data)
        path = f"/attachments/token/{token}/?name={file_name}"
        return {
            "id": attachment_id,
            "file_name": file_name,
            "content_url": self.base_url + path if redirect else f"{self.storage_url}/files/{token}",
            "mapped_content_url": self.base_url + path,
            "content_type": content_type,
            "size": len(data) if size is None else size,
            "inline": inline,
            "deleted": False,
            "malware_access_override": False,
            "malware_scan_result": "malware_found" if malware else "malware_not_found",
            "thumbnails": [],
        }

    def add_comment(
        self, ticket_id: int, *attachments: dict[str, Any], body: str = "See the photo", public: bool = True
    ) -> dict[str, Any]:
        with self._lock:
            ticket = self.tickets.get(ticket_id) or self.add_ticket(ticket_id)
            comment = {
                "id": next(self._ids),
                "type": "Comment",
                "author_id": CUSTOMER_ID,
                "body": body,
                "html_body": f"<div><p>{body}</p></div>",
                "plain_body": body,
                "public": public,
                "attachments": list(attachments),
                "created_at": ticket.updated_at,
            }
            ticket.comments.append(comment)
            ticket.version += 1
            return comment

    def fail(self, method: str, path_prefix: str, *faults: Fault) -> None:
        """The next requests to a path starting with ``path_prefix`` get these faults, in order."""
        with self._lock:
            self._faults.extend((method, path_prefix, fault) for fault in faults)

    def after(self, method: str, path_prefix: str, hook: Callable[[], None]) -> None:
        """Run ``hook`` once, right after the next matching request is answered."""
        with self._lock:
            self.after_hooks.append((method, path_prefix, hook))

    # ## Reading what happened

    def notes(self, ticket_id: int) -> list[dict[str, Any]]:
        """Internal notes imagematch added (comments authored by the API user)."""
        with self._lock:
            return [c for c in self.tickets[ticket_id].comments if c["author_id"] == AGENT_ID]

    def requests_to(self, server: str, path_prefix: str = "", method: str | None = None) -> list[Recorded]:
        with self._lock:
            return [
                r
                for r in self.requests
                if r.server == server
                and r.path.startswith(path_prefix)
                and (method is None or r.method == method)
            ]

    # ## Serving

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for n, (m, prefix, fault) in enumerate(self._faults):
                if m == method and path.startswith(prefix):
                    del self._faults[n]
                    return fault
        return None

    def _run_after_hooks(self, method: str, path: str) -> None:
        with self._lock:
            due = [h for h in self.after_hooks if h[0] == method and path.startswith(h[1])]
            for hook in due[:1]:
                self.after_hooks.remove(hook)
        for _, _, run in due[:1]:
            run()

    def handle(self, server: str, request: http.server.BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(request.path)
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        recorded = Recorded(
            server,
            method,
            parts.path,
            parse_qs(parts.query),
            {k.lower(): v for k, v in request.headers.items()},
            body,
        )
        with self._lock:
            self.requests.append(recorded)
        fault = self._take_fault(method, parts.path)
        if fault == "timeout":
            self._release.wait(self.hang_seconds)
            return
        if fault == "disconnect":
            request.close_connection = True
            return
        if isinstance(fault, tuple):
            status, headers = fault
            _send(request, _json(status, {"error": "injected"}, headers))
            return
        serve = self._serve_storage if server == "storage" else self._serve_account
        response = serve(recorded)
        # Hooks run after the answer is computed but before it is sent: whatever they change
        # happens "just after" this request, before the client can send its next one.
        self._run_after_hooks(method, parts.path)
        _send(request, response)

    def _serve_storage(self, call: Recorded) -> Response:
        match = re.fullmatch(r"/files/(\w+)", call.path)
        blob = self.blobs.get(match.group(1)) if match else None
        if blob is None:
            return _json(404, {"error": "RecordNotFound"})
        return Response(200, blob[0], blob[1])

    def _serve_account(self, call: Recorded) -> Response:
        if call.headers.get("authorization") != self.authorization:
            return _json(401, {"error": "Couldn't authenticate you"})
        path, method = call.path, call.method
        if match := re.fullmatch(r"/attachments/token/(\w+)/", path):
            if match.group(1) not in self.blobs:
                return _json(404, {"error": "RecordNotFound"})
            return Response(302, "text/html", b"", {"Location": f"{self.storage_url}/files/{match.group(1)}"})
        if match := re.fullmatch(r"/api/v2/tickets/(\d+)/comments\.json", path):
            return self._list_comments(int(match.group(1)), call.query)
        if match := re.fullmatch(r"/api/v2/tickets/(\d+)\.json", path):
            if method == "PUT":
                return self._update_ticket(int(match.group(1)), json.loads(call.body))
            ticket = self.tickets.get(int(match.group(1)))
            if ticket is None:
                return _json(404, {"error": "RecordNotFound"})
            return _json(
                200, {"ticket": {"id": ticket.id, "status": ticket.status, "updated_at": ticket.updated_at}}
            )
        if path == "/api/v2/incremental/tickets/cursor.json":
            return self._export(call.query)
        if path == "/api/v2/users/me.json":
            return _json(200, {"user": {"id": AGENT_ID, "email": self.email, "role": "agent"}})
        return _json(404, {"error": "InvalidEndpoint"})

    def _list_comments(self, ticket_id: int, query: dict[str, list[str]]) -> Response:
        ticket = self.tickets.get(ticket_id)
        if ticket is None:
            return _json(404, {"error": "RecordNotFound"})
        size = min(int(query.get("page[size]", ["100"])[0]), self.page_size)
        start = int(query.get("page[after]", ["0"])[0])
        with self._lock:
            page = [dict(c) for c in ticket.comments[start : start + size]]
            has_more = start + size < len(ticket.comments)
        after = str(start + size) if has_more else None
        base = f"{self.base_url}/api/v2/tickets/{ticket_id}/comments.json"
        return _json(
            200,
            {
                "comments": page,
                "meta": {"has_more": has_more, "after_cursor": after, "before_cursor": None},
                "links": {"next": f"{base}?page[after]={after}&page[size]={size}" if after else None},
            },
        )

    def _update_ticket(self, ticket_id: int, body: dict[str, Any]) -> Response:
        update = body.get("ticket") or {}
        with self._lock:
            ticket = self.tickets.get(ticket_id)
            if ticket is None:
                return _json(404, {"error": "RecordNotFound"})
            if ticket.status == "closed":
                return _json(422, {"error": "RecordInvalid", "description": "Status: closed prevents update"})
            if update.get("safe_update") and update.get("updated_stamp") != ticket.updated_at:
                return _json(409, {"error": "UpdateConflict"})
            comment = update.get("comment") or {}
            self.add_note(
                ticket_id,
                comment.get("html_body") or comment.get("body", ""),
                public=comment.get("public", True),
            )
            return _json(200, {"ticket": {"id": ticket.id, "updated_at": ticket.updated_at}})

    def add_note(self, ticket_id: int, html_body: str, *, public: bool = False) -> None:
        """A comment by the API user (what a successful note PUT adds)."""
        text = re.sub(r"<[^>]+>", " ", html_body)
        with self._lock:
            ticket = self.tickets[ticket_id]
            ticket.comments.append(
                {
                    "id": next(self._ids),
                    "type": "Comment",
                    "author_id": AGENT_ID,
                    "body": text,
                    "html_body": html_body,
                    "plain_body": text,
                    "public": public,
                    "attachments": [],
                }
            )
            ticket.version += 1

    def _export(self, query: dict[str, list[str]]) -> Response:
        with self._lock:
            tickets = sorted(self.tickets.values(), key=lambda t: t.id)
        if "cursor" in query:
            start = int(query["cursor"][0])
        else:
            since = datetime.fromtimestamp(int(query["start_time"][0]), UTC)
            tickets = [t for t in tickets if EPOCH + timedelta(seconds=t.version) >= since]
            start = 0
        end = start + self.page_size >= len(tickets)
        return _json(
            200,
            {
                "tickets": [
                    {"id": t.id, "status": t.status, "updated_at": t.updated_at}
                    for t in tickets[start : start + self.page_size]
                ],
                "after_cursor": None if end else str(start + self.page_size),
                "end_of_stream": end,
            },
        )


@dataclass
class Response:
    status: int
    content_type: str
    data: bytes
    headers: dict[str, str] = field(default_factory=dict)


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(status, "application/json", json.dumps(body).encode(), headers or {})


def _send(request: http.server.BaseHTTPRequestHandler, response: Response) -> None:
    request.send_response(response.status)
    request.send_header("Content-Type", response.content_type)
    request.send_header("Content-Length", str(len(response.data)))
    for name, value in response.headers.items():
        request.send_header(name, value)
    request.end_headers()
    request.wfile.write(response.data)


def _serve(fake: FakeZendesk, name: str) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            fake.handle(name, self, "GET")

        def do_PUT(self) -> None:
            fake.handle(name, self, "PUT")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name=f"fake-{name}", daemon=True).start()
    return server


@contextmanager
def fake_zendesk(**options: Any) -> Iterator[FakeZendesk]:
    fake = FakeZendesk(**options)
    try:
        yield fake
    finally:
        fake.close()
