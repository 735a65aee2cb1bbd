"""Every route that names one thing — a job, a product, an entity — answers 404 for one that does
not exist (one parametrized test instead of an assert copied into each route's tests)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/jobs/999", None),
        ("POST", "/v1/jobs/999/retry", None),
        ("GET", "/v1/jobs/999999/thumbnail", None),
        ("POST", "/v1/jobs/999/feedback", {"verdict": "unusable"}),
        ("DELETE", "/v1/jobs/999/feedback", None),
        ("GET", "/v1/products/P-nope/image", None),
        ("GET", "/ui/catalog/nope", None),
        ("GET", "/ui/entities/ticket/nope", None),
    ],
)
def test_an_unknown_id_is_a_404(
    client: TestClient, method: str, path: str, body: dict[str, Any] | None
) -> None:
    assert client.request(method, path, json=body).status_code == 404
