"""The first ``k`` distinct products in a FAISS ranking: how :class:`~imagematch.index.ProductIndex`
turns hits (image or product vectors) into at most one hit per product, filters applied."""

from __future__ import annotations

from collections.abc import Callable

import faiss

from imagematch.embedder.base import Vectors
from imagematch.models import Product

__all__ = ["product_filter", "top_accepted"]


def top_accepted(
    vectors: faiss.Index,
    query: Vectors,
    k: int,
    product_of: Callable[[int], str],
    accepted: Callable[[str], bool] | None,
) -> list[tuple[str, float, int]]:
    """The first ``k`` distinct accepted products in ``vectors``' ranking of ``query``, with their
    score and hit id, best first. ``product_of(hit)`` names a hit's product; ``accepted(product
    id)`` filters them. Fetches more hits while filters or duplicate products leave fewer than ``k``.
    """
    total = int(vectors.ntotal)
    fetch = min(total, max(4 * k, 32))
    best: dict[str, tuple[float, int]] = {}
    while fetch > 0:
        scores, ids = vectors.search(query.reshape(1, -1), fetch)
        best = {}
        for score, hit in zip(scores[0].tolist(), ids[0].tolist(), strict=True):
            if hit < 0:
                continue
            product_id = product_of(hit)
            if product_id in best or (accepted and not accepted(product_id)):
                continue
            best[product_id] = (score, hit)  # hits arrive best first
            if len(best) == k:
                break
        if len(best) >= k or fetch >= total:
            break
        fetch = min(total, fetch * 4)
    return [(product_id, score, hit) for product_id, (score, hit) in best.items()]


def product_filter(
    accept: Callable[[Product], bool] | None, products: dict[str, Product]
) -> Callable[[str], bool] | None:
    """``accept`` (a filter on products) as a filter on product ids, or ``None`` for no filter."""
    if accept is None:
        return None
    return lambda product_id: accept(products[product_id])
