"""Zendesk: ticket webhooks in, attachments matched, one internal note per attachment out.

``routes`` is the webhook endpoint; ``webhook`` verifies and parses deliveries; ``client`` talks
to the Support API; ``jobs`` names the ledger jobs a ticket becomes (typed payloads); ``handlers``
(ticket scan, attachment loader, note follow-up) and ``notes`` run them; ``ticket_scan``
finds tickets whose images were never matched. See README "Zendesk".
"""

from __future__ import annotations

from imagematch.sources.zendesk.client import (
    ZendeskClient,
    ZendeskConflictError,
    ZendeskNotConfiguredError,
    zendesk_base_url,
    zendesk_client_for,
)
from imagematch.sources.zendesk.handlers import (
    ZendeskAttachmentLoader,
    ZendeskNoteFollowUp,
    ZendeskTicketHandler,
)
from imagematch.sources.zendesk.jobs import (
    SOURCE,
    AttachmentPlan,
    ZendeskImagePayload,
    ZendeskNotePayload,
    ZendeskTicketPayload,
    image_job_key,
    note_job_key,
    plan_attachment,
    ticket_job,
)
from imagematch.sources.zendesk.notes import ZendeskNoteHandler, note_marker, render_note
from imagematch.sources.zendesk.routes import zendesk_webhook_router
from imagematch.sources.zendesk.ticket_scan import TicketScanReport, scan_tickets
from imagematch.sources.zendesk.webhook import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookDelivery,
    WebhookPayloadError,
    WebhookSignatureError,
    parse_delivery,
    sign,
    verify_signature,
)

__all__ = [
    "SIGNATURE_HEADER",
    "SOURCE",
    "TIMESTAMP_HEADER",
    "AttachmentPlan",
    "TicketScanReport",
    "WebhookDelivery",
    "WebhookPayloadError",
    "WebhookSignatureError",
    "ZendeskAttachmentLoader",
    "ZendeskClient",
    "ZendeskConflictError",
    "ZendeskImagePayload",
    "ZendeskNotConfiguredError",
    "ZendeskNoteFollowUp",
    "ZendeskNoteHandler",
    "ZendeskNotePayload",
    "ZendeskTicketHandler",
    "ZendeskTicketPayload",
    "image_job_key",
    "note_job_key",
    "note_marker",
    "parse_delivery",
    "plan_attachment",
    "render_note",
    "scan_tickets",
    "sign",
    "ticket_job",
    "verify_signature",
    "zendesk_base_url",
    "zendesk_client_for",
    "zendesk_webhook_router",
]
