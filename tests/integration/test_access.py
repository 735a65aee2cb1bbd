"""Access control: every /v1 route and /ui page closed without the token; webhooks and /healthz
open; session cookie, CSRF, rotation, and the loopback-only default."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from typer.testing import CliRunner

from imagematch.api import create_app
from imagematch.api.access import AccessControl, parse_tokens
from imagematch.app import Services
from imagematch.cli import app as cli_app
from tests.conftest import PALETTE, image_bytes

OLD = "old-token-0123456789abcdef"
NEW = "new-token-fedcba9876543210"


def client_for(services: Services, tokens: str | None, **kwargs: object) -> TestClient:
    services.settings = services.settings.model_copy(
        update={"api_token": SecretStr(tokens) if tokens else None}
    )
    return TestClient(create_app(services, **kwargs), follow_redirects=False)  # type: ignore[arg-type]


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with client_for(services, f"old:{OLD},new:{NEW}") as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/v1/stats"),
        ("GET", "/v1/jobs"),
        ("GET", "/v1/jobs/1"),
        ("POST", "/v1/match"),
        ("POST", "/v1/images"),
        ("POST", "/v1/jobs/retry-failed"),
        ("GET", "/v1/predictions"),
        ("GET", "/docs"),
        ("GET", "/metrics"),
        ("GET", "/v1/products/P-red/image"),
        ("GET", "/v1/jobs/1/thumbnail"),
        ("POST", "/v1/jobs/1/feedback"),
        ("DELETE", "/v1/jobs/1/feedback"),
        ("GET", "/v1/entities/ticket/1/matches"),
    ],
)
def test_api_routes_need_the_token(client: TestClient, method: str, path: str) -> None:
    response = client.request(method, path)
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    assert client.request(method, path, headers=bearer("wrong-token-0000000000")).status_code == 401


def test_healthz_and_webhooks_stay_open(client: TestClient) -> None:
    assert client.get("/healthz").status_code == 200
    # Webhooks answer for themselves (here: no signing secret configured), never 401 for a token.
    assert client.post("/webhooks/catalog", json={}).status_code == 503


def test_pages_get_a_csrf_cookie_once_and_console_headers_but_webhooks_get_neither(
    client: TestClient,
) -> None:
    page = client.get("/ui/health", headers=bearer(OLD))
    assert "imagematch_csrf=" in page.headers["set-cookie"] and "HttpOnly" in page.headers["set-cookie"]
    assert (
        page.headers["x-frame-options"] == "DENY"
        and "frame-ancestors 'none'" in page.headers["content-security-policy"]
    )
    again = client.get("/ui/health", headers=bearer(OLD))  # the client sends the cookie back
    assert "set-cookie" not in again.headers
    hook = TestClient(client.app).post("/webhooks/catalog", json={})  # a fresh client: no cookies
    assert "set-cookie" not in hook.headers and "content-security-policy" not in hook.headers


def test_every_token_works_for_scripts_and_pages(client: TestClient) -> None:
    for token in (OLD, NEW):
        assert client.get("/v1/stats", headers=bearer(token)).status_code == 200
        assert client.get("/ui/health", headers=bearer(token)).status_code == 200


def test_pages_send_a_browser_to_the_login_form_and_a_wrong_token_is_refused(client: TestClient) -> None:
    response = client.get("/ui/jobs?status=failed")
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/login?next=/ui/jobs%3Fstatus%3Dfailed"
    assert client.get("/").headers["location"].startswith("/ui/login")
    refused = client.post("/ui/login", data={"token": "not-it-000000000000", "next": "/ui/jobs"})
    assert refused.status_code == 401 and "not valid" in refused.text
    assert "imagematch_session" not in refused.cookies


def test_login_sets_a_strict_httponly_cookie_that_opens_pages_but_not_unsafe_api_calls(
    client: TestClient,
) -> None:
    response = client.post("/ui/login", data={"token": NEW, "next": "/ui/health"})
    assert response.status_code == 303 and response.headers["location"] == "/ui/health"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and NEW not in cookie
    page = client.get("/ui/health")
    assert page.status_code == 200 and NEW not in page.text and OLD not in page.text
    assert client.get("/v1/stats").status_code == 200
    upload = {"file": ("a.png", image_bytes(PALETTE["red"]), "image/png")}
    assert client.post("/v1/images", files=upload).status_code == 403  # no CSRF token
    csrf = client.cookies["imagematch_csrf"]
    assert client.post("/v1/images", files=upload, headers={"X-CSRF-Token": csrf}).status_code == 202


def test_the_login_form_only_redirects_within_the_site(client: TestClient) -> None:
    response = client.post("/ui/login", data={"token": OLD, "next": "//evil.example/x"})
    assert response.headers["location"] == "/ui/jobs"


def test_a_removed_token_closes_its_sessions(services: Services) -> None:
    with client_for(services, f"old:{OLD},new:{NEW}") as before:
        before.post("/ui/login", data={"token": OLD})
        session = before.cookies["imagematch_session"]
    with client_for(services, f"new:{NEW}") as after:
        after.cookies.set("imagematch_session", session)
        assert after.get("/ui/jobs").status_code == 303


def test_cross_site_posts_are_refused_even_with_a_session(client: TestClient) -> None:
    client.post("/ui/login", data={"token": OLD})
    csrf = client.cookies["imagematch_csrf"]
    form = {"csrf_token": csrf}
    evil = {"Origin": "https://evil.example"}
    assert client.post("/ui/jobs/retry-failed", data=form, headers=evil).status_code == 403
    assert client.post("/ui/jobs/retry-failed", data={"csrf_token": "guess"}).status_code == 403
    assert client.post("/ui/jobs/retry-failed", data=form).status_code == 303


def test_https_sessions_get_a_secure_cookie(client: TestClient) -> None:
    response = client.post("/ui/login", data={"token": OLD}, headers={"X-Forwarded-Proto": "https"})
    assert "Secure" in response.headers["set-cookie"]


def test_without_a_token_on_loopback_only_loopback_host_names_are_served(services: Services) -> None:
    access = AccessControl([], loopback_hosts_only=True)
    with client_for(services, None, access=access) as client:
        for host in ("127.0.0.1:8000", "localhost:8000", "[::1]:8000", "app.localhost"):
            assert client.get("/v1/stats", headers={"Host": host}).status_code == 200, host
        rebound = client.get("/v1/stats", headers={"Host": "attacker.example:8000"})
        assert rebound.status_code == 403 and "IMAGEMATCH_API_TOKEN" in rebound.json()["detail"]
        form_post = client.post(
            "/v1/jobs/retry-failed", headers={"Host": "127.0.0.1:8000", "Origin": "https://evil.example"}
        )
        assert form_post.status_code == 403


def test_serve_refuses_a_public_host_without_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IMAGEMATCH_API_TOKEN", raising=False)
    result = CliRunner().invoke(cli_app, ["serve", "--host", "0.0.0.0"])
    assert result.exit_code == 2 and "IMAGEMATCH_API_TOKEN" in result.output


@pytest.mark.parametrize(
    "value,names",
    [(OLD, ["default"]), (f"a:{OLD}, b:{NEW}", ["a", "b"]), (f'{{"a": "{OLD}"}}', ["a"])],
)
def test_token_formats(value: str, names: list[str]) -> None:
    assert [t.name for t in parse_tokens(value)] == names


def test_a_bad_token_setting_is_explained_without_echoing_the_token() -> None:
    with pytest.raises(ValueError) as short:
        parse_tokens("a:tooshort")
    assert "24 characters" in str(short.value) and "tooshort" not in str(short.value)
    assert "old-token" not in repr(parse_tokens(OLD))
