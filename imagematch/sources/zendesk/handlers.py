"""How Zendesk plugs into the job pipeline (registered in ``imagematch.app``): the ticket scan,
the attachment loader and the completion hook that persists a note job.

All are safe to run any number of times: every job they create has an idempotency key, so a
re-run, a retry or a second webhook only adds what is new.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from imagematch.dispatch import Dispatch
from imagematch.fetch import ImageFetcher
from imagematch.ledger import Ledger
from imagematch.models import Job, NewPrediction
from imagematch.pipeline import PhotoBytes, SkipPhoto
from imagematch.sources.zendesk.client import ZendeskClient
from imagematch.sources.zendesk.jobs import ZendeskImagePayload, ZendeskTicketPayload, image_job_for
from imagematch.sources.zendesk.notes import note_job_for

__all__ = ["ZendeskAttachmentLoader", "ZendeskNoteFollowUp", "ZendeskTicketHandler"]

log = logging.getLogger(__name__)


class ZendeskTicketHandler:
    """Handles ``zendesk_ticket`` jobs: lists every comment of the ticket and submits one
    ``zendesk_image`` job per attachment not seen before (skipped attachments too, with the reason).

    Raises SubjectGoneError (ticket deleted), TransientError (429, 5xx, network) or PermanentError.
    """

    def __init__(
        self, client: Callable[[], ZendeskClient], ledger: Ledger, *, max_bytes: int, dispatch: Dispatch
    ) -> None:
        self._client = client
        self._ledger = ledger
        self._max_bytes = max_bytes
        self._dispatch = dispatch

    def __call__(self, job: Job, payload: ZendeskTicketPayload) -> None:
        created: list[int] = []
        seen = 0
        for comment in self._client().iter_comments(payload.ticket_id):
            for attachment in comment.get("attachments") or []:
                new = image_job_for(payload.ticket_id, comment, attachment, max_bytes=self._max_bytes)
                if new is None:
                    continue
                seen += 1
                child, is_new = self._ledger.submit(new)
                if is_new:
                    created.append(child.id)
        log.info("ticket %s: %d attachments, %d new jobs", payload.ticket_id, seen, len(created))
        if created:
            self._dispatch(created)


class ZendeskAttachmentLoader:
    """The bytes of a ``zendesk_image`` job: the attachment, downloaded with credentials sent to
    the Zendesk host only (never to the storage host it redirects to). Attachments skipped by plan
    (malware, size, type) come back as :class:`SkipPhoto`; ones Zendesk labelled as generic binary
    are :class:`PhotoBytes` of unverified type (skipped if they do not decode).
    Raises PermanentError (4xx) and TransientError (429, 5xx, network)."""

    def __init__(self, client: Callable[[], ZendeskClient], fetcher: ImageFetcher) -> None:
        self._client = client
        self._fetcher = fetcher

    def load(self, payload: ZendeskImagePayload) -> PhotoBytes | SkipPhoto:
        if payload.skip_reason:
            return SkipPhoto(payload.skip_reason)
        client = self._client()
        data = self._fetcher.fetch(
            payload.image, credentials=client.credentials, credential_origin=client.base_url
        )
        return PhotoBytes(data, unverified_type=str(payload.content_type) if payload.sniff else None)


class ZendeskNoteFollowUp:
    """Completion hook of ``zendesk_image``: persists the ``zendesk_note`` job that posts the answer
    (before the image job completes: see :mod:`imagematch.sources.zendesk.notes`)."""

    def __init__(self, ledger: Ledger, *, dispatch: Dispatch) -> None:
        self._ledger = ledger
        self._dispatch = dispatch

    def __call__(self, job: Job, payload: ZendeskImagePayload, prediction: NewPrediction) -> None:
        note, created = self._ledger.submit(note_job_for(job.id, payload, prediction))
        if created:
            self._dispatch([note.id])
