"""Catalogs → products: a JSON or CSV file (local path, file:// or http(s) URL), or database
tables (``postgresql://…`` or ``supabase:``; see :mod:`index_builder.catalog_tables`).

JSON: a list of ``{"id", "name", "category", "description", "images": [...], "metadata": {...}}``
(or ``{"products": [...]}``). CSV: columns ``id,name,category,description,images`` with several
images separated by ``|``. Relative image paths are resolved against the catalog's own location;
local files (paths, file://) only for a local catalog file and only inside its directory. A
remote catalog is fetched as application/json or text/csv within its own size cap
(``IMAGEMATCH_MAX_CATALOG_BYTES``); a database's image URLs must be http(s)://.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from pydantic import ValidationError

from imagematch.config import redact_url
from imagematch.errors import PermanentError
from imagematch.fetch import ImageFetcher, local_path, read_uri
from imagematch.models import Product
from index_builder.catalog_tables import CatalogTables, read_postgres_catalog, read_supabase_catalog

if TYPE_CHECKING:
    from imagematch.config import Settings

__all__ = ["CatalogLoad", "is_database_catalog", "load_catalog", "read_uri"]

SUPABASE_CATALOG = "supabase:"


@dataclass
class CatalogLoad:
    products: list[Product]
    problems: list[str] = field(default_factory=list)  # rows that could not be read, and why
    refused_images: int = 0  # image references skipped (outside the catalog's location, not http…)


CATALOG_TYPES = frozenset({"application/json", "text/json", "text/csv", "application/csv", "text/plain", ""})
DEFAULT_MAX_CATALOG_BYTES = 50_000_000


def _is_catalog_type(content_type: str) -> bool:
    return content_type in CATALOG_TYPES or content_type.endswith("+json")


def _read_catalog_document(catalog: str, fetcher: ImageFetcher, max_bytes: int) -> tuple[str, bool]:
    """The text of a JSON/CSV catalog and whether it is CSV (by extension or content type)."""
    is_csv = urlsplit(catalog).path.lower().endswith(".csv")
    if local_path(catalog) is not None:
        raw = read_uri(catalog, fetcher, max_bytes=max_bytes)
    else:
        seen: list[str] = []

        def accept(content_type: str) -> bool:
            seen.append(content_type)
            return _is_catalog_type(content_type)

        raw = fetcher.fetch(catalog, max_bytes=max_bytes, accept=accept)
        is_csv = is_csv or (bool(seen) and seen[-1] in ("text/csv", "application/csv"))
    try:
        return raw.decode("utf-8-sig"), is_csv
    except UnicodeDecodeError as exc:
        raise PermanentError(f"catalog {redact_url(catalog)[:200]} is not UTF-8 text: {exc}") from exc


def _resolve(base: str, ref: str) -> str | None:
    """``ref`` as an absolute URI, or None when it may not be read: local files (file://,
    absolute or relative paths) only for a local catalog, and only inside its directory."""
    ref = ref.strip()
    scheme = urlsplit(ref).scheme
    if scheme in ("http", "https"):
        return ref
    base_path = local_path(base)
    if base_path is None:  # a remote catalog: relative references stay on its server
        return urljoin(base, ref) if scheme == "" and not ref.startswith("/") else None
    root = base_path.resolve().parent
    local = local_path(ref) if scheme in ("", "file") else None
    if local is None:
        return None
    resolved = (root / local).resolve()  # an absolute ``local`` replaces root; .. and links resolved
    return str(resolved) if resolved.is_relative_to(root) else None


def _rows_from_csv(text: str) -> list[dict[str, Any]]:
    rows = []
    for row in csv.DictReader(io.StringIO(text)):
        images = row.pop("images", None) or row.pop("image", None) or row.pop("image_url", None) or ""
        rows.append({**row, "images": [i for i in images.split("|") if i.strip()]})
    return rows


def is_database_catalog(catalog: str) -> bool:
    """``postgresql://…``/``postgres://…`` (catalog tables over psycopg) or ``supabase:``."""
    return catalog.startswith(("postgresql://", "postgres://")) or catalog == SUPABASE_CATALOG


