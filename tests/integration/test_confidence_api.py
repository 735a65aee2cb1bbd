"""Every answer carries a calibrated confidence and a band: /v1/match, jobs and predictions."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from imagematch.api import create_app
from imagematch.app import Services
from imagematch.calibration import Calibration
from tests.conftest import PALETTE, image_bytes


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    # The tiny test model ships no fit: give it one, as the default model has.
    services.matcher.calibration = Calibration(
        embedder_id=services.embedder.embedder_id, score_weight=8.0, margin_weight=20.0,
        intercept=-5.0, fitted_on="test", labels=300,
    )  # fmt: skip
    with TestClient(create_app(services)) as client:
        yield client


def _match(client: TestClient, query: str = "") -> dict[str, object]:
    photo = image_bytes(PALETTE["red"], mark=1)
    body: dict[str, object] = client.post(
        f"/v1/match{query}", files={"file": ("p.png", photo, "image/png")}
    ).json()
    return body


def test_match_answers_carry_confidence_band_and_the_raw_score(client: TestClient) -> None:
    body = _match(client)
    confidence = body["confidence"]
    assert isinstance(confidence, float) and 0.0 <= confidence <= 1.0
    assert body["band"] in ("confident", "check", "no_match")
    assert body["no_confident_match"] == (body["band"] == "no_match")
    assert isinstance(body["matches"], list) and "score" in body["matches"][0]
    one = _match(client, "?top_k=1")  # the margin still reads the second product
    assert one["confidence"] == confidence and isinstance(one["matches"], list) and len(one["matches"]) == 1


def test_an_explicit_raw_threshold_can_only_lower_the_band(client: TestClient) -> None:
    strict = _match(client, "?min_score=1.01")
    assert strict["band"] == "no_match" and strict["no_confident_match"] is True
    assert strict["confidence"] == _match(client)["confidence"]


def test_a_job_keeps_the_confidence_it_was_answered_with(client: TestClient, services: Services) -> None:
    photo = image_bytes(PALETTE["green"], mark=1)
    job_id = client.post("/v1/images", files={"file": ("a.png", photo, "image/png")}).json()["id"]
    services.make_worker().drain()
    prediction = client.get(f"/v1/jobs/{job_id}").json()["prediction"]
    assert 0.0 <= prediction["confidence"] <= 1.0 and prediction["band"] in ("confident", "check", "no_match")


def test_without_a_fit_answers_have_no_confidence_but_a_band(services: Services) -> None:
    with TestClient(create_app(services)) as client:
        body = _match(client)
    assert body["confidence"] is None and body["band"] in ("check", "no_match")


def test_stats_say_which_fit_is_in_use(client: TestClient) -> None:
    calibration = client.get("/v1/stats").json()["calibration"]
    assert calibration["fitted_on"] == "test" and calibration["labels"] == 300
    assert 0.5 < calibration["confident_at"] <= 1.0
