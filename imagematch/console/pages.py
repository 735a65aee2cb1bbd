"""Rendering shared by every console page: the Jinja environment, its filters, and ``page()``.

The filters keep one spelling of each thing across pages: relative times (ISO in a tooltip),
plurals, job kind labels, and the confidence band of an answer.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

from imagematch.api.access import AccessControl
from imagematch.models import JobKind
from imagematch.sources.catalog.events import CATALOG_EVENT_KIND
from imagematch.sources.zendesk.jobs import ZendeskImagePayload, ZendeskNotePayload, ZendeskTicketPayload

__all__ = [
    "BANDS",
    "KIND_LABELS",
    "PageRenderer",
    "ago",
    "error_page",
    "page",
    "plural",
    "safe_next",
    "templates",
]

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")

# One label per job kind, used in every list, filter and page.
KIND_LABELS: dict[str, str] = {
    JobKind.MATCH_IMAGE: "Photo",
    CATALOG_EVENT_KIND: "Catalog event",
    ZendeskTicketPayload.KIND: "Ticket scan",
    ZendeskImagePayload.KIND: "Ticket photo",
    ZendeskNotePayload.KIND: "Ticket note",
    JobKind.REMATCH: "Re-match",
    JobKind.LEARN: "Learned references",
}

# The confidence bands of issue #24 (``MatchResult.band``): words people read, and a colour class.
BANDS: dict[str, str] = {"confident": "Confident", "check": "Check", "no_match": "No match"}


class PageRenderer(Protocol):
    def __call__(self, request: Request, name: str, **context: Any) -> HTMLResponse: ...


def _span(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


def ago(then: datetime | str | None, now: datetime) -> Markup:
    """``<time>`` saying how long ago (or in how long) ``then`` is, with the ISO time as tooltip
    (``then`` may be an ISO string, as in ``/v1/stats``)."""
    if isinstance(then, str):
        try:
            then = datetime.fromisoformat(then)
        except ValueError:
            return Markup("{0}").format(then)
    if then is None:
        return Markup("—")
    if then.tzinfo is None and now.tzinfo is not None:
        then = then.replace(tzinfo=now.tzinfo)
    seconds = int((now - then).total_seconds())
    words = f"{_span(seconds)} ago" if seconds >= 0 else f"in {_span(-seconds)}"
    iso = then.isoformat(timespec="seconds")
    return Markup('<time datetime="{0}" title="{0}">{1}</time>').format(iso, words)


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 product``, ``2 products`` (``many`` for irregular plurals)."""
    return f"{count} {word if count == 1 else (many or word + 's')}"


def kind_label(kind: str) -> str:
    return KIND_LABELS.get(kind, kind.replace("_", " ").capitalize())


def percent(value: float | None) -> str:
    """A probability or share as a percentage, clamped to 0–100 (never negative)."""
    if value is None:
        return "—"
    return f"{min(max(value, 0.0), 1.0) * 100:.0f}%"


def band_chip(band: str | None, confidence: float | None) -> Markup:
    """The answer's band in words and colour, with its confidence when known."""
    if not band:
        return Markup("")
    words = BANDS.get(band, band)
    extra = f" · {percent(confidence)}" if confidence is not None else ""
    return Markup('<span class="band band-{0}" data-band="{0}">{1}{2}</span>').format(
        escape(band), words, extra
    )


templates.env.filters.update(
    ago=ago, plural=plural, kind_label=kind_label, percent=percent, band_chip=band_chip
)


def page(request: Request, name: str, **context: Any) -> HTMLResponse:
    """Render a full page with what every page needs (CSRF token, navigation, sign-out)."""
    access: AccessControl | None = getattr(request.state, "access", None)
    context.setdefault("status_code", 200)
    return templates.TemplateResponse(
        request,
        name,
        {
            "csrf_token": getattr(request.state, "csrf_token", ""),
            "signed_in": bool(access and access.enabled),
            **context,
        },
        status_code=context["status_code"],
    )


def error_page(request: Request, reason: str, *, nav: str = "jobs", status_code: int = 422) -> HTMLResponse:
    """An HTML page that says what was wrong with the request (a bad filter value, say)."""
    return page(request, "error.html", nav=nav, reason=reason, status_code=status_code)


def safe_next(target: str) -> str:
    """Only paths of this site (no ``//host`` or scheme): a form cannot redirect away."""
    return (
        target
        if target.startswith("/") and not target.startswith("//") and "\\" not in target
        else "/ui/jobs"
    )
