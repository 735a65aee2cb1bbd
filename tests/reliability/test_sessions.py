"""Sessions that end (issue #26 item 1): the console cookie is signed with an issued-at time and a
random id, expires on the server (IMAGEMATCH_SESSION_HOURS), and is revoked by logout in the
ledger (so a restart does not bring it back). Removing a token still ends its sessions."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from imagematch.api import create_app
from imagematch.app import Services, build_services
from imagematch.config import Settings
from tests.conftest import FakeClock
from tests.reliability.conftest import Outcomes

TOKEN = "console-token-4f9a1c7e2b8d6a30"
OTHER = "other-token-7d2e9b4c1a6f8e05"
COOKIE = "imagematch_session"


@pytest.fixture
def signed_in(settings: Settings, clock: FakeClock) -> Iterator[tuple[Settings, FakeClock]]:
    yield settings.model_copy(update={"api_token": SecretStr(f"ops:{TOKEN},other:{OTHER}")}), clock


def _client(settings: Settings, clock: FakeClock) -> tuple[Services, TestClient]:
    services = build_services(settings, clock=clock)
    return services, TestClient(create_app(services), follow_redirects=False)


def _login(client: TestClient, token: str = TOKEN) -> str:
    response = client.post("/ui/login", data={"token": token})
    assert response.status_code == 303, response.text
    return client.cookies[COOKIE]


def _works(client: TestClient, cookie: str) -> bool:
    client.cookies.clear()
    client.cookies.set(COOKIE, cookie)
    return client.get("/v1/stats").status_code == 200


def test_each_login_is_a_new_session_that_expires_on_the_server(
    signed_in: tuple[Settings, FakeClock], outcomes: Outcomes
) -> None:
    settings, clock = signed_in
    services, client = _client(settings, clock)
    with client:
        first, second = _login(client), _login(client)
        assert first != second and TOKEN not in first
        clock.advance(11.9 * 3600)
        assert _works(client, first)
        clock.advance(0.2 * 3600)  # 12 h 6 min after login: past IMAGEMATCH_SESSION_HOURS=12
        assert not _works(client, first) and not _works(client, second)
        assert client.get("/ui/jobs").status_code == 303  # back to the login form
        name, sid, issued, mac = first.split(".")
        later = f"{name}.{sid}.{int(issued) + 12 * 3600}.{mac}"  # a forged issued-at time
        assert not _works(client, later)
    services.close()
    outcomes.record(
        "security", "session cookie copied, used 12 h 6 min after login", "refused (expired on the server)"
    )
    outcomes.record("security", "session cookie with a forged issued-at time", "refused (signature)")


def test_logout_revokes_the_session_across_a_restart(
    signed_in: tuple[Settings, FakeClock], outcomes: Outcomes
) -> None:
    settings, clock = signed_in
    services, client = _client(settings, clock)
    with client:
        copied, kept = _login(client), _login(client)
        client.cookies.clear()
        client.cookies.set(COOKIE, copied)
        csrf = client.get("/ui/jobs").cookies.get("imagematch_csrf") or client.cookies["imagematch_csrf"]
        assert client.post("/ui/logout", data={"csrf_token": csrf}).status_code == 303
        assert not _works(client, copied) and _works(client, kept)
    services.close()
    services, client = _client(settings, clock)  # a restart: same ledger, new process state
    with client:
        assert not _works(client, copied) and _works(client, kept)
    services.close()
    outcomes.record(
        "security", "session cookie copied before logout, used after (and after a restart)", "refused"
    )


def test_session_hours_setting_and_token_removal_end_sessions(
    signed_in: tuple[Settings, FakeClock], outcomes: Outcomes
) -> None:
    settings, clock = signed_in
    services, client = _client(settings.model_copy(update={"session_hours": 1.0}), clock)
    with client:
        cookie, other = _login(client), _login(client, OTHER)
        clock.advance(3601)
        assert not _works(client, cookie)
        clock.advance(-3601)
        assert _works(client, other)
    services.close()
    services, client = _client(settings.model_copy(update={"api_token": SecretStr(f"ops:{TOKEN}")}), clock)
    with client:
        assert not _works(client, other) and _works(client, cookie)  # rotation: 'other' removed
    services.close()
    outcomes.record("security", "IMAGEMATCH_SESSION_HOURS=1, cookie used after 1 h", "refused")
