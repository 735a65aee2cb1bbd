"""Abuse: forged, stale and replayed webhook signatures; SSRF in every spelling; credentials kept
on their origin; no secret in the logs of a whole flow."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from imagematch.addresses import AddressPolicy
from imagematch.api import create_app
from imagematch.app import Services, build_services
from imagematch.config import Settings
from imagematch.errors import PermanentError, TransientError
from imagematch.fetch import ImageFetcher
from imagematch.sources.catalog import sign_catalog_event
from imagematch.sources.zendesk import SIGNATURE_HEADER, TIMESTAMP_HEADER, ZendeskNotePayload, sign
from tests.conftest import image_bytes
from tests.fake_zendesk import FakeZendesk
from tests.loopback import LoopbackServer, Route, loopback_server
from tests.reliability.conftest import CATALOG_SECRET, ZENDESK_SECRET, Outcomes

pytestmark = pytest.mark.timeout(120)
PNG = image_bytes((220, 30, 30))


def zendesk_post(client: TestClient, body: bytes, *, secret: str | None, at: datetime) -> httpx.Response:
    stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: stamp}
    if secret is not None:
        headers[SIGNATURE_HEADER] = sign(secret, stamp, body)
    return client.post("/webhooks/zendesk", content=body, headers=headers)


def catalog_post(client: TestClient, body: bytes, *, secret: str | None, at: float) -> httpx.Response:
    headers = sign_catalog_event(secret or "x", int(at), body)
    if secret is None:
        headers = {k: v for k, v in headers.items() if k == "Content-Type"}
    return client.post("/webhooks/catalog", content=body, headers=headers)


def test_webhook_signatures_missing_wrong_stale_and_replayed(
    client: TestClient, services: Services, outcomes: Outcomes
) -> None:
    now = datetime.now(UTC)
    ticket = json.dumps({"ticket_id": "41"}).encode()
    event = json.dumps({"event": "product.updated", "product": {"id": "P9", "images": []}}).encode()
    cases = {
        "missing": (
            zendesk_post(client, ticket, secret=None, at=now),
            catalog_post(client, event, secret=None, at=now.timestamp()),
        ),
        "wrong": (
            zendesk_post(client, ticket, secret="not-the-secret", at=now),
            catalog_post(client, event, secret="not-the-secret", at=now.timestamp()),
        ),
        "stale (1 h old)": (
            zendesk_post(client, ticket, secret=ZENDESK_SECRET, at=now - timedelta(hours=1)),
            catalog_post(client, event, secret=CATALOG_SECRET, at=now.timestamp() - 3600),
        ),
    }
    for case, (zendesk, catalog) in cases.items():
        assert zendesk.status_code == catalog.status_code == 401
        outcomes.record("security", f"webhook signature {case}", "401 on both webhooks; no job stored")
    assert services.ledger.list_jobs() == []

    first = [
        zendesk_post(client, ticket, secret=ZENDESK_SECRET, at=now),
        catalog_post(client, event, secret=CATALOG_SECRET, at=now.timestamp()),
    ]
    again = [
        zendesk_post(client, ticket, secret=ZENDESK_SECRET, at=now),
        catalog_post(client, event, secret=CATALOG_SECRET, at=now.timestamp()),
    ]
    assert [r.status_code for r in first] == [202, 202] and [r.status_code for r in again] == [200, 200]
    assert len(services.ledger.list_jobs()) == 2
    outcomes.record("security", "webhook delivery replayed", "202 then 200 (duplicate) on both; one job each")


def _ssrf_targets(port: int) -> dict[str, str]:
    return {
        "loopback 127.0.0.1": f"http://127.0.0.1:{port}/img.png",
        "name resolving to loopback (localhost)": f"http://localhost:{port}/img.png",
        "decimal IP 2130706433": f"http://2130706433:{port}/img.png",
        "hex IP 0x7f000001": f"http://0x7f000001:{port}/img.png",
        "short IP 127.1": f"http://127.1:{port}/img.png",
        "IPv6 loopback [::1]": f"http://[::1]:{port}/img.png",
        "IPv4-mapped [::ffff:127.0.0.1]": f"http://[::ffff:127.0.0.1]:{port}/img.png",
        "IPv4-compatible [::127.0.0.1]": f"http://[::127.0.0.1]:{port}/img.png",
        "NAT64 [64:ff9b::7f00:1]": f"http://[64:ff9b::7f00:1]:{port}/img.png",
        "6to4 [2002:7f00:1::]": f"http://[2002:7f00:1::]:{port}/img.png",
        "10/8 (10.0.0.1)": "http://10.0.0.1/img.png",
        "metadata 169.254.169.254": "http://169.254.169.254/latest/meta-data/",
        "name resolving to 10.1.2.3": "http://files.internal.example/img.png",
    }


@pytest.fixture
def image_server() -> Iterator[LoopbackServer]:
    with loopback_server({"/img.png": Route(body=PNG)}) as running:
        yield running


def test_ssrf_in_every_spelling_is_refused(
    client: TestClient, image_server: LoopbackServer, outcomes: Outcomes, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = socket.getaddrinfo

    def resolver(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        return real("10.1.2.3" if host == "files.internal.example" else host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    for case, url in _ssrf_targets(image_server.port).items():
        response = client.post("/v1/match", json={"url": url})
        assert response.status_code == 422, (case, response.text)
        outcomes.record("security", f"SSRF: {case}", f"422 {response.json()['detail'][:80]}")
    assert image_server.requests == []


def test_redirects_to_private_addresses_are_refused(image_server: LoopbackServer, outcomes: Outcomes) -> None:
    image_server.routes["/to-loopback"] = Route(
        status=302, headers={"Location": image_server.url("/img.png")}
    )
    image_server.routes["/to-metadata"] = Route(status=302, headers={"Location": "http://169.254.169.254/"})
    only_localhost = ImageFetcher(
        httpx.Client(timeout=5), max_bytes=10**6, policy=AddressPolicy.parse("localhost")
    )
    for case, path in [
        ("redirect to 127.0.0.1", "/to-loopback"),
        ("redirect to 169.254.169.254", "/to-metadata"),
    ]:
        with pytest.raises(PermanentError, match="private address") as refused:
            only_localhost.fetch(image_server.url(path, "localhost"))
        outcomes.record("security", f"SSRF: {case} (first hop admitted by name)", f"refused: {refused.value}")
    assert [path for path, _ in image_server.requests] == ["/to-loopback", "/to-metadata"]


def test_credentials_never_leave_the_zendesk_origin(outcomes: Outcomes) -> None:
    token = {"Authorization": "Basic c2VjcmV0"}
    fetcher = ImageFetcher(
        httpx.Client(timeout=5), max_bytes=10**6, policy=AddressPolicy.parse("127.0.0.0/8,localhost")
    )
    with loopback_server() as zendesk, loopback_server() as other_port:
        other_port.routes["/f"] = Route(body=PNG)
        zendesk.routes["/port"] = Route(status=302, headers={"Location": other_port.url("/f")})
        zendesk.routes["/host"] = Route(status=302, headers={"Location": other_port.url("/f", "localhost")})
        zendesk.routes["/https"] = Route(
            status=302, headers={"Location": zendesk.url("/f").replace("http:", "https:")}
        )
        for path in ("/port", "/host"):
            assert (
                fetcher.fetch(zendesk.url(path), credentials=token, credential_origin=zendesk.url("/")) == PNG
            )
        with pytest.raises(TransientError):  # an https hop to a plain-http server fails; no token either way
            fetcher.fetch(zendesk.url("/https"), credentials=token, credential_origin=zendesk.url("/"))
    assert all("authorization" in headers for _, headers in zendesk.requests)
    assert not any("authorization" in headers for _, headers in other_port.requests)
    outcomes.record(
        "security",
        "credentials on redirects off the Zendesk origin (other port, other host, other scheme)",
        "sent to the origin only; never to the redirect target",
    )


def test_logs_of_a_whole_flow_hold_no_secret(
    settings: Settings,
    zendesk: FakeZendesk,
    catalog_file: Any,
    caplog: pytest.LogCaptureFixture,
    outcomes: Outcomes,
) -> None:
    from index_builder import rebuild_catalog_index

    db_password = "pg-password-never-logged"
    secret_settings = settings.model_copy(
        update={
            "zendesk_base_url": zendesk.base_url,
            "zendesk_email": zendesk.email,
            "zendesk_api_token": SecretStr(zendesk.api_token),
            "zendesk_post_notes": True,
            "fetch_allow_private": "127.0.0.0/8,localhost",  # the fake Zendesk, by name: not `true`
            "catalog": f"postgresql://reader:{db_password}@127.0.0.1:1/catalog",
        }
    )
    caplog.set_level(logging.DEBUG)
    services = build_services(secret_settings)
    logging.getLogger("imagematch").info("settings: %r", secret_settings)
    rebuild_catalog_index(services, str(catalog_file))
    zendesk.add_comment(7, zendesk.attachment(PNG, "a.png"))
    with TestClient(create_app(services), raise_server_exceptions=False) as client:
        assert (
            zendesk_post(
                client, b'{"ticket_id": "7"}', secret=ZENDESK_SECRET, at=datetime.now(UTC)
            ).status_code
            == 202
        )
        assert (
            zendesk_post(client, b'{"ticket_id": "7"}', secret="wrong", at=datetime.now(UTC)).status_code
            == 401
        )
        for _ in range(3):
            services.make_worker().drain(max_jobs=10)
    services.close()
    assert len(zendesk.notes(7)) == 1
    assert services.ledger.count_by_status(kind=ZendeskNotePayload.KIND)
    text = caplog.text
    for secret in (ZENDESK_SECRET, CATALOG_SECRET, zendesk.api_token, zendesk.authorization, db_password):
        assert secret not in text
    outcomes.record(
        "security",
        "secrets in the captured logs of a webhook → scan → match → note flow",
        f"none of 5 secrets found in {len(caplog.records)} log records",
    )
