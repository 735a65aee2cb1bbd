"""Catalogs in a database: a products table and an images table, in Postgres or Supabase.

The tables (migration ``20261124000000_catalog.sql``, or views of your own with the same columns)::

    catalog_products       id, name, category, description, metadata, deleted_at
    catalog_product_images product_id, url, position

Rows with ``deleted_at`` set are soft-deleted and left out. Both readers yield one dict per live
product, ``{"id", "name", "category", "description", "metadata", "images": [url, …]}`` with the
images in ``position`` order; :func:`index_builder.catalog.load_catalog` validates them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import psycopg
from postgrest.exceptions import APIError
from psycopg import sql
from psycopg.rows import dict_row

from imagematch.errors import PermanentError, TransientError
from index_builder.sql import load_queries

if TYPE_CHECKING:
    from postgrest import SyncRequestBuilder, SyncSelectRequestBuilder
    from supabase import Client

__all__ = ["CatalogTables", "read_postgres_catalog", "read_supabase_catalog"]

PRODUCT_COLUMNS = ("id", "name", "category", "description", "metadata")  # as sql/catalog_tables.sql reads
Q = load_queries("catalog_tables")


@dataclass(frozen=True)
class CatalogTables:
    """Names of the products and images tables (or views); ``schema.name`` is allowed."""

    products: str = "catalog_products"
    images: str = "catalog_product_images"

    def __str__(self) -> str:
        return f"{self.products}/{self.images}"


def _identifier(name: str) -> sql.Identifier:
    return sql.Identifier(*name.split("."))


def read_postgres_catalog(url: str, tables: CatalogTables) -> list[dict[str, Any]]:
    """Every live product of the catalog tables in the database at ``url`` (psycopg), by id.

    Raises TransientError if the database cannot be reached, PermanentError if the tables or
    columns are missing.
    """
    query = sql.SQL(Q["live_products"]).format(
        images=_identifier(tables.images), products=_identifier(tables.products)
    )
    try:
        with psycopg.connect(url, row_factory=dict_row, connect_timeout=30) as conn:
            conn.read_only = True
            return conn.execute(query).fetchall()
    except psycopg.OperationalError as exc:
        raise TransientError(f"catalog database unavailable: {exc}") from exc
    except psycopg.Error as exc:
        raise PermanentError(f"cannot read the catalog tables {tables}: {exc}") from exc


def _table(client: Client, name: str) -> SyncRequestBuilder:
    schema, _, table = name.rpartition(".")
    return client.schema(schema).table(table) if schema else client.table(table)


def _fetch(query: SyncSelectRequestBuilder, tables: CatalogTables) -> list[dict[str, Any]]:
    try:
        rows = query.execute().data
    except httpx.HTTPError as exc:
        raise TransientError(f"Supabase unavailable while reading the catalog: {exc}") from exc
    except APIError as exc:
        raise PermanentError(f"cannot read the catalog tables {tables}: {exc.message}") from exc
    return [row for row in rows if isinstance(row, dict)]


def read_supabase_catalog(
    client: Client, tables: CatalogTables, *, page_size: int = 1000
) -> Iterator[dict[str, Any]]:
    """Every live product of the catalog tables, read through PostgREST, by id.

    Products are read in pages ordered by id (keyset: ``id > last``), and each page's images with
    one range query; a page is only known to be the last when it comes back empty, so a server cap
    on rows per request (Supabase's ``max_rows``) never truncates the catalog. Raises like
    :func:`read_postgres_catalog`.
    """
    last: Any = None
    while True:
        query = (
            _table(client, tables.products)
            .select(",".join(PRODUCT_COLUMNS))
            .is_("deleted_at", "null")
            .order("id")
            .limit(page_size)
        )
        page = _fetch(query if last is None else query.gt("id", last), tables)
        ids = [row["id"] for row in page if row.get("id") is not None]
        if not ids:
            yield from page  # nothing, or rows without an id (they sort last): reported by the loader
            return
        images = _images_between(client, tables, ids[0], ids[-1], page_size)
        for row in page:
            yield {**row, "images": images.get(str(row.get("id")), [])}
        last = ids[-1]


def _images_between(
    client: Client, tables: CatalogTables, first: Any, last: Any, page_size: int
) -> dict[str, list[str]]:
    """Image URLs of products ``first`` ≤ id ≤ ``last``, in position order, by product id."""
    found: dict[str, list[str]] = defaultdict(list)
    offset = 0
    while True:
        query = (
            _table(client, tables.images)
            .select("product_id,url,position")
            .gte("product_id", first)
            .lte("product_id", last)
            .order("product_id")
            .order("position")
            .range(offset, offset + page_size - 1)
        )
        page = _fetch(query, tables)
        if not page:
            return found
        for row in page:
            found[str(row["product_id"])].append(row["url"])
        offset += len(page)
