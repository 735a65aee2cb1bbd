"""Catalog sources: a JSON or CSV file (local path, file:// or http(s) URL) → products.

JSON: a list of ``{"id", "name", "category", "description", "images": [...], "metadata": {...}}``
(or ``{"products": [...]}``). CSV: columns ``id,name,category,description,images`` with several
images separated by ``|``. Relative image paths are resolved against the catalog's own location.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

from pydantic import ValidationError

from imagematch.errors import PermanentError
from imagematch.fetch import ImageFetcher
from imagematch.models import Product

__all__ = ["CatalogLoad", "load_catalog", "read_uri"]


@dataclass
class CatalogLoad:
    products: list[Product]
    problems: list[str] = field(default_factory=list)  # rows that could not be read, and why


def _local_path(uri: str) -> Path | None:
    parts = urlsplit(uri)
    if parts.scheme == "file":
        return Path(unquote(parts.path))
    if parts.scheme == "":
        return Path(uri)
    return None


def read_uri(uri: str, fetcher: ImageFetcher) -> bytes:
    """Bytes of a local path / file:// URI, or of an http(s) URL through the safe fetcher."""
    path = _local_path(uri)
    if path is None:
        return fetcher.fetch(uri)
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise PermanentError(f"file not found: {path}") from exc
    except OSError as exc:
        raise PermanentError(f"cannot read {path}: {exc}") from exc


def _resolve(base: str, ref: str) -> str:
    ref = ref.strip()
    if urlsplit(ref).scheme in ("http", "https", "file"):
        return ref
    base_path = _local_path(base)
    if base_path is not None:
        return str((base_path.parent / ref).resolve())
    return urljoin(base, ref)


def _rows_from_csv(text: str) -> list[dict[str, Any]]:
    rows = []
    for row in csv.DictReader(io.StringIO(text)):
        images = row.pop("images", None) or row.pop("image", None) or row.pop("image_url", None) or ""
        rows.append({**row, "images": [i for i in images.split("|") if i.strip()]})
    return rows


def load_catalog(source: str, fetcher: ImageFetcher) -> CatalogLoad:
    """Read products from ``source``. Bad rows are reported in ``problems``, never fatal.

    Raises PermanentError if the source itself cannot be read or parsed.
    """
    raw = read_uri(source, fetcher)
    text = raw.decode("utf-8-sig")
    is_csv = urlsplit(source).path.lower().endswith(".csv")
    try:
        rows: Any = _rows_from_csv(text) if is_csv else json.loads(text)
    except (json.JSONDecodeError, csv.Error) as exc:
        raise PermanentError(f"cannot parse catalog {source}: {exc}") from exc
    if isinstance(rows, dict):
        rows = rows.get("products", [])
    if not isinstance(rows, list):
        raise PermanentError(f"catalog {source} must be a list of products")
    load = CatalogLoad(products=[])
    seen: dict[str, int] = {}
    for n, row in enumerate(rows, start=1):
        try:
            product = Product.model_validate(row)
        except ValidationError as exc:
            load.problems.append(f"row {n}: {exc.errors()[0]['loc']} {exc.errors()[0]['msg']}")
            continue
        product.images = [_resolve(source, ref) for ref in product.images]
        if product.id in seen:
            load.problems.append(f"row {n}: duplicate product id {product.id!r}; the later row wins")
            load.products[seen[product.id]] = product
            continue
        seen[product.id] = len(load.products)
        load.products.append(product)
    return load
