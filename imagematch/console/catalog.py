"""``/ui/catalog``: search the served index's products; a product's reference images and matches."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

import imagematch.console.data as data
from imagematch.app import Services
from imagematch.console.pages import PageRenderer
from imagematch.index import ProductIndex

__all__ = ["catalog_routes"]

PAGE_SIZE = 50
VIEWS = {"all": "All products", "no-image": "Without a usable image", "deleted": "Deleted, not purged"}


def _candidates(index: ProductIndex, view: str, needle: str) -> list[dict[str, Any]]:
    """The products (or deleted ids) a catalog view lists, filtered by id or name."""
    if view == "deleted":
        rows: list[dict[str, Any]] = [
            {"id": pid, "name": "", "category": "", "images": 0, "deleted_at": at}
            for pid, at in sorted(index.deleted.items())
        ]
    else:
        rows = [
            {
                "id": p.id,
                "name": p.name,
                "category": p.category,
                "images": len(index.product_vector_ids(p.id)),
            }
            for p in sorted(index.products.values(), key=lambda p: p.id)
        ]
        if view == "no-image":
            rows = [c for c in rows if not c["images"]]
    return [c for c in rows if needle in f"{c['id']} {c['name']}".lower()] if needle else rows


def catalog_routes(router: APIRouter, services: Services, page: PageRenderer) -> None:
    @router.get("/ui/catalog")
    def catalog(
        request: Request, q: str = "", view: str = "all", offset: int = Query(0, ge=0)
    ) -> HTMLResponse:
        index = data.served_index(services)
        view = view if view in VIEWS else "all"
        candidates = _candidates(index, view, q.strip().lower()) if index is not None else []
        rows = candidates[offset : offset + PAGE_SIZE]
        for row in rows:  # a thumbnail per product (made on first view)
            pid, has_image = str(row["id"]), bool(row["images"])
            row["thumb"] = data.product_thumbnail(services, index, pid) if index and has_image else None
        return page(
            request,
            "catalog.html",
            nav="catalog",
            index=index,
            rows=rows,
            total=len(candidates),
            q=q,
            view=view,
            views=VIEWS,
            offset=offset,
            page_size=PAGE_SIZE,
            now=services.clock(),
        )

    @router.get("/ui/catalog/{product_id:path}")
    def product(request: Request, product_id: str) -> HTMLResponse:
        index = data.served_index(services)
        item = index.products.get(product_id) if index else None
        if index is None or item is None:
            return page(
                request, "not_found.html", nav="catalog", what=f"product {product_id}", status_code=404
            )
        return page(
            request,
            "product.html",
            nav="catalog",
            product=item,
            product_page=data.web_link(item.metadata.get("url")),
            deleted_at=index.deleted.get(product_id),
            images=data.reference_images(services, index, product_id),
            matches=[
                (p, services.thumbnails.job_photo(p.job_id))
                for p in data.recent_matches(services, product_id)
            ],
        )
