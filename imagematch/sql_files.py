"""SQL kept in ``.sql`` files and loaded by name (procrastinate's layout): a file holds one block
per statement, each headed ``-- name: <name>``; text before the first header is a comment."""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files

__all__ = ["load_named_sql"]

_HEADER = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


@cache
def load_named_sql(package: str, file_name: str) -> dict[str, str]:
    """``{name: sql}`` from ``file_name`` in ``package`` (a package data file)."""
    text = files(package).joinpath(file_name).read_text(encoding="utf-8")
    parts = _HEADER.split(text)
    return {name: sql.strip() for name, sql in zip(parts[1::2], parts[2::2], strict=True)}
