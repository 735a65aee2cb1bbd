"""The product index and its storage, one concept per module:

* :mod:`~imagematch.index.product_index` — :class:`ProductIndex`, FAISS vectors searched per product;
* :mod:`~imagematch.index.event_order` — :class:`EventOrder`, which catalog event each product saw last;
* :mod:`~imagematch.index.change_log` — :class:`ChangeLog` of live :class:`CatalogChange` events;
* :mod:`~imagematch.index.snapshots` — :class:`SnapshotStore`, versioned snapshots and their pointer;
* :mod:`~imagematch.index.handle` — :class:`IndexHandle`, the index a process serves, hot-reloaded.
"""

from __future__ import annotations

from imagematch.index.change_log import CatalogChange, ChangeKind, ChangeLog
from imagematch.index.event_order import EventOrder
from imagematch.index.handle import IndexHandle
from imagematch.index.product_index import IndexedImage, ProductIndex
from imagematch.index.snapshots import SnapshotStore

__all__ = [
    "CatalogChange",
    "ChangeKind",
    "ChangeLog",
    "EventOrder",
    "IndexHandle",
    "IndexedImage",
    "ProductIndex",
    "SnapshotStore",
]
