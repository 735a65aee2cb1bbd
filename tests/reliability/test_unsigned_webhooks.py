"""Unsigned webhooks cannot be forged from a browser (issue #26 item 2): every webhook needs
``Content-Type: application/json`` (415); in unsigned mode a webhook also needs a loopback Host and
a same-site request (403); ``serve`` refuses unsigned mode on a non-loopback ``--host``."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import typer
from fastapi.testclient import TestClient
from pydantic import SecretStr

from imagematch.api import create_app
from imagematch.app import Services, build_services
from imagematch.cli.serving import serve_access
from imagematch.config import Settings
from imagematch.sources.catalog import sign_catalog_event
from tests.reliability.conftest import CATALOG_SECRET, Outcomes

DELETE = json.dumps({"event": "product.deleted", "product_id": "P-red"}).encode()
TICKET = json.dumps({"ticket_id": "5"}).encode()
JSON = {"Content-Type": "application/json"}
FORGED = {
    "cross-site text/plain POST (a form or no-cors fetch)": {"Content-Type": "text/plain"},
    "DNS-rebinding Host evil.example": {**JSON, "Host": "evil.example"},
    "cross-site Origin": {**JSON, "Origin": "https://evil.example"},
    "Sec-Fetch-Site: cross-site": {**JSON, "Sec-Fetch-Site": "cross-site"},
}


@pytest.fixture
def unsigned(settings: Settings, catalog_file: object) -> Iterator[Services]:
    from index_builder import rebuild_catalog_index

    services = build_services(
        settings.model_copy(
            update={
                "catalog_webhook_secret": None,
                "zendesk_webhook_secret": None,
                "catalog_allow_unsigned": True,
                "zendesk_allow_unsigned": True,
            }
        )
    )
    rebuild_catalog_index(services, str(catalog_file))
    yield services
    services.close()


def test_forged_unsigned_webhooks_are_refused(unsigned: Services, outcomes: Outcomes) -> None:
    with TestClient(create_app(unsigned), base_url="http://127.0.0.1:8000") as client:
        for case, headers in FORGED.items():
            answers = [
                client.post(path, content=body, headers=headers)
                for path, body in (("/webhooks/catalog", DELETE), ("/webhooks/zendesk", TICKET))
            ]
            codes = [a.status_code for a in answers]
            assert codes in ([415, 415], [403, 403]), (case, [a.text for a in answers])
            outcomes.record("security", f"unsigned webhooks: {case}", f"{codes[0]} on both; no job stored")
        assert unsigned.ledger.list_jobs() == []
        local = [client.post(p, content=b, headers=JSON) for p, b in [("/webhooks/catalog", DELETE)]]
        assert [a.status_code for a in local] == [202]  # a local trial from curl still works


def test_signed_webhooks_need_json_too(client: TestClient, outcomes: Outcomes) -> None:
    headers = {**sign_catalog_event(CATALOG_SECRET, int(time.time()), DELETE), "Content-Type": "text/plain"}
    answer = client.post("/webhooks/catalog", content=DELETE, headers=headers)
    assert answer.status_code == 415, answer.text
    outcomes.record("bad-input", "signed webhook sent as text/plain", f"415 {answer.json()['detail']}")


def test_serve_refuses_unsigned_mode_off_loopback(settings: Settings, outcomes: Outcomes) -> None:
    token = SecretStr("console:Zq8vN2xR4mT7pL1sK9wB3cY6")
    for unsigned in ({"catalog_allow_unsigned": True}, {"zendesk_allow_unsigned": True}):
        risky = settings.model_copy(
            update={
                "catalog_webhook_secret": None,
                "zendesk_webhook_secret": None,
                "api_token": token,
                **unsigned,
            }
        )
        with pytest.raises(typer.Exit) as refused:
            serve_access(risky, "0.0.0.0")
        assert refused.value.exit_code == 2
        assert serve_access(risky, "127.0.0.1").enabled  # loopback: fine
    outcomes.record("security", "serve --host 0.0.0.0 with unsigned webhooks allowed", "refused (exit 2)")
