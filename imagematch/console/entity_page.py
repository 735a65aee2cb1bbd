"""``/ui/entities/{type}/{id}``: a ticket's (or listing's) photos, each with its status, top
products, confidence and label, and the entity's combined matches (the ``matches`` table)."""

from __future__ import annotations

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse

import imagematch.console.data as data
from imagematch.app import Services
from imagematch.console.listing import JobFilter, find_jobs
from imagematch.console.pages import page
from imagematch.entities import ENTITY_ID_PATTERN, ENTITY_TYPE_PATTERN, EntityRef

__all__ = ["entity_routes"]

MAX_PHOTOS = 100


def entity_routes(router: APIRouter, services: Services) -> None:
    @router.get("/ui/entities/{entity_type}/{entity_id}")
    def entity(
        request: Request,
        entity_type: str = Path(pattern=ENTITY_TYPE_PATTERN),
        entity_id: str = Path(pattern=ENTITY_ID_PATTERN),
    ) -> HTMLResponse:
        ref = EntityRef(entity_type=entity_type, entity_id=entity_id)
        ledger = services.ledger
        jobs, _ = find_jobs(ledger, JobFilter(entity=ref), limit=MAX_PHOTOS * 2, before_id=None)
        photo_kinds = set(services.kinds.photo_kinds())
        photos = [data.job_row(services, j, with_label=True) for j in jobs if j.kind in photo_kinds]
        state = ledger.get_entity(ref)
        if state is None and not jobs:
            return page(request, "not_found.html", nav="jobs", what=f"entity {ref}", status_code=404)
        index = data.served_index(services)
        served = index.served_version if index else None
        return page(
            request,
            "entity.html",
            nav="jobs",
            ref=ref,
            state=state,
            photos=photos[:MAX_PHOTOS],
            others=[j for j in jobs if j.kind not in photo_kinds],
            matches=ledger.entity_matches(ref) if state else [],
            stale=bool(state and served and state.index_version != served),
            served_version=served,
            ticket_url=data.ticket_url(services, jobs[0]) if jobs else None,
            now=services.clock(),
        )
