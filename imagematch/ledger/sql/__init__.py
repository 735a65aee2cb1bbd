"""The ledger's SQL, kept in .sql files: one block per query, each headed ``-- name: <name>``."""

from __future__ import annotations

from imagematch.sql_files import load_named_sql

__all__ = ["load_queries"]


def load_queries(dialect: str) -> dict[str, str]:
    """Return ``{name: sql}`` from ``<dialect>.sql`` next to this module (``sqlite``, ``postgres``)."""
    return load_named_sql(__package__, f"{dialect}.sql")
