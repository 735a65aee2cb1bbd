"""``/docs`` without a CDN: Swagger UI from assets vendored in ``docs_static/`` (FastAPI's
"self-hosting JavaScript and CSS for docs" pattern), started by a script file rather than an
inline one, so the page runs under the console's CSP (``script-src 'self'``). ReDoc is off: its
page would load from a CDN too."""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, HTMLResponse

__all__ = ["DOCS_ASSETS", "docs_router"]

HERE = Path(__file__).parent / "docs_static"
DOCS_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "swagger-init.js": "text/javascript",
    "LICENSE.txt": "text/plain",
}
_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title} — API docs</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi_url}"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script src="/docs/static/swagger-init.js"></script>
</body>
</html>
"""


def docs_router(title: str, openapi_url: str = "/openapi.json") -> APIRouter:
    """``GET /docs`` and its assets under ``/docs/static/``; create the app with ``docs_url=None``."""
    router = APIRouter(include_in_schema=False)
    page = _PAGE.format(title=html.escape(title), openapi_url=html.escape(openapi_url, quote=True))

    @router.get("/docs")
    def docs() -> HTMLResponse:
        return HTMLResponse(page)

    @router.get("/docs/static/{name}")
    def docs_asset(name: str) -> FileResponse:
        if name not in DOCS_ASSETS:
            raise HTTPException(404)
        return FileResponse(HERE / name, media_type=DOCS_ASSETS[name])

    return router
