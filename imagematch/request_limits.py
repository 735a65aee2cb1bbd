"""Bounded request bodies for the HTTP edge: read while counting (413 past the cap, whether or not
a Content-Length announced it), multipart parsed only from a body already under the cap (so no
part is spooled to disk past it), JSON parsed with a size cap and a nesting limit (422; Python's
parser would otherwise hit its recursion limit on ``[[[[…]]]]`` and answer 500).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncGenerator
from itertools import accumulate
from typing import Any

from fastapi import HTTPException, Request
from starlette.datastructures import FormData, Headers
from starlette.formparsers import MultiPartException, MultiPartParser

__all__ = [
    "DEFAULT_MAX_JSON_DEPTH",
    "MULTIPART_OVERHEAD_BYTES",
    "json_depth",
    "parse_json_capped",
    "read_body_capped",
    "read_json_capped",
    "read_multipart_capped",
    "refuse_deep_json",
]

DEFAULT_MAX_JSON_DEPTH = 32
MULTIPART_OVERHEAD_BYTES = 64_000  # boundaries, part headers and the small text fields of a photo form
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def _too_large(what: str, max_bytes: int) -> HTTPException:
    return HTTPException(413, f"{what} is larger than the limit of {max_bytes:,} bytes")


async def read_body_capped(request: Request, max_bytes: int, *, what: str = "request body") -> bytes:
    """The raw body, refused with 413 as soon as it passes ``max_bytes`` (the rest is not read)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(what, max_bytes)
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > max_bytes:
            raise _too_large(what, max_bytes)
    return bytes(received)


def json_depth(raw: bytes) -> int:
    """The deepest nesting of arrays/objects in a JSON text (brackets inside strings ignored)."""
    brackets = _BRACKET.findall(_STRING.sub(b"", raw))
    return max(accumulate(_STEP[b[0]] for b in brackets), default=0)


def refuse_deep_json(raw: bytes, *, max_depth: int = DEFAULT_MAX_JSON_DEPTH) -> None:
    """422 when ``raw`` nests arrays/objects deeper than ``max_depth`` (before any parser sees it)."""
    if raw.count(b"[") + raw.count(b"{") <= max_depth:
        return  # cannot nest deeper than it has brackets: skips the scan for every usual body
    if json_depth(raw) > max_depth:
        raise HTTPException(422, f"JSON is nested deeper than {max_depth} levels")


def parse_json_capped(raw: bytes, *, max_depth: int = DEFAULT_MAX_JSON_DEPTH) -> Any:
    """Parse ``raw`` as JSON; 422 for invalid JSON or nesting deeper than ``max_depth``."""
    refuse_deep_json(raw, max_depth=max_depth)
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise HTTPException(422, f"invalid JSON: {exc}") from exc


async def read_json_capped(
    request: Request, max_bytes: int, *, max_depth: int = DEFAULT_MAX_JSON_DEPTH
) -> Any:
    """:func:`read_body_capped` then :func:`parse_json_capped` (413 / 422)."""
    return parse_json_capped(await read_body_capped(request, max_bytes), max_depth=max_depth)


async def read_multipart_capped(
    request: Request,
    max_bytes: int,
    *,
    max_files: int = 1,
    max_fields: int = 20,
    max_field_bytes: int = 64_000,
) -> FormData:
    """The multipart form of ``request``, whose whole body may be at most ``max_bytes`` (413).

    The body is read under the cap first and parsed from memory, so no part is written to a
    spool file past the cap. More files or fields than allowed, a text field over
    ``max_field_bytes`` or a malformed body is a 422. Close the returned form when done.
    """
    body = await read_body_capped(request, max_bytes)

    async def replay() -> AsyncGenerator[bytes, None]:
        yield body

    parser = MultiPartParser(
        Headers(raw=request.headers.raw),
        replay(),
        max_files=max_files,
        max_fields=max_fields,
        max_part_size=max_field_bytes,
    )
    try:
        return await parser.parse()
    except MultiPartException as exc:
        raise HTTPException(422, f"invalid multipart body: {exc.message}") from exc
