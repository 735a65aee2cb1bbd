"""Guessing (issue #26 item 6): failed sign-ins and failed bearer checks are rate-limited per
client address with backoff (429 + Retry-After; a correct token from elsewhere is unaffected, and
successes never count); short or visibly low-entropy tokens are refused at start."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from imagematch.api import create_app
from imagematch.api.access import parse_tokens
from imagematch.app import build_services
from imagematch.config import Settings
from tests.conftest import FakeClock
from tests.reliability.conftest import Outcomes

TOKEN = "console-token-4f9a1c7e2b8d6a30"


def _clients(settings: Settings, clock: FakeClock) -> tuple[TestClient, TestClient]:
    services = build_services(settings.model_copy(update={"api_token": SecretStr(TOKEN)}), clock=clock)
    app = create_app(services)
    guesser = TestClient(app, follow_redirects=False, client=("203.0.113.7", 50000))  # type: ignore[arg-type]
    other = TestClient(app, follow_redirects=False, client=("198.51.100.9", 50000))  # type: ignore[arg-type]
    return guesser, other


def test_failed_logins_and_bearer_checks_back_off_per_address(
    settings: Settings, clock: FakeClock, outcomes: Outcomes
) -> None:
    guesser, other = _clients(settings, clock)
    codes = [guesser.post("/ui/login", data={"token": f"guess-{n:020d}"}).status_code for n in range(12)]
    assert codes[0] == 401 and codes[-1] == 429, codes
    refused = guesser.post("/ui/login", data={"token": TOKEN})
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    bearer = guesser.get("/v1/stats", headers={"Authorization": "Bearer wrong-token-000000000000"})
    assert bearer.status_code == 429 and "retry-after" in bearer.headers
    # Another address is unaffected, and its successes are never limited.
    for _ in range(30):
        assert other.get("/v1/stats", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert other.post("/ui/login", data={"token": TOKEN}).status_code == 303
    clock.advance(int(refused.headers["retry-after"]) + 1)
    assert guesser.post("/ui/login", data={"token": TOKEN}).status_code == 303  # waited: signs in
    outcomes.record(
        "security",
        "token guessing: 12 wrong sign-ins from one address",
        f"401 × {codes.count(401)}, then 429 with Retry-After (backoff); other addresses unaffected",
    )


def test_failed_bearer_checks_alone_are_limited(
    settings: Settings, clock: FakeClock, outcomes: Outcomes
) -> None:
    guesser, _ = _clients(settings, clock)
    codes = [
        guesser.get("/v1/jobs", headers={"Authorization": f"Bearer guess-{n:020d}"}).status_code
        for n in range(12)
    ]
    assert codes[0] == 401 and codes[-1] == 429, codes
    outcomes.record("security", "token guessing: 12 wrong bearer tokens from one address", "401 then 429")


@pytest.mark.parametrize(
    "value",
    [
        "short-token-123456789",
        "a" * 40,
        "ops:" + "xy" * 20,
        "ops:" + "A" * 32 + ",ci:good-token-0123456789abcdef",
    ],
)
def test_short_or_low_entropy_tokens_are_refused(value: str, outcomes: Outcomes) -> None:
    with pytest.raises(ValueError) as refused:
        parse_tokens(value)
    assert value.split(":")[-1][:10] not in str(refused.value)  # the message never echoes the token
    outcomes.record(
        "security", f"IMAGEMATCH_API_TOKEN of {len(value)} chars, low entropy or short", str(refused.value)
    )
