"""Capped bodies (413 while streaming), capped multipart, JSON depth (422, never 500)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from fastapi import HTTPException, Request

from imagematch.request_limits import (
    json_depth,
    parse_json_capped,
    read_body_capped,
    read_json_capped,
    read_multipart_capped,
)


class Body:
    """An ASGI receive channel delivering ``chunks``; counts how many were asked for."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.read = 0

    async def __call__(self) -> dict[str, Any]:
        self.read += 1
        chunk = self.chunks[self.read - 1] if self.read <= len(self.chunks) else b""
        return {"type": "http.request", "body": chunk, "more_body": self.read < len(self.chunks)}


def request(body: Body, headers: dict[str, str] | None = None) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return Request({"type": "http", "method": "POST", "path": "/", "headers": raw}, body)


def status_of(coro: Any) -> int:
    with pytest.raises(HTTPException) as raised:
        asyncio.run(coro)
    return raised.value.status_code


@pytest.mark.parametrize(
    ("chunks", "headers", "cap", "chunks_read"),
    [
        ([b"x" * 1000] * 100, {}, 2500, 3),  # no Content-Length: the remaining 97 kB never read
        ([b"x" * 10], {"content-length": "999999"}, 100, 0),  # declared too long: refused unread
    ],
    ids=["streamed-past-the-cap", "declared-over-the-cap"],
)
def test_a_body_over_the_cap_is_a_413_read_no_further_than_needed(
    chunks: list[bytes], headers: dict[str, str], cap: int, chunks_read: int
) -> None:
    body = Body(chunks)
    assert status_of(read_body_capped(request(body, headers), cap)) == 413
    assert body.read == chunks_read


def test_json_depth_ignores_brackets_inside_strings() -> None:
    assert json_depth(b'{"a": [1, {"b": "]]]}}}[[[[\\"[["}]}') == 3
    assert json_depth(b"42") == 0


def test_deeply_nested_json_is_a_422_not_a_crash() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    assert status_of(read_json_capped(request(Body([deep])), 1_000_000)) == 422
    with pytest.raises(HTTPException, match="deeper than 32"):
        parse_json_capped(b'{"a":' * 40 + b"1" + b"}" * 40)
    assert parse_json_capped(json.dumps({"url": "https://x/a.png"}).encode()) == {"url": "https://x/a.png"}
    with pytest.raises(HTTPException, match="invalid JSON"):
        parse_json_capped(b"\xff\xfe not json")


def multipart(*parts: tuple[str, str | None, bytes]) -> tuple[bytes, dict[str, str]]:
    boundary = "b0undary"
    out = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out, {"content-type": f"multipart/form-data; boundary={boundary}"}


def test_multipart_under_the_cap_parses_and_over_it_is_refused_unparsed() -> None:
    data, headers = multipart(("file", "a.png", b"\x89PNG" + b"0" * 500), ("source", None, b"api"))

    async def parse() -> tuple[int, str]:
        form = await read_multipart_capped(request(Body([data]), headers), 10_000)
        upload = form["file"]
        size = len(await upload.read())  # type: ignore[union-attr]
        await form.close()
        return size, str(form["source"])

    assert asyncio.run(parse()) == (504, "api")
    assert status_of(read_multipart_capped(request(Body([data[:300], data[300:]]), headers), 300)) == 413


def test_multipart_with_too_many_files_is_a_422() -> None:
    data, headers = multipart(("file", "a.png", b"1"), ("file2", "b.png", b"2"))
    assert status_of(read_multipart_capped(request(Body([data]), headers), 10_000)) == 422
