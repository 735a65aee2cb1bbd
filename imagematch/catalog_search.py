"""Find catalog products by id or name (``GET /v1/products``, the console's product picker).

Only the served catalog's products are searched, by their own fields: a learned reference (a
customer's photo) is never a product and never shows here.
"""

from __future__ import annotations

from collections.abc import Iterable

from imagematch.models import Product

__all__ = ["search_products"]


def search_products(products: Iterable[Product], query: str, *, limit: int = 20) -> list[Product]:
    """Products whose id or name contains ``query`` (case-insensitive; every word of it must
    occur), best first: the exact id, then ids starting with it, then names starting with it,
    then other matches; ties by id. An empty query lists the first products by id."""
    words = query.casefold().split()
    needle = " ".join(words)
    ranked: list[tuple[int, str, Product]] = []
    for product in products:
        pid, name = product.id.casefold(), product.name.casefold()
        if not all(word in pid or word in name for word in words):
            continue
        ranked.append((_rank(needle, pid, name), product.id, product))
    ranked.sort(key=lambda row: (row[0], row[1]))
    return [product for _, _, product in ranked[:limit]]


def _rank(needle: str, pid: str, name: str) -> int:
    if not needle:
        return 4
    if pid == needle:
        return 0
    if pid.startswith(needle):
        return 1
    if name.startswith(needle) or f" {needle}" in f" {name}":
        return 2
    return 3
