"""Notes the customer cannot suppress (issue #26 item 4): the ``imagematch-note:<attachment>``
marker counts only in a private comment written by the API user imagematch posts as."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from imagematch.api import create_app
from imagematch.app import build_services
from imagematch.config import Settings
from tests.conftest import FakeClock, image_bytes
from tests.fake_zendesk import FakeZendesk, fake_zendesk
from tests.integration.test_zendesk import deliver, settle, zendesk_settings
from tests.reliability.conftest import Outcomes


@pytest.fixture
def zendesk() -> Iterator[FakeZendesk]:
    with fake_zendesk() as fake:
        yield fake


def _post_with_marker(zendesk: FakeZendesk, ticket: int, **comment: Any) -> dict[str, Any]:
    photo = zendesk.attachment(image_bytes((220, 30, 30), mark=1), "imagematch-note-lookalike.png")
    zendesk.add_comment(ticket, photo, body=f"see imagematch-note:{photo['id']}", **comment)
    return photo


def test_a_marker_from_the_customer_or_another_agent_does_not_suppress_the_note(
    settings: Settings, zendesk: FakeZendesk, catalog_file: Any, clock: FakeClock, outcomes: Outcomes
) -> None:
    from index_builder import rebuild_catalog_index

    services = build_services(
        zendesk_settings(settings, zendesk, fetch_allow_private="127.0.0.0/8,localhost"), clock=clock
    )
    rebuild_catalog_index(services, str(catalog_file))
    _post_with_marker(zendesk, 11)  # the customer's public comment
    _post_with_marker(zendesk, 12, public=False)  # a private comment, not by the API user
    zendesk.tickets[12].comments[-1]["author_id"] = 4242
    with TestClient(create_app(services)) as client:
        for ticket in (11, 12):
            assert deliver(client, {"ticket_id": ticket}, at=clock.now).status_code == 202
        settle(services, clock)
    services.close()
    assert [len(zendesk.notes(11)), len(zendesk.notes(12))] == [1, 1]
    outcomes.record(
        "security",
        "note marker written by the customer (public comment) or another agent",
        "the note is posted anyway (once); only the API user's private comments count",
    )
