"""Catalog sync and index builds: read a catalog, embed incrementally, publish a snapshot."""

from index_builder.build import (
    BuildReport,
    ImageProblem,
    build_and_publish,
    build_index,
    rebuild_catalog_index,
)
from index_builder.cache import EmbeddingCache
from index_builder.catalog import CatalogLoad, load_catalog, read_uri

__all__ = [
    "BuildReport",
    "CatalogLoad",
    "EmbeddingCache",
    "ImageProblem",
    "build_and_publish",
    "build_index",
    "load_catalog",
    "read_uri",
    "rebuild_catalog_index",
]
