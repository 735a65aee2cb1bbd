"""Internal notes: one per matched attachment, posted exactly once.

Zendesk has no idempotency key for ticket updates, so "exactly once" is built from three parts:

1. **Intent, durably first.** The ``zendesk_note`` job (key ``zendesk-note:{ticket}:{attachment}``)
   is written to the ledger by the image job *before* that job completes, carrying the answer to
   post. Duplicate webhooks and re-runs find the same key: there is never a second note job.
2. **A marker in the note.** Every note ends with ``imagematch-note:{attachment}``. The job's
   ``processing`` state is recorded (claim) before the PUT and ``complete`` after it; a job run
   again after a crash between the two (lease expired, swept, re-claimed) or re-queued by hand
   first lists the ticket's comments: the marker found in a private comment by the API user
   (``users/me``) means the note is there, so it completes without posting. A marker anyone else
   writes (a customer's comment, a file name) does not count.
3. **A conditional PUT.** The ticket's ``updated_at`` is read *before* the comments are searched,
   and the note is sent with ``safe_update`` + ``updated_stamp``: if anything (another worker that
   took over an expired lease, an agent) changed the ticket after that read, Zendesk answers 409
   and the check is repeated. Just before the PUT the worker also confirms it still holds the
   job's lease. So a note is only ever added to a ticket already searched for it.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from imagematch.calibration import Band
from imagematch.errors import (
    EmbedderMismatchError,
    FeatureDisabledError,
    IndexNotBuiltError,
    TransientError,
)
from imagematch.index import IndexHandle
from imagematch.job_kinds import new_job
from imagematch.ledger import Ledger
from imagematch.models import Job, Match, NewJob, NewPrediction
from imagematch.sources.zendesk.client import ZendeskClient, ZendeskConflictError
from imagematch.sources.zendesk.jobs import SOURCE, ZendeskImagePayload, ZendeskNotePayload, note_job_key

__all__ = [
    "MatchLinks",
    "ZendeskNoteHandler",
    "catalog_links",
    "note_job_for",
    "note_marker",
    "render_note",
]

CONFLICT_ROUNDS = 3  # re-read and re-check this often when the ticket changes under a PUT


def note_marker(attachment_id: str) -> str:
    return f"imagematch-note:{attachment_id}"


def note_job_for(image_job_id: int, image: ZendeskImagePayload, prediction: NewPrediction) -> NewJob:
    """The note job for an answered ``zendesk_image`` job; it carries the answer to post."""
    note = ZendeskNotePayload(
        ticket_id=image.ticket_id,
        attachment_id=image.attachment_id,
        comment_id=image.comment_id,
        file_name=image.file_name,
        image_job_id=image_job_id,
        matches=prediction.matches,
        index_version=prediction.index_version,
        confidence=prediction.confidence,
        band=prediction.band,
        **_quality_fields(prediction),
    )
    return new_job(note, source=SOURCE, idempotency_key=note_job_key(image.ticket_id, image.attachment_id))


def _quality_fields(prediction: NewPrediction) -> dict[str, list[str]]:
    quality = prediction.quality
    if quality is None or not quality.low_quality:
        return {}
    return {"quality_reasons": quality.reasons, "quality_advice": quality.advice}


@dataclass(frozen=True)
class MatchLinks:
    """Where an agent can see a matched product: its page, and its closest reference image."""

    product_url: str | None = None
    image_url: str | None = None  # only a public https URL (Zendesk shows it inline)


LinkFinder = Callable[[Match], MatchLinks]


def _web_url(url: object, *, https_only: bool = False) -> str | None:
    text = str(url or "")
    scheme = urlsplit(text).scheme
    return text if scheme == "https" or (scheme == "http" and not https_only) else None


def catalog_links(index: IndexHandle, product_url_template: str | None) -> LinkFinder:
    """Links from the served index: the product's ``url`` (catalog field, kept in its metadata) or
    ``product_url_template`` with ``{id}``; the matched reference image when it is an https URL."""

    def find(match: Match) -> MatchLinks:
        try:
            served = index.get()
        except (IndexNotBuiltError, EmbedderMismatchError):
            return MatchLinks()
        product = served.products.get(match.product_id)
        url = _web_url(product.metadata.get("url")) if product else None
        if url is None and product_url_template:
            url = _web_url(product_url_template.replace("{id}", quote(match.product_id, safe="")))
        image = next(
            (
                served.images[vid].uri
                for vid in served.product_vector_ids(match.product_id)
                if vid in served.images and served.images[vid].image_id == match.image_id
            ),
            None,
        )
        return MatchLinks(url, _web_url(image, https_only=True))

    return find


def _item(match: Match, links: MatchLinks) -> str:
    name = html.escape(match.name or match.product_id)
    if links.product_url:
        name = f'<a href="{html.escape(links.product_url)}">{name}</a>'
    picture = (
        f'<img src="{html.escape(links.image_url)}" alt="" width="64" height="64"> '
        if links.image_url
        else ""
    )
    return f"<li>{picture}{name} — ID/SKU {html.escape(match.product_id)} — score {match.score:.3f}</li>"


BAND_WORDS = {Band.CONFIDENT: "Confident", Band.CHECK: "Check", Band.NO_MATCH: "No match"}


def _verdict(best: float | None, min_score: float, band: Band | None, confidence: float | None) -> str:
    """The note's answer line: the band in words with its confidence. A note queued before
    confidence existed (no band) says only whether the best raw score clears ``min_score``."""
    if best is None:
        return "<p><strong>No match</strong> (no products in the index).</p>"
    if band is None:
        below = best < min_score
        return (
            f"<p><strong>No confident match</strong> (best score {best:.3f} < {min_score:.3f}).</p>"
            if below
            else ""
        )
    if best < min_score:
        band = Band.NO_MATCH
    sure = "" if confidence is None else f": {confidence:.0%} likely that the first product is right"
    return f"<p><strong>{BAND_WORDS[band]}</strong>{sure} (best score {best:.3f}).</p>"


def render_note(
    *,
    attachment_id: str,
    file_name: str | None,
    matches: list[Match],
    min_score: float,
    links: LinkFinder | None = None,
    job_url: str | None = None,
    quality_reasons: list[str] | None = None,
    quality_advice: list[str] | None = None,
    confidence: float | None = None,
    band: Band | None = None,
) -> str:
    """The note's HTML: the top products (name linked to the product page when known, a small
    picture of the closest reference image when public, id/SKU, raw score), the answer's band
    (Confident / Check / No match) with its confidence (no match also when the best raw score is
    below ``min_score``), what to ask the customer for when the photo was flagged low quality, a
    link to the job in the console ("Confirm or correct": its labels teach the index), and the
    marker line. Everything from the
    catalog or the ticket is HTML-escaped."""
    name = html.escape(file_name or f"attachment {attachment_id}")
    lines = [f"<p><strong>imagematch</strong>: catalog products matching <strong>{name}</strong></p>"]
    if quality_reasons:
        reasons = html.escape("; ".join(quality_reasons))
        ask = html.escape("; ".join(quality_advice or []))
        lines.append(f"<p><strong>Low quality photo</strong> ({reasons}). Ask the customer for {ask}.</p>")
    lines.append(_verdict(matches[0].score if matches else None, min_score, band, confidence))
    if matches:
        lines.append(
            "<ol>" + "".join(_item(m, links(m) if links else MatchLinks()) for m in matches) + "</ol>"
        )
    if job_url:
        # The console's job page: "This one", "Another product…", … (labels teach the index).
        lines.append(
            f'<p><a href="{html.escape(job_url)}">Confirm or correct</a> this answer in imagematch</p>'
        )
    lines.append(f"<p>ref {note_marker(attachment_id)}</p>")
    return "".join(lines)


def _mentions(comments: Iterable[dict[str, Any]], marker: str, *, author_id: int) -> bool:
    """Whether one of our notes carries exactly ``marker``: ``imagematch-note:12`` is not found
    in a note for attachment 123 (a marker ends where the id ends). Only private comments written
    by ``author_id`` (the API user) count: a customer or another agent who writes the marker
    (in a comment or a file name) cannot suppress the note."""
    exact = re.compile(rf"(?<![\w:-]){re.escape(marker)}(?![\w-])")
    return any(
        exact.search(str(comment.get(field) or ""))
        for comment in comments
        if comment.get("public") is False and comment.get("author_id") == author_id
        for field in ("html_body", "plain_body", "body")
    )


class ZendeskNoteHandler:
    """Handles ``zendesk_note`` jobs (see the module docstring for the exactly-once protocol).

    Raises FeatureDisabledError when notes are switched off, SubjectGoneError when the ticket is
    gone (both skip the job), TransientError while Zendesk is unavailable or the ticket keeps
    changing, PermanentError when Zendesk refuses (e.g. a closed ticket, missing scope).
    """

    def __init__(
        self,
        client: Callable[[], ZendeskClient],
        ledger: Ledger,
        *,
        enabled: bool,
        min_score: float,
        lease_seconds: float,
        links: LinkFinder | None = None,
        public_url: str | None = None,
    ) -> None:
        self._client = client
        self._ledger = ledger
        self._enabled = enabled
        self._min_score = min_score
        self._lease_seconds = lease_seconds
        self._links = links
        self._public_url = public_url.rstrip("/") if public_url else None
        self._api_user_id: int | None = None

    def __call__(self, job: Job, payload: ZendeskNotePayload) -> None:
        if not self._enabled:
            raise FeatureDisabledError("internal notes are off (IMAGEMATCH_ZENDESK_POST_NOTES=false)")
        client = self._client()
        ticket_id = payload.ticket_id
        marker = note_marker(payload.attachment_id)
        body = render_note(
            attachment_id=payload.attachment_id,
            file_name=payload.file_name,
            matches=payload.matches,
            min_score=self._min_score,
            links=self._links,
            job_url=self._job_url(payload),
            quality_reasons=payload.quality_reasons,
            quality_advice=payload.quality_advice,
            confidence=payload.confidence,
            band=payload.band,
        )
        author_id = self._author_id(client)
        for _ in range(CONFLICT_ROUNDS):
            # Stamp first, then look: a note that lands after this read makes our PUT conflict.
            stamp = client.get_ticket(ticket_id).get("updated_at")
            if _mentions(client.iter_comments(ticket_id), marker, author_id=author_id):
                return None  # already posted (a run that crashed after its PUT, or another worker)
            self._confirm_lease(job)
            try:
                client.add_internal_note(ticket_id, body, updated_stamp=stamp)
            except ZendeskConflictError:
                continue  # the ticket changed since the read: look again before posting
            return None
        raise TransientError(f"ticket {ticket_id} kept changing while the note was posted; will retry")

    def _author_id(self, client: ZendeskClient) -> int:
        """The API user's id, asked once per handler (the credentials do not change under it)."""
        if self._api_user_id is None:
            self._api_user_id = client.current_user_id()
        return self._api_user_id

    def _job_url(self, payload: ZendeskNotePayload) -> str | None:
        image_job = payload.image_job_id
        return f"{self._public_url}/ui/jobs/{image_job}" if self._public_url and image_job else None

    def _confirm_lease(self, job: Job) -> None:
        """A worker whose lease expired (its job may be running elsewhere) must not post."""
        if job.worker_id and not self._ledger.heartbeat(
            job.id, job.worker_id, lease_seconds=self._lease_seconds
        ):
            raise TransientError(f"lost the lease on note job {job.id}; not posting")
