"""The index builder's SQL, kept in .sql files (see :mod:`imagematch.sql_files`)."""

from __future__ import annotations

from imagematch.sql_files import load_named_sql

__all__ = ["load_queries"]


def load_queries(name: str) -> dict[str, str]:
    """Return ``{name: sql}`` from ``<name>.sql`` next to this module."""
    return load_named_sql(__package__, f"{name}.sql")
