"""Reading a photo from a request: a multipart upload (field ``file``) or JSON ``{"url": …}``."""

from __future__ import annotations

import json
from typing import Any

from fastapi import HTTPException, Request
from pydantic import BaseModel, Field, ValidationError, model_validator
from starlette.datastructures import UploadFile

from imagematch.entities import ENTITY_ID_PATTERN, ENTITY_TYPE_PATTERN
from imagematch.request_limits import (
    MULTIPART_OVERHEAD_BYTES,
    parse_json_capped,
    read_json_capped,
    read_multipart_capped,
)

__all__ = ["IMAGE_BODY_DOC", "ImageInput", "parse_meta_filters", "read_image_input"]

MAX_JSON_BYTES = 64_000  # a URL and a little metadata

IMAGE_BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "idempotency_key": {"type": "string"},
                        "source": {"type": "string"},
                        "metadata": {"type": "string", "description": "JSON object"},
                        "entity_type": {"type": "string", "description": "e.g. ticket, listing"},
                        "entity_id": {"type": "string", "description": "the photo belongs to TYPE/ID"},
                    },
                    "required": ["file"],
                }
            },
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "url": {"type": "string", "format": "uri"},
                        "idempotency_key": {"type": "string"},
                        "source": {"type": "string"},
                        "metadata": {"type": "object"},
                        "entity_type": {"type": "string", "description": "e.g. ticket, listing"},
                        "entity_id": {"type": "string", "description": "the photo belongs to TYPE/ID"},
                    },
                    "required": ["url"],
                }
            },
        },
    }
}


class ImageInput(BaseModel):
    """An image by upload (``data``) or by ``url``, with optional job fields."""

    url: str | None = None
    data: bytes | None = None
    file_name: str | None = None
    idempotency_key: str | None = Field(None, min_length=1, max_length=512)
    source: str = Field("api", min_length=1, max_length=64)
    metadata: dict[str, Any] = Field(default_factory=dict)
    entity_type: str | None = Field(None, pattern=ENTITY_TYPE_PATTERN)
    entity_id: str | None = Field(None, pattern=ENTITY_ID_PATTERN)

    @model_validator(mode="after")
    def _entity_whole(self) -> ImageInput:
        if (self.entity_type is None) != (self.entity_id is None):
            raise ValueError("give both entity_type and entity_id, or neither")
        return self


async def read_image_input(request: Request, max_bytes: int) -> ImageInput:
    """Accept multipart (field ``file``) or JSON (``url``); 413/415/422 with a clear message otherwise."""
    content_type = request.headers.get("content-type", "")
    try:
        if content_type.startswith("multipart/form-data"):
            return await _multipart_input(request, max_bytes)
        if content_type.startswith("application/json"):
            body = ImageInput.model_validate(await read_json_capped(request, MAX_JSON_BYTES))
            if not body.url or body.data is not None:
                raise HTTPException(422, "JSON body needs a `url` of the image")
            if not body.url.startswith(("http://", "https://")):
                raise HTTPException(422, "`url` must be an http:// or https:// URL")
            return body
    except (ValidationError, json.JSONDecodeError, ValueError) as exc:
        raise HTTPException(422, f"invalid request body: {exc}") from exc
    raise HTTPException(415, 'send the image as multipart/form-data (field `file`) or JSON {"url": …}')


async def _multipart_input(request: Request, max_bytes: int) -> ImageInput:
    # The whole body is capped while it streams in: no part is spooled past the cap.
    form = await read_multipart_capped(request, max_bytes + MULTIPART_OVERHEAD_BYTES, max_fields=10)
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise HTTPException(422, "multipart body needs a `file` field holding the image")
        data = await upload.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise HTTPException(413, f"image is larger than the limit of {max_bytes:,} bytes")
        metadata = form.get("metadata")
        return ImageInput(
            data=data,
            file_name=upload.filename,
            idempotency_key=_form_str(form.get("idempotency_key")),
            source=_form_str(form.get("source")) or "api",
            metadata=parse_json_capped(metadata.encode()) if isinstance(metadata, str) and metadata else {},
            entity_type=_form_str(form.get("entity_type")),
            entity_id=_form_str(form.get("entity_id")),
        )
    finally:
        await form.close()


def parse_meta_filters(meta: list[str]) -> dict[str, str]:
    """``key=value`` query conditions as a dict; 422 for a malformed one."""
    conditions: dict[str, str] = {}
    for condition in meta:
        key, sep, value = condition.partition("=")
        if not sep or not key:
            raise HTTPException(422, f"meta filter {condition!r} must look like key=value")
        conditions[key] = value
    return conditions


def _form_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
