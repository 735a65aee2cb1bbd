"""Job handlers for Zendesk tickets and their attachments (registered in ``imagematch.app``).

Both are safe to run any number of times: every job they create has an idempotency key, so a
re-run, a retry or a second webhook only adds what is new.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from imagematch.errors import PermanentError, SubjectGoneError
from imagematch.fetch import ImageFetcher
from imagematch.images import decode_image
from imagematch.ledger import Ledger
from imagematch.models import ImageJob, NewPrediction
from imagematch.pipeline import ImageLimits, Matcher, PhotoHook
from imagematch.sources.zendesk.client import ZendeskClient
from imagematch.sources.zendesk.jobs import image_job_for
from imagematch.sources.zendesk.notes import note_job_for

__all__ = ["ZendeskImageHandler", "ZendeskTicketHandler"]

log = logging.getLogger(__name__)

Nudge = Callable[[list[int]], None]


class ZendeskTicketHandler:
    """Handles ``zendesk_ticket`` jobs: lists every comment of the ticket and submits one
    ``zendesk_image`` job per attachment not seen before (skipped attachments too, with the reason).

    Raises SubjectGoneError (ticket deleted), TransientError (429, 5xx, network) or PermanentError.
    """

    def __init__(
        self, client: Callable[[], ZendeskClient], ledger: Ledger, *, max_bytes: int, nudge: Nudge
    ) -> None:
        self._client = client
        self._ledger = ledger
        self._max_bytes = max_bytes
        self._nudge = nudge

    def __call__(self, job: ImageJob) -> None:
        ticket_id = str(job.payload["ticket_id"])
        created: list[int] = []
        seen = 0
        for comment in self._client().iter_comments(ticket_id):
            for attachment in comment.get("attachments") or []:
                new = image_job_for(ticket_id, comment, attachment, max_bytes=self._max_bytes)
                if new is None:
                    continue
                seen += 1
                child, is_new = self._ledger.submit(new)
                if is_new:
                    created.append(child.id)
        log.info("ticket %s: %d attachments, %d new jobs", ticket_id, seen, len(created))
        if created:
            self._nudge(created)
        return None


class ZendeskImageHandler:
    """Handles ``zendesk_image`` jobs: downloads the attachment (credentials to the Zendesk host
    only, never to the storage host it redirects to), matches it, and returns the prediction with
    the ticket, comment and attachment it belongs to. With notes on, the note job is persisted
    before the prediction is (see :mod:`imagematch.sources.zendesk.notes`).

    Raises SubjectGoneError for attachments skipped by plan (malware, size, type) or sniffed as
    not an image, PermanentError (undecodable, 4xx) and TransientError (429, 5xx, network).
    """

    def __init__(
        self,
        client: Callable[[], ZendeskClient],
        ledger: Ledger,
        fetcher: ImageFetcher,
        matcher: Matcher,
        limits: ImageLimits,
        *,
        post_notes: bool,
        nudge: Nudge,
        on_photo: PhotoHook | None = None,
    ) -> None:
        self._client = client
        self._ledger = ledger
        self._fetcher = fetcher
        self._matcher = matcher
        self._limits = limits
        self._post_notes = post_notes
        self._nudge = nudge
        self._on_photo = on_photo

    def __call__(self, job: ImageJob) -> NewPrediction:
        payload = job.payload
        if payload.get("skip_reason"):
            raise SubjectGoneError(str(payload["skip_reason"]))
        client = self._client()
        url = str(payload["image"])
        data = self._fetcher.fetch(url, credentials=client.credentials, credential_host=client.host)
        try:
            image = decode_image(data, max_bytes=self._limits.max_bytes, max_pixels=self._limits.max_pixels)
        except PermanentError as exc:
            if payload.get("sniff"):
                raise SubjectGoneError(f"not an image ({payload.get('content_type')}): {exc}") from exc
            raise
        if self._on_photo:  # console thumbnail: the console never fetches with Zendesk credentials
            self._on_photo(job, data, image)
        result = self._matcher.match_image(image)
        prediction = NewPrediction(
            **result.model_dump(),
            source=job.source,
            ticket_id=str(payload["ticket_id"]),
            comment_id=payload.get("comment_id"),
            attachment_id=str(payload["attachment_id"]),
            file_name=payload.get("file_name"),
            image_url=url,
        )
        if self._post_notes:
            note, created = self._ledger.submit(note_job_for(job, prediction))
            if created:
                self._nudge([note.id])
        return prediction
