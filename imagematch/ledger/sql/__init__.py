"""The ledger's SQL, kept in .sql files: one block per query, each headed ``-- name: <name>``."""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files

__all__ = ["load_queries"]

_HEADER = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


@cache
def load_queries(dialect: str) -> dict[str, str]:
    """Return ``{name: sql}`` from ``<dialect>.sql`` next to this module."""
    text = files(__package__).joinpath(f"{dialect}.sql").read_text(encoding="utf-8")
    parts = _HEADER.split(text)
    return {name: sql.strip() for name, sql in zip(parts[1::2], parts[2::2], strict=True)}
