"""The ledger jobs a Zendesk ticket turns into, and their idempotency keys.

* ``zendesk_ticket`` — ``zendesk-ticket:{ticket}:{delivery}``: one per webhook delivery (or
  ``zendesk scan`` run), so a new event about a known ticket scans it again while a repeated
  delivery does not.
* ``zendesk_image`` — ``zendesk:{ticket}:{attachment}``: one per attachment, ever. However many
  scans find it, it is matched once and has one prediction.
* ``zendesk_note`` — ``zendesk-note:{ticket}:{attachment}``: one internal note per attachment.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field

from imagematch.calibration import Band
from imagematch.entities import EntityRef
from imagematch.job_kinds import JobPayload, PhotoPayload, new_job
from imagematch.models import Match, NewJob

__all__ = [
    "SOURCE",
    "AttachmentPlan",
    "ZendeskImagePayload",
    "ZendeskNotePayload",
    "ZendeskTicketPayload",
    "image_job_for",
    "image_job_key",
    "note_job_key",
    "plan_attachment",
    "ticket_job",
]

SOURCE = "zendesk"

# Zendesk labels some uploads (often from mobile mail clients) as generic binary; these are
# downloaded and sniffed instead of being skipped on their label.
_GENERIC_TYPES = {"", "application/octet-stream", "binary/octet-stream", "application/unknown"}
_IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".heic", ".heif", ".bmp", ".tif", ".tiff"}
_UNREADABLE_IMAGES = {"image/svg+xml"}  # vector drawings: nothing to decode into pixels


class ZendeskTicketPayload(JobPayload):
    """``zendesk_ticket``: scan this ticket's comments for attachments."""

    KIND: ClassVar[str] = "zendesk_ticket"
    ticket_id: str


class ZendeskImagePayload(PhotoPayload):
    """``zendesk_image``: one attachment (``image`` is its ``content_url``, fetched with Zendesk
    credentials). ``skip_reason`` set: skipped by plan; ``sniff``: match only if it decodes."""

    KIND: ClassVar[str] = "zendesk_image"
    ticket_id: str
    attachment_id: str
    comment_id: str | None = None
    content_type: str | None = None
    size: int | None = None
    inline: bool = False
    skip_reason: str | None = None
    sniff: bool = False

    def references(self) -> dict[str, str]:
        refs = {"ticket_id": self.ticket_id, "attachment_id": self.attachment_id}
        return refs | ({"comment_id": self.comment_id} if self.comment_id else {})

    def entity(self) -> EntityRef:
        """A ticket's photos belong to the ticket: its matches aggregate them."""
        return EntityRef(entity_type="ticket", entity_id=self.ticket_id)


class ZendeskNotePayload(JobPayload):
    """``zendesk_note``: post this answer on the ticket as an internal note, exactly once."""

    KIND: ClassVar[str] = "zendesk_note"
    ticket_id: str
    attachment_id: str
    comment_id: str | None = None
    file_name: str | None = None
    image_job_id: int
    matches: list[Match]
    index_version: str
    # The quality tier flagged the photo: why, and what to ask the customer for.
    quality_reasons: list[str] = Field(default_factory=list)
    quality_advice: list[str] = Field(default_factory=list)
    # The answer's calibrated confidence and band (None on notes queued before confidence).
    confidence: float | None = None
    band: Band | None = None


def ticket_job(ticket_id: str, delivery_id: str, *, metadata: dict[str, Any] | None = None) -> NewJob:
    return new_job(
        ZendeskTicketPayload(ticket_id=ticket_id),
        source=SOURCE,
        idempotency_key=f"zendesk-ticket:{ticket_id}:{delivery_id}",
        metadata=metadata,
    )


def image_job_key(ticket_id: str, attachment_id: str) -> str:
    return f"zendesk:{ticket_id}:{attachment_id}"


def note_job_key(ticket_id: str, attachment_id: str) -> str:
    return f"zendesk-note:{ticket_id}:{attachment_id}"


@dataclass(frozen=True)
class AttachmentPlan:
    """What to do with one attachment: ``match`` it, ``sniff`` it (match if its bytes are an
    image, else skip), or ``skip`` it for ``reason``."""

    action: Literal["match", "sniff", "skip"]
    reason: str | None = None


def plan_attachment(attachment: dict[str, Any], *, max_bytes: int) -> AttachmentPlan:
    """Decide from Zendesk's metadata alone (no download): malware first, then size, then type."""
    if attachment.get("malware_scan_result") == "malware_found":
        return AttachmentPlan("skip", "Zendesk's malware scan flagged this attachment (malware_found)")
    size = attachment.get("size")
    if isinstance(size, int) and size > max_bytes:
        return AttachmentPlan("skip", f"attachment is {size:,} bytes; the limit is {max_bytes:,}")
    content_type = str(attachment.get("content_type") or "").split(";")[0].strip().lower()
    if content_type in _UNREADABLE_IMAGES:
        return AttachmentPlan("skip", f"not a raster image ({content_type})")
    if content_type.startswith("image/"):
        return AttachmentPlan("match")
    if content_type in _GENERIC_TYPES:
        extension = posixpath.splitext(str(attachment.get("file_name") or "").lower())[1]
        return AttachmentPlan("match" if extension in _IMAGE_EXTENSIONS else "sniff")
    return AttachmentPlan("skip", f"not an image ({content_type})")


def image_job_for(
    ticket_id: str, comment: dict[str, Any], attachment: dict[str, Any], *, max_bytes: int
) -> NewJob | None:
    """The ``zendesk_image`` job for an attachment (skipped ones too: the job records why), or
    ``None`` when the attachment has no id or URL to act on."""
    attachment_id, url = attachment.get("id"), attachment.get("content_url")
    if attachment_id in (None, "") or not isinstance(url, str) or not urlsplit(url).hostname:
        return None
    plan = plan_attachment(attachment, max_bytes=max_bytes)
    payload = ZendeskImagePayload(
        image=url,
        ticket_id=ticket_id,
        comment_id=None if comment.get("id") is None else str(comment["id"]),
        attachment_id=str(attachment_id),
        file_name=attachment.get("file_name"),
        content_type=attachment.get("content_type"),
        size=attachment.get("size") if isinstance(attachment.get("size"), int) else None,
        inline=bool(attachment.get("inline")),
        skip_reason=plan.reason if plan.action == "skip" else None,
        sniff=plan.action == "sniff",
    )
    return new_job(payload, source=SOURCE, idempotency_key=image_job_key(ticket_id, str(attachment_id)))
