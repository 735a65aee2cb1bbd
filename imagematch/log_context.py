"""What every log line is about: the request and the job being handled, held in context variables.

The HTTP edge binds ``request_id`` (from ``X-Request-ID`` or generated); the worker binds the job it
runs (``job_id``, ``kind``, ``source``, ``entity``, ``attempt``, ``worker`` and the job's stored
``request_id``). :mod:`imagematch.logging_setup` adds the bound fields to every record, and a job
submitted while a request or a job is bound stores that ``request_id`` (see ``NewJob``), so one
Zendesk photo is followed from its webhook to its note by one ``request_id``.

Context variables follow the code into ``run_in_threadpool`` and asyncio tasks, and stay apart
between threads, so concurrent requests and worker threads never see each other's fields.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any

__all__ = [
    "LOG_FIELDS",
    "bound",
    "current_fields",
    "current_request_id",
    "entity_of_payload",
    "new_request_id",
    "usable_request_id",
]

# The fields a line may carry, in the order text logs print them.
LOG_FIELDS = ("request_id", "job_id", "kind", "source", "entity", "attempt", "worker")

_NOTHING: Mapping[str, Any] = MappingProxyType({})
_fields: ContextVar[Mapping[str, Any]] = ContextVar("imagematch_log_fields", default=_NOTHING)
# A caller's X-Request-ID is echoed in logs and headers: only short, plain tokens are kept.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


def new_request_id() -> str:
    return uuid.uuid4().hex


def usable_request_id(value: str | None) -> str:
    """``value`` when it is a plain token of at most 128 characters, else a new id."""
    return value if value and _REQUEST_ID.match(value) else new_request_id()


def current_fields() -> dict[str, Any]:
    """The fields bound here now (no ``None`` values)."""
    return dict(_fields.get())


def current_request_id() -> str | None:
    value = _fields.get().get("request_id")
    return str(value) if value is not None else None


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Add ``fields`` (``None`` values ignored) to every line logged inside the block."""
    merged = {**_fields.get(), **{k: v for k, v in fields.items() if v is not None}}
    token = _fields.set(merged)
    try:
        yield
    finally:
        _fields.reset(token)


def entity_of_payload(payload: Mapping[str, Any]) -> str | None:
    """What a job is about, from its payload: ``type/id`` of its entity, ``ticket/<id>`` for a
    Zendesk job, ``product/<id>`` for a catalog event; ``None`` when it names none."""
    if payload.get("entity_type") and payload.get("entity_id"):
        return f"{payload['entity_type']}/{payload['entity_id']}"
    for key, name in (("ticket_id", "ticket"), ("product_id", "product")):
        if payload.get(key) is not None:
            return f"{name}/{payload[key]}"
    return None
