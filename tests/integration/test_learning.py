"""The learning loop end to end: a corrected photo becomes a learned reference of its product,
searchable at once here and in other processes, kept over restarts and rebuilds, undone by a
retraction or the product's deletion, bounded, and never shown as the product's picture."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw

from imagematch.api import create_app
from imagematch.app import Services, build_services
from imagematch.config import Settings
from imagematch.console.data import reference_images
from imagematch.models import MatchRequest, Product
from imagematch.operations import sweep
from imagematch.worker import WorkerPool
from index_builder import rebuild_catalog_index
from tests.conftest import PALETTE


def two_colour(left: str, right: str, *, split: float = 0.6, mark: int = 0) -> bytes:
    """A photo that is mostly ``left`` with ``right`` beside it: the tiny embedder ranks the left
    colour's product first, the right one's close behind."""
    image = Image.new("RGB", (64, 48), PALETTE[left])
    draw = ImageDraw.Draw(image)
    draw.rectangle([int(64 * split), 0, 64, 48], fill=PALETTE[right])
    x = 4 + (mark * 12) % 48
    draw.rectangle([x, 30, x + 10, 40], fill=(10, 10, 10))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def top1(services: Services, photo: bytes) -> str:
    return services.match_photo(photo, MatchRequest()).matches[0].product_id


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services)) as client:
        yield client


def submit(client: TestClient, services: Services, photo: bytes, key: str | None = None) -> int:
    data = {"idempotency_key": key} if key else None
    job = client.post("/v1/images", files={"file": ("p.png", photo, "image/png")}, data=data).json()
    services.make_worker().drain()
    return int(job["id"])


def label(client: TestClient, job_id: int, verdict: str, product_id: str | None = None) -> None:
    answer = client.post(f"/v1/jobs/{job_id}/feedback", json={"verdict": verdict, "product_id": product_id})
    assert answer.status_code in (200, 201), answer.text


def test_a_corrected_photo_teaches_its_product_until_retracted(
    client: TestClient, services: Services, settings: Settings, catalog_file: object
) -> None:
    photo, near_identical = two_colour("red", "blue"), two_colour("red", "blue", mark=1)
    assert top1(services, near_identical) == "P-red"
    other_process = build_services(settings)  # another serving process over the same data dir
    assert top1(other_process, near_identical) == "P-red"
    job_id = submit(client, services, photo)
    started = time.monotonic()
    label(client, job_id, "corrected", "P-blue")
    services.make_worker().drain()  # the learn job (a serving process's pool runs it at once)
    assert top1(services, near_identical) == "P-blue"
    assert time.monotonic() - started < 5.0
    other_process.index.refresh()  # its next index check
    assert top1(other_process, near_identical) == "P-blue"
    other_process.close()
    assert services.learning.is_learned_reference(services.ledger.get_prediction(job_id).image_sha256 or "")

    services.close()  # a restart: new services over the same data dir
    restarted = build_services(settings)
    try:
        assert top1(restarted, near_identical) == "P-blue"
        with TestClient(create_app(restarted)) as again:
            assert again.delete(f"/v1/jobs/{job_id}/feedback").status_code == 200
            restarted.make_worker().drain()
            assert top1(restarted, near_identical) == "P-red" and restarted.index.get().learned_count == 0
            digest = restarted.ledger.get_prediction(job_id).image_sha256 or ""  # type: ignore[union-attr]
            assert not restarted.learning.is_learned_reference(digest)
            label(again, job_id, "corrected", "P-blue")
            restarted.make_worker().drain()
            rebuild_catalog_index(restarted, str(catalog_file))  # refits the whitening with it
            assert restarted.index.get().learned_count == 1 and top1(restarted, near_identical) == "P-blue"
            from_snapshot = build_services(settings)  # the change log was folded: from the snapshot
            assert top1(from_snapshot, near_identical) == "P-blue"
            from_snapshot.close()
            assert again.delete(f"/v1/jobs/{job_id}/feedback").status_code == 200
            restarted.make_worker().drain()
            assert restarted.index.get().learned_count == 0
            rebuild_catalog_index(restarted, str(catalog_file))  # and the whitening forgets it
            assert top1(restarted, near_identical) == "P-red"
    finally:
        restarted.close()


def test_a_learned_reference_is_never_the_products_picture(client: TestClient, services: Services) -> None:
    job_id = submit(client, services, two_colour("red", "blue"))
    label(client, job_id, "corrected", "P-blue")
    services.make_worker().drain()
    index = services.index.get()
    catalog_images = {index.images[vid].image_id for vid in index.product_vector_ids("P-blue")}
    assert len(catalog_images) == 2 and index.stats(services.clock())["learned_references"] == 1
    for photo in (two_colour("red", "blue", mark=1), two_colour("red", "blue", mark=2)):
        [best] = [m for m in services.match_photo(photo, MatchRequest()).matches if m.product_id == "P-blue"]
        assert best.image_id in catalog_images
    pictures = reference_images(services, index, "P-blue")
    assert {p.image_id for p in pictures} == catalog_images and not any(
        p.uri.startswith("learned:") for p in pictures
    )


def test_not_in_catalog_and_unusable_labels_teach_nothing(client: TestClient, services: Services) -> None:
    for n, verdict in enumerate(("not_in_catalog", "unusable")):
        label(client, submit(client, services, two_colour("green", "yellow", mark=n)), verdict)
    services.make_worker().drain()
    assert services.index.get().learned_count == 0
    assert services.ledger.list_jobs(source="learning") == []


def test_learned_references_are_bounded_and_deduplicated(client: TestClient, services: Services) -> None:
    services.learning.per_product = 2
    photos = [two_colour("yellow", "green", split=0.5 + 0.1 * n, mark=n) for n in range(3)]
    jobs = [submit(client, services, photo) for photo in photos]
    again = submit(client, services, photos[2], key="same-photo-other-job")  # same content
    for job_id in [*jobs, again]:
        label(client, job_id, "confirmed", "P-green")
    services.make_worker().drain()
    refs = services.index.get().learned["P-green"]
    assert [r.job_id for r in refs] == [jobs[1], again]  # the newest two; the same photo once


def test_deleting_the_product_drops_its_learned_references(client: TestClient, services: Services) -> None:
    label(client, submit(client, services, two_colour("red", "blue")), "corrected", "P-blue")
    services.make_worker().drain()
    assert services.index.get().learned_count == 1
    assert services.catalog_updater is not None
    services.catalog_updater.delete_product("P-blue", sequence=10**6)
    assert services.index.get().learned_count == 0


def test_a_learned_reference_is_embedded_again_from_its_stored_photo(
    client: TestClient, services: Services, settings: Settings
) -> None:
    job_id = submit(client, services, two_colour("red", "blue"))
    label(client, job_id, "corrected", "P-blue")
    for path in (settings.data_dir / "photo_vectors").glob("*/*/*.f32"):
        path.unlink()  # as after a model switch: no vector of the serving model
    refs = services.learning.learned_set("P-blue", services.index.get())
    assert [r.job_id for r in refs] == [job_id]


def test_a_serving_process_applies_a_label_within_seconds(services: Services) -> None:
    pool = WorkerPool(services.make_worker, size=1, poll_seconds=0.05, sweep=lambda: sweep(services))
    near_identical = two_colour("red", "blue", mark=1)
    with TestClient(create_app(services, pool=pool)) as client:
        job_id = int(
            client.post("/v1/images", files={"file": ("p.png", two_colour("red", "blue"))}).json()["id"]
        )
        deadline = time.monotonic() + 5.0
        while services.ledger.get_prediction(job_id) is None and time.monotonic() < deadline:
            time.sleep(0.02)
        labelled_at = time.monotonic()
        label(client, job_id, "corrected", "P-blue")
        while top1(services, near_identical) != "P-blue" and time.monotonic() < labelled_at + 5.0:
            time.sleep(0.02)
        assert top1(services, near_identical) == "P-blue"


def test_a_catalog_update_keeps_the_learned_references(client: TestClient, services: Services) -> None:
    label(client, submit(client, services, two_colour("red", "blue")), "corrected", "P-blue")
    services.make_worker().drain()
    index = services.index.get()
    index.upsert_product(Product(id="P-blue", name="Blue again"), [], np.zeros((0, index.dim), np.float32))
    assert index.learned_count == 1 and index.product_vector_ids("P-blue") == []
    assert top1(services, two_colour("red", "blue", mark=1)) == "P-blue"  # found by its learned photo
    [match] = [
        m
        for m in services.match_photo(two_colour("red", "blue"), MatchRequest()).matches
        if m.product_id == "P-blue"
    ]
    assert match.image_id == ""  # no catalog picture to name, and never the customer's photo
