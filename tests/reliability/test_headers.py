"""Headers everywhere (issue #26 item 10): ``X-Content-Type-Options: nosniff`` on every response
(webhooks, errors and the webhook-only app included); ``/docs`` served from vendored assets, with
no CDN and no inline script, under the console's CSP."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from imagematch.api import create_webhook_app
from imagematch.api.access import CONSOLE_CSP
from imagematch.app import Services
from tests.reliability.conftest import Outcomes


def test_every_response_says_nosniff(client: TestClient, services: Services, outcomes: Outcomes) -> None:
    answers = {
        "GET /healthz": client.get("/healthz"),
        "POST /webhooks/zendesk (unsigned: 401)": client.post("/webhooks/zendesk", json={"ticket_id": 1}),
        "GET /v1/stats": client.get("/v1/stats"),
        "GET /ui/jobs": client.get("/ui/jobs"),
        "GET /docs": client.get("/docs"),
        "GET /openapi.json": client.get("/openapi.json"),
        "GET /nowhere (404)": client.get("/nowhere"),
        "POST /v1/match with no body (4xx)": client.post("/v1/match"),
    }
    with TestClient(create_webhook_app(services.settings, services.ledger)) as hooks:
        answers["webhook app GET /healthz"] = hooks.get("/healthz")
        answers["webhook app POST /webhooks/catalog"] = hooks.post("/webhooks/catalog", content=b"{}")
    missing = [case for case, r in answers.items() if r.headers.get("x-content-type-options") != "nosniff"]
    assert not missing, missing
    outcomes.record(
        "security", "X-Content-Type-Options on every response", f"nosniff on all {len(answers)} checked"
    )


def test_docs_load_nothing_from_elsewhere_and_run_under_the_console_csp(
    client: TestClient, outcomes: Outcomes
) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and page.headers["content-security-policy"] == CONSOLE_CSP
    html = page.text
    assert "cdn" not in html.lower() and "//" not in re.sub(r"<!--.*?-->", "", html.split("<body", 1)[1])
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>\s*\S", html), "an inline script: the CSP blocks it"
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets and all(a.startswith("/") for a in assets), assets
    for asset in assets:
        fetched = client.get(asset)
        assert fetched.status_code == 200 and fetched.headers["x-content-type-options"] == "nosniff", asset
    assert client.get("/redoc").status_code == 404  # its page would load ReDoc from a CDN
    outcomes.record(
        "security", "/docs", f"{len(assets)} vendored assets from this server, no inline script, console CSP"
    )
