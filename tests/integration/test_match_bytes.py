"""One synchronous entry point for matching bytes, and completion hooks that return, not mutate."""

from __future__ import annotations

import ast
from typing import Any

import pytest
from fastapi.testclient import TestClient

from imagematch.api import create_app
from imagematch.app import Services
from imagematch.job_kinds import image_ref_for_blob
from imagematch.models import Job, JobKind, JobStatus, MatchRequest, NewJob, NewPrediction
from tests.conftest import PALETTE, REPO, image_bytes


def test_match_bytes_answers_the_api_and_a_job_alike(services: Services) -> None:
    photo = image_bytes(PALETTE["green"], mark=2)
    found = services.photos.match_bytes(photo, MatchRequest(top_k=2))
    assert found.result.matches[0].product_id == "P-green" and len(found.result.matches) == 2
    assert found.image is not None and found.quality is not None
    with TestClient(create_app(services)) as client:
        answer = client.post("/v1/match", files={"file": ("g.png", photo, "image/png")}, params={"top_k": 2})
    assert [m["product_id"] for m in answer.json()["matches"]] == [m.product_id for m in found.result.matches]
    digest = services.blobs.put(photo)
    job, _ = services.ledger.submit(
        NewJob(idempotency_key="g", payload={"image": image_ref_for_blob(digest)})
    )
    services.make_worker().drain()
    prediction = services.ledger.get_prediction(job.id)
    assert prediction is not None and prediction.best_product_id == "P-green"
    assert prediction.image_sha256 == found.digest


def _photo_job(services: Services, key: str) -> int:
    digest = services.blobs.put(image_bytes(PALETTE["red"], mark=len(key)))
    return services.ledger.submit(NewJob(idempotency_key=key, payload={"image": image_ref_for_blob(digest)}))[
        0
    ].id


def test_hooks_see_the_same_prediction_and_their_additions_are_merged(services: Services) -> None:
    seen: list[str] = []

    def meddler(job: Job, payload: Any, prediction: NewPrediction) -> None:
        prediction.image_url = "https://changed.example/by-the-first-hook"  # its own copy only
        seen.append("meddler")

    def namer(job: Job, payload: Any, prediction: NewPrediction) -> dict[str, Any]:
        seen.append(f"namer saw {prediction.image_url}")
        return {"file_name": "named by a hook"}

    services.photos.on_complete(JobKind.MATCH_IMAGE, meddler)
    services.photos.on_complete(JobKind.MATCH_IMAGE, namer)
    job_id = _photo_job(services, "hooks")
    services.make_worker().drain()
    prediction = services.ledger.get_prediction(job_id)
    assert seen == ["meddler", "namer saw None"]
    assert prediction is not None and prediction.file_name == "named by a hook"
    assert prediction.image_url is None


def test_two_hooks_adding_one_field_fail_the_job(services: Services) -> None:
    for _ in range(2):
        services.photos.on_complete(JobKind.MATCH_IMAGE, lambda job, payload, p: {"file_name": "x"})
    job_id = _photo_job(services, "clash")
    services.make_worker().drain()
    job = services.ledger.get_job(job_id)
    assert job is not None and job.status == JobStatus.FAILED and "file_name" in (job.last_error or "")


@pytest.mark.parametrize("root", ["imagematch", "index_builder", "modal_app.py", "modal_ops.py"])
def test_decode_image_is_called_only_from_images_py(root: str) -> None:
    """Every decode goes through ImageLimits.decode, so the configured limits always apply."""
    path = REPO / root
    files = [path] if path.is_file() else sorted(path.rglob("*.py"))
    callers = [
        f"{file.relative_to(REPO)}:{node.lineno}"
        for file in files
        if file.relative_to(REPO).as_posix() != "imagematch/images.py"
        for node in ast.walk(ast.parse(file.read_text()))
        if isinstance(node, ast.Call)
        and (getattr(node.func, "id", None) or getattr(node.func, "attr", None)) == "decode_image"
    ]
    assert callers == []
