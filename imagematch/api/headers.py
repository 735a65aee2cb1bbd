"""Response headers every answer carries: ``X-Content-Type-Options: nosniff`` (a browser never
guesses a type, e.g. runs a JSON error or a thumbnail as script), and the console's CSP, frame
and referrer headers on the pages a browser renders (``/ui`` and ``/docs``). Plain ASGI: it only
adds headers to the response's start message (the webhook hot path pays one dict update)."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from imagematch.api.access import CONSOLE_HEADERS

__all__ = ["SecurityHeaders"]

_PAGE_PREFIXES = ("/ui", "/docs")


class SecurityHeaders:
    """Add with ``app.add_middleware(SecurityHeaders)``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        page = scope.get("path", "").startswith(_PAGE_PREFIXES)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("x-content-type-options", "nosniff")
                if page:
                    for name, value in CONSOLE_HEADERS:
                        headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
