"""Links in the console (issue #26 item 3): a product's ``metadata.url`` is a link only when it is
http(s); a catalog event carrying another scheme is refused with 422."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from imagematch.api import create_app
from imagematch.app import Services, build_services
from imagematch.config import Settings
from imagematch.sources.catalog import sign_catalog_event
from tests.conftest import image_bytes
from tests.reliability.conftest import CATALOG_SECRET, Outcomes

BAD_LINKS = [
    "javascript:alert(document.cookie)",
    " JaVaScRiPt:alert(1)",
    "java\tscript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "//evil.example/x",
]


@pytest.fixture
def linked(settings: Settings, tmp_path: Path) -> Services:
    from index_builder import rebuild_catalog_index

    root = tmp_path / "cat"
    root.mkdir()
    products = []
    for n, url in enumerate([*BAD_LINKS, "https://shop.example/p/ok"]):
        (root / f"{n}.png").write_bytes(image_bytes((20 * n, 90, 200 - 20 * n)))
        products.append({"id": f"P{n}", "name": f"P{n}", "images": [f"{n}.png"], "metadata": {"url": url}})
    (root / "products.json").write_text(json.dumps(products))
    services = build_services(settings)
    rebuild_catalog_index(services, str(root / "products.json"))
    return services


def test_only_http_product_pages_are_links(linked: Services, outcomes: Outcomes) -> None:
    with TestClient(create_app(linked), raise_server_exceptions=False) as client:
        for n, url in enumerate(BAD_LINKS):
            page = client.get(f"/ui/catalog/P{n}")
            assert page.status_code == 200 and "product page" not in page.text, url
        assert 'href="https://shop.example/p/ok"' in client.get(f"/ui/catalog/P{len(BAD_LINKS)}").text
    linked.close()
    outcomes.record(
        "security", "catalog metadata.url of javascript:/data:/vbscript:", "not rendered as a link"
    )


def test_catalog_events_with_a_non_http_product_url_are_refused(
    client: TestClient, outcomes: Outcomes
) -> None:
    for url in ("javascript:alert(1)", "data:text/html,x"):
        body = json.dumps(
            {"event": "product.updated", "product": {"id": "PX", "images": [], "metadata": {"url": url}}}
        ).encode()
        response = client.post(
            "/webhooks/catalog",
            content=body,
            headers=sign_catalog_event(CATALOG_SECRET, int(time.time()), body),
        )
        assert response.status_code == 422, response.text
    outcomes.record(
        "bad-input", "catalog event with metadata.url javascript:", f"422 {response.json()['detail']}"[:120]
    )