def load_catalog(catalog: str, fetcher: ImageFetcher, *, settings: Settings | None = None) -> CatalogLoad:
    """Read products from ``catalog``. Bad rows are reported in ``problems``, never fatal.

    ``catalog`` is a JSON/CSV path, file:// or http(s) URL; ``postgresql://…`` for the catalog
    tables in that database; or ``supabase:`` for those tables in the Supabase project of
    ``settings`` (``IMAGEMATCH_SUPABASE_URL`` and ``IMAGEMATCH_SUPABASE_SERVICE_KEY``). The tables
    are ``settings.catalog_table`` and ``settings.catalog_images_table`` (defaults without
    settings: ``catalog_products``, ``catalog_product_images``).

    Raises PermanentError if the catalog itself cannot be read or parsed (or its tables are
    missing), TransientError if its database cannot be reached.
    """
    if is_database_catalog(catalog):
        return _load_database_catalog(catalog, settings)
    max_bytes = settings.max_catalog_bytes if settings is not None else DEFAULT_MAX_CATALOG_BYTES
    text, is_csv = _read_catalog_document(catalog, fetcher, max_bytes)
    try:
        rows: Any = _rows_from_csv(text) if is_csv else json.loads(text)
    except (json.JSONDecodeError, csv.Error) as exc:
        raise PermanentError(f"cannot parse catalog {redact_url(catalog)}: {exc}") from exc
    if isinstance(rows, dict):
        rows = rows.get("products", [])
    if not isinstance(rows, list):
        raise PermanentError(f"catalog {redact_url(catalog)} must be a list of products")
    return _collect(
        rows, lambda n, _: f"row {n}", lambda product, found: _resolve_images(catalog, product, found)
    )


def _resolve_images(catalog: str, product: Product, problems: list[str]) -> None:
    kept = []
    for ref in product.images:
        resolved = _resolve(catalog, ref)
        if resolved is None:
            problems.append(
                f"product {product.id!r}: image {ref[:200]!r} is outside the catalog's own location "
                "(local files only next to a local catalog file); skipped"
            )
        else:
            kept.append(resolved)
    product.images = kept


def _collect(
    rows: Iterable[Any],
    where: Callable[[int, Any], str],
    fix_images: Callable[[Product, list[str]], None],
) -> CatalogLoad:
    """Validate ``rows`` into products; ``where(n, row)`` names a row in a problem, ``fix_images``
    resolves or checks a product's images (appending problems)."""
    load = CatalogLoad(products=[])
    seen: dict[str, int] = {}
    for n, row in enumerate(rows, start=1):
        try:
            product = Product.model_validate(row)
        except ValidationError as exc:
            load.problems.append(f"{where(n, row)}: {exc.errors()[0]['loc']} {exc.errors()[0]['msg']}")
            continue
        listed = len(product.images)
        fix_images(product, load.problems)
        load.refused_images += listed - len(product.images)
        if product.id in seen:
            load.problems.append(f"{where(n, row)}: duplicate product id {product.id!r}; the later row wins")
            load.products[seen[product.id]] = product
            continue
        seen[product.id] = len(load.products)
        load.products.append(product)
    return load


def _database_row(row: dict[str, Any]) -> dict[str, Any]:
    """NULL columns take the product defaults; numeric ids (a view's) become text."""
    clean = {k: v for k, v in row.items() if v is not None}
    if isinstance(clean.get("id"), int):
        clean["id"] = str(clean["id"])
    clean["images"] = [url for url in clean.get("images", []) if url is not None]
    return clean


def _check_absolute_images(product: Product, problems: list[str]) -> None:
    kept = []
    for url in product.images:
        parts = urlsplit(url.strip())
        if parts.scheme in ("http", "https") and parts.netloc:
            kept.append(url.strip())
        else:  # never a local file: a database row must not make the builder read /dev/zero
            problems.append(f"product {product.id!r}: image {url[:200]!r} is not an http(s):// URL; skipped")
    product.images = kept


def _load_database_catalog(catalog: str, settings: Settings | None) -> CatalogLoad:
    tables = CatalogTables()
    if settings is not None:
        tables = CatalogTables(settings.catalog_table, settings.catalog_images_table)
    rows: Iterable[dict[str, Any]]
    if catalog == SUPABASE_CATALOG:
        if settings is None:
            raise PermanentError("the supabase: catalog needs the settings naming the Supabase project")
        if not settings.supabase_url or settings.supabase_service_key is None:
            raise PermanentError(
                "the supabase: catalog needs IMAGEMATCH_SUPABASE_URL and IMAGEMATCH_SUPABASE_SERVICE_KEY"
            )
        from supabase import create_client

        client = create_client(settings.supabase_url, settings.supabase_service_key.get_secret_value())
        rows = read_supabase_catalog(client, tables)
    else:
        rows = read_postgres_catalog(catalog, tables)

    def where(n: int, row: Any) -> str:
        product_id = row.get("id") if isinstance(row, dict) else None
        return f"{tables.products} row {n}" + (f" (id {product_id!r})" if product_id else ": no id")

    return _collect((_database_row(r) for r in rows), where, _check_absolute_images)
