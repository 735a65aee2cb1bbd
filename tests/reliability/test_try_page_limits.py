"""Bodies capped before parsing on the console's try page (issue #26 item 5): ``/ui/try`` and
``/ui/try/submit`` check CSRF before reading a body, and read it through the capped reader that
``/v1/images`` uses (413, the rest never read)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi import FastAPI

from imagematch.api import create_app
from imagematch.app import Services
from imagematch.config import Settings
from tests.conftest import PALETTE, image_bytes
from tests.reliability.conftest import Outcomes

MB = 1_000_000
BOUNDARY = "----imagematch-test"
CSRF = "csrf-value-for-the-try-page-test"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"max_image_bytes": 2 * MB})


def _asgi_post(
    app: FastAPI, path: str, headers: dict[str, str], body: bytes, *, chunk: int = MB
) -> tuple[int, int]:
    """POST ``body`` in ``chunk``-sized pieces straight into the ASGI app; returns the status and
    how many body bytes the app pulled before answering."""
    pulled = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        piece = body[pulled : pulled + chunk]
        pulled += len(piece)
        return {"type": "http.request", "body": piece, "more_body": pulled < len(body)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }  # fmt: skip
    asyncio.run(app(scope, receive, send))
    return next(m["status"] for m in sent if m["type"] == "http.response.start"), pulled


def _multipart(photo: bytes, csrf: str | None) -> bytes:
    parts = (
        [f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{csrf}\r\n'.encode()]
        if csrf
        else []
    )
    parts.append(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n".encode()
        + photo
        + b"\r\n"
    )
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


@pytest.mark.parametrize("path", ["/ui/try", "/ui/try/submit"])
def test_csrf_and_size_are_checked_before_the_body_is_read(
    services: Services, path: str, outcomes: Outcomes
) -> None:
    app = create_app(services)
    big = _multipart(b"\xff\xd8\xff" + b"\0" * 25 * MB, CSRF)
    base = {"Host": "127.0.0.1:8000", "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    announced = {**base, "Content-Length": str(len(big))}
    with_csrf = {"Cookie": f"imagematch_csrf={CSRF}", "X-CSRF-Token": CSRF}

    no_csrf = _asgi_post(app, path, announced, big)
    assert no_csrf == (403, 0), no_csrf
    too_large = _asgi_post(app, path, {**announced, **with_csrf}, big)
    assert too_large == (413, 0), too_large
    streamed = _asgi_post(app, path, {**base, **with_csrf}, big)  # no Content-Length: counted
    assert streamed[0] == 413 and streamed[1] <= 3 * MB, streamed
    form_only = _asgi_post(app, path, {**announced, "Cookie": f"imagematch_csrf={CSRF}"}, big)
    assert form_only == (413, 0), form_only  # the no-script form: still capped before parsing
    small = _multipart(image_bytes(PALETTE["red"]), "not-the-cookie")
    wrong_field = _asgi_post(app, path, {**base, "Cookie": f"imagematch_csrf={CSRF}"}, small)
    assert wrong_field[0] == 403
    ok = _asgi_post(
        app,
        path,
        {**base, "Cookie": f"imagematch_csrf={CSRF}"},
        _multipart(image_bytes(PALETTE["red"]), CSRF),
    )
    assert ok[0] in (200, 303), ok
    outcomes.record(
        "bad-input",
        f"{path}: 25 MB multipart without CSRF / over the cap",
        f"403 / 413 with 0 bytes read (streamed without a length: 413 after {streamed[1] // MB} MB)",
    )
