"""How Zendesk plugs into a process: its three job kinds, the attachment loader and the note hook.
The composition root calls :func:`register` (through :func:`imagematch.sources.register_sources`)
and never names a Zendesk field."""

from __future__ import annotations

from typing import TYPE_CHECKING

from imagematch.job_kinds import JobKindSpec
from imagematch.sources.zendesk.client import ZendeskClient, zendesk_client_for
from imagematch.sources.zendesk.handlers import (
    ZendeskAttachmentLoader,
    ZendeskNoteFollowUp,
    ZendeskTicketHandler,
)
from imagematch.sources.zendesk.jobs import ZendeskImagePayload, ZendeskNotePayload, ZendeskTicketPayload
from imagematch.sources.zendesk.notes import ZendeskNoteHandler, catalog_links

if TYPE_CHECKING:
    from imagematch.app import Services

__all__ = ["register"]


def register(services: Services) -> None:
    """The ticket scan, its attachments (a photo kind with a note hook when notes are on), notes."""
    settings, ledger = services.settings, services.ledger

    def client() -> ZendeskClient:  # built when a job needs it: raises ZendeskNotConfiguredError
        return zendesk_client_for(settings, services.http)

    services.kinds.register(
        JobKindSpec(
            kind=ZendeskTicketPayload.KIND,
            payload=ZendeskTicketPayload,
            handler=ZendeskTicketHandler(
                client, ledger, max_bytes=settings.max_image_bytes, dispatch=services.dispatch
            ),
            needs_embedder=False,
        )
    )
    services.kinds.register(
        services.photos.kind(
            ZendeskImagePayload.KIND, ZendeskImagePayload, ZendeskAttachmentLoader(client, services.fetcher)
        )
    )
    if settings.zendesk_post_notes:
        services.photos.on_complete(
            ZendeskImagePayload.KIND, ZendeskNoteFollowUp(ledger, dispatch=services.dispatch)
        )
    note_min_score = settings.zendesk_note_min_score
    services.kinds.register(
        JobKindSpec(
            kind=ZendeskNotePayload.KIND,
            payload=ZendeskNotePayload,
            handler=ZendeskNoteHandler(
                client,
                ledger,
                enabled=settings.zendesk_post_notes,
                min_score=settings.min_score if note_min_score is None else note_min_score,
                lease_seconds=settings.lease_seconds,
                links=catalog_links(services.index, settings.product_url_template),
                public_url=settings.public_url,
            ),
            needs_embedder=False,
        )
    )
