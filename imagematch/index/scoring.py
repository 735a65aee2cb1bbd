"""How a product's catalog images and its learned references make the vector it is ranked by.

A product is ranked by one vector (centroid scoring): the normalised mean of its projected image
vectors. Learned references (customers' photos a person labelled, :mod:`imagematch.index.learned`)
do not count as just more images: they come from real shoots, so they sit in another region of the
space than the product's in-store catalog photos, and a product with many of them would be pulled
away from its catalog look (hurting photos taken like the catalog's), while one with few would
barely move. The product's vector is therefore a fixed blend of two prototypes:

``normalise((1 − w) · catalog prototype + w · learned prototype)``

each prototype the normalised mean of its own rows, ``w = LEARNED_WEIGHT``. The blend does not
depend on how many photos were learned, only on whether there are any. With no learned
references the vector is exactly the catalog prototype, as before learning existed.

``LEARNED_WEIGHT`` was chosen by cross-validation on the dev set's train photos (never on val):
``bench/research/2026-12-07-learning/REPORT.md``.
"""

from __future__ import annotations

import numpy as np

from imagematch.embedder.base import Vectors, l2_normalise

__all__ = ["LEARNED_WEIGHT", "blended_prototype"]

LEARNED_WEIGHT = 0.3  # share of the learned prototype in a product's vector (see the docstring)


def blended_prototype(
    catalog: Vectors, learned: Vectors, *, learned_weight: float = LEARNED_WEIGHT
) -> Vectors:
    """The product's ``(1, dim)`` vector from its projected catalog image vectors and learned
    reference vectors (either may have no rows; not both). Raises ValueError when both are empty."""
    if not len(catalog) and not len(learned):
        raise ValueError("a product prototype needs at least one vector")
    if not len(learned):
        return _prototype(catalog)
    if not len(catalog):
        return _prototype(learned)
    blend = (1.0 - learned_weight) * _prototype(catalog) + learned_weight * _prototype(learned)
    return l2_normalise(blend.astype(np.float32))


def _prototype(rows: Vectors) -> Vectors:
    prototype: Vectors = l2_normalise(np.asarray(rows, dtype=np.float32).mean(axis=0, keepdims=True))
    return prototype
