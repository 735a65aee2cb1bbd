"""A skipped job says why, each reason its own error: the subject is gone (``SubjectGoneError``),
this process has no handler for the kind (``NoHandlerError``), or the work is switched off
(``FeatureDisabledError``) — all three skip the job rather than fail it."""

from __future__ import annotations

import pytest

from imagematch.app import Services
from imagematch.errors import FeatureDisabledError, NoHandlerError, SubjectGoneError
from imagematch.models import JobStatus, NewJob
from imagematch.sources.zendesk.jobs import ZendeskNotePayload
from imagematch.sources.zendesk.notes import ZendeskNoteHandler


def test_the_three_reasons_are_distinct_errors() -> None:
    assert not issubclass(NoHandlerError, FeatureDisabledError)
    assert not issubclass(FeatureDisabledError, NoHandlerError)
    assert issubclass(NoHandlerError, SubjectGoneError) and issubclass(FeatureDisabledError, SubjectGoneError)


def test_a_kind_without_a_handler_is_skipped_saying_so(services: Services) -> None:
    job, _ = services.ledger.submit(NewJob(kind="shopify_order", source="test", idempotency_key="o-1"))
    assert services.make_worker().drain() == 1
    done = services.ledger.get_job(job.id)
    assert done is not None and done.status == JobStatus.SKIPPED
    assert done.last_error == "no handler for job kind 'shopify_order'"


def test_notes_switched_off_raise_their_own_error(services: Services) -> None:
    def no_client() -> object:
        raise AssertionError("a note that is off never reaches Zendesk")

    handler = ZendeskNoteHandler(
        no_client,  # type: ignore[arg-type]
        services.ledger,
        enabled=False,
        min_score=0.0,
        lease_seconds=60,
    )
    job, _ = services.ledger.submit(
        NewJob(kind=ZendeskNotePayload.KIND, source="test", idempotency_key="n-1", payload={})
    )
    payload = ZendeskNotePayload.model_construct(ticket_id="7", attachment_id="1")
    with pytest.raises(FeatureDisabledError, match="internal notes are off"):
        handler(job, payload)
